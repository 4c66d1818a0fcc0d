//! `fms::Anchor`: owned tokens that find a record, nested map or list again, through
//! overlay chains, and never find anything in another snapshot.

use std::sync::Arc;

use fms::{Snapshot, SnapshotBuilder};
use serde_json::json;

fn base() -> Arc<Snapshot> {
    let mut b = SnapshotBuilder::new();
    for i in 0..50 {
        b.insert(
            &format!("video:{i}"),
            &json!({"title": format!("Video {i}"), "n": i, "meta": {"tags": ["a", i.to_string()]}}),
        )
        .unwrap();
    }
    Arc::new(Snapshot::from_bytes(b.to_bytes().unwrap()).unwrap())
}

#[test]
fn anchors_read_back_what_they_name() {
    let snap = base();
    for (id, rec) in snap.iter() {
        let a = snap.anchor(id).unwrap();
        let back = snap.record_at(a).unwrap();
        assert_eq!(back.to_owned().unwrap(), rec.to_owned().unwrap(), "{id}");
        // The map's own anchor (not patched) works too.
        let m = rec.anchor().unwrap();
        assert_eq!(
            snap.record_at(m).unwrap().to_owned().unwrap(),
            rec.to_owned().unwrap()
        );
        let meta = rec.get("meta").unwrap().as_map().unwrap();
        let tags = meta.get("tags").unwrap().as_list().unwrap();
        let (ma, la) = (meta.anchor().unwrap(), tags.anchor());
        assert_eq!(snap.record_at(ma).unwrap().len(), 1);
        assert_eq!(snap.list_at(la).unwrap().len(), 2);
        // Kinds do not cross.
        assert!(snap.list_at(a).is_none() && snap.list_at(ma).is_none());
        assert!(snap.record_at(la).is_none());
    }
    assert!(snap.anchor("video:absent").is_none());
}

#[test]
fn anchors_of_another_snapshot_find_nothing() {
    let a = base();
    let mut b = SnapshotBuilder::new();
    b.insert("video:0", &json!({"title": "other"})).unwrap();
    let other = Snapshot::from_bytes(b.to_bytes().unwrap()).unwrap();
    let at = a.anchor("video:0").unwrap();
    assert!(other.record_at(at).is_none());
    let theirs = other.anchor("video:0").unwrap();
    assert!(a.record_at(theirs).is_none());
}

#[test]
fn anchors_through_overlays() {
    let base = base();
    let mut o = SnapshotBuilder::with_base(&base);
    // Patched (one field changed), replaced, removed, added.
    o.upsert(
        "video:1",
        &json!({"title": "Vídeo 1", "n": 1, "meta": {"tags": ["a", "1"]}}),
    )
    .unwrap();
    o.upsert("video:2", &json!({"other": true})).unwrap();
    o.remove("video:3").unwrap();
    o.insert("video:new", &json!({"title": "New"})).unwrap();
    let es = Snapshot::overlay_from_bytes(o.to_bytes().unwrap(), base.clone()).unwrap();

    for (id, rec) in es.iter() {
        let a = es.anchor(id).unwrap();
        assert_eq!(
            es.record_at(a).unwrap().to_owned().unwrap(),
            rec.to_owned().unwrap(),
            "{id}"
        );
    }
    let patched = es.get("video:1").unwrap();
    assert_eq!(
        patched.get("title").unwrap().to_str().as_deref(),
        Some("Vídeo 1")
    );
    // A patched record's anchor names its patch node and reads back the same record.
    let a = patched.anchor().expect("a patched record has an anchor");
    assert_eq!(
        es.record_at(a).unwrap().to_owned().unwrap(),
        patched.to_owned().unwrap()
    );
    assert!(base.record_at(a).is_none(), "the patch is the overlay's");
    assert!(
        es.anchor("video:3").is_none(),
        "a removed record has no anchor"
    );
    assert!(base.record_at(es.anchor("video:new").unwrap()).is_none());

    // A base's anchor works through the overlay (like a Key), and names the base's node.
    let a = base.anchor("video:7").unwrap();
    assert_eq!(
        es.record_at(a).unwrap().to_owned().unwrap(),
        base.get("video:7").unwrap().to_owned().unwrap()
    );
}

#[test]
fn id_cursors_resume_walks_through_overlays() {
    let base = base();
    let mut o = SnapshotBuilder::with_base(&base);
    o.upsert("video:1", &json!({"title": "changed"})).unwrap();
    o.remove("video:3").unwrap();
    o.insert("video:new", &json!({"title": "New"})).unwrap();
    let es = Arc::new(Snapshot::overlay_from_bytes(o.to_bytes().unwrap(), base.clone()).unwrap());
    let mut o2 = SnapshotBuilder::with_base(&es);
    o2.insert("video:3", &json!({"title": "back"})).unwrap();
    o2.insert("video:newer", &json!({})).unwrap();
    let top = Snapshot::overlay_from_bytes(o2.to_bytes().unwrap(), es.clone()).unwrap();

    for snap in [&*base, &*es, &top] {
        let all: Vec<&str> = snap.ids().collect();
        // Resume one step at a time, as a binding's iterator does.
        let mut got = Vec::new();
        let mut at = snap.ids().cursor();
        loop {
            let mut ids = snap.ids_from(at).unwrap();
            assert_eq!(ids.len(), all.len() - got.len());
            let Some(id) = ids.next() else { break };
            got.push(id);
            at = ids.cursor();
        }
        assert_eq!(got, all);
    }
    assert!(base.ids_from(top.ids().cursor()).is_none());
}
