//! Determinism and atomic writes.

mod common;

use fms::{Snapshot, SnapshotBuilder};

#[test]
fn same_input_gives_byte_identical_files() {
    let recs = common::varied_records(300);
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.fms"), dir.path().join("b.fms"));
    let build = |path: &std::path::Path| {
        let mut builder = SnapshotBuilder::new();
        for (id, m) in &recs {
            builder.insert(id, m).unwrap();
        }
        (
            builder.write_to_path(path).unwrap(),
            builder.to_bytes().unwrap(),
        )
    };
    let (info_a, bytes_a) = build(&a);
    let (info_b, bytes_b) = build(&b);
    assert_eq!(info_a, info_b);
    assert_eq!(bytes_a, bytes_b);
    assert_eq!(std::fs::read(&a).unwrap(), bytes_a);
    assert_eq!(std::fs::read(&b).unwrap(), bytes_a);
    assert_eq!(Snapshot::open(&a).unwrap().hash(), info_a.hash);
    assert_eq!(info_a.bytes, bytes_a.len() as u64);
    assert_eq!(
        info_a.sections.iter().map(|(_, n)| n).sum::<u64>(),
        info_a.bytes
    );

    // A different input gives a different hash.
    let mut other = SnapshotBuilder::new();
    for (id, m) in recs.iter().rev() {
        other.insert(id, m).unwrap();
    }
    assert_ne!(other.to_bytes().unwrap(), bytes_a);
}

#[test]
fn repeated_values_cost_only_a_reference() {
    let mut b = SnapshotBuilder::new();
    let long = "a long description that repeats in every record, as licenses and urls do";
    for i in 0..1000 {
        b.insert(
            &format!("r:{i}"),
            &serde_json::json!({"license": long, "kind": "video", "n": i}),
        )
        .unwrap();
    }
    let (bytes, info) = b.to_bytes_with_info().unwrap();
    let pool = info.sections.iter().find(|(n, _)| *n == "pool").unwrap().1;
    // One copy of the long string, not a thousand.
    assert!(
        pool < (long.len() + 20 * 1000) as u64,
        "pool is {pool} bytes"
    );
    assert_eq!(
        bytes
            .windows(long.len())
            .filter(|w| *w == long.as_bytes())
            .count(),
        1
    );
    assert_eq!(info.shapes, 1);
    assert_eq!(info.keys, 3);
    // A record is a shape id plus three 5-byte slots.
    let data = info.sections.iter().find(|(n, _)| *n == "data").unwrap().1;
    assert!(
        data <= 1000 * 20,
        "data is {data} bytes for 1000 three-field records"
    );
}

#[test]
fn write_is_atomic_and_leaves_no_temp_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("en.fms");
    let mut b = SnapshotBuilder::new();
    b.insert("x", &serde_json::json!({"v": 1})).unwrap();
    b.write_to_path(&path).unwrap();
    let first = std::fs::read(&path).unwrap();
    // A reader that mapped the old file keeps seeing it after a new one is renamed in.
    let old = Snapshot::open(&path).unwrap();
    b.upsert("x", &serde_json::json!({"v": 2})).unwrap();
    b.write_to_path(&path).unwrap();
    assert_eq!(old.get("x").unwrap().get("v").unwrap().as_i64(), Some(1));
    assert_eq!(old.as_bytes(), &first[..]);
    let new = Snapshot::open(&path).unwrap();
    assert_eq!(new.get("x").unwrap().get("v").unwrap().as_i64(), Some(2));
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("en.fms")]);

    // Writing into a directory that does not exist fails and creates nothing.
    let err = b
        .write_to_path(dir.path().join("no/such/dir/x.fms"))
        .unwrap_err();
    assert!(
        matches!(&err, fms::Error::Io { path, .. } if path.ends_with("no/such/dir")),
        "{err}"
    );
    assert!(!dir.path().join("no").exists());
}
