//! Publishing an origin directory to memcached: every record of every published tree as
//! an item under its content hash (each distinct item once, and only if memcached lacks
//! it), a record manifest per locale written into the origin, then the version pointers
//! flipped with CAS.
//!
//! [`prepare`] does everything but the flip and reads the pointers it will flip;
//! [`Prepared::publish`] flips them. Between the two another publisher may win: then this
//! one gets [`RemoteError::StalePublisher`] and changes nothing it has not already flipped.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::client::{Op, Reply};
use super::error::{RemoteError, RemoteResult};
use super::item::{self, Item, ItemHash};
use super::manifest::{self, Entry, ManifestView};
use super::origin::{Origin, Pointers, VersionInfo};
use super::pointer;
use super::pool::{Cluster, Route};
use crate::{ContentHash, Manifest, Snapshot, SnapshotBuilder, Store};

/// How many overlay levels a default locale's record manifest may stack over earlier
/// versions before push writes it in full again.
pub const MAX_MANIFEST_CHAIN: u32 = 4;

/// Knobs of a push.
#[derive(Clone, Debug)]
pub struct PushOptions {
    /// The largest item accepted (memcached's default item limit is 1 MiB, which includes
    /// the key and item header). A larger record is an error naming it.
    pub item_limit: usize,
    /// Items per pipelined batch.
    pub batch: usize,
    /// Deadline of one batch.
    pub batch_timeout: Duration,
    /// The hot set: ids every reader keeps in process (e.g. [`super::choose_hot`] of an
    /// access log). Each pushed version gets a snapshot of its tree's records among them
    /// (`DIR/remote/<hash>.fms`, named in its `VersionInfo::hot`); empty: none.
    pub hot_ids: Vec<String>,
    /// Store items zstd-compressed (when smaller): ~0.6× the bytes in memcached on the
    /// corpus, for ~6 µs more per item read (BENCHMARKS.md, "Remote tier"). Default true.
    pub compress_items: bool,
}

impl Default for PushOptions {
    fn default() -> PushOptions {
        PushOptions {
            item_limit: (1 << 20) - 1024,
            batch: 256,
            batch_timeout: Duration::from_secs(5),
            hot_ids: Vec::new(),
            compress_items: true,
        }
    }
}

/// What one locale's push did.
#[derive(Clone, Debug)]
pub struct LocaleReport {
    /// The locale.
    pub locale: String,
    /// Its new manifest's hash.
    pub manifest: ContentHash,
    /// The manifest file's size.
    pub manifest_bytes: u64,
    /// Whether the manifest is an overlay (a locale's over the default locale's, the
    /// default locale's over its previous version).
    pub overlay: bool,
    /// Records in its tree.
    pub records: u64,
    /// The pointer before (None: absent).
    pub previous: Option<ContentHash>,
}

/// What a push did, in numbers.
#[derive(Clone, Debug, Default)]
pub struct PushReport {
    /// Per locale, default first.
    pub locales: Vec<LocaleReport>,
    /// Records over all trees.
    pub records: u64,
    /// Distinct items among them.
    pub unique_items: u64,
    /// Bytes of the distinct items this push encoded (items of unchanged trees are
    /// known by hash from their published manifest, and encoded only if memcached lost
    /// them).
    pub unique_item_bytes: u64,
    /// Distinct items memcached already held.
    pub items_present: u64,
    /// Items sent.
    pub items_sent: u64,
    /// Bytes of the items sent (values only).
    pub bytes_sent: u64,
    /// Pointers flipped.
    pub pointers_flipped: u64,
}

/// A push ready to flip its pointers.
#[derive(Debug)]
pub struct Prepared<'c> {
    cluster: &'c Cluster,
    origin: Origin,
    opts: PushOptions,
    seen: BTreeMap<String, pointer::Read>,
    pointers: Pointers,
    report: PushReport,
}

/// [`prepare`] then [`Prepared::publish`].
pub fn push(dir: &Path, cluster: &Cluster, opts: &PushOptions) -> RemoteResult<PushReport> {
    prepare(dir, cluster, opts)?.publish()
}

