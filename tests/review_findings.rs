//! Regression tests for problems found in review: integer map keys, bytes into `Vec<u8>`,
//! O(n) wide maps, file permissions, aliased shapes, exact walk-cost boundary, and a pinned
//! content hash.

mod common;

use std::collections::BTreeMap;

use fms::{Snapshot, SnapshotBuilder, TupleMap, Value};

fn one(v: &impl serde::Serialize) -> Snapshot {
    let mut b = SnapshotBuilder::new();
    b.insert("x", v).unwrap();
    Snapshot::from_bytes(b.to_bytes().unwrap()).unwrap()
}

#[test]
fn integer_map_keys_round_trip() {
    #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
    struct S {
        by_id: BTreeMap<u32, String>,
        signed: BTreeMap<i64, bool>,
    }
    let s = S {
        by_id: [(1, "a".into()), (300, "b".into())].into(),
        signed: [(-5, true)].into(),
    };
    let snap = one(&s);
    let back: S = snap.get("x").unwrap().deserialize().unwrap();
    assert_eq!(back, s);
    let m = fms::to_map(&s).unwrap();
    assert_eq!(fms::from_map::<S>(&m).unwrap(), s);
}

#[test]
fn bytes_read_into_a_vec_of_u8() {
    let m = TupleMap::from_pairs([("b", Value::Bytes(vec![1, 2, 255]))]);
    #[derive(serde::Deserialize)]
    struct S {
        b: Vec<u8>,
    }
    let snap = one(&m);
    assert_eq!(
        snap.get("x").unwrap().deserialize::<S>().unwrap().b,
        vec![1, 2, 255]
    );
}

#[test]
fn too_short_tuple_error_reports_the_list_length() {
    let snap = one(&serde_json::json!({"t": [1, 2, 3]}));
    #[derive(serde::Deserialize, Debug)]
    #[allow(dead_code)]
    struct S {
        t: (i32, i32),
    }
    let err = snap.get("x").unwrap().deserialize::<S>().unwrap_err();
    assert!(err.to_string().contains("invalid length 3"), "{err}");
}

#[test]
fn wide_maps_build_and_copy_in_linear_time() {
    // 40,000 fields took about a second with a quadratic key dedup; now milliseconds.
    let m = TupleMap::from_pairs((0..40_000).map(|i| (format!("k{i}"), Value::Int(i))));
    assert_eq!(m.len(), 40_000);
    let dup =
        TupleMap::from_pairs((0..40_000).map(|i| (format!("k{}", i % 20_000), Value::Int(i))));
    assert_eq!(dup.len(), 20_000);
    assert_eq!(dup["k5"], Value::Int(20_005));
    let snap = one(&m);
    snap.verify().unwrap();
    let start = std::time::Instant::now();
    let owned = snap.get("x").unwrap().to_owned().unwrap();
    assert_eq!(owned, m);
    // Generous bound: quadratic behaviour would take ~100x longer, not a timing benchmark.
    assert!(start.elapsed() < std::time::Duration::from_secs(5));
}

#[cfg(unix)]
#[test]
fn written_snapshots_are_readable_by_other_users() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.fms");
    let mut b = SnapshotBuilder::new();
    b.insert("x", &serde_json::json!({"a": 1})).unwrap();
    b.write_to_path(&path).unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(
        mode & 0o044,
        0o044,
        "mode {mode:o}: group and others cannot read"
    );
}

