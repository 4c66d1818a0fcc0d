//! [`RemoteStore`]: reading records through the tier. A request pins one version of its
//! locale (a record manifest) and asks for many ids at once:
//!
//! 1. each id's item hash, from the pinned manifest (mapped, O(depth)): exact for ids the
//!    manifest names, a candidate for ids its perfect hash function maps (any id maps to
//!    some slot, so an unknown id yields another id's hash, or none);
//! 2. the version's hot set, then the byte-bounded in-process cache (`quick_cache`);
//! 3. in-process single-flight ([`super::flight`]): one fetch per item however many
//!    requests miss it;
//! 4. memcached: one pipelined `mg … v c N<ttl>` batch per server, all servers in
//!    parallel. A miss gives one process the lease (`W`), which fetches from the origin and
//!    writes the item back; the others (`Z`) poll for a bounded time, then read the origin
//!    themselves;
//! 5. the origin (the version's tree in the origin directory), for what is still missing.
//!
//! Every item is verified ([`super::item::decode`]) before it is cached or served: a
//! corrupt one counts as a miss and is overwritten with the origin's. Server errors and
//! timeouts are misses too; nothing is retried. Items carry their id: a record is served
//! for id X only if its item's id is X. For a candidate hash another id means "X is not
//! in this version" (`None`, not corrupt); a miss is settled by the origin tree, where a
//! missing X is `None` too. For an exact hash another id is corruption.
//!
//! The version pointer is refreshed stale-while-revalidate: younger than `fresh`, the
//! pinned version is served as is; between `fresh` and `expire`, one request revalidates
//! while the others keep serving it; older than `expire`, the request revalidates before
//! serving. A pointer memcached has lost falls back to the durable `pointers.json`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::client::{Op, Reply};
use super::error::{RemoteError, RemoteResult};
use super::flight::{Claim, Flights};
use super::item::{self, ItemHash, RemoteRecord};
use super::origin::{Origin, Pointers, Version};
use super::pointer;
use super::pool::Cluster;
use crate::ContentHash;

/// Knobs of a [`RemoteStore`]. [`RemoteConfig::validate`] rejects combinations that
/// would serve a version forever or wait without bound.
#[derive(Clone, Debug)]
pub struct RemoteConfig {
    /// A pinned version younger than this is served without asking memcached.
    pub fresh: Duration,
    /// A pinned version older than this is revalidated before it is served.
    pub expire: Duration,
    /// Bytes the in-process cache may hold.
    pub cache_bytes: u64,
    /// TTL (seconds) of a miss lease (`N<ttl>`): how long a placeholder lives if its
    /// winner dies before filling it.
    pub lease_ttl: u32,
    /// How long a lease loser polls memcached before reading the origin itself.
    pub lease_wait: Duration,
    /// Pause between polls.
    pub lease_poll: Duration,
    /// The deadline of a whole `get_many` (memcached batches have their own, shorter one).
    pub deadline: Duration,
    /// Ids to keep in process for every pinned version (the hot set), read when the
    /// version is first pinned.
    pub hot_ids: Vec<String>,
}

impl Default for RemoteConfig {
    fn default() -> RemoteConfig {
        RemoteConfig {
            fresh: Duration::from_secs(1),
            expire: Duration::from_secs(30),
            cache_bytes: 64 << 20,
            lease_ttl: 10,
            lease_wait: Duration::from_millis(100),
            lease_poll: Duration::from_millis(5),
            deadline: Duration::from_millis(500),
            hot_ids: Vec::new(),
        }
    }
}

impl RemoteConfig {
    /// Checks the bounds: `0 < fresh < expire <= 1 h`, `lease_wait < deadline`,
    /// `lease_poll > 0`, `lease_ttl > 0`.
    pub fn validate(&self) -> RemoteResult<()> {
        let bad = |what: &str| Err(RemoteError::Config(what.to_owned()));
        if self.fresh.is_zero() || self.fresh >= self.expire {
            return bad("freshness must be > 0 and below expiry (fresh < expire)");
        }
        if self.expire > Duration::from_secs(3600) {
            return bad("expiry must be at most one hour");
        }
        if self.lease_wait >= self.deadline {
            return bad("lease_wait must be below the request deadline");
        }
        if self.lease_poll.is_zero() || self.lease_ttl == 0 {
            return bad("lease_poll and lease_ttl must be > 0");
        }
        Ok(())
    }
}

