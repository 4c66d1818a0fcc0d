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
                    .map(|s| s.len())
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
    assert_eq!(
        a.get("x").unwrap().get_key(ka).unwrap().to_str().as_deref(),
        Some("a")
    );
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
    assert_eq!(
        s.get("x").unwrap().get("a").unwrap().to_str().as_deref(),
        Some("b")
    );
}

/// A key cached across a reload belongs to the old version: `get_key` finds nothing,
/// `try_get_key` says why, `owns_key` tells before use; resolving again works.
#[test]
fn a_key_from_another_version_is_detectable() {
    let dir = tempfile::tempdir().unwrap();
    let write = |title: &str, file: &str| {
        let mut b = SnapshotBuilder::new();
        b.insert("v", &serde_json::json!({"kind": "video", "title": title}))
            .unwrap();
        b.write_to_path(dir.path().join(file)).unwrap();
        fms::Manifest::new("en")
            .locale("en", file)
            .write(dir.path().join("manifest.json"))
            .unwrap();
    };
    write("Intro", "v1.fms");
    let store = fms::Store::open_manifest(dir.path().join("manifest.json")).unwrap();
    let v1 = store.current("en").unwrap();
    let title = v1.key("title").unwrap();
    assert!(v1.owns_key(title));
    write("Introduction", "v2.fms");
    store.reload(dir.path().join("manifest.json")).unwrap();
    let v2 = store.current("en").unwrap();
    assert_ne!(v1.hash(), v2.hash());
    let rec = v2.get("v").unwrap();
    assert!(!v2.owns_key(title));
    assert!(rec.get_key(title).is_none());
    assert!(matches!(
        rec.try_get_key(title),
        Err(fms::Error::ForeignKey { .. })
    ));
    let title = v2.key("title").unwrap();
    assert!(v2.owns_key(title));
    assert_eq!(
        rec.try_get_key(title)
            .unwrap()
            .and_then(|v| v.to_str())
            .as_deref(),
        Some("Introduction")
    );
    // A key of the snapshot that the record lacks: Ok(None), not an error.
    let mut b = SnapshotBuilder::new();
    b.insert("a", &serde_json::json!({"x": 1})).unwrap();
    b.insert("b", &serde_json::json!({"y": 1})).unwrap();
    let s = Snapshot::from_bytes(b.to_bytes().unwrap()).unwrap();
    let y = s.key("y").unwrap();
    assert!(matches!(s.get("a").unwrap().try_get_key(y), Ok(None)));
}

/// Iterators are nameable, exact-size on a verified snapshot, and `&Snapshot`,
/// `&Record` and `&List` iterate with `for`.
#[test]
fn iterators_are_exact_and_nameable() {
    let mut b = SnapshotBuilder::new();
    for i in 0..5 {
        b.insert(
            &format!("r:{i}"),
            &serde_json::json!({"a": i, "b": [1, 2, 3], "c": "x"}),
        )
        .unwrap();
    }
    let s = Snapshot::from_bytes(b.to_bytes().unwrap()).unwrap();
    s.verify().unwrap();
    let mut it: fms::Iter<'_> = s.iter();
    assert_eq!(it.len(), 5);
    it.next();
    assert_eq!(it.len(), 4);
    let ids: fms::Ids<'_> = s.ids();
    assert_eq!(ids.len(), 5);
    let mut n = 0;
    for (id, rec) in &s {
        assert_eq!(rec.get("a").unwrap().as_i64(), id[2..].parse::<i64>().ok());
        let keys: fms::Keys<'_> = rec.keys();
        let values: fms::Values<'_> = rec.values();
        let fields: fms::RecordIter<'_> = rec.iter();
        assert_eq!((keys.len(), values.len(), fields.len()), (3, 3, 3));
        assert_eq!((&rec).into_iter().count(), 3);
        let list = rec.get("b").unwrap().as_list().unwrap();
        let elems: fms::ListIter<'_> = list.iter();
        assert_eq!(elems.len(), 3);
        assert_eq!(
            (&list).into_iter().filter_map(|v| v.as_i64()).sum::<i64>(),
            6
        );
        n += 1;
    }
    assert_eq!(n, 5);
    // An overlay's iteration is exact too.
    let base = std::sync::Arc::new(s);
    let mut o = SnapshotBuilder::with_base(&base);
    o.remove("r:0").unwrap();
    o.insert("r:9", &serde_json::json!({"a": 9})).unwrap();
    let over = Snapshot::overlay_from_bytes(o.to_bytes().unwrap(), base).unwrap();
    assert_eq!((over.iter().len(), over.iter().count()), (5, 5));
}

