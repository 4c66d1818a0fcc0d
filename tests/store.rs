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

/// An overlay over `base` that moves every record to version `v` (a patch per record).
fn overlay_version(base: &Arc<Snapshot>, v: i64) -> Snapshot {
    let mut b = SnapshotBuilder::with_base(base);
    for i in 0..RECORDS {
        b.insert(
            &format!("r:{i}"),
            &serde_json::json!({"version": v, "title": format!("t{i}")}),
        )
        .unwrap();
    }
    Snapshot::overlay_from_bytes(b.to_bytes().unwrap(), base.clone()).unwrap()
}

#[test]
fn overlays_load_over_their_base_in_any_order() {
    let dir = tempfile::tempdir().unwrap();
    let base = Arc::new(version(1));
    let es = overlay_version(&base, 2);
    let (bp, ep) = (dir.path().join("en.fms"), dir.path().join("es.fms"));
    std::fs::write(&bp, base.as_bytes()).unwrap();
    std::fs::write(&ep, es.as_bytes()).unwrap();

    let store = Store::new("en");
    let err = store.load(&ep).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("es.fms") && msg.contains(&base.hash().to_string()),
        "{msg}"
    );
    assert!(
        store.loaded_hashes().is_empty(),
        "a failed load registers nothing"
    );

    // Overlay first, base second: one call resolves the order.
    let got = store.load_all([&ep, &bp]).unwrap();
    assert_eq!(got[0].hash(), es.hash());
    assert_eq!(got[0].base_hash(), Some(got[1].hash()));
    assert!(Arc::ptr_eq(got[0].base().unwrap(), &got[1]), "base shared");
    // Loading again maps nothing new.
    let again = store.load(&ep).unwrap();
    assert!(Arc::ptr_eq(&again, &got[0]));

    store.publish("es", got[0].hash()).unwrap();
    // The base serves no locale, but the served overlay needs it: it stays.
    assert_eq!(store.evict_unpublished(), 0);
    assert_eq!(store.loaded_hashes().len(), 2);
    let tree = store.current("es").unwrap();
    assert_eq!(
        tree.get("r:3").unwrap().get("version").unwrap().as_i64(),
        Some(2)
    );
    store.unpublish("es");
    assert_eq!(store.evict_unpublished(), 2);
    // The pinned tree still reads (it holds its base).
    assert_eq!(
        tree.get("r:3").unwrap().get("title").unwrap().as_str(),
        Some("t3")
    );
}

#[test]
fn a_manifest_starts_a_store_and_reload_swaps_atomically() {
    let dir = tempfile::tempdir().unwrap();
    let base = Arc::new(version(1));
    let es1 = overlay_version(&base, 2);
    let es2 = overlay_version(&base, 3);
    for (name, s) in [("en.fms", &*base), ("es1.fms", &es1), ("es2.fms", &es2)] {
        std::fs::write(dir.path().join(name), s.as_bytes()).unwrap();
    }
    let mpath = dir.path().join("manifest.json");
    fms::Manifest::new("en")
        .locale("en", "en.fms")
        .locale("es", "es1.fms")
        .locale("pt", "en.fms")
        .write(&mpath)
        .unwrap();
    let store = Store::open_manifest(&mpath).unwrap();
    assert_eq!(store.default_locale(), "en");
    let served = store.published();
    assert_eq!(served["es"], es1.hash());
    assert_eq!(served["pt"], base.hash());
    assert_eq!(store.loaded_hashes().len(), 2, "en.fms is mapped once");
    let pinned = store.current("es").unwrap();

    // A new manifest: es moves to a new version, pt is dropped.
    fms::Manifest::new("en")
        .locale("en", "en.fms")
        .locale("es", "es2.fms")
        .write(&mpath)
        .unwrap();
    let now = store.reload(&mpath).unwrap();
    assert_eq!(now.len(), 2);
    assert_eq!(store.current("es").unwrap().hash(), es2.hash());
    assert_eq!(
        store.current("pt").unwrap().hash(),
        base.hash(),
        "falls back to en"
    );
    assert_eq!(store.evict_unpublished(), 1);
    assert_eq!(
        pinned.get("r:0").unwrap().get("version").unwrap().as_i64(),
        Some(2)
    );

    // Broken manifests and missing files: an error naming the file, and nothing changes.
    let before = store.published();
    std::fs::write(
        &mpath,
        "{\"default_locale\": \"en\", \"locales\": {\"es\": 3}}",
    )
    .unwrap();
    let err = store.reload(&mpath).unwrap_err().to_string();
    assert!(err.contains("manifest.json"), "{err}");
    fms::Manifest::new("en")
        .locale("en", "en.fms")
        .locale("es", "gone.fms")
        .write(&mpath)
        .unwrap();
    let err = store.reload(&mpath).unwrap_err().to_string();
    assert!(err.contains("gone.fms"), "{err}");
    fms::Manifest::new("de")
        .locale("de", "en.fms")
        .write(&mpath)
        .unwrap();
    assert!(store.reload(&mpath).is_err(), "another default locale");
    assert_eq!(store.published(), before);
    // The manifest write left no temporary files behind.
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(
        names.iter().all(|n| !n.starts_with(".fms-tmp")),
        "{names:?}"
    );
}