/// Reads the pointers, ships every missing item and writes the record manifests into
/// `dir/remote/`. Nothing a reader follows changes until [`Prepared::publish`].
pub fn prepare<'c>(
    dir: &Path,
    cluster: &'c Cluster,
    opts: &PushOptions,
) -> RemoteResult<Prepared<'c>> {
    let origin = Origin::new(dir);
    let manifest = Manifest::read(dir.join("manifest.json"))?;
    let store = Store::new(&manifest.default_locale);
    let files: Vec<PathBuf> = manifest
        .locales
        .values()
        .chain(&manifest.bases)
        .cloned()
        .collect();
    let snaps = store.load_all(files.iter().map(|f| dir.join(f)))?;
    let path_of: HashMap<ContentHash, PathBuf> = snaps
        .iter()
        .zip(&files)
        .map(|(s, f)| (s.hash(), f.clone()))
        .collect();
    let default = manifest.default_locale.clone();
    let mut locales: Vec<(String, Arc<Snapshot>)> = Vec::new();
    for ((locale, _), snap) in manifest.locales.iter().zip(&snaps) {
        locales.push((locale.clone(), snap.clone()));
    }
    locales.sort_by_key(|(l, _)| *l != default);
    if locales.first().map(|(l, _)| l != &default).unwrap_or(true) {
        return Err(RemoteError::Origin {
            dir: dir.to_owned(),
            what: format!("manifest.json publishes no tree for the default locale {default:?}"),
        });
    }

    // The pointers, with their CAS, before anything else: a publisher that started later
    // and flips first makes this one stale.
    let deadline = || Instant::now() + opts.batch_timeout;
    let mut seen = BTreeMap::new();
    for (locale, _) in &locales {
        seen.insert(locale.clone(), pointer::read(cluster, locale, deadline())?);
    }

    let mut shipper = Shipper {
        cluster,
        opts,
        sent: HashMap::new(),
        pending: Vec::new(),
        report: PushReport::default(),
    };
    std::fs::create_dir_all(dir.join(super::origin::REMOTE_DIR)).map_err(|e| crate::Error::Io {
        path: dir.join(super::origin::REMOTE_DIR),
        source: e,
    })?;
    let mut pointers = Pointers {
        default_locale: default.clone(),
        locales: BTreeMap::new(),
    };
    // The default locale's previous manifest (if this origin wrote it): the new one is
    // an overlay over it, so a content update writes only what changed. Past
    // MAX_MANIFEST_CHAIN levels it is written in full again (overlays stack at most 8
    // deep, and each locale's manifest adds one level).
    //
    // Any locale whose tree is the one its published version was pushed from keeps that
    // version's manifest: no rewrite, no pointer flip (a content update of the default
    // tree does not re-base the locales' manifests).
    let previous_of = |locale: &str| match seen.get(locale) {
        Some(pointer::Read::Found { hash, .. }) => origin.version(*hash).ok(),
        _ => None,
    };
    let previous = previous_of(&default);
    // The default locale's new manifest and tree: the base of the other locales'.
    let mut default_manifest: Option<(Arc<ManifestView>, Arc<Snapshot>)> = None;
    let mut by_tree: HashMap<ContentHash, (Arc<ManifestView>, u64)> = HashMap::new();
    // Tree hash -> its hot-set snapshot's hash.
    let mut hot_of: HashMap<ContentHash, String> = HashMap::new();
    for (locale, tree) in &locales {
        pointer::key(locale)?;
        let chain = tree_chain(tree, &path_of, dir)?;
        let is_default = default_manifest.is_none();
        let own_previous = if is_default {
            previous.clone()
        } else {
            previous_of(locale)
        };
        let (view, mbytes) = match by_tree.get(&tree.hash()) {
            Some(done) => done.clone(),
            None => {
                let unchanged = own_previous
                    .as_ref()
                    .is_some_and(|v| v.info().tree == tree.hash().to_string());
                let done = if unchanged {
                    // The published manifest already names every item: check memcached
                    // for them by hash, and encode only those it lost. Same tree as the
                    // version published: keep its manifest (a rebuilt one would be a new
                    // version with the same content).
                    let v = own_previous.as_ref().expect("checked");
                    for id in tree.ids() {
                        let hash = v.entry(id).ok_or_else(|| RemoteError::Origin {
                            dir: dir.to_owned(),
                            what: format!("manifest {} lacks {id:?} of its tree", v.hash()),
                        })?;
                        shipper.add_lazy(hash.hash(), id, tree)?;
                    }
                    let view = v.manifest().clone();
                    let n = view.top().as_bytes().len() as u64;
                    (view, n)
                } else {
                    let mut items: Vec<(&str, ItemHash)> = Vec::with_capacity(tree.len());
                    for (id, rec) in tree.iter() {
                        if manifest::is_reserved(id) {
                            return Err(RemoteError::Fms(crate::Error::InvalidInput(format!(
                                "tree of {locale:?}: id {id:?} starts with \\0m, reserved for record manifests"
                            ))));
                        }
                        let it = encode_checked(id, &rec, opts)?;
                        items.push((id, it.hash));
                        shipper.add(it)?;
                    }
                    // The base: the default locale's previous version (if its tree is
                    // still at hand and the chain is short enough), or, for another
                    // locale, the default locale's new manifest.
                    let base: Option<(Arc<ManifestView>, Arc<Snapshot>)> = if is_default {
                        previous
                            .as_ref()
                            .filter(|v| v.manifest().top().depth() < MAX_MANIFEST_CHAIN)
                            .and_then(|v| Some((v.manifest().clone(), origin.tree(v).ok()?)))
                    } else {
                        default_manifest.clone()
                    };
                    let bytes = build_manifest(&items, base.as_ref().map(|(v, t)| (&**v, &**t)))
                        .map_err(|e| match e {
                            RemoteError::Fms(crate::Error::InvalidInput(w)) => RemoteError::Fms(
                                crate::Error::InvalidInput(format!("manifest of {locale:?}: {w}")),
                            ),
                            e => e,
                        })?;
                    let snap = match &base {
                        None => Snapshot::from_bytes(bytes.clone())?,
                        Some((v, _)) => {
                            Snapshot::overlay_from_bytes(bytes.clone(), v.top().clone())?
                        }
                    };
                    let path = origin.manifest_path(snap.hash());
                    crate::write_file_atomically(&path, |w| {
                        w.write_all(&bytes).map_err(|e| crate::Error::Io {
                            path: path.clone(),
                            source: e,
                        })
                    })?;
                    let view = ManifestView::open(Arc::new(snap), &path.display().to_string())?;
                    (Arc::new(view), bytes.len() as u64)
                };
                shipper.report.records += tree.len() as u64;
                by_tree.insert(tree.hash(), done.clone());
                done
            }
        };
        let snap = view.top().clone();
        if is_default {
            default_manifest = Some((view.clone(), tree.clone()));
        }
        let mhash = snap.hash();
        let overlay = snap.is_overlay();
        // The manifest chain, base first.
        let mut manifests = Vec::new();
        let mut cur = Some(&snap);
        while let Some(s) = cur {
            manifests.push(s.hash().to_string());
            cur = s.base();
        }
        manifests.reverse();
        // A version kept as published keeps its hot set too (its files never change); a
        // new hot list applies to the versions pushed from now on.
        let kept = own_previous.as_ref().filter(|v| v.hash() == mhash);
        let hot = if let Some(v) = kept {
            v.info().hot.clone()
        } else if opts.hot_ids.is_empty() {
            None
        } else if let Some(h) = hot_of.get(&tree.hash()) {
            Some(h.clone())
        } else {
            let bytes = super::hot::build_hot(tree, &opts.hot_ids)?;
            let hash = Snapshot::from_bytes(bytes.clone())?.hash();
            let path = origin.manifest_path(hash);
            crate::write_file_atomically(&path, |w| {
                w.write_all(&bytes).map_err(|e| crate::Error::Io {
                    path: path.clone(),
                    source: e,
                })
            })?;
            hot_of.insert(tree.hash(), hash.to_string());
            Some(hash.to_string())
        };
        origin.write_info(
            mhash,
            &VersionInfo {
                locale: locale.clone(),
                manifests,
                trees: chain,
                tree: tree.hash().to_string(),
                records: tree.len() as u64,
                hot,
            },
        )?;
        pointers.locales.insert(locale.clone(), mhash.to_string());
        shipper.report.locales.push(LocaleReport {
            locale: locale.clone(),
            manifest: mhash,
            manifest_bytes: mbytes,
            overlay,
            records: tree.len() as u64,
            previous: match &seen[locale] {
                pointer::Read::Found { hash, .. } => Some(*hash),
                pointer::Read::Absent => None,
            },
        });
    }
    shipper.flush()?;
    Ok(Prepared {
        cluster,
        origin,
        opts: opts.clone(),
        seen,
        pointers,
        report: shipper.report,
    })
}

