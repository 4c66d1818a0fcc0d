//! Checks shared by the fuzz targets (`fuzz/fuzz_targets/`) and the corpus replay test
//! (`tests/fuzz_replay.rs`), so that a crash found by fuzzing replays on stable
//! `cargo test` through exactly the same code.
//!
//! Two properties, one function each:
//!
//! * [`open_read`]: on **any** bytes, opening and reading everything through every public
//!   accessor never panics and does bounded work (DESIGN.md, principle 3).
//! * [`verified_reads`]: on bytes that open **and pass [`Snapshot::verify`]** (once their
//!   checksums are fixed, see [`fix_checksums`]), no read fails: every lookup finds what
//!   iteration found, serialization and `to_owned` succeed and agree (the promise on
//!   [`Snapshot::verify`]). A violation panics with what broke.
//!
//! Both are safe Rust; besides copies of the input they allocate only what the library's own
//! calls allocate (JSON strings, owned copies). Not part of the public API: hidden from the
//! docs, no stability promise.

use std::cell::Cell;
use std::sync::{Arc, OnceLock};

use crate::format::{HEADER_LEN, MAX_HEIGHT, MAX_WALK, SECTION_ENTRY_LEN};
use crate::{ContentHash, List, Record, Snapshot, SnapshotBuilder, TupleMap, Value, ValueRef};

/// Values below one record (each shared subtree counted every time it is reached, as in
/// the library's walks) up to which the checks run all of the library's whole-record walks.
/// A larger record gets only serialization (which [`open_read`] expects to stop at
/// [`MAX_WALK`]) and, in [`verified_reads`], `to_owned`: a few hundred bytes of nested shared
/// lists reach millions of values, a fuzzer finds them quickly, and each walk of those
/// costs a second or more under the sanitizer.
const RECORD_BUDGET: u64 = 1 << 18;

/// Values the walks of one call of either check may visit, summed over records. Once
/// spent, the remaining records get only their top-level reads (O(fields) each), so a small
/// file with many records over one large shared subtree cannot make one input run for
/// minutes.
const CALL_BUDGET: u64 = MAX_WALK;

/// Shape keys that lookups by name may scan over one call of either check. `Record::get`
/// scans the shape's keys, so looking up every field of a map costs O(fields²), and a shared
/// wide map can be reached many times; past this budget the checks stop looking fields up
/// by name (iteration is still walked and checked).
const SCAN_BUDGET: u64 = 1 << 27;

/// A walk's budgets: values left for the current record, shape keys left to scan for the
/// whole call.
struct Budget {
    values: Cell<u64>,
    scans: Cell<u64>,
}

impl Budget {
    fn new() -> Budget {
        Budget {
            values: Cell::new(0),
            scans: Cell::new(SCAN_BUDGET),
        }
    }

    /// Takes one value; `false` once they are spent.
    fn value(&self) -> bool {
        take(&self.values, 1)
    }

    /// Takes the scans of looking up every field of `rec` by name; `false` if too few are
    /// left.
    fn lookups(&self, rec: Record<'_>) -> bool {
        let n = rec.len() as u64;
        take(&self.scans, n.saturating_mul(n))
    }
}

/// Takes `n` from `c` if it holds that many.
fn take(c: &Cell<u64>, n: u64) -> bool {
    match c.get().checked_sub(n) {
        Some(left) => {
            c.set(left);
            true
        }
        None => false,
    }
}

/// Opens `bytes`, and the same bytes with their checksums fixed ([`fix_checksums`]); each
/// that opens is read through every accessor, then checked with [`Snapshot::verify`].
/// Must never panic, whatever the bytes: a panic (or a sanitizer report) is a library bug.
///
/// Reads every id through [`Snapshot::ids`] and [`Snapshot::get`] and every record through
/// [`Snapshot::iter`]; for each record, every field by name, by pre-resolved key and in
/// iteration order, recursively through lists and nested maps (at most
/// [`MAX_HEIGHT`](crate::format::MAX_HEIGHT) levels, at most 2^18 values per record); then
/// JSON serialization, `to_owned`, deserialization into `serde_json::Value` and `Debug`,
/// whose results are ignored: on corrupt data they may fail, but must not panic.
///
/// Work: O(file size) for open, ids and verify, plus the walks: at most 2^18 values per
/// record for the accessor walk, [`MAX_WALK`] per library walk, and [`MAX_WALK`] in all
/// before the remaining records get only their top-level reads.
pub fn open_read(bytes: &[u8]) {
    let fixed = fix_checksums(bytes).filter(|f| f[..] != *bytes);
    if let Ok(snap) = Snapshot::from_bytes(bytes.to_vec()) {
        // With checksums fixed the sections are the same bytes: read them once, there.
        if fixed.is_none() {
            read_all(&snap);
        }
        let _ = snap.verify();
    }
    if let Some(Ok(snap)) = fixed.map(Snapshot::from_bytes) {
        read_all(&snap);
        let _ = snap.verify();
    }
}

/// `bytes` with every section checksum in the section table, then the content hash,
/// recomputed from the bytes as they are; `None` if the file is too short to hold the
/// header and the table its section count announces.
///
/// A fuzzer cannot guess a 64-bit checksum, so without this almost every mutated input
/// would stop at the first checksum: the checks run on both the bytes as given and the
/// bytes with their checksums fixed, so that mutations reach the structural checks of
/// `verify` and the reads that rely on them. Entries whose range is not inside the file
/// keep their checksum.
pub fn fix_checksums(bytes: &[u8]) -> Option<Vec<u8>> {
    use crate::format::{
        ContentHash, HEADER_LEN, MAX_SECTIONS, OFF_CONTENT_HASH, OFF_SECTION_COUNT,
        SECTION_ENTRY_LEN, SectionEntry, section_checksum, slice_at, u16_at,
    };
    let count = usize::from(u16_at(bytes, OFF_SECTION_COUNT)?);
    if count > MAX_SECTIONS {
        return None;
    }
    let table_end = HEADER_LEN + count * SECTION_ENTRY_LEN;
    slice_at(bytes, 0, table_end)?;
    let mut out = bytes.to_vec();
    for i in 0..count {
        let Some((e, _)) = SectionEntry::read(bytes, i) else {
            continue;
        };
        let (Ok(off), Ok(len)) = (usize::try_from(e.offset), usize::try_from(e.len)) else {
            continue;
        };
        if let Some(section) = slice_at(bytes, off, len) {
            let at = SectionEntry::at(i) + 24;
            out[at..at + 8].copy_from_slice(&section_checksum(section).to_le_bytes());
        }
    }
    let hash = ContentHash::of_header(&out[..table_end]);
    out[OFF_CONTENT_HASH..OFF_CONTENT_HASH + 16].copy_from_slice(&hash.0);
    Some(out)
}

