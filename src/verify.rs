//! The full validation pass: everything a read relies on, checked once, in O(n).
//!
//! Order: section checksums; the pool, scanned entry by entry (marking where entries start
//! and which are UTF-8); the key table; the shapes; the data section, scanned node by node
//! (every reference must point strictly backwards to the start of a node of the right
//! kind and a smaller height; heights and walk sizes are recomputed); the id index.
//! A snapshot that passes never makes a read return `None` or `Err`.

use crate::error::{Error, Result};
use crate::format::{self, MAX_HEIGHT, MAX_WALK, node, section, tag};
use crate::read::{Layout, Raw};

/// A set of byte offsets, one bit each.
struct Bits(Vec<u64>);

impl Bits {
    fn new(len: usize) -> Bits {
        Bits(vec![0; len / 64 + 1])
    }
    fn set(&mut self, i: usize) {
        self.0[i / 64] |= 1 << (i % 64);
    }
    fn get(&self, i: usize) -> bool {
        self.0.get(i / 64).is_some_and(|w| w & (1 << (i % 64)) != 0)
    }
}

struct Pool {
    starts: Bits,
    utf8: Bits,
}

fn err(offset: usize, what: impl Into<String>) -> Error {
    Error::format(offset, what)
}

pub(crate) fn verify(b: &[u8], l: &Layout) -> Result<()> {
    for s in &l.header.sections {
        let bytes = b
            .get(s.offset as usize..(s.offset + s.len) as usize)
            .ok_or_else(|| err(s.offset as usize, "section out of bounds"))?;
        if format::section_checksum(bytes) != s.checksum {
            return Err(Error::Checksum {
                section: section::name(s.kind),
                offset: s.offset,
                end: s.offset + s.len,
            });
        }
    }
    let raw = Raw { b, l };
    let pool = verify_pool(b, l)?;
    let key_lens = verify_keys(raw, &pool)?;
    let shapes = verify_shapes(raw, &key_lens)?;
    let nodes = verify_data(raw, &pool, &shapes)?;
    verify_ids(raw, &pool, &nodes)
}

fn verify_pool(b: &[u8], l: &Layout) -> Result<Pool> {
    let pool = b
        .get(l.pool.clone())
        .ok_or_else(|| err(l.pool.start, "pool section out of bounds"))?;
    let mut p = Pool {
        starts: Bits::new(pool.len()),
        utf8: Bits::new(pool.len()),
    };
    let mut at = 0;
    while at < pool.len() {
        let entry = format::pool_entry(pool, at)
            .ok_or_else(|| err(l.pool.start + at, "pool entry overruns the pool section"))?;
        p.starts.set(at);
        if std::str::from_utf8(entry).is_ok() {
            p.utf8.set(at);
        }
        at = entry.as_ptr() as usize - pool.as_ptr() as usize + entry.len();
    }
    Ok(p)
}

/// Checks that `off` is the start of a pool entry (and UTF-8 if `utf8`, 8 bytes if `wide`).
fn check_pool_ref(
    raw: Raw<'_>,
    pool: &Pool,
    off: u32,
    utf8: bool,
    wide: bool,
    at: usize,
    what: &str,
) -> Result<()> {
    let o = off as usize;
    if !pool.starts.get(o) {
        return Err(err(
            at,
            format!("{what}: pool offset {off} is not the start of an entry"),
        ));
    }
    if utf8 && !pool.utf8.get(o) {
        return Err(err(at, format!("{what}: pool entry at {off} is not UTF-8")));
    }
    if wide && raw.pool_bytes(off).map(<[u8]>::len) != Some(8) {
        return Err(err(
            at,
            format!("{what}: pool entry at {off} is not 8 bytes"),
        ));
    }
    Ok(())
}

/// Checks the key table; returns each key name's length in bytes.
fn verify_keys(raw: Raw<'_>, pool: &Pool) -> Result<Vec<u64>> {
    let k = &raw.l.keys;
    let mut lens = Vec::with_capacity(k.count as usize);
    for id in 0..k.count {
        let at = k.entries_at + id as usize * format::KEY_ENTRY_LEN;
        let off = format::u32_at(raw.b, at).ok_or_else(|| err(at, "key entry out of bounds"))?;
        check_pool_ref(raw, pool, off, true, false, at, "key name")?;
        let name = raw
            .key_name(id)
            .ok_or_else(|| err(at, "unreadable key name"))?;
        if raw.find_key(name) != Some(id) {
            return Err(err(
                at,
                format!(
                    "key {id} ({name:?}) is not found by the key index (duplicate or misplaced)"
                ),
            ));
        }
        lens.push(name.len() as u64);
    }
    Ok(lens)
}

/// What the data pass needs to know about a shape.
struct ShapeInfo {
    /// Number of keys (slots of a map node of this shape).
    keys: usize,
    /// Total bytes of its key names (part of the walk cost of every map node of it).
    key_bytes: u64,
}

