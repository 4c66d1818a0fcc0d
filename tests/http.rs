//! The HTTP router (feature `http`) over a real server on a loopback port, with a real
//! client: every route, ETag/304, locale fallback, errors, hostile input, a reload while
//! requests run; and `fms serve` as a child process (reload on SIGHUP, on a manifest
//! change and from the admin route; clean exit on SIGTERM). Every test is bounded in time.
#![cfg(feature = "http")]

mod support;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use fms::http::{Config, UnknownLocale};
use fms::{Manifest, Snapshot, SnapshotBuilder, Store};
use serde_json::{Value, json};
use support::http::{answer, client, get, post, start};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const RECORDS: usize = 200;
/// Bound on every test.
const LIMIT: Duration = Duration::from_secs(60);

/// The default tree of content version `v`: every record says its version.
fn en_record(i: usize, v: i64) -> Value {
    json!({"title": format!("Title {i}"), "n": i, "version": v, "kind": "video",
           "tags": ["a", format!("t{}", i % 7)], "meta": {"len": i * 3, "ok": true}})
}

/// Writes `en{v}.fms` (full) and `es{v}.fms` (an overlay over it translating even records'
/// titles and lacking r:199) into `dir`; returns their hashes.
fn write_version(dir: &Path, v: i64) -> (fms::ContentHash, fms::ContentHash) {
    let mut b = SnapshotBuilder::new();
    for i in 0..RECORDS {
        b.insert(&format!("r:{i}"), &en_record(i, v)).unwrap();
    }
    // Ids a URL must carry escaped.
    b.insert("a/b c?d#e", &json!({"title": "odd id", "version": v}))
        .unwrap();
    b.insert("é:ü", &json!({"title": "unicode id", "version": v}))
        .unwrap();
    let en_info = b.write_to_path(dir.join(format!("en{v}.fms"))).unwrap();
    let en = Arc::new(Snapshot::open(dir.join(format!("en{v}.fms"))).unwrap());
    let mut o = SnapshotBuilder::with_base(&en);
    for i in 0..RECORDS - 1 {
        let mut r = en_record(i, v);
        if i % 2 == 0 {
            r["title"] = json!(format!("Título {i}"));
        }
        o.insert(&format!("r:{i}"), &r).unwrap();
    }
    o.insert("a/b c?d#e", &json!({"title": "odd id", "version": v}))
        .unwrap();
    o.insert("é:ü", &json!({"title": "unicode id", "version": v}))
        .unwrap();
    o.remove_absent().unwrap();
    let es_info = o.write_to_path(dir.join(format!("es{v}.fms"))).unwrap();
    (en_info.hash, es_info.hash)
}

fn write_manifest(dir: &Path, v: i64) {
    Manifest::new("en")
        .locale("en", format!("en{v}.fms"))
        .locale("es", format!("es{v}.fms"))
        .write(dir.join("manifest.json"))
        .unwrap();
}

struct Fixture {
    dir: tempfile::TempDir,
    store: Arc<Store>,
    /// ETag value -> content version.
    versions: HashMap<String, i64>,
    en: fms::ContentHash,
    es: fms::ContentHash,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let mut versions = HashMap::new();
    let mut first = None;
    for v in [1, 2] {
        let (en, es) = write_version(dir.path(), v);
        versions.insert(format!("\"{en}\""), v);
        versions.insert(format!("\"{es}\""), v);
        first.get_or_insert((en, es));
    }
    write_manifest(dir.path(), 1);
    let store = Arc::new(Store::open_manifest(dir.path().join("manifest.json")).unwrap());
    let (en, es) = first.unwrap();
    Fixture {
        dir,
        store,
        versions,
        en,
        es,
    }
}

/// Sends `raw` bytes as the request and returns the status and body: for request targets
/// a client library would normalize or refuse.
async fn raw(addr: SocketAddr, request_target: &[u8]) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut req = b"GET ".to_vec();
    req.extend_from_slice(request_target);
    req.extend_from_slice(b" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    s.write_all(&req).await.unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out).await;
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map_or("", |x| x.1).to_owned();
    (status, body)
}

