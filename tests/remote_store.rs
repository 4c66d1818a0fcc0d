//! The read path against real memcached servers: every record reads back exactly as from
//! the local snapshot, updates switch atomically, a stampede hits the origin once per key,
//! corrupt items are never served, the pointer falls back to the durable copy.
#![cfg(feature = "remote")]

mod support;

use std::sync::Arc;
use std::time::Duration;

use fms::remote::push::{self, PushOptions};
use fms::remote::{RemoteConfig, RemoteStore};

fn json(r: &fms::remote::RemoteRecord) -> String {
    serde_json::to_string(&r.record()).unwrap()
}

fn check_all(store: &RemoteStore, dir: &std::path::Path, locale: &str) -> usize {
    let tree = support::local_tree(dir, locale);
    let ids: Vec<&str> = tree.ids().collect();
    for chunk in ids.chunks(50) {
        let got = store.get_many(locale, chunk).unwrap();
        for (id, r) in chunk.iter().zip(got) {
            let r = r.unwrap_or_else(|| panic!("{locale} {id} missing"));
            assert_eq!(
                json(&r),
                serde_json::to_string(&tree.get(id).unwrap()).unwrap(),
                "{locale} {id}"
            );
        }
    }
    assert!(store.get_many(locale, &["nope"]).unwrap()[0].is_none());
    ids.len()
}

#[test]
fn every_record_of_every_tree_reads_back_and_pushes_dedup() {
    let Some(mcs) = support::memcacheds(3) else {
        return;
    };
    let addrs: Vec<String> = mcs.iter().map(|m| m.addr()).collect();
    let dir = tempfile::tempdir().unwrap();
    support::write_origin(dir.path(), 1, 400);
    let cluster = support::cluster(&addrs, &[]);
    let rep = push::push(dir.path(), &cluster, &PushOptions::default()).unwrap();
    assert_eq!(rep.locales.len(), 3);
    assert_eq!(rep.records, 400 + 400 + 400);
    assert!(
        rep.unique_items < rep.records,
        "locales share unchanged records"
    );
    assert_eq!(rep.items_sent, rep.unique_items);
    assert_eq!(rep.pointers_flipped, 3);
    assert!(rep.locales[1].overlay && !rep.locales[0].overlay);

    let store = RemoteStore::new(cluster.clone(), dir.path(), RemoteConfig::default()).unwrap();
    let mut n = 0;
    for l in ["en", "es", "pt"] {
        n += check_all(&store, dir.path(), l);
    }
    let s = store.stats();
    assert_eq!(s.origin_fetches, 0, "everything came from memcached: {s:?}");
    assert_eq!(s.corrupt, 0);
    assert!(n >= 1200);
    // A locale without a tree of its own falls back to the default's.
    assert!(store.get("de", "video:1").unwrap().is_some());

    // Pushing again ships nothing.
    let again = push::push(dir.path(), &cluster, &PushOptions::default()).unwrap();
    assert_eq!(again.items_sent, 0);
    assert_eq!(again.bytes_sent, 0);
    assert_eq!(again.pointers_flipped, 0);

    // A content update ships only the changed records.
    support::write_origin(dir.path(), 2, 400);
    let upd = push::push(dir.path(), &cluster, &PushOptions::default()).unwrap();
    assert!(upd.items_sent > 0 && upd.items_sent <= 3 * 8, "{upd:?}");
    assert_eq!(upd.pointers_flipped, 3);
    // en's new manifest is an overlay over its previous one: only what changed.
    assert!(upd.locales[0].overlay);
    assert!(
        upd.locales[0].manifest_bytes * 4 < rep.locales[0].manifest_bytes,
        "{} vs {}",
        upd.locales[0].manifest_bytes,
        rep.locales[0].manifest_bytes
    );
    let fresh = RemoteStore::new(cluster.clone(), dir.path(), RemoteConfig::default()).unwrap();
    for l in ["en", "es", "pt"] {
        check_all(&fresh, dir.path(), l);
    }
    // Updates stack, then the chain is rewritten in full; every version reads back.
    for v in 3..9 {
        support::write_origin(dir.path(), v, 400);
        let r = push::push(dir.path(), &cluster, &PushOptions::default()).unwrap();
        assert!(r.locales.iter().all(|l| l.records == 400));
        let fresh = RemoteStore::new(cluster.clone(), dir.path(), RemoteConfig::default()).unwrap();
        check_all(&fresh, dir.path(), "pt");
    }
}

