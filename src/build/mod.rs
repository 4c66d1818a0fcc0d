//! Building snapshots: [`SnapshotBuilder`] interns strings, keys and shapes, deduplicates
//! nodes, and writes the file atomically.

mod derive;
mod encode;
mod strings;

pub use strings::Compression;

#[cfg(feature = "fuzzing")]
pub(crate) use encode::index_section;

use std::path::Path;
use std::sync::{Arc, mpsc};

use serde::Serialize;

use crate::error::{Error, Result};
use crate::format::{self, ContentHash, Header, SectionEntry, TOMBSTONE, section};
use crate::read::Snapshot;
use crate::tuplemap::TupleMap;
use encode::Narrowed;

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
    /// For an overlay: what it stores relative to its base.
    pub overlay: Option<OverlayInfo>,
}

/// What an overlay stores relative to its base: from the builder
/// ([`BuildInfo::overlay`]) or from the file ([`crate::Stats::overlay`]).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct OverlayInfo {
    /// The base's content hash.
    pub base: ContentHash,
    /// 1 + the base's depth.
    pub depth: u32,
    /// Records the base lacks.
    pub added: usize,
    /// Records that replace the base's, stored whole.
    pub replaced: usize,
    /// Records that replace the base's, stored as their changed fields only.
    pub patched: usize,
    /// Nested maps (in records the overlay changes) stored as their changed fields only,
    /// as patches of the base's maps (format version 5). From the builder: the distinct
    /// nested patch nodes it wrote; from the file: its patch nodes that no id entry or
    /// CHANGES reference names. The two differ only in corner cases (a nested patch
    /// byte-identical to a record's is stored once; a record upserted twice can leave its
    /// first patch unreferenced).
    pub nested_patched: usize,
    /// Base records removed (tombstones).
    pub removed: usize,
    /// Base records the overlay leaves as they are (read through; records inserted equal
    /// to the base's count here and cost nothing).
    pub unchanged: usize,
}

/// What an id of the builder maps to.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Rec {
    /// A record node (or patch node) at this data offset.
    Node(u32),
    /// A patch node at this data offset.
    Patch(u32),
    /// Overlays: removes the base's record.
    Tombstone,
    /// Overlays: inserted equal to the base's record; stored nowhere.
    Same,
    /// Removed again from this builder: stored nowhere.
    Gone,
}

#[derive(Clone, Copy)]
struct Entry {
    /// Pool offset of the id.
    id: u32,
    rec: Rec,
    /// Overlays: whether the base has this id.
    in_base: bool,
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
///
/// **Overlays.** [`with_base`](Self::with_base) builds a snapshot that stores only what
/// differs from a base: insert the records that are new or changed (a record equal to the
/// base's costs nothing; a changed one is stored as its changed fields when that is
/// smaller), [`remove`](Self::remove) the ids that go away. Strings, keys and shapes the
/// base has are reused, and so are nested lists and maps equal to the base's at the same
/// place. [`remove_absent`](Self::remove_absent) turns "insert the complete new tree" into
/// the minimal overlay.
#[derive(Default)]
pub struct SnapshotBuilder {
    enc: encode::Encoder,
    base: Option<Arc<Snapshot>>,
    /// Ids in insertion order.
    entries: Vec<Entry>,
    /// Id -> entry number, to detect duplicates.
    id_pos: hashbrown::HashMap<Box<str>, usize>,
    /// How string values are stored.
    compression: Compression,
    /// The thresholds of `Compression::Auto`.
    policy: strings::Policy,
}

impl SnapshotBuilder {
    /// An empty builder.
    pub fn new() -> SnapshotBuilder {
        SnapshotBuilder::default()
    }

    /// An empty builder for an overlay over `base` (which may itself be an overlay, up to
    /// [`format::MAX_OVERLAY_DEPTH`] levels: writing a deeper one fails with
    /// [`Error::Limit`]).
    ///
    /// Indexes the base chain's strings, keys and shapes, so that the overlay reuses them:
    /// one walk of the merged tree that visits each node of the chain once (O(nodes +
    /// string bytes) time) and a few bytes per distinct string and node of memory.
    pub fn with_base(base: &Arc<Snapshot>) -> SnapshotBuilder {
        // Only an overflowing address space fails here (a base chain near 4 GiB); the
        // error is reported by the first insert, where the builder can return one.
        let enc = encode::Encoder::over(base).unwrap_or_default();
        SnapshotBuilder {
            enc,
            base: Some(base.clone()),
            ..SnapshotBuilder::default()
        }
    }