/// `bytes` (a whole snapshot file) with section `i` (in table order) replaced by `new`:
/// the sections after it move, and the table, checksums and content hash are rewritten.
/// For tests that hand-craft one section of an otherwise valid file. `None` if `bytes`
/// does not hold a readable header and section table.
pub fn replace_section(bytes: &[u8], i: usize, new: &[u8]) -> Option<Vec<u8>> {
    use crate::format::{
        OFF_BASE_HASH, OFF_FLAGS, OFF_SECTION_COUNT, OFF_VERSION, SectionEntry, slice_at, u16_at,
    };
    let count = usize::from(u16_at(bytes, OFF_SECTION_COUNT)?);
    let mut kinds = Vec::with_capacity(count);
    let mut parts = Vec::with_capacity(count);
    for k in 0..count {
        let (e, _) = SectionEntry::read(bytes, k)?;
        kinds.push(e.kind);
        parts.push(if k == i {
            new
        } else {
            slice_at(
                bytes,
                usize::try_from(e.offset).ok()?,
                usize::try_from(e.len).ok()?,
            )?
        });
    }
    let mut base = ContentHash::default();
    base.0.copy_from_slice(slice_at(bytes, OFF_BASE_HASH, 16)?);
    Some(assemble(
        u16_at(bytes, OFF_VERSION)?,
        u16_at(bytes, OFF_FLAGS)?,
        base,
        &kinds,
        &parts,
    ))
}

/// Every read of [`open_read`] on an opened snapshot.
fn read_all(snap: &Snapshot) {
    let _ = format!("{snap:?} {}", snap.hash());
    let _ = (
        snap.len(),
        snap.is_empty(),
        snap.shape_count(),
        snap.key_count(),
    );
    let _ = snap.get("");
    let _ = snap.contains("\u{0}no such id");
    let _ = snap.key("\u{0}no such key");
    // What `fms inspect` reads: sections, counts, an overlay's changes and nested patches
    // (a walk over its DATA nodes).
    let _ = snap.stats();

    // Lookup by id and the top level of the record found; the deep reads follow in
    // iteration order.
    let budget = Budget::new();
    for id in snap.ids() {
        let _ = snap.contains(id);
        if let Some(rec) = snap.get(id) {
            read_map(snap, rec, 1, &budget);
        }
    }
    let mut spent = 0u64;
    for (id, rec) in snap.iter() {
        let _ = id.len();
        let left = CALL_BUDGET.saturating_sub(spent).min(RECORD_BUDGET);
        budget.values.set(left);
        read_map(snap, rec, 1, &budget);
        let walked = left - budget.values.get();
        spent += walked;
        if left == 0 {
            continue;
        }
        if walked == left {
            // Too large to walk again and again: once, through the library's budget.
            same_json(&rec);
        } else {
            read_whole(rec);
        }
    }
}

/// The library's own whole-record walks (each carries its [`MAX_WALK`] budget), on the
/// record and on each of its fields. Run only on records whose own walk stayed within
/// [`RECORD_BUDGET`], so that the per-field walks add up to no more than that.
fn read_whole(rec: Record<'_>) {
    same_json(&rec);
    let _ = rec.deserialize::<serde_json::Value>();
    let _ = format!("{rec:?} {rec}");
    if let Ok(owned) = rec.to_owned() {
        let _ = rec == owned;
    }
    for v in rec.values() {
        let _ = serde_json::to_string(&v);
        if let Ok(owned) = v.to_owned() {
            let _ = v == owned;
        }
    }
}

/// `Record::write_json` writes what `serde_json::to_vec` writes, on any bytes: the same
/// JSON, or an error from both (and nothing left in the buffer).
fn same_json(rec: &Record<'_>) {
    let mut out = b"[".to_vec();
    let mine = rec.write_json(&mut out);
    match (serde_json::to_vec(rec), mine) {
        (Ok(json), Ok(())) => assert!(out[1..] == json[..], "write_json differs from serde_json"),
        (Err(_), Err(_)) => assert_eq!(out, b"[", "a failed write_json left bytes behind"),
        (serde, mine) => panic!("serde_json: {serde:?}, write_json: {mine:?}"),
    }
}

/// Every accessor of a map, then its values recursively. `depth` is the map's nesting
/// level (a top-level record is 1).
fn read_map(snap: &Snapshot, rec: Record<'_>, depth: usize, budget: &Budget) {
    let _ = (rec.len(), rec.is_empty(), rec.values().count());
    let _ = rec.get("\u{0}no such key");
    // An anchor reads back a map of the same length (patched maps too).
    if let Some(a) = rec.anchor() {
        let back = snap.record_at(a);
        assert!(back.is_some(), "an anchor does not read back");
        assert_eq!(
            back.map(|r| r.len()),
            Some(rec.len()),
            "an anchor reads another map"
        );
    }
    if budget.lookups(rec) {
        for name in rec.keys() {
            let _ = (rec.get(name), rec.contains_key(name));
            if let Some(k) = snap.key(name) {
                let _ = (k.id(), rec.get_key(k));
            }
        }
    }
    for (name, v) in rec.iter() {
        let _ = name.len();
        if !budget.value() {
            return;
        }
        read_value(snap, v, depth, budget);
    }
}

/// Every accessor of a value held by a node at level `depth`, recursing into lists and
/// maps while their level stays within [`MAX_HEIGHT`] (heights decrease strictly, so the
/// library stops there already; this is the walk's own guard).
fn read_value(snap: &Snapshot, v: ValueRef<'_>, depth: usize, budget: &Budget) {
    let _ = (v.kind(), v.is_null(), v.as_bool(), v.as_i64(), v.as_u64());
    let _ = (v.as_f64(), v.as_str(), v.as_bytes());
    if let Some(s) = v.as_str() {
        // Every decoder of a string (FSST codes, cold frames): errors, never panics.
        let _ = (s.len(), s.as_plain(), s.is_cold(), s == "title");
        let cow = s.to_cow();
        let shown = s.to_string();
        if let Ok(text) = cow {
            assert_eq!(shown, text, "Display and to_cow disagree");
            assert!(s == *text, "a string is unequal to its own text");
        }
    }
    if depth >= MAX_HEIGHT as usize {
        return;
    }
    if let Some(list) = v.as_list() {
        read_list(snap, list, depth + 1, budget);
    }
    if let Some(map) = v.as_map() {
        read_map(snap, map, depth + 1, budget);
    }
}

/// Every accessor of a list at level `depth`, then its elements recursively.
fn read_list(snap: &Snapshot, list: List<'_>, depth: usize, budget: &Budget) {
    let n = list.len();
    let _ = (list.is_empty(), list.get(n), list.get(usize::MAX));
    for i in 0..n {
        if !budget.value() {
            return;
        }
        if let Some(v) = list.get(i) {
            read_value(snap, v, depth, budget);
        }
    }
    let _ = list.iter().count();
}

