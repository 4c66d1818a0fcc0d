//! [`Store`]: the in-process registry of loaded snapshots and of which version each locale
//! serves.
//!
//! Readers call [`Store::current`] once per request and keep the returned `Arc` for the
//! whole request: they never block, and they read one consistent version even while a
//! writer publishes another. Publishing swaps one pointer (`arc-swap`); writers are
//! serialized by a mutex that readers never take.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use arc_swap::ArcSwap;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::format::ContentHash;
use crate::read::Snapshot;

/// Which snapshot each locale serves: the unit a publish swaps.
type Published = HashMap<String, Arc<Snapshot>>;

/// The in-process registry of loaded snapshots and published versions. `Send + Sync`;
/// share it with an `Arc` (or a `static`).
///
/// Snapshots are identified by content hash: loading the same content twice maps it
/// once. An overlay is loaded over its base, which must be loaded first (or in the same
/// [`load_all`](Self::load_all) call).
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
///
/// // A locale overlay: only what differs from the default tree.
/// let mut o = fms::SnapshotBuilder::with_base(&en);
/// o.insert("video:1", &serde_json::json!({"title": "Introdução"}))?;
/// let pt = store.add(fms::Snapshot::overlay_from_bytes(o.to_bytes()?, en.clone())?);
/// store.publish("pt", pt.hash())?;
/// let tree = store.current("pt").unwrap();
/// assert_eq!(tree.get("video:1").unwrap().get("title").unwrap().to_str().as_deref(), Some("Introdução"));
/// # Ok(()) }
/// ```
pub struct Store {
    default_locale: String,
    /// Every loaded snapshot, by content hash. Writers only.
    loaded: Mutex<HashMap<ContentHash, Arc<Snapshot>>>,
    /// Locale -> served snapshot. Readers load it without locking.
    published: ArcSwap<Published>,
    /// Serializes whole reloads (manifest read to publish).
    reloading: Mutex<()>,
    /// How `load`, `load_all` and `reload` bring files in.
    loading: Loading,
}