#[test]
fn an_update_switches_atomically_and_pinned_requests_keep_their_version() {
    let Some(support::Tier {
        mcs: _mcs,
        addrs,
        dir,
        cluster,
    }) = support::pushed_tier(2, 200, &PushOptions::default())
    else {
        return;
    };
    let cfg = RemoteConfig {
        fresh: Duration::from_millis(50),
        expire: Duration::from_millis(200),
        ..RemoteConfig::default()
    };
    let store = Arc::new(RemoteStore::new(cluster.clone(), dir.path(), cfg).unwrap());
    let old = store.pin("en").unwrap();
    let title = |p: &fms::remote::store::Pinned| {
        store.get_many_in(p, &["video:0"]).unwrap()[0]
            .as_ref()
            .unwrap()
            .record()
            .get("title")
            .unwrap()
            .to_str()
            .unwrap()
            .into_owned()
    };
    assert_eq!(title(&old), "Video 0");

    // Readers run while the update is published: each request pins once and must see
    // one version for all of its ids (records 0 and 50 change together).
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let readers: Vec<_> = (0..4)
        .map(|_| {
            let store = store.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut seen_new = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let p = store.pin("en").unwrap();
                    let r = store.get_many_in(&p, &["video:0", "video:50"]).unwrap();
                    let a = r[0]
                        .as_ref()
                        .unwrap()
                        .record()
                        .get("title")
                        .unwrap()
                        .to_str()
                        .unwrap()
                        .into_owned();
                    let b = r[1]
                        .as_ref()
                        .unwrap()
                        .record()
                        .get("title")
                        .unwrap()
                        .to_str()
                        .unwrap()
                        .into_owned();
                    assert_eq!(
                        a.contains("revised"),
                        b.contains("revised"),
                        "torn read: {a} / {b}"
                    );
                    seen_new += a.contains("revised") as u32;
                }
                seen_new
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(50));
    support::write_origin(dir.path(), 2, 200);
    push::push(dir.path(), &cluster, &PushOptions::default()).unwrap();
    std::thread::sleep(Duration::from_millis(400));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let seen: u32 = readers.into_iter().map(|h| h.join().unwrap()).sum();
    assert!(seen > 0, "readers switched to the new version");
    // The request pinned before the update still reads the old version.
    assert_eq!(title(&old), "Video 0");
    let new = store.pin("en").unwrap();
    assert_ne!(new.hash(), old.hash());
    assert_eq!(title(&new), "Video 0, revised v2");

    // memcached loses everything: the pointer falls back to the durable copy.
    support::flush_all(&addrs);
    std::thread::sleep(Duration::from_millis(250));
    let fresh = RemoteStore::new(cluster.clone(), dir.path(), RemoteConfig::default()).unwrap();
    assert_eq!(fresh.pin("en").unwrap().hash(), new.hash());
    assert_eq!(fresh.stats().pointer_fallbacks, 1);
    check_all(&fresh, dir.path(), "es");
}

#[test]
fn a_stampede_hits_the_origin_once_per_key() {
    let Some(support::Tier {
        mcs: _mcs,
        addrs,
        dir,
        cluster,
    }) = support::pushed_tier(2, 200, &PushOptions::default())
    else {
        return;
    };
    // Two "processes" (separate caches and flights) sharing memcached: in-process
    // single-flight inside each, leases between them.
    let cfg = RemoteConfig {
        lease_wait: Duration::from_millis(400),
        deadline: Duration::from_secs(2),
        ..RemoteConfig::default()
    };
    let a = Arc::new(RemoteStore::new(cluster.clone(), dir.path(), cfg.clone()).unwrap());
    let b = Arc::new(RemoteStore::new(cluster.clone(), dir.path(), cfg).unwrap());
    a.pin("en").unwrap();
    b.pin("en").unwrap();
    support::flush_all(&addrs);
    let ids: Vec<String> = (0..40).map(|i| format!("video:{i}")).collect();
    let barrier = Arc::new(std::sync::Barrier::new(32));
    let tree = support::local_tree(dir.path(), "en");
    std::thread::scope(|s| {
        for t in 0..32 {
            let store = if t % 2 == 0 { a.clone() } else { b.clone() };
            let (barrier, ids, tree) = (barrier.clone(), &ids, &tree);
            s.spawn(move || {
                let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
                barrier.wait();
                let got = store.get_many("en", &ids).unwrap();
                for (id, r) in ids.iter().zip(got) {
                    assert_eq!(
                        json(&r.unwrap()),
                        serde_json::to_string(&tree.get(id).unwrap()).unwrap()
                    );
                }
            });
        }
    });
    let origin = a.stats().origin_fetches + b.stats().origin_fetches;
    assert_eq!(origin, 40, "a: {:?}\nb: {:?}", a.stats(), b.stats());
}