/// If `bytes`, with their checksums fixed ([`fix_checksums`]), open and pass
/// [`Snapshot::verify`], asserts that no read fails and that all ways of reading agree;
/// otherwise does nothing. A panic here is a library bug: either
/// `verify` accepted something reads cannot handle, or two read paths disagree.
///
/// Asserts, for every record:
/// * `ids()` and `iter()` yield exactly `len()` entries, in the same order, and `get(id)`
///   and `contains(id)` find each;
/// * at every level (record, nested maps, lists), iteration yields exactly `len()` items;
///   `keys()` and `values()` agree with `iter()`; `get(name)`, `get_key(snap.key(name))`
///   and `contains_key(name)` find every field and return what `iter()` gave (while a
///   budget of 2^27 scanned shape keys per call lasts); `List::get(i)` returns
///   what `List::iter()` gave; nesting stays within [`MAX_HEIGHT`](crate::format::MAX_HEIGHT)
///   levels and the walk within [`MAX_WALK`] values;
/// * JSON serialization succeeds and equals `Display` and the JSON of `to_owned()`, which
///   succeeds and equals the record; so does each field's; deserialization into
///   `serde_json::Value` succeeds and equals `serde_json::to_value` (for records without
///   byte strings, which JSON values cannot hold).
///
/// Bounded like [`open_read`]: once the walks of a call have visited [`MAX_WALK`] values,
/// the remaining records get only their top-level checks; a record reaching more than 2^18
/// values gets serialization and `to_owned` but not the other whole-record walks.
pub fn verified_reads(bytes: &[u8]) {
    // Bytes that verify as given have correct checksums, so fixing them changes nothing.
    let Some(fixed) = fix_checksums(bytes) else {
        return;
    };
    let Ok(snap) = Snapshot::from_bytes(fixed) else {
        return;
    };
    if snap.verify().is_ok() {
        check_verified(&snap);
    }
}

/// The assertions of [`verified_reads`] on a snapshot (full or overlay) that passed
/// [`Snapshot::verify`].
fn check_verified(snap: &Snapshot) {
    assert_eq!(snap.ids().count(), snap.len(), "ids() after verify");
    assert_eq!(snap.iter().count(), snap.len(), "iter() after verify");
    let budget = Budget::new();
    let mut spent = 0u64;
    for (e, (id, (id2, rec))) in snap.ids().zip(snap.iter()).enumerate() {
        assert_eq!(id, id2, "ids() and iter() disagree at entry {e}");
        assert!(snap.contains(id), "contains({id:?}) after verify");
        let found = snap
            .get(id)
            .unwrap_or_else(|| panic!("get({id:?}) is None after verify"));
        assert!(
            same_node(ValueRef::Map(found), ValueRef::Map(rec)),
            "get({id:?}) and iter() give different records"
        );
        budget.values.set(MAX_WALK);
        let check = Check {
            snap,
            id,
            budget: &budget,
            deep: spent < CALL_BUDGET,
            bytes_seen: Cell::new(false),
        };
        check.map(rec, 1);
        if check.deep {
            let walked = MAX_WALK - budget.values.get();
            spent += walked;
            check.whole(rec, walked <= RECORD_BUDGET);
        }
    }
}

/// Records of every value kind, small enough for a fuzz seed: the base of [`overlay`].
fn base_records() -> Vec<(String, TupleMap)> {
    let mut out = Vec::new();
    for i in 0..6i64 {
        let mut m = TupleMap::new();
        m.insert("title", format!("Title number {i}"));
        m.insert("kind", ["video", "article"][i as usize % 2]);
        m.insert("n", i * 1_000_000_007);
        m.insert("ratio", i as f64 / 3.0);
        m.insert("ok", i % 2 == 0);
        m.insert("none", Value::Null);
        m.insert(
            "tags",
            Value::List(vec!["a".into(), format!("tag {}", i % 3).into()]),
        );
        let mut nested = TupleMap::new();
        nested.insert(
            "deep",
            Value::List(vec![Value::Int(i), Value::Bytes(vec![0, 255])]),
        );
        nested.insert("label", format!("meta label {i}"));
        nested.insert("order", i);
        m.insert("meta", Value::Map(Box::new(nested)));
        out.push((format!("r:{i}"), m));
    }
    out
}

/// The fixed, valid base snapshot that [`overlay`]'s inputs are read over.
pub fn overlay_base() -> Arc<Snapshot> {
    static BASE: OnceLock<Arc<Snapshot>> = OnceLock::new();
    BASE.get_or_init(|| {
        let mut b = SnapshotBuilder::new();
        b.eager_compression();
        for (id, m) in base_records() {
            b.insert(&id, &m).expect("fixed base record");
        }
        let bytes = b.to_bytes().expect("fixed base");
        Arc::new(Snapshot::from_bytes(bytes).expect("fixed base opens"))
    })
    .clone()
}

/// Valid overlays over [`overlay_base`], one per kind of change (patch, whole record with
/// reused nested values, tombstone, added record, a nested map patched (format version 5),
/// everything together): the seeds of the
/// `overlay` fuzz target, as `(name, bytes)`. Each needs a leading mode byte (0) to be a
/// fuzz input; see [`overlay`].
pub fn overlay_seeds() -> Vec<(&'static str, Vec<u8>)> {
    let base = overlay_base();
    let recs = base_records();
    let build = |f: &dyn Fn(&mut SnapshotBuilder)| {
        let mut b = SnapshotBuilder::with_base(&base);
        b.eager_compression();
        f(&mut b);
        b.to_bytes().expect("seed overlay")
    };
    let patched = |i: usize, field: &str, v: Value| {
        let mut m = recs[i].1.clone();
        m.insert(field, v);
        m
    };
    vec![
        (
            "patch",
            build(&|b| {
                b.insert("r:1", &patched(1, "title", "Título uno".into()))
                    .expect("patch")
            }),
        ),
        (
            "replace",
            build(&|b| {
                b.insert("r:2", &patched(2, "extra", Value::List(vec![1.into()])))
                    .expect("replace")
            }),
        ),
        ("remove", build(&|b| b.remove("r:3").expect("remove"))),
        (
            "add",
            build(&|b| b.insert("new:1", &recs[4].1).expect("add")),
        ),
        (
            "nested",
            build(&|b| {
                let mut meta = match recs[2].1.get("meta") {
                    Some(Value::Map(m)) => (**m).clone(),
                    _ => TupleMap::new(),
                };
                meta.insert("label", "etiqueta");
                b.insert("r:2", &patched(2, "meta", Value::Map(Box::new(meta))))
                    .expect("nested patch")
            }),
        ),
        (
            "all",
            build(&|b| {
                b.insert("r:0", &patched(0, "tags", Value::List(vec![])))
                    .expect("patch");
                b.insert("r:5", &patched(5, "meta", Value::Null))
                    .expect("patch");
                b.remove("r:4").expect("remove");
                b.insert("new:2", &patched(1, "kind", "topic".into()))
                    .expect("add");
                b.remove_absent().expect("remove_absent");
            }),
        ),
    ]
}

/// The fixed depth-1 overlay (the "remove" seed: `r:3` removed) that mode 2 of [`overlay`]
/// stacks its input on.
pub fn stacked_base() -> Arc<Snapshot> {
    static STACKED: OnceLock<Arc<Snapshot>> = OnceLock::new();
    STACKED
        .get_or_init(|| {
            let bytes = overlay_seeds()
                .into_iter()
                .find(|(n, _)| *n == "remove")
                .expect("remove seed")
                .1;
            Arc::new(Snapshot::overlay_from_bytes(bytes, overlay_base()).expect("seed opens"))
        })
        .clone()
}