/// Checks every shape; returns its [`ShapeInfo`], indexed by shape id.
///
/// Shapes must tile the section in order (each starts where the previous one ends), so
/// the work here is linear in the section: no shape body can be checked twice.
fn verify_shapes(raw: Raw<'_>, key_lens: &[u64]) -> Result<Vec<ShapeInfo>> {
    let sec = raw
        .b
        .get(raw.l.shapes.clone())
        .ok_or_else(|| err(raw.l.shapes.start, "shape section out of bounds"))?;
    let mut expect = 4 + raw.l.shape_count as usize * format::SHAPE_OFFSET_LEN;
    let mut shapes = Vec::new();
    let mut seen = vec![false; raw.l.keys.count as usize];
    for s in 0..raw.l.shape_count {
        let at = raw.l.shapes.start + 4 + s as usize * format::SHAPE_OFFSET_LEN;
        if format::u32_at(raw.b, at).map(|o| o as usize) != Some(expect) {
            return Err(err(
                at,
                format!("shape {s} does not start at {expect}, where the previous shape ends"),
            ));
        }
        let shape = raw
            .shape(s)
            .ok_or_else(|| err(at, format!("shape {s} overruns the shape section")))?;
        expect = shape.table.as_ptr() as usize - sec.as_ptr() as usize + shape.table.len();
        let keys = shape.keys;
        for c in keys.chunks_exact(format::SHAPE_KEY_LEN) {
            let k = u32::from_le_bytes(c.try_into().unwrap_or_default()) as usize;
            match seen.get_mut(k) {
                None => {
                    return Err(err(
                        at,
                        format!("shape {s} names key {k}, past the key table"),
                    ));
                }
                Some(true) => return Err(err(at, format!("shape {s} names key {k} twice"))),
                Some(flag) => *flag = true,
            }
        }
        let mut bytes = 0u64;
        for c in keys.chunks_exact(format::SHAPE_KEY_LEN) {
            let k = u32::from_le_bytes(c.try_into().unwrap_or_default());
            seen[k as usize] = false;
            bytes += key_lens.get(k as usize).copied().unwrap_or(0);
        }
        shapes.push(ShapeInfo {
            keys: keys.len() / format::SHAPE_KEY_LEN,
            key_bytes: bytes,
        });
        // The slot table, if any, must map exactly the shape's keys to their slots.
        if !shape.table.is_empty() {
            let n = keys.len() / format::SHAPE_KEY_LEN;
            let filled = shape.table.iter().filter(|&&t| t != 0).count();
            let consistent = filled == n
                && keys
                    .chunks_exact(format::SHAPE_KEY_LEN)
                    .enumerate()
                    .all(|(i, c)| {
                        let k = u32::from_le_bytes(c.try_into().unwrap_or_default());
                        let entry = shape.table.get(k.wrapping_sub(shape.base) as usize);
                        entry.is_some_and(|&t| t as usize == i + 1)
                    });
            if !consistent {
                return Err(err(
                    at,
                    format!("shape {s} has a slot table that does not match its keys"),
                ));
            }
        }
    }
    if expect != sec.len() {
        return Err(err(
            raw.l.shapes.start + expect,
            "bytes after the last shape",
        ));
    }
    Ok(shapes)
}

/// Data nodes in offset order: `(offset, walk weight)`; binary search finds a node start.
struct Nodes(Vec<(u32, u32)>);

impl Nodes {
    fn weight(&self, off: u32) -> Option<u64> {
        self.0
            .binary_search_by_key(&off, |&(o, _)| o)
            .ok()
            .map(|i| self.0[i].1 as u64)
    }
}

