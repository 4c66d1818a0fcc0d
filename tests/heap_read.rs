//! Heap (dhat): 100,000 lookups and field reads allocate nothing — also for compressed
//! (FSST) strings: comparing, measuring, decoding into a reused buffer and formatting.
//! One dhat profiler per process: this file holds exactly one test.

use std::fmt::Write as _;

mod common;

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

#[test]
fn reads_allocate_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.fms");
    common::write_numbered(&path, 100_000);
    let ids: Vec<String> = (0..100_000)
        .map(|i| format!("r:{}", (i * 7919) % 100_000))
        .collect();
    let snap = fms::Snapshot::open(&path).unwrap();
    let title = snap.key("title").unwrap();
    // The titles (~1.2 MB of text) are FSST-coded by the default compression.
    let first = snap
        .get("r:1")
        .unwrap()
        .get("title")
        .unwrap()
        .as_str()
        .unwrap();
    assert!(first.is_compressed() && first.as_plain().is_none());
    let mut buf = String::with_capacity(4096);

    let _profiler = dhat::Profiler::builder().testing().build();
    let before = dhat::HeapStats::get();
    let mut checksum = 0usize;
    for id in &ids {
        let rec = snap.get(id).unwrap();
        checksum += rec
            .get("title")
            .and_then(|v| v.as_str())
            .map_or(0, |s| s.len());
        checksum += rec
            .get_key(title)
            .and_then(|v| v.as_str())
            .map_or(0, |s| s.len());
        checksum += rec.get("n").and_then(|v| v.as_i64()).unwrap_or(0) as usize;
        // A compressed string: compared, decoded into the caller's buffer, formatted.
        let t = rec.get("title").and_then(|v| v.as_str()).unwrap();
        checksum += usize::from(t == "Record 7") + usize::from(t == *id);
        buf.clear();
        t.write_into(&mut buf).unwrap();
        checksum += buf.len();
        buf.clear();
        write!(buf, "{t}").unwrap();
        checksum += buf.len();
        let tags = rec.get("tags").and_then(|v| v.as_list()).unwrap();
        checksum += tags
            .iter()
            .filter_map(|t| t.as_str())
            .map(|s| s.len())
            .sum::<usize>();
        checksum += rec.iter().count() + rec.keys().map(|s| s.len()).sum::<usize>();
    }
    let after = dhat::HeapStats::get();
    assert!(checksum > 0);
    dhat::assert_eq!(after.total_blocks - before.total_blocks, 0);
    dhat::assert_eq!(after.total_bytes - before.total_bytes, 0);
}
