//! The record manifest of a version: id → 56-bit item hash, as an fms snapshot (or an
//! overlay chain of them) that stores no ids for a full tree (FORMAT.md, "Record
//! manifest").
//!
//! * The **root** (depth 0) holds one record under the reserved id `"\0m0"`: a perfect
//!   hash function over the tree's ids ([`super::mphf`]) and, per slot, the 7-byte item
//!   hash of the id in it. About 7.6 bytes per id.
//! * An **overlay level** (depth d ≥ 1, over the manifest below it) holds one record
//!   under `"\0m<d>"`: a bitset of the root's slots whose hash changed at this level, rank
//!   samples, and the 7-byte hashes of the changed slots in slot order.
//! * **Exact records** `{"h": <7 bytes>}` under an id, at any level: ids outside the
//!   root's key set (added since). `{"h": <0 bytes>}` is a tombstone: the id is not in
//!   this version.
//!
//! A lookup reads the exact record first, then the MPHF slot, then each level's bitset top
//! down, then the root's slot. The MPHF maps *any* id to a slot, so a [`Entry::Mapped`]
//! hash is a candidate: the item carries its id, and the reader serves it only for that id.
//! An [`Entry::Exact`] hash is known: an item with another id under it is corrupt.

use std::ops::Range;
use std::sync::Arc;

use super::error::{RemoteError, RemoteResult};
use super::item::{HASH_BYTES, ItemHash};
use super::mphf::{self, Mphf, Params};
use crate::{Key, Snapshot, TupleMap, Value};

/// The field of an exact record: the item hash (7 bytes LE), or empty for a tombstone.
pub const HASH_FIELD: &str = "h";
/// Root and level record field: parameters.
pub const PARAMS_FIELD: &str = "p";
/// Root field: the pilots (u16 LE each).
pub const PILOTS_FIELD: &str = "pilots";
/// Root field: the item hash of each slot (7 bytes LE each).
pub const SLOTS_FIELD: &str = "slots";
/// Level field: the changed-slot bitset (u64 LE words).
pub const BITS_FIELD: &str = "bits";
/// Level field: set bits before each 512-bit block (u32 LE each).
pub const RANK_FIELD: &str = "rank";
/// Level field: the changed slots' hashes in slot order (7 bytes LE each).
pub const CHANGED_FIELD: &str = "changed";
/// Bits per rank sample.
pub const RANK_BLOCK: usize = 512;
/// Bytes of a level's parameters: `m` and the number of changed slots, u32 LE.
pub const LEVEL_PARAMS_BYTES: usize = 8;

/// The reserved id of the manifest record at `depth`.
pub fn level_id(depth: u32) -> String {
    format!("\0m{depth}")
}

/// Whether `id` is reserved for manifest records (trees may not use it).
pub fn is_reserved(id: &str) -> bool {
    id.starts_with("\0m")
}

/// What the manifest says about an id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Entry {
    /// An exact record names it: its item hash is this.
    Exact(ItemHash),
    /// The MPHF maps it to a slot holding this hash: its item if the id is in the
    /// version, another id's (or none) otherwise.
    Mapped(ItemHash),
}

impl Entry {
    /// The hash.
    pub fn hash(self) -> ItemHash {
        match self {
            Entry::Exact(h) | Entry::Mapped(h) => h,
        }
    }

    /// Whether the manifest knows the id exactly.
    pub fn is_exact(self) -> bool {
        matches!(self, Entry::Exact(_))
    }
}

/// Bytes of one snapshot of the chain, as `(index in the chain, range)`.
#[derive(Clone, Debug)]
struct Span {
    snap: usize,
    range: Range<usize>,
}

#[derive(Clone, Debug)]
struct Level {
    bits: Span,
    rank: Span,
    changed: Span,
}