/// How a [`Store`] brings snapshot files into memory: set with [`Store::with_loading`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Loading {
    /// Map each file ([`Snapshot::open`]): O(1) per file, pages shared with the page cache
    /// and with every process mapping the same file. The files must stay put while
    /// loaded: a file truncated or written in place under the map makes reads fault
    /// (`SIGBUS`) or see unchecked bytes. Replacing files by rename, as fms writes them, is
    /// safe.
    #[default]
    Mmap,
    /// Read each file into memory ([`Snapshot::open_in_memory`]): O(file size) time and
    /// heap per file, and nothing that happens to the file afterwards matters. For files
    /// on volumes other processes may rewrite in place.
    Memory,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("default_locale", &self.default_locale)
            .field("loading", &self.loading)
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
            reloading: Mutex::new(()),
            loading: Loading::Mmap,
        }
    }

    /// This store, bringing the files that [`load`](Self::load), [`load_all`](Self::load_all)
    /// and [`reload`](Self::reload) name into memory the way `loading` says (the default is
    /// [`Loading::Mmap`]). O(1).
    ///
    /// ```
    /// # fn main() -> fms::Result<()> {
    /// let dir = tempfile::tempdir().unwrap();
    /// let mut b = fms::SnapshotBuilder::new();
    /// b.insert("video:1", &serde_json::json!({"title": "Intro"}))?;
    /// b.write_to_path(dir.path().join("en.fms"))?;
    /// fms::Manifest::new("en").locale("en", "en.fms").write(dir.path().join("manifest.json"))?;
    ///
    /// // The files live on a volume that a sync job rewrites in place: read them instead.
    /// let store = fms::Store::new("en").with_loading(fms::Loading::Memory);
    /// store.reload(dir.path().join("manifest.json"))?;
    /// std::fs::write(dir.path().join("en.fms"), b"").unwrap(); // truncated: no matter
    /// assert!(store.current("en").unwrap().contains("video:1"));
    /// # Ok(()) }
    /// ```
    pub fn with_loading(mut self, loading: Loading) -> Store {
        self.loading = loading;
        self
    }

    /// How this store brings files in ([`Store::with_loading`]).
    pub fn loading(&self) -> Loading {
        self.loading
    }

    /// A store set up from a manifest file ([`Manifest`]): every file it names loaded,
    /// every locale published. One call for a server to start. The files are mapped
    /// ([`Loading::Mmap`]); to read them into memory instead, use
    /// `Store::new(..).with_loading(Loading::Memory)` and [`reload`](Self::reload).
    ///
    /// ```
    /// # fn main() -> fms::Result<()> {
    /// let dir = tempfile::tempdir().unwrap();
    /// let mut b = fms::SnapshotBuilder::new();
    /// b.insert("video:1", &serde_json::json!({"title": "Intro"}))?;
    /// b.write_to_path(dir.path().join("en.fms"))?;
    /// let manifest = fms::Manifest::new("en").locale("en", "en.fms");
    /// manifest.write(dir.path().join("manifest.json"))?;   // atomic
    ///
    /// let store = fms::Store::open_manifest(dir.path().join("manifest.json"))?;
    /// assert!(store.current("es").unwrap().contains("video:1"));
    /// # Ok(()) }
    /// ```
    pub fn open_manifest(path: impl AsRef<Path>) -> Result<Store> {
        let manifest = Manifest::read(path.as_ref())?;
        let store = Store::new(&manifest.default_locale);
        store.reload(path)?;
        Ok(store)
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
    /// each version is mapped once. An overlay's base must already be loaded
    /// ([`Error::MissingBase`] names the hash it needs otherwise).
    ///
    /// A mapped file must stay put while loaded (see [`Snapshot::open`]): truncated under
    /// the map, it makes reads kill the process with `SIGBUS`. Files replaced by rename are
    /// safe. For files that may be rewritten in place, use
    /// [`with_loading`](Self::with_loading)`(`[`Loading::Memory`]`)`: each file is then read
    /// into memory, O(file size).
    pub fn load(&self, path: impl AsRef<Path>) -> Result<Arc<Snapshot>> {
        let mut all = self.load_all([path.as_ref()])?;
        Ok(all.remove(0))
    }

    /// Loads several files at once, in any order: an overlay may name a base that is
    /// loaded already or that is among `paths`. Either every file is loaded, or (on an
    /// error, which names the file) none is registered. Returns them in `paths` order.
    pub fn load_all<P: AsRef<Path>>(
        &self,
        paths: impl IntoIterator<Item = P>,
    ) -> Result<Vec<Arc<Snapshot>>> {
        let pending = peek_all(paths, self.loading)?;
        let mut loaded = self.loaded();
        assemble_into(&mut loaded, pending)
    }

    /// Registers an already opened snapshot (e.g. from [`Snapshot::from_bytes`]); returns
    /// the registered copy (an earlier one with the same content hash, if any). An
    /// overlay's base chain is registered with it.
    pub fn add(&self, snap: Snapshot) -> Arc<Snapshot> {
        let mut loaded = self.loaded();
        let mut base = snap.base().cloned();
        while let Some(b) = base {
            base = b.base().cloned();
            loaded.entry(b.hash()).or_insert(b);
        }
        loaded
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
        let snap = loaded
            .get(&hash)
            .cloned()
            .ok_or(Error::NotLoaded { hash })?;
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

    /// The snapshot `locale` serves itself: no fallback to the default locale (what
    /// [`current`](Self::current) does). Lock-free. For a server that answers "unknown
    /// locale" for locales without a tree of their own.
    pub fn current_exact(&self, locale: &str) -> Option<Arc<Snapshot>> {
        self.published.load().get(locale).cloned()
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

    /// Drops every loaded snapshot that no locale serves and that no served overlay needs
    /// as a base; returns how many. A reader that still holds an `Arc` to one keeps it
    /// mapped until it lets go.
    pub fn evict_unpublished(&self) -> usize {
        let mut loaded = self.loaded();
        let published = self.published.load();
        let mut keep = std::collections::HashSet::new();
        for s in published.values() {
            let mut cur = Some(s);
            while let Some(c) = cur {
                keep.insert(c.hash());
                cur = c.base();
            }
        }
        let before = loaded.len();
        loaded.retain(|hash, _| keep.contains(hash));
        before - loaded.len()
    }

    /// Loads the manifest at `path` and serves exactly what it says, in one atomic swap:
    /// every locale it lists switches to its file's snapshot, locales it does not list
    /// stop being served. Content already loaded is not loaded again (each file is mapped,
    /// or read under [`Loading::Memory`], to read its header; a copy already registered is
    /// served and the new bytes dropped).
    ///
    /// All or nothing: if the manifest or any file it names cannot be read, the error
    /// says which, and the store serves what it served before. Snapshots that nothing
    /// serves any more stay loaded until [`evict_unpublished`](Self::evict_unpublished).
    ///
    /// Errors too if the manifest's default locale is not this store's.
    pub fn reload(&self, path: impl AsRef<Path>) -> Result<BTreeMap<String, ContentHash>> {
        // One reload at a time, so that a manifest read earlier is never published after
        // one read later.
        let _reloading = self.reloading.lock().unwrap_or_else(|e| e.into_inner());
        let path = path.as_ref();
        let manifest = Manifest::read(path)?;
        if manifest.default_locale != self.default_locale {
            return Err(Error::Manifest {
                path: path.to_owned(),
                what: format!(
                    "default locale {:?}, but the store's is {:?}",
                    manifest.default_locale, self.default_locale
                ),
                source: None,
            });
        }
        let dir = path.parent().unwrap_or(Path::new("."));
        let files = manifest
            .locales
            .values()
            .chain(&manifest.bases)
            .map(|f| confined(path, dir, f))
            .collect::<Result<Vec<PathBuf>>>()?;
        let pending = peek_all(&files, self.loading)?;
        // Registering and publishing under one hold of the writers' lock: an eviction
        // cannot drop what this reload is about to serve.
        let mut loaded = self.loaded();
        let snaps = assemble_into(&mut loaded, pending)?;
        let next: Published = manifest.locales.keys().cloned().zip(snaps).collect();
        let served = next.iter().map(|(l, s)| (l.clone(), s.hash())).collect();
        self.published.store(Arc::new(next));
        Ok(served)
    }
}

/// The file that manifest entry `entry` names, kept inside the manifest's directory `dir`:
/// a manifest (which may come from a deploy pipeline or another host) must never make the
/// store open a file elsewhere. Rejects absolute entries and `..` lexically, then resolves
/// symlinks and checks again; returns the resolved path, which is what gets opened. An
/// entry that does not exist is returned as joined (opening it fails, naming it).
fn confined(manifest: &Path, dir: &Path, entry: &Path) -> Result<PathBuf> {
    use std::path::Component;
    let outside = || Error::Manifest {
        path: manifest.to_owned(),
        what: format!(
            "{entry:?} is outside the manifest's directory (entries must be relative paths \
             below it, without `..`)"
        ),
        source: None,
    };
    if entry.as_os_str().is_empty()
        || !entry
            .components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
    {
        return Err(outside());
    }
    let joined = dir.join(entry);
    let here = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let (Ok(real_dir), Ok(real)) = (here.canonicalize(), joined.canonicalize()) else {
        return Ok(joined);
    };
    if real.starts_with(&real_dir) {
        Ok(real)
    } else {
        Err(outside())
    }
}

/// A mapped (or read) file whose header was read: `(position, path, bytes, hash, base
/// hash)`.
type Pending = (
    usize,
    PathBuf,
    Box<dyn AsRef<[u8]> + Send + Sync>,
    ContentHash,
    Option<ContentHash>,
);

/// Maps (or reads) every file and reads its identity (no lock held: this is the part that
/// does I/O).
fn peek_all<P: AsRef<Path>>(
    paths: impl IntoIterator<Item = P>,
    loading: Loading,
) -> Result<Vec<Pending>> {
    let mut pending = Vec::new();
    for (i, p) in paths.into_iter().enumerate() {
        let p = p.as_ref().to_path_buf();
        let in_memory = loading == Loading::Memory;
        let (map, hash, base) = Snapshot::peek(&p, in_memory).map_err(|e| e.in_file(&p))?;
        pending.push((i, p, map, hash, base));
    }
    Ok(pending)
}

/// Opens the `pending` files over bases among `loaded` or among themselves, in any order,
/// and registers them in `loaded`: all of them, or (on an error, which names the file)
/// none. Content already in `loaded` is not opened again: its registered copy is returned
/// (the extra map of the file is dropped). O(1) per file (header checks); callers hold the
/// writers' lock, so what is registered is exactly what bases and publishes see.
fn assemble_into(
    loaded: &mut HashMap<ContentHash, Arc<Snapshot>>,
    mut pending: Vec<Pending>,
) -> Result<Vec<Arc<Snapshot>>> {
    let mut out: Vec<Option<Arc<Snapshot>>> = vec![None; pending.len()];
    let mut fresh: HashMap<ContentHash, Arc<Snapshot>> = HashMap::new();
    // Each round opens every file whose base is available; a round without progress
    // leaves only files whose base is nowhere.
    while !pending.is_empty() {
        let before = pending.len();
        let mut rest = Vec::new();
        for (i, p, map, hash, base) in pending {
            let known = |h: &ContentHash| loaded.get(h).or_else(|| fresh.get(h)).cloned();
            if let Some(s) = known(&hash) {
                out[i] = Some(s);
                continue;
            }
            let found = base.map(|b| known(&b));
            if let Some(None) = found {
                rest.push((i, p, map, hash, base));
                continue;
            }
            let snap = Snapshot::assemble(map, |_| found.flatten()).map_err(|e| e.in_file(&p))?;
            let snap = Arc::new(snap);
            fresh.insert(hash, snap.clone());
            out[i] = Some(snap);
        }
        if rest.len() == before {
            let (_, p, _, hash, base) = &rest[0];
            return Err(Error::MissingBase {
                overlay: *hash,
                base: base.unwrap_or_default(),
            }
            .in_file(p));
        }
        pending = rest;
    }
    loaded.extend(fresh);
    Ok(out.into_iter().flatten().collect())
}

/// Which snapshot file each locale serves: what [`Store::open_manifest`] and
/// [`Store::reload`] read. A JSON file:
///
/// ```json
/// {
///   "default_locale": "en",
///   "locales": { "en": "en.fms", "es": "es.fms", "pt": "pt.fms" },
///   "bases": []
/// }
/// ```
///
/// Paths are relative to the manifest's directory and stay inside it: [`Store::reload`]
/// refuses absolute paths, `..` and symlinks that lead out of it. `bases` lists files
/// that no locale serves but that an overlay needs as its base (e.g. the previous content
/// version under a version overlay); overlays over a served snapshot need nothing there.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// The locale that locales without a tree of their own fall back to.
    pub default_locale: String,
    /// Locale -> snapshot file.
    pub locales: BTreeMap<String, PathBuf>,
    /// Further files to load: bases that no locale serves.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bases: Vec<PathBuf>,
}

impl Manifest {
    /// An empty manifest whose fallback locale is `default_locale`.
    pub fn new(default_locale: &str) -> Manifest {
        Manifest {
            default_locale: default_locale.to_owned(),
            locales: BTreeMap::new(),
            bases: Vec::new(),
        }
    }

    /// This manifest with `locale` served from `file`.
    pub fn locale(mut self, locale: &str, file: impl Into<PathBuf>) -> Manifest {
        self.locales.insert(locale.to_owned(), file.into());
        self
    }

    /// Reads a manifest file; errors name the file and, for bad JSON, the line.
    pub fn read(path: impl AsRef<Path>) -> Result<Manifest> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        serde_json::from_str(&text).map_err(|e| Error::Manifest {
            path: path.to_owned(),
            what: e.to_string(),
            source: Some(e),
        })
    }

    /// Writes the manifest atomically (temp file, fsync, rename): a server reloading at
    /// any moment sees the old manifest or the new one, never a torn file.
    pub fn write(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        crate::io::write_file_atomically(path, |w| {
            serde_json::to_writer_pretty(&mut *w, self).map_err(|e| Error::Value(e.to_string()))?;
            w.write_all(b"\n").map_err(|e| Error::io(path, e))
        })
    }
}