    /// How string values are stored ([`Compression::Auto`] unless set): decided when the
    /// file is written, so it may be set at any time before.
    pub fn set_compression(&mut self, c: Compression) -> &mut Self {
        self.compression = c;
        self
    }

    /// How string values are stored.
    pub fn compression(&self) -> Compression {
        self.compression
    }

    /// Compresses strings whatever their amount (`Auto` otherwise leaves fields with
    /// little text plain): so that small test and fuzz inputs reach every string codec.
    /// No stability promise.
    #[cfg(feature = "fuzzing")]
    #[doc(hidden)]
    pub fn eager_compression(&mut self) -> &mut Self {
        self.policy = strings::Policy::eager();
        self
    }

    /// The base of an overlay builder.
    pub fn base(&self) -> Option<&Arc<Snapshot>> {
        self.base.as_ref()
    }

    /// Number of records the snapshot will hold (for an overlay: of the merged tree).
    /// O(ids inserted).
    pub fn len(&self) -> usize {
        let base = self.base.as_ref().map_or(0, |b| b.len());
        let (mut added, mut removed) = (0usize, 0usize);
        for e in &self.entries {
            match (e.rec, e.in_base) {
                (Rec::Node(_) | Rec::Patch(_), false) => added += 1,
                (Rec::Tombstone, true) => removed += 1,
                _ => {}
            }
        }
        (base + added).saturating_sub(removed)
    }

    /// Whether the snapshot will hold no record.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Adds a record. `value` must serialize as a map or struct: a [`TupleMap`], a
    /// `serde_json::Value` object, a `#[derive(Serialize)]` struct, a `HashMap`, ...
    ///
    /// Errors on a duplicate id ([`Error::DuplicateId`]; use [`upsert`](Self::upsert) to
    /// replace), an empty id, a value that is not a map, or a value past the format's
    /// limits. A failed insert leaves the builder's records as they were.
    ///
    /// In an overlay builder, an id the base has is not a duplicate: it changes that
    /// record. Inserting an id again after [`remove`](Self::remove) re-adds it.
    pub fn insert<T: Serialize + ?Sized>(&mut self, id: &str, value: &T) -> Result<()> {
        if self.live(id) {
            return Err(Error::DuplicateId { id: id.to_owned() });
        }
        self.upsert(id, value).map(|_| ())
    }

    /// Whether this builder holds a record for `id` (inserted, not removed).
    fn live(&self, id: &str) -> bool {
        self.id_pos.get(id).is_some_and(|&p| {
            matches!(
                self.entries[p].rec,
                Rec::Node(_) | Rec::Patch(_) | Rec::Same
            )
        })
    }

    /// Adds a record, or replaces the record with this id (keeping its position in
    /// iteration order). Returns whether a record was replaced.
    pub fn upsert<T: Serialize + ?Sized>(&mut self, id: &str, value: &T) -> Result<bool> {
        check_id(id)?;
        let map: TupleMap = crate::serde::to_map(value)?;
        self.upsert_map(id, &map)
    }

    /// [`upsert`](Self::upsert) of a map already built (a JSONL line's, checked by
    /// [`parse_line`]) with a checked id: no copy through serde.
    fn upsert_map(&mut self, id: &str, map: &TupleMap) -> Result<bool> {
        let (rec, in_base) = match self.base.clone() {
            None => (Rec::Node(self.enc.map(map, 0)?.offset), false),
            Some(base) => {
                self.check_base(&base)?;
                match base.get(id) {
                    None => (Rec::Node(self.enc.map(map, 0)?.offset), false),
                    Some(old) if encode::same_map(map, old) => (Rec::Same, true),
                    Some(old) => (self.changed(map, old)?, true),
                }
            }
        };
        let replaced = self.live(id);
        self.put(id, rec, in_base)?;
        Ok(replaced)
    }