/// A record manifest opened for lookups: the chain's snapshots and, per level, where its
/// byte fields are in the mapped files (checked once at open). Lookups are O(depth),
/// allocation-free, zero-copy.
#[derive(Debug)]
pub struct ManifestView {
    chain: Vec<Arc<Snapshot>>,
    hash_key: Option<Key>,
    params: Params,
    pilots: Span,
    slots: Span,
    /// Levels 1..=depth, bottom first.
    levels: Vec<Level>,
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn hash_at(b: &[u8], i: usize) -> Option<ItemHash> {
    let at = i.checked_mul(HASH_BYTES)?;
    ItemHash::from_bytes(b.get(at..at.checked_add(HASH_BYTES)?)?)
}

impl ManifestView {
    /// Opens the manifest whose top snapshot is `top`; `name` names it in errors. Checks
    /// every level's record and byte lengths against the root's `n`/`m`, and each level's
    /// rank samples against its bitset (O(m / 64) per level).
    pub fn open(top: Arc<Snapshot>, name: &str) -> RemoteResult<ManifestView> {
        let bad = |what: String| RemoteError::Corrupt {
            key: name.to_owned(),
            what: format!("record manifest: {what}"),
        };
        let mut chain = Vec::new();
        let mut cur = Some(&top);
        while let Some(s) = cur {
            chain.push(s.clone());
            cur = s.base();
        }
        chain.reverse();
        let span = |v: &[u8], field: &str, depth: u32| -> RemoteResult<Span> {
            if v.is_empty() {
                return Ok(Span {
                    snap: 0,
                    range: 0..0,
                });
            }
            let p = v.as_ptr() as usize;
            for (i, s) in chain.iter().enumerate() {
                let b = s.as_bytes();
                let start = b.as_ptr() as usize;
                if p >= start && p + v.len() <= start + b.len() {
                    return Ok(Span {
                        snap: i,
                        range: p - start..p - start + v.len(),
                    });
                }
            }
            Err(bad(format!(
                "{field} of level {depth} is not in the mapped files"
            )))
        };
        let field = |depth: u32, name: &str| -> RemoteResult<&[u8]> {
            let id = level_id(depth);
            let rec = top
                .get(&id)
                .ok_or_else(|| bad(format!("no record for level {depth}")))?;
            rec.get(name)
                .and_then(|v| v.as_bytes())
                .ok_or_else(|| bad(format!("level {depth} has no byte string {name:?}")))
        };
        let params = Params::parse(field(0, PARAMS_FIELD)?)
            .ok_or_else(|| bad("bad perfect hash parameters".into()))?;
        let m = params.m as usize;
        let pilots = field(0, PILOTS_FIELD)?;
        if Mphf::new(params, pilots).is_none() {
            return Err(bad(format!(
                "{} pilot bytes for {} buckets",
                pilots.len(),
                params.buckets
            )));
        }
        let slots = field(0, SLOTS_FIELD)?;
        if Some(slots.len()) != m.checked_mul(HASH_BYTES) {
            return Err(bad(format!("{} slot bytes for {m} slots", slots.len())));
        }
        let (pilots, slots) = (span(pilots, PILOTS_FIELD, 0)?, span(slots, SLOTS_FIELD, 0)?);
        let mut levels = Vec::new();
        for d in 1..=top.depth() {
            let p = field(d, PARAMS_FIELD)?;
            let (lm, k) = match (p.len() == LEVEL_PARAMS_BYTES, u32_at(p, 0), u32_at(p, 4)) {
                (true, Some(lm), Some(k)) => (lm as usize, k as usize),
                _ => return Err(bad(format!("bad parameters at level {d}"))),
            };
            if lm != m {
                return Err(bad(format!(
                    "level {d} is over {lm} slots, the root has {m}"
                )));
            }
            let bits = field(d, BITS_FIELD)?;
            let rank = field(d, RANK_FIELD)?;
            let changed = field(d, CHANGED_FIELD)?;
            if bits.len() != m.div_ceil(64) * 8
                || rank.len() != m.div_ceil(RANK_BLOCK) * 4
                || Some(changed.len()) != k.checked_mul(HASH_BYTES)
            {
                return Err(bad(format!(
                    "level {d}: {} bitset, {} rank and {} hash bytes for {m} slots, {k} changed",
                    bits.len(),
                    rank.len(),
                    changed.len()
                )));
            }
            // The ranks, the count and the bits past m, checked once: lookups rely on them.
            let mut total = 0u64;
            for (w, word) in bits.chunks_exact(8).enumerate() {
                let word = u64::from_le_bytes(word.try_into().expect("8 bytes"));
                if w % (RANK_BLOCK / 64) == 0
                    && u64::from(u32_at(rank, w / (RANK_BLOCK / 64) * 4).unwrap_or(u32::MAX))
                        != total
                {
                    return Err(bad(format!("level {d}: rank sample {} is wrong", w / 8)));
                }
                let valid = m.saturating_sub(w * 64).min(64);
                if valid < 64 && word >> valid != 0 {
                    return Err(bad(format!("level {d}: bits set past slot {m}")));
                }
                total += u64::from(word.count_ones());
            }
            if total != k as u64 {
                return Err(bad(format!("level {d}: {total} bits set, {k} hashes")));
            }
            levels.push(Level {
                bits: span(bits, BITS_FIELD, d)?,
                rank: span(rank, RANK_FIELD, d)?,
                changed: span(changed, CHANGED_FIELD, d)?,
            });
        }
        Ok(ManifestView {
            hash_key: top.key(HASH_FIELD),
            chain,
            params,
            pilots,
            slots,
            levels,
        })
    }

    fn bytes(&self, s: &Span) -> &[u8] {
        self.chain
            .get(s.snap)
            .and_then(|c| c.as_bytes().get(s.range.clone()))
            .unwrap_or(&[])
    }

    /// The top snapshot.
    pub fn top(&self) -> &Arc<Snapshot> {
        self.chain.last().expect("a chain has a top")
    }