#[test]
fn a_corrupt_item_is_rejected_and_refetched() {
    let Some(support::Tier {
        mcs: _mcs,
        addrs,
        dir,
        cluster,
    }) = support::pushed_tier(1, 50, &PushOptions::default())
    else {
        return;
    };
    let store = RemoteStore::new(cluster.clone(), dir.path(), RemoteConfig::default()).unwrap();
    let pinned = store.pin("en").unwrap();
    let tree = support::local_tree(dir.path(), "en");
    let expect = |id: &str| serde_json::to_string(&tree.get(id).unwrap()).unwrap();
    let ids = ["video:1", "video:2", "video:3"];
    let keys: Vec<String> = ids
        .iter()
        .map(|id| pinned.version().entry(id).unwrap().hash().key())
        .collect();
    // Garbage, another record's item, and a one-bit flip.
    let other = support::raw(
        &addrs[0],
        format!("mg {} v\r\n", keys[2]).as_bytes(),
        b"\r\n",
    );
    let _ = other;
    let good2 = {
        let r = support::raw(
            &addrs[0],
            format!("get {}\r\n", keys[1]).as_bytes(),
            b"END\r\n",
        );
        let start = r.windows(2).position(|w| w == b"\r\n").unwrap() + 2;
        r[start..r.len() - 7].to_vec()
    };
    let mut flipped = good2.clone();
    let n = flipped.len();
    flipped[n - 10] ^= 1;
    let set = |k: &str, v: &[u8]| {
        let mut req = format!("set {k} 0 0 {}\r\n", v.len()).into_bytes();
        req.extend_from_slice(v);
        req.extend_from_slice(b"\r\n");
        support::raw(&addrs[0], &req, b"\r\n");
    };
    set(&keys[0], b"not an item at all");
    set(&keys[1], &flipped);
    set(&keys[2], &good2); // a valid item, but of another record
    let got = store.get_many_in(&pinned, &ids).unwrap();
    for (id, r) in ids.iter().zip(got) {
        assert_eq!(json(&r.unwrap()), expect(id));
    }
    assert_eq!(store.stats().corrupt, 3);
    assert_eq!(store.stats().origin_fetches, 3);
    // Refetched items were written back: a cold reader now gets them from memcached.
    let cold = RemoteStore::new(cluster.clone(), dir.path(), RemoteConfig::default()).unwrap();
    let got = cold.get_many("en", &ids).unwrap();
    assert!(got.iter().all(Option::is_some));
    assert_eq!(cold.stats().corrupt, 0);
    assert_eq!(cold.stats().origin_fetches, 0);
}

#[test]
fn freshness_must_be_below_expiry() {
    let cluster = support::cluster(&["127.0.0.1:1".into()], &[]);
    let bad = RemoteConfig {
        fresh: Duration::from_secs(30),
        expire: Duration::from_secs(30),
        ..RemoteConfig::default()
    };
    assert!(RemoteStore::new(cluster.clone(), "/nonexistent", bad).is_err());
    let bad = RemoteConfig {
        expire: Duration::from_secs(86_400),
        ..RemoteConfig::default()
    };
    assert!(RemoteStore::new(cluster, "/nonexistent", bad).is_err());
}