    /// Fails if the base chain is too deep or too large to extend.
    fn check_base(&self, base: &Snapshot) -> Result<()> {
        if base.depth() >= format::MAX_OVERLAY_DEPTH {
            return Err(Error::Limit {
                what: "overlay depth (overlays stacked on one full snapshot)",
                limit: format::MAX_OVERLAY_DEPTH as u64,
            });
        }
        if base.layout().totals() != Some(self.enc.starts) {
            return Err(Error::Limit {
                what: "address space of the base chain",
                limit: format::MAX_SECTION_LEN,
            });
        }
        Ok(())
    }

    /// Encodes `map`, which replaces the base's record `old`: as a patch of the node under
    /// `old` when it has the same keys (at most [`format::MAX_PATCH_SLOTS`]) and the patch
    /// is smaller, else as a whole record that reuses the base's unchanged nested values.
    fn changed(&mut self, map: &TupleMap, old: crate::Record<'_>) -> Result<Rec> {
        Ok(match self.enc.patch_against(map, old, 0)? {
            Some((node, true)) => Rec::Patch(node.offset),
            // Equal to the node under a patch the base applies: point at that node.
            Some((node, false)) => Rec::Node(node.offset),
            None => Rec::Node(self.enc.map_against(map, Some(old), 0)?.offset),
        })
    }

    /// Records what `id` maps to now.
    fn put(&mut self, id: &str, rec: Rec, in_base: bool) -> Result<()> {
        if let Some(&pos) = self.id_pos.get(id) {
            self.entries[pos].rec = rec;
            return Ok(());
        }
        let id_off = self.enc.pool.intern(id.as_bytes())?;
        self.id_pos.insert(id.into(), self.entries.len());
        self.entries.push(Entry {
            id: id_off,
            rec,
            in_base,
        });
        Ok(())
    }

    /// Removes `id`: in an overlay builder, a base record becomes a tombstone (the merged
    /// tree lacks it); a record inserted into this builder is dropped (its bytes stay, as
    /// with [`upsert`](Self::upsert)). Removing an id the base has is always a tombstone,
    /// also when this builder removed it already. Errors with [`Error::UnknownId`] if
    /// neither the base nor this builder has the id.
    ///
    /// ```
    /// # fn main() -> fms::Result<()> {
    /// use std::sync::Arc;
    /// let mut b = fms::SnapshotBuilder::new();
    /// b.insert("v:1", &serde_json::json!({"title": "Intro"}))?;
    /// let base = Arc::new(fms::Snapshot::from_bytes(b.to_bytes()?)?);
    /// let mut o = fms::SnapshotBuilder::with_base(&base);
    /// o.remove("v:1")?;
    /// assert!(o.remove("v:9").is_err());
    /// let next = fms::Snapshot::overlay_from_bytes(o.to_bytes()?, base)?;
    /// assert!(next.is_empty());
    /// # Ok(()) }
    /// ```
    pub fn remove(&mut self, id: &str) -> Result<()> {
        let in_base = self.base.as_ref().is_some_and(|b| b.contains(id));
        if in_base {
            return self.put(id, Rec::Tombstone, true);
        }
        if self.live(id) {
            if let Some(&pos) = self.id_pos.get(id) {
                self.entries[pos].rec = Rec::Gone;
            }
            return Ok(());
        }
        Err(Error::UnknownId { id: id.to_owned() })
    }

