//! Building snapshots: [`SnapshotBuilder`] interns strings, keys and shapes, deduplicates
//! nodes, and writes the file atomically.

mod encode;

use std::io::Write;
use std::path::Path;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::format::{self, ContentHash, Header, SectionEntry, section};
use crate::tuplemap::TupleMap;

/// What a build produced: the content hash and the sizes a user needs to judge it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuildInfo {
    /// The snapshot's content hash.
    pub hash: ContentHash,
    /// Number of records (ids).
    pub records: usize,
    /// Number of distinct shapes.
    pub shapes: usize,
    /// Number of distinct keys.
    pub keys: usize,
    /// Number of distinct pool entries (strings, byte strings, wide scalars).
    pub strings: usize,
    /// Number of distinct map and list nodes.
    pub nodes: usize,
    /// Total bytes of the file.
    pub bytes: u64,
    /// `(section name, bytes)` in file order; the header and section table come first as
    /// `"header"`.
    pub sections: Vec<(&'static str, u64)>,
}

/// Builds a snapshot from records.
///
/// Records are encoded as they are inserted, so memory holds the encoded snapshot (plus
/// dedup tables), not the input. The output is deterministic: the same sequence of calls
/// gives byte-identical files with the same content hash. Because encoding is eager, a
/// record replaced by [`upsert`](Self::upsert), or an insert that failed part-way, leaves
/// its no-longer-referenced bytes (strings, nodes, keys) in the file: still valid, but
/// larger, and with a different hash than a fresh build of the final records.
///
/// ```
/// # fn main() -> fms::Result<()> {
/// let dir = tempfile::tempdir().unwrap();
/// let mut b = fms::SnapshotBuilder::new();
/// b.insert("video:1", &serde_json::json!({"title": "Intro", "duration": 42}))?;
/// b.insert("video:2", &fms::TupleMap::from_pairs([("title", "Loops".into())]))?;
/// let info = b.write_to_path(dir.path().join("en.fms"))?;
/// assert_eq!(info.records, 2);
/// let snap = fms::Snapshot::open(dir.path().join("en.fms"))?;
/// assert_eq!(snap.hash(), info.hash);
/// # Ok(()) }
/// ```
#[derive(Default)]
pub struct SnapshotBuilder {
    enc: encode::Encoder,
    /// Id index entries in insertion order: pool offset of the id, data offset of the record.
    ids: Vec<(u32, u32)>,
    /// Id -> entry number, to detect duplicates.
    id_pos: hashbrown::HashMap<Box<str>, usize>,
}

impl SnapshotBuilder {
    /// An empty builder.
    pub fn new() -> SnapshotBuilder {
        SnapshotBuilder::default()
    }

    /// Number of records inserted so far.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether no record has been inserted.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Adds a record. `value` must serialize as a map or struct: a [`TupleMap`], a
    /// `serde_json::Value` object, a `#[derive(Serialize)]` struct, a `HashMap`, ...
    ///
    /// Errors on a duplicate id ([`Error::DuplicateId`]; use [`upsert`](Self::upsert) to
    /// replace), an empty id, a value that is not a map, or a value past the format's
    /// limits. A failed insert leaves the builder's records as they were.
    pub fn insert<T: Serialize + ?Sized>(&mut self, id: &str, value: &T) -> Result<()> {
        if self.id_pos.contains_key(id) {
            return Err(Error::DuplicateId { id: id.to_owned() });
        }
        self.upsert(id, value).map(|_| ())
    }

    /// Adds a record, or replaces the record with this id (keeping its position in
    /// iteration order). Returns whether a record was replaced.
    pub fn upsert<T: Serialize + ?Sized>(&mut self, id: &str, value: &T) -> Result<bool> {
        if id.is_empty() {
            return Err(Error::InvalidInput("record ids must not be empty".into()));
        }
        let map: TupleMap = crate::serde::to_map(value)?;
        let node = self.enc.map(&map, 0)?;
        if let Some(&pos) = self.id_pos.get(id) {
            self.ids[pos].1 = node.offset;
            return Ok(true);
        }
        let id_off = self.enc.pool.intern(id.as_bytes())?;
        self.id_pos.insert(id.into(), self.ids.len());
        self.ids.push((id_off, node.offset));
        Ok(false)
    }

