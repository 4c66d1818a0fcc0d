//! Heap (dhat): opening a 10-record and a 100,000-record snapshot costs the same heap
//! (but for 8 bytes per symbol table and 20 per shape, each for at most 256), and only a
//! few hundred bytes of it; the first cold (zstd) read of a snapshot builds its decoder
//! dictionary, a bounded, one-time cost, and later cold reads into a caller's buffer
//! allocate nothing. One dhat profiler per process: this file holds exactly one
//! test.

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

    // Two snapshots with a cold section (long varied texts: a trained dictionary).
    let cold: Vec<_> = (0..2)
        .map(|k| {
            let path = dir.path().join(format!("cold{k}.fms"));
            let mut b = fms::SnapshotBuilder::new();
            for i in 0..2_000u64 {
                let body = prose(i * 2 + k, 100);
                b.insert(&format!("a:{i}"), &serde_json::json!({ "body": body }))
                    .unwrap();
            }
            b.write_to_path(&path).unwrap();
            fms::Snapshot::open(&path).unwrap()
        })
        .collect();
    let mut buf = String::with_capacity(1 << 16);

    let _profiler = dhat::Profiler::builder().testing().build();
    let s = heap_of_open(&small);
    let l = heap_of_open(&large);
    let cached = |p: &std::path::Path| common::cached(&fms::Snapshot::open(p).unwrap());
    let (cs, cl) = (cached(&small), cached(&large));
    eprintln!("open heap: small {s:?}, large {l:?} (blocks, bytes); kept {cs:?}, {cl:?}");
    // The same but for where each symbol table is (8 bytes a table, at most 256 of them)
    // and each shape (20 bytes): the larger file has more fields worth a table.
    assert!(
        cl.tables > cs.tables,
        "the files should differ in tables ({cs:?}, {cl:?})"
    );
    dhat::assert_eq!(
        common::heap_without_cached(s, &[cs]),
        common::heap_without_cached(l, &[cl])
    );
    dhat::assert!(l.1 < 1024, "open allocated {} bytes", l.1);
    // And for where each shape is (20 bytes a shape, one block): 40 records of a shape
    // each cost what 10 records of one shape do, but for 39 × 20 bytes.
    let shaped = dir.path().join("shaped.fms");
    let mut b = fms::SnapshotBuilder::new();
    for i in 0..40 {
        b.insert(
            &format!("s:{i}"),
            &serde_json::json!({ format!("k{i}"): i }),
        )
        .unwrap();
    }
    b.write_to_path(&shaped).unwrap();
    let sh = heap_of_open(&shaped);
    let csh = cached(&shaped);
    assert_eq!(csh.shapes, 40);
    dhat::assert_eq!(
        common::heap_without_cached(sh, &[csh]),
        common::heap_without_cached(s, &[cs]),
        "{sh:?} {csh:?} against {s:?} {cs:?}"
    );

    // Cold reads: the first one on this thread also makes the thread's zstd context (and
    // its scratch buffer); the first one of the second snapshot costs its dictionary only;
    // then nothing.
    let mut cold_read = |snap: &fms::Snapshot, id: &str| {
        let before = dhat::HeapStats::get();
        let body = snap.get(id).unwrap().get("body").unwrap().as_str().unwrap();
        assert!(body.is_cold());
        buf.clear();
        body.write_into(&mut buf).unwrap();
        let after = dhat::HeapStats::get();
        after.total_bytes - before.total_bytes
    };
    assert_eq!(
        cold[0].decoder_heap_bytes(),
        0,
        "nothing before the first cold read"
    );
    let first = cold_read(&cold[0], "a:7") + cold_read(&cold[1], "a:7");
    let again = cold_read(&cold[1], "a:1999") + cold_read(&cold[0], "a:3");
    // libzstd allocates with C's malloc, which dhat does not see: its own sizes.
    let (dict, ctx) = (
        cold[1].decoder_heap_bytes(),
        fms::Snapshot::cold_context_bytes(),
    );
    eprintln!(
        "cold reads: Rust heap {first} B for the first ones, {again} B after; zstd dictionary {dict} B per snapshot, context {ctx} B per thread"
    );
    // The first cold reads on a thread grow its scratch buffer (to the largest block
    // read, ~4 KiB); after that, cold reads into a caller's buffer allocate nothing.
    dhat::assert!(first <= 64 * 1024, "{first} B");
    dhat::assert_eq!(again, 0);
    dhat::assert!(dict > 0 && dict <= 256 * 1024, "{dict} B");
    dhat::assert!(ctx > 0 && ctx <= 256 * 1024, "{ctx} B");
}

/// Varied prose over a fixed vocabulary (see `common::prose`).
fn prose(seed: u64, n: usize) -> String {
    const WORDS: [&str; 16] = [
        "fraction",
        "numerator",
        "denominator",
        "part",
        "whole",
        "example",
        "equal",
        "share",
        "pizza",
        "half",
        "third",
        "quarter",
        "sum",
        "difference",
        "answer",
        "problem",
    ];
    common::prose(&WORDS, seed, n)
}
