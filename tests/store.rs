//! Store: loading, publishing, fallback, eviction, and concurrent publish while readers
//! pin versions.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use fms::{Snapshot, SnapshotBuilder, Store};

const RECORDS: usize = 50;

/// A version: every record carries the version number, so a reader can tell whether all
/// records it read came from one version.
fn version(v: i64) -> Snapshot {
    let mut b = SnapshotBuilder::new();
    for i in 0..RECORDS {
        b.insert(
            &format!("r:{i}"),
            &serde_json::json!({"version": v, "title": format!("t{i}")}),
        )
        .unwrap();
    }
    Snapshot::from_bytes(b.to_bytes().unwrap()).unwrap()
}

#[test]
fn publish_fallback_and_eviction() {
    let store = Store::new("en");
    assert!(store.current("en").is_none());
    let v1 = store.add(version(1));
    let again = store.add(version(1));
    assert!(
        Arc::ptr_eq(&v1, &again),
        "the same content is registered once"
    );
    let v2 = store.add(version(2));
    assert_eq!(store.loaded_hashes().len(), 2);

    let err = store.publish("es", fms::ContentHash([7; 16])).unwrap_err();
    assert!(err.to_string().contains("no loaded snapshot"), "{err}");

    store.publish("en", v1.hash()).unwrap();
    assert_eq!(
        store.current("es").unwrap().hash(),
        v1.hash(),
        "es falls back to en"
    );
    store.publish("es", v2.hash()).unwrap();
    assert_eq!(store.current("es").unwrap().hash(), v2.hash());
    assert_eq!(store.published().len(), 2);

    // A reader pins v2, then es moves back to v1 and v2 is evicted: the reader keeps it.
    let pinned = store.current("es").unwrap();
    assert!(store.unpublish("es"));
    assert_eq!(store.evict_unpublished(), 1);
    assert!(store.get(v2.hash()).is_none());
    assert_eq!(
        pinned.get("r:0").unwrap().get("version").unwrap().as_i64(),
        Some(2)
    );
    assert_eq!(store.current("es").unwrap().hash(), v1.hash());
}

#[test]
fn load_from_files_maps_each_version_once() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.fms"), dir.path().join("b.fms"));
    std::fs::write(&a, version(1).as_bytes()).unwrap();
    std::fs::write(&b, version(1).as_bytes()).unwrap();
    let store = Store::new("en");
    let x = store.load(&a).unwrap();
    let y = store.load(&b).unwrap();
    assert!(Arc::ptr_eq(&x, &y));
    let err = store.load(dir.path().join("missing.fms")).unwrap_err();
    assert!(err.to_string().contains("missing.fms"), "{err}");
}

#[test]
fn readers_see_one_consistent_version_while_versions_are_published() {
    let store = Arc::new(Store::new("en"));
    let first = store.add(version(0));
    store.publish("en", first.hash()).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicUsize::new(0));
    let readers: Vec<_> = (0..4)
        .map(|t| {
            let (store, stop, reads) = (store.clone(), stop.clone(), reads.clone());
            std::thread::spawn(move || {
                let mut inconsistent = 0;
                let mut last_seen = 0;
                while !stop.load(Ordering::Relaxed) {
                    let tree = store.current(if t % 2 == 0 { "es" } else { "en" }).unwrap();
                    let v = tree
                        .get("r:0")
                        .unwrap()
                        .get("version")
                        .unwrap()
                        .as_i64()
                        .unwrap();
                    for i in 1..RECORDS {
                        let w = tree
                            .get(&format!("r:{i}"))
                            .unwrap()
                            .get("version")
                            .unwrap()
                            .as_i64();
                        if w != Some(v) {
                            inconsistent += 1;
                        }
                    }
                    // Versions only move forward for a reader.
                    assert!(v >= last_seen, "went back from {last_seen} to {v}");
                    last_seen = v;
                    reads.fetch_add(1, Ordering::Relaxed);
                }
                (inconsistent, last_seen)
            })
        })
        .collect();
    for v in 1..=300 {
        let s = store.add(version(v));
        store.publish("en", s.hash()).unwrap();
        if v % 50 == 0 {
            store.evict_unpublished();
        }
    }
    // Make sure the readers did real work before stopping them.
    while reads.load(Ordering::Relaxed) < 1000 {
        std::thread::yield_now();
    }
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        let (inconsistent, _) = r.join().unwrap();
        assert_eq!(inconsistent, 0);
    }
    // The sweep after the last publish left only the served version, which stays.
    assert_eq!(store.evict_unpublished(), 0);
    assert_eq!(store.loaded_hashes().len(), 1);
}