/// Valid depth-2 overlays over [`stacked_base`]: re-adding the id it removed, changing and
/// removing others. Seeds of mode 2 of [`overlay`].
pub fn stacked_seeds() -> Vec<(&'static str, Vec<u8>)> {
    let under = stacked_base();
    let recs = base_records();
    let mut b = SnapshotBuilder::with_base(&under);
    b.eager_compression();
    b.insert("r:3", &recs[3].1).expect("re-add");
    let mut m = recs[1].1.clone();
    m.insert("title", "Título");
    if let Some(Value::Map(meta)) = m.get("meta") {
        let mut meta = (**meta).clone();
        meta.insert("order", 99);
        m.insert("meta", Value::Map(Box::new(meta)));
    }
    b.insert("r:1", &m).expect("patch");
    b.remove("r:0").expect("remove");
    b.insert("new:9", &recs[2].1).expect("add");
    vec![("stacked", b.to_bytes().expect("stacked seed"))]
}

/// Sets the first value of the first non-empty map among `m`'s values (or among the
/// elements of its lists) to null, if it is not null already; keys stay as they are.
fn null_first_nested(m: &mut TupleMap) {
    let keys: Vec<String> = m.keys().map(str::to_owned).collect();
    for k in keys {
        let Some(mut v) = m.get(&k).cloned() else {
            continue;
        };
        let target = match &mut v {
            Value::Map(inner) if !inner.is_empty() => Some(&mut **inner),
            Value::List(items) => items.iter_mut().find_map(|x| match x {
                Value::Map(inner) if !inner.is_empty() => Some(&mut **inner),
                _ => None,
            }),
            _ => None,
        };
        if let Some(inner) = target {
            let first = inner.keys().next().map(str::to_owned).unwrap_or_default();
            if inner.get(&first).is_some_and(|x| !matches!(x, Value::Null)) {
                inner.insert(&first, Value::Null);
                m.insert(&k, v);
                return;
            }
        }
    }
}

/// Overlay inputs. `data[0]` picks the mode:
///
/// * even: `data[1..]` is an overlay read over the fixed valid base ([`overlay_base`]), or
///   for `data[0] % 4 == 2` over a fixed overlay over it ([`stacked_base`]):
///   as given and with its checksums fixed, it is opened, read through every accessor
///   ([`open_read`]'s reads) and verified; if it verifies, [`verified_reads`]' assertions
///   must hold.
/// * odd: the reverse, a corrupt base under a valid overlay: `data[1..]` is XORed into the
///   base's sections (its header, hence its content hash, unchanged: a base file damaged
///   after the overlay was built), and the valid "all" seed overlay is opened over it, read
///   and verified. Verify must fail unless the XOR changed nothing.
///
/// Never panics, whatever the bytes.
pub fn overlay(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let base = overlay_base();
    if mode % 2 == 0 {
        // Mode 2 (mod 4): over a fixed overlay (which removes `r:3`) instead of the base.
        let under = if mode % 4 == 2 { stacked_base() } else { base };
        let fixed = fix_checksums(rest).filter(|f| f[..] != *rest);
        for bytes in [Some(rest.to_vec()), fixed].into_iter().flatten() {
            if let Ok(snap) = Snapshot::overlay_from_bytes(bytes, under.clone()) {
                read_all(&snap);
                if snap.verify().is_ok() {
                    check_verified(&snap);
                }
                // A further overlay over it: indexing the chain's strings, keys, shapes
                // and nodes (`with_base`) ends and never panics, whatever the bytes.
                let mut b = SnapshotBuilder::with_base(&Arc::new(snap));
                let _ = b
                    .upsert("r:1", &base_records()[1].1)
                    .and_then(|_| b.to_bytes());
            }
        }
        return;
    }
    let good = base.as_bytes();
    let head = HEADER_LEN + 5 * SECTION_ENTRY_LEN;
    let mut damaged = good.to_vec();
    for (b, x) in damaged[head..].iter_mut().zip(rest) {
        *b ^= x;
    }
    let same = damaged == good;
    let Ok(bad_base) = Snapshot::from_bytes(damaged) else {
        return;
    };
    static ALL: OnceLock<Vec<u8>> = OnceLock::new();
    let all = ALL.get_or_init(|| overlay_seeds().pop().expect("seeds").1);
    if let Ok(snap) = Snapshot::overlay_from_bytes(all.clone(), Arc::new(bad_base)) {
        read_all(&snap);
        let verified = snap.verify();
        assert!(
            same || verified.is_err(),
            "verify accepted an overlay over a damaged base"
        );
    }
}

/// Builds `records` (skipping any the builder refuses: duplicate or empty ids, values past
/// the format's limits), opens the bytes, and asserts that the snapshot verifies, holds
/// exactly the accepted records in insertion order, each equal to its input with its
/// fields in order, through every accessor; then the same through an overlay that re-adds
/// every record over the snapshot of the first half (the merged tree must read the same).
pub fn roundtrip(records: &[(String, TupleMap)]) {
    let mut b = SnapshotBuilder::new();
    b.eager_compression();
    let mut kept: Vec<&(String, TupleMap)> = Vec::new();
    for r in records {
        if b.insert(&r.0, &r.1).is_ok() {
            kept.push(r);
        }
    }
    let snap = Snapshot::from_bytes(b.to_bytes().expect("to_bytes")).expect("open");
    snap.verify().expect("a built snapshot verifies");
    assert_round_trip(&snap, &kept);
    check_verified(&snap);

    // The same records as an overlay over a snapshot of the first half.
    let half = kept.len() / 2;
    let mut b = SnapshotBuilder::new();
    b.eager_compression();
    for (id, m) in &kept[..half] {
        b.insert(id, m).expect("re-insert");
    }
    let base = Arc::new(Snapshot::from_bytes(b.to_bytes().expect("to_bytes")).expect("open"));
    // Every third record of the base half changes: its first field becomes null (a patch,
    // when smaller), or the record loses it (a whole record over a new shape); the next
    // one changes inside its first nested map, or the first map in one of its lists (a
    // nested patch, format version 5, when smaller).
    let changed: Vec<(String, TupleMap)> = kept
        .iter()
        .enumerate()
        .map(|(i, (id, m))| {
            let mut m = m.clone();
            let first = m.keys().next().map(str::to_owned);
            if let (true, Some(k)) = (i < half && i % 3 == 0, first) {
                if i % 2 == 0 {
                    m.insert(&k, Value::Null);
                } else {
                    m.remove(&k);
                }
            } else if i < half && i % 3 == 1 {
                null_first_nested(&mut m);
            }
            (id.clone(), m)
        })
        .collect();
    let mut o = SnapshotBuilder::with_base(&base);
    o.eager_compression();
    for (id, m) in changed.iter().rev() {
        o.insert(id, m).expect("overlay insert");
    }
    let over =
        Snapshot::overlay_from_bytes(o.to_bytes().expect("to_bytes"), base).expect("open overlay");
    over.verify().expect("a built overlay verifies");
    // Order: the base's ids, then the added ones in the order the overlay inserted them.
    let mut order: Vec<&(String, TupleMap)> = changed[..half].iter().collect();
    order.extend(changed[half..].iter().rev());
    assert_round_trip(&over, &order);
    check_verified(&over);
}