    /// Overlays: removes every base record whose id this builder has not been given
    /// (inserted, upserted or removed). After inserting a complete new tree, this makes
    /// the overlay's merged tree exactly that tree. Returns how many it removed.
    pub fn remove_absent(&mut self) -> Result<usize> {
        let Some(base) = self.base.clone() else {
            return Ok(0);
        };
        let mut n = 0;
        for id in base.ids() {
            if !self.id_pos.contains_key(id) {
                self.put(id, Rec::Tombstone, true)?;
                n += 1;
            }
        }
        Ok(n)
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
    /// Input that does not end within its first batch (64 non-blank lines or 256 KiB) is
    /// parsed on a second thread while this one encodes. `reader` is only read from the
    /// calling thread, but up to two batches ahead of the line being encoded: an error is
    /// reported once the lines after it are read too (or the input ends), which on a slow
    /// stream may be later than a line-by-line read would. The records added and the error
    /// are the same.
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
        mut reader: impl std::io::BufRead,
        source: &str,
        id_field: &str,
    ) -> Result<usize> {
        let at = |line: u64, e: Error| Error::Jsonl {
            input: source.to_owned(),
            line,
            source: Box::new(e),
        };
        let mut lines_read = 0;
        let mut batch = read_batch(&mut reader, &mut lines_read, source);
        let mut added = 0;
        // Input that ends within its first batch (small files, tests, fuzzing) is parsed
        // here. Longer input is parsed on a second thread while this one encodes the
        // batch before it. The records, their order and the errors are the same either
        // way.
        if batch.eof {
            self.insert_parsed(parse_batch(batch.lines, id_field), &mut added, &at)?;
            return batch.error.map_or(Ok(added), |(n, e)| Err(at(n, e)));
        }
        std::thread::scope(|s| {
            let (line_tx, line_rx) = mpsc::sync_channel::<Vec<(u64, String)>>(IN_FLIGHT);
            let (parsed_tx, parsed_rx) = mpsc::sync_channel::<Vec<Parsed>>(IN_FLIGHT);
            let parser = s.spawn(move || {
                for lines in line_rx {
                    if parsed_tx.send(parse_batch(lines, id_field)).is_err() {
                        break;
                    }
                }
            });
            let mut pipeline = || -> Result<()> {
                let mut in_flight = 0;
                loop {
                    let (eof, error) = (batch.eof, batch.error.take());
                    if line_tx.send(std::mem::take(&mut batch.lines)).is_err() {
                        return Ok(()); // the parser panicked: resumed below
                    }
                    in_flight += 1;
                    // Encode the oldest batch once IN_FLIGHT are out (or the input ended).
                    while in_flight == IN_FLIGHT || (eof && in_flight > 0) {
                        let Ok(parsed) = parsed_rx.recv() else {
                            return Ok(());
                        };
                        in_flight -= 1;
                        self.insert_parsed(parsed, &mut added, &at)?;
                    }
                    if eof {
                        // A read error comes after the lines read before it.
                        return error.map_or(Ok(()), |(n, e)| Err(at(n, e)));
                    }
                    batch = read_batch(&mut reader, &mut lines_read, source);
                }
            };
            let result = pipeline();
            drop(line_tx);
            drop(parsed_rx);
            if let Err(panic) = parser.join() {
                std::panic::resume_unwind(panic);
            }
            result.map(|()| added)
        })
    }

    /// Inserts the records of one parsed batch, counting them in `added`. The first bad
    /// line stops it, with its error and number.
    fn insert_parsed(
        &mut self,
        parsed: Vec<Parsed>,
        added: &mut usize,
        at: &impl Fn(u64, Error) -> Error,
    ) -> Result<()> {
        for (n, line) in parsed {
            let (id, map) = line.map_err(|e| at(n, e))?;
            if self.live(&id) {
                return Err(at(n, Error::DuplicateId { id }));
            }
            self.upsert_map(&id, &map).map_err(|e| at(n, e))?;
            *added += 1;
        }
        Ok(())
    }

    /// Whether a record with this id was inserted (and not removed) in this builder.
    pub fn contains(&self, id: &str) -> bool {
        self.live(id)
    }

    /// The record reference an entry writes, in the file's data section (`data`).
    fn rec_ref(e: &Entry, data: &Narrowed) -> u32 {
        match e.rec {
            Rec::Node(o) | Rec::Patch(o) => data.remap(o),
            _ => TOMBSTONE,
        }
    }

    /// Whether an entry is written (it changes, removes or adds a record).
    fn written(e: &Entry) -> bool {
        matches!(e.rec, Rec::Node(_) | Rec::Patch(_) | Rec::Tombstone)
    }