#[test]
fn the_hot_set_and_stale_while_revalidate() {
    let Some(support::Tier {
        mcs,
        addrs: _,
        dir,
        cluster,
    }) = support::pushed_tier(1, 100, &PushOptions::default())
    else {
        return;
    };
    let cfg = RemoteConfig {
        fresh: Duration::from_millis(1500),
        expire: Duration::from_secs(5),
        cache_bytes: 1,
        hot_ids: vec!["video:0".into(), "video:1".into()],
        ..RemoteConfig::default()
    };
    let store = RemoteStore::new(cluster.clone(), dir.path(), cfg).unwrap();
    let v1 = store.pin("en").unwrap();
    let s0 = store.stats();
    let got = store
        .get_many("en", &["video:0", "video:1", "video:2"])
        .unwrap();
    assert!(got.iter().all(Option::is_some));
    let s1 = store.stats();
    assert_eq!(s1.hot_hits - s0.hot_hits, 2);
    assert_eq!(s1.memcached_hits - s0.memcached_hits, 1);

    // A new version: within `fresh` the pinned one is served without asking memcached...
    support::write_origin(dir.path(), 2, 100);
    push::push(dir.path(), &cluster, &PushOptions::default()).unwrap();
    let reads = store.stats().pointer_reads;
    assert_eq!(store.pin("en").unwrap().hash(), v1.hash());
    assert_eq!(store.stats().pointer_reads, reads);
    // ... after it, the next request revalidates and sees the new one, whose hot set is
    // read for it (video:0 changed in v2).
    std::thread::sleep(Duration::from_millis(1600));
    let v2 = store.pin("en").unwrap();
    assert_ne!(v2.hash(), v1.hash());
    let r = store.get_many_in(&v2, &["video:0"]).unwrap();
    assert_eq!(
        r[0].as_ref()
            .unwrap()
            .record()
            .get("title")
            .unwrap()
            .to_str()
            .as_deref(),
        Some("Video 0, revised v2")
    );
    // The hot set serves even with memcached gone.
    drop(mcs);
    let before = store.stats();
    let r = store.get_many_in(&v2, &["video:0", "video:1"]).unwrap();
    assert!(r.iter().all(Option::is_some));
    assert_eq!(store.stats().origin_fetches, before.origin_fetches);
}

#[test]
fn an_update_of_the_default_tree_leaves_unchanged_locales_alone() {
    let Some(mcs) = support::memcacheds(2) else {
        return;
    };
    let addrs: Vec<String> = mcs.iter().map(|m| m.addr()).collect();
    let dir = tempfile::tempdir().unwrap();
    support::write_origin(dir.path(), 1, 100);
    let cluster = support::cluster(&addrs, &[]);
    let first = push::push(dir.path(), &cluster, &PushOptions::default()).unwrap();
    // en changes one record; es and pt (overlays over en v1) do not change.
    let en = Arc::new(fms::Snapshot::open(dir.path().join("en-v1.fms")).unwrap());
    let mut b = fms::SnapshotBuilder::with_base(&en);
    b.upsert("video:7", &serde_json::json!({"title": "seven, updated"}))
        .unwrap();
    b.write_to_path(dir.path().join("en-v1b.fms")).unwrap();
    let mut m = fms::Manifest::read(dir.path().join("manifest.json")).unwrap();
    m.locales.insert("en".into(), "en-v1b.fms".into());
    m.bases.push("en-v1.fms".into());
    m.write(dir.path().join("manifest.json")).unwrap();
    let upd = push::push(dir.path(), &cluster, &PushOptions::default()).unwrap();
    assert_eq!(upd.pointers_flipped, 1, "{upd:?}");
    assert_eq!(upd.items_sent, 1);
    for (a, b) in first.locales.iter().zip(&upd.locales).skip(1) {
        assert_eq!(a.manifest, b.manifest, "{} kept its manifest", a.locale);
    }
    let store = RemoteStore::new(cluster.clone(), dir.path(), RemoteConfig::default()).unwrap();
    for l in ["en", "es", "pt"] {
        check_all(&store, dir.path(), l);
    }
    let r = store.get("en", "video:7").unwrap().unwrap();
    assert_eq!(
        r.record().get("title").unwrap().to_str().as_deref(),
        Some("seven, updated")
    );

    // memcached loses three of es's items: the next push finds them missing by hash
    // (from es's published manifest) and sends exactly those.
    let es = store.pin("es").unwrap();
    for id in ["video:3", "video:6", "es:only"] {
        let key = es.version().entry(id).unwrap().hash().key();
        for a in &addrs {
            support::raw(a, format!("md {key}\r\n").as_bytes(), b"\r\n");
        }
    }
    let again = push::push(dir.path(), &cluster, &PushOptions::default()).unwrap();
    assert_eq!(again.pointers_flipped, 0);
    assert_eq!(again.items_sent, 3, "{again:?}");
    let cold = RemoteStore::new(cluster.clone(), dir.path(), RemoteConfig::default()).unwrap();
    check_all(&cold, dir.path(), "es");
    assert_eq!(cold.stats().origin_fetches, 0);
}

