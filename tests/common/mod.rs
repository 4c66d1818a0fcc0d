//! Shared test data: a small but varied snapshot exercising every value kind.
#![allow(dead_code)]

use fms::{Snapshot, SnapshotBuilder, TupleMap, Value, ValueRef};
use serde_json::json;

/// Records with every kind of value: short (inline) and long strings, wide ints and
/// floats, bytes, nested maps, lists of maps, shared lists, nulls, booleans.
pub fn varied_records(n: usize) -> Vec<(String, TupleMap)> {
    (0..n)
        .map(|i| {
            let kind = ["video", "exercise", "article", "topic"][i % 4];
            let mut m: TupleMap = TupleMap::try_from(json!({
                "slug": format!("{kind}-{i}"),
                "title": format!("Title number {i} of kind {kind}"),
                "kind": kind,
                "lang": "en",
                "duration": (i as i64) * 37,
                "big": i64::MAX - i as i64,
                "ratio": i as f64 / 3.0,
                "half": 0.5,
                "listed": i % 3 == 0,
                "deleted": null,
                "keywords": ["math", format!("kw{}", i % 5)],
                "locales": ["en", "es", "pt"],
                "children": (0..(i % 4)).map(|c| format!("exercise:{c}")).collect::<Vec<_>>(),
                "problem": {"type": "multiple_choice", "answers": [1, 2, {"deep": [true, null]}]},
            }))
            .unwrap();
            if i % 5 == 0 {
                m.insert("blob", Value::Bytes(vec![0, 1, 2, 255, (i % 256) as u8]));
            }
            if i % 7 == 0 {
                m.insert("note", "é");
            }
            (format!("{kind}:{i}"), m)
        })
        .collect()
}

/// Bytes of a snapshot of `records`.
pub fn build(records: &[(String, TupleMap)]) -> Vec<u8> {
    let mut b = SnapshotBuilder::new();
    for (id, m) in records {
        b.insert(id, m).unwrap();
    }
    b.to_bytes().unwrap()
}

/// Recomputes every section checksum and the content hash, so that a deliberately
/// corrupted file passes the checksum checks and reaches the structural ones (the fuzz
/// checks' own fixer; a file too short for its table comes back unchanged).
pub fn rechecksum(bytes: Vec<u8>) -> Vec<u8> {
    fms::check::fix_checksums(&bytes).unwrap_or(bytes)
}

/// Exercises every read a server would do; must never panic, whatever the bytes.
/// Returns how many records were fully readable.
pub fn read_everything(snap: &fms::Snapshot) -> usize {
    let mut ok = 0;
    let title = snap.key("title");
    for id in snap.ids() {
        let _ = snap.contains(id);
        let _ = snap.get(id);
    }
    for (_, rec) in snap.iter() {
        let _ = rec.len();
        for k in rec.keys() {
            let _ = rec.get(k);
            let _ = rec.contains_key(k);
        }
        for v in rec.values() {
            let _ = (
                v.as_str(),
                v.as_i64(),
                v.as_f64(),
                v.as_bytes(),
                v.as_bool(),
            );
            if let Some(l) = v.as_list() {
                let _ = l.iter().count();
            }
        }
        if let Some(k) = title {
            let _ = rec.get_key(k);
        }
        let _ = format!("{rec:?}");
        let json = serde_json::to_string(&rec);
        let owned = rec.to_owned();
        let de = rec.deserialize::<fms::TupleMap>();
        if json.is_ok() && owned.is_ok() && de.is_ok() {
            ok += 1;
        }
    }
    ok
}

/// Writes a snapshot of `n` small records (ids `r:0`.. `r:{n-1}`) to `path`.
pub fn write_numbered(path: &std::path::Path, n: usize) {
    let mut b = SnapshotBuilder::new();
    for i in 0..n {
        b.insert(
            &format!("r:{i}"),
            &json!({"title": format!("Record {i}"), "n": i, "kind": "video", "tags": ["a", format!("t{}", i % 10)]}),
        )
        .unwrap();
    }
    b.write_to_path(path).unwrap();
}

