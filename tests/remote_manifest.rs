//! Record manifests without ids (a perfect hash function, overlay bitsets) against real
//! memcached servers: unknown ids are `None` and never another record, also when
//! memcached lost everything; an item of another id is never served; changed, added and
//! removed ids read exactly as the trees over a 3-level chain; damaged manifest bytes
//! with valid checksums are a clear error.
#![cfg(feature = "remote")]

mod support;

use std::path::Path;
use std::sync::Arc;

use fms::remote::manifest::{self, Entry, ManifestView};
use fms::remote::push::{self, PushOptions};
use fms::remote::{RemoteConfig, RemoteStore};
use fms::{Manifest, Snapshot, SnapshotBuilder};
use serde_json::json;

fn json(r: &fms::remote::RemoteRecord) -> String {
    serde_json::to_string(&r.record()).unwrap()
}

/// Every id of the locale's tree reads back exactly; `absent` ids are `None`.
fn check(store: &RemoteStore, dir: &Path, locale: &str, absent: &[String]) {
    let tree = support::local_tree(dir, locale);
    let ids: Vec<&str> = tree.ids().collect();
    for chunk in ids.chunks(50) {
        let got = store.get_many(locale, chunk).unwrap();
        for (id, r) in chunk.iter().zip(got) {
            let r = r.unwrap_or_else(|| panic!("{locale} {id} missing"));
            assert_eq!(r.id(), *id);
            assert_eq!(
                json(&r),
                serde_json::to_string(&tree.get(id).unwrap()).unwrap(),
                "{locale} {id}"
            );
        }
    }
    let absent: Vec<&str> = absent
        .iter()
        .map(String::as_str)
        .filter(|id| !tree.contains(id))
        .collect();
    for chunk in absent.chunks(50) {
        for (id, r) in chunk.iter().zip(store.get_many(locale, chunk).unwrap()) {
            assert!(r.is_none(), "{locale} {id}: served {}", r.unwrap().id());
        }
    }
}

/// An origin where en changes per version: `changed` ids get a new title, `added` ids
/// exist from this version on, `removed` ids are gone; es is an overlay changing every
/// third title.
fn write_versioned(dir: &Path, version: u32, ids: &[String], changed: &[&str]) {
    let rec = |id: &str| {
        let title = if changed.contains(&id) {
            format!("{id} v{version}")
        } else {
            format!("{id} v1")
        };
        json!({"title": title, "n": id.len(), "tags": ["a", id]})
    };
    let mut b = SnapshotBuilder::new();
    for id in ids {
        b.insert(id, &rec(id)).unwrap();
    }
    let en_file = format!("en-v{version}.fms");
    b.write_to_path(dir.join(&en_file)).unwrap();
    let en = Arc::new(Snapshot::open(dir.join(&en_file)).unwrap());
    let mut o = SnapshotBuilder::with_base(&en);
    for (i, id) in ids.iter().enumerate() {
        let mut r = rec(id);
        if i % 3 == 0 {
            r["title"] = json!(format!("es {id}"));
        }
        o.insert(id, &r).unwrap();
    }
    o.insert("es:only", &json!({"title": "solo"})).unwrap();
    let es_file = format!("es-v{version}.fms");
    o.write_to_path(dir.join(&es_file)).unwrap();
    Manifest::new("en")
        .locale("en", &en_file)
        .locale("es", &es_file)
        .write(dir.join("manifest.json"))
        .unwrap();
}

fn unknown_ids(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("nope:{i}")).collect()
}

#[test]
fn unknown_ids_are_none_and_never_another_record() {
    let Some(support::Tier {
        mcs: _mcs,
        addrs,
        dir,
        cluster,
    }) = support::pushed_tier(2, 300, &PushOptions::default())
    else {
        return;
    };
    // 2000 unknown ids: each maps to some slot of the 300-id function, so every known
    // item is some unknown id's candidate many times over.
    let unknown = unknown_ids(2000);
    let store = RemoteStore::new(cluster.clone(), dir.path(), RemoteConfig::default()).unwrap();
    for l in ["en", "es", "pt"] {
        check(&store, dir.path(), l, &unknown);
    }
    assert_eq!(store.stats().corrupt, 0, "another id's item is not corrupt");
    // Mixed in one request with the ids whose slots they share.
    let pinned = store.pin("en").unwrap();
    let v = pinned.version();
    let mut mixed = Vec::new();
    for u in unknown.iter().take(200) {
        let Some(Entry::Mapped(h)) = v.entry(u) else {
            continue;
        };
        if let Some(known) = (0..300)
            .map(|i| format!("video:{i}"))
            .find(|k| v.entry(k).map(Entry::hash) == Some(h))
        {
            mixed.push((u.clone(), known));
        }
    }
    assert!(mixed.len() > 100, "{}", mixed.len());
    for (u, k) in &mixed {
        let got = store.get_many_in(&pinned, &[u, k, u]).unwrap();
        assert!(got[0].is_none() && got[2].is_none(), "{u} served");
        assert_eq!(got[1].as_ref().unwrap().id(), k);
    }

    // memcached lost everything: unknown ids go to the origin, which has no such id.
    support::flush_all(&addrs);
    let cold = RemoteStore::new(cluster.clone(), dir.path(), RemoteConfig::default()).unwrap();
    for chunk in unknown.chunks(50) {
        for (id, r) in chunk.iter().zip(
            cold.get_many("en", &chunk.iter().map(String::as_str).collect::<Vec<_>>())
                .unwrap(),
        ) {
            assert!(r.is_none(), "{id}");
        }
    }
    let s = cold.stats();
    assert!(s.origin_fetches > 0, "{s:?}");
    assert_eq!(s.corrupt, 0);
    // The leases those misses took were released: the known ids still read (from the
    // origin, written back), and in time.
    let t = std::time::Instant::now();
    for l in ["en", "es", "pt"] {
        check(&cold, dir.path(), l, &unknown);
    }
    assert!(t.elapsed() < std::time::Duration::from_secs(20));
    let warm = RemoteStore::new(cluster.clone(), dir.path(), RemoteConfig::default()).unwrap();
    check(&warm, dir.path(), "en", &[]);
    assert_eq!(
        warm.stats().origin_fetches,
        0,
        "written back: {:?}",
        warm.stats()
    );
}