fn assert_round_trip(snap: &Snapshot, kept: &[&(String, TupleMap)]) {
    assert_eq!(snap.len(), kept.len(), "record count");
    for ((id, rec), (want_id, m)) in snap.iter().zip(kept.iter().map(|r| (&r.0, &r.1))) {
        assert_eq!(id, want_id, "iteration order");
        assert!(
            rec.keys().eq(m.keys()),
            "record {id:?}: field order differs"
        );
        assert!(rec == *m, "record {id:?} differs from its input");
        let owned = rec.to_owned().expect("to_owned");
        assert!(&owned == m, "record {id:?}: to_owned differs");
        // JSON tells -0.0 from 0.0, which `==` does not.
        assert_eq!(
            serde_json::to_string(&rec).ok(),
            serde_json::to_string(m).ok(),
            "record {id:?}: JSON differs"
        );
    }
}

/// JSONL text into the builder (`extend_jsonl`, id field `"id"`): it must either accept
/// it or fail with an error naming the input and line; either way, what the builder holds
/// then must build into a snapshot that verifies and reads back ([`verified_reads`]'
/// assertions), with as many records as it accepted.
pub fn jsonl(data: &[u8]) {
    let mut b = SnapshotBuilder::new();
    b.eager_compression();
    let res = b.extend_jsonl(data, "fuzz.jsonl", "id");
    if let Err(e) = &res {
        let msg = e.to_string();
        assert!(
            msg.starts_with("fuzz.jsonl:"),
            "a JSONL error does not name the input and line: {msg}"
        );
    }
    let Ok(bytes) = b.to_bytes() else {
        return;
    };
    let snap = Snapshot::from_bytes(bytes).expect("the builder's output opens");
    snap.verify().expect("the builder's output verifies");
    if let Ok(n) = res {
        assert_eq!(snap.len(), n, "records accepted vs records stored");
    }
    assert_eq!(snap.len(), b.len());
    check_verified(&snap);
}

/// One record's walk in [`verified_reads`].
struct Check<'s, 'b> {
    snap: &'s Snapshot,
    id: &'s str,
    budget: &'b Budget,
    /// Whether to walk below the top level (false once the call's budget is spent).
    deep: bool,
    /// Whether a byte string was seen (JSON values cannot hold one).
    bytes_seen: Cell<bool>,
}

impl Check<'_, '_> {
    /// Takes one value; running out means a verified record reaches more than
    /// [`MAX_WALK`] values, which `verify` promises it does not.
    fn spend(&self) {
        let id = self.id;
        assert!(
            self.budget.value(),
            "record {id:?} reaches more than MAX_WALK values after verify"
        );
    }

    /// The assertions on one map at nesting level `depth`, recursively.
    fn map(&self, rec: Record<'_>, depth: usize) {
        let id = self.id;
        assert!(
            depth <= MAX_HEIGHT as usize,
            "record {id:?} nests deeper than MAX_HEIGHT"
        );
        assert_eq!(rec.iter().count(), rec.len(), "record {id:?}: map iter()");
        assert_eq!(rec.keys().count(), rec.len(), "record {id:?}: map keys()");
        assert_eq!(rec.values().count(), rec.len(), "record {id:?}: values()");
        let lookups = self.budget.lookups(rec);
        for (((name, v), key), value) in rec.iter().zip(rec.keys()).zip(rec.values()) {
            assert_eq!(name, key, "record {id:?}: keys() and iter() disagree");
            assert!(
                same_node(v, value),
                "record {id:?} field {name:?}: values()"
            );
            if lookups {
                self.lookup(rec, name, v);
            }
            if self.deep {
                self.spend();
                self.value(v, depth);
            }
        }
    }

    /// `get`, `contains_key` and `get_key` of field `name`, which iteration read as `v`.
    fn lookup(&self, rec: Record<'_>, name: &str, v: ValueRef<'_>) {
        let id = self.id;
        let got = rec
            .get(name)
            .unwrap_or_else(|| panic!("record {id:?}: get({name:?}) is None after verify"));
        assert!(same_node(v, got), "record {id:?}: get({name:?}) differs");
        assert!(
            rec.contains_key(name),
            "record {id:?}: contains_key({name:?})"
        );
        let k = self
            .snap
            .key(name)
            .unwrap_or_else(|| panic!("key({name:?}) is None after verify"));
        assert!(
            (k.id() as usize) < self.snap.key_count(),
            "key({name:?}) is past the key table"
        );
        let got = rec
            .get_key(k)
            .unwrap_or_else(|| panic!("record {id:?}: get_key({name:?}) is None after verify"));
        assert!(
            same_node(v, got),
            "record {id:?}: get_key({name:?}) differs"
        );
    }

    /// The assertions below one value held by a node at level `depth`.
    fn value(&self, v: ValueRef<'_>, depth: usize) {
        let id = self.id;
        match v {
            ValueRef::Bytes(_) => self.bytes_seen.set(true),
            ValueRef::Map(m) => self.map(m, depth + 1),
            ValueRef::List(list) => {
                assert!(
                    depth < MAX_HEIGHT as usize,
                    "record {id:?} nests deeper than MAX_HEIGHT"
                );
                assert_eq!(
                    list.iter().count(),
                    list.len(),
                    "record {id:?}: list iter()"
                );
                for (i, x) in list.iter().enumerate() {
                    let got = list
                        .get(i)
                        .unwrap_or_else(|| panic!("record {id:?}: list get({i}) is None"));
                    assert!(same_node(x, got), "record {id:?}: list get({i}) differs");
                    self.spend();
                    self.value(x, depth + 1);
                }
                assert!(
                    list.get(list.len()).is_none(),
                    "record {id:?}: list get(len)"
                );
            }
            _ => {}
        }
    }

    /// The whole-record walks: serialization and `to_owned`; if `all`, also `Debug`, the
    /// same for each field, `serde_json::to_value` and deserialization.
    fn whole(&self, rec: Record<'_>, all: bool) {
        let id = self.id;
        let json = serde_json::to_string(&rec)
            .unwrap_or_else(|err| panic!("record {id:?}: to_string failed after verify: {err}"));
        same_json(&rec);
        let owned = rec
            .to_owned()
            .unwrap_or_else(|err| panic!("record {id:?}: to_owned failed after verify: {err}"));
        assert!(
            rec == owned,
            "record {id:?}: to_owned() differs from the record"
        );
        if !all {
            return;
        }
        assert_eq!(
            format!("{rec}"),
            json,
            "record {id:?}: Display is not its JSON"
        );
        assert_eq!(
            format!("{rec:?}"),
            format!("{owned:?}"),
            "record {id:?}: Debug differs from to_owned()'s"
        );
        assert_eq!(
            serde_json::to_string(&owned).ok().as_deref(),
            Some(&*json),
            "record {id:?}: the JSON of to_owned() differs from the record's"
        );
        for (name, v) in rec.iter() {
            let owned = v.to_owned().unwrap_or_else(|err| {
                panic!("record {id:?} field {name:?}: to_owned failed after verify: {err}")
            });
            assert!(
                v == owned,
                "record {id:?} field {name:?}: to_owned() differs"
            );
            serde_json::to_string(&v).unwrap_or_else(|err| {
                panic!("record {id:?} field {name:?}: to_string failed after verify: {err}")
            });
        }
        let as_value = serde_json::to_value(rec)
            .unwrap_or_else(|err| panic!("record {id:?}: to_value failed after verify: {err}"));
        if !self.bytes_seen.get() {
            let de = rec
                .deserialize::<serde_json::Value>()
                .unwrap_or_else(|err| panic!("record {id:?}: deserialize failed: {err}"));
            assert_eq!(
                de, as_value,
                "record {id:?}: deserialize and serialize differ"
            );
        }
    }
}
/// Whether two values read from the same slot look the same: equal scalars (floats by
/// bits), and for lists and maps equal lengths, names and children compared one level
/// down. O(children); deeper levels are compared when the walk reaches them.
fn same_node(a: ValueRef<'_>, b: ValueRef<'_>) -> bool {
    match (a, b) {
        (ValueRef::List(x), ValueRef::List(y)) => {
            x.len() == y.len() && x.iter().zip(y.iter()).all(|(p, q)| same_scalar(p, q))
        }
        (ValueRef::Map(x), ValueRef::Map(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y.iter())
                    .all(|((k, p), (l, q))| k == l && same_scalar(p, q))
        }
        _ => same_scalar(a, b),
    }
}