/// The hot set chosen at push time (from access counts) is a mapped snapshot per version:
/// its ids are served in process, exactly as the tree holds them, without a memcached
/// round trip; an update's hot set follows the update; a hot set that does not match its
/// version is never served from.
#[test]
fn the_hot_set_chosen_at_push_is_served_from_the_map() {
    // An access log: video:1 and video:50 most often (video:50 changes in version 2), then
    // es:only (in es only), then ids that exist nowhere.
    let log = "video:1\nvideo:50\nnope\nvideo:1\nvideo:50\nes:only\nvideo:1\nvideo:50\nes:only\n";
    let hot_ids = fms::remote::choose_hot(log.as_bytes(), 3).unwrap();
    assert_eq!(hot_ids, ["video:1", "video:50", "es:only"]);
    let opts = PushOptions {
        hot_ids,
        ..PushOptions::default()
    };
    let Some(support::Tier {
        mcs: _mcs,
        dir,
        cluster,
        ..
    }) = support::pushed_tier(2, 300, &opts)
    else {
        return;
    };

    let check = |store: &RemoteStore, locale: &str, hot: &[&str]| {
        let tree = support::local_tree(dir.path(), locale);
        let before = store.stats();
        let got = store.get_many(locale, hot).unwrap();
        for (id, r) in hot.iter().zip(&got) {
            let r = r.as_ref().unwrap_or_else(|| panic!("{locale} {id}"));
            assert!(r.is_hot(), "{locale} {id} not from the hot set");
            assert_eq!(r.id(), *id);
            assert_eq!(
                json(r),
                serde_json::to_string(&tree.get(id).unwrap()).unwrap(),
                "{locale} {id}"
            );
        }
        let after = store.stats();
        assert_eq!(after.hot_hits - before.hot_hits, hot.len() as u64);
        assert_eq!(
            (
                after.memcached_hits,
                after.memcached_misses,
                after.origin_fetches
            ),
            (
                before.memcached_hits,
                before.memcached_misses,
                before.origin_fetches
            ),
            "no item fetched for hot ids"
        );
        // Everything else still reads back through memcached.
        check_all(store, dir.path(), locale);
    };
    let store = RemoteStore::new(cluster.clone(), dir.path(), RemoteConfig::default()).unwrap();
    check(&store, "en", &["video:1", "video:50"]);
    check(&store, "es", &["video:1", "video:50", "es:only"]);
    let v1 = store.pin("en").unwrap();
    let hot_file = v1
        .version()
        .info()
        .hot
        .clone()
        .expect("push wrote a hot set");

    // The update changes video:50: the new version's hot set holds the new text.
    support::write_origin(dir.path(), 2, 300);
    push::push(dir.path(), &cluster, &opts).unwrap();
    let fresh = RemoteStore::new(cluster.clone(), dir.path(), RemoteConfig::default()).unwrap();
    check(&fresh, "en", &["video:1", "video:50"]);
    let v2 = fresh.pin("en").unwrap();
    assert_ne!(v2.version().info().hot.as_ref(), Some(&hot_file));
    let r = fresh.get("en", "video:50").unwrap().unwrap();
    assert!(json(&r).contains("revised v2"), "{}", json(&r));

    // Point version 2 at version 1's hot set (a stale or misplaced file): it opens and
    // verifies, but its video:50 is not the item version 2 names, so it is not served
    // from it; video:1 (unchanged) still is.
    let info_path = dir
        .path()
        .join("remote")
        .join(format!("{}.json", v2.version().hash()));
    let mut info: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&info_path).unwrap()).unwrap();
    info["hot"] = serde_json::json!(hot_file);
    std::fs::write(&info_path, serde_json::to_vec(&info).unwrap()).unwrap();
    let mixed = RemoteStore::new(cluster.clone(), dir.path(), RemoteConfig::default()).unwrap();
    let got = mixed.get_many("en", &["video:1", "video:50"]).unwrap();
    assert!(got[0].as_ref().unwrap().is_hot());
    let r50 = got[1].as_ref().unwrap();
    assert!(!r50.is_hot(), "a hot record of another version was served");
    assert!(json(r50).contains("revised v2"));
}