#[test]
fn an_item_of_another_id_under_a_key_is_never_served() {
    let Some(support::Tier {
        mcs: _mcs,
        addrs,
        dir,
        cluster,
    }) = support::pushed_tier(1, 60, &PushOptions::default())
    else {
        return;
    };
    let store = RemoteStore::new(cluster.clone(), dir.path(), RemoteConfig::default()).unwrap();
    let pinned = store.pin("es").unwrap();
    let v = pinned.version();
    // video:1 is mapped (by the function); es:only is exact (added by the overlay).
    let (x, y) = ("video:1", "video:2");
    assert!(matches!(v.entry(x), Some(Entry::Mapped(_))));
    assert!(matches!(v.entry("es:only"), Some(Entry::Exact(_))));
    let item_of = |id: &str| {
        let key = v.entry(id).unwrap().hash().key();
        let r = support::raw(&addrs[0], format!("get {key}\r\n").as_bytes(), b"END\r\n");
        let text = r.as_slice();
        let start = text.windows(2).position(|w| w == b"\r\n").unwrap() + 2;
        (key, text[start..text.len() - b"\r\nEND\r\n".len()].to_vec())
    };
    let (_, y_item) = item_of(y);
    for target in [x, "es:only"] {
        let (key, _) = item_of(target);
        let mut set = format!("set {key} 0 0 {}\r\n", y_item.len()).into_bytes();
        set.extend_from_slice(&y_item);
        set.extend_from_slice(b"\r\n");
        support::raw(&addrs[0], &set, b"STORED\r\n");
        store.clear_cache();
        let tree = support::local_tree(dir.path(), "es");
        let r = store.get("es", target).unwrap().unwrap();
        assert_eq!(r.id(), target);
        assert_eq!(
            json(&r),
            serde_json::to_string(&tree.get(target).unwrap()).unwrap()
        );
    }
    let s = store.stats();
    assert_eq!(s.corrupt, 2, "{s:?}");
    assert_eq!(s.origin_fetches, 2, "{s:?}");
}