/// Equal scalars (floats by bits, so NaN equals itself); lists and maps by length only.
fn same_scalar(a: ValueRef<'_>, b: ValueRef<'_>) -> bool {
    match (a, b) {
        (ValueRef::Null, ValueRef::Null) => true,
        (ValueRef::Bool(x), ValueRef::Bool(y)) => x == y,
        (ValueRef::Int(x), ValueRef::Int(y)) => x == y,
        (ValueRef::Float(x), ValueRef::Float(y)) => x.to_bits() == y.to_bits(),
        (ValueRef::Str(x), ValueRef::Str(y)) => x == y,
        (ValueRef::Bytes(x), ValueRef::Bytes(y)) => x == y,
        (ValueRef::List(x), ValueRef::List(y)) => x.len() == y.len(),
        (ValueRef::Map(x), ValueRef::Map(y)) => x.len() == y.len(),
        _ => false,
    }
}

/// A hand-made snapshot that verify rejects but that opens: one record `"r"` whose field
/// `"v"` is `levels` nested lists of `width` elements, each level's elements all the same
/// node (the innermost holds integers). The file is about `levels × 2 × width` bytes (its
/// payloads are 1 byte wide while the nodes are that close); a walk of the record would
/// visit `width ^ levels` values (255 × 3 levels: ~1.8 KB of file, 16.6 million values). The builder refuses to write such a record (its walk cost is past
/// the walk limit of a file this size); this is what a malicious writer could send.
pub fn amplifying_snapshot(width: u32, levels: u8) -> Vec<u8> {
    use crate::format::{
        self, NARROW_VERSION, index_hash, index_home, index_tag, node, put_varint, section, tag,
    };
    let pool = [1u8, b'v', 1, b'r'];
    let (key_at, id_at) = (0u32, 2u32);
    let mut data = Vec::new();
    let mut child: Option<u32> = None;
    // Version-2 nodes: payloads as narrow as they can be (FORMAT.md "DATA").
    let node = |data: &mut Vec<u8>, header: u8, head: u64, t: u8, p: u32, n: u32| {
        let w = format::payload_width(t, p);
        data.push(header);
        put_varint(data, format::join_head(head, w));
        data.extend(std::iter::repeat_n(t, n as usize));
        for _ in 0..n {
            data.extend_from_slice(&p.to_le_bytes()[..w]);
        }
    };
    for height in 1..=levels {
        let at = data.len() as u32;
        let (t, p) = match child {
            None => (tag::INT, 1u32),
            Some(c) => (tag::LIST, c),
        };
        node(
            &mut data,
            node::LIST_BIT | height,
            width.into(),
            t,
            p,
            width,
        );
        child = Some(at);
    }
    let record_at = data.len() as u32;
    node(&mut data, levels + 1, 0, tag::LIST, child.unwrap_or(0), 1);
    let shapes = one_key_shape();
    // A one-entry hash index of two slots.
    let index = |name: &[u8], entry: &[u8]| {
        let h = index_hash(name);
        let mut out = Vec::new();
        for v in [1u32, 2, 1] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        for slot in 0..2 {
            let (t, e) = if slot == index_home(h, 2) {
                (index_tag(h), 1u32)
            } else {
                (0, 0)
            };
            out.extend_from_slice(&t.to_le_bytes());
            out.extend_from_slice(&e.to_le_bytes());
        }
        out.extend_from_slice(entry);
        out
    };
    let keys = index(b"v", &key_at.to_le_bytes());
    let mut id_entry = id_at.to_le_bytes().to_vec();
    id_entry.extend_from_slice(&record_at.to_le_bytes());
    let ids = index(b"r", &id_entry);
    // No compressed strings: empty SYMBOLS and COLD sections. A version-3 file (4-byte
    // index slots).
    let parts: [&[u8]; 7] = [&pool, &data, &shapes, &keys, &ids, &[], &[]];
    assemble(
        NARROW_VERSION,
        0,
        ContentHash::default(),
        &section::ALL,
        &parts,
    )
}

/// A SHAPES section of one shape: key 0, with a one-entry slot table.
fn one_key_shape() -> Vec<u8> {
    let mut shapes = Vec::new();
    shapes.extend_from_slice(&1u32.to_le_bytes());
    shapes.extend_from_slice(&8u32.to_le_bytes());
    crate::format::put_varint(&mut shapes, 1);
    shapes.extend_from_slice(&0u32.to_le_bytes());
    shapes.extend_from_slice(&0u32.to_le_bytes());
    crate::format::put_varint(&mut shapes, 1);
    shapes.push(1);
    shapes
}

/// A version-4 file of one record `"r"` whose one field `"s"` is a derived string (tag
/// DERIVED) with entry `entry(at)`, `at` being the entry's pool offset: for the tests of
/// hostile derived entries. The pool holds, in order: the key `"s"` (offset 0), the id
/// `"r"` (offset 2), then each of `before` as an entry of its own (from offset 4 on), then
/// the derived entry.
pub fn derived_snapshot(before: &[&[u8]], entry: impl FnOnce(u32) -> Vec<u8>) -> Vec<u8> {
    use crate::format::{self, VERSION, index_hash, put_varint, section, tag};
    let mut pool = vec![1u8, b's', 1, b'r'];
    for b in before {
        put_varint(&mut pool, b.len() as u64);
        pool.extend_from_slice(b);
    }
    let at = pool.len() as u32;
    let e = entry(at);
    put_varint(&mut pool, e.len() as u64);
    pool.extend_from_slice(&e);
    // One map node of one slot (tag DERIVED, payload `at`), as narrow as it can be.
    let w = format::payload_width(tag::DERIVED, at);
    let mut data = vec![1u8];
    put_varint(&mut data, format::join_head(0, w));
    data.push(tag::DERIVED);
    data.extend_from_slice(&at.to_le_bytes()[..w]);
    let shapes = one_key_shape();
    let keys = crate::build::index_section(1, |_| index_hash(b"s"), &[0], true).unwrap_or_default();
    let ids =
        crate::build::index_section(1, |_| index_hash(b"r"), &[2, 0], true).unwrap_or_default();
    let parts: [&[u8]; 7] = [&pool, &data, &shapes, &keys, &ids, &[], &[]];
    assemble(VERSION, 0, ContentHash::default(), &section::ALL, &parts)
}