    /// Inserts one record per line of JSONL: each non-blank line is a JSON object whose
    /// `id_field` (a string or an integer) is the record id; that field is removed from the
    /// record, the others keep their order. Returns the number of records added.
    ///
    /// Errors name `source` and the 1-based line: invalid JSON, a line that is not an
    /// object, a missing or non-string id, a duplicate id, a value past the format's
    /// limits. On error, records from earlier lines stay inserted; callers that want
    /// all-or-nothing discard the builder (the CLI writes nothing).
    ///
    /// ```
    /// # fn main() -> fms::Result<()> {
    /// let input = "{\"id\": \"video:1\", \"title\": \"Intro\"}\n\n{\"id\": \"video:2\", \"title\": \"Loops\"}\n";
    /// let mut b = fms::SnapshotBuilder::new();
    /// assert_eq!(b.extend_jsonl(input.as_bytes(), "videos.jsonl", "id")?, 2);
    /// let err = b.extend_jsonl("{\"title\": 1}".as_bytes(), "bad.jsonl", "id").unwrap_err();
    /// assert_eq!(err.to_string(), "bad.jsonl:1: missing id field \"id\"");
    /// # Ok(()) }
    /// ```
    pub fn extend_jsonl(
        &mut self,
        reader: impl std::io::BufRead,
        source: &str,
        id_field: &str,
    ) -> Result<usize> {
        let at = |line: u64, what: String| Error::Jsonl {
            input: source.to_owned(),
            line,
            what,
        };
        let mut added = 0;
        for (n, line) in reader.lines().enumerate() {
            let n = n as u64 + 1;
            let line = line.map_err(|e| at(n, format!("read error: {e}")))?;
            if line.trim().is_empty() {
                continue;
            }
            let mut map: TupleMap = match serde_json::from_str::<crate::Value>(&line) {
                Ok(crate::Value::Map(m)) => *m,
                Ok(other) => {
                    return Err(at(
                        n,
                        format!("expected a JSON object, got a {}", other.kind()),
                    ));
                }
                Err(e) => return Err(at(n, format!("invalid JSON: {e}"))),
            };
            let id = match map.remove(id_field) {
                Some(crate::Value::Str(s)) => s,
                Some(crate::Value::Int(i)) => i.to_string(),
                Some(other) => {
                    return Err(at(
                        n,
                        format!("id field {id_field:?} is a {}, not a string", other.kind()),
                    ));
                }
                None => return Err(at(n, format!("missing id field {id_field:?}"))),
            };
            self.insert(&id, &map).map_err(|e| at(n, e.to_string()))?;
            added += 1;
        }
        Ok(added)
    }

    /// Whether a record with this id was inserted.
    pub fn contains(&self, id: &str) -> bool {
        self.id_pos.contains_key(id)
    }

    /// The encoded sections, in file order.
    fn sections(&self) -> Result<[Vec<u8>; 3]> {
        let pool = &self.enc.pool.bytes;
        let name_of = |off: u32| format::pool_entry(pool, off as usize).unwrap_or_default();
        let mut key_entries = Vec::with_capacity(self.enc.keys.len() * format::KEY_ENTRY_LEN);
        for &k in &self.enc.keys {
            key_entries.extend_from_slice(&k.to_le_bytes());
        }
        let keys = encode::index_section(
            self.enc.keys.len(),
            |i| format::index_hash(name_of(self.enc.keys[i])),
            &key_entries,
        )?;
        let mut id_entries = Vec::with_capacity(self.ids.len() * format::ID_ENTRY_LEN);
        for &(id, rec) in &self.ids {
            id_entries.extend_from_slice(&id.to_le_bytes());
            id_entries.extend_from_slice(&rec.to_le_bytes());
        }
        let ids = encode::index_section(
            self.ids.len(),
            |i| format::index_hash(name_of(self.ids[i].0)),
            &id_entries,
        )?;
        Ok([self.enc.shapes_section()?, keys, ids])
    }

