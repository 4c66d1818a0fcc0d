//! Encoding values into the pool and data sections, with deduplication, and building the
//! hash indexes.

use std::sync::Arc;

use hashbrown::HashTable;

use crate::error::{Error, Result};
use crate::format::{
    self, MAX_HEIGHT, MAX_PROBE, MAX_SECTION_LEN, MAX_WALK, node, slot_walk_cost, tag,
};
use crate::read::{Compare, List, Record, Snapshot, Starts, ValueRef, compare, compare_map};
use crate::tuplemap::{TupleMap, Value};

#[inline]
fn h(bytes: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(bytes)
}

/// A hash of the bytes a dedup table's entry stands for, kept in the entry: growing the
/// table rehashes from it instead of reading and hashing the bytes again (that was a
/// tenth of the time to encode records), and a lookup compares bytes only when it
/// matches.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Fingerprint(u32);

impl Fingerprint {
    #[inline]
    pub fn of(bytes: &[u8]) -> Fingerprint {
        Fingerprint((h(bytes) >> 32) as u32)
    }

    /// The table's hash: the fingerprint spread over 64 bits (hashbrown takes the bucket
    /// from the low bits and the tag byte from the top ones).
    #[inline]
    pub fn hash(self) -> u64 {
        u64::from(self.0).wrapping_mul(0x9E37_79B9_7F4A_7C15)
    }
}

fn offset_u32(len: usize, what: &'static str) -> Result<u32> {
    u32::try_from(len)
        .ok()
        .filter(|&l| (l as u64) < MAX_SECTION_LEN)
        .ok_or(Error::Limit {
            what,
            limit: MAX_SECTION_LEN,
        })
}

/// `start + len` as a combined address (an overlay's addresses continue its base's).
fn combined(start: u32, len: usize, what: &'static str) -> Result<u32> {
    offset_u32((start as usize).saturating_add(len), what)
}

/// Pool entries by their bytes: an offset and the bytes' fingerprint each.
type Entries = HashTable<(u32, Fingerprint)>;

/// The pool: `varint len ++ bytes` entries, each distinct byte string stored once. For an
/// overlay, a string its base chain already holds is not stored again: `intern` returns
/// the base's entry.
#[derive(Default)]
pub(crate) struct Pool {
    pub bytes: Vec<u8>,
    /// This file's entries (offsets in `bytes`).
    dedup: Entries,
    /// Where this file's pool starts in the combined space (0 unless an overlay).
    start: u32,
    /// An overlay's base and the combined offsets of every entry of its chain's pools.
    base: Option<(Arc<Snapshot>, Entries)>,
}

impl Pool {
    fn over(base: &Arc<Snapshot>, start: u32) -> Pool {
        let mut index = HashTable::new();
        let mut level = Some(base.raw());
        while let Some(raw) = level {
            let pool = raw.pool().unwrap_or_default();
            // Every entry of every level; a malformed pool just ends the scan early (only
            // dedup is lost: the overlay stores such strings itself).
            for (at, entry) in format::pool_entries(pool).map_while(|e| e.ok()) {
                let off = raw.l().starts.pool as usize + at;
                if let Ok(off) = u32::try_from(off) {
                    let fp = Fingerprint::of(entry);
                    if index
                        .find(fp.hash(), |&(o, f)| {
                            f == fp && raw.pool_bytes(o) == Some(entry)
                        })
                        .is_none()
                    {
                        index.insert_unique(fp.hash(), (off, fp), |&(_, f)| f.hash());
                    }
                }
            }
            level = raw.down();
        }
        Pool {
            start,
            base: Some((base.clone(), index)),
            ..Pool::default()
        }
    }

    /// The (combined) offset of an entry holding `b`, appending one if needed.
    pub fn intern(&mut self, b: &[u8]) -> Result<u32> {
        let fp = Fingerprint::of(b);
        if let Some(off) = self.find_fp(b, fp, true) {
            return Ok(off);
        }
        let off = offset_u32(self.bytes.len(), "pool section bytes")?;
        format::put_varint(&mut self.bytes, b.len() as u64);
        self.bytes.extend_from_slice(b);
        combined(self.start, self.bytes.len(), "pool bytes (with the base's)")?;
        self.dedup
            .insert_unique(fp.hash(), (off, fp), |&(_, f)| f.hash());
        Ok(self.start + off)
    }

    /// The bytes of the entry at combined offset `off`.
    pub fn entry(&self, off: u32) -> Option<&[u8]> {
        match off.checked_sub(self.start) {
            Some(o) => format::pool_entry(&self.bytes, o as usize),
            None => self.base.as_ref()?.0.raw().pool_bytes(off),
        }
    }

    /// Number of entries this file stores.
    pub fn len(&self) -> usize {
        self.dedup.len()
    }

    /// Where this file's pool starts in the combined space.
    pub fn start(&self) -> u32 {
        self.start
    }

    /// The combined offset of an entry holding `b`, in the base chain (when `base`) or in
    /// this file, without adding one.
    pub fn find(&self, b: &[u8], base: bool) -> Option<u32> {
        self.find_fp(b, Fingerprint::of(b), base)
    }

    /// [`find`](Self::find) with `b`'s fingerprint.
    fn find_fp(&self, b: &[u8], fp: Fingerprint, base: bool) -> Option<u32> {
        if let (true, Some((snap, index))) = (base, &self.base) {
            let raw = snap.raw();
            if let Some(&(off, _)) =
                index.find(fp.hash(), |&(o, f)| f == fp && raw.pool_bytes(o) == Some(b))
            {
                return Some(off);
            }
        }
        let pool = &self.bytes;
        self.dedup
            .find(fp.hash(), |&(o, f)| {
                f == fp && format::pool_entry(pool, o as usize) == Some(b)
            })
            .map(|&(off, _)| self.start + off)
    }
}