impl Prepared<'_> {
    /// The numbers so far (items shipped, manifests written).
    pub fn report(&self) -> &PushReport {
        &self.report
    }

    /// Flips every locale's pointer with CAS, then writes the durable pointers. A
    /// pointer that moved since [`prepare`] read it is [`RemoteError::StalePublisher`].
    pub fn publish(mut self) -> RemoteResult<PushReport> {
        for (locale, hash) in &self.pointers.locales {
            let new: ContentHash = hash.parse().expect("written by prepare");
            let seen = &self.seen[locale];
            if matches!(seen, pointer::Read::Found { hash, .. } if *hash == new) {
                continue;
            }
            pointer::flip(
                self.cluster,
                locale,
                seen,
                new,
                Instant::now() + self.opts.batch_timeout,
            )?;
            self.report.pointers_flipped += 1;
        }
        self.origin.write_pointers(&self.pointers)?;
        Ok(self.report)
    }
}

/// The tree files of `tree`'s chain, base first, relative to the origin.
fn tree_chain(
    tree: &Arc<Snapshot>,
    path_of: &HashMap<ContentHash, PathBuf>,
    dir: &Path,
) -> RemoteResult<Vec<PathBuf>> {
    let mut chain = Vec::new();
    let mut cur = Some(tree);
    while let Some(s) = cur {
        let p = path_of.get(&s.hash()).ok_or_else(|| RemoteError::Origin {
            dir: dir.to_owned(),
            what: format!(
                "snapshot {} (a base) is not listed in manifest.json's locales or bases",
                s.hash()
            ),
        })?;
        chain.push(p.clone());
        cur = s.base();
    }
    chain.reverse();
    Ok(chain)
}

