//! fms against other stores of the same records, in one harness, on the same data
//! ("benchmarks against peers", issue 4).
//!
//! Data: the scale-1 default-locale synthetic corpus (`fms::corpus`, seed 1: 26,100
//! records, articles with 5–20 KB bodies), held by five peers:
//!
//! * **fms**: `SnapshotBuilder` → a file under `target/fms-bench/` → `Snapshot::open` (mmap).
//! * **serde_json**: `HashMap<String, serde_json::Value>` parsed from compact JSONL, the
//!   naive in-memory baseline (`serde_json::Map` is a `BTreeMap`: its field lookup walks a
//!   B-tree of heap strings).
//! * **flexbuffers**: one schemaless flexbuffer map id → record map, read zero-copy:
//!   `Reader::get_root(&bytes)?.as_map().idx(id).as_map().idx("title")` (binary search
//!   over sorted, NUL-terminated keys).
//! * **rkyv**: the tree as `HashMap<String, Val>` archived to an `ArchivedHashMap` (a
//!   swiss table with FxHash), records as `Val::Map(HashMap<String, Val>)`; opened with
//!   `rkyv::access` (validated with bytecheck, O(n)) and, for reference,
//!   `rkyv::access_unchecked` (O(1), `unsafe`; these bytes were validated once at setup).
//! * **bincode**: bincode 2 (`standard()`, decoded `with_limit`) of the same
//!   `HashMap<String, Val>`, fully decoded, then read as a std `HashMap` of `HashMap`s
//!   (`serde_json::Value` cannot be decoded by bincode: it needs `deserialize_any`).
//!
//! Groups (criterion names are `peers_<group>/<peer>`):
//!
//! * `open`: ready-to-query from a file (fms) or from bytes already in memory (the others)
//!   for the O(1) opens; `load`: the O(n) ones (JSONL parse, bincode decode, rkyv's
//!   validated access, and fms `open` + `verify`, its own full validation).
//! * `id_{cold,hot}`: one lookup by id per iteration; `cold` cycles through every id in a
//!   fixed shuffled order, `hot` through 256 of them.
//! * `field_{cold,hot}`: record by id, then its `"title"` by name, read as `&str`.
//! * `scan`: visit every value of every record (nested lists and maps included) and sum
//!   string, key and value counts; every peer must return the same sums.
//! * `open_vs_size`: fms `open` against bincode decode and JSONL parse for snapshots of
//!   about 1 MiB, 16 MiB, 128 MiB and (fms only) 1 GiB; the large corpora are cached
//!   under `target/fms-bench/`, keyed by the scale-1 snapshot's hash.
//!
//! Sizes cannot be reported through criterion: the bench prints them as a table on
//! stdout before the first measurement.
//!
//! Run: `cargo bench --bench peers` (the first run also builds the ~1 GiB snapshot).

use std::collections::HashMap;
use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{Bencher, BenchmarkId, Criterion, SamplingMode, criterion_group, criterion_main};
use flexbuffers::{BuilderOptions, FlexBufferType, MapBuilder, MapReader, Reader, VectorBuilder};
use fms::corpus::{self, CorpusConfig};
use fms::{Record, Snapshot, SnapshotBuilder, ValueRef};
use serde_json::Value;

mod common;
use common::{cache_dir, shuffled};

/// Records in the "hot" working set.
const HOT: usize = 256;

/// bincode's decode limit (bytes it may claim for allocations): generous for the largest
/// corpus decoded here, but a corrupt length prefix cannot make it allocate without bound.
const BINCODE_LIMIT: usize = 1 << 32;

fn bincode_config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<BINCODE_LIMIT>()
}

