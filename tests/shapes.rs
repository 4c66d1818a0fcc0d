//! Shapes found at open: a file's first 256 shapes are located once, when it is opened
//! (up to the first that does not parse); the others are parsed as records use them. Both
//! read the same records, and a broken shape costs only the records of that shape.

mod common;

use std::sync::Arc;

use fms::{Snapshot, SnapshotBuilder};
use serde_json::{Value, json};

/// More shapes than open locates.
const SHAPES: usize = 1_100;

/// Record `i`: a shape of its own (the key `k{i}`), and a title.
fn record(i: usize) -> Value {
    json!({ format!("k{i}"): i, "title": format!("Title {i}") })
}

fn tree() -> Vec<u8> {
    let mut b = SnapshotBuilder::new();
    for i in 0..SHAPES {
        b.insert(&format!("r:{i}"), &record(i)).unwrap();
    }
    b.to_bytes().unwrap()
}

/// The ids whose records do not read back as `expect(i)` says.
fn wrong(snap: &Snapshot, expect: impl Fn(usize) -> Value) -> Vec<usize> {
    (0..SHAPES)
        .filter(|&i| {
            let got = snap
                .get(&format!("r:{i}"))
                .and_then(|r| serde_json::to_value(r).ok());
            got != Some(expect(i))
        })
        .collect()
}

#[test]
fn records_of_more_shapes_than_open_finds_read_back() {
    let bytes = tree();
    let snap = Arc::new(Snapshot::from_bytes(bytes).unwrap());
    snap.verify().unwrap();
    assert_eq!(snap.stats().shapes, SHAPES);
    assert!(wrong(&snap, record).is_empty());
    let title = snap.key("title").unwrap();
    // Record i has shape i: the first, the last found at open (255), the first parsed as
    // used (256), the last.
    for i in [0, 255, 256, SHAPES - 1] {
        let rec = snap.get(&format!("r:{i}")).unwrap();
        assert_eq!(rec.get(&format!("k{i}")).unwrap().as_i64(), Some(i as i64));
        let t = rec.get_key(title).unwrap().to_str().unwrap().into_owned();
        assert_eq!(t, format!("Title {i}"));
    }

    // An overlay's own shapes are numbered after its base's: records of new shapes and
    // records of the base's shapes, read through it.
    let mut o = SnapshotBuilder::with_base(&snap);
    let changed =
        |i: usize| json!({ format!("k{i}"): i, "title": format!("Título {i}"), "es": true });
    for i in (0..SHAPES).step_by(50) {
        o.insert(&format!("r:{i}"), &changed(i)).unwrap();
    }
    let over = Snapshot::overlay_from_bytes(o.to_bytes().unwrap(), snap.clone()).unwrap();
    over.verify().unwrap();
    let expect = |i: usize| if i % 50 == 0 { changed(i) } else { record(i) };
    assert!(wrong(&over, expect).is_empty());
}

/// `bytes` with the offset of shape `s` in the SHAPES section set past its end.
fn break_shape(bytes: &[u8], s: usize) -> Vec<u8> {
    let snap = Snapshot::from_bytes(bytes.to_vec()).unwrap();
    let sec = snap
        .sections()
        .into_iter()
        .find(|x| x.name == "shapes")
        .unwrap();
    let mut out = bytes.to_vec();
    let at = sec.offset as usize + 4 + 4 * s;
    out[at..at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
    out
}

#[test]
fn a_broken_shape_costs_only_its_records() {
    let bytes = tree();
    // Shape 5 is inside what open would locate (the first 256): open stops there, and the
    // shapes after it are parsed as they are used. Shape 1,050 is past it.
    for s in [5, 1_050] {
        let snap = Snapshot::from_bytes(break_shape(&bytes, s)).unwrap();
        assert!(snap.verify().is_err(), "shape {s}");
        let bad = wrong(&snap, record);
        assert_eq!(bad.len(), 1, "shape {s}: {bad:?}");
        assert!(snap.get(&format!("r:{}", bad[0])).is_none());
    }
}

/// Bytes that change after open (an `AsRef` that answers differently later) read wrong
/// but never panic. (Through the public API a cut inside SHAPES also cuts the id index
/// after it; the unit test `shapes_found_at_open_are_sliced_from_the_bytes_as_they_are_now`
/// reads each shape of such bytes directly.)
#[test]
fn shapes_moved_after_open_never_panic() {
    let good = tree();
    let snap = Snapshot::from_bytes(good.clone()).unwrap();
    let sec = common::section(&snap, "shapes");
    let other = {
        let mut b = SnapshotBuilder::new();
        for i in 0..SHAPES {
            b.insert(&format!("z:{i}"), &json!({ format!("q{i}"): [i] }))
                .unwrap();
        }
        b.to_bytes().unwrap()
    };
    let mut laters: Vec<Vec<u8>> = vec![
        Vec::new(),
        good[..sec.start].to_vec(),
        good[..sec.start + 40].to_vec(),
        good[..(sec.start + sec.end) / 2].to_vec(),
        good[..sec.end - 1].to_vec(),
        good[..good.len() - 1].to_vec(),
        vec![0xFF; good.len()],
        vec![0; good.len()],
        other.clone(),
        other[..other.len().min(good.len())].to_vec(),
    ];
    // The SHAPES section shifted by a few bytes, both ways.
    for shift in [1, 7] {
        let mut v = good.clone();
        v.copy_within(sec.start..sec.end, sec.start + shift);
        laters.push(v);
        let mut v = good.clone();
        v.copy_within(sec.start + shift..sec.end, sec.start);
        laters.push(v);
    }
    for later in laters {
        let len = later.len();
        let snap = Snapshot::from_bytes(common::Flip::new(good.clone(), later)).unwrap();
        let read = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _ = snap.stats();
            let _ = common::read_everything(&snap);
            let _ = wrong(&snap, record);
            let _ = snap.verify();
        }));
        assert!(read.is_ok(), "panicked with later bytes of length {len}");
    }
}