async fn bounded<F: std::future::Future>(f: F) -> F::Output {
    tokio::time::timeout(LIMIT, f)
        .await
        .expect("test took too long")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_versions_health_and_metrics() {
    bounded(async {
        let fx = fixture();
        let addr = start(fms::http::router(fx.store.clone())).await;
        let c = client();

        // One record, as the snapshot serializes it.
        let a = get(&c, addr, "/v1/en/records/r:5").await;
        assert_eq!(a.status, 200, "{}", a.text);
        assert_eq!(a.json(), en_record(5, 1));
        assert_eq!(a.etag.as_deref(), Some(&*format!("\"{}\"", fx.en)));
        let tree = fx.store.current("en").unwrap();
        let direct = serde_json::to_string(&tree.get("r:5").unwrap()).unwrap();
        assert_eq!(a.text, direct, "the body is the record's own serialization");

        // The overlay: translated titles, untranslated fields read through to en.
        let a = get(&c, addr, "/v1/es/records/r:4").await;
        assert_eq!(a.json()["title"], "Título 4");
        assert_eq!(a.json()["tags"], json!(["a", "t4"]));
        assert_eq!(a.etag.as_deref(), Some(&*format!("\"{}\"", fx.es)));
        assert_eq!(get(&c, addr, "/v1/es/records/r:5").await.json()["title"], "Title 5");
        // Removed in es: 404, with the ETag of the tree that says so.
        let a = get(&c, addr, "/v1/es/records/r:199").await;
        assert_eq!((a.status, a.error()), (404, "not_found".into()));
        assert_eq!(a.etag.as_deref(), Some(&*format!("\"{}\"", fx.es)));
        assert_eq!(get(&c, addr, "/v1/en/records/r:199").await.status, 200);

        // Projection: named fields in the order named; absent and repeated names ignored.
        let a = get(&c, addr, "/v1/en/records/r:7?fields=version,title,nope,title,").await;
        assert_eq!(a.text, r#"{"version":1,"title":"Title 7"}"#);
        let a = get(&c, addr, "/v1/en/records/r:7?fields=").await;
        assert_eq!(a.text, "{}");

        // Escaped ids.
        let a = get(&c, addr, "/v1/en/records/a%2Fb%20c%3Fd%23e").await;
        assert_eq!(a.json()["title"], "odd id", "{}", a.text);
        let a = get(&c, addr, "/v1/es/records/%C3%A9:%C3%BC").await;
        assert_eq!(a.json()["title"], "unicode id", "{}", a.text);

        // Batch: request order, nulls for unknown ids, duplicates once.
        let a = post(&c, addr, "/v1/es/records:batch", r#"["r:2","zzz","r:3","r:2","r:199"]"#).await;
        assert_eq!(a.status, 200, "{}", a.text);
        assert_eq!(a.etag.as_deref(), Some(&*format!("\"{}\"", fx.es)));
        let order: Vec<usize> = ["\"r:2\"", "\"zzz\"", "\"r:3\"", "\"r:199\""]
            .iter()
            .map(|k| a.text.find(k).unwrap())
            .collect();
        assert!(order.windows(2).all(|w| w[0] < w[1]), "{}", a.text);
        let j = a.json();
        assert_eq!(j.as_object().unwrap().len(), 4);
        assert_eq!(j["r:2"]["title"], "Título 2");
        assert_eq!(j["r:3"]["title"], "Title 3");
        assert!(j["zzz"].is_null() && j["r:199"].is_null());
        let a = post(&c, addr, "/v1/en/records:batch?fields=n", r#"["r:1","r:\u0032"]"#).await;
        assert_eq!(a.text, r#"{"r:1":{"n":1},"r:2":{"n":2}}"#);
        assert_eq!(post(&c, addr, "/v1/en/records:batch", "[]").await.text, "{}");

        // Versions.
        let a = get(&c, addr, "/v1/versions").await;
        assert_eq!(a.status, 200);
        assert_eq!(
            a.json(),
            json!({"default_locale": "en", "locales": {"en": fx.en.to_string(), "es": fx.es.to_string()}})
        );
        assert!(a.etag.is_some());

        // Health and metrics.
        let a = get(&c, addr, "/healthz").await;
        assert_eq!((a.status, a.json()["status"].clone()), (200, json!("ok")));
        let m = get(&c, addr, "/metrics").await;
        assert_eq!(m.status, 200);
        for needle in [
            "fms_http_requests_total{route=\"/v1/{locale}/records/{id}\",status=\"2xx\"}",
            "fms_http_requests_total{route=\"/v1/{locale}/records/{id}\",status=\"4xx\"} 1",
            "fms_http_requests_total{route=\"/v1/{locale}/records:batch\",status=\"2xx\"} 3",
            "fms_http_request_duration_seconds_bucket{route=\"/healthz\",le=\"+Inf\"} 1",
            "fms_http_request_duration_seconds_count{route=\"/v1/versions\"} 1",
            &format!("fms_served_version{{locale=\"es\",hash=\"{}\"}} 1", fx.es),
            "fms_loaded_snapshots 2",
            "fms_mapped_bytes ",
            "process_resident_memory_bytes ",
        ] {
            assert!(m.text.contains(needle), "no {needle:?} in\n{}", m.text);
        }
        assert!(m.etag.is_none());
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etags_and_304() {
    bounded(async {
        let fx = fixture();
        let addr = start(fms::http::router(fx.store.clone())).await;
        let c = client();
        let url = format!("http://{addr}/v1/en/records/r:1");
        let tag = get(&c, addr, "/v1/en/records/r:1").await.etag.unwrap();
        for inm in [
            tag.clone(),
            format!("W/{tag}"),
            format!("\"other\", {tag}"),
            "*".to_owned(),
        ] {
            let a = answer(
                c.get(&url)
                    .header("if-none-match", &inm)
                    .send()
                    .await
                    .unwrap(),
            )
            .await;
            assert_eq!(a.status, 304, "{inm}");
            assert_eq!(a.text, "");
            assert_eq!(a.etag.as_deref(), Some(&*tag));
        }
        for inm in ["\"other\"", "garbage", "\"\""] {
            let a = answer(
                c.get(&url)
                    .header("if-none-match", inm)
                    .send()
                    .await
                    .unwrap(),
            )
            .await;
            assert_eq!(a.status, 200, "{inm}");
        }
        // Another content version: another ETag, so the old one no longer matches.
        write_manifest(fx.dir.path(), 2);
        fx.store
            .reload(fx.dir.path().join("manifest.json"))
            .unwrap();
        let a = answer(
            c.get(&url)
                .header("if-none-match", &tag)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(a.status, 200);
        assert_ne!(a.etag.as_deref(), Some(&*tag));
        assert_eq!(a.json()["version"], 2);
        // The versions document too.
        let v = get(&c, addr, "/v1/versions").await;
        let vtag = v.etag.unwrap();
        let a = answer(
            c.get(format!("http://{addr}/v1/versions"))
                .header("if-none-match", &vtag)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(a.status, 304);
        // POST batches carry the ETag but are never 304.
        let a = answer(
            c.post(format!("http://{addr}/v1/en/records:batch"))
                .header("if-none-match", "*")
                .body("[\"r:1\"]")
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(a.status, 200);
        assert!(a.etag.is_some());
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_locales_404_or_fall_back() {
    bounded(async {
        let fx = fixture();
        let strict = start(fms::http::router(fx.store.clone())).await;
        let lenient = start(fms::http::router_with(
            fx.store.clone(),
            Config {
                unknown_locale: UnknownLocale::DefaultLocale,
                ..Config::default()
            },
        ))
        .await;
        let c = client();
        let a = get(&c, strict, "/v1/pt/records/r:2").await;
        assert_eq!((a.status, a.error()), (404, "unknown_locale".into()));
        let a = post(&c, strict, "/v1/pt/records:batch", "[\"r:2\"]").await;
        assert_eq!((a.status, a.error()), (404, "unknown_locale".into()));

        let a = get(&c, lenient, "/v1/pt/records/r:2").await;
        assert_eq!(a.status, 200);
        assert_eq!(a.json()["title"], "Title 2", "the default locale's tree");
        assert_eq!(a.etag.as_deref(), Some(&*format!("\"{}\"", fx.en)));
        assert_eq!(a.content_language.as_deref(), Some("en"));
        let a = get(&c, lenient, "/v1/es/records/r:2").await;
        assert_eq!(a.json()["title"], "Título 2");
        assert_eq!(a.content_language, None, "its own tree");
        // Malformed locales are 400 under either policy.
        for addr in [strict, lenient] {
            let a = get(&c, addr, "/v1/e%20n/records/r:2").await;
            assert_eq!((a.status, a.error()), (400, "bad_locale".into()));
        }

        // Nothing published: 503, not a panic.
        let empty = start(fms::http::router(Arc::new(Store::new("en")))).await;
        let a = get(&c, empty, "/v1/en/records/r:1").await;
        assert_eq!((a.status, a.error()), (503, "not_ready".into()));
        assert_eq!(get(&c, empty, "/healthz").await.status, 503);
        assert_eq!(get(&c, empty, "/v1/versions").await.status, 200);
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_input_gets_a_clear_4xx() {
    bounded(async {
        let fx = fixture();
        let config = Config {
            max_batch: 10,
            max_body_bytes: 4096,
            max_id_bytes: 64,
            max_fields: 3,
            ..Config::default()
        };
        let addr = start(fms::http::router_with(fx.store.clone(), config)).await;
        let c = client();

        // Percent-encoded bytes that are not UTF-8, in the id and in the locale.
        for target in [&b"/v1/en/records/%FF%FE"[..], b"/v1/%C3%28/records/r:1"] {
            let (status, body) = raw(addr, target).await;
            assert_eq!(status, 400, "{}", String::from_utf8_lossy(target));
            let j: Value = serde_json::from_str(&body).unwrap();
            assert!(
                j["error"] == "bad_path" || j["error"] == "bad_query",
                "{body}"
            );
        }
        // The query string is decoded lossily (as forms are): a bad byte names no field.
        let (status, body) = raw(addr, b"/v1/en/records/r:1?fields=%FF").await;
        assert_eq!((status, &*body), (200, "{}"));
        // Raw bytes that are not even valid in a request line: hyper refuses them.
        let (status, _) = raw(addr, b"/v1/en/records/\xff\xfe").await;
        assert!((400..500).contains(&status), "{status}");
        // Traversal-looking ids and locales are just strings that name nothing.
        let (status, body) = raw(addr, b"/v1/en/records/..%2F..%2Fetc%2Fpasswd").await;
        assert_eq!(status, 404, "{body}");
        let (status, body) = raw(addr, b"/v1/..%2F..%2Fetc/records/r:1").await;
        assert_eq!(status, 400, "{body}");
        let (status, _) = raw(addr, b"/v1/en/records/%00").await;
        assert_eq!(status, 404);
        // Too long: an id over the limit, a locale over 35 bytes, a 100 KB URI.
        let long = "x".repeat(65);
        let a = get(&c, addr, &format!("/v1/en/records/{long}")).await;
        assert_eq!((a.status, a.error()), (414, "id_too_long".into()));
        let a = get(&c, addr, &format!("/v1/{}/records/r:1", "l".repeat(36))).await;
        assert_eq!((a.status, a.error()), (400, "bad_locale".into()));
        let (status, _) = raw(
            addr,
            format!("/v1/en/records/{}", "y".repeat(100_000)).as_bytes(),
        )
        .await;
        assert!((400..500).contains(&status), "{status}");
        let a = get(&c, addr, "/v1/en/records/r:1?fields=a,b,c,d").await;
        assert_eq!((a.status, a.error()), (400, "too_many_fields".into()));

        // Batches: too many ids, too many bytes, malformed JSON, wrong types, long ids.
        let ids: Vec<String> = (0..11).map(|i| format!("r:{i}")).collect();
        let a = post(
            &c,
            addr,
            "/v1/en/records:batch",
            serde_json::to_string(&ids).unwrap(),
        )
        .await;
        assert_eq!((a.status, a.error()), (413, "batch_too_large".into()));
        let a = post(
            &c,
            addr,
            "/v1/en/records:batch",
            format!("[\"{}\"]", "z".repeat(5000)),
        )
        .await;
        assert_eq!((a.status, a.error()), (413, "body_too_large".into()));
        let a = post(&c, addr, "/v1/en/records:batch", format!("[\"{long}\"]")).await;
        assert_eq!((a.status, a.error()), (400, "id_too_long".into()));
        for body in [
            "",
            "[",
            "{\"ids\": []}",
            "[1, 2]",
            "[\"r:1\", null]",
            "[\"\\ud800\"]",
            "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
            "\u{0}\u{1}",
        ] {
            let a = post(&c, addr, "/v1/en/records:batch", body).await;
            assert_eq!((a.status, a.error()), (400, "bad_json".into()), "{body:?}");
        }
        let a = post(
            &c,
            addr,
            "/v1/en/records:batch",
            vec![0xffu8, 0xfe, b'[', b']'],
        )
        .await;
        assert_eq!((a.status, a.error()), (400, "bad_json".into()));

        // Wrong routes and methods.
        let a = get(&c, addr, "/v1/en/records:batch").await;
        assert_eq!((a.status, a.error()), (405, "method_not_allowed".into()));
        let a = get(&c, addr, "/v2/en/records/r:1").await;
        assert_eq!((a.status, a.error()), (404, "no_route".into()));
        let a = get(&c, addr, "/v1/en/records/").await;
        assert_eq!(a.status, 404);

        // Still serving.
        assert_eq!(get(&c, addr, "/v1/en/records/r:1").await.status, 200);
        let m = get(&c, addr, "/metrics").await.text;
        assert!(!m.contains("status=\"5xx\""), "{m}");
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_while_requests_run() {
    bounded(async {
        let fx = Arc::new(fixture());
        let addr = start(fms::http::router(fx.store.clone())).await;
        let stop = Arc::new(AtomicBool::new(false));
        let checked = Arc::new(AtomicUsize::new(0));
        let seen = Arc::new(std::sync::Mutex::new(std::collections::HashSet::new()));
        let mut tasks = Vec::new();
        for t in 0..4usize {
            let (fx, stop, checked, seen) =
                (fx.clone(), stop.clone(), checked.clone(), seen.clone());
            tasks.push(tokio::spawn(async move {
                let c = client();
                let mut i = t;
                while !stop.load(Ordering::Relaxed) {
                    i = (i * 31 + 7) % (RECORDS - 1);
                    let locale = ["en", "es"][i % 2];
                    let a = if t % 2 == 0 {
                        get(&c, addr, &format!("/v1/{locale}/records/r:{i}")).await
                    } else {
                        let ids: Vec<String> = (0..20)
                            .map(|k| format!("r:{}", (i + k) % (RECORDS - 1)))
                            .collect();
                        post(
                            &c,
                            addr,
                            &format!("/v1/{locale}/records:batch"),
                            serde_json::to_string(&ids).unwrap(),
                        )
                        .await
                    };
                    assert_eq!(a.status, 200, "{}", a.text);
                    let tag = a.etag.clone().unwrap();
                    let v = fx.versions[&tag];
                    seen.lock().unwrap().insert(v);
                    // Every record of the answer is of the version its ETag names.
                    let j = a.json();
                    let recs: Vec<&Value> = if t % 2 == 0 {
                        vec![&j]
                    } else {
                        j.as_object().unwrap().values().collect()
                    };
                    for r in recs {
                        assert_eq!(r["version"], v, "{tag}: {}", a.text);
                    }
                    checked.fetch_add(1, Ordering::Relaxed);
                }
            }));
        }
        let mpath = fx.dir.path().join("manifest.json");
        for round in 0..20 {
            tokio::time::sleep(Duration::from_millis(40)).await;
            write_manifest(fx.dir.path(), 1 + (round % 2 == 0) as i64);
            fx.store.reload(&mpath).unwrap();
            fx.store.evict_unpublished();
        }
        tokio::time::sleep(Duration::from_millis(40)).await;
        stop.store(true, Ordering::Relaxed);
        for t in tasks {
            t.await.unwrap();
        }
        assert!(
            checked.load(Ordering::Relaxed) > 40,
            "too few requests to mean anything"
        );
        assert_eq!(seen.lock().unwrap().len(), 2, "both versions were served");
    })
    .await
}

/// `fms serve` as a child process, killed if the test fails.
#[cfg(all(feature = "cli", unix))]
mod serve {
    use super::*;
    use support::http::{KillOnDrop, signal, spawn_fms_serve, terminate_wait};

    /// Polls `/v1/versions` until `en` serves `want` (or fails after 15 s).
    async fn wait_for_en(c: &reqwest::Client, addr: SocketAddr, want: fms::ContentHash) {
        for _ in 0..300 {
            if let Ok(r) = c.get(format!("http://{addr}/v1/versions")).send().await {
                let j: Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
                if j["locales"]["en"] == want.to_string() {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("en never switched to {want}");
    }

    /// Starts `fms serve` over `manifest` on a free port; returns it and its address.
    async fn spawn_serve(manifest: &Path, poll_ms: u32) -> (KillOnDrop, SocketAddr) {
        let poll = poll_ms.to_string();
        spawn_fms_serve(&[
            "--poll-ms".as_ref(),
            poll.as_ref(),
            "--manifest".as_ref(),
            manifest.as_os_str(),
        ])
        .await
    }

    /// SIGTERM, then the exit status and everything the server logged.
    async fn terminate(child: KillOnDrop) -> (std::process::ExitStatus, String) {
        signal(&child.0, "-TERM");
        terminate_wait(child).await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn fms_serve_reloads_on_sighup_and_admin_and_exits_cleanly() {
        bounded(async {
            let fx = fixture();
            let mpath = fx.dir.path().join("manifest.json");
            // No polling: only the signal and the admin route can cause a swap.
            let (child, addr) = spawn_serve(&mpath, 0).await;
            let c = client();
            let a = get(&c, addr, "/v1/en/records/r:3").await;
            assert_eq!((a.status, a.json()["version"].clone()), (200, json!(1)));

            // SIGHUP while requests run: every answer is 200.
            write_manifest(fx.dir.path(), 2);
            let load = {
                let c = c.clone();
                tokio::spawn(async move {
                    let mut n = 0;
                    for i in 0..300 {
                        let a = get(&c, addr, &format!("/v1/es/records/r:{}", i % 150)).await;
                        assert_eq!(a.status, 200, "{}", a.text);
                        n += 1;
                    }
                    n
                })
            };
            signal(&child.0, "-HUP");
            wait_for_en(&c, addr, fms_hash(&fx, 2)).await;
            assert_eq!(load.await.unwrap(), 300);
            assert_eq!(
                get(&c, addr, "/v1/en/records/r:3").await.json()["version"],
                2
            );

            // The admin route, from loopback.
            write_manifest(fx.dir.path(), 1);
            let a = post(&c, addr, "/admin/reload", "").await;
            assert_eq!(a.status, 200, "{}", a.text);
            assert!(a.text.contains("swapped"), "{}", a.text);
            assert_eq!(
                get(&c, addr, "/v1/en/records/r:3").await.json()["version"],
                1
            );
            // A manifest pointing outside its directory: refused, the old trees keep serving.
            std::fs::write(
                &mpath,
                "{\"default_locale\": \"en\", \"locales\": {\"en\": \"../en1.fms\"}}",
            )
            .unwrap();
            let a = post(&c, addr, "/admin/reload", "").await;
            assert_eq!(a.status, 500, "{}", a.text);
            assert!(a.text.contains("outside the manifest"), "{}", a.text);
            assert_eq!(get(&c, addr, "/v1/en/records/r:3").await.status, 200);

            let (status, log) = terminate(child).await;
            assert!(status.success(), "{status:?}\n{log}");
            assert!(log.contains("reload (SIGHUP): swapped en"), "{log}");
            assert!(log.contains("reload (admin endpoint): swapped en"), "{log}");
            assert!(log.contains("shutting down"), "{log}");
        })
        .await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn fms_serve_reloads_when_the_manifest_changes() {
        bounded(async {
            let fx = fixture();
            let (en3, _) = write_version(fx.dir.path(), 3);
            let mpath = fx.dir.path().join("manifest.json");
            let (child, addr) = spawn_serve(&mpath, 100).await;
            let c = client();
            assert_eq!(
                get(&c, addr, "/v1/en/records/r:3").await.json()["version"],
                1
            );
            write_manifest(fx.dir.path(), 3);
            wait_for_en(&c, addr, en3).await;
            assert_eq!(
                get(&c, addr, "/v1/en/records/r:3").await.json()["version"],
                3
            );
            assert_eq!(
                get(&c, addr, "/v1/es/records/r:3").await.json()["version"],
                3
            );
            let (status, log) = terminate(child).await;
            assert!(status.success(), "{status:?}\n{log}");
            assert!(
                log.contains("reload (manifest changed): swapped en"),
                "{log}"
            );
        })
        .await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn fms_serve_finishes_a_request_in_flight_on_sigterm() {
        bounded(async {
            let fx = fixture();
            let (child, addr) = spawn_serve(&fx.dir.path().join("manifest.json"), 0).await;
            // A batch whose body is still arriving when SIGTERM comes: the request is in
            // flight (its head is parsed, the handler waits for the body).
            let body = br#"["r:1","r:2"]"#;
            let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
            let head = format!(
                "POST /v1/en/records:batch HTTP/1.1\r\nHost: 127.0.0.1\r\n\
                 Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                body.len()
            );
            s.write_all(head.as_bytes()).await.unwrap();
            s.write_all(&body[..5]).await.unwrap();
            tokio::time::sleep(Duration::from_millis(500)).await;
            signal(&child.0, "-TERM");
            // New connections are refused from when the server has seen the signal (within
            // a few seconds even on a busy machine; the request in flight has 10 s) ...
            let c = client();
            let mut refused = false;
            for _ in 0..50 {
                let r = c
                    .get(format!("http://{addr}/healthz"))
                    .timeout(Duration::from_secs(1))
                    .send()
                    .await;
                if r.is_err() {
                    refused = true;
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            // ... but the request in flight gets its answer.
            s.write_all(&body[5..]).await.unwrap();
            let mut out = Vec::new();
            let _ = s.read_to_end(&mut out).await;
            let text = String::from_utf8_lossy(&out);
            assert!(text.starts_with("HTTP/1.1 200"), "{text}");
            assert!(text.contains(r#""r:2":{"#), "{text}");
            let (status, log) = terminate_wait(child).await;
            assert!(status.success(), "{status:?}\n{log}");
            assert!(log.contains("shutting down"), "{log}");
            assert!(
                refused,
                "new connections were still served 5 s after SIGTERM"
            );
        })
        .await
    }

    /// The hash of `en{v}.fms` in the fixture's directory.
    fn fms_hash(fx: &Fixture, v: i64) -> fms::ContentHash {
        Snapshot::open(fx.dir.path().join(format!("en{v}.fms")))
            .unwrap()
            .hash()
    }
}