/// A whole file: the header (version, flags, base hash) and section table for `parts` of
/// `kinds`, contiguous, with their checksums and the content hash, then the parts.
fn assemble(
    version: u16,
    flags: u16,
    base_hash: ContentHash,
    kinds: &[u32],
    parts: &[&[u8]],
) -> Vec<u8> {
    use crate::format::{Header, SectionEntry, section_checksum};
    let mut header = Header {
        version,
        flags,
        content_hash: ContentHash::default(),
        base_hash,
        sections: Vec::new(),
    };
    let mut at = SectionEntry::at(parts.len()) as u64;
    for (kind, part) in kinds.iter().zip(parts) {
        header.sections.push(SectionEntry {
            kind: *kind,
            offset: at,
            len: part.len() as u64,
            checksum: section_checksum(part),
        });
        at += part.len() as u64;
    }
    let mut out = header.encode();
    for p in parts {
        out.extend_from_slice(p);
    }
    out
}

/// The version-1 form of a version-2 overlay `bytes` over `base` that stores no
/// compressed string (built with `Compression::None`): the same pool, data, shapes and
/// keys; an id index whose first entries change or remove base ids (one per CHANGES bit,
/// the home entry's id) and whose others are the added ids; a 32-byte OVERLAY section; no
/// CHANGES, SYMBOLS or COLD. For the tests of the version-1 read path (this crate writes
/// no version-1 file). `None` if `bytes` is not such an overlay (also if it holds nested
/// patches, which version 1 does not have).
pub fn overlay_as_v1(bytes: &[u8], base: &Arc<Snapshot>) -> Option<Vec<u8>> {
    use crate::format::{FLAG_OVERLAY, TOMBSTONE, index_hash, section};
    let snap = Snapshot::overlay_from_bytes(bytes.to_vec(), base.clone()).ok()?;
    let l = snap.layout();
    let c = l.changes?;
    if l.symbol_count != 0
        || !l.cold.is_empty()
        || snap.stats().overlay.is_none_or(|o| o.nested_patched > 0)
    {
        return None;
    }
    let raw = snap.raw();
    let (data, remap) = data_as_v1(raw)?;
    let mut entries: Vec<(u32, u32)> = Vec::new();
    let mut names: Vec<&[u8]> = Vec::new();
    // The changes, in ordinal order: the id of each set bit's home entry.
    let below = raw.down()?;
    for o in 0..c.ordinal_end {
        let Some(rec) = raw.changed_ordinal(o) else {
            continue;
        };
        let mut level = below;
        while level.l().ordinal_start > o {
            level = level.down()?;
        }
        let e = o - level.l().ordinal_start + level.l().own_first();
        let id_off = level.id_pool_offset(e)?;
        entries.push((id_off, remap(rec)));
        names.push(level.pool_bytes(id_off)?);
    }
    let changed = entries.len() as u32;
    let removed = entries.iter().filter(|e| e.1 == TOMBSTONE).count() as u32;
    for e in 0..l.ids.count {
        let id_off = raw.id_pool_offset(e)?;
        entries.push((id_off, remap(raw.id_record_offset(e)?)));
        names.push(raw.pool_bytes(id_off)?);
    }
    let flat: Vec<u32> = entries.iter().flat_map(|&(id, rec)| [id, rec]).collect();
    let ids =
        crate::build::index_section(entries.len(), |i| index_hash(names[i]), &flat, false).ok()?;
    // The key table in the version-1 form (4-byte tags, entry numbers and offsets).
    let key_offs: Vec<u32> = (0..l.keys.count)
        .map(|k| raw.own_key_offset(k))
        .collect::<Option<_>>()?;
    let key_names: Vec<&[u8]> = key_offs
        .iter()
        .map(|&o| raw.pool_bytes(o))
        .collect::<Option<_>>()?;
    let keys = crate::build::index_section(
        key_offs.len(),
        |i| index_hash(key_names[i]),
        &key_offs,
        false,
    )
    .ok()?;
    let o = l.overlay?;
    let mut overlay = Vec::new();
    for f in [
        o.depth,
        l.starts.pool,
        l.starts.data,
        l.starts.shape,
        l.starts.key,
        o.records,
        changed,
        removed,
    ] {
        overlay.extend_from_slice(&f.to_le_bytes());
    }
    let sec = |i: usize| {
        bytes
            .get(l.header.sections[i].offset as usize..)
            .and_then(|b| b.get(..l.header.sections[i].len as usize))
    };
    let parts: [&[u8]; 6] = [sec(0)?, &data, sec(2)?, &keys, &ids, &overlay];
    Some(assemble(
        1,
        FLAG_OVERLAY,
        base.hash(),
        &section::ALL_OVERLAY_V1,
        &parts,
    ))
}

/// The data section of `raw`'s (version-2) file in the version-1 form: every payload 4
/// bytes wide, heads without a width, patch bases as `u32`s. Returns it and the map of
/// the file's combined data offsets to the new ones (other offsets map to themselves).
#[allow(clippy::type_complexity)]
fn data_as_v1(raw: crate::read::Raw<'_>) -> Option<(Vec<u8>, impl Fn(u32) -> u32)> {
    use crate::format::{
        Heads, MAX_HEIGHT, TOMBSTONE, node, put_varint, slot_or_null, tag, varint_at,
    };
    let data = raw.data()?;
    let start = raw.l().starts.data;
    let mut out = Vec::new();
    // (own offset in `data`, own offset in `out`), in order.
    let mut moved: Vec<(u32, u32)> = Vec::new();
    let remap = move |moved: &[(u32, u32)], p: u32| match p.checked_sub(start) {
        Some(own) if p != TOMBSTONE => moved
            .binary_search_by_key(&own, |m| m.0)
            .map_or(p, |i| start + moved[i].1),
        _ => p,
    };
    let mut at = 0usize;
    while at < data.len() {
        let header = data[at];
        moved.push((at as u32, out.len() as u32));
        out.push(header);
        let (n, w, tags) = if header & node::PATCH_BIT != 0 {
            let (_, base, w, mask_at) = raw.patch_head(data, at as u32)?;
            let slots = raw.plain_map_at(base, MAX_HEIGHT + 1)?.len();
            let mask = data.get(mask_at..mask_at + slots.div_ceil(8))?;
            out.extend_from_slice(&remap(&moved, base).to_le_bytes());
            out.extend_from_slice(mask);
            let m = crate::format::count_ones(mask) as usize;
            (m, w, mask_at + mask.len())
        } else {
            let (head, used) = varint_at(data, at + 1)?;
            let (v, w) = Heads::of(true).split(head);
            let n = if header & node::LIST_BIT != 0 {
                usize::try_from(v).ok()?
            } else {
                raw.shape(u32::try_from(v).ok()?)?.keys.len() / 4
            };
            put_varint(&mut out, v);
            (n, w, at + 1 + used)
        };
        let slots = data.get(tags..tags + n * (w + 1))?;
        out.extend_from_slice(&slots[..n]);
        for i in 0..n {
            let (t, p) = slot_or_null(slots, n, i, w);
            let p = if t == tag::LIST || t == tag::MAP {
                remap(&moved, p)
            } else {
                p
            };
            out.extend_from_slice(&p.to_le_bytes());
        }
        at = tags + n * (w + 1);
    }
    Some((out, move |p| remap(&moved, p)))
}

