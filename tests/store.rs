//! Store: loading, publishing, fallback, eviction, reload; each test checks something the
//! Store itself could get wrong (a lost publish, a half-applied reload, an evicted base, a
//! pinned version changing under its reader).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use fms::{ContentHash, Error, Loading, Snapshot, SnapshotBuilder, Store};

const RECORDS: usize = 50;

/// Whether `e` is, or was caused by, exactly `want` (same variant, same fields: compared by
/// `Display`, which shows every field of the variants used here).
fn caused_by(e: &Error, want: &Error) -> bool {
    let c = e.root();
    std::mem::discriminant(c) == std::mem::discriminant(want) && c.to_string() == want.to_string()
}

/// A version: every record carries the version number.
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

/// Every record of `snap`, as JSON, in order.
fn dump(snap: &Snapshot) -> Vec<String> {
    snap.iter()
        .map(|(id, r)| format!("{id} {}", serde_json::to_string(&r).unwrap()))
        .collect()
}

fn write(dir: &Path, name: &str, snap: &Snapshot) {
    std::fs::write(dir.join(name), snap.as_bytes()).unwrap();
}

fn write_manifest(path: &Path, default: &str, locales: &[(&str, &str)], bases: &[&str]) {
    let mut m = fms::Manifest::new(default);
    for (l, f) in locales {
        m = m.locale(l, *f);
    }
    m.bases = bases.iter().map(Into::into).collect();
    m.write(path).unwrap();
}

/// What a store serves, to compare before and after: published, loaded, and which
/// snapshot object `current` returns for each locale in `locales`.
#[derive(Debug, PartialEq)]
struct State {
    published: BTreeMap<String, ContentHash>,
    loaded: Vec<ContentHash>,
    current: Vec<Option<usize>>,
}

fn state(store: &Store, locales: &[&str]) -> State {
    State {
        published: store.published(),
        loaded: store.loaded_hashes(),
        // Pointer identity: the same object, not merely equal content.
        current: locales
            .iter()
            .map(|l| store.current(l).map(|s| Arc::as_ptr(&s) as usize))
            .collect(),
    }
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

    let err = store.publish("es", ContentHash([7; 16])).unwrap_err();
    assert!(matches!(err.root(), Error::NotLoaded { .. }), "{err:?}");
    assert!(
        store.published().is_empty(),
        "a failed publish serves nothing"
    );

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
    assert!(!store.unpublish("es"), "nothing left to unpublish");
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
    let missing = dir.path().join("missing.fms");
    let err = store.load(&missing).unwrap_err();
    assert!(
        matches!(err.root(), Error::Io { path, source }
            if *path == missing && source.kind() == std::io::ErrorKind::NotFound),
        "{err:?}"
    );
    assert_eq!(store.loaded_hashes(), [x.hash()]);
}

#[test]
fn current_after_publish_is_the_new_version_and_published_agrees() {
    let store = Store::new("en");
    let versions: Vec<_> = (0..6).map(|v| store.add(version(v))).collect();
    let locales = ["en", "es", "pt", "de"];
    let mut expect: BTreeMap<String, ContentHash> = BTreeMap::new();
    // A fixed but scrambled order of (locale, version) publishes, overwriting each other.
    for step in 0..40usize {
        let locale = locales[(step * 7 + step / 3) % locales.len()];
        let v = &versions[(step * 5 + 1) % versions.len()];
        store.publish(locale, v.hash()).unwrap();
        expect.insert(locale.to_owned(), v.hash());
        assert_eq!(store.published(), expect, "step {step}");
        let cur = store.current(locale).unwrap();
        assert!(Arc::ptr_eq(&cur, v), "step {step}: current({locale})");
        // A locale nobody published falls back to the default's current version.
        assert_eq!(
            store.current("fr").map(|s| s.hash()),
            expect.get("en").copied(),
            "step {step}"
        );
        for l in locales {
            assert_eq!(
                store.current(l).map(|s| s.hash()),
                expect.get(l).or(expect.get("en")).copied(),
                "step {step}: {l}"
            );
        }
    }
}