/// The bytes of the record manifest of a tree whose ids have `items` (in tree order):
/// in full (a perfect hash function and a slot per id, no ids), or as an overlay over
/// `base` (its manifest and the tree it describes): changed slots in a bitset, added ids
/// as exact records, removed ids as tombstones (see [`super::manifest`]).
fn build_manifest(
    items: &[(&str, ItemHash)],
    base: Option<(&ManifestView, &Snapshot)>,
) -> RemoteResult<Vec<u8>> {
    let Some((view, base_tree)) = base else {
        let root = manifest::root_record(items)
            .map_err(|e| RemoteError::Fms(crate::Error::InvalidInput(e.to_string())))?;
        let mut b = SnapshotBuilder::new();
        b.insert(&manifest::level_id(0), &root)?;
        return Ok(b.to_bytes()?);
    };
    let mut b = SnapshotBuilder::with_base(view.top());
    let mut changed: BTreeMap<usize, ItemHash> = BTreeMap::new();
    for &(id, h) in items {
        if !base_tree.contains(id) {
            b.insert(id, &manifest::exact_record(h))?;
            continue;
        }
        match view.lookup(id) {
            Some(e) if e.hash() == h => {}
            Some(Entry::Exact(_)) => b.insert(id, &manifest::exact_record(h))?,
            Some(Entry::Mapped(_)) => {
                let s = view.slot(id).expect("a mapped id has a slot");
                changed.insert(s, h);
            }
            None => {
                return Err(RemoteError::Fms(crate::Error::InvalidInput(format!(
                    "the base manifest lacks {id:?} of its tree {}",
                    base_tree.hash()
                ))));
            }
        }
    }
    let ids: HashSet<&str> = items.iter().map(|(id, _)| *id).collect();
    for id in base_tree.ids() {
        if !ids.contains(id) {
            b.insert(id, &manifest::tombstone())?;
        }
    }
    b.insert(
        &manifest::level_id(view.top().depth() + 1),
        &manifest::level_record(view.params().m, &changed),
    )?;
    Ok(b.to_bytes()?)
}

/// Encodes a record as an item, refusing one over the item limit.
fn encode_checked(id: &str, rec: &crate::Record<'_>, opts: &PushOptions) -> RemoteResult<Item> {
    let it = item::encode_with(id, rec, opts.compress_items)?;
    if it.bytes.len() > opts.item_limit {
        return Err(RemoteError::TooLarge {
            id: id.to_owned(),
            bytes: it.bytes.len(),
            limit: opts.item_limit,
        });
    }
    Ok(it)
}

/// An item to make sure memcached has: encoded already, or known by hash and encoded
/// from its tree only if memcached lacks it.
enum Pending {
    Encoded(Item),
    Lazy {
        hash: ItemHash,
        id: String,
        tree: Arc<Snapshot>,
    },
}

impl Pending {
    fn hash(&self) -> ItemHash {
        match self {
            Pending::Encoded(it) => it.hash,
            Pending::Lazy { hash, .. } => *hash,
        }
    }
}

/// Sends distinct items in batches: an existence check, then the missing ones.
struct Shipper<'a> {
    cluster: &'a Cluster,
    opts: &'a PushOptions,
    /// Item hash -> the full content hash (if encoded): two items of one 56-bit hash are
    /// refused.
    sent: HashMap<ItemHash, Option<u128>>,
    pending: Vec<Pending>,
    report: PushReport,
}