/// Counters of a [`RemoteStore`] (monotonic).
#[derive(Debug, Default)]
pub struct RemoteStats {
    /// `get_many` calls.
    pub requests: AtomicU64,
    /// Ids asked for.
    pub ids: AtomicU64,
    /// Served from the hot set.
    pub hot_hits: AtomicU64,
    /// Served from the in-process cache.
    pub cache_hits: AtomicU64,
    /// Served by waiting on another request's fetch.
    pub flight_waits: AtomicU64,
    /// Verified items read from memcached.
    pub memcached_hits: AtomicU64,
    /// Items memcached did not have (or could not give).
    pub memcached_misses: AtomicU64,
    /// Items from memcached that failed verification (never served).
    pub corrupt: AtomicU64,
    /// Records read from the origin.
    pub origin_fetches: AtomicU64,
    /// Items lost to another process's lease and polled for.
    pub lease_waits: AtomicU64,
    /// Pointer reads.
    pub pointer_reads: AtomicU64,
    /// Pointer reads that fell back to the durable pointers.
    pub pointer_fallbacks: AtomicU64,
    /// Failed reads of the durable pointers by [`RemoteStore::published`] (the last list
    /// read is kept meanwhile).
    pub pointers_file_errors: AtomicU64,
}

/// A plain copy of [`RemoteStats`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct StatsSnapshot {
    pub requests: u64,
    pub ids: u64,
    pub hot_hits: u64,
    pub cache_hits: u64,
    pub flight_waits: u64,
    pub memcached_hits: u64,
    pub memcached_misses: u64,
    pub corrupt: u64,
    pub origin_fetches: u64,
    pub lease_waits: u64,
    pub pointer_reads: u64,
    pub pointer_fallbacks: u64,
    pub pointers_file_errors: u64,
    /// Batches sent to memcached servers (round trips).
    pub round_trips: u64,
}

/// One fetched item: the verified item of the hash, or `None` (the id is not in the
/// version, says the origin).
type Fetched = RemoteResult<Option<Arc<RemoteRecord>>>;

#[derive(Clone)]
struct Weigh;

impl quick_cache::Weighter<ItemHash, Arc<RemoteRecord>> for Weigh {
    fn weight(&self, _k: &ItemHash, v: &Arc<RemoteRecord>) -> u64 {
        v.weight() as u64
    }
}

/// A locale's pinned version and when it was last validated.
struct Slot {
    version: Arc<Pinned>,
    checked: Instant,
}

/// A version as a request holds it: the manifest and the hot set.
#[derive(Debug)]
pub struct Pinned {
    version: Arc<Version>,
    hot: HashMap<ItemHash, Arc<RemoteRecord>>,
}

impl Pinned {
    /// The version (its manifest, its description).
    pub fn version(&self) -> &Arc<Version> {
        &self.version
    }

    /// The manifest hash: the version's identity.
    pub fn hash(&self) -> ContentHash {
        self.version.hash()
    }
}

/// Records read through memcached by content hash. `Send + Sync`; one per process.
pub struct RemoteStore {
    cluster: Arc<Cluster>,
    origin: Origin,
    cfg: RemoteConfig,
    cache: quick_cache::sync::Cache<ItemHash, Arc<RemoteRecord>, Weigh>,
    flights: Flights<ItemHash, Arc<RemoteRecord>>,
    slots: Mutex<HashMap<String, Slot>>,
    revalidating: Mutex<HashMap<String, Arc<AtomicBool>>>,
    refresh: Mutex<()>,
    /// The durable pointers as last read, and when ([`RemoteStore::published`]).
    published: Mutex<Option<(Instant, Arc<Pointers>)>>,
    /// Held by the one caller reading the durable pointers.
    published_reading: Mutex<()>,
    stats: RemoteStats,
}

impl std::fmt::Debug for RemoteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteStore")
            .field("origin", &self.origin.dir())
            .field("cfg", &self.cfg)
            .finish_non_exhaustive()
    }
}

