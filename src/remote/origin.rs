//! The durable origin: a directory holding a Store manifest (`manifest.json`) and its
//! snapshots, to which `push` adds `remote/`:
//!
//! ```text
//! DIR/manifest.json             locale -> tree file (fms::Manifest), the input of push
//! DIR/*.fms                     the trees
//! DIR/remote/<hash>.fms         a record manifest (id -> item hash, see
//!                               [`super::manifest`]), an fms snapshot; a locale's is an
//!                               overlay over the default locale's
//! DIR/remote/<hash>.json        what that manifest describes (VersionInfo)
//! DIR/remote/<hash>.fms         also: a version's hot-set snapshot (its records among the
//!                               hot ids, see [`super::hot`]), named in its VersionInfo
//! DIR/remote/pointers.json      locale -> manifest hash: the durable version pointers,
//!                               read when memcached has lost its copy
//! ```
//!
//! Everything is written atomically and named by content hash, so readers see complete
//! files or none, and a file never changes once written.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use super::error::{RemoteError, RemoteResult};
use super::manifest::{Entry, ManifestView};
use crate::{ContentHash, Snapshot, Store};

/// The subdirectory of the origin that push writes.
pub const REMOTE_DIR: &str = "remote";
/// The durable pointers file, in [`REMOTE_DIR`].
pub const POINTERS_FILE: &str = "pointers.json";

/// What one record manifest describes: `DIR/remote/<manifest hash>.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VersionInfo {
    /// The locale it was pushed for.
    pub locale: String,
    /// Hashes of the manifest snapshots it needs, base first, its own last.
    pub manifests: Vec<String>,
    /// Tree files (relative to the origin directory), base first, the tree itself last.
    pub trees: Vec<PathBuf>,
    /// The content hash of the tree.
    pub tree: String,
    /// Records in the tree.
    pub records: u64,
    /// The content hash of the version's hot-set snapshot (`DIR/remote/<hash>.fms`, see
    /// [`super::hot`]), if push chose one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hot: Option<String>,
}

/// Locale -> manifest hash: `DIR/remote/pointers.json`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pointers {
    /// The locale others fall back to.
    pub default_locale: String,
    /// Locale -> manifest hash (hex).
    pub locales: BTreeMap<String, String>,
}

/// One published version of a locale, as a reader pins it: the record manifest (mapped)
/// and, loaded on first need, the tree itself (the origin of its records).
#[derive(Debug)]
pub struct Version {
    hash: ContentHash,
    info: VersionInfo,
    manifest: Arc<ManifestView>,
    hot: Option<Arc<Snapshot>>,
    tree: Mutex<Option<Arc<Snapshot>>>,
}

impl Version {
    /// The manifest's content hash: the version's identity.
    pub fn hash(&self) -> ContentHash {
        self.hash
    }

    /// What push recorded about it.
    pub fn info(&self) -> &VersionInfo {
        &self.info
    }

    /// The hot-set snapshot push wrote for this version (mapped, verified when the
    /// version was loaded), if any.
    pub fn hot(&self) -> Option<&Arc<Snapshot>> {
        self.hot.as_ref()
    }

    /// The record manifest (its top snapshot: [`ManifestView::top`]).
    pub fn manifest(&self) -> &Arc<ManifestView> {
        &self.manifest
    }

    /// Records in this version (as push recorded them).
    pub fn len(&self) -> usize {
        self.info.records as usize
    }

    /// Whether it has no records.
    pub fn is_empty(&self) -> bool {
        self.info.records == 0
    }

    /// Whether it *may* have a record `id`: `false` is certain, `true` is not for an id
    /// the perfect hash function maps (any id maps to some slot; the item's id decides).
    /// O(depth), allocation-free.
    pub fn may_contain(&self, id: &str) -> bool {
        self.manifest.lookup(id).is_some()
    }

    /// What the manifest says about `id`: its item hash, exact or a candidate
    /// ([`Entry`]); `None`: surely not in this version. O(depth), allocation-free.
    pub fn entry(&self, id: &str) -> Option<Entry> {
        self.manifest.lookup(id)
    }
}

/// Reads (and caches) what the origin directory holds. `Send + Sync`.
#[derive(Debug)]
pub struct Origin {
    dir: PathBuf,
    manifests: Store,
    trees: Store,
    versions: Mutex<HashMap<ContentHash, Arc<Version>>>,
}