/// A schemaless value for the typed peers (rkyv and bincode): the JSON data model, with
/// maps as hash maps so that a field is found by hashing its name, as in fms.
#[derive(
    rkyv::Archive, rkyv::Serialize, serde::Serialize, serde::Deserialize, Debug, PartialEq,
)]
#[rkyv(serialize_bounds(
    __S: rkyv::ser::Writer + rkyv::ser::Allocator,
    __S::Error: rkyv::rancor::Source,
))]
#[rkyv(bytecheck(bounds(
    __C: rkyv::validation::ArchiveContext,
    __C::Error: rkyv::rancor::Source,
)))]
enum Val {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    List(#[rkyv(omit_bounds)] Vec<Val>),
    Map(#[rkyv(omit_bounds)] HashMap<String, Val>),
}

impl From<&Value> for Val {
    fn from(v: &Value) -> Val {
        match v {
            Value::Null => Val::Null,
            Value::Bool(b) => Val::Bool(*b),
            Value::Number(n) => match n.as_i64() {
                Some(i) => Val::Int(i),
                None => Val::Float(n.as_f64().expect("a JSON number")),
            },
            Value::String(s) => Val::Str(s.clone()),
            Value::Array(a) => Val::List(a.iter().map(Val::from).collect()),
            Value::Object(m) => Val::Map(m.iter().map(|(k, v)| (k.clone(), v.into())).collect()),
        }
    }
}

type ArchivedTree = rkyv::Archived<HashMap<String, Val>>;

/// What a full scan adds up: values visited (every field value, list element and nested
/// map value), bytes of string values, bytes of keys (record ids and field names).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Sums {
    values: u64,
    str_bytes: u64,
    key_bytes: u64,
}

// ---------------------------------------------------------------------------------------
// Full scans, one per peer.

fn scan_fms(snap: &Snapshot) -> Sums {
    fn map(r: Record<'_>, s: &mut Sums) {
        for (k, v) in r.iter() {
            s.key_bytes += k.len() as u64;
            value(v, s);
        }
    }
    fn value(v: ValueRef<'_>, s: &mut Sums) {
        s.values += 1;
        match v {
            ValueRef::Str(x) => s.str_bytes += x.len() as u64,
            ValueRef::Bytes(x) => s.str_bytes += x.len() as u64,
            ValueRef::List(l) => l.iter().for_each(|x| value(x, s)),
            ValueRef::Map(m) => map(m, s),
            _ => {}
        }
    }
    let mut s = Sums::default();
    for (id, rec) in snap.iter() {
        s.key_bytes += id.len() as u64;
        map(rec, &mut s);
    }
    s
}

fn scan_json(tree: &HashMap<String, Value>) -> Sums {
    fn map(m: &serde_json::Map<String, Value>, s: &mut Sums) {
        for (k, v) in m {
            s.key_bytes += k.len() as u64;
            value(v, s);
        }
    }
    fn value(v: &Value, s: &mut Sums) {
        s.values += 1;
        match v {
            Value::String(x) => s.str_bytes += x.len() as u64,
            Value::Array(a) => a.iter().for_each(|x| value(x, s)),
            Value::Object(m) => map(m, s),
            _ => {}
        }
    }
    let mut s = Sums::default();
    for (id, rec) in tree {
        s.key_bytes += id.len() as u64;
        map(rec.as_object().expect("record is an object"), &mut s);
    }
    s
}

fn scan_flex(root: &MapReader<&[u8]>) -> Sums {
    fn map(m: &MapReader<&[u8]>, s: &mut Sums) {
        for (k, v) in m.iter_keys().zip(m.iter_values()) {
            s.key_bytes += k.len() as u64;
            value(&v, s);
        }
    }
    fn value(v: &Reader<&[u8]>, s: &mut Sums) {
        s.values += 1;
        match v.flexbuffer_type() {
            FlexBufferType::String => s.str_bytes += v.as_str().len() as u64,
            FlexBufferType::Map => map(&v.as_map(), s),
            t if t.is_vector() => v.as_vector().iter().for_each(|x| value(&x, s)),
            _ => {}
        }
    }
    let mut s = Sums::default();
    for (id, rec) in root.iter_keys().zip(root.iter_values()) {
        s.key_bytes += id.len() as u64;
        map(&rec.as_map(), &mut s);
    }
    s
}

fn scan_rkyv(tree: &ArchivedTree) -> Sums {
    fn map(m: &rkyv::Archived<HashMap<String, Val>>, s: &mut Sums) {
        for (k, v) in m.iter() {
            s.key_bytes += k.len() as u64;
            value(v, s);
        }
    }
    fn value(v: &ArchivedVal, s: &mut Sums) {
        s.values += 1;
        match v {
            ArchivedVal::Str(x) => s.str_bytes += x.len() as u64,
            ArchivedVal::List(a) => a.iter().for_each(|x| value(x, s)),
            ArchivedVal::Map(m) => map(m, s),
            _ => {}
        }
    }
    let mut s = Sums::default();
    for (id, rec) in tree.iter() {
        s.key_bytes += id.len() as u64;
        match rec {
            ArchivedVal::Map(m) => map(m, &mut s),
            _ => panic!("record is not a map"),
        }
    }
    s
}

fn scan_val(tree: &HashMap<String, Val>) -> Sums {
    fn map(m: &HashMap<String, Val>, s: &mut Sums) {
        for (k, v) in m {
            s.key_bytes += k.len() as u64;
            value(v, s);
        }
    }
    fn value(v: &Val, s: &mut Sums) {
        s.values += 1;
        match v {
            Val::Str(x) => s.str_bytes += x.len() as u64,
            Val::List(a) => a.iter().for_each(|x| value(x, s)),
            Val::Map(m) => map(m, s),
            _ => {}
        }
    }
    let mut s = Sums::default();
    for (id, rec) in tree {
        s.key_bytes += id.len() as u64;
        match rec {
            Val::Map(m) => map(m, &mut s),
            _ => panic!("record is not a map"),
        }
    }
    s
}

// ---------------------------------------------------------------------------------------
// Building each peer's bytes.

fn jsonl_of(tree: &[(String, Value)]) -> String {
    let mut out = String::new();
    for (id, rec) in tree {
        out.push_str(&corpus::jsonl_line(id, rec));
        out.push('\n');
    }
    out
}

/// What a server does to load the naive peer: JSONL → id → object.
fn parse_jsonl(jsonl: &str) -> HashMap<String, Value> {
    corpus::hashmap_of_jsonl(jsonl.lines()).expect("the corpus parses")
}

fn flex_of(tree: &[(String, Value)], opts: BuilderOptions) -> Vec<u8> {
    fn map(m: &mut MapBuilder<'_>, obj: &serde_json::Map<String, Value>) {
        for (k, v) in obj {
            match v {
                Value::Null => m.push(k, ()),
                Value::Bool(b) => m.push(k, *b),
                Value::Number(n) => match n.as_i64() {
                    Some(i) => m.push(k, i),
                    None => m.push(k, n.as_f64().expect("a JSON number")),
                },
                Value::String(s) => m.push(k, s.as_str()),
                Value::Array(a) => {
                    let mut b = m.start_vector(k);
                    vector(&mut b, a);
                    b.end_vector();
                }
                Value::Object(o) => {
                    let mut b = m.start_map(k);
                    map(&mut b, o);
                    b.end_map();
                }
            }
        }
    }
    fn vector(m: &mut VectorBuilder<'_>, items: &[Value]) {
        for v in items {
            match v {
                Value::Null => m.push(()),
                Value::Bool(b) => m.push(*b),
                Value::Number(n) => match n.as_i64() {
                    Some(i) => m.push(i),
                    None => m.push(n.as_f64().expect("a JSON number")),
                },
                Value::String(s) => m.push(s.as_str()),
                Value::Array(a) => {
                    let mut b = m.start_vector();
                    vector(&mut b, a);
                    b.end_vector();
                }
                Value::Object(o) => {
                    let mut b = m.start_map();
                    map(&mut b, o);
                    b.end_map();
                }
            }
        }
    }
    let mut b = flexbuffers::Builder::new(opts);
    let mut root = b.start_map();
    for (id, rec) in tree {
        let mut m = root.start_map(id);
        map(&mut m, rec.as_object().expect("record is an object"));
        m.end_map();
    }
    root.end_map();
    b.take_buffer()
}

fn val_tree_of(tree: &[(String, Value)]) -> HashMap<String, Val> {
    tree.iter().map(|(id, v)| (id.clone(), v.into())).collect()
}

fn bincode_of(tree: &HashMap<String, Val>) -> Vec<u8> {
    bincode::serde::encode_to_vec(tree, bincode_config()).expect("bincode encode")
}

fn bincode_decode(bytes: &[u8]) -> HashMap<String, Val> {
    let (tree, read) =
        bincode::serde::decode_from_slice(bytes, bincode_config()).expect("bincode decode");
    assert_eq!(read, bytes.len());
    tree
}

fn fms_snapshot(tree: &[(String, Value)], path: &Path) -> fms::BuildInfo {
    let mut b = SnapshotBuilder::new();
    for (id, rec) in tree {
        b.insert(id, rec).expect("insert");
    }
    b.write_to_path(path).expect("write snapshot")
}

// ---------------------------------------------------------------------------------------
// Helpers.

/// One call of `f` per iteration, cycling through `ids`.
fn cycling<'i, O>(b: &mut Bencher<'_>, ids: &[&'i str], mut f: impl FnMut(&'i str) -> O) {
    let mut i = 0;
    b.iter(|| {
        let o = f(black_box(ids[i]));
        i = if i + 1 == ids.len() { 0 } else { i + 1 };
        o
    })
}

