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

/// The pool: `varint len ++ bytes` entries, each distinct byte string stored once. For an
/// overlay, a string its base chain already holds is not stored again: `intern` returns
/// the base's entry.
#[derive(Default)]
pub(crate) struct Pool {
    pub bytes: Vec<u8>,
    dedup: HashTable<u32>,
    /// Where this file's pool starts in the combined space (0 unless an overlay).
    start: u32,
    /// An overlay's base and the combined offsets of every entry of its chain's pools.
    base: Option<(Arc<Snapshot>, HashTable<u32>)>,
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
                let off = raw.l.starts.pool as usize + at;
                if let Ok(off) = u32::try_from(off) {
                    let hash = h(entry);
                    if index
                        .find(hash, |&o| raw.pool_bytes(o) == Some(entry))
                        .is_none()
                    {
                        index.insert_unique(hash, off, |&o| {
                            h(base.raw().pool_bytes(o).unwrap_or_default())
                        });
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
        let hash = h(b);
        if let Some((snap, index)) = &self.base {
            let raw = snap.raw();
            if let Some(&off) = index.find(hash, |&o| raw.pool_bytes(o) == Some(b)) {
                return Ok(off);
            }
        }
        let pool = &self.bytes;
        if let Some(&off) = self
            .dedup
            .find(hash, |&o| format::pool_entry(pool, o as usize) == Some(b))
        {
            return Ok(self.start + off);
        }
        let off = offset_u32(self.bytes.len(), "pool section bytes")?;
        format::put_varint(&mut self.bytes, b.len() as u64);
        self.bytes.extend_from_slice(b);
        combined(self.start, self.bytes.len(), "pool bytes (with the base's)")?;
        let pool = &self.bytes;
        self.dedup.insert_unique(hash, off, |&o| {
            h(format::pool_entry(pool, o as usize).unwrap_or_default())
        });
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
    data_dedup: HashTable<(u32, u32)>,
    pub nodes: usize,
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

    /// Appends (or finds) a node whose bytes are in `self.scratch`.
    fn commit_node(&mut self, height: u8, weight: u64) -> Result<NodeRef> {
        let bytes = &self.scratch;
        let hash = h(bytes);
        let data = &self.data;
        let found = self.data_dedup.find(hash, |&(o, l)| {
            data.get(o as usize..o as usize + l as usize) == Some(&bytes[..])
        });
        if let Some(&(offset, _)) = found {
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
        let data = &self.data;
        self.data_dedup
            .insert_unique(hash, (offset, len), |&(o, l)| {
                h(data
                    .get(o as usize..o as usize + l as usize)
                    .unwrap_or_default())
            });
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
        self.scratch.extend(slots.iter().map(|s| s.tag));
        for s in slots {
            self.scratch.extend_from_slice(&s.payload);
        }
        self.commit_node(height, weight)
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
                let s = self.slot_against(v, old.and_then(|o| o.get(k)), depth)?;
                Ok(Slot {
                    weight: s.weight + k.len() as u64,
                    ..s
                })
            })
            .collect::<Result<Vec<Slot>>>()?;
        self.node(false, shape as u64, &slots)
    }

    /// Writes a patch node: `plain` (a base map node with the same keys as `m`) with the
    /// slots `diffs` replaced by `m`'s values. Returns its (combined) offset.
    pub fn patch(&mut self, plain: Record<'_>, m: &TupleMap, diffs: &[usize]) -> Result<u32> {
        let values: Vec<(&str, &Value)> = m.iter().collect();
        let mut slots = Vec::with_capacity(diffs.len());
        for &i in diffs {
            let (_, v) = values[i];
            slots.push(self.slot_against(v, plain.value_at(i), 0)?);
        }
        let height = slots
            .iter()
            .map(|s| s.height + 1)
            .max()
            .unwrap_or(0)
            .max(plain.height());
        self.check_limits(height, weight_of_map(m))?;
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
        self.scratch.extend(slots.iter().map(|s| s.tag));
        for s in &slots {
            self.scratch.extend_from_slice(&s.payload);
        }
        Ok(self.commit_node(height, 0)?.offset)
    }

    /// Encodes a value; if it equals `old` (the base's value at the same place) and that
    /// is a node, the base's node is reused.
    fn slot_against(&mut self, v: &Value, old: Option<ValueRef<'_>>, depth: u8) -> Result<Slot> {
        match (v, old) {
            (Value::List(items), Some(ValueRef::List(l))) => {
                if same(ValueRef::List(l), v) {
                    let (offset, height) = l.node();
                    return Ok(node_slot(tag::LIST, offset, height, weight_of(v)));
                }
                let r = self.nested(depth, |e, d| e.list_against(items, Some(l), d))?;
                Ok(node_slot(tag::LIST, r.offset, r.height, r.weight))
            }
            (Value::Map(m), Some(ValueRef::Map(r))) => {
                if same_map(m, r) {
                    return Ok(node_slot(
                        tag::MAP,
                        r.node_offset(),
                        r.height(),
                        weight_of(v),
                    ));
                }
                let r = self.nested(depth, |e, d| e.map_against(m, Some(r), d))?;
                Ok(node_slot(tag::MAP, r.offset, r.height, r.weight))
            }
            _ => self.slot(v, depth),
        }
    }

    fn slot(&mut self, v: &Value, depth: u8) -> Result<Slot> {
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
            Value::Str(s) => Slot {
                weight: s.len() as u64,
                ..Slot::scalar(tag::STR, self.pool.intern(s.as_bytes())?)
            },
            Value::Bytes(b) => Slot {
                weight: b.len() as u64,
                ..Slot::scalar(tag::BYTES, self.pool.intern(b)?)
            },
            Value::List(items) => {
                let r = self.list(items, depth)?;
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

    fn list(&mut self, items: &[Value], depth: u8) -> Result<NodeRef> {
        self.nested(depth, |e, d| e.list_against(items, None, d))
    }

    fn list_against(&mut self, items: &[Value], old: Option<List<'_>>, d: u8) -> Result<NodeRef> {
        let slots = items
            .iter()
            .enumerate()
            .map(|(i, v)| self.slot_against(v, old.and_then(|o| o.get(i)), d))
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

/// Builds a hash index section: header, slots, entries. `hash(i)` is the hash of entry
/// `i`'s key; `entries` are the encoded entries, `entry_len` bytes each.
pub(crate) fn index_section(
    count: usize,
    hash: impl Fn(usize) -> u64,
    entries: &[u8],
) -> Result<Vec<u8>> {
    let count32 = u32::try_from(count).map_err(|_| Error::Limit {
        what: "index entries",
        limit: u32::MAX as u64,
    })?;
    let hashes: Vec<u64> = (0..count).map(hash).collect();
    // Load factor at most 1/2; grow until no lookup needs more than MAX_PROBE probes.
    let mut slots = (count.max(1) * 2).next_power_of_two();
    loop {
        let mut table = vec![(0u32, 0u32); slots];
        let mut max_probe = 0u32;
        let mut ok = true;
        for (i, &hh) in hashes.iter().enumerate() {
            let mut pos = format::index_home(hh, slots as u32) as usize;
            let mut probes = 1u32;
            while table[pos].1 != 0 {
                pos = (pos + 1) & (slots - 1);
                probes += 1;
            }
            if probes > MAX_PROBE {
                ok = false;
                break;
            }
            max_probe = max_probe.max(probes);
            table[pos] = (format::index_tag(hh), i as u32 + 1);
        }
        if ok {
            let mut out = Vec::with_capacity(format::INDEX_HEADER_LEN + slots * 8 + entries.len());
            out.extend_from_slice(&count32.to_le_bytes());
            out.extend_from_slice(&(slots as u32).to_le_bytes());
            out.extend_from_slice(&max_probe.to_le_bytes());
            for (t, e) in table {
                out.extend_from_slice(&t.to_le_bytes());
                out.extend_from_slice(&e.to_le_bytes());
            }
            out.extend_from_slice(entries);
            return Ok(out);
        }
        slots = slots
            .checked_mul(2)
            .filter(|&s| s <= 1 << 31)
            .ok_or(Error::Limit {
                what: "index slots",
                limit: 1 << 31,
            })?;
    }
}
