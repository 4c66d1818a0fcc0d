//! Small API promises: thread safety, key ownership, Debug output, Index.

use fms::{Snapshot, SnapshotBuilder, TupleMap, Value};

fn snap(v: serde_json::Value) -> Snapshot {
    let mut b = SnapshotBuilder::new();
    b.insert("x", &v).unwrap();
    Snapshot::from_bytes(b.to_bytes().unwrap()).unwrap()
}

#[test]
fn snapshot_is_send_and_sync_and_shareable() {
    fn assert_send_sync<T: Send + Sync + 'static>() {}
    assert_send_sync::<Snapshot>();
    assert_send_sync::<TupleMap>();
    assert_send_sync::<fms::Store>();
    assert_send_sync::<fms::Manifest>();
    assert_send_sync::<fms::SnapshotBuilder>();
    let s = std::sync::Arc::new(snap(serde_json::json!({"title": "t"})));
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let s = s.clone();
            std::thread::spawn(move || {
                s.get("x")
                    .unwrap()
                    .get("title")
                    .unwrap()
                    .as_str()
                    .map(str::len)
            })
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap(), Some(1));
    }
}

#[test]
fn a_key_from_another_snapshot_finds_nothing() {
    let a = snap(serde_json::json!({"title": "a", "other": 1}));
    let b = snap(serde_json::json!({"other": 2, "title": "b"}));
    let ka = a.key("title").unwrap();
    assert_eq!(a.get("x").unwrap().get_key(ka).unwrap().as_str(), Some("a"));
    assert!(b.get("x").unwrap().get_key(ka).is_none());
    assert!(a.key("missing").is_none());
}

#[test]
fn debug_is_structural_and_display_is_json() {
    // Parsed into a TupleMap, JSON keeps its field order (serde_json's own Map sorts).
    let m: TupleMap =
        serde_json::from_str(r#"{"title": "Intro", "n": [1, 2.5, null], "b": true}"#).unwrap();
    let mut b = SnapshotBuilder::new();
    b.insert("x", &m).unwrap();
    let s = Snapshot::from_bytes(b.to_bytes().unwrap()).unwrap();
    let rec = s.get("x").unwrap();
    // Debug: like the owned TupleMap's (a dict); Display: compact JSON, `{:#}` pretty.
    assert_eq!(
        format!("{rec:?}"),
        r#"{"title": "Intro", "n": [1, 2.5, null], "b": true}"#
    );
    assert_eq!(format!("{rec:?}"), format!("{m:?}"));
    assert_eq!(
        format!("{rec}"),
        r#"{"title":"Intro","n":[1,2.5,null],"b":true}"#
    );
    assert_eq!(format!("{rec}"), serde_json::to_string(&rec).unwrap());
    assert_eq!(
        format!("{rec:#}"),
        serde_json::to_string_pretty(&rec).unwrap()
    );
    let n = rec.get("n").unwrap();
    assert_eq!(
        (format!("{n:?}"), format!("{n}")),
        ("[1, 2.5, null]".to_owned(), "[1,2.5,null]".to_owned())
    );
    let title = rec.get("title").unwrap();
    assert_eq!(
        (format!("{title:?}"), format!("{title}")),
        (r#""Intro""#.to_owned(), r#""Intro""#.to_owned())
    );
    let m = TupleMap::from_pairs([
        ("title", "Intro".into()),
        ("n", Value::List(vec![1.into(), Value::Null])),
    ]);
    assert_eq!(format!("{m:?}"), r#"{"title": "Intro", "n": [1, null]}"#);
    let shown = format!("{}", s.hash());
    assert_eq!(shown.parse::<fms::ContentHash>().unwrap(), s.hash());
}

#[test]
fn empty_snapshot_and_empty_records() {
    let b = SnapshotBuilder::new();
    let s = Snapshot::from_bytes(b.to_bytes().unwrap()).unwrap();
    s.verify().unwrap();
    assert!(s.is_empty());
    assert_eq!(s.iter().count(), 0);
    assert!(s.get("x").is_none());
    let s = snap(serde_json::json!({}));
    s.verify().unwrap();
    let r = s.get("x").unwrap();
    assert!(r.is_empty());
    assert_eq!(serde_json::to_string(&r).unwrap(), "{}");
}

#[test]
fn from_static_bytes() {
    let mut b = SnapshotBuilder::new();
    b.insert("x", &serde_json::json!({"a": "b"})).unwrap();
    let bytes: &'static [u8] = Box::leak(b.to_bytes().unwrap().into_boxed_slice());
    let s = Snapshot::from_bytes(bytes).unwrap();
    assert_eq!(s.get("x").unwrap().get("a").unwrap().as_str(), Some("b"));
}
