//! [`Store`]: the in-process registry of loaded snapshots and of which version each locale
//! serves.
//!
//! Readers call [`Store::current`] once per request and keep the returned `Arc` for the
//! whole request: they never block, and they read one consistent version even while a
//! writer publishes another. Publishing swaps one pointer (`arc-swap`); writers are
//! serialized by a mutex that readers never take.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use arc_swap::ArcSwap;

use crate::error::{Error, Result};
use crate::format::ContentHash;
use crate::read::Snapshot;

/// Which snapshot each locale serves: the unit a publish swaps.
type Published = HashMap<String, Arc<Snapshot>>;

/// The in-process registry of loaded snapshots and published versions. `Send + Sync`;
/// share it with an `Arc` (or a `static`).
///
/// ```
/// # fn main() -> fms::Result<()> {
/// let mut b = fms::SnapshotBuilder::new();
/// b.insert("video:1", &serde_json::json!({"title": "Intro"}))?;
/// let store = fms::Store::new("en");
/// let en = store.add(fms::Snapshot::from_bytes(b.to_bytes()?)?);
/// store.publish("en", en.hash())?;
/// // A locale with no tree of its own falls back to the default locale's.
/// let tree = store.current("pt").unwrap();
/// assert_eq!(tree.hash(), en.hash());
/// # Ok(()) }
/// ```
pub struct Store {
    default_locale: String,
    /// Every loaded snapshot, by content hash. Writers only.
    loaded: Mutex<HashMap<ContentHash, Arc<Snapshot>>>,
    /// Locale -> served snapshot. Readers load it without locking.
    published: ArcSwap<Published>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("default_locale", &self.default_locale)
            .field("published", &self.published())
            .field("loaded", &self.loaded_hashes())
            .finish()
    }
}

impl Store {
    /// An empty store whose fallback locale is `default_locale`.
    pub fn new(default_locale: &str) -> Store {
        Store {
            default_locale: default_locale.to_owned(),
            loaded: Mutex::new(HashMap::new()),
            published: ArcSwap::from_pointee(HashMap::new()),
        }
    }

    /// The fallback locale.
    pub fn default_locale(&self) -> &str {
        &self.default_locale
    }

    fn loaded(&self) -> MutexGuard<'_, HashMap<ContentHash, Arc<Snapshot>>> {
        // A panic while holding the lock cannot leave the map half-updated (every update
        // is one insert or one retain), so a poisoned lock is still usable.
        self.loaded.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Maps the snapshot at `path` and registers it by content hash. O(1) (an mmap and a
    /// header check). Loading content that is already loaded returns the loaded copy, so
    /// each version is mapped once.
    pub fn load(&self, path: impl AsRef<Path>) -> Result<Arc<Snapshot>> {
        Ok(self.add(Snapshot::open(path)?))
    }

    /// Registers an already opened snapshot (e.g. from [`Snapshot::from_bytes`]); returns
    /// the registered copy (an earlier one with the same content hash, if any).
    pub fn add(&self, snap: Snapshot) -> Arc<Snapshot> {
        self.loaded()
            .entry(snap.hash())
            .or_insert_with(|| Arc::new(snap))
            .clone()
    }

    /// The loaded snapshot with this hash.
    pub fn get(&self, hash: ContentHash) -> Option<Arc<Snapshot>> {
        self.loaded().get(&hash).cloned()
    }

    /// Makes `locale` serve the loaded snapshot `hash`: one atomic pointer swap. Readers
    /// that already pinned a version keep it; the next [`current`](Self::current) sees the
    /// new one. Errors if no loaded snapshot has this hash.
    pub fn publish(&self, locale: &str, hash: ContentHash) -> Result<()> {
        let loaded = self.loaded();
        let snap = loaded.get(&hash).cloned().ok_or_else(|| {
            Error::InvalidInput(format!(
                "cannot publish {hash} for {locale:?}: no loaded snapshot has that hash"
            ))
        })?;
        // Writers hold `loaded`, so this read-modify-write cannot race another publish.
        let mut next: Published = (**self.published.load()).clone();
        next.insert(locale.to_owned(), snap);
        self.published.store(Arc::new(next));
        Ok(())
    }

    /// Stops serving `locale` (it falls back to the default locale again). Returns whether
    /// it had a version.
    pub fn unpublish(&self, locale: &str) -> bool {
        let _writer = self.loaded();
        let mut next: Published = (**self.published.load()).clone();
        let had = next.remove(locale).is_some();
        self.published.store(Arc::new(next));
        had
    }

    /// The snapshot `locale` serves, or the default locale's if `locale` has none; `None`
    /// if neither is published. Lock-free; pin the result for the whole request.
    pub fn current(&self, locale: &str) -> Option<Arc<Snapshot>> {
        let published = self.published.load();
        published
            .get(locale)
            .or_else(|| published.get(&self.default_locale))
            .cloned()
    }

    /// Locale -> hash of the snapshot it serves.
    pub fn published(&self) -> BTreeMap<String, ContentHash> {
        self.published
            .load()
            .iter()
            .map(|(l, s)| (l.clone(), s.hash()))
            .collect()
    }

    /// Hashes of every loaded snapshot, sorted.
    pub fn loaded_hashes(&self) -> Vec<ContentHash> {
        let mut v: Vec<_> = self.loaded().keys().copied().collect();
        v.sort();
        v
    }

    /// Drops every loaded snapshot that no locale serves; returns how many. A reader that
    /// still holds an `Arc` to one keeps it mapped until it lets go.
    pub fn evict_unpublished(&self) -> usize {
        let mut loaded = self.loaded();
        let published = self.published.load();
        let before = loaded.len();
        loaded.retain(|hash, _| published.values().any(|s| s.hash() == *hash));
        before - loaded.len()
    }
}