/// Several threads publish at once: each to a locale only it writes (a lost update there
/// would show) and all to shared locales. Afterwards each locale serves the last version
/// some thread published to it, and `published()` and `current` agree.
#[test]
fn concurrent_publishes_lose_nothing_and_agree_with_published() {
    const THREADS: usize = 4;
    const ROUNDS: usize = 2_000;
    let store = Arc::new(Store::new("en"));
    let versions: Arc<Vec<_>> = Arc::new((0..8).map(|v| store.add(version(v))).collect());
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let (store, versions) = (store.clone(), versions.clone());
            std::thread::spawn(move || {
                let own = format!("own{t}");
                let mut last: BTreeMap<String, ContentHash> = BTreeMap::new();
                for r in 0..ROUNDS {
                    let v = &versions[(t * 3 + r) % versions.len()];
                    let shared = ["en", "es"][r % 2];
                    store.publish(&own, v.hash()).unwrap();
                    // Nobody else writes `own`: it must read back at once.
                    assert!(
                        Arc::ptr_eq(&store.current(&own).unwrap(), v),
                        "thread {t} round {r}: its own publish was lost"
                    );
                    assert_eq!(store.published().get(&own), Some(&v.hash()));
                    store.publish(shared, v.hash()).unwrap();
                    last.insert(own.clone(), v.hash());
                    last.insert(shared.to_owned(), v.hash());
                }
                last
            })
        })
        .collect();
    let lasts: Vec<BTreeMap<String, ContentHash>> =
        threads.into_iter().map(|t| t.join().unwrap()).collect();
    let published = store.published();
    let mut locales: BTreeSet<String> = BTreeSet::new();
    for last in &lasts {
        locales.extend(last.keys().cloned());
    }
    assert_eq!(
        published.keys().cloned().collect::<BTreeSet<_>>(),
        locales,
        "every locale any thread published, and nothing else"
    );
    for (locale, hash) in &published {
        // A thread's earlier publish is followed by its own later one, so only a thread's
        // last publish to a locale can be the final one.
        let finals: Vec<_> = lasts.iter().filter_map(|l| l.get(locale)).collect();
        assert!(
            finals.contains(&hash),
            "{locale}: {hash} was not a last write"
        );
        assert_eq!(store.current(locale).unwrap().hash(), *hash, "{locale}");
    }
    for (t, last) in lasts.iter().enumerate() {
        let own = format!("own{t}");
        assert_eq!(published[&own], last[&own], "{own}");
    }
}