    /// The id entries of the IDS section, with their record references, in insertion
    /// order: every record of a full snapshot; the ids an overlay adds (those it changes
    /// or removes go to CHANGES).
    fn id_entries(&self, data: &Narrowed) -> Vec<(u32, u32)> {
        self.entries
            .iter()
            .filter(|e| Self::written(e) && !e.in_base)
            .map(|e| (e.id, Self::rec_ref(e, data)))
            .collect()
    }

    /// An overlay's CHANGES section (FORMAT.md "CHANGES"): the home ordinal of every base
    /// id it changes or removes, as a bitset over the base's ordinals with a rank
    /// directory, then their record references in ordinal order.
    fn changes_section(&self, base: &Snapshot, data: &Narrowed) -> Result<Vec<u8>> {
        let limit = || Error::Limit {
            what: "id ordinals of an overlay chain",
            limit: format::MAX_SECTION_LEN,
        };
        let ordinal_end = base.layout().ordinal_end().ok_or_else(limit)?;
        let raw = base.raw();
        let mut changes: Vec<(u32, u32)> = Vec::new();
        for (id, &pos) in &self.id_pos {
            let e = &self.entries[pos];
            if !(e.in_base && Self::written(e)) {
                continue;
            }
            let h = format::index_hash(id.as_bytes());
            let o = raw
                .home(id.as_bytes(), h)
                .and_then(|(level, entry)| level.own_ordinal(entry))
                .filter(|&o| o < ordinal_end)
                .ok_or_else(|| {
                    Error::InvalidInput(format!("base id {id:?} has no home in the base chain"))
                })?;
            changes.push((o, Self::rec_ref(e, data)));
        }
        changes.sort_unstable();
        let count = u32::try_from(changes.len()).map_err(|_| limit())?;
        let (words, ranks, len) = format::changes_layout(ordinal_end, count);
        let mut bits = vec![0u64; words as usize];
        for &(o, _) in &changes {
            bits[(o / 64) as usize] |= 1 << (o % 64);
        }
        let mut out = Vec::with_capacity(len as usize);
        out.extend_from_slice(&count.to_le_bytes());
        out.extend_from_slice(&ordinal_end.to_le_bytes());
        for w in &bits {
            out.extend_from_slice(&w.to_le_bytes());
        }
        let mut before = 0u32;
        for block in bits.chunks(format::RANK_BLOCK_WORDS) {
            out.extend_from_slice(&before.to_le_bytes());
            before += block.iter().map(|w| w.count_ones()).sum::<u32>();
        }
        debug_assert_eq!(
            ranks as usize,
            bits.len().div_ceil(format::RANK_BLOCK_WORDS)
        );
        for &(_, rec) in &changes {
            out.extend_from_slice(&rec.to_le_bytes());
        }
        debug_assert_eq!(out.len() as u64, len);
        Ok(out)
    }

    /// The encoded sections after the pool and data, in file order.
    fn sections(&self, data: &Narrowed) -> Result<Vec<Vec<u8>>> {
        let pool = &self.enc.pool;
        let name_of = |off: u32| pool.entry(off).unwrap_or_default();
        let keys = encode::index_section(
            self.enc.keys.len(),
            |i| encode::index_hash(name_of(self.enc.keys[i])),
            &self.enc.keys,
            true,
        )?;
        let list = self.id_entries(data);
        let id_entries: Vec<u32> = list.iter().flat_map(|&(id, rec)| [id, rec]).collect();
        let ids = encode::index_section(
            list.len(),
            |i| encode::index_hash(name_of(list[i].0)),
            &id_entries,
            true,
        )?;
        let mut out = vec![self.enc.shapes_section()?, keys, ids];
        if let Some(base) = &self.base {
            self.check_base(base)?;
            let info = self.overlay_info();
            let s = self.enc.starts;
            let changed = info.replaced + info.patched + info.removed;
            let ordinal_start = base.layout().ordinal_end().unwrap_or(u32::MAX);
            let fields = [
                info.depth as usize,
                s.pool as usize,
                s.data as usize,
                s.shape as usize,
                s.key as usize,
                self.len(),
                changed,
                info.removed,
                ordinal_start as usize,
            ];
            let mut sec = Vec::with_capacity(format::OVERLAY_SECTION_LEN);
            for f in fields {
                let f = u32::try_from(f).map_err(|_| Error::Limit {
                    what: "records in one snapshot",
                    limit: u32::MAX as u64,
                })?;
                sec.extend_from_slice(&f.to_le_bytes());
            }
            out.push(sec);
            out.push(self.changes_section(base, data)?);
        }
        Ok(out)
    }