#[test]
fn changed_added_and_removed_ids_over_a_three_level_chain() {
    let Some(mcs) = support::memcacheds(2) else {
        return;
    };
    let addrs: Vec<String> = mcs.iter().map(|m| m.addr()).collect();
    let dir = tempfile::tempdir().unwrap();
    let cluster = support::cluster(&addrs, &[]);
    let base: Vec<String> = (0..500).map(|i| format!("doc:{i}")).collect();
    let mut all_ever: Vec<String> = unknown_ids(300);
    all_ever.extend(base.iter().cloned());
    // v1: doc:0..500. v2: 10 changed, doc:0..5 removed, new:0..20 added. v3: doc:0 and
    // doc:1 back (doc:1 changed), new:0..5 removed, new:6 changed, 10 more changed, doc:7
    // changed again, new:100 added. v4: everything as v3 but doc:2..4 back.
    let v2: Vec<String> = base[5..]
        .iter()
        .cloned()
        .chain((0..20).map(|i| format!("new:{i}")))
        .collect();
    let mut v3: Vec<String> = ["doc:0", "doc:1"].map(String::from).to_vec();
    v3.extend(
        v2.iter()
            .filter(|id| !matches!(id.as_str(), "new:0" | "new:1" | "new:2" | "new:3" | "new:4"))
            .cloned(),
    );
    v3.push("new:100".into());
    let mut v4 = v3.clone();
    v4.extend(["doc:2", "doc:3"].map(String::from));
    all_ever.extend(v3.iter().chain(&v4).cloned());
    let changed2: Vec<String> = (0..10).map(|i| format!("doc:{}", 7 + i * 40)).collect();
    let mut changed3: Vec<String> = (0..10).map(|i| format!("doc:{}", 9 + i * 40)).collect();
    changed3.extend(["doc:1", "new:6", "doc:7"].map(String::from));
    let versions: [(&Vec<String>, Vec<&str>); 4] = [
        (&base, vec![]),
        (&v2, changed2.iter().map(String::as_str).collect()),
        (&v3, changed3.iter().map(String::as_str).collect()),
        (&v4, changed3.iter().map(String::as_str).collect()),
    ];
    let mut depths = Vec::new();
    for (n, (ids, changed)) in versions.iter().enumerate() {
        write_versioned(dir.path(), n as u32 + 1, ids, changed);
        let rep = push::push(dir.path(), &cluster, &PushOptions::default()).unwrap();
        let store = RemoteStore::new(cluster.clone(), dir.path(), RemoteConfig::default()).unwrap();
        for l in ["en", "es"] {
            check(&store, dir.path(), l, &all_ever);
        }
        let pinned = store.pin("en").unwrap();
        depths.push(pinned.version().manifest().top().depth());
        // The overlays are small: a bitset and the changed hashes.
        if n > 0 {
            assert!(rep.locales[0].overlay);
            assert!(rep.locales[0].manifest_bytes < 2_000, "{rep:?}");
        }
        assert_eq!(store.stats().corrupt, 0);
        // The same after memcached lost every item (the origin decides). Not flush_all:
        // the next push builds on the pointer it finds there.
        for l in ["en", "es"] {
            let pinned = store.pin(l).unwrap();
            for id in support::local_tree(dir.path(), l).ids() {
                let key = pinned.version().entry(id).unwrap().hash().key();
                for a in &addrs {
                    support::raw(a, format!("md {key}\r\n").as_bytes(), b"\r\n");
                }
            }
        }
        let cold = RemoteStore::new(cluster.clone(), dir.path(), RemoteConfig::default()).unwrap();
        for l in ["en", "es"] {
            check(&cold, dir.path(), l, &all_ever);
        }
    }
    assert_eq!(depths, [0, 1, 2, 3], "en's manifest stacks");
}

#[test]
fn damaged_manifest_bytes_with_valid_checksums_are_a_clear_error() {
    let ids: Vec<String> = (0..1000).map(|i| format!("id:{i}")).collect();
    let entries: Vec<(&str, fms::remote::item::ItemHash)> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| (id.as_str(), fms::remote::item::ItemHash(i as u64 + 1)))
        .collect();
    let mut b = SnapshotBuilder::new();
    b.insert(
        &manifest::level_id(0),
        &manifest::root_record(&entries).unwrap(),
    )
    .unwrap();
    let root_bytes = b.to_bytes().unwrap();
    let root = Arc::new(Snapshot::from_bytes(root_bytes.clone()).unwrap());
    let view = ManifestView::open(root.clone(), "root").unwrap();
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(view.lookup(id).unwrap().hash().0, i as u64 + 1);
    }
    let mut changed = std::collections::BTreeMap::new();
    changed.insert(view.slot("id:3").unwrap(), fms::remote::item::ItemHash(77));
    let mut o = SnapshotBuilder::with_base(&root);
    o.insert(
        &manifest::level_id(1),
        &manifest::level_record(view.params().m, &changed),
    )
    .unwrap();
    let top_bytes = o.to_bytes().unwrap();
    let top = Arc::new(Snapshot::overlay_from_bytes(top_bytes.clone(), root.clone()).unwrap());
    let view = ManifestView::open(top, "top").unwrap();
    assert_eq!(view.lookup("id:3").unwrap().hash().0, 77);
    assert_eq!(view.lookup("id:4").unwrap().hash().0, 5);

    // Every single-byte change of either file, checksums fixed: opening is an error or
    // the lookups answer without panicking (a damaged slot hash is caught by the item's
    // id and hash on read).
    let mut errors = 0;
    for (which, bytes) in [("root", &root_bytes), ("top", &top_bytes)] {
        for at in 0..bytes.len() {
            let mut d = bytes.clone();
            d[at] ^= 0x5a;
            let Some(d) = fms::check::fix_checksums(&d) else {
                continue;
            };
            let opened = if which == "root" {
                Snapshot::from_bytes(d).map(Arc::new)
            } else {
                Snapshot::overlay_from_bytes(d, root.clone()).map(Arc::new)
            };
            let Ok(snap) = opened else { continue };
            match ManifestView::open(snap, which) {
                Err(e) => {
                    let msg = e.to_string();
                    assert!(msg.contains(which) && msg.contains("manifest"), "{msg}");
                    errors += 1;
                }
                Ok(v) => {
                    for id in ids.iter().take(50) {
                        let _ = v.lookup(id);
                    }
                }
            }
        }
    }
    assert!(errors > 100, "{errors}");
}