/// A reader pins a version with `current` and keeps reading exactly it (same object,
/// same hash, same records) through a reload that serves other versions and an eviction
/// that drops the pinned ones (and, for the overlay, its base), whichever way the store
/// loads files.
#[test]
fn a_pinned_version_keeps_reading_through_reload_and_eviction() {
    for loading in [Loading::Mmap, Loading::Memory] {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let en1 = Arc::new(version(1));
        let es1 = overlay_version(&en1, 2);
        let en2 = Arc::new(version(3));
        let es2 = overlay_version(&en2, 4);
        for (name, s) in [
            ("en1.fms", &*en1),
            ("es1.fms", &es1),
            ("en2.fms", &*en2),
            ("es2.fms", &es2),
        ] {
            write(d, name, s);
        }
        let mpath = d.join("manifest.json");
        write_manifest(&mpath, "en", &[("en", "en1.fms"), ("es", "es1.fms")], &[]);
        let store = Store::new("en").with_loading(loading);
        store.reload(&mpath).unwrap();

        let pinned_en = store.current("en").unwrap();
        let pinned_es = store.current("es").unwrap();
        let pinned_pt = store.current("pt").unwrap(); // the fallback
        let (en_rows, es_rows) = (dump(&en1), dump(&es1));
        assert_eq!(dump(&pinned_en), en_rows);
        assert_eq!(dump(&pinned_es), es_rows);

        write_manifest(&mpath, "en", &[("en", "en2.fms"), ("es", "es2.fms")], &[]);
        store.reload(&mpath).unwrap();
        assert_eq!(
            store.current("es").unwrap().hash(),
            es2.hash(),
            "{loading:?}"
        );
        // en1 and es1 serve nothing now, and nothing served needs them.
        assert_eq!(store.evict_unpublished(), 2, "{loading:?}");
        assert!(store.get(en1.hash()).is_none() && store.get(es1.hash()).is_none());

        assert_eq!(pinned_en.hash(), en1.hash(), "{loading:?}");
        assert_eq!(pinned_es.hash(), es1.hash(), "{loading:?}");
        assert_eq!(pinned_es.base_hash(), Some(en1.hash()), "{loading:?}");
        assert!(Arc::ptr_eq(&pinned_pt, &pinned_en), "{loading:?}");
        assert_eq!(dump(&pinned_en), en_rows, "{loading:?}");
        assert_eq!(dump(&pinned_es), es_rows, "{loading:?}");
        pinned_es.verify().unwrap();
        // While the store serves the new versions.
        assert_eq!(
            dump(&store.current("es").unwrap()),
            dump(&es2),
            "{loading:?}"
        );
    }
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
    assert!(
        caused_by(
            &err,
            &Error::MissingBase {
                overlay: es.hash(),
                base: base.hash()
            }
        ),
        "{err:?}"
    );
    assert!(
        matches!(&err, Error::File { path, .. } if path.ends_with("es.fms")),
        "names the file: {err}"
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
        tree.get("r:3")
            .unwrap()
            .get("title")
            .unwrap()
            .to_str()
            .as_deref(),
        Some("t3")
    );
}

/// `evict_unpublished` keeps every snapshot a locale serves and the whole base chain of
/// each served overlay (stacked ones included), and drops exactly the rest.
#[test]
fn eviction_keeps_exactly_the_served_versions_and_their_base_chains() {
    let store = Store::new("en");
    let a = store.add(version(1)); // served (en)
    let b = store.add(version(2)); // base of a served chain, itself unserved
    let b1 = store.add(overlay_version(&b, 3)); // middle of the chain, unserved
    let b2 = store.add(overlay_version(&b1, 4)); // stacked on b1, served (pt)
    let x = store.add(overlay_version(&a, 5)); // over a served base, unserved
    let c = store.add(version(6)); // unserved
    let c1 = store.add(overlay_version(&c, 7)); // unserved chain
    let c2 = store.add(overlay_version(&c1, 8));
    let d = store.add(version(9)); // served (es) and then replaced
    store.publish("en", a.hash()).unwrap();
    store.publish("pt", b2.hash()).unwrap();
    store.publish("es", d.hash()).unwrap();
    store.publish("es", b1.hash()).unwrap(); // es moves into the chain: d unserved
    assert_eq!(store.loaded_hashes().len(), 9);
    let sorted = |v: &[&Arc<Snapshot>]| {
        let mut h: Vec<_> = v.iter().map(|s| s.hash()).collect();
        h.sort();
        h
    };

    // Dropped: x, c, c1, c2, d. Kept: a, the chain b <- b1 <- b2.
    assert_eq!(store.evict_unpublished(), 5);
    assert_eq!(store.loaded_hashes(), sorted(&[&a, &b, &b1, &b2]));
    for s in [&x, &c, &c1, &c2, &d] {
        assert!(store.get(s.hash()).is_none());
    }
    assert_eq!(store.evict_unpublished(), 0, "nothing more to drop");

    // pt stops being served: b2 goes; b1 is still served by es, so b stays with it.
    let pinned = store.current("pt").unwrap();
    assert!(store.unpublish("pt"));
    assert_eq!(store.evict_unpublished(), 1);
    assert_eq!(store.loaded_hashes(), sorted(&[&a, &b, &b1]));
    // es stops: b1 and b go; the pinned b2 still reads through its (evicted) chain.
    assert!(store.unpublish("es"));
    assert_eq!(store.evict_unpublished(), 2);
    assert_eq!(store.loaded_hashes(), sorted(&[&a]));
    assert_eq!(pinned.hash(), b2.hash());
    assert_eq!(dump(&pinned), dump(&b2));
    assert_eq!(
        pinned.get("r:7").unwrap().get("version").unwrap().as_i64(),
        Some(4)
    );
}