    fn overlay_info(&self) -> OverlayInfo {
        let mut info = OverlayInfo {
            base: self.base.as_ref().map(|b| b.hash()).unwrap_or_default(),
            depth: self.base.as_ref().map_or(0, |b| b.depth() + 1),
            added: 0,
            replaced: 0,
            patched: 0,
            nested_patched: self.enc.nested_patches,
            removed: 0,
            unchanged: 0,
        };
        for e in &self.entries {
            match (e.rec, e.in_base) {
                (Rec::Node(_) | Rec::Patch(_), false) => info.added += 1,
                (Rec::Node(_), true) => info.replaced += 1,
                (Rec::Patch(_), true) => info.patched += 1,
                (Rec::Tombstone, _) => info.removed += 1,
                (Rec::Same | Rec::Gone, _) => {}
            }
        }
        let base = self.base.as_ref().map_or(0, |b| b.len());
        info.unchanged = base.saturating_sub(info.replaced + info.patched + info.removed);
        info
    }

    /// Encodes header and sections; calls `sink` with each part in file order.
    fn emit(&self, mut sink: impl FnMut(&[u8]) -> Result<()>) -> Result<BuildInfo> {
        let fin = strings::finish(&self.enc, self.compression, self.policy)?;
        let tail = self.sections(&fin.data)?;
        let mut parts: Vec<&[u8]> = vec![&fin.pool, &fin.data.data];
        parts.extend(tail.iter().map(Vec::as_slice));
        parts.push(&fin.symbols);
        parts.push(&fin.cold);
        let kinds: &[u32] = if self.base.is_some() {
            &section::ALL_OVERLAY
        } else {
            &section::ALL
        };
        let mut header = Header {
            version: format::VERSION,
            flags: if self.base.is_some() {
                format::FLAG_OVERLAY
            } else {
                0
            },
            content_hash: ContentHash::default(),
            base_hash: self.base.as_ref().map(|b| b.hash()).unwrap_or_default(),
            sections: Vec::new(),
        };
        let mut at = (format::HEADER_LEN + parts.len() * format::SECTION_ENTRY_LEN) as u64;
        for (kind, bytes) in kinds.iter().zip(&parts) {
            header.sections.push(SectionEntry {
                kind: *kind,
                offset: at,
                len: bytes.len() as u64,
                checksum: format::section_checksum(bytes),
            });
            at += bytes.len() as u64;
        }
        // Every node must be within the walk limit of the file it ends up in (what `verify`
        // checks and reads enforce): a record that expands far beyond the file's size
        // through shared values is refused here, not after it is written.
        let own = format::expanded_bytes(
            at,
            fin.pool.len() as u64,
            !fin.symbols.is_empty(),
            true,
            fin.cold.len() as u64,
        );
        let chain = own.saturating_add(self.base.as_ref().map_or(0, |b| b.layout().chain_bytes));
        let limit = format::walk_limit(chain);
        if self.enc.max_weight > limit {
            return Err(Error::Limit {
                what: "walk cost of one record, for a snapshot of this size (see fms::limits::walk_limit)",
                limit,
            });
        }
        let head = header.encode();
        sink(&head)?;
        let mut sections = vec![("header", head.len() as u64)];
        for (kind, bytes) in kinds.iter().zip(&parts) {
            sink(bytes)?;
            sections.push((section::name(*kind), bytes.len() as u64));
        }
        Ok(BuildInfo {
            hash: header.content_hash,
            records: self.len(),
            shapes: self.enc.shapes.len(),
            keys: self.enc.keys.len(),
            strings: fin.pool_entries,
            nodes: self.enc.nodes,
            bytes: at,
            sections,
            overlay: self.base.is_some().then(|| self.overlay_info()),
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
        crate::io::write_file_atomically(path, |w| {
            self.emit(|b| w.write_all(b).map_err(|e| Error::io(path, e)))
        })
    }
}

/// Batches of JSONL lines parsed but not yet encoded, at most ([`SnapshotBuilder::extend_jsonl`]).
const IN_FLIGHT: usize = 2;
/// A batch of JSONL lines ends after this many non-blank lines...
const BATCH_LINES: usize = 64;
/// ... or this many bytes.
const BATCH_BYTES: usize = 256 * 1024;

/// Non-blank JSONL lines with their 1-based numbers, read in one go.
struct Batch {
    lines: Vec<(u64, String)>,
    /// The input ended (or failed) after these lines.
    eof: bool,
    /// The read error that ended it, and the number of the line it failed on.
    error: Option<(u64, Error)>,
}

/// The next batch of `reader`'s non-blank lines; `read` counts the lines read so far.
fn read_batch(reader: &mut impl std::io::BufRead, read: &mut u64, source: &str) -> Batch {
    let mut batch = Batch {
        lines: Vec::new(),
        eof: false,
        error: None,
    };
    let mut bytes = 0;
    while batch.lines.len() < BATCH_LINES && bytes < BATCH_BYTES {
        let mut line = String::new();
        *read += 1;
        match reader.read_line(&mut line) {
            Ok(0) => {
                batch.eof = true;
                break;
            }
            Ok(_) => {
                if line.ends_with('\n') {
                    line.pop();
                    if line.ends_with('\r') {
                        line.pop();
                    }
                }
                if !line.trim().is_empty() {
                    bytes += line.len();
                    batch.lines.push((*read, line));
                }
            }
            Err(e) => {
                batch.eof = true;
                batch.error = Some((*read, Error::io(source, e)));
                break;
            }
        }
    }
    batch
}

/// A JSONL line's record (its id, and its other fields) or why it is not one, with the
/// line's number.
type Parsed = (u64, Result<(String, TupleMap)>);

/// Each line of `lines` parsed into its record.
fn parse_batch(lines: Vec<(u64, String)>, id_field: &str) -> Vec<Parsed> {
    lines
        .into_iter()
        .map(|(n, line)| (n, parse_line(&line, id_field)))
        .collect()
}

/// A JSONL line's id and the record's other fields.
fn parse_line(line: &str, id_field: &str) -> Result<(String, TupleMap)> {
    let mut map: TupleMap = match serde_json::from_str::<crate::Value>(line) {
        Ok(crate::Value::Map(m)) => *m,
        Ok(other) => {
            return Err(Error::InvalidInput(format!(
                "expected a JSON object, got a {}",
                other.kind()
            )));
        }
        Err(e) => return Err(Error::Json(e)),
    };
    // A map nested deep enough to meet the format's height limit goes through serde, as
    // `insert` does, so that it is refused before the encoder writes any of its nodes.
    if nests_deeper_than(&map, usize::from(format::MAX_HEIGHT / 2)) {
        crate::serde::to_map(&map)?;
    }
    let id = match map.remove(id_field) {
        Some(crate::Value::Str(s)) => s,
        Some(crate::Value::Int(i)) => i.to_string(),
        Some(other) => {
            return Err(Error::InvalidInput(format!(
                "id field {id_field:?} is a {}, not a string",
                other.kind()
            )));
        }
        None => {
            return Err(Error::InvalidInput(format!(
                "missing id field {id_field:?}"
            )));
        }
    };
    check_id(&id)?;
    Ok((id, map))
}

/// Fails for an id no record may have (the empty one).
fn check_id(id: &str) -> Result<()> {
    if id.is_empty() {
        return Err(Error::InvalidInput("record ids must not be empty".into()));
    }
    Ok(())
}

/// Whether some value of `m` has maps or lists nested more than `levels` deep. Recursion
/// is bounded by `levels`.
fn nests_deeper_than(m: &TupleMap, levels: usize) -> bool {
    fn go(v: &crate::Value, left: usize) -> bool {
        match v {
            crate::Value::Map(m) => left == 0 || m.values().any(|v| go(v, left - 1)),
            crate::Value::List(l) => left == 0 || l.iter().any(|v| go(v, left - 1)),
            _ => false,
        }
    }
    m.values().any(|v| go(v, levels))
}