/// One encoded slot and what its parent needs to know about it.
#[derive(Clone, Copy)]
struct Slot {
    tag: u8,
    payload: [u8; 4],
    /// Height of the referenced node (0 for scalars).
    height: u8,
    /// Walk cost below the slot itself (see `MAX_WALK`): the key's and the value's bytes
    /// plus the referenced node's cost.
    weight: u64,
}

impl Slot {
    fn scalar(tag: u8, payload: u32) -> Slot {
        Slot {
            tag,
            payload: payload.to_le_bytes(),
            height: 0,
            weight: 0,
        }
    }
}

/// The tag of a slot whose string is pending (its payload is the pending string's number):
/// never in a finished file, where [`Strings::finish`] has replaced it by STR, FSST or COLD.
pub(crate) const PENDING: u8 = 0xfe;

/// An encoded node: where it is and what its parent needs to know about it.
#[derive(Clone, Copy)]
pub(crate) struct NodeRef {
    pub offset: u32,
    pub height: u8,
    pub weight: u64,
}

/// The data section (map and list nodes, deduplicated), plus the key and shape tables
/// that map nodes refer to.
#[derive(Default)]
pub(crate) struct Encoder {
    /// Where this file's address spaces start (an overlay's continue its base's).
    pub starts: Starts,
    pub pool: Pool,
    pub data: Vec<u8>,
    data_dedup: HashTable<(u32, u32, Fingerprint)>,
    pub nodes: usize,
    /// Nested maps written as patch nodes (distinct nodes).
    pub nested_patches: usize,
    /// The greatest walk cost of a node written (see `format::walk_limit`).
    pub max_weight: u64,
    /// Key id -> pool offset of the name.
    pub keys: Vec<u32>,
    key_ids: hashbrown::HashMap<String, u32>,
    /// Shape id -> key ids.
    pub shapes: Vec<Vec<u32>>,
    shape_ids: hashbrown::HashMap<Vec<u32>, u32>,
    /// Per `TupleMap` shape hash: the shape id it encodes to (saves the per-key lookups).
    shape_cache: hashbrown::HashMap<u64, Vec<(u32, Vec<String>)>>,
    scratch: Vec<u8>,
    /// String values, encoded when the file is written (their symbol tables are trained
    /// on all of them).
    pub strings: super::strings::Strings,
    /// Every node of `data`, in order: `(offset of the node, offset of its tags)`. `data`
    /// holds the nodes in the builder's working form, every payload 4 bytes wide;
    /// [`Encoder::narrow`] writes them in the file's form.
    pub node_at: Vec<(u32, u32)>,
    /// An overlay's base chain's compressed strings, by the hash of their text:
    /// `(hash, tag, pool offset)`, so that an equal string refers to the base's entry
    /// (plain ones are found through the pool's index).
    base_strings: HashTable<(u64, u8, u32)>,
}

/// The compressed string stored with slot tag `tag` and payload `off` in `raw`'s chain.
fn stored_str<'a>(raw: crate::read::Raw<'a>, tag: u8, off: u32) -> Option<crate::Str<'a>> {
    match tag {
        tag::FSST => raw.fsst_str(off),
        tag::COLD | tag::COLD_DIRECT => raw.cold_str(tag, off),
        tag::DERIVED => raw.derived_str(off, 1),
        _ => None,
    }
}

/// Indexes every compressed string value of `base`'s merged tree by its text (each nested
/// list or map node visited once, however often it is shared).
fn index_base_strings(base: &Snapshot) -> HashTable<(u64, u8, u32)> {
    let raw = base.raw();
    let mut index: HashTable<(u64, u8, u32)> = HashTable::new();
    let mut seen = hashbrown::HashSet::new();
    let mut text = String::new();
    // The strings of one cold block are met one after another: each block is decoded
    // about once.
    let mut block = crate::read::ColdBlockCache::default();
    let mut stack = Vec::new();
    for (_, rec) in base.iter() {
        stack.push(ValueRef::Map(rec));
        while let Some(v) = stack.pop() {
            match v {
                ValueRef::Str(s) => {
                    let Some((t, off)) = s.stored() else { continue };
                    let bytes: &[u8] = if t == tag::COLD || t == tag::COLD_DIRECT {
                        let Some(c) = raw.cold_ref(t, off) else {
                            continue;
                        };
                        let Some(bytes) = block.bytes(&c) else {
                            continue;
                        };
                        bytes
                    } else {
                        text.clear();
                        if s.write_into(&mut text).is_err() {
                            continue;
                        }
                        text.as_bytes()
                    };
                    let hash = h(bytes);
                    let known = index.find(hash, |&(hh, t2, o2)| {
                        hh == hash
                            && stored_str(raw, t2, o2)
                                .is_some_and(|x| std::str::from_utf8(bytes).is_ok_and(|b| x == b))
                    });
                    if known.is_none() {
                        index.insert_unique(hash, (hash, t, off), |e| e.0);
                    }
                }
                ValueRef::List(l) if seen.insert((true, l.node().0)) => {
                    stack.extend(l.iter());
                }
                // Keyed by the node the map is read from (a patch node, or its map
                // node), so each node is walked once: linear in the base's nodes, also
                // when patches share a base node or refer to one another's.
                ValueRef::Map(m) if seen.insert((false, m.own_offset())) => {
                    stack.extend(m.values());
                }
                _ => {}
            }
        }
    }
    index
}