/// The `fsst` fuzz target: every FSST table method on any bytes agrees with the others and
/// never panics; trained tables round-trip their samples (see `fsst::fuzz_check`).
pub fn fsst(data: &[u8]) {
    crate::fsst::fuzz_check(data)
}

/// The fixed, valid root record manifest (200 ids) that the `manifest` target's inputs
/// are read over or XORed into.
#[cfg(feature = "remote")]
pub fn manifest_root() -> Arc<Snapshot> {
    use crate::remote::{item::ItemHash, manifest};
    static ROOT: OnceLock<Arc<Snapshot>> = OnceLock::new();
    ROOT.get_or_init(|| {
        let ids: Vec<String> = (0..200).map(|i| format!("id:{i}")).collect();
        let entries: Vec<(&str, ItemHash)> = ids
            .iter()
            .enumerate()
            .map(|(i, id)| (id.as_str(), ItemHash(i as u64 + 1)))
            .collect();
        let mut b = SnapshotBuilder::new();
        let root = manifest::root_record(&entries).expect("200 distinct ids");
        b.insert(&manifest::level_id(0), &root)
            .expect("root record");
        Arc::new(Snapshot::from_bytes(b.to_bytes().expect("root")).expect("root opens"))
    })
    .clone()
}

/// A fixed, valid overlay manifest over [`manifest_root`]: changed slots, an exact record,
/// a tombstone.
#[cfg(feature = "remote")]
pub fn manifest_overlay() -> Vec<u8> {
    use crate::remote::{item::ItemHash, manifest};
    static OVERLAY: OnceLock<Vec<u8>> = OnceLock::new();
    OVERLAY
        .get_or_init(|| {
            let root = manifest_root();
            let view = manifest::ManifestView::open(root.clone(), "root").expect("root");
            let changed = (0..200)
                .step_by(7)
                .filter_map(|i| Some((view.slot(&format!("id:{i}"))?, ItemHash(1000 + i))))
                .collect();
            let mut b = SnapshotBuilder::with_base(&root);
            b.insert("added", &manifest::exact_record(ItemHash(5)))
                .expect("exact");
            b.insert("id:3", &manifest::tombstone()).expect("tombstone");
            b.insert(
                &manifest::level_id(1),
                &manifest::level_record(view.params().m, &changed),
            )
            .expect("level");
            b.to_bytes().expect("overlay")
        })
        .clone()
}

/// The `manifest` target: record manifests (`remote::manifest`) on any bytes. The first
/// byte picks the mode (mod 3):
///
/// * 0: the rest as a manifest snapshot, as given and with checksums fixed, alone and as
///   an overlay over [`manifest_root`]: [`ManifestView::open`] and lookups never panic;
/// * 1: the rest (a u16 LE offset, then bytes) XORed into [`manifest_root`] (second byte
///   even) or [`manifest_overlay`] (odd), checksums fixed: the same;
/// * 2: the rest split at NUL bytes into distinct ids: the perfect hash function builds,
///   gives every id its own slot below `m` and reads back the same slots from its bytes;
///   a root manifest over them maps every id to its hash.
///
/// [`ManifestView::open`]: crate::remote::manifest::ManifestView::open
#[cfg(feature = "remote")]
pub fn manifest(data: &[u8]) {
    use crate::remote::manifest::{self, Entry, ManifestView};
    use crate::remote::{item::ItemHash, mphf};
    fn lookups(snap: Snapshot) {
        let snap = Arc::new(snap);
        let Ok(view) = ManifestView::open(snap.clone(), "fuzz") else {
            return;
        };
        let probes = [
            "", "id:0", "id:3", "id:199", "added", "\0m0", "\0m1", "nope",
        ];
        for id in probes.into_iter().chain(snap.ids().take(64)) {
            let _ = view.lookup(id);
            if let Some(s) = view.slot(id) {
                assert!(s < view.params().m as usize, "slot {s} out of range");
            }
        }
    }
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 3 {
        0 => {
            for bytes in [Some(rest.to_vec()), fix_checksums(rest)]
                .into_iter()
                .flatten()
            {
                if let Ok(s) = Snapshot::from_bytes(bytes.clone()) {
                    lookups(s);
                }
                if let Ok(s) = Snapshot::overlay_from_bytes(bytes, manifest_root()) {
                    lookups(s);
                }
            }
        }
        1 => {
            let (Some(&sel), Some(off)) = (rest.first(), rest.get(1..3)) else {
                return;
            };
            let over = sel % 2 == 1;
            let mut d = if over {
                manifest_overlay()
            } else {
                manifest_root().as_bytes().to_vec()
            };
            let off = usize::from(u16::from_le_bytes([off[0], off[1]]));
            let len = d.len();
            for (i, b) in rest[3..].iter().enumerate() {
                d[(off + i) % len] ^= b;
            }
            let Some(d) = fix_checksums(&d) else { return };
            let s = if over {
                Snapshot::overlay_from_bytes(d, manifest_root())
            } else {
                Snapshot::from_bytes(d)
            };
            if let Ok(s) = s {
                lookups(s);
            }
        }
        _ => {
            let ids: std::collections::BTreeSet<&[u8]> = rest.split(|&b| b == 0).collect();
            let ids: Vec<&[u8]> = ids.into_iter().collect();
            let built = mphf::build(&ids).expect("distinct ids build");
            let params = mphf::Params::parse(&built.params.to_bytes()).expect("params");
            let f = mphf::Mphf::new(params, &built.pilots).expect("pilots");
            let mut seen = vec![false; params.m as usize];
            for (id, &s) in ids.iter().zip(&built.slots) {
                assert!(s < params.m, "slot {s} >= m {}", params.m);
                assert!(
                    !std::mem::replace(&mut seen[s as usize], true),
                    "slot {s} twice"
                );
                assert_eq!(f.slot(id), Some(s as usize), "read slot differs");
            }
            // The same as a manifest (valid UTF-8, non-reserved ids only).
            let ids: Vec<&str> = ids
                .iter()
                .filter_map(|b| std::str::from_utf8(b).ok())
                .filter(|id| !id.is_empty() && !manifest::is_reserved(id))
                .collect();
            let entries: Vec<(&str, ItemHash)> = ids
                .iter()
                .enumerate()
                .map(|(i, id)| (*id, ItemHash(i as u64 + 1)))
                .collect();
            let mut b = SnapshotBuilder::new();
            let root = manifest::root_record(&entries).expect("distinct ids build");
            b.insert(&manifest::level_id(0), &root).expect("root");
            let snap = Snapshot::from_bytes(b.to_bytes().expect("root")).expect("opens");
            let view = ManifestView::open(Arc::new(snap), "fuzz").expect("a built manifest opens");
            for (id, h) in entries {
                assert_eq!(view.lookup(id), Some(Entry::Mapped(h)), "{id:?}");
            }
        }
    }
}