impl RemoteStore {
    /// A store reading through `cluster`, with the origin at `origin_dir` (the directory
    /// `push` published). Errors if `cfg` does not [`validate`](RemoteConfig::validate).
    pub fn new(
        cluster: Arc<Cluster>,
        origin_dir: impl Into<PathBuf>,
        cfg: RemoteConfig,
    ) -> RemoteResult<RemoteStore> {
        cfg.validate()?;
        let est_items = (cfg.cache_bytes / 2048).clamp(16, 1 << 22) as usize;
        Ok(RemoteStore {
            cache: quick_cache::sync::Cache::with_weighter(est_items, cfg.cache_bytes, Weigh),
            cluster,
            origin: Origin::new(origin_dir),
            cfg,
            flights: Flights::new(),
            slots: Mutex::new(HashMap::new()),
            revalidating: Mutex::new(HashMap::new()),
            refresh: Mutex::new(()),
            published: Mutex::new(None),
            published_reading: Mutex::new(()),
            stats: RemoteStats::default(),
        })
    }

    /// The cluster.
    pub fn cluster(&self) -> &Arc<Cluster> {
        &self.cluster
    }

    /// The counters.
    pub fn stats(&self) -> StatsSnapshot {
        let s = &self.stats;
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        StatsSnapshot {
            requests: l(&s.requests),
            ids: l(&s.ids),
            hot_hits: l(&s.hot_hits),
            cache_hits: l(&s.cache_hits),
            flight_waits: l(&s.flight_waits),
            memcached_hits: l(&s.memcached_hits),
            memcached_misses: l(&s.memcached_misses),
            corrupt: l(&s.corrupt),
            origin_fetches: l(&s.origin_fetches),
            lease_waits: l(&s.lease_waits),
            pointer_reads: l(&s.pointer_reads),
            pointer_fallbacks: l(&s.pointer_fallbacks),
            pointers_file_errors: l(&s.pointers_file_errors),
            round_trips: self.cluster.round_trips(),
        }
    }

    /// Bytes in the in-process cache.
    pub fn cache_bytes(&self) -> u64 {
        self.cache.weight()
    }

    /// Empties the in-process cache (the hot sets stay).
    pub fn clear_cache(&self) {
        self.cache.clear();
    }

    /// The published locales and the default one: the origin's durable pointers
    /// (`pointers.json`, which `push` writes after it flips the memcached pointers), read
    /// again when the copy held is older than [`RemoteConfig::fresh`]. The hashes in it
    /// may trail the memcached pointers by a push; [`pin`](Self::pin) gives the version a
    /// locale serves. A server checks a locale against this list before it pins it.
    pub fn published(&self) -> RemoteResult<Arc<Pointers>> {
        let fresh = |held: &Option<(Instant, Arc<Pointers>)>| {
            held.as_ref()
                .filter(|(at, _)| at.elapsed() < self.cfg.fresh)
                .map(|(_, p)| p.clone())
        };
        let held = self
            .published
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if let Some(p) = fresh(&held) {
            return Ok(p);
        }
        // Stale: one caller reads the file (outside the lock the others read under); with a
        // copy held, the others serve it meanwhile instead of queueing behind the read.
        let _one = match self.published_reading.try_lock() {
            Ok(g) => g,
            Err(std::sync::TryLockError::Poisoned(e)) => e.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => match &held {
                Some((_, p)) => return Ok(p.clone()),
                None => self
                    .published_reading
                    .lock()
                    .unwrap_or_else(|e| e.into_inner()),
            },
        };
        if let Some(p) = fresh(&self.published.lock().unwrap_or_else(|e| e.into_inner())) {
            return Ok(p);
        }
        let read = self.origin.read_pointers();
        let mut slot = self.published.lock().unwrap_or_else(|e| e.into_inner());
        match (read, held) {
            (Ok(p), _) => {
                let p = Arc::new(p);
                *slot = Some((Instant::now(), p.clone()));
                Ok(p)
            }
            // A failed read keeps the last list it had, tried again after `fresh`, and is
            // counted (`pointers_file_errors`).
            (Err(e), held) => {
                self.stats
                    .pointers_file_errors
                    .fetch_add(1, Ordering::Relaxed);
                match held {
                    Some((_, p)) => {
                        *slot = Some((Instant::now(), p.clone()));
                        Ok(p)
                    }
                    None => Err(e),
                }
            }
        }
    }