fn mib(b: u64) -> String {
    format!("{:.1} MiB", b as f64 / (1u64 << 20) as f64)
}

// ---------------------------------------------------------------------------------------

fn benches(c: &mut Criterion) {
    let dir = cache_dir();
    let t = Instant::now();
    let cfg = CorpusConfig::default();
    let tree = corpus::generate(&cfg).trees.remove(0);
    eprintln!(
        "scale-1 corpus: {} records generated in {:.2?}",
        tree.len(),
        t.elapsed()
    );
    assert!(tree.len() >= 26_000);

    // Every peer's bytes, from the same records.
    let timed = |what: &str, t: Instant| eprintln!("  built {what} in {:.2?}", t.elapsed());
    let t = Instant::now();
    let fms_path = dir.join("peers-scale1.fms");
    let info = fms_snapshot(&tree, &fms_path);
    timed("fms snapshot", t);
    let t = Instant::now();
    let jsonl = jsonl_of(&tree);
    timed("JSONL", t);
    let t = Instant::now();
    let flex = flex_of(&tree, BuilderOptions::default());
    timed("flexbuffer (SHARE_KEYS, the default)", t);
    let t = Instant::now();
    let flex_share_all = flex_of(&tree, BuilderOptions::SHARE_ALL).len() as u64;
    timed("flexbuffer (SHARE_ALL)", t);
    let t = Instant::now();
    let vals = val_tree_of(&tree);
    let rkyv_bytes = rkyv::to_bytes::<rkyv::rancor::Error>(&vals).expect("rkyv serialize");
    timed("rkyv archive", t);
    let t = Instant::now();
    let bincode_bytes = bincode_of(&vals);
    timed("bincode", t);
    let ids: Vec<String> = tree.iter().map(|(id, _)| id.clone()).collect();
    let n = ids.len();
    drop(tree);

    // Each peer, ready to query.
    let snap = Snapshot::open(&fms_path).expect("open snapshot");
    snap.verify().expect("verify snapshot");
    let json = parse_jsonl(&jsonl);
    let flex_root = Reader::get_root(&flex[..])
        .expect("flexbuffer root")
        .as_map();
    let archived =
        rkyv::access::<ArchivedTree, rkyv::rancor::Error>(&rkyv_bytes).expect("rkyv access");
    let decoded = bincode_decode(&bincode_bytes);
    assert!(decoded == vals, "bincode round trip");
    drop(vals);

    // Same data everywhere: every peer's full scan must add up to the same sums.
    let sums = scan_fms(&snap);
    assert_eq!(scan_json(&json), sums, "serde_json scan");
    assert_eq!(scan_flex(&flex_root), sums, "flexbuffers scan");
    assert_eq!(scan_rkyv(archived), sums, "rkyv scan");
    assert_eq!(scan_val(&decoded), sums, "bincode scan");
    assert_eq!(snap.len(), n);
    assert_eq!(
        (json.len(), flex_root.len(), archived.len(), decoded.len()),
        (n, n, n, n)
    );

    let fms_bytes = info.bytes;
    let row = |name: &str, bytes: u64| {
        println!(
            "| {name} | {bytes} | {} | {:.3} |",
            mib(bytes),
            fms_bytes as f64 / bytes as f64
        );
    };
    println!();
    println!(
        "peers: scale-1 corpus, {n} records ({} values, {} bytes of strings, {} bytes of keys)",
        sums.values, sums.str_bytes, sums.key_bytes
    );
    println!();
    println!("| form | bytes | | fms / form |");
    println!("|---|---:|---:|---:|");
    row("fms snapshot", fms_bytes);
    row(
        "compact JSONL (serde_json peer's input)",
        jsonl.len() as u64,
    );
    row(
        "flexbuffers, SHARE_KEYS (default; benched)",
        flex.len() as u64,
    );
    row("flexbuffers, SHARE_ALL", flex_share_all);
    row("rkyv archive", rkyv_bytes.len() as u64);
    row("bincode 2 standard", bincode_bytes.len() as u64);
    println!();
    let sections: Vec<String> = info
        .sections
        .iter()
        .map(|(name, bytes)| format!("{name} {bytes}"))
        .collect();
    println!(
        "fms sections: {} ({} distinct strings); flexbuffers' Rust builder shares keys only \
         (SHARE_STRINGS and SHARE_KEY_VECTORS change nothing)",
        sections.join(", "),
        info.strings
    );
    println!();

    // -- open: O(1) ways to get ready to query ---------------------------------------
    let fms_static: &'static [u8] = Box::leak(
        std::fs::read(&fms_path)
            .expect("read snapshot")
            .into_boxed_slice(),
    );
    let mut g = c.benchmark_group("peers_open");
    g.bench_function("fms_open_mmap", |b| {
        b.iter(|| black_box(Snapshot::open(black_box(&fms_path)).expect("open").len()))
    });
    g.bench_function("fms_from_bytes", |b| {
        b.iter(|| {
            black_box(
                Snapshot::from_bytes(black_box(fms_static))
                    .expect("open")
                    .len(),
            )
        })
    });
    g.bench_function("flexbuffers_get_root", |b| {
        b.iter(|| {
            let root = Reader::get_root(black_box(&flex[..])).expect("root");
            black_box(root.as_map().len())
        })
    });
    g.bench_function("rkyv_access_unchecked", |b| {
        b.iter(|| {
            // SAFETY: the same bytes passed `rkyv::access` (full validation) above and
            // are not modified since.
            let t = unsafe { rkyv::access_unchecked::<ArchivedTree>(black_box(&rkyv_bytes)) };
            black_box(t.len())
        })
    });
    g.finish();

    // -- load: O(n) ways ---------------------------------------------------------------
    let mut g = c.benchmark_group("peers_load");
    g.sample_size(10).sampling_mode(SamplingMode::Flat);
    g.bench_function("fms_open_mmap_and_verify", |b| {
        b.iter(|| {
            let s = Snapshot::open(black_box(&fms_path)).expect("open");
            s.verify().expect("verify");
            black_box(s.len())
        })
    });
    g.bench_function("rkyv_access_validated", |b| {
        b.iter(|| {
            let t = rkyv::access::<ArchivedTree, rkyv::rancor::Error>(black_box(&rkyv_bytes))
                .expect("access");
            black_box(t.len())
        })
    });
    g.bench_function("bincode_decode", |b| {
        b.iter(|| black_box(bincode_decode(black_box(&bincode_bytes)).len()))
    });
    g.bench_function("serde_json_parse_jsonl", |b| {
        b.iter(|| black_box(parse_jsonl(black_box(&jsonl)).len()))
    });
    g.finish();

    // -- lookups ---------------------------------------------------------------------------
    let order: Vec<&str> = shuffled(n).into_iter().map(|i| ids[i].as_str()).collect();
    let title = snap.key("title").expect("title key");
    for (set, ids) in [("cold", &order[..]), ("hot", &order[..HOT])] {
        let mut g = c.benchmark_group(format!("peers_id_{set}"));
        g.bench_function("fms", |b| {
            cycling(b, ids, |id| snap.get(id).map(|r| r.len()))
        });
        g.bench_function("serde_json_hashmap", |b| {
            cycling(b, ids, |id| {
                json.get(id).and_then(Value::as_object).map(|m| m.len())
            })
        });
        g.bench_function("flexbuffers", |b| {
            cycling(b, ids, |id| flex_root.idx(id).as_map().len())
        });
        g.bench_function("rkyv", |b| {
            cycling(b, ids, |id| match archived.get(id) {
                Some(ArchivedVal::Map(m)) => Some(m.len()),
                _ => None,
            })
        });
        g.bench_function("bincode_decoded_hashmap", |b| {
            cycling(b, ids, |id| match decoded.get(id) {
                Some(Val::Map(m)) => Some(m.len()),
                _ => None,
            })
        });
        g.finish();

        let mut g = c.benchmark_group(format!("peers_field_{set}"));
        g.bench_function("fms", |b| {
            cycling(b, ids, |id| {
                snap.get(id)
                    .and_then(|r| r.get(black_box("title")))
                    .and_then(|v| v.as_str())
            })
        });
        g.bench_function("fms_get_key", |b| {
            cycling(b, ids, |id| {
                snap.get(id)
                    .and_then(|r| r.get_key(black_box(title)))
                    .and_then(|v| v.as_str())
            })
        });
        g.bench_function("serde_json_hashmap", |b| {
            cycling(b, ids, |id| {
                json.get(id)
                    .and_then(|r| r.get(black_box("title")))
                    .and_then(Value::as_str)
            })
        });
        g.bench_function("flexbuffers", |b| {
            cycling(b, ids, |id| {
                let v = flex_root.idx(id).as_map().idx(black_box("title"));
                v.get_str().ok()
            })
        });
        g.bench_function("rkyv", |b| {
            cycling(b, ids, |id| match archived.get(id) {
                Some(ArchivedVal::Map(m)) => match m.get(black_box("title")) {
                    Some(ArchivedVal::Str(s)) => Some(s.as_str()),
                    _ => None,
                },
                _ => None,
            })
        });
        g.bench_function("bincode_decoded_hashmap", |b| {
            cycling(b, ids, |id| match decoded.get(id) {
                Some(Val::Map(m)) => match m.get(black_box("title")) {
                    Some(Val::Str(s)) => Some(s.as_str()),
                    _ => None,
                },
                _ => None,
            })
        });
        g.finish();
    }

    // -- full scan ---------------------------------------------------------------------
    let mut g = c.benchmark_group("peers_scan");
    g.sample_size(10);
    g.bench_function("fms", |b| b.iter(|| black_box(scan_fms(&snap))));
    g.bench_function("serde_json_hashmap", |b| {
        b.iter(|| black_box(scan_json(&json)))
    });
    g.bench_function("flexbuffers", |b| {
        b.iter(|| black_box(scan_flex(&flex_root)))
    });
    g.bench_function("rkyv", |b| b.iter(|| black_box(scan_rkyv(archived))));
    g.bench_function("bincode_decoded_hashmap", |b| {
        b.iter(|| black_box(scan_val(&decoded)))
    });
    g.finish();

    drop((json, decoded, jsonl, bincode_bytes, flex, rkyv_bytes));
    open_vs_size(c, &dir, fms_bytes, &info.hash.to_string());
}