impl Origin {
    /// The origin at `dir` (nothing is read yet).
    pub fn new(dir: impl Into<PathBuf>) -> Origin {
        Origin {
            dir: dir.into(),
            manifests: Store::new(""),
            trees: Store::new(""),
            versions: Mutex::new(HashMap::new()),
        }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn err(&self, what: impl Into<String>) -> RemoteError {
        RemoteError::Origin {
            dir: self.dir.clone(),
            what: what.into(),
        }
    }

    /// `DIR/remote/<hash>.fms`.
    pub fn manifest_path(&self, hash: ContentHash) -> PathBuf {
        self.dir.join(REMOTE_DIR).join(format!("{hash}.fms"))
    }

    /// `DIR/remote/<hash>.json`.
    pub fn info_path(&self, hash: ContentHash) -> PathBuf {
        self.dir.join(REMOTE_DIR).join(format!("{hash}.json"))
    }

    /// `DIR/remote/pointers.json`.
    pub fn pointers_path(&self) -> PathBuf {
        self.dir.join(REMOTE_DIR).join(POINTERS_FILE)
    }

    /// Reads the durable pointers.
    pub fn read_pointers(&self) -> RemoteResult<Pointers> {
        read_json(&self.pointers_path())
    }

    /// Writes the durable pointers atomically.
    pub fn write_pointers(&self, p: &Pointers) -> RemoteResult<()> {
        write_json(&self.pointers_path(), p)
    }

    /// Writes a version's description atomically.
    pub fn write_info(&self, hash: ContentHash, info: &VersionInfo) -> RemoteResult<()> {
        write_json(&self.info_path(hash), info)
    }

    /// The version whose manifest has `hash` (mapped once per process).
    pub fn version(&self, hash: ContentHash) -> RemoteResult<Arc<Version>> {
        if let Some(v) = self
            .versions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&hash)
        {
            return Ok(v.clone());
        }
        let info: VersionInfo = read_json(&self.info_path(hash))?;
        let mut paths = Vec::new();
        for h in &info.manifests {
            let h: ContentHash = h
                .parse()
                .map_err(|_| self.err(format!("bad manifest hash {h:?} in {hash}.json")))?;
            paths.push(self.manifest_path(h));
        }
        let snaps = self.manifests.load_all(&paths)?;
        let manifest = snaps
            .last()
            .cloned()
            .ok_or_else(|| self.err(format!("{hash}.json names no manifest")))?;
        if manifest.hash() != hash {
            return Err(self.err(format!(
                "{hash}.json describes manifest {}",
                manifest.hash()
            )));
        }
        let manifest = Arc::new(ManifestView::open(
            manifest,
            &self.manifest_path(hash).display().to_string(),
        )?);
        let hot = match &info.hot {
            None => None,
            Some(h) => {
                let want: ContentHash = h
                    .parse()
                    .map_err(|_| self.err(format!("bad hot-set hash {h:?} in {hash}.json")))?;
                let path = self.manifest_path(want);
                let snap = self.manifests.load(&path)?;
                if snap.hash() != want || snap.is_overlay() {
                    return Err(self.err(format!(
                        "{} is not the hot set {hash}.json names",
                        path.display()
                    )));
                }
                // Small (a few thousand records) and served without further checks:
                // verified once, here.
                snap.verify().map_err(|e| crate::Error::File {
                    path: path.clone(),
                    source: Box::new(e),
                })?;
                Some(snap)
            }
        };
        let v = Arc::new(Version {
            hash,
            info,
            manifest,
            hot,
            tree: Mutex::new(None),
        });
        let mut versions = self.versions.lock().unwrap_or_else(|e| e.into_inner());
        Ok(versions.entry(hash).or_insert(v).clone())
    }

    /// The tree of `v` (its records' origin), mapped on first need.
    pub fn tree(&self, v: &Version) -> RemoteResult<Arc<Snapshot>> {
        let mut slot = v.tree.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(t) = slot.as_ref() {
            return Ok(t.clone());
        }
        let paths: Vec<PathBuf> = v.info.trees.iter().map(|p| self.dir.join(p)).collect();
        let tree = self
            .trees
            .load_all(&paths)?
            .pop()
            .ok_or_else(|| self.err(format!("version {} names no tree", v.hash)))?;
        if tree.hash().to_string() != v.info.tree {
            return Err(self.err(format!(
                "tree {} has changed: it is now {} (trees must not be rewritten in place)",
                v.info
                    .trees
                    .last()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
                tree.hash()
            )));
        }
        *slot = Some(tree.clone());
        Ok(tree)
    }
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> RemoteResult<T> {
    let text = std::fs::read_to_string(path).map_err(|e| crate::Error::Io {
        path: path.to_owned(),
        source: e,
    })?;
    serde_json::from_str(&text).map_err(|e| {
        RemoteError::Fms(crate::Error::Manifest {
            path: path.to_owned(),
            what: e.to_string(),
            source: Some(e),
        })
    })
}

fn write_json<T: Serialize>(path: &Path, value: &T) -> RemoteResult<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| crate::Error::Io {
            path: parent.to_owned(),
            source: e,
        })?;
    }
    crate::write_file_atomically(path, |w| {
        serde_json::to_writer_pretty(&mut *w, value)
            .map_err(|e| crate::Error::Value(e.to_string()))?;
        w.write_all(b"\n").map_err(|e| crate::Error::Io {
            path: path.to_owned(),
            source: e,
        })
    })?;
    Ok(())
}
