//! Heap (dhat): 100,000 lookups and field reads allocate nothing — also for compressed
//! (FSST) and derived strings: comparing, measuring, decoding into a reused buffer and
//! formatting.
//! One dhat profiler per process: this file holds exactly one test.

use std::fmt::Write as _;

mod common;

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

#[test]
fn reads_allocate_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.fms");
    // `common::write_numbered`'s records, with a page name and a URL that repeats it
    // (derived).
    let mut b = fms::SnapshotBuilder::new();
    for i in 0..100_000u32 {
        let page = format!(
            "p{:08x}-{:08x}",
            i.wrapping_mul(2_654_435_761),
            i ^ 0x5bd1_e995
        );
        b.insert(
            &format!("r:{i}"),
            &serde_json::json!({"title": format!("Record {i}"), "n": i, "kind": "video",
                "tags": ["a", format!("t{}", i % 10)],
                "page": page, "url": format!("https://www.example.org/p/{page}/{page}.html")}),
        )
        .unwrap();
    }
    b.write_to_path(&path).unwrap();
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
    let url = snap
        .get("r:1")
        .unwrap()
        .get("url")
        .unwrap()
        .as_str()
        .unwrap();
    assert!(url.is_derived(), "the URLs are derived strings");
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
        // A derived string: the same.
        let u = rec.get("url").and_then(|v| v.as_str()).unwrap();
        checksum += u.len() + usize::from(u == "https://www.example.org/") + usize::from(u == *id);
        buf.clear();
        u.write_into(&mut buf).unwrap();
        checksum += buf.len();
        buf.clear();
        write!(buf, "{u}").unwrap();
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