/// fms `open` (mmap) against bincode decode and JSONL parse, for corpora whose fms
/// snapshot is about 1 MiB, 16 MiB, 128 MiB and (fms only) 1 GiB.
fn open_vs_size(c: &mut Criterion, dir: &Path, scale1_bytes: u64, scale1_hash: &str) {
    let targets: [(&str, u64, bool); 4] = [
        ("1MiB", 1 << 20, true),
        ("16MiB", 16 << 20, true),
        ("128MiB", 128 << 20, true),
        ("1GiB", 1 << 30, false),
    ];
    println!();
    println!("open_vs_size: | size | scale | records | fms | bincode | JSONL |");
    let mut g = c.benchmark_group("peers_open_vs_size");
    g.sample_size(10).sampling_mode(SamplingMode::Flat);
    for (label, target, peers) in targets {
        // The scale, to 4 significant digits: a stable cache key and a readable label.
        let raw = target as f64 / scale1_bytes as f64;
        let decimals = (3 - raw.log10().floor() as i32).max(0) as usize;
        let scale_text = format!("{raw:.decimals$}");
        let scale: f64 = scale_text.parse().expect("a number");
        let cfg = CorpusConfig {
            scale,
            ..CorpusConfig::default()
        };
        let path = dir.join(format!("peers-{label}-{scale1_hash}-x{scale_text}.fms"));
        let cached = Snapshot::open(&path).is_ok_and(|s| s.len() as u64 == cfg.counts().total());
        if !cached {
            for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                if e.file_name()
                    .to_string_lossy()
                    .starts_with(&format!("peers-{label}-"))
                {
                    let _ = std::fs::remove_file(e.path());
                }
            }
            let t = Instant::now();
            let mut b = SnapshotBuilder::new();
            for (id, rec) in corpus::records(&cfg, 0) {
                b.insert(&id, &rec).expect("insert");
            }
            let info = b.write_to_path(&path).expect("write snapshot");
            eprintln!(
                "built the {label} snapshot (scale {scale_text}, {} records, {} bytes) in {:.1?}",
                info.records,
                info.bytes,
                t.elapsed()
            );
        }
        let fms_size = std::fs::metadata(&path).expect("stat snapshot").len();
        let records = cfg.counts().total();
        g.bench_with_input(BenchmarkId::new("fms_open_mmap", label), &path, |b, p| {
            b.iter(|| black_box(Snapshot::open(black_box(p)).expect("open").len()))
        });
        if !peers {
            println!("open_vs_size: | {label} | {scale_text} | {records} | {fms_size} | - | - |");
            continue;
        }
        let tree: Vec<(String, Value)> = corpus::records(&cfg, 0).collect();
        let jsonl = jsonl_of(&tree);
        let bin = bincode_of(&val_tree_of(&tree));
        drop(tree);
        println!(
            "open_vs_size: | {label} | {scale_text} | {records} | {fms_size} | {} | {} |",
            bin.len(),
            jsonl.len()
        );
        g.bench_with_input(BenchmarkId::new("bincode_decode", label), &bin, |b, bin| {
            b.iter(|| black_box(bincode_decode(black_box(bin)).len()))
        });
        g.bench_with_input(
            BenchmarkId::new("serde_json_parse_jsonl", label),
            &jsonl,
            |b, jsonl| b.iter(|| black_box(parse_jsonl(black_box(jsonl)).len())),
        );
    }
    g.finish();
}

criterion_group! {
    name = peers;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .without_plots();
    targets = benches
}
criterion_main!(peers);
