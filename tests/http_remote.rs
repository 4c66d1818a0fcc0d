//! The HTTP routes over the memcached tier (`fms::http::remote_router`), against real
//! memcached servers on loopback ports and a real HTTP client: every route answers what
//! the origin's trees hold, ETags follow the pushed versions, unknown and malformed input
//! get their 4xx, and a tier that cannot answer gives a 5xx in bounded time.
#![cfg(all(feature = "http", feature = "remote"))]

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use fms::http::{Config, Metrics, UnknownLocale};
use fms::remote::push::{self, PushOptions};
use fms::remote::{RemoteConfig, RemoteStore};
use serde_json::Value;
use support::http::{client, get, post, send, start};

/// Bound on every test.
const LIMIT: Duration = Duration::from_secs(60);
const RECORDS: usize = 120;

/// The record as the origin's tree for `locale` holds it, as JSON.
fn expected(dir: &std::path::Path, locale: &str, id: &str) -> Option<Value> {
    let tree = support::local_tree(dir, locale);
    tree.get(id).map(|r| serde_json::to_value(r).unwrap())
}

/// A test-sized store: pins are fresh for 50 ms, so a push shows within a request or two.
fn store(tier: &support::Tier) -> Arc<RemoteStore> {
    let cfg = RemoteConfig {
        fresh: Duration::from_millis(50),
        expire: Duration::from_secs(2),
        ..RemoteConfig::default()
    };
    Arc::new(RemoteStore::new(tier.cluster.clone(), tier.dir.path(), cfg).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_routes_answer_what_the_trees_hold() {
    let Some(tier) = support::pushed_tier(2, RECORDS, &PushOptions::default()) else {
        return;
    };
    tokio::time::timeout(LIMIT, async {
        let store = store(&tier);
        let addr = start(fms::http::remote_router(store.clone())).await;
        let c = client();
        let dir = tier.dir.path();

        // Records of every locale, as the trees hold them (overlays read through to en).
        let mut tags = std::collections::HashMap::new();
        for locale in ["en", "es", "pt"] {
            for i in [0usize, 3, 5, 7, 10, 119] {
                let id = format!("video:{i}");
                let a = get(&c, addr, &format!("/v1/{locale}/records/{id}")).await;
                match expected(dir, locale, &id) {
                    Some(want) => {
                        assert_eq!(a.status, 200, "{locale} {id}: {}", a.text);
                        assert_eq!(a.json(), want, "{locale} {id}");
                    }
                    None => {
                        assert_eq!(a.status, 404, "{locale} {id} (removed there)");
                        assert_eq!(a.error(), "not_found");
                    }
                }
                let tag = a.etag.expect("every answer from a version has an ETag");
                assert_eq!(tags.entry(locale).or_insert_with(|| tag.clone()), &tag);
            }
        }
        assert_ne!(tags["en"], tags["es"], "each locale has its own version");

        // The ETag is the pinned version's manifest hash, as /v1/versions says.
        let v = get(&c, addr, "/v1/versions").await;
        assert_eq!(v.status, 200);
        let v = v.json();
        assert_eq!(v["default_locale"], "en");
        for locale in ["en", "es", "pt"] {
            let hash = v["locales"][locale].as_str().unwrap();
            assert_eq!(tags[locale], format!("\"{hash}\""));
            assert_eq!(hash, store.pin(locale).unwrap().hash().to_string());
        }

        // If-None-Match with the version's tag: 304, no body.
        let a = send(
            c.get(format!("http://{addr}/v1/es/records/video:3"))
                .header("if-none-match", tags["es"].clone()),
        )
        .await;
        assert_eq!(a.status, 304);
        assert!(a.text.is_empty());
        // A revalidation of an id the manifest names exactly (es adds "es:only": an exact
        // record of its overlay manifest) costs no fetch; one of an id the perfect hash
        // only maps (video:7) reads the item first (cached here: no round trip).
        let before = store.stats();
        let a = send(
            c.get(format!("http://{addr}/v1/es/records/es:only"))
                .header("if-none-match", tags["es"].clone()),
        )
        .await;
        assert_eq!(a.status, 304);
        assert_eq!(
            store.stats().requests,
            before.requests,
            "a 304 fetched nothing"
        );
        let a = send(
            c.get(format!("http://{addr}/v1/es/records/video:7"))
                .header("if-none-match", tags["es"].clone()),
        )
        .await;
        assert_eq!(a.status, 304);
        let after = store.stats();
        assert_eq!(after.requests, before.requests + 1);
        assert_eq!(after.round_trips, before.round_trips);
        let a = send(
            c.get(format!("http://{addr}/v1/es/records/video:3"))
                .header("if-none-match", "\"0000\""),
        )
        .await;
        assert_eq!(a.status, 200);

        // Projection, in the order named; absent fields left out.
        let a = get(
            &c,
            addr,
            "/v1/es/records/video:3?fields=title,nope,duration",
        )
        .await;
        assert_eq!(a.status, 200);
        assert_eq!(a.text, {
            let want = expected(dir, "es", "video:3").unwrap();
            format!(
                "{{\"title\":{},\"duration\":{}}}",
                want["title"], want["duration"]
            )
        });

        // A batch: one get_many, request order, duplicates once, null for unknown ids.
        let a = post(
            &c,
            addr,
            "/v1/pt/records:batch",
            r#"["video:1","nope","video:5","pt:only","video:1","video:14"]"#,
        )
        .await;
        assert_eq!(a.status, 200, "{}", a.text);
        assert_eq!(a.etag.as_deref(), Some(tags["pt"].as_str()));
        let got = a.json();
        let obj = got.as_object().unwrap();
        assert_eq!(obj.len(), 5);
        let order: Vec<usize> = ["video:1", "nope", "video:5", "pt:only", "video:14"]
            .iter()
            .map(|k| a.text.find(&format!("\"{k}\":")).unwrap())
            .collect();
        assert!(order.is_sorted(), "request order: {}", a.text);
        for (id, v) in obj {
            assert_eq!(
                *v,
                expected(dir, "pt", id).unwrap_or(Value::Null),
                "pt {id}"
            );
        }

        // Unknown locales: 404 (no pin kept for them), malformed ones 400.
        let fallbacks = store.stats().pointer_fallbacks;
        let a = get(&c, addr, "/v1/de/records/video:1").await;
        assert_eq!((a.status, a.error().as_str()), (404, "unknown_locale"));
        assert_eq!(
            store.stats().pointer_fallbacks,
            fallbacks,
            "a made-up locale is not pinned (its pointer would be looked up)"
        );
        let a = get(&c, addr, "/v1/..%2F..%2Fetc/records/video:1").await;
        assert_eq!((a.status, a.error().as_str()), (400, "bad_locale"));
        let long = "x".repeat(600);
        let a = get(&c, addr, &format!("/v1/en/records/{long}")).await;
        assert_eq!((a.status, a.error().as_str()), (414, "id_too_long"));

        // Malformed and oversized batches.
        let a = post(&c, addr, "/v1/en/records:batch", "[1, 2").await;
        assert_eq!((a.status, a.error().as_str()), (400, "bad_json"));
        let many: Vec<String> = (0..1001).map(|i| format!("video:{i}")).collect();
        let a = post(
            &c,
            addr,
            "/v1/en/records:batch",
            serde_json::to_string(&many).unwrap(),
        )
        .await;
        assert_eq!((a.status, a.error().as_str()), (413, "batch_too_large"));

        // Health and metrics.
        let h = get(&c, addr, "/healthz").await;
        assert_eq!(h.status, 200);
        assert_eq!(h.json()["locales"], 3);
        assert_eq!(h.json()["default_records"], RECORDS);
        assert_eq!(h.etag.as_deref(), Some(tags["en"].as_str()));
        let m = get(&c, addr, "/metrics").await;
        assert_eq!(m.status, 200);
        let hits: u64 = m
            .text
            .lines()
            .find_map(|l| l.strip_prefix("fms_remote_memcached_hits_total "))
            .expect("the tier's counters")
            .parse()
            .unwrap();
        assert!(hits > 0, "records came from memcached:\n{}", m.text);
        for locale in ["en", "es", "pt"] {
            let hash = v["locales"][locale].as_str().unwrap();
            assert!(
                m.text.contains(&format!(
                    "fms_served_version{{locale=\"{locale}\",hash=\"{hash}\"}} 1"
                )),
                "{}",
                m.text
            );
        }
        assert!(m.text.contains(
            "fms_http_requests_total{route=\"/v1/{locale}/records:batch\",status=\"2xx\"} 1"
        ));
    })
    .await
    .expect("test took too long");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_changes_what_is_served_and_its_etag() {
    let Some(tier) = support::pushed_tier(2, RECORDS, &PushOptions::default()) else {
        return;
    };
    tokio::time::timeout(LIMIT, async {
        let store = store(&tier);
        let router_store = store.clone();
        let config = Config {
            unknown_locale: UnknownLocale::DefaultLocale,
            ..Config::default()
        };
        let addr = start(fms::http::remote_router_with(
            router_store,
            config,
            Arc::new(Metrics::new()),
        ))
        .await;
        let c = client();
        let before = get(&c, addr, "/v1/en/records/video:50").await;
        assert_eq!(before.json()["title"], "Video 50");

        // Unknown locales get the default's records, saying so, without a pin of their own.
        let fallbacks = store.stats().pointer_fallbacks;
        let de = get(&c, addr, "/v1/de/records/video:50").await;
        assert_eq!(de.status, 200);
        assert_eq!(de.content_language.as_deref(), Some("en"));
        assert_eq!(de.etag, before.etag);
        assert_eq!(store.stats().pointer_fallbacks, fallbacks);

        // Version 2 changes every 50th en record; once pushed, the next pin serves it.
        support::write_origin(tier.dir.path(), 2, RECORDS);
        push::push(tier.dir.path(), &tier.cluster, &PushOptions::default()).unwrap();
        let t = Instant::now();
        let after = loop {
            let a = get(&c, addr, "/v1/en/records/video:50").await;
            if a.etag != before.etag {
                break a;
            }
            assert!(
                t.elapsed() < Duration::from_secs(5),
                "the push never showed"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert_eq!(after.status, 200);
        assert_eq!(after.json()["title"], "Video 50, revised v2");
        // The old tag no longer matches: a cache revalidating gets the new record.
        let a = send(
            c.get(format!("http://{addr}/v1/en/records/video:50"))
                .header("if-none-match", before.etag.clone().unwrap()),
        )
        .await;
        assert_eq!(a.status, 200);
        assert_eq!(a.etag, after.etag);
    })
    .await
    .expect("test took too long");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tier_that_cannot_answer_gives_a_5xx_in_bounded_time() {
    let Some(tier) = support::pushed_tier(1, RECORDS, &PushOptions::default()) else {
        return;
    };
    tokio::time::timeout(LIMIT, async {
        let store = store(&tier);
        let addr = start(fms::http::remote_router(store)).await;
        let c = client();
        assert_eq!(get(&c, addr, "/v1/en/records/video:1").await.status, 200);

        // memcached dies: records still come from the origin.
        let support::Tier { mcs, dir, .. } = tier;
        drop(mcs);
        let a = get(&c, addr, "/v1/en/records/video:2").await;
        assert_eq!(a.status, 200, "{}", a.text);
        assert_eq!(a.json()["title"], "Video 2");

        // The durable pointers turn unreadable: the list read last keeps serving, and the
        // failed reads are counted.
        let pointers = fms::remote::origin::Origin::new(dir.path()).pointers_path();
        std::fs::write(&pointers, b"{ not json").unwrap();
        tokio::time::sleep(Duration::from_millis(120)).await;
        let a = get(&c, addr, "/v1/en/records/video:4").await;
        assert_eq!(a.status, 200, "{}", a.text);
        let m = get(&c, addr, "/metrics").await;
        let errors: u64 = m
            .text
            .lines()
            .find_map(|l| l.strip_prefix("fms_remote_pointers_file_errors_total "))
            .unwrap()
            .parse()
            .unwrap();
        assert!(errors >= 1, "{}", m.text);

        // And the origin goes too. A server starting now (a new store) answers records
        // with an error naming the cause, and /healthz with 503, quickly; nothing hangs.
        std::fs::remove_dir_all(dir.path()).unwrap();
        let cluster = support::cluster(&["127.0.0.1:1".to_owned()], &[]);
        let fresh =
            Arc::new(RemoteStore::new(cluster, dir.path(), RemoteConfig::default()).unwrap());
        let addr = start(fms::http::remote_router(fresh)).await;
        let t = Instant::now();
        let a = get(&c, addr, "/v1/en/records/video:3").await;
        assert!(t.elapsed() < Duration::from_secs(5));
        assert_eq!(
            (a.status, a.error().as_str()),
            (503, "unavailable"),
            "{}",
            a.text
        );
        let origin = dir.path().to_string_lossy().into_owned();
        assert!(
            !a.text.contains(&origin),
            "no origin paths in answers: {}",
            a.text
        );
        let h = get(&c, addr, "/healthz").await;
        assert_eq!(
            (h.status, h.error().as_str()),
            (503, "not_ready"),
            "{}",
            h.text
        );
        let b = post(&c, addr, "/v1/en/records:batch", r#"["video:1"]"#).await;
        assert_eq!(
            (b.status, b.error().as_str()),
            (503, "unavailable"),
            "{}",
            b.text
        );
        drop(dir);
    })
    .await
    .expect("test took too long");
}

/// `fms serve --memcached ... --origin DIR`: the remote routes as a sidecar process,
/// stopped by SIGTERM (killed if the test fails).
#[cfg(all(feature = "cli", unix))]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fms_serve_reads_through_the_tier() {
    use support::http::{signal, spawn_fms_serve, terminate_wait};

    let Some(tier) = support::pushed_tier(2, RECORDS, &PushOptions::default()) else {
        return;
    };
    tokio::time::timeout(LIMIT, async {
        let servers = tier.addrs.join(",");
        let (child, addr) = spawn_fms_serve(&[
            "--memcached".as_ref(),
            servers.as_ref(),
            "--origin".as_ref(),
            tier.dir.path().as_os_str(),
        ])
        .await;
        let c = client();
        let a = get(&c, addr, "/v1/es/records/video:9").await;
        assert_eq!(a.status, 200, "{}", a.text);
        assert_eq!(
            a.json(),
            expected(tier.dir.path(), "es", "video:9").unwrap()
        );
        let a = post(&c, addr, "/v1/en/records:batch", r#"["video:1","x"]"#).await;
        assert_eq!(a.status, 200);
        assert_eq!(a.json()["x"], Value::Null);
        assert_eq!(get(&c, addr, "/healthz").await.status, 200);
        // No admin route over the tier.
        assert_eq!(
            send(c.post(format!("http://{addr}/admin/reload")))
                .await
                .status,
            404
        );

        signal(&child.0, "-TERM");
        let (status, log) = terminate_wait(child).await;
        assert!(status.success(), "{status}: {log}");
        assert!(log.contains("through memcached"), "{log}");
    })
    .await
    .expect("test took too long");
}