    /// The versions pinned now, by locale (no I/O: what the last pins installed), leaving
    /// out locales the durable pointers held now no longer publish.
    pub fn pinned_versions(&self) -> Vec<(String, ContentHash)> {
        let published = self
            .published
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(|(_, p)| p.clone());
        let slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        let mut v: Vec<(String, ContentHash)> = slots
            .iter()
            .filter(|(l, _)| {
                published
                    .as_ref()
                    .is_none_or(|p| p.locales.contains_key(*l))
            })
            .map(|(l, s)| (l.clone(), s.version.hash()))
            .collect();
        v.sort_unstable();
        v
    }

    /// The version `locale` serves, pinned: keep it for the whole request. Fresh pins
    /// cost a map lookup; stale ones are revalidated as the module docs say. A locale
    /// without a pointer of its own is served the default locale's version, and the store
    /// keeps a pin per distinct locale asked: check locales from untrusted input against
    /// [`published`](Self::published) first.
    pub fn pin(&self, locale: &str) -> RemoteResult<Arc<Pinned>> {
        let (current, age) = {
            let slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
            match slots.get(locale) {
                Some(s) => (Some(s.version.clone()), s.checked.elapsed()),
                None => (None, Duration::MAX),
            }
        };
        match current {
            Some(v) if age < self.cfg.fresh => Ok(v),
            Some(v) if age < self.cfg.expire => {
                // Stale but usable: one request revalidates, the rest serve `v`.
                let flag = self
                    .revalidating
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .entry(locale.to_owned())
                    .or_default()
                    .clone();
                if flag
                    .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok()
                {
                    let r = self.revalidate(locale);
                    flag.store(false, Ordering::Release);
                    return r.or(Ok(v));
                }
                Ok(v)
            }
            _ => {
                let _one = self.refresh.lock().unwrap_or_else(|e| e.into_inner());
                // Someone may have refreshed while this request waited.
                if let Some(s) = self
                    .slots
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .get(locale)
                    .filter(|s| s.checked.elapsed() < self.cfg.fresh)
                {
                    return Ok(s.version.clone());
                }
                self.revalidate(locale)
            }
        }
    }

    /// Reads the pointer (memcached, else the durable copy) and installs its version.
    fn revalidate(&self, locale: &str) -> RemoteResult<Arc<Pinned>> {
        let hash = self.pointer_hash(locale)?;
        let pinned = {
            let slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
            slots
                .get(locale)
                .filter(|s| s.version.hash() == hash)
                .map(|s| s.version.clone())
        };
        let pinned = match pinned {
            Some(p) => p,
            None => self.load_version(hash)?,
        };
        self.slots.lock().unwrap_or_else(|e| e.into_inner()).insert(
            locale.to_owned(),
            Slot {
                version: pinned.clone(),
                checked: Instant::now(),
            },
        );
        Ok(pinned)
    }

    fn pointer_hash(&self, locale: &str) -> RemoteResult<ContentHash> {
        self.stats.pointer_reads.fetch_add(1, Ordering::Relaxed);
        let deadline = Instant::now() + self.cluster.config().timeouts.batch;
        match pointer::read(&self.cluster, locale, deadline) {
            Ok(pointer::Read::Found { hash, .. }) => return Ok(hash),
            Ok(pointer::Read::Absent) | Err(_) => {}
        }
        // Evicted, flushed or unreachable: the durable pointers.
        self.stats.pointer_fallbacks.fetch_add(1, Ordering::Relaxed);
        let p = self.origin.read_pointers()?;
        let h = p
            .locales
            .get(locale)
            .or_else(|| p.locales.get(&p.default_locale))
            .ok_or_else(|| RemoteError::Origin {
                dir: self.origin.dir().to_owned(),
                what: format!("no version published for {locale:?} or the default locale"),
            })?;
        h.parse().map_err(|_| RemoteError::Origin {
            dir: self.origin.dir().to_owned(),
            what: format!("pointers.json: bad hash {h:?}"),
        })
    }