/// Everything a reader can ask of a record agrees with the map it was built from.
pub fn check_record(snap: &Snapshot, rec: fms::Record<'_>, m: &TupleMap) {
    assert_eq!(rec.len(), m.len());
    assert_eq!(rec.keys().collect::<Vec<_>>(), m.keys().collect::<Vec<_>>());
    for ((k, v), (rk, rv)) in m.iter().zip(rec.iter()) {
        assert_eq!(k, rk);
        assert!(rv == *v, "iter: {k}: {rv:?} != {v:?}");
        let got = rec.get(k).unwrap_or_else(|| panic!("get({k:?}) is None"));
        assert!(got == *v, "get: {k}: {got:?} != {v:?}");
        let key = snap.key(k).expect("key resolves");
        assert!(rec.get_key(key).unwrap() == *v);
        assert!(rec.contains_key(k));
        check_accessors(got, v);
    }
    assert!(rec == *m);
    // serde: to owned, to JSON, to a TupleMap through the Deserializer.
    assert_eq!(&rec.to_owned().unwrap(), m);
    assert_eq!(
        serde_json::to_value(rec).unwrap(),
        serde_json::to_value(m).unwrap()
    );
    let back: TupleMap = rec.deserialize().unwrap();
    assert_eq!(&back, m);
    // The direct JSON writer: serde_json's bytes exactly, appended after what is there.
    let mut json = b"x".to_vec();
    rec.write_json(&mut json).unwrap();
    assert_eq!(json[1..], serde_json::to_vec(&rec).unwrap()[..]);
    for v in rec.values() {
        json.clear();
        v.write_json(&mut json).unwrap();
        assert_eq!(json, serde_json::to_vec(&v).unwrap());
    }
}

pub fn check_accessors(got: ValueRef<'_>, v: &Value) {
    assert_eq!(got.kind(), v.kind());
    assert_eq!(got.to_str().as_deref(), v.as_str());
    assert_eq!(got.as_i64(), v.as_i64());
    assert_eq!(got.as_bool(), v.as_bool());
    assert_eq!(got.as_bytes(), v.as_bytes());
    assert_eq!(got.is_null(), v.is_null());
    assert_eq!(got.to_owned().unwrap(), *v);
    if let (Some(l), Some(vl)) = (got.as_list(), v.as_list()) {
        assert_eq!(l.len(), vl.len());
        for (i, x) in vl.iter().enumerate() {
            check_accessors(l.get(i).unwrap(), x);
        }
        assert!(l.get(vl.len()).is_none());
    }
    if let (Some(r), Some(vm)) = (got.as_map(), v.as_map()) {
        for (k, x) in vm.iter() {
            check_accessors(r.get(k).unwrap(), x);
        }
    }
}

/// Runs the `fms` binary with `args` in `dir`.
pub fn fms(args: &[&str], dir: &std::path::Path) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_fms"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run fms")
}

/// A command's stdout, as text.
pub fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A command's stderr, as text.
pub fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `n` words drawn from `words` by a fixed-seed generator, a sentence every nine: text
/// that compresses like text (not like a repeated sentence), different for every seed.
pub fn prose(words: &[&str], seed: u64, n: usize) -> String {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut out = String::new();
    for k in 0..n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.push_str(words[(x % words.len() as u64) as usize]);
        out.push_str(if k % 9 == 8 { ". " } else { " " });
    }
    out
}

/// The bytes of a snapshot of JSON records `recs`, built with compression `c`.
pub fn build_json(recs: &[(String, serde_json::Value)], c: fms::Compression) -> Vec<u8> {
    let mut b = SnapshotBuilder::new();
    b.set_compression(c);
    for (id, r) in recs {
        b.insert(id, r).unwrap();
    }
    b.to_bytes().unwrap()
}

/// The string value of field `field` of record `id`.
pub fn str_of<'a>(snap: &'a Snapshot, id: &str, field: &str) -> fms::Str<'a> {
    snap.get(id)
        .unwrap()
        .get(field)
        .unwrap()
        .as_str()
        .unwrap_or_else(|| panic!("{id}.{field} is a string"))
}