    /// Encodes header and sections; calls `sink` with each part in file order.
    fn emit(&self, mut sink: impl FnMut(&[u8]) -> Result<()>) -> Result<BuildInfo> {
        let [shapes, keys, ids] = self.sections()?;
        let parts: [&[u8]; 5] = [&self.enc.pool.bytes, &self.enc.data, &shapes, &keys, &ids];
        let mut header = Header {
            version: format::VERSION,
            flags: 0,
            content_hash: ContentHash::default(),
            base_hash: ContentHash::default(),
            sections: Vec::new(),
        };
        let mut at = (format::HEADER_LEN + parts.len() * format::SECTION_ENTRY_LEN) as u64;
        for (kind, bytes) in section::ALL.iter().zip(parts) {
            header.sections.push(SectionEntry {
                kind: *kind,
                offset: at,
                len: bytes.len() as u64,
                checksum: format::section_checksum(bytes),
            });
            at += bytes.len() as u64;
        }
        let head = header.encode();
        sink(&head)?;
        let mut sections = vec![("header", head.len() as u64)];
        for (kind, bytes) in section::ALL.iter().zip(parts) {
            sink(bytes)?;
            sections.push((section::name(*kind), bytes.len() as u64));
        }
        Ok(BuildInfo {
            hash: header.content_hash,
            records: self.ids.len(),
            shapes: self.enc.shapes.len(),
            keys: self.enc.keys.len(),
            strings: self.enc.pool.len(),
            nodes: self.enc.nodes,
            bytes: at,
            sections,
        })
    }

    /// The snapshot as bytes (the same bytes [`write_to_path`](Self::write_to_path) writes).
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        self.emit(|b| {
            out.extend_from_slice(b);
            Ok(())
        })?;
        Ok(out)
    }

    /// The snapshot as bytes, with the build summary.
    pub fn to_bytes_with_info(&self) -> Result<(Vec<u8>, BuildInfo)> {
        let mut out = Vec::new();
        let info = self.emit(|b| {
            out.extend_from_slice(b);
            Ok(())
        })?;
        Ok((out, info))
    }

    /// Writes the snapshot to `path` atomically: into a temporary file in the same
    /// directory, fsynced, then renamed over `path` (and the directory fsynced). On any
    /// error nothing is left at `path` and the temporary file is removed.
    pub fn write_to_path(&self, path: impl AsRef<Path>) -> Result<BuildInfo> {
        let path = path.as_ref();
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let mut tb = tempfile::Builder::new();
        tb.prefix(".fms-tmp-");
        // Snapshots are read by other processes (servers): create them world-readable like
        // `File::create` would (the umask still applies), not with tempfile's private 0600.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            tb.permissions(std::fs::Permissions::from_mode(0o644));
        }
        let tmp = tb.tempfile_in(dir).map_err(|e| Error::io(dir, e))?;
        let mut w = std::io::BufWriter::with_capacity(1 << 20, tmp.as_file());
        let info = self.emit(|b| w.write_all(b).map_err(|e| Error::io(tmp.path(), e)))?;
        w.flush().map_err(|e| Error::io(tmp.path(), e))?;
        drop(w);
        tmp.as_file()
            .sync_all()
            .map_err(|e| Error::io(tmp.path(), e))?;
        tmp.persist(path).map_err(|e| Error::io(path, e.error))?;
        #[cfg(unix)]
        if let Ok(d) = std::fs::File::open(dir) {
            // Makes the rename durable; failure here does not undo a completed write.
            let _ = d.sync_all();
        }
        Ok(info)
    }
}