    /// The perfect hash function's parameters (`n` ids at the root, `m` slots).
    pub fn params(&self) -> Params {
        self.params
    }

    /// The MPHF slot of `id` (`None` for a manifest over no ids). O(1).
    pub fn slot(&self, id: &str) -> Option<usize> {
        Mphf::new(self.params, self.bytes(&self.pilots))?.slot(id.as_bytes())
    }

    /// What the manifest says about `id`: `None` if it is surely not in the version
    /// (a tombstone, a reserved id, an empty manifest, unreadable bytes). O(depth),
    /// allocation-free.
    pub fn lookup(&self, id: &str) -> Option<Entry> {
        if is_reserved(id) {
            return None;
        }
        if let Some(rec) = self.top().get(id) {
            let v = match self.hash_key {
                Some(k) => rec.get_key(k),
                None => rec.get(HASH_FIELD),
            };
            let b = v?.as_bytes()?;
            return ItemHash::from_bytes(b).map(Entry::Exact);
        }
        let s = self.slot(id)?;
        for l in self.levels.iter().rev() {
            let bits = self.bytes(&l.bits);
            let w = s / 64;
            let word = u64::from_le_bytes(bits.get(w * 8..w * 8 + 8)?.try_into().ok()?);
            if word >> (s % 64) & 1 == 0 {
                continue;
            }
            let block = s / RANK_BLOCK;
            let mut r = u32_at(self.bytes(&l.rank), block * 4)? as usize;
            r +=
                crate::format::count_ones(bits.get(block * (RANK_BLOCK / 64) * 8..w * 8)?) as usize;
            r += (word & ((1u64 << (s % 64)) - 1)).count_ones() as usize;
            return hash_at(self.bytes(&l.changed), r).map(Entry::Mapped);
        }
        hash_at(self.bytes(&self.slots), s).map(Entry::Mapped)
    }

    /// The bytes of the manifest files, summed over the chain.
    pub fn bytes_total(&self) -> u64 {
        self.chain.iter().map(|s| s.as_bytes().len() as u64).sum()
    }
}

/// An exact record: `{"h": <7 bytes>}`.
pub fn exact_record(h: ItemHash) -> TupleMap {
    TupleMap::from_pairs([(HASH_FIELD, Value::Bytes(h.to_bytes().to_vec()))])
}

/// A tombstone: `{"h": <0 bytes>}`.
pub fn tombstone() -> TupleMap {
    TupleMap::from_pairs([(HASH_FIELD, Value::Bytes(Vec::new()))])
}

/// The root record over `entries` (distinct ids with their item hashes).
pub fn root_record(entries: &[(&str, ItemHash)]) -> Result<TupleMap, mphf::BuildError> {
    let ids: Vec<&str> = entries.iter().map(|(id, _)| *id).collect();
    let built = mphf::build(&ids)?;
    let mut slots = vec![0u8; built.params.m as usize * HASH_BYTES];
    for ((_, h), &s) in entries.iter().zip(&built.slots) {
        let at = s as usize * HASH_BYTES;
        slots[at..at + HASH_BYTES].copy_from_slice(&h.to_bytes());
    }
    Ok(TupleMap::from_pairs([
        (PARAMS_FIELD, Value::Bytes(built.params.to_bytes().to_vec())),
        (PILOTS_FIELD, Value::Bytes(built.pilots)),
        (SLOTS_FIELD, Value::Bytes(slots)),
    ]))
}

/// A level record over `m` slots: `changed` holds (slot, new hash), slots distinct.
pub fn level_record(m: u32, changed: &std::collections::BTreeMap<usize, ItemHash>) -> TupleMap {
    let m = m as usize;
    let mut words = vec![0u64; m.div_ceil(64)];
    let mut hashes = Vec::with_capacity(changed.len() * HASH_BYTES);
    for (&s, h) in changed {
        words[s / 64] |= 1 << (s % 64);
        hashes.extend_from_slice(&h.to_bytes());
    }
    let mut rank = Vec::with_capacity(m.div_ceil(RANK_BLOCK) * 4);
    let mut total = 0u32;
    for (w, word) in words.iter().enumerate() {
        if w % (RANK_BLOCK / 64) == 0 {
            rank.extend_from_slice(&total.to_le_bytes());
        }
        total += word.count_ones();
    }
    let mut params = (m as u32).to_le_bytes().to_vec();
    params.extend_from_slice(&(changed.len() as u32).to_le_bytes());
    TupleMap::from_pairs([
        (PARAMS_FIELD, Value::Bytes(params)),
        (
            BITS_FIELD,
            Value::Bytes(words.iter().flat_map(|w| w.to_le_bytes()).collect()),
        ),
        (RANK_FIELD, Value::Bytes(rank)),
        (CHANGED_FIELD, Value::Bytes(hashes)),
    ])
}