#[test]
fn readers_see_one_consistent_overlay_version_while_overlays_are_published() {
    let store = Arc::new(Store::new("en"));
    let base = store.add(version(0));
    store.publish("en", base.hash()).unwrap();
    store.publish("es", base.hash()).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicUsize::new(0));
    let readers: Vec<_> = (0..4)
        .map(|_| {
            let (store, stop, reads) = (store.clone(), stop.clone(), reads.clone());
            std::thread::spawn(move || {
                let mut inconsistent = 0;
                while !stop.load(Ordering::Relaxed) {
                    let tree = store.current("es").unwrap();
                    let versions: Vec<_> = tree
                        .iter()
                        .map(|(_, r)| r.get("version").and_then(|v| v.as_i64()))
                        .collect();
                    if versions.len() != RECORDS || versions.iter().any(|v| *v != versions[0]) {
                        inconsistent += 1;
                    }
                    reads.fetch_add(1, Ordering::Relaxed);
                }
                inconsistent
            })
        })
        .collect();
    for v in 1..=200 {
        let s = store.add(overlay_version(&base, v));
        store.publish("es", s.hash()).unwrap();
        if v % 25 == 0 {
            store.evict_unpublished();
        }
    }
    while reads.load(Ordering::Relaxed) < 1000 {
        std::thread::yield_now();
    }
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        assert_eq!(r.join().unwrap(), 0);
    }
    store.evict_unpublished();
    // The served overlay and its base.
    assert_eq!(store.loaded_hashes().len(), 2);
}

#[test]
fn reload_and_eviction_racing_never_serve_an_unregistered_version() {
    let dir = tempfile::tempdir().unwrap();
    let base = Arc::new(version(1));
    std::fs::write(dir.path().join("en.fms"), base.as_bytes()).unwrap();
    for v in [2, 3] {
        let o = overlay_version(&base, v);
        std::fs::write(dir.path().join(format!("es{v}.fms")), o.as_bytes()).unwrap();
        fms::Manifest::new("en")
            .locale("en", "en.fms")
            .locale("es", format!("es{v}.fms"))
            .write(dir.path().join(format!("m{v}.json")))
            .unwrap();
    }
    let store = Arc::new(Store::open_manifest(dir.path().join("m2.json")).unwrap());
    let stop = Arc::new(AtomicBool::new(false));
    let evictor = {
        let (store, stop) = (store.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                store.evict_unpublished();
            }
        })
    };
    let mut missing = 0;
    for i in 0..2000 {
        let served = store
            .reload(dir.path().join(format!("m{}.json", 2 + i % 2)))
            .unwrap();
        if served.values().any(|h| store.get(*h).is_none()) {
            missing += 1;
        }
    }
    stop.store(true, Ordering::Relaxed);
    evictor.join().unwrap();
    assert_eq!(
        missing, 0,
        "reloads that served a version the store did not list"
    );
}

#[test]
fn reload_never_opens_a_file_outside_the_manifests_directory() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("trees");
    std::fs::create_dir(&dir).unwrap();
    std::fs::create_dir(dir.join("v2")).unwrap();
    let en = version(1);
    std::fs::write(dir.join("en.fms"), en.as_bytes()).unwrap();
    std::fs::write(dir.join("v2").join("en.fms"), en.as_bytes()).unwrap();
    // A real snapshot outside: a traversal must be refused, not merely fail to parse.
    std::fs::write(root.path().join("secret.fms"), version(2).as_bytes()).unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink(root.path().join("secret.fms"), dir.join("link.fms")).unwrap();
    let mpath = dir.join("manifest.json");
    let write = |entry: &std::path::Path| {
        fms::Manifest::new("en")
            .locale("en", "en.fms")
            .locale("es", entry)
            .write(&mpath)
            .unwrap()
    };
    write("v2/en.fms".as_ref());
    let store = Store::open_manifest(&mpath).unwrap();
    let before = store.published();
    let abs = root.path().join("secret.fms");
    let mut hostile: Vec<&std::path::Path> = vec![
        "../secret.fms".as_ref(),
        "v2/../../secret.fms".as_ref(),
        "./../secret.fms".as_ref(),
        "".as_ref(),
        &abs,
    ];
    if cfg!(unix) {
        hostile.push("link.fms".as_ref());
    }
    for entry in hostile {
        write(entry);
        let err = store.reload(&mpath).unwrap_err().to_string();
        assert!(
            err.contains("outside the manifest's directory"),
            "{entry:?}: {err}"
        );
        assert_eq!(store.published(), before, "{entry:?}");
        assert!(Store::open_manifest(&mpath).is_err(), "{entry:?}");
    }
    // Relative paths below the directory, with `.`, still work.
    write("./v2/en.fms".as_ref());
    store.reload(&mpath).unwrap();
}