fn verify_data(raw: Raw<'_>, pool: &Pool, shapes: &[ShapeInfo]) -> Result<Nodes> {
    let data = raw
        .b
        .get(raw.l.data.clone())
        .ok_or_else(|| err(raw.l.data.start, "data section out of bounds"))?;
    let base = raw.l.data.start;
    let mut nodes = Nodes(Vec::new());
    let mut at = 0usize;
    while at < data.len() {
        let abs = base + at;
        let head = data[at];
        if head & node::RESERVED_BIT != 0 {
            return Err(err(abs, "node header has the reserved bit set"));
        }
        let is_list = head & node::LIST_BIT != 0;
        let height = head & node::HEIGHT_MASK;
        if height == 0 || height > MAX_HEIGHT {
            return Err(err(
                abs,
                format!("node height {height} out of 1..={MAX_HEIGHT}"),
            ));
        }
        let (n, used) =
            format::varint_at(data, at + 1).ok_or_else(|| err(abs + 1, "truncated node header"))?;
        // Walk cost of this node: key name bytes of its shape, then per slot (below).
        let mut weight = 0u64;
        let count = if is_list {
            usize::try_from(n).map_err(|_| err(abs + 1, "list too long"))?
        } else {
            let s = u32::try_from(n).ok().filter(|&s| s < raw.l.shape_count);
            let s = s.ok_or_else(|| {
                err(
                    abs + 1,
                    format!("map node names shape {n}, past the shape table"),
                )
            })?;
            // Every shape was parsed by verify_shapes: use its figures, not a re-parse.
            let shape = shapes
                .get(s as usize)
                .ok_or_else(|| err(abs + 1, format!("map node names unknown shape {s}")))?;
            weight += shape.key_bytes;
            shape.keys
        };
        let slots_at = at + 1 + used;
        let slots = count
            .checked_mul(format::SLOT_LEN)
            .and_then(|len| format::slice_at(data, slots_at, len))
            .ok_or_else(|| {
                err(
                    abs,
                    format!("node of {count} slots overruns the data section"),
                )
            })?;
        let mut tallest = 0u8;
        for i in 0..count {
            let t = slots[i];
            let p: [u8; 4] = slots[count + 4 * i..count + 4 * i + 4]
                .try_into()
                .unwrap_or_default();
            let pv = u32::from_le_bytes(p);
            let slot_at = base + slots_at + i;
            weight += 1;
            match t {
                tag::NULL | tag::FALSE | tag::TRUE if pv != 0 => {
                    return Err(err(slot_at, format!("slot tag {t} with non-zero payload")));
                }
                tag::NULL | tag::FALSE | tag::TRUE | tag::INT | tag::F32 => {}
                tag::INT64 | tag::F64 => {
                    check_pool_ref(raw, pool, pv, false, true, slot_at, "wide number")?
                }
                tag::STR | tag::BYTES => {
                    let what = if t == tag::STR { "string" } else { "bytes" };
                    check_pool_ref(raw, pool, pv, t == tag::STR, false, slot_at, what)?;
                    weight += raw.pool_bytes(pv).map_or(0, <[u8]>::len) as u64;
                }
                tag::LIST | tag::MAP => {
                    if pv as usize >= at {
                        return Err(err(
                            slot_at,
                            format!("reference to {pv} does not point backwards"),
                        ));
                    }
                    let child = nodes.weight(pv).ok_or_else(|| {
                        err(
                            slot_at,
                            format!("reference to {pv} is not the start of a node"),
                        )
                    })?;
                    let ch = data[pv as usize];
                    if (ch & node::LIST_BIT != 0) != (t == tag::LIST) {
                        return Err(err(
                            slot_at,
                            format!("reference to {pv} points at a node of the wrong kind"),
                        ));
                    }
                    tallest = tallest.max(ch & node::HEIGHT_MASK);
                    weight += child;
                }
                t if (tag::STR_INLINE..=tag::STR_INLINE + tag::STR_INLINE_MAX).contains(&t) => {
                    let len = (t - tag::STR_INLINE) as usize;
                    if std::str::from_utf8(&p[..len]).is_err() || p[len..].iter().any(|&x| x != 0) {
                        return Err(err(
                            slot_at,
                            "inline string is not UTF-8 or not zero-padded",
                        ));
                    }
                    weight += len as u64;
                }
                _ => return Err(err(slot_at, format!("unknown slot tag {t}"))),
            }
        }
        if height != tallest + 1 {
            return Err(err(
                abs,
                format!("node height {height}, expected {}", tallest + 1),
            ));
        }
        if weight > MAX_WALK {
            return Err(err(
                abs,
                format!(
                    "node has walk cost {weight} (values plus string bytes), more than {MAX_WALK}"
                ),
            ));
        }
        // weight <= MAX_WALK = 2^24 was checked above, so it fits in a u32.
        nodes.0.push((at as u32, weight as u32));
        at = slots_at + slots.len();
    }
    Ok(nodes)
}

fn verify_ids(raw: Raw<'_>, pool: &Pool, nodes: &Nodes) -> Result<()> {
    let ids = &raw.l.ids;
    for e in 0..ids.count {
        let at = ids.entries_at + e as usize * format::ID_ENTRY_LEN;
        let id_off = format::u32_at(raw.b, at).ok_or_else(|| err(at, "id entry out of bounds"))?;
        check_pool_ref(raw, pool, id_off, true, false, at, "id")?;
        let rec = raw
            .id_record_offset(e)
            .ok_or_else(|| err(at + 4, "id entry out of bounds"))?;
        if nodes.weight(rec).is_none() || raw.record_at(rec).is_none() {
            return Err(err(
                at + 4,
                format!("record offset {rec} is not the start of a map node"),
            ));
        }
        let id = raw.id_at(e).ok_or_else(|| err(at, "unreadable id"))?;
        if raw.find_id(id) != Some(e) {
            return Err(err(
                at,
                format!("id {id:?} is not found by the id index (duplicate or misplaced)"),
            ));
        }
    }
    Ok(())
}