/// Shape offsets that alias one body made verify redo the body's work once per alias;
/// shapes must now tile their section.
#[test]
fn aliased_shapes_are_rejected() {
    let mut b = SnapshotBuilder::new();
    b.insert("a", &serde_json::json!({"x": 1})).unwrap();
    b.insert("b", &serde_json::json!({"y": 1})).unwrap();
    let mut bytes = b.to_bytes().unwrap();
    let shapes = Snapshot::from_bytes(bytes.clone()).unwrap().sections()[2].offset as usize;
    // Point shape 1 at shape 0's body.
    let first = bytes[shapes + 4..shapes + 8].to_vec();
    bytes[shapes + 8..shapes + 12].copy_from_slice(&first);
    let snap = Snapshot::from_bytes(common::rechecksum(bytes)).unwrap();
    let err = snap.verify().unwrap_err();
    // Reported at shape 1's entry in the offset index.
    assert!(
        matches!(err, fms::Error::Format { kind: fms::FormatKind::BadEncoding, offset, .. }
            if offset == (shapes + 8) as u64),
        "{err}"
    );
}

#[test]
fn walk_cost_boundary_is_exact() {
    // One field "s" holding a list of two equal strings of length L: cost =
    // (1 + 1 key byte) + 2 * (1 + L) = 2^24 exactly when L = 2^23 - 2.
    let max = fms::limits::MAX_WALK;
    let record = |len: u64| {
        let s = "y".repeat(len as usize);
        TupleMap::from_pairs([("s", Value::List(vec![s.as_str().into(), s.as_str().into()]))])
    };
    let l = (max - 2) / 2 - 1;
    let mut b = SnapshotBuilder::new();
    b.insert("edge", &record(l)).unwrap();
    let snap = Snapshot::from_bytes(b.to_bytes().unwrap()).unwrap();
    snap.verify().unwrap();
    let rec = snap.get("edge").unwrap();
    assert!(serde_json::to_string(&rec).is_ok());
    assert_eq!(rec.to_owned().unwrap(), record(l));
    assert!(b.insert("over", &record(l + 1)).is_err());
}

/// The content hash of a fixed input is pinned, so a change to the layout or to hashing
/// (including per-process seeding of any hash that leaks into the output) is noticed.
#[test]
fn content_hash_of_a_fixed_input_is_pinned() {
    let bytes = common::build(&common::varied_records(50));
    let hash = Snapshot::from_bytes(bytes).unwrap().hash().to_string();
    assert_eq!(hash, PINNED);
}

const PINNED: &str = "d28f0ca15df890da172306e00555aed7";

/// Bytes that change after open (an `AsRef` that answers differently on later calls) may
/// read wrong but never panic: open checks the symbol lengths of the tables it finds, and
/// decoding trusts them, so a length changed afterwards must not push a decode past its
/// buffer (every length of one table set to 200, one at a time, read every way).
#[test]
fn symbol_lengths_changed_after_open_never_panic() {
    let recs: Vec<(String, serde_json::Value)> = (0..400)
        .map(|i| {
            let title = format!("Introduction to fractions, part {i} of the lesson on numerators");
            (format!("a:{i}"), serde_json::json!({ "title": title }))
        })
        .collect();
    let good = common::build_json(&recs, fms::Compression::Auto);
    let snap = Snapshot::from_bytes(good.clone()).unwrap();
    let tables = common::section(&snap, "symbols");
    assert!(!tables.is_empty(), "the titles are FSST-coded");
    let first = u32::from_le_bytes(good[tables.start + 4..tables.start + 8].try_into().unwrap());
    let lens = tables.start + first as usize;
    let n = usize::from(good[lens]);
    assert!(n > 0);
    for s in 0..n {
        let mut later = good.clone();
        later[lens + 1 + s] = 200;
        let snap = Snapshot::from_bytes(common::Flip::new(good.clone(), later)).unwrap();
        for (id, _) in &recs {
            let title = snap
                .get(id)
                .unwrap()
                .get("title")
                .unwrap()
                .as_str()
                .unwrap();
            let _ = (title.to_cow(), title.len(), title.to_string());
            let _ = title == "Introduction";
            let _ = title == "Introduction to fractions, part 1 of the lesson on numerators";
            let mut out = String::new();
            let _ = title.write_into(&mut out);
        }
        let _ = common::read_everything(&snap);
    }
}