impl Encoder {
    /// An encoder for an overlay over `base`: its base chain's strings, keys and shapes are
    /// reused, and new ones continue the base's numbering.
    pub fn over(base: &Arc<Snapshot>) -> Result<Encoder> {
        let starts = base.layout().totals().ok_or(Error::Limit {
            what: "address space of the base chain",
            limit: MAX_SECTION_LEN,
        })?;
        let mut enc = Encoder {
            starts,
            pool: Pool::over(base, starts.pool),
            base_strings: index_base_strings(base),
            ..Encoder::default()
        };
        let raw = base.raw();
        for k in 0..starts.key {
            if let Some(name) = raw.key_name(k) {
                enc.key_ids.entry(name.to_owned()).or_insert(k);
            }
        }
        for s in 0..starts.shape {
            if let Some(shape) = raw.shape(s) {
                let keys = shape
                    .keys
                    .chunks_exact(format::SHAPE_KEY_LEN)
                    .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect::<Vec<u32>>();
                enc.shape_ids.entry(keys).or_insert(s);
            }
        }
        Ok(enc)
    }

    /// The tag and pool offset of a compressed string of the base chain equal to `s`.
    fn base_string(&self, s: &str) -> Option<(u8, u32)> {
        if self.base_strings.is_empty() {
            return None;
        }
        let raw = self.pool.base.as_ref()?.0.raw();
        let hash = h(s.as_bytes());
        self.base_strings
            .find(hash, |&(hh, t, o)| {
                hh == hash && stored_str(raw, t, o).is_some_and(|x| x == s)
            })
            .map(|&(_, t, o)| (t, o))
    }

    fn key_id(&mut self, name: &str) -> Result<u32> {
        if let Some(&id) = self.key_ids.get(name) {
            return Ok(id);
        }
        let id = combined(self.starts.key, self.keys.len(), "distinct keys")?;
        let off = self.pool.intern(name.as_bytes())?;
        self.keys.push(off);
        self.key_ids.insert(name.to_owned(), id);
        Ok(id)
    }

    fn shape_id(&mut self, m: &TupleMap) -> Result<u32> {
        let hash = m.shape_hash();
        if let Some(cands) = self.shape_cache.get(&hash) {
            for (id, names) in cands {
                if names.len() == m.len() && names.iter().map(String::as_str).eq(m.keys()) {
                    return Ok(*id);
                }
            }
        }
        let key_ids = m
            .keys()
            .map(|k| self.key_id(k))
            .collect::<Result<Vec<u32>>>()?;
        let id = match self.shape_ids.get(&key_ids) {
            Some(&id) => id,
            None => {
                let id = combined(self.starts.shape, self.shapes.len(), "shapes")?;
                self.shapes.push(key_ids.clone());
                self.shape_ids.insert(key_ids, id);
                id
            }
        };
        let names = m.keys().map(str::to_owned).collect();
        self.shape_cache.entry(hash).or_default().push((id, names));
        Ok(id)
    }

    /// Appends (or finds) a node whose bytes are in `self.scratch`, its tags starting at
    /// `tags_at` there.
    fn commit_node(&mut self, height: u8, weight: u64, tags_at: usize) -> Result<NodeRef> {
        let bytes = &self.scratch;
        let fp = Fingerprint::of(bytes);
        let data = &self.data;
        let found = self.data_dedup.find(fp.hash(), |&(o, l, f)| {
            f == fp && data.get(o as usize..o as usize + l as usize) == Some(&bytes[..])
        });
        if let Some(&(offset, _, _)) = found {
            return Ok(NodeRef {
                offset: self.starts.data + offset,
                height,
                weight,
            });
        }
        let offset = offset_u32(self.data.len(), "data section bytes")?;
        self.data.extend_from_slice(bytes);
        combined(
            self.starts.data,
            self.data.len(),
            "data bytes (with the base's)",
        )?;
        let len = bytes.len() as u32;
        self.node_at.push((offset, offset + tags_at as u32));
        self.data_dedup
            .insert_unique(fp.hash(), (offset, len, fp), |&(_, _, f)| f.hash());
        self.nodes += 1;
        Ok(NodeRef {
            offset: self.starts.data + offset,
            height,
            weight,
        })
    }

    /// Writes a node (header, count or shape id, tags, payloads) into `scratch` and commits it.
    fn node(&mut self, is_list: bool, head: u64, slots: &[Slot]) -> Result<NodeRef> {
        let height = 1 + slots.iter().map(|s| s.height).max().unwrap_or(0);
        let weight = slots
            .iter()
            .map(|s| slot_walk_cost(0, 0) + s.weight)
            .sum::<u64>();
        self.check_limits(height, weight)?;
        self.scratch.clear();
        self.scratch
            .push(height | if is_list { node::LIST_BIT } else { 0 });
        format::put_varint(&mut self.scratch, head);
        let tags_at = self.scratch.len();
        self.scratch.extend(slots.iter().map(|s| s.tag));
        for s in slots {
            self.scratch.extend_from_slice(&s.payload);
        }
        self.commit_node(height, weight, tags_at)
    }

    /// Encodes a map (a record or a nested map).
    pub fn map(&mut self, m: &TupleMap, depth: u8) -> Result<NodeRef> {
        self.map_against(m, None, depth)
    }

    /// Encodes a map; where a value equals the one at the same place in `old` (the base's
    /// version of this map), the base's node is reused instead of written again.
    pub fn map_against(
        &mut self,
        m: &TupleMap,
        old: Option<Record<'_>>,
        depth: u8,
    ) -> Result<NodeRef> {
        let shape = self.shape_id(m)?;
        let slots = m
            .iter()
            .map(|(k, v)| {
                let field = self.key_ids.get(k).copied().unwrap_or(u32::MAX);
                let s = self.slot_against(v, old.and_then(|o| o.get(k)), depth, field)?;
                Ok(Slot {
                    weight: s.weight + k.len() as u64,
                    ..s
                })
            })
            .collect::<Result<Vec<Slot>>>()?;
        self.node(false, shape as u64, &slots)
    }