/// Errors keep their cause: a JSONL line's, a file's, a base's.
#[test]
fn errors_keep_their_cause() {
    use fms::Error;
    let mut b = SnapshotBuilder::new();
    let input = "{\"id\": \"a\"}\n{\"id\": \"a\"}\n";
    let err = b
        .extend_jsonl(input.as_bytes(), "dup.jsonl", "id")
        .unwrap_err();
    match &err {
        Error::Jsonl {
            input,
            line,
            source,
        } => {
            assert_eq!((input.as_str(), *line), ("dup.jsonl", 2));
            assert!(matches!(**source, Error::DuplicateId { ref id } if id == "a"));
        }
        e => panic!("{e:?}"),
    }
    assert!(matches!(err.root(), Error::DuplicateId { .. }));
    assert!(std::error::Error::source(&err).is_some());
    let err = SnapshotBuilder::new()
        .extend_jsonl("{\"id\": 1, oops}".as_bytes(), "bad.jsonl", "id")
        .unwrap_err();
    assert!(matches!(err.root(), Error::Json(_)), "{err}");
    let err = SnapshotBuilder::new()
        .extend_jsonl("[1]".as_bytes(), "list.jsonl", "id")
        .unwrap_err();
    assert!(matches!(err.root(), Error::InvalidInput(_)), "{err}");

    // A manifest that is not JSON: its own variant, with serde_json's error as source.
    let dir = tempfile::tempdir().unwrap();
    let m = dir.path().join("manifest.json");
    std::fs::write(&m, "{\"default_locale\": ").unwrap();
    let err = fms::Store::open_manifest(&m).unwrap_err();
    assert!(
        matches!(&err, Error::Manifest { path, source: Some(_), .. } if *path == m),
        "{err}"
    );
    // A store publishing a hash it never loaded.
    let err = fms::Store::new("en")
        .publish("en", fms::ContentHash([7; 16]))
        .unwrap_err();
    assert!(matches!(err, Error::NotLoaded { hash } if hash == fms::ContentHash([7; 16])));

    // A damaged base found while verifying an overlay names the base.
    let mut b = SnapshotBuilder::new();
    b.insert("a", &serde_json::json!({"t": "some text to damage"}))
        .unwrap();
    let good = b.to_bytes().unwrap();
    let base = std::sync::Arc::new(Snapshot::from_bytes(good.clone()).unwrap());
    let mut o = SnapshotBuilder::with_base(&base);
    o.insert("b", &serde_json::json!({"t": "x"})).unwrap();
    let overlay = o.to_bytes().unwrap();
    let pool = &base.sections()[0];
    let mut bad = good;
    bad[pool.offset as usize + 3] ^= 1;
    let bad_base = std::sync::Arc::new(Snapshot::from_bytes(bad).unwrap());
    let over = Snapshot::overlay_from_bytes(overlay, bad_base.clone()).unwrap();
    match over.verify().unwrap_err() {
        Error::Base { hash, source } => {
            assert_eq!(hash, bad_base.hash());
            assert!(matches!(
                *source,
                Error::Checksum {
                    section: "pool",
                    ..
                }
            ));
        }
        e => panic!("{e:?}"),
    }
}

/// `stats()` describes the file from the same parsers the reader uses.
#[test]
fn stats_describe_sections_counts_and_overlays() {
    let mut b = SnapshotBuilder::new();
    for i in 0..10 {
        b.insert(
            &format!("r:{i}"),
            &serde_json::json!({"title": format!("title {i}"), "n": i}),
        )
        .unwrap();
    }
    let info = b.to_bytes_with_info().unwrap().1;
    let base = std::sync::Arc::new(Snapshot::from_bytes(b.to_bytes().unwrap()).unwrap());
    let st = base.stats();
    assert_eq!((st.records, st.keys, st.shapes), (10, 2, 1));
    assert_eq!(st.bytes, base.as_bytes().len() as u64);
    assert_eq!(st.pool_entries, info.strings);
    // The sections tile the file after the header.
    let mut at = st.header_bytes;
    for s in &st.sections {
        assert_eq!(s.offset, at);
        at += s.len;
    }
    assert_eq!(at, st.bytes);
    let built: Vec<(&str, u64)> = info.sections[1..].to_vec();
    let read: Vec<(&str, u64)> = st.sections.iter().map(|s| (s.name, s.len)).collect();
    assert_eq!(built, read);

    let mut o = SnapshotBuilder::with_base(&base);
    o.insert("r:0", &serde_json::json!({"title": "changed", "n": 0}))
        .unwrap(); // one field: a patch
    o.insert("r:1", &serde_json::json!({"other": 1})).unwrap(); // a new shape: replaced
    o.remove("r:2").unwrap();
    o.insert("r:10", &serde_json::json!({"title": "new", "n": 10}))
        .unwrap();
    let (bytes, info) = o.to_bytes_with_info().unwrap();
    let over = Snapshot::overlay_from_bytes(bytes, base.clone()).unwrap();
    let st = over.stats();
    let o = st.overlay.clone().unwrap();
    assert_eq!(Some(&o), info.overlay.as_ref());
    assert_eq!(
        (o.added, o.replaced, o.patched, o.removed, o.unchanged),
        (1, 1, 1, 1, 7)
    );
    assert_eq!((o.base, o.depth), (base.hash(), 1));
    assert_eq!(st.records, 10);
    // The id index holds only the added id; the three changes are in CHANGES.
    assert_eq!(st.id_entries, 1);
    assert_eq!(
        st.sections.iter().map(|s| s.name).collect::<Vec<_>>(),
        [
            "pool", "data", "shapes", "keys", "ids", "overlay", "changes", "symbols", "cold"
        ]
    );
}
