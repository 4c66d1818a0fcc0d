//! [`Stats`]: what a snapshot file holds, from the same parsers the reader uses, for
//! `fms inspect`, monitoring and tests.

use super::Snapshot;
use crate::build::OverlayInfo;
use crate::format::{self, ContentHash, TOMBSTONE, node, section};

/// One section of a snapshot file ([`Stats::sections`]).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SectionInfo {
    /// The section's name: `pool`, `data`, `shapes`, `keys`, `ids`, `overlay`, `changes`,
    /// `symbols` or `cold`.
    pub name: &'static str,
    /// Where it starts, from the start of the file.
    pub offset: u64,
    /// Its length in bytes.
    pub len: u64,
    /// Its checksum as the section table records it (XXH3-64 of its bytes).
    pub checksum: u64,
}

/// What one snapshot file holds ([`Snapshot::stats`]).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// The content hash.
    pub hash: ContentHash,
    /// Bytes of this file (an overlay's own, without its base's).
    pub bytes: u64,
    /// Bytes of the header and section table.
    pub header_bytes: u64,
    /// The sections, in file order (the header and table come before the first).
    pub sections: Vec<SectionInfo>,
    /// Records of the (merged) tree.
    pub records: usize,
    /// Shapes, an overlay's base's included.
    pub shapes: usize,
    /// Keys, an overlay's base's included.
    pub keys: usize,
    /// Entries of this file's id index (a version-2 overlay's: the ids it adds; a
    /// version-1 overlay's: what it adds, changes or removes).
    pub id_entries: usize,
    /// Entries of this file's pool (strings, byte strings, wide scalars), and their
    /// bytes without the length prefixes. A malformed pool is counted up to where it
    /// breaks.
    pub pool_entries: usize,
    /// See [`pool_entries`](Self::pool_entries).
    pub pool_content_bytes: u64,
    /// For an overlay: what it stores relative to its base.
    pub overlay: Option<OverlayInfo>,
}

impl Snapshot {
    /// The file's sections (name, offset, length, checksum), in file order, as checked
    /// at open. O(1); allocates the returned `Vec`.
    pub fn sections(&self) -> Vec<SectionInfo> {
        self.layout
            .header
            .sections
            .iter()
            .map(|e| SectionInfo {
                name: section::name(e.kind),
                offset: e.offset,
                len: e.len,
                checksum: e.checksum,
            })
            .collect()
    }

    /// What this file holds: sections, counts, pool entries and, for an overlay, its
    /// added, replaced, patched and removed records and its nested patches. O(pool
    /// entries), plus for an overlay O(changed ids + its own nodes): it scans the pool
    /// and an overlay's DATA (heap: a set of its patched records' offsets).
    ///
    /// ```
    /// # fn main() -> fms::Result<()> {
    /// let mut b = fms::SnapshotBuilder::new();
    /// b.insert("v:1", &serde_json::json!({"title": "Intro", "kind": "video"}))?;
    /// let snap = fms::Snapshot::from_bytes(b.to_bytes()?)?;
    /// let stats = snap.stats();
    /// assert_eq!((stats.records, stats.keys, stats.shapes), (1, 2, 1));
    /// let names: Vec<_> = stats.sections.iter().map(|s| s.name).collect();
    /// assert_eq!(names, ["pool", "data", "shapes", "keys", "ids", "symbols", "cold"]);
    /// assert!(stats.overlay.is_none());
    /// # Ok(()) }
    /// ```
    pub fn stats(&self) -> Stats {
        let l = &self.layout;
        let raw = self.raw();
        let (mut pool_entries, mut pool_content_bytes) = (0, 0);
        for (_, entry) in format::pool_entries(raw.pool().unwrap_or_default()).map_while(|e| e.ok())
        {
            pool_entries += 1;
            pool_content_bytes += entry.len() as u64;
        }
        let overlay = match (l.overlay, &self.base) {
            (Some(o), Some(base)) => {
                let mut info = OverlayInfo {
                    base: base.hash(),
                    depth: o.depth,
                    added: (l.ids.count - l.own_first()) as usize,
                    replaced: 0,
                    patched: 0,
                    nested_patched: 0,
                    removed: 0,
                    unchanged: 0,
                };
                let mut top_patches = std::collections::HashSet::new();
                // Version 2: the CHANGES section's references; version 1: the leading
                // id entries'.
                let changes = l.changes.map_or(0, |c| c.count);
                let refs = (0..changes)
                    .map(|i| {
                        format::u32_at(raw.b, l.changes.map_or(0, |c| c.refs_at) + 4 * i as usize)
                    })
                    .chain((0..l.own_first()).map(|e| raw.id_record_offset(e)));
                for rec in refs {
                    match rec {
                        Some(TOMBSTONE) => info.removed += 1,
                        Some(rec) if raw.node_kind(rec) == Some(node::PATCH_BIT) => {
                            info.patched += 1;
                            top_patches.insert(rec);
                        }
                        _ => info.replaced += 1,
                    }
                }
                // Patch nodes no id entry or CHANGES reference names: nested maps. A walk
                // over the file's nodes; it stops at the first that does not parse.
                let data = raw.data().unwrap_or_default();
                let mut at = 0usize;
                while let Some(len) = u32::try_from(at)
                    .ok()
                    .and_then(|own| raw.node_len(data, own))
                {
                    let off = l.starts.data.saturating_add(at as u32);
                    if data[at] & (node::LIST_BIT | node::PATCH_BIT) == node::PATCH_BIT
                        && !top_patches.contains(&off)
                    {
                        info.nested_patched += 1;
                    }
                    at += len;
                }
                info.unchanged = base
                    .len()
                    .saturating_sub(info.replaced + info.patched + info.removed);
                Some(info)
            }
            _ => None,
        };
        Stats {
            hash: self.hash(),
            bytes: self.as_bytes().len() as u64,
            header_bytes: l.header.encoded_len() as u64,
            sections: self.sections(),
            records: self.len(),
            shapes: self.shape_count(),
            keys: self.key_count(),
            id_entries: l.ids.count as usize,
            pool_entries,
            pool_content_bytes,
            overlay,
        }
    }
}