/// The overlay `o` (a builder over `base`) opened and verified; every record of `want` reads
/// through it as that JSON.
pub fn overlay_reads_as(
    o: SnapshotBuilder,
    base: &std::sync::Arc<Snapshot>,
    want: &[(String, serde_json::Value)],
) -> Snapshot {
    let over = Snapshot::overlay_from_bytes(o.to_bytes().unwrap(), base.clone()).unwrap();
    over.verify().unwrap();
    for (id, r) in want {
        assert_eq!(
            serde_json::to_value(over.get(id).unwrap()).unwrap(),
            *r,
            "{id}"
        );
    }
    over
}

/// The records of a committed JSONL file: `(id, the record without its id)`.
pub fn jsonl(path: &std::path::Path) -> Vec<(String, serde_json::Value)> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            let id = v.as_object_mut().unwrap().remove("id").unwrap();
            (id.as_str().unwrap().to_owned(), v)
        })
        .collect()
}

/// The byte range of section `name` (`pool`, `cold`, …) in `snap`'s file.
pub fn section(snap: &Snapshot, name: &str) -> std::ops::Range<usize> {
    let s = snap
        .sections()
        .into_iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no section {name}"));
    s.offset as usize..(s.offset + s.len) as usize
}

/// A buffer that is `first` when a snapshot is opened from it (its first `as_ref`) and
/// `later` afterwards: safe code can write one, so reads must not panic on it.
pub struct Flip {
    first: Vec<u8>,
    later: Vec<u8>,
    calls: std::sync::atomic::AtomicUsize,
}

impl Flip {
    pub fn new(first: Vec<u8>, later: Vec<u8>) -> Flip {
        Flip {
            first,
            later,
            calls: std::sync::atomic::AtomicUsize::new(0),
        }
    }
}

impl AsRef<[u8]> for Flip {
    fn as_ref(&self) -> &[u8] {
        let calls = self
            .calls
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if calls == 0 { &self.first } else { &self.later }
    }
}

/// What open keeps of a file besides its fixed layout, read from its bytes: its symbol
/// tables (the first `u32` of its SYMBOLS section; 8 bytes of heap each) and its shapes
/// (the first `u32` of its SHAPES section; 20 bytes each, the first 256 of them). Each
/// kind takes one block in a file that has any.
#[derive(Clone, Copy, Debug)]
pub struct Cached {
    pub tables: u64,
    pub shapes: u64,
}

/// [`Cached`] of `snap`, read from its own bytes.
pub fn cached(snap: &Snapshot) -> Cached {
    let bytes = snap.as_bytes();
    let count = |name: &str| {
        let r = section(snap, name);
        if r.is_empty() {
            return 0;
        }
        u64::from(u32::from_le_bytes(
            bytes[r.start..r.start + 4].try_into().unwrap(),
        ))
    };
    Cached {
        tables: count("symbols"),
        shapes: count("shapes").min(256),
    }
}

/// `(blocks, bytes)` of heap less what open keeps of each file as [`Cached`] says.
pub fn heap_without_cached((blocks, bytes): (u64, u64), files: &[Cached]) -> (u64, u64) {
    let kept = |f: &Cached| {
        (
            u64::from(f.tables > 0) + u64::from(f.shapes > 0),
            8 * f.tables + 20 * f.shapes,
        )
    };
    files
        .iter()
        .map(kept)
        .fold((blocks, bytes), |(b, n), (kb, kn)| (b - kb, n - kn))
}

/// `f` of every string value of `snap`'s records, nested ones (in lists and maps)
/// included.
pub fn each_string<'a>(snap: &'a Snapshot, mut f: impl FnMut(fms::Str<'a>)) {
    let mut stack: Vec<ValueRef<'a>> = snap.iter().map(|(_, r)| ValueRef::Map(r)).collect();
    while let Some(v) = stack.pop() {
        match v {
            ValueRef::Str(s) => f(s),
            ValueRef::List(l) => stack.extend(l.iter()),
            ValueRef::Map(m) => stack.extend(m.values()),
            _ => {}
        }
    }
}