    fn load_version(&self, hash: ContentHash) -> RemoteResult<Arc<Pinned>> {
        let version = self.origin.version(hash)?;
        let mut pinned = Pinned {
            version,
            hot: HashMap::new(),
        };
        // The hot-set snapshot push chose for this version: served from the map. A record
        // is taken only if it encodes to the very item the manifest names for its id (so a
        // hot set can never serve what the version does not hold).
        if let Some(snap) = pinned.version.hot().cloned() {
            for (id, rec) in snap.iter() {
                let Some(e) = pinned.version.entry(id) else {
                    continue;
                };
                if item::encode_with(id, &rec, false)?.hash == e.hash() {
                    if let Some(r) = RemoteRecord::hot(&snap, id) {
                        pinned.hot.insert(e.hash(), Arc::new(r));
                    }
                }
            }
        }
        if !self.cfg.hot_ids.is_empty() {
            let ids: Vec<&str> = self.cfg.hot_ids.iter().map(String::as_str).collect();
            let recs = self.get_many_in(&pinned, &ids)?;
            for (id, r) in ids.iter().zip(recs) {
                if let (Some(e), Some(r)) = (pinned.version.entry(id), r) {
                    pinned.hot.insert(e.hash(), r);
                }
            }
        }
        Ok(Arc::new(pinned))
    }

    /// The records `ids` of `locale`'s current version, in order (`None`: no such id).
    /// One version is pinned for the whole call.
    pub fn get_many(
        &self,
        locale: &str,
        ids: &[&str],
    ) -> RemoteResult<Vec<Option<Arc<RemoteRecord>>>> {
        let pinned = self.pin(locale)?;
        self.get_many_in(&pinned, ids)
    }

    /// One record (a `get_many` of one id).
    pub fn get(&self, locale: &str, id: &str) -> RemoteResult<Option<Arc<RemoteRecord>>> {
        Ok(self.get_many(locale, &[id])?.pop().flatten())
    }

    /// [`get_many`](Self::get_many) in a version pinned earlier ([`pin`](Self::pin)):
    /// a request that reads several times keeps one version even while a new one is
    /// published. An `Err` only if the origin fails for an id memcached could not give.
    pub fn get_many_in(
        &self,
        pinned: &Pinned,
        ids: &[&str],
    ) -> RemoteResult<Vec<Option<Arc<RemoteRecord>>>> {
        let deadline = Instant::now() + self.cfg.deadline;
        self.stats.requests.fetch_add(1, Ordering::Relaxed);
        self.stats
            .ids
            .fetch_add(ids.len() as u64, Ordering::Relaxed);
        let mut out: Vec<Option<Arc<RemoteRecord>>> = vec![None; ids.len()];
        // (hash, id) -> (whether the manifest names id exactly, positions in `out`)
        let mut wanted: HashMap<(ItemHash, &str), (bool, Vec<usize>)> = HashMap::new();
        for (i, id) in ids.iter().enumerate() {
            let Some(e) = pinned.version.entry(id) else {
                continue;
            };
            let h = e.hash();
            let local = match pinned.hot.get(&h) {
                Some(r) => Some((r.clone(), &self.stats.hot_hits)),
                None => self.cache.get(&h).map(|r| (r, &self.stats.cache_hits)),
            };
            if let Some((r, counter)) = local {
                if r.id() == *id {
                    counter.fetch_add(1, Ordering::Relaxed);
                    out[i] = Some(r);
                    continue;
                }
                if !e.is_exact() {
                    // Another id's item: `id` is not in this version.
                    continue;
                }
                // A verified item of another id under an exact hash: fetch and let the
                // fetch judge it (corrupt, then the origin).
            }
            wanted
                .entry((h, id))
                .or_insert_with(|| (e.is_exact(), Vec::new()))
                .1
                .push(i);
        }
        if wanted.is_empty() {
            return Ok(out);
        }
        let mut leaders = Vec::new();
        let mut followers = Vec::new();
        for ((h, id), (exact, at)) in wanted {
            match self.flights.claim(h) {
                Claim::Leader(l) => leaders.push((l, id, exact, at)),
                Claim::Follower(f) => followers.push((f, h, id, exact, at)),
            }
        }
        // Serves `r` at `at` if it is `id`'s record.
        let serve = |out: &mut Vec<Option<Arc<RemoteRecord>>>,
                     r: &Option<Arc<RemoteRecord>>,
                     id: &str,
                     at: &[usize]| {
            if let Some(r) = r.as_ref().filter(|r| r.id() == id) {
                for &i in at {
                    out[i] = Some(r.clone());
                }
            }
        };
        if !leaders.is_empty() {
            let want: Vec<(ItemHash, &str, bool)> = leaders
                .iter()
                .map(|(l, id, exact, _)| (*l.key(), *id, *exact))
                .collect();
            let got = self.fetch(pinned, &want, deadline);
            for ((leader, id, _, at), r) in leaders.into_iter().zip(got) {
                let r = r?;
                serve(&mut out, &r, id, &at);
                leader.finish(r);
            }
        }
        for (f, h, id, exact, at) in followers {
            let r = match f.wait(deadline) {
                Some(r) if r.id() == id || !exact => {
                    self.stats.flight_waits.fetch_add(1, Ordering::Relaxed);
                    Some(r)
                }
                // The leader failed, is late, or fetched for another id: fetch it here.
                _ => self
                    .fetch(pinned, &[(h, id, exact)], deadline)
                    .pop()
                    .expect("one")?,
            };
            serve(&mut out, &r, id, &at);
        }
        Ok(out)
    }

