//! Encoding values into the pool and data sections, with deduplication, and building the
//! hash indexes.

use hashbrown::HashTable;

use crate::error::{Error, Result};
use crate::format::{self, MAX_HEIGHT, MAX_PROBE, MAX_SECTION_LEN, MAX_WALK, node, tag};
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

/// The pool: `varint len ++ bytes` entries, each distinct byte string stored once.
#[derive(Default)]
pub(crate) struct Pool {
    pub bytes: Vec<u8>,
    dedup: HashTable<u32>,
}

impl Pool {
    /// The offset of an entry holding `b`, appending one if needed.
    pub fn intern(&mut self, b: &[u8]) -> Result<u32> {
        let hash = h(b);
        let pool = &self.bytes;
        if let Some(&off) = self
            .dedup
            .find(hash, |&o| format::pool_entry(pool, o as usize) == Some(b))
        {
            return Ok(off);
        }
        let off = offset_u32(self.bytes.len(), "pool section bytes")?;
        format::put_varint(&mut self.bytes, b.len() as u64);
        self.bytes.extend_from_slice(b);
        offset_u32(self.bytes.len(), "pool section bytes")?;
        let pool = &self.bytes;
        self.dedup.insert_unique(hash, off, |&o| {
            h(format::pool_entry(pool, o as usize).unwrap_or_default())
        });
        Ok(off)
    }

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
    pub pool: Pool,
    pub data: Vec<u8>,
    data_dedup: HashTable<(u32, u32)>,
    pub nodes: usize,
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
    fn key_id(&mut self, name: &str) -> Result<u32> {
        if let Some(&id) = self.key_ids.get(name) {
            return Ok(id);
        }
        let id = u32::try_from(self.keys.len()).map_err(|_| Error::Limit {
            what: "distinct keys",
            limit: u32::MAX as u64,
        })?;
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
                let id = self.shapes.len() as u32;
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
                offset,
                height,
                weight,
            });
        }
        let offset = offset_u32(self.data.len(), "data section bytes")?;
        self.data.extend_from_slice(bytes);
        offset_u32(self.data.len(), "data section bytes")?;
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
            offset,
            height,
            weight,
        })
    }

    /// Writes a node (header, count or shape id, tags, payloads) into `scratch` and commits it.
    fn node(&mut self, is_list: bool, head: u64, slots: &[Slot]) -> Result<NodeRef> {
        let height = 1 + slots.iter().map(|s| s.height).max().unwrap_or(0);
        if height > MAX_HEIGHT {
            return Err(Error::Limit {
                what: "nesting depth of maps and lists",
                limit: MAX_HEIGHT as u64,
            });
        }
        let weight = slots.iter().map(|s| 1 + s.weight).sum::<u64>();
        if weight > MAX_WALK {
            return Err(Error::Limit {
                what: "walk cost of one record (values plus string bytes)",
                limit: MAX_WALK,
            });
        }
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
        let shape = self.shape_id(m)?;
        let slots = m
            .iter()
            .map(|(k, v)| {
                let s = self.slot(v, depth)?;
                Ok(Slot {
                    weight: s.weight + k.len() as u64,
                    ..s
                })
            })
            .collect::<Result<Vec<Slot>>>()?;
        self.node(false, shape as u64, &slots)
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
        self.nested(depth, |e, d| {
            let slots = items
                .iter()
                .map(|v| e.slot(v, d))
                .collect::<Result<Vec<Slot>>>()?;
            e.node(true, slots.len() as u64, &slots)
        })
    }

    /// Descends one level, refusing to recurse past the height limit (so a deep value
    /// cannot overflow the stack before the height check sees it).
    fn nested(
        &mut self,
        depth: u8,
        f: impl FnOnce(&mut Self, u8) -> Result<NodeRef>,
    ) -> Result<NodeRef> {
        if depth >= MAX_HEIGHT {
            return Err(Error::Limit {
                what: "nesting depth of maps and lists",
                limit: MAX_HEIGHT as u64,
            });
        }
        f(self, depth + 1)
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