    /// What an overlay stores for `m`, which changes `old` (a base chain's record or
    /// nested map), when that is not a whole new node: a patch of the map node under
    /// `old` (`(patch, true)`) when `m` has that node's keys in its order (at most
    /// [`format::MAX_PATCH_SLOTS`]) and the patch is the smaller; that node itself
    /// (`(node, false)`) when `m` equals it (`old` is a patch the base applies). `None`:
    /// write `m` whole. `depth`: the nesting depth of `m`'s node (0: a record).
    pub fn patch_against(
        &mut self,
        m: &TupleMap,
        old: Record<'_>,
        depth: u8,
    ) -> Result<Option<(NodeRef, bool)>> {
        let plain = old.unpatched();
        if plain.len() != m.len() || m.len() > format::MAX_PATCH_SLOTS || !plain.keys().eq(m.keys())
        {
            return Ok(None);
        }
        let diffs: Vec<usize> = m
            .values()
            .enumerate()
            .filter(|&(i, v)| !plain.value_at(i).is_some_and(|x| same(x, v)))
            .map(|(i, _)| i)
            .collect();
        if diffs.is_empty() {
            let node = NodeRef {
                offset: plain.node_offset(),
                height: plain.height(),
                weight: weight_of_map(m),
            };
            return Ok(Some((node, false)));
        }
        let n = m.len();
        let patch_len = 1 + 4 + n.div_ceil(8) + diffs.len() * format::SLOT_LEN;
        let whole_len = 1 + 5 + n * format::SLOT_LEN;
        if patch_len >= whole_len {
            return Ok(None);
        }
        Ok(Some((self.patch(old, m, &diffs, depth)?, true)))
    }

    /// Writes a patch node: the map node under `old` (a base map with the same keys as
    /// `m`) with the slots `diffs` replaced by `m`'s values. Each replacing value is
    /// encoded against `old`'s current value there (a lower overlay's, if one patched
    /// it), so that what a lower level stores already is reused, not stored again.
    fn patch(
        &mut self,
        old: Record<'_>,
        m: &TupleMap,
        diffs: &[usize],
        depth: u8,
    ) -> Result<NodeRef> {
        let plain = old.unpatched();
        let values: Vec<(&str, &Value)> = m.iter().collect();
        let mut slots = Vec::with_capacity(diffs.len());
        for &i in diffs {
            let (k, v) = values[i];
            let field = self.key_ids.get(k).copied().unwrap_or(u32::MAX);
            slots.push(self.slot_against(v, old.value_at(i), depth, field)?);
        }
        let height = slots
            .iter()
            .map(|s| s.height + 1)
            .max()
            .unwrap_or(0)
            .max(plain.height());
        let weight = weight_of_map(m);
        self.check_limits(height, weight)?;
        let n = plain.len();
        let mut mask = vec![0u8; n.div_ceil(8)];
        for &i in diffs {
            mask[i / 8] |= 1 << (i % 8);
        }
        self.scratch.clear();
        self.scratch.push(node::PATCH_BIT | height);
        self.scratch
            .extend_from_slice(&plain.node_offset().to_le_bytes());
        self.scratch.extend_from_slice(&mask);
        let tags_at = self.scratch.len();
        self.scratch.extend(slots.iter().map(|s| s.tag));
        for s in &slots {
            self.scratch.extend_from_slice(&s.payload);
        }
        let nodes = self.nodes;
        let node = self.commit_node(height, weight, tags_at)?;
        if depth > 0 && self.nodes > nodes {
            self.nested_patches += 1;
        }
        Ok(node)
    }

    /// Encodes a value; if it equals `old` (the base's value at the same place) and that
    /// is a node, the base's node is reused.
    /// `field` is the key id of the map slot the value is in (list elements: their
    /// list's), which picks its string's symbol table.
    fn slot_against(
        &mut self,
        v: &Value,
        old: Option<ValueRef<'_>>,
        depth: u8,
        field: u32,
    ) -> Result<Slot> {
        match (v, old) {
            (Value::List(items), Some(ValueRef::List(l))) => {
                if same(ValueRef::List(l), v) {
                    let (offset, height) = l.node();
                    return Ok(node_slot(tag::LIST, offset, height, weight_of(v)));
                }
                let r = self.nested(depth, |e, d| e.list_against(items, Some(l), d, field))?;
                Ok(node_slot(tag::LIST, r.offset, r.height, r.weight))
            }
            (Value::Map(m), Some(ValueRef::Map(r))) => {
                if same_map(m, r) {
                    // As the base stores it: its map node, or its patch node.
                    return Ok(node_slot(
                        tag::MAP,
                        r.own_offset(),
                        r.height(),
                        weight_of(v),
                    ));
                }
                let r = self.nested(depth, |e, d| match e.patch_against(m, r, d)? {
                    // Version 5: a nested map may be a patch of the base's node.
                    Some((node, _)) => Ok(node),
                    None => e.map_against(m, Some(r), d),
                })?;
                Ok(node_slot(tag::MAP, r.offset, r.height, r.weight))
            }
            _ => self.slot(v, depth, field),
        }
    }

