//! Heap (dhat): opening a 10-record and a 100,000-record snapshot costs the same heap,
//! and only a few hundred bytes of it. One dhat profiler per process: this file holds
//! exactly one test.

mod common;

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

fn heap_of_open(path: &std::path::Path) -> (u64, u64) {
    let before = dhat::HeapStats::get();
    let snap = fms::Snapshot::open(path).unwrap();
    let after = dhat::HeapStats::get();
    drop(snap);
    (
        after.total_blocks - before.total_blocks,
        after.total_bytes - before.total_bytes,
    )
}

#[test]
fn open_heap_is_independent_of_record_count() {
    let dir = tempfile::tempdir().unwrap();
    let (small, large) = (dir.path().join("small.fms"), dir.path().join("large.fms"));
    common::write_numbered(&small, 10);
    common::write_numbered(&large, 100_000);
    assert!(
        std::fs::metadata(&large).unwrap().len() > 100 * std::fs::metadata(&small).unwrap().len()
    );

    let _profiler = dhat::Profiler::builder().testing().build();
    let s = heap_of_open(&small);
    let l = heap_of_open(&large);
    eprintln!("open heap: small {s:?}, large {l:?} (blocks, bytes)");
    dhat::assert_eq!(s, l);
    dhat::assert!(l.1 < 1024, "open allocated {} bytes", l.1);
}