impl Shipper<'_> {
    fn add(&mut self, it: Item) -> RemoteResult<()> {
        match self.sent.insert(it.hash, Some(it.content)) {
            None => {}
            Some(c) if c.is_none_or(|c| c == it.content) => return Ok(()),
            Some(_) => {
                return Err(RemoteError::Fms(crate::Error::InvalidInput(format!(
                    "two different items share the 56-bit item hash {} (a 2^-56 collision): \
                     change either record to publish",
                    it.hash
                ))));
            }
        }
        self.report.unique_items += 1;
        self.report.unique_item_bytes += it.bytes.len() as u64;
        self.push(Pending::Encoded(it))
    }

    fn add_lazy(&mut self, hash: ItemHash, id: &str, tree: &Arc<Snapshot>) -> RemoteResult<()> {
        if self.sent.contains_key(&hash) {
            return Ok(());
        }
        self.sent.insert(hash, None);
        self.report.unique_items += 1;
        self.push(Pending::Lazy {
            hash,
            id: id.to_owned(),
            tree: tree.clone(),
        })
    }

    fn push(&mut self, p: Pending) -> RemoteResult<()> {
        self.pending.push(p);
        if self.pending.len() >= self.opts.batch {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> RemoteResult<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let pending = std::mem::take(&mut self.pending);
        let keys: Vec<String> = pending.iter().map(|p| p.hash().key()).collect();
        for k in &keys {
            if let Route::Nowhere = self.cluster.route(k) {
                return Err(RemoteError::Unavailable {
                    addr: "(its server and the gutter)".into(),
                    what: format!("no server up for {k}"),
                });
            }
        }
        let ops: Vec<Op<'_>> = keys.iter().map(|k| Op::Exists { key: k }).collect();
        let replies = self
            .cluster
            .run(&ops, Instant::now() + self.opts.batch_timeout);
        let mut missing = Vec::new();
        for (i, r) in replies.into_iter().enumerate() {
            match r {
                Some(Reply::Hit { .. }) => self.report.items_present += 1,
                Some(_) => missing.push(i),
                None => return Err(unavailable(self.cluster, &keys[i])),
            }
        }
        // The bytes of what memcached lacks; items known only by hash are encoded from
        // their tree now, and must still have that hash.
        let mut bytes: Vec<Vec<u8>> = Vec::with_capacity(missing.len());
        for &i in &missing {
            match &pending[i] {
                Pending::Encoded(it) => bytes.push(it.bytes.clone()),
                Pending::Lazy { hash, id, tree } => {
                    let rec = tree.get(id).ok_or_else(|| {
                        RemoteError::Fms(crate::Error::UnknownId { id: id.clone() })
                    })?;
                    let it = encode_checked(id, &rec, self.opts)?;
                    if it.hash != *hash {
                        return Err(RemoteError::Fms(crate::Error::InvalidInput(format!(
                            "record {id:?} of tree {} is item {}, but its published manifest says {hash}",
                            tree.hash(),
                            it.hash
                        ))));
                    }
                    self.report.unique_item_bytes += it.bytes.len() as u64;
                    bytes.push(it.bytes);
                }
            }
        }
        let ops: Vec<Op<'_>> = missing
            .iter()
            .zip(&bytes)
            .map(|(&i, b)| Op::Set {
                key: &keys[i],
                value: b,
                ttl: 0,
                cas: None,
                add: false,
                quiet: true,
            })
            .collect();
        let replies = self
            .cluster
            .run(&ops, Instant::now() + self.opts.batch_timeout);
        for ((r, &i), b) in replies.into_iter().zip(&missing).zip(&bytes) {
            match r {
                Some(Reply::Done) => {
                    self.report.items_sent += 1;
                    self.report.bytes_sent += b.len() as u64;
                }
                Some(other) => {
                    return Err(RemoteError::Protocol {
                        addr: String::new(),
                        what: format!("storing {}: {other:?}", keys[i]),
                    });
                }
                None => return Err(unavailable(self.cluster, &keys[i])),
            }
        }
        Ok(())
    }
}

fn unavailable(cluster: &Cluster, key: &str) -> RemoteError {
    let addr = match cluster.route(key) {
        Route::Primary(i) => cluster.primaries()[i].addr().to_owned(),
        Route::Gutter(i) => cluster.gutters()[i].addr().to_owned(),
        Route::Nowhere => "(no server up)".into(),
    };
    RemoteError::Unavailable {
        addr,
        what: format!("could not store {key}"),
    }
}