    fn slot(&mut self, v: &Value, depth: u8, field: u32) -> Result<Slot> {
        Ok(match v {
            Value::Null => Slot::scalar(tag::NULL, 0),
            Value::Bool(false) => Slot::scalar(tag::FALSE, 0),
            Value::Bool(true) => Slot::scalar(tag::TRUE, 0),
            Value::Int(i) => match i32::try_from(*i) {
                Ok(small) => Slot::scalar(tag::INT, small as u32),
                Err(_) => Slot::scalar(tag::INT64, self.pool.intern(&i.to_le_bytes())?),
            },
            Value::Float(f) => {
                let narrow = *f as f32;
                if (narrow as f64).to_bits() == f.to_bits() {
                    Slot::scalar(tag::F32, narrow.to_bits())
                } else {
                    Slot::scalar(tag::F64, self.pool.intern(&f.to_le_bytes())?)
                }
            }
            Value::Str(s) if s.len() <= tag::STR_INLINE_MAX as usize => {
                let mut payload = [0u8; 4];
                payload[..s.len()].copy_from_slice(s.as_bytes());
                Slot {
                    tag: tag::STR_INLINE + s.len() as u8,
                    payload,
                    height: 0,
                    weight: s.len() as u64,
                }
            }
            Value::Str(s) => match self.base_string(s) {
                // The base chain stores it compressed: refer to its entry.
                Some((t, off)) => Slot {
                    weight: s.len() as u64,
                    ..Slot::scalar(t, off)
                },
                None => Slot {
                    weight: s.len() as u64,
                    ..Slot::scalar(PENDING, self.strings.add(s, field)?)
                },
            },
            Value::Bytes(b) => Slot {
                weight: b.len() as u64,
                ..Slot::scalar(tag::BYTES, self.pool.intern(b)?)
            },
            Value::List(items) => {
                let r = self.list(items, depth, field)?;
                Slot {
                    tag: tag::LIST,
                    payload: r.offset.to_le_bytes(),
                    height: r.height,
                    weight: r.weight,
                }
            }
            Value::Map(m) => {
                let r = self.nested(depth, |e, d| e.map(m, d))?;
                Slot {
                    tag: tag::MAP,
                    payload: r.offset.to_le_bytes(),
                    height: r.height,
                    weight: r.weight,
                }
            }
        })
    }

    fn list(&mut self, items: &[Value], depth: u8, field: u32) -> Result<NodeRef> {
        self.nested(depth, |e, d| e.list_against(items, None, d, field))
    }

    fn list_against(
        &mut self,
        items: &[Value],
        old: Option<List<'_>>,
        d: u8,
        field: u32,
    ) -> Result<NodeRef> {
        let slots = items
            .iter()
            .enumerate()
            .map(|(i, v)| self.slot_against(v, old.and_then(|o| o.get(i)), d, field))
            .collect::<Result<Vec<Slot>>>()?;
        self.node(true, slots.len() as u64, &slots)
    }

    /// Descends one level, refusing to recurse past the height limit (so a deep value
    /// cannot overflow the stack before the height check sees it).
    fn nested(
        &mut self,
        depth: u8,
        f: impl FnOnce(&mut Self, u8) -> Result<NodeRef>,
    ) -> Result<NodeRef> {
        if depth >= MAX_HEIGHT {
            return Err(Error::nesting_limit());
        }
        f(self, depth + 1)
    }

    /// Refuses a node past the height or walk limits; remembers the greatest walk cost
    /// (the file's size decides whether it is within the snapshot's walk limit).
    fn check_limits(&mut self, height: u8, weight: u64) -> Result<()> {
        if height > MAX_HEIGHT {
            return Err(Error::nesting_limit());
        }
        if weight > MAX_WALK {
            return Err(Error::walk_limit(MAX_WALK));
        }
        self.max_weight = self.max_weight.max(weight);
        Ok(())
    }

    /// The shape section: count, offset index, bodies.
    pub fn shapes_section(&self) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        out.extend_from_slice(&offset_u32(self.shapes.len(), "shapes")?.to_le_bytes());
        let index_end = 4 + self.shapes.len() * format::SHAPE_OFFSET_LEN;
        let mut bodies = Vec::new();
        for keys in &self.shapes {
            out.extend_from_slice(
                &offset_u32(index_end + bodies.len(), "shape section bytes")?.to_le_bytes(),
            );
            format::put_varint(&mut bodies, keys.len() as u64);
            for k in keys {
                bodies.extend_from_slice(&k.to_le_bytes());
            }
            // The slot table: for key id `base + i`, its slot + 1 (0 = not in this shape).
            let base = keys.iter().copied().min().unwrap_or(0);
            let span = keys
                .iter()
                .map(|&k| (k - base) as u64 + 1)
                .max()
                .unwrap_or(0);
            if format::shape_has_table(keys.len(), span) {
                let mut table = vec![0u8; span as usize];
                for (slot, &k) in keys.iter().enumerate() {
                    table[(k - base) as usize] = slot as u8 + 1;
                }
                bodies.extend_from_slice(&base.to_le_bytes());
                format::put_varint(&mut bodies, span);
                bodies.extend_from_slice(&table);
            } else {
                bodies.extend_from_slice(&0u32.to_le_bytes());
                format::put_varint(&mut bodies, 0);
            }
        }
        out.extend_from_slice(&bodies);
        Ok(out)
    }
}

/// The data section in the file's form, from the builder's working form (every payload 4
/// bytes wide, string slots pending): [`Encoder::narrow`].
pub(crate) struct Narrowed {
    /// The data section.
    pub data: Vec<u8>,
    /// Where this file's data starts in the combined space.
    start: u32,
    /// The working form's node offsets, in order (as [`Encoder::node_at`]).
    from: Vec<u32>,
    /// Each node's offset in `data`.
    to: Vec<u32>,
}

impl Narrowed {
    /// The file's (combined) data offset of the node at combined working offset `off`:
    /// a base's node and a tombstone keep theirs.
    pub fn remap(&self, off: u32) -> u32 {
        match off.checked_sub(self.start) {
            Some(own) if off != format::TOMBSTONE => match self.from.binary_search(&own) {
                Ok(i) => self.to.get(i).map_or(off, |&to| self.start + to),
                // Never: references are to node starts. Kept as they are.
                Err(_) => off,
            },
            _ => off,
        }
    }
}

/// The tag of the longest inline string (4 bytes: it needs a 4-byte payload).
const LONGEST_INLINE: u8 = tag::STR_INLINE + tag::STR_INLINE_MAX;