#[test]
fn a_manifest_starts_a_store_and_reload_swaps_atomically() {
    let dir = tempfile::tempdir().unwrap();
    let base = Arc::new(version(1));
    let es1 = overlay_version(&base, 2);
    let es2 = overlay_version(&base, 3);
    for (name, s) in [("en.fms", &*base), ("es1.fms", &es1), ("es2.fms", &es2)] {
        write(dir.path(), name, s);
    }
    let mpath = dir.path().join("manifest.json");
    write_manifest(
        &mpath,
        "en",
        &[("en", "en.fms"), ("es", "es1.fms"), ("pt", "en.fms")],
        &[],
    );
    let store = Store::open_manifest(&mpath).unwrap();
    assert_eq!(store.default_locale(), "en");
    let served = store.published();
    assert_eq!(served["es"], es1.hash());
    assert_eq!(served["pt"], base.hash());
    assert_eq!(store.loaded_hashes().len(), 2, "en.fms is mapped once");
    let pinned = store.current("es").unwrap();

    // A new manifest: es moves to a new version, pt is dropped.
    write_manifest(&mpath, "en", &[("en", "en.fms"), ("es", "es2.fms")], &[]);
    let now = store.reload(&mpath).unwrap();
    assert_eq!(now, store.published());
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
    // The manifest writes left no temporary files behind.
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(
        names.iter().all(|n| !n.starts_with(".fms-tmp")),
        "{names:?}"
    );
}

