//! Heap (dhat): loading N locale overlays costs heap independent of how many records they
//! hold or change: a few hundred bytes each, whatever their size (but for 8 bytes per
//! symbol table, at most 256 tables a file, and 20 bytes per shape, at most 256). One dhat profiler per
//! process: this file holds exactly one test.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use fms::{Snapshot, SnapshotBuilder};
use serde_json::json;

mod common;

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

const LOCALES: usize = 5;

/// A base of `n` records and `LOCALES` overlays, each translating every other title.
fn write_tree(dir: &Path, n: usize) -> (PathBuf, Vec<PathBuf>) {
    let record = |i: usize, title: String| json!({"title": title, "n": i, "kind": "video", "tags": ["a", format!("t{}", i % 10)]});
    let mut b = SnapshotBuilder::new();
    for i in 0..n {
        b.insert(&format!("r:{i}"), &record(i, format!("Record {i}")))
            .unwrap();
    }
    let base_path = dir.join(format!("en-{n}.fms"));
    b.write_to_path(&base_path).unwrap();
    let base = Arc::new(Snapshot::open(&base_path).unwrap());
    let overlays = (0..LOCALES)
        .map(|l| {
            let mut o = SnapshotBuilder::with_base(&base);
            for i in (0..n).step_by(2) {
                o.insert(&format!("r:{i}"), &record(i, format!("Registro {i} ({l})")))
                    .unwrap();
            }
            let p = dir.join(format!("l{l}-{n}.fms"));
            o.write_to_path(&p).unwrap();
            p
        })
        .collect();
    (base_path, overlays)
}

/// (blocks, bytes) allocated by opening the base and its overlays, and reading one record
/// through each overlay (reads allocate nothing).
fn heap_of_loading(base: &Path, overlays: &[PathBuf]) -> (u64, u64) {
    let before = dhat::HeapStats::get();
    let base = Arc::new(Snapshot::open(base).unwrap());
    let opened: Vec<Snapshot> = overlays
        .iter()
        .map(|p| Snapshot::open_overlay(p, base.clone()).unwrap())
        .collect();
    for o in &opened {
        assert!(
            o.get("r:0")
                .unwrap()
                .get("title")
                .unwrap()
                .as_str()
                .is_some()
        );
    }
    let after = dhat::HeapStats::get();
    drop(opened);
    (
        after.total_blocks - before.total_blocks,
        after.total_bytes - before.total_bytes,
    )
}

#[test]
fn loading_overlays_costs_heap_independent_of_their_size() {
    let dir = tempfile::tempdir().unwrap();
    let (small_base, small) = write_tree(dir.path(), 10);
    let (large_base, large) = write_tree(dir.path(), 50_000);
    let size = |p: &PathBuf| std::fs::metadata(p).unwrap().len();
    assert!(size(&large[0]) > 1000 * size(&small[0]) / 10);

    let _profiler = dhat::Profiler::builder().testing().build();
    let s = heap_of_loading(&small_base, &small);
    let l = heap_of_loading(&large_base, &large);
    eprintln!("heap of a base + {LOCALES} overlays: small {s:?}, large {l:?} (blocks, bytes)");
    eprintln!("kept: {:?}", cached(&large_base, &large));
    let fixed = common::heap_without_cached(l, &cached(&large_base, &large));
    dhat::assert_eq!(
        common::heap_without_cached(s, &cached(&small_base, &small)),
        fixed
    );
    dhat::assert!(
        // Each file's `Snapshot` (its layout: section ranges, the cold dictionary's cache,
        // the cached symbol tables' and shapes' slices) and the map's box, plus the `Vec`
        // the overlays are collected in: about 790 bytes per file, and 8 bytes per symbol
        // table, 20 per shape.
        fixed.1 < 1024 * (LOCALES as u64 + 1),
        "loading allocated {} bytes ({} without the symbol tables and shapes)",
        l.1,
        fixed.1
    );
}

/// What open keeps of a base and of each of its overlays besides their layouts.
fn cached(base: &Path, overlays: &[PathBuf]) -> Vec<common::Cached> {
    let b = Arc::new(Snapshot::open(base).unwrap());
    let mut t = vec![common::cached(&b)];
    for p in overlays {
        let o = Snapshot::open_overlay(p, b.clone()).unwrap();
        t.push(common::cached(&o));
    }
    t
}
