//! fms against its in-memory peers, on the same data, in one harness.
//!
//! Data: the scale-1 default-locale synthetic corpus (`fms::corpus`, seed 1: 26,100
//! records), as an mmapped snapshot and as a `HashMap<String, serde_json::Value>`.
//!
//! * `id_{cold,hot}/*`: one lookup by id per iteration; `cold` cycles through every id in
//!   a shuffled order, `hot` through a working set of 256 of them.
//! * `field_{cold,hot}/*`: one `"title"` lookup (read as `&str`) per iteration, over the
//!   same records in the same order: `Record::get`, `Record::get_key` with a pre-resolved
//!   key, and `serde_json::Map::get` on the same record's object.
//! * `open/*`: `Snapshot::open` + drop of a 5-record snapshot, of the scale-1 snapshot and
//!   of one over 500 MB (built once, cached under `target/fms-bench/`, keyed by the scale-1
//!   snapshot's hash); `open/from_bytes_*` times fms's own part alone, on bytes already in
//!   memory.
//! * `verify/*`: `Snapshot::verify` of the scale-1 snapshot, as bytes per second.
//! * `overlay_{cold,hot}/*`: the `es` tree (70% of text fields translated) read through a
//!   locale overlay over the `en` snapshot against the same tree as a full snapshot: one
//!   id lookup plus a `"title"` read per iteration, same ids in the same order.
//!
//! Run: `cargo bench --bench core` (the first run builds the large snapshot, ~1 minute).

use std::collections::HashMap;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use fms::corpus::{self, CorpusConfig};
use fms::{Snapshot, SnapshotBuilder};
use serde_json::Value;

mod common;
use common::{cache_dir, shuffled};

/// Records in the "hot" working set.
const HOT: usize = 256;

/// The large snapshot must be at least this big on disk.
const LARGE_BYTES: u64 = 500_000_000;

/// The large snapshot, built from the corpus at a scale that makes it at least
/// [`LARGE_BYTES`], or reused from an earlier run with the same scale-1 hash.
fn large_snapshot(dir: &Path, scale1_bytes: u64, scale1_hash: &str) -> PathBuf {
    let scale = (LARGE_BYTES as f64 * 1.05 / scale1_bytes as f64)
        .ceil()
        .max(1.0);
    let path = dir.join(format!("large-{scale1_hash}-x{scale}.fms"));
    let cfg = CorpusConfig {
        scale,
        ..CorpusConfig::default()
    };
    let ok = Snapshot::open(&path).is_ok_and(|s| {
        s.len() as u64 == cfg.counts().total() && s.as_bytes().len() as u64 >= LARGE_BYTES
    });
    if ok {
        return path;
    }
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if e.file_name().to_string_lossy().starts_with("large-") {
            let _ = std::fs::remove_file(e.path());
        }
    }
    eprintln!(
        "building the large snapshot (scale {scale}) at {}",
        path.display()
    );
    let t = std::time::Instant::now();
    let mut b = SnapshotBuilder::new();
    for (id, rec) in corpus::records(&cfg, 0) {
        b.insert(&id, &rec).expect("insert");
    }
    let info = b.write_to_path(&path).expect("write large snapshot");
    eprintln!(
        "built {} records, {} bytes in {:.1?}",
        info.records,
        info.bytes,
        t.elapsed()
    );
    assert!(
        info.bytes >= LARGE_BYTES,
        "large snapshot is only {} bytes",
        info.bytes
    );
    path
}

