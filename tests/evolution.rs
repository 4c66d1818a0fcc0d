//! Evolution by name: a snapshot written from one struct is read into structs with added,
//! removed and reordered fields.

use fms::{Snapshot, SnapshotBuilder};
use serde::{Deserialize, Serialize};

#[derive(Serialize)]
struct V1 {
    title: String,
    duration: u32,
    legacy_flag: bool,
    keywords: Vec<String>,
}

/// Added `views` (with a default), removed `legacy_flag`, reordered the rest.
#[derive(Deserialize, Debug, PartialEq)]
struct V2<'a> {
    keywords: Vec<&'a str>,
    #[serde(default)]
    views: u64,
    #[serde(default = "default_rating")]
    rating: f64,
    title: &'a str,
    duration: u32,
}

fn default_rating() -> f64 {
    2.5
}

/// A field V1 never wrote, without a default: a clear error, not a misread.
#[derive(Deserialize, Debug)]
#[allow(dead_code)]
struct Strict {
    title: String,
    required_new_field: String,
}

/// Fewer fields than were written.
#[derive(Deserialize, Debug, PartialEq)]
struct JustTitle {
    title: String,
}

fn snapshot() -> Snapshot {
    let mut b = SnapshotBuilder::new();
    for i in 0..3u32 {
        let v = V1 {
            title: format!("Video {i}"),
            duration: 60 + i,
            legacy_flag: i % 2 == 0,
            keywords: vec!["math".into(), format!("k{i}")],
        };
        b.insert(&format!("video:{i}"), &v).unwrap();
    }
    Snapshot::from_bytes(b.to_bytes().unwrap()).unwrap()
}

#[test]
fn added_removed_and_reordered_fields() {
    let snap = snapshot();
    let v: V2 = snap.get("video:1").unwrap().deserialize().unwrap();
    assert_eq!(
        v,
        V2 {
            keywords: vec!["math", "k1"],
            views: 0,
            rating: 2.5,
            title: "Video 1",
            duration: 61,
        }
    );
    let j: JustTitle = snap.get("video:2").unwrap().deserialize().unwrap();
    assert_eq!(j.title, "Video 2");
}

#[test]
fn missing_required_field_is_an_error_naming_it() {
    let snap = snapshot();
    let err = snap
        .get("video:0")
        .unwrap()
        .deserialize::<Strict>()
        .unwrap_err();
    // serde's "missing field" error, which names the field.
    assert!(
        matches!(&err, fms::Error::Value(m) if m.contains("required_new_field")),
        "{err}"
    );
}

#[test]
fn field_order_does_not_matter_for_dict_access() {
    // The same keys in another order are another shape, but read the same by name.
    let mut b = SnapshotBuilder::new();
    b.insert("a", &serde_json::json!({"x": 1, "y": "two"}))
        .unwrap();
    b.insert(
        "b",
        &fms::TupleMap::from_pairs([("y", "two".into()), ("x", 1.into())]),
    )
    .unwrap();
    let snap = Snapshot::from_bytes(b.to_bytes().unwrap()).unwrap();
    let (a, bb) = (snap.get("a").unwrap(), snap.get("b").unwrap());
    assert_eq!(a.keys().collect::<Vec<_>>(), ["x", "y"]);
    assert_eq!(bb.keys().collect::<Vec<_>>(), ["y", "x"]);
    for r in [a, bb] {
        assert_eq!(r.get("x").unwrap().as_i64(), Some(1));
        assert_eq!(r.get("y").unwrap().to_str().as_deref(), Some("two"));
        assert!(r.get("z").is_none());
    }
    assert_eq!(a.to_owned().unwrap(), bb.to_owned().unwrap());
}

#[test]
fn unknown_format_version_is_a_clear_error() {
    let mut bytes = snapshot_bytes();
    bytes[fms::format::OFF_VERSION] = 9;
    match Snapshot::from_bytes(bytes) {
        Err(fms::Error::Version {
            found: 9,
            supported,
        }) => assert_eq!(supported, fms::format::VERSION),
        other => panic!("expected a version error, got {other:?}"),
    }
}

fn snapshot_bytes() -> Vec<u8> {
    snapshot().as_bytes().to_vec()
}
