//! A crafted ~4 KB file whose one record reaches 16.6 million values through three levels
//! of shared 255-element lists (`fms::check::amplifying_snapshot`): every whole-value
//! read of it stops at the file's walk limit, and the heap it takes (dhat) stays a small,
//! fixed amount, not the ~0.5 GiB that building all those values would take.
//!
//! One dhat profiler per process: this file holds the one heap test of its binary.

use fms::Snapshot;

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

#[test]
fn crafted_amplification_is_bounded_by_the_file_size() {
    let _profiler = dhat::Profiler::builder().testing().build();
    let bytes = fms::check::amplifying_snapshot(255, 3);
    let file = bytes.len() as u64;
    assert!(file < 4500, "a small file: {file} bytes");
    let snap = Snapshot::from_bytes(bytes).unwrap();
    let limit = fms::limits::walk_limit(file);
    assert!(
        limit < fms::limits::MAX_WALK / 100,
        "a small file has a small walk limit"
    );
    // verify says why; it never builds values.
    let err = snap.verify().unwrap_err();
    assert!(
        matches!(
            err,
            fms::Error::Format {
                kind: fms::FormatKind::Limit,
                ..
            }
        ),
        "{err}"
    );
    let rec = snap.get("r").unwrap();
    let live = dhat::HeapStats::get().curr_bytes as u64;
    // to_owned first: dhat's max is a running maximum, so this peak is its own.
    let err = rec.to_owned().unwrap_err();
    assert!(
        matches!(err, fms::Error::Limit { limit: l, .. } if l == limit),
        "{err}"
    );
    let to_owned_peak = dhat::HeapStats::get().max_bytes as u64 - live;
    let err = rec.deserialize::<serde_json::Value>().unwrap_err();
    assert!(
        matches!(err, fms::Error::Limit { limit: l, .. } if l == limit),
        "{err}"
    );
    // serde_json's own error type carries our message only as text.
    let err = serde_json::to_string(&rec).unwrap_err();
    assert!(err.to_string().contains("walk cost"), "{err}");
    let text = format!("{rec:?}");
    assert!(
        text.ends_with("1, ..], ..], ..]}"),
        "{}",
        &text[text.len() - 40..]
    );
    assert!(
        text.len() as u64 <= 8 * limit,
        "Debug printed {} bytes",
        text.len()
    );
    let text = rec.to_string();
    assert!(
        text.ends_with(&format!("(limit {limit})>")),
        "{}",
        &text[text.len() - 80..]
    );
    assert!(
        text.len() as u64 <= 8 * limit,
        "Display printed {} bytes",
        text.len()
    );
    // Every read above stayed within 40 bytes per walk unit (an owned `Value` is 32; JSON
    // and Debug text a few bytes per element, plus a growing string's doubling).
    let peak = dhat::HeapStats::get().max_bytes as u64 - live;
    let bound = 40 * limit;
    assert!(peak <= bound, "peak heap {peak} bytes, bound {bound}");
    eprintln!(
        "file {file} bytes, walk limit {limit}: to_owned peak {to_owned_peak} bytes, \
         peak of all reads {peak} bytes ({:.0}x the file)",
        peak as f64 / file as f64
    );
}