fn benches(c: &mut Criterion) {
    let dir = cache_dir();
    let t = std::time::Instant::now();
    let tree = corpus::generate(&CorpusConfig::default()).trees.remove(0);
    eprintln!(
        "scale-1 corpus: {} records generated in {:.2?}",
        tree.len(),
        t.elapsed()
    );
    assert!(tree.len() >= 26_000);

    let scale1 = dir.join("scale1.fms");
    let mut b = SnapshotBuilder::new();
    for (id, rec) in &tree {
        b.insert(id, rec).expect("insert");
    }
    let info = b.write_to_path(&scale1).expect("write scale-1 snapshot");
    drop(b);
    let snap = Snapshot::open(&scale1).expect("open scale-1 snapshot");
    snap.verify().expect("verify scale-1 snapshot");
    eprintln!(
        "scale-1 snapshot: {} records, {} bytes, hash {}",
        info.records, info.bytes, info.hash
    );

    // The same tree with plain strings (`--compress none`): verify's own cost per byte,
    // without decoding cold blocks (the target is for uncompressed bytes).
    let plain = dir.join("scale1-none.fms");
    let mut b = SnapshotBuilder::new();
    b.set_compression(fms::Compression::None);
    for (id, rec) in &tree {
        b.insert(id, rec).expect("insert");
    }
    b.write_to_path(&plain)
        .expect("write uncompressed scale-1 snapshot");
    drop(b);

    // The peer: what a server holds when it loads the same tree as serde_json values.
    let ids: Vec<String> = tree.iter().map(|(id, _)| id.clone()).collect();
    let map: HashMap<String, Value> = tree.into_iter().collect();
    let order: Vec<&str> = shuffled(ids.len())
        .into_iter()
        .map(|i| ids[i].as_str())
        .collect();

    // Two access patterns: "cold" cycles through all 26,100 records in a shuffled order
    // (every read misses the CPU caches: a server answering requests for random pages);
    // "hot" cycles through a working set of 256 of them (a page rendering the fields of
    // records it just looked up).
    let recs: Vec<fms::Record<'_>> = order.iter().map(|id| snap.get(id).unwrap()).collect();
    let objs: Vec<&serde_json::Map<String, Value>> = order
        .iter()
        .map(|id| map[*id].as_object().unwrap())
        .collect();
    let title = snap.key("title").unwrap();
    let creation_date = snap.key("creation_date").unwrap();
    for (set, n) in [("cold", order.len()), ("hot", HOT)] {
        let mut g = c.benchmark_group(format!("id_{set}"));
        g.bench_function("fms_snapshot_get", |b| {
            let mut i = 0;
            b.iter(|| {
                let r = snap.get(black_box(order[i]));
                i = if i + 1 == n { 0 } else { i + 1 };
                black_box(r.map(|r| r.len()))
            })
        });
        g.bench_function("std_hashmap_get", |b| {
            let mut i = 0;
            b.iter(|| {
                let r = map.get(black_box(order[i]));
                i = if i + 1 == n { 0 } else { i + 1 };
                black_box(r.and_then(Value::as_object).map(|m| m.len()))
            })
        });
        g.finish();

        let mut g = c.benchmark_group(format!("field_{set}"));
        g.bench_function("fms_record_get", |b| {
            let mut i = 0;
            b.iter(|| {
                let v = recs[i].get(black_box("title"));
                i = if i + 1 == n { 0 } else { i + 1 };
                black_box(v.and_then(|v| v.as_str()))
            })
        });
        g.bench_function("fms_record_get_key", |b| {
            let mut i = 0;
            b.iter(|| {
                let v = recs[i].get_key(black_box(title));
                i = if i + 1 == n { 0 } else { i + 1 };
                black_box(v.and_then(|v| v.as_str()))
            })
        });
        // Diagnostic: a key near the front of every shape ("title" sorts near the end),
        // to show what the scan of the shape's keys costs.
        g.bench_function("fms_record_get_key_creation_date", |b| {
            let mut i = 0;
            b.iter(|| {
                let v = recs[i].get_key(black_box(creation_date));
                i = if i + 1 == n { 0 } else { i + 1 };
                black_box(v.and_then(|v| v.as_str()))
            })
        });
        g.bench_function("serde_json_map_get", |b| {
            let mut i = 0;
            b.iter(|| {
                let v = objs[i].get(black_box("title"));
                i = if i + 1 == n { 0 } else { i + 1 };
                black_box(v.and_then(Value::as_str))
            })
        });
        g.finish();
    }

    let small = dir.join("small.fms");
    let mut b = SnapshotBuilder::new();
    for id in &ids[..5] {
        b.insert(id, &map[id]).expect("insert");
    }
    b.write_to_path(&small).expect("write small snapshot");
    let large = large_snapshot(&dir, info.bytes, &info.hash.to_string());
    let mut g = c.benchmark_group("open");
    let sizes = [
        ("small_5_records", &small),
        ("scale1", &scale1),
        ("large_over_500mb", &large),
    ];
    for (name, path) in sizes {
        let bytes = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        eprintln!("open/{name}: {} ({bytes} bytes)", path.display());
        g.bench_function(name, |b| {
            b.iter(|| black_box(Snapshot::open(black_box(path)).expect("open").len()))
        });
    }
    // The same, without the kernel: the snapshot's bytes already in memory
    // (`&'static [u8]`), so only fms's own work is timed (header and section table).
    for (name, path) in [("small_5_records", &small), ("large_over_500mb", &large)] {
        let bytes: &'static [u8] = Box::leak(std::fs::read(path).expect("read").into_boxed_slice());
        g.bench_function(format!("from_bytes_{name}"), |b| {
            b.iter(|| black_box(Snapshot::from_bytes(black_box(bytes)).expect("parse").len()))
        });
    }
    g.finish();

    let mut g = c.benchmark_group("verify");
    g.throughput(Throughput::Bytes(snap.as_bytes().len() as u64))
        .sample_size(10)
        .measurement_time(Duration::from_secs(8));
    g.bench_function("scale1", |b| b.iter(|| snap.verify().expect("verify")));
    let plain = Snapshot::open(&plain).expect("open uncompressed scale-1 snapshot");
    g.throughput(Throughput::Bytes(plain.as_bytes().len() as u64));
    g.bench_function("scale1_uncompressed", |b| {
        b.iter(|| plain.verify().expect("verify"))
    });
    g.finish();
}