    /// memcached (with leases), then the origin, for items nobody else is fetching:
    /// `want` holds (hash, id, whether the manifest names the id exactly). Each answer is
    /// the verified item of the hash (of `id`, unless the hash was a candidate), or
    /// `None` if the origin says `id` is not in the version. Caches what it returns.
    fn fetch(
        &self,
        pinned: &Pinned,
        want: &[(ItemHash, &str, bool)],
        deadline: Instant,
    ) -> Vec<Fetched> {
        let keys: Vec<String> = want.iter().map(|(h, _, _)| h.key()).collect();
        let ops: Vec<Op<'_>> = keys
            .iter()
            .map(|k| Op::Get {
                key: k,
                lease: Some(self.cfg.lease_ttl),
                quiet: false,
            })
            .collect();
        let mc_deadline = deadline.min(Instant::now() + self.cluster.config().timeouts.batch);
        let replies = self.cluster.run(&ops, mc_deadline);
        let mut out: Vec<Option<Fetched>> = (0..want.len()).map(|_| None).collect();
        // Positions to read from the origin, with whether to write the item back.
        let mut from_origin: Vec<(usize, bool)> = Vec::new();
        let mut wait: Vec<usize> = Vec::new();
        for (i, r) in replies.into_iter().enumerate() {
            match r {
                Some(Reply::Value { value, .. }) if !value.is_empty() => {
                    self.accept(want[i], &value, i, &mut out, &mut from_origin)
                }
                Some(Reply::Value {
                    win: false,
                    lease_taken: true,
                    ..
                }) => {
                    self.stats.lease_waits.fetch_add(1, Ordering::Relaxed);
                    wait.push(i);
                }
                Some(_) => {
                    // A miss we won the lease for (or an odd reply): fill it.
                    self.stats.memcached_misses.fetch_add(1, Ordering::Relaxed);
                    from_origin.push((i, true));
                }
                None => {
                    // Server down, failed or late: a miss, and nothing to write back to.
                    self.stats.memcached_misses.fetch_add(1, Ordering::Relaxed);
                    from_origin.push((i, false));
                }
            }
        }
        // Fill the leases this process won first: other processes are polling for them.
        self.fill_from_origin(
            pinned,
            want,
            &keys,
            std::mem::take(&mut from_origin),
            &mut out,
            deadline,
        );
        // Lease losers: poll (bounded), then read the origin themselves.
        let wait_until = deadline.min(Instant::now() + self.cfg.lease_wait);
        while !wait.is_empty() {
            std::thread::sleep(self.cfg.lease_poll);
            if Instant::now() >= wait_until {
                from_origin.extend(wait.drain(..).map(|i| (i, false)));
                break;
            }
            let ops: Vec<Op<'_>> = wait
                .iter()
                .map(|&i| Op::Get {
                    key: &keys[i],
                    lease: None,
                    quiet: false,
                })
                .collect();
            let replies = self.cluster.run(&ops, wait_until);
            let mut still = Vec::new();
            for (&i, r) in wait.iter().zip(replies) {
                match r {
                    Some(Reply::Value { value, .. }) if !value.is_empty() => {
                        self.accept(want[i], &value, i, &mut out, &mut from_origin)
                    }
                    Some(Reply::Value { .. }) => still.push(i),
                    // Gone (the winner died and the placeholder expired) or unreachable.
                    _ => from_origin.push((i, false)),
                }
            }
            wait = still;
        }
        self.fill_from_origin(pinned, want, &keys, from_origin, &mut out, deadline);
        let out: Vec<Fetched> = out
            .into_iter()
            .map(|r| r.expect("every position answered"))
            .collect();
        for ((h, _, _), r) in want.iter().zip(&out) {
            if let Ok(Some(rec)) = r {
                self.cache.insert(*h, rec.clone());
            }
        }
        out
    }