impl Encoder {
    /// Writes the data section in the file's form (FORMAT.md "DATA"): each node with the
    /// narrowest payload width its slots need ([`format::payload_width`]), in the order
    /// the builder wrote them (children before parents), its pending string slots given
    /// their stored form by `string` (`(tag, pool offset)` of pending string `i`), its
    /// references to this file's nodes moved to where those nodes land. O(data).
    ///
    /// An inline string needs a payload as wide as it is long: where 4-byte inline strings
    /// alone would widen a node to 4 bytes, they are stored as pool strings instead
    /// (`intern` gives the pool offset of an entry holding the bytes) if their references
    /// fit the width the node's other slots need, or 3 bytes.
    pub fn narrow(
        &self,
        string: impl Fn(u32) -> Result<(u8, u32)>,
        mut intern: impl FnMut(&[u8]) -> Result<u32>,
    ) -> Result<Narrowed> {
        let mut out = Narrowed {
            data: Vec::with_capacity(self.data.len()),
            start: self.starts.data,
            from: self.node_at.iter().map(|&(o, _)| o).collect(),
            to: Vec::with_capacity(self.node_at.len()),
        };
        let corrupt = |what: &str| Error::Corrupt {
            what: format!("builder data: {what}"),
        };
        let mut slots: Vec<(u8, u32)> = Vec::new();
        for (k, &(at, tags)) in self.node_at.iter().enumerate() {
            let end = self
                .node_at
                .get(k + 1)
                .map_or(self.data.len(), |&(next, _)| next as usize);
            let (at, tags) = (at as usize, tags as usize);
            let n = (end - tags) / format::SLOT_LEN;
            slots.clear();
            for i in 0..n {
                let t = self.data[tags + i];
                let p = format::u32_at(&self.data, tags + n + 4 * i)
                    .ok_or_else(|| corrupt("slot cut"))?;
                slots.push(match t {
                    PENDING => string(p)?,
                    tag::LIST | tag::MAP => (t, out.remap(p)),
                    _ => (t, p),
                });
            }
            let width = |slots: &[(u8, u32)], inline: bool| {
                slots
                    .iter()
                    .filter(|&&(t, _)| inline || t != LONGEST_INLINE)
                    .map(|&(t, p)| format::payload_width(t, p))
                    .max()
                    .unwrap_or(1)
            };
            let mut w = width(&slots, true);
            let narrower = width(&slots, false).max(format::MAX_WIDTH - 1);
            if w > narrower {
                let mut moved = slots.clone();
                for slot in moved.iter_mut().filter(|s| s.0 == LONGEST_INLINE) {
                    let bytes = slot.1.to_le_bytes();
                    *slot = (tag::STR, intern(&bytes)?);
                }
                let need = width(&moved, true);
                if need <= narrower {
                    slots = moved;
                    w = need;
                }
            }
            let header = self.data[at];
            let offset = offset_u32(out.data.len(), "data section bytes")?;
            out.to.push(offset);
            out.data.push(header);
            if header & node::PATCH_BIT != 0 {
                // Patch: a u32 base, then the mask (up to the tags).
                let base = format::u32_at(&self.data, at + 1).ok_or_else(|| corrupt("patch"))?;
                let head = format::join_head(u64::from(out.remap(base)), w);
                format::put_varint(&mut out.data, head);
                out.data.extend_from_slice(&self.data[at + 5..tags]);
            } else {
                let (head, _) =
                    format::varint_at(&self.data, at + 1).ok_or_else(|| corrupt("head"))?;
                format::put_varint(&mut out.data, format::join_head(head, w));
            }
            out.data.extend(slots.iter().map(|&(t, _)| t));
            for &(t, p) in &slots {
                let stored = format::narrow_payload(t, p, w).to_le_bytes();
                out.data.extend_from_slice(&stored[..w]);
            }
        }
        combined(
            self.starts.data,
            out.data.len(),
            "data bytes (with the base's)",
        )?;
        Ok(out)
    }
}

fn node_slot(tag: u8, offset: u32, height: u8, weight: u64) -> Slot {
    Slot {
        tag,
        payload: offset.to_le_bytes(),
        height,
        weight,
    }
}

/// The walk cost of a value's slot below the slot itself (see `MAX_WALK`): what the
/// encoder computes for it, so a reused base node is charged what a new one would be.
fn weight_of(v: &Value) -> u64 {
    match v {
        Value::Str(s) => s.len() as u64,
        Value::Bytes(b) => b.len() as u64,
        Value::List(items) => items
            .iter()
            .map(|x| slot_walk_cost(0, 0) + weight_of(x))
            .sum(),
        Value::Map(m) => weight_of_map(m),
        _ => 0,
    }
}

fn weight_of_map(m: &TupleMap) -> u64 {
    m.iter()
        .map(|(k, x)| slot_walk_cost(k.len(), 0) + weight_of(x))
        .sum()
}

/// Whether a stored value is exactly `v` ([`Compare::Identical`]): reusing a base node
/// for `v` is only right when this holds.
pub(crate) fn same(r: ValueRef<'_>, v: &Value) -> bool {
    compare(r, v, Compare::Identical)
}

/// Whether record `r` has exactly `m`'s fields, in `m`'s order, with the same values.
pub(crate) fn same_map(m: &TupleMap, r: Record<'_>) -> bool {
    compare_map(r, m, Compare::Identical)
}

/// The hash the builder places index entries by: [`format::index_hash`]. Unit tests may
/// swap in a weak hash (`weak_index_hash`) so that colliding ids are cheap to make.
#[inline]
pub(crate) fn index_hash(bytes: &[u8]) -> u64 {
    #[cfg(test)]
    if let Some(weak) = WEAK_INDEX_HASH.get() {
        return weak(bytes);
    }
    format::index_hash(bytes)
}