/// The `es` tree as an overlay over `en` and as a full snapshot, read the same way.
fn overlays(c: &mut Criterion) {
    let dir = cache_dir();
    let cfg = CorpusConfig {
        locales: vec!["en".into(), "es".into()],
        ..CorpusConfig::default()
    };
    let write = |name: &str, tree: &[(String, Value)], base: Option<&std::sync::Arc<Snapshot>>| {
        let mut b = match base {
            Some(base) => SnapshotBuilder::with_base(base),
            None => SnapshotBuilder::new(),
        };
        for (id, rec) in tree {
            b.insert(id, rec).expect("insert");
        }
        b.remove_absent().expect("remove_absent");
        let path = dir.join(name);
        let info = b.write_to_path(&path).expect("write");
        eprintln!("{name}: {} bytes", info.bytes);
        path
    };
    let en_tree: Vec<(String, Value)> = corpus::records(&cfg, 0).collect();
    let es_tree: Vec<(String, Value)> = corpus::records(&cfg, 1).collect();
    let en = std::sync::Arc::new(
        Snapshot::open(write("overlay-en.fms", &en_tree, None)).expect("open en"),
    );
    let es_over = Snapshot::open_overlay(write("overlay-es.fms", &es_tree, Some(&en)), en.clone())
        .expect("open es overlay");
    let es_full = Snapshot::open(write("full-es.fms", &es_tree, None)).expect("open es");
    let ids: Vec<&str> = es_tree.iter().map(|(id, _)| id.as_str()).collect();
    let order: Vec<&str> = shuffled(ids.len()).into_iter().map(|i| ids[i]).collect();
    for (set, n) in [("cold", order.len()), ("hot", HOT)] {
        let mut g = c.benchmark_group(format!("overlay_{set}"));
        for (name, snap) in [("full_snapshot", &es_full), ("overlay_over_en", &es_over)] {
            g.bench_function(format!("{name}_get_title"), |b| {
                let mut i = 0;
                b.iter(|| {
                    let r = snap.get(black_box(order[i])).expect("record");
                    i = if i + 1 == n { 0 } else { i + 1 };
                    black_box(r.get("title").and_then(|v| v.as_str()))
                })
            });
            let title = snap.key("title").expect("title key");
            g.bench_function(format!("{name}_get_key_title"), |b| {
                let mut i = 0;
                b.iter(|| {
                    let r = snap.get(black_box(order[i])).expect("record");
                    i = if i + 1 == n { 0 } else { i + 1 };
                    black_box(r.get_key(title).and_then(|v| v.as_str()))
                })
            });
        }
        g.finish();
    }
}

criterion_group! {
    name = core;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .without_plots();
    targets = benches, overlays
}
criterion_main!(core);