/// A reload that fails — bad manifest JSON, a missing file, a file that is no snapshot, an
/// overlay whose base is nowhere (evicted, or another version than the one served), another
/// default locale — changes nothing: the same published versions, the same loaded set (a
/// good new file in the same manifest is not registered), the same objects from `current`.
#[test]
fn a_failing_reload_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let en1 = Arc::new(version(1));
    let es1 = overlay_version(&en1, 2);
    let pt_base = Arc::new(overlay_version(&en1, 5));
    let pt1 = overlay_version(&pt_base, 6); // stacked; its base is listed in `bases`
    let en2 = Arc::new(version(3)); // a new content version, never served
    let es_over_en2 = overlay_version(&en2, 4); // a locale built over en2
    let old = Arc::new(version(7));
    let over_old = overlay_version(&old, 8); // over a version loaded, then evicted
    for (name, s) in [
        ("en1.fms", &*en1),
        ("es1.fms", &es1),
        ("pt1.fms", &pt1),
        ("pt-base.fms", &*pt_base),
        ("v10.fms", &version(10)),
        ("en2.fms", &*en2),
        ("es-over-en2.fms", &es_over_en2),
        ("old.fms", &*old),
        ("over-old.fms", &over_old),
    ] {
        write(d, name, s);
    }
    std::fs::write(
        d.join("garbage.fms"),
        b"not a snapshot at all, just some bytes",
    )
    .unwrap();
    let mpath = d.join("manifest.json");
    write_manifest(
        &mpath,
        "en",
        &[("en", "en1.fms"), ("es", "es1.fms"), ("pt", "pt1.fms")],
        &["pt-base.fms"],
    );
    let store = Store::open_manifest(&mpath).unwrap();
    // `old` was loaded once and evicted: an overlay over it has no base any more.
    store.load(d.join("old.fms")).unwrap();
    assert_eq!(store.evict_unpublished(), 1);
    let locales = ["en", "es", "pt", "fr"];
    let before = state(&store, &locales);
    assert_eq!(before.loaded.len(), 4, "en1, es1, pt1, pt-base");

    // Each failing manifest also lists v10.fms, a good new file: a half-done reload would
    // register it.
    fn with_new<'a>(extra: (&'a str, &'a str)) -> Vec<(&'a str, &'a str)> {
        vec![("en", "en1.fms"), ("de", "v10.fms"), extra]
    }
    type Check = Box<dyn Fn(&Error) -> bool>;
    let cases: Vec<(&str, Check)> = vec![
        (
            "bad JSON",
            Box::new(|e| {
                matches!(
                    e.root(),
                    Error::Manifest {
                        source: Some(_),
                        ..
                    }
                )
            }),
        ),
        (
            "missing file",
            Box::new(|e| {
                matches!(e.root(), Error::Io { path, source }
                    if path.ends_with("gone.fms") && source.kind() == std::io::ErrorKind::NotFound)
            }),
        ),
        (
            "not a snapshot",
            Box::new(|e| matches!(e.root(), Error::Format { .. })),
        ),
        ("base evicted", {
            let want = Error::MissingBase {
                overlay: over_old.hash(),
                base: old.hash(),
            };
            Box::new(move |e| caused_by(e, &want))
        }),
        ("overlay over another version", {
            let want = Error::MissingBase {
                overlay: es_over_en2.hash(),
                base: en2.hash(),
            };
            Box::new(move |e| caused_by(e, &want))
        }),
        (
            "another default locale",
            Box::new(|e| matches!(e.root(), Error::Manifest { source: None, .. })),
        ),
    ];
    for (case, check) in &cases {
        match *case {
            "bad JSON" => std::fs::write(
                &mpath,
                r#"{"default_locale": "en", "locales": {"en": "en1.fms", "es": 3}}"#,
            )
            .unwrap(),
            "missing file" => write_manifest(&mpath, "en", &with_new(("es", "gone.fms")), &[]),
            "not a snapshot" => write_manifest(&mpath, "en", &with_new(("es", "garbage.fms")), &[]),
            "base evicted" => write_manifest(&mpath, "en", &with_new(("es", "over-old.fms")), &[]),
            "overlay over another version" => {
                write_manifest(&mpath, "en", &with_new(("es", "es-over-en2.fms")), &[])
            }
            "another default locale" => {
                write_manifest(&mpath, "de", &[("de", "v10.fms"), ("en", "en1.fms")], &[])
            }
            _ => unreachable!(),
        }
        let e = store.reload(&mpath).expect_err(case);
        assert!(check(&e), "{case}: unexpected error {e:?}");
        assert!(
            matches!(
                e,
                Error::File { .. } | Error::Io { .. } | Error::Manifest { .. }
            ),
            "{case}: names no file: {e}"
        );
        assert_eq!(state(&store, &locales), before, "{case}");
    }

    // The store is still usable: a good manifest reloads.
    write_manifest(
        &mpath,
        "en",
        &[("en", "en2.fms"), ("es", "es-over-en2.fms")],
        &[],
    );
    let served = store.reload(&mpath).unwrap();
    assert_eq!(served["es"], es_over_en2.hash());
    assert_ne!(state(&store, &locales), before);
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
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let evictor = {
        let (store, stop) = (store.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
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
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
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
        let err = store.reload(&mpath).unwrap_err();
        assert!(
            matches!(&err, Error::Manifest { path, source: None, .. } if *path == mpath),
            "{entry:?}: {err}"
        );
        assert_eq!(store.published(), before, "{entry:?}");
        assert!(Store::open_manifest(&mpath).is_err(), "{entry:?}");
    }
    // Relative paths below the directory, with `.`, still work.
    write("./v2/en.fms".as_ref());
    store.reload(&mpath).unwrap();
}