    /// Reads `from_origin` (positions in `want`, with whether to write the item back)
    /// from the origin into `out`, then writes back in one batch per server.
    /// A value memcached returned for position `i` (item `hash`): decoded, verified and
    /// counted as a hit, or, if corrupt, never served: queued for the origin, whose copy
    /// is then written over it.
    ///
    /// An item of another id under an exact hash is corrupt too; under a candidate hash
    /// it is answered (the caller serves it for its own id only).
    fn accept(
        &self,
        (hash, id, exact): (ItemHash, &str, bool),
        value: &[u8],
        i: usize,
        out: &mut [Option<Fetched>],
        from_origin: &mut Vec<(usize, bool)>,
    ) {
        match item::decode(hash, value) {
            Ok(rec) if exact && rec.id() != id => {
                self.stats.corrupt.fetch_add(1, Ordering::Relaxed);
                from_origin.push((i, true));
            }
            Ok(rec) => {
                self.stats.memcached_hits.fetch_add(1, Ordering::Relaxed);
                out[i] = Some(Ok(Some(Arc::new(rec))));
            }
            Err(_) => {
                self.stats.corrupt.fetch_add(1, Ordering::Relaxed);
                from_origin.push((i, true));
            }
        }
    }

    fn fill_from_origin(
        &self,
        pinned: &Pinned,
        want: &[(ItemHash, &str, bool)],
        keys: &[String],
        from_origin: Vec<(usize, bool)>,
        out: &mut [Option<Fetched>],
        deadline: Instant,
    ) {
        if !from_origin.is_empty() {
            let mut write_back: Vec<(usize, Option<item::Item>)> = Vec::new();
            for &(i, write) in &from_origin {
                let (h, id, exact) = want[i];
                let r = self.read_origin(pinned, h, id, exact);
                out[i] = Some(r.map(|got| match got {
                    Some((rec, it)) => {
                        if write {
                            write_back.push((i, Some(it)));
                        }
                        Some(rec)
                    }
                    None => {
                        // An unknown id whose slot's item is missing: release the lease
                        // this process won, so others do not wait for a fill.
                        if write {
                            write_back.push((i, None));
                        }
                        None
                    }
                }));
            }
            if !write_back.is_empty() {
                let ops: Vec<Op<'_>> = write_back
                    .iter()
                    .map(|(i, it)| match it {
                        Some(it) => Op::Set {
                            key: &keys[*i],
                            value: &it.bytes,
                            ttl: 0,
                            cas: None,
                            add: false,
                            quiet: true,
                        },
                        None => Op::Delete { key: &keys[*i] },
                    })
                    .collect();
                // Best effort, under the request's memcached deadline.
                let _ = self.cluster.run(
                    &ops,
                    deadline.min(Instant::now() + self.cluster.config().timeouts.batch),
                );
            }
        }
    }

    /// Reads record `id` from the version's tree and checks it is the item `expected`.
    /// `None`: the tree has no `id` and the manifest did not name it exactly (an unknown
    /// id); for an exact one that is an error.
    fn read_origin(
        &self,
        pinned: &Pinned,
        expected: ItemHash,
        id: &str,
        exact: bool,
    ) -> RemoteResult<Option<(Arc<RemoteRecord>, item::Item)>> {
        self.stats.origin_fetches.fetch_add(1, Ordering::Relaxed);
        let tree = self.origin.tree(&pinned.version)?;
        let Some(rec) = tree.get(id) else {
            if !exact {
                return Ok(None);
            }
            return Err(RemoteError::Origin {
                dir: self.origin.dir().to_owned(),
                what: format!("tree {} has no record {id:?}", tree.hash()),
            });
        };
        let it = item::encode(id, &rec)?;
        if it.hash != expected {
            return Err(RemoteError::Origin {
                dir: self.origin.dir().to_owned(),
                what: format!(
                    "record {id:?} of tree {} is not item {expected}",
                    tree.hash()
                ),
            });
        }
        let rec = item::decode(expected, &it.bytes)?;
        Ok(Some((Arc::new(rec), it)))
    }
}