/// A stand-in for [`format::index_hash`] (unit tests only).
#[cfg(test)]
type IndexHashFn = fn(&[u8]) -> u64;

#[cfg(test)]
thread_local! {
    static WEAK_INDEX_HASH: std::cell::Cell<Option<IndexHashFn>> =
        const { std::cell::Cell::new(None) };
    /// The slot counts `index_section` tried, in order (its allocations).
    static SLOTS_TRIED: std::cell::RefCell<Vec<usize>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Makes this thread's builds place index entries by `hash` instead of
/// [`format::index_hash`] (`None`: the real one again). Unit tests only: a file built so
/// is not readable by its weakened ids.
#[cfg(test)]
pub(crate) fn weak_index_hash(hash: Option<IndexHashFn>) {
    WEAK_INDEX_HASH.set(hash);
}

/// The slot counts this thread's `index_section` calls tried since the last call.
#[cfg(test)]
pub(crate) fn take_slots_tried() -> Vec<usize> {
    SLOTS_TRIED.take()
}

/// How many times `index_section` may double its table past the first size (load factor
/// 1/2, i.e. `2 * count` rounded up to a power of two): the table stays below 32 slots
/// (256 bytes) per entry. With hashes that behave randomly, a load of 1/2 already places
/// every entry within `MAX_PROBE` probes with overwhelming probability, and each doubling
/// halves the load; entries that still do not fit at a load of 1/16 or less share their
/// low hash bits far beyond chance, which random or real ids do not do.
pub(crate) const INDEX_MAX_DOUBLINGS: u32 = 3;

/// Builds a hash index section: header, slots, entries. `hash(i)` is the hash of entry
/// `i`'s key; `entries` are the entries' fields, `fields` per entry, in order. `narrow`:
/// the version-4 form (one-byte tags, entry numbers and fields as narrow as they can be);
/// otherwise 4-byte tags, entry numbers and fields.
///
/// Memory and work are bounded by the count, whatever the hashes: at most
/// [`INDEX_MAX_DOUBLINGS`] + 1 tables are tried, the largest below 32 slots per entry, and
/// no entry probes more than `MAX_PROBE` slots. Keys whose hashes collide so that no such
/// table can place them (ids crafted against the fixed-seed hash of format v1) give
/// [`Error::Limit`] instead of an ever larger table.
pub(crate) fn index_section(
    count: usize,
    hash: impl Fn(usize) -> u64,
    entries: &[u32],
    narrow: bool,
) -> Result<Vec<u8>> {
    let count32 = u32::try_from(count).map_err(|_| Error::Limit {
        what: "index entries",
        limit: u32::MAX as u64,
    })?;
    let hashes: Vec<u64> = (0..count).map(hash).collect();
    // Slot counts are u32 powers of two in the file.
    const MAX_SLOTS: usize = 1 << 31;
    let first = count
        .max(1)
        .checked_mul(2)
        .and_then(usize::checked_next_power_of_two)
        .filter(|&s| s <= MAX_SLOTS)
        .ok_or(Error::Limit {
            what: "index slots",
            limit: MAX_SLOTS as u64,
        })?;
    let last = first
        .saturating_mul(1 << INDEX_MAX_DOUBLINGS)
        .min(MAX_SLOTS);
    let mut slots = first;
    loop {
        #[cfg(test)]
        SLOTS_TRIED.with_borrow_mut(|t| t.push(slots));
        if let Some((table, max_probe)) = place_in_index(&hashes, slots) {
            let (tag_w, entry_w, field_w) = if narrow {
                let field_w = entries
                    .iter()
                    .map(|&f| format::uint_width(f))
                    .max()
                    .unwrap_or(1);
                (1, format::uint_width(count32), field_w)
            } else {
                (4, 4, 4)
            };
            let mut out = Vec::with_capacity(
                format::INDEX_HEADER_LEN + slots * (tag_w + entry_w) + entries.len() * field_w,
            );
            out.extend_from_slice(&count32.to_le_bytes());
            out.extend_from_slice(&(slots as u32).to_le_bytes());
            if narrow {
                out.extend_from_slice(&(max_probe as u16).to_le_bytes());
                out.extend_from_slice(&[entry_w as u8, field_w as u8]);
            } else {
                out.extend_from_slice(&max_probe.to_le_bytes());
            }
            for (t, e) in table {
                let t = if narrow { t >> 24 } else { t };
                out.extend_from_slice(&t.to_le_bytes()[..tag_w]);
                out.extend_from_slice(&e.to_le_bytes()[..entry_w]);
            }
            for f in entries {
                out.extend_from_slice(&f.to_le_bytes()[..field_w]);
            }
            return Ok(out);
        }
        if slots >= last {
            return Err(Error::Limit {
                what: "probes per index lookup: ids or key names collide in the index hash \
                       (XXH3, the fixed seed of format v1) beyond what a table of 32 slots per \
                       entry can place; the input may be crafted to collide",
                limit: MAX_PROBE as u64,
            });
        }
        slots *= 2;
    }
}

/// Places every hash in a table of `slots` (a power of two) by linear probing: the table
/// of `(tag, entry + 1)` and the most probes any entry needs, or `None` as soon as one
/// entry would need more than `MAX_PROBE`. O(count × MAX_PROBE) at worst.
fn place_in_index(hashes: &[u64], slots: usize) -> Option<(Vec<(u32, u32)>, u32)> {
    let mut table = vec![(0u32, 0u32); slots];
    let mut max_probe = 0u32;
    for (i, &hh) in hashes.iter().enumerate() {
        let mut pos = format::index_home(hh, slots as u32) as usize;
        let mut probes = 1u32;
        while table[pos].1 != 0 {
            if probes == MAX_PROBE {
                return None;
            }
            pos = (pos + 1) & (slots - 1);
            probes += 1;
        }
        max_probe = max_probe.max(probes);
        table[pos] = (format::index_tag(hh), i as u32 + 1);
    }
    Some((table, max_probe))
}

#[cfg(test)]
mod index_flood_tests {
    use super::*;
    use crate::SnapshotBuilder;

    /// The real hash, except that ids starting with `flood:` all get the same low 32 bits,
    /// so they share their home slot in every table size: what an attacker gets by
    /// searching for ids against the fixed-seed hash, at no cost.
    fn flood_weak(bytes: &[u8]) -> u64 {
        let h = format::index_hash(bytes);
        if bytes.starts_with(b"flood:") {
            h & !0xffff_ffff
        } else {
            h
        }
    }

    /// Runs `f` with this thread's builds placing ids by [`flood_weak`].
    fn with_weak_hash<T>(f: impl FnOnce() -> T) -> T {
        struct Reset;
        impl Drop for Reset {
            fn drop(&mut self) {
                weak_index_hash(None);
            }
        }
        let _reset = Reset;
        weak_index_hash(Some(flood_weak));
        take_slots_tried();
        f()
    }

    fn builder(normal: usize, flood: usize) -> SnapshotBuilder {
        let mut b = SnapshotBuilder::new();
        for i in 0..normal {
            b.insert(&format!("video:{i}"), &serde_json::json!({"n": i}))
                .unwrap();
        }
        for i in 0..flood {
            b.insert(&format!("flood:{i}"), &serde_json::json!({"n": i}))
                .unwrap();
        }
        b
    }

    #[test]
    fn colliding_ids_fail_fast_with_a_bounded_table() {
        let (normal, flood) = (5_000, 200);
        let err = with_weak_hash(|| builder(normal, flood).to_bytes().unwrap_err());
        let Error::Limit { what, limit } = &err else {
            panic!("expected Error::Limit, got {err:?}");
        };
        assert_eq!(*limit, MAX_PROBE as u64);
        assert!(what.contains("collide in the index hash"), "{err}");
        assert!(what.contains("crafted"), "{err}");
        // The key index (one key) was built first; then the id index tried its first size
        // and exactly INDEX_MAX_DOUBLINGS doublings, all below 32 slots per id.
        let tried = take_slots_tried();
        let ids = normal + flood;
        let first = (2 * ids).next_power_of_two();
        assert_eq!(
            tried,
            [2, first, first * 2, first * 4, first * 8],
            "{tried:?}"
        );
        assert!(tried.iter().all(|&s| s < 32 * ids), "{tried:?}");
    }

    #[test]
    fn a_flood_of_ids_alone_fails_without_growing_past_the_bound() {
        // Every entry collides: the table cannot help at any size.
        take_slots_tried();
        let hashes = 10_000;
        let err =
            index_section(hashes, |_| 0xdead_beef_0000_0007, &vec![0; hashes], true).unwrap_err();
        assert!(matches!(err, Error::Limit { limit, .. } if limit == MAX_PROBE as u64));
        let tried = take_slots_tried();
        assert_eq!(tried.len(), 1 + INDEX_MAX_DOUBLINGS as usize);
        assert_eq!(*tried.last().unwrap(), (2 * hashes).next_power_of_two() * 8);
    }

    #[test]
    fn a_few_colliding_ids_and_normal_ids_still_build() {
        // Normal data, with the weak hash installed (it is the real hash for these ids):
        // builds at the first size and reads back.
        let bytes = with_weak_hash(|| builder(5_000, 0).to_bytes().unwrap());
        let tried = take_slots_tried();
        assert_eq!(
            tried,
            [2, (2 * 5_000usize).next_power_of_two()],
            "{tried:?}"
        );
        let snap = crate::Snapshot::from_bytes(bytes).unwrap();
        snap.verify().unwrap();
        assert_eq!(snap.len(), 5_000);
        assert_eq!(
            snap.get("video:4321").unwrap().get("n").unwrap().as_i64(),
            Some(4321)
        );
        // 40 ids on one home slot fit within the probe limit: the build succeeds.
        with_weak_hash(|| builder(5_000, 40).to_bytes().unwrap());
        let tried = take_slots_tried();
        assert!(
            tried.len() <= 1 + 1 + INDEX_MAX_DOUBLINGS as usize,
            "{tried:?}"
        );
    }

    #[test]
    fn the_empty_index_has_two_slots() {
        let s = index_section(0, |_| unreachable!(), &[], true).unwrap();
        // Narrow: 1-byte entry numbers and fields, 2-byte slots.
        assert_eq!(&s[..12], &[0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 1, 1]);
        assert_eq!(s.len(), 12 + 2 * 2);
        let s = index_section(0, |_| unreachable!(), &[], false).unwrap();
        assert_eq!(&s[..12], &[0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(s.len(), 12 + 2 * 8);
    }

    /// By hand: `cargo test --release --lib a_million_random_ids -- --ignored --nocapture`.
    #[test]
    #[ignore = "slow; run by hand to time a large build"]
    fn a_million_random_ids_build() {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut b = SnapshotBuilder::new();
        for _ in 0..1_000_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            b.insert(&format!("id:{x:016x}"), &serde_json::json!({"x": 1}))
                .unwrap();
        }
        take_slots_tried();
        let t = std::time::Instant::now();
        let bytes = b.to_bytes().unwrap();
        let tried = take_slots_tried();
        eprintln!(
            "1M random ids: to_bytes {:?}, slots tried {tried:?}",
            t.elapsed()
        );
        assert_eq!(tried[1], (2 * 1_000_000usize).next_power_of_two());
        assert_eq!(crate::Snapshot::from_bytes(bytes).unwrap().len(), 1_000_000);
    }
}
