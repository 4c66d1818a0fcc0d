//! The HTTP load benchmark's servers (driven by `scripts/http_load.sh` with `wrk`): the same
//! trees served over the same routes either by fms (`fms::http::router` over a `Store`) or
//! by a peer holding every locale's tree as `HashMap<String, serde_json::Value>`.
//!
//! ```sh
//! http_bench prepare DIR                 # after `fms demo --dir DIR`: manifest-v1/-v2.json, ids.txt
//! http_bench fms  DIR/manifest.json 127.0.0.1:8181
//! http_bench peer DIR/manifest.json 127.0.0.1:8182
//! curl -X POST 127.0.0.1:8181/admin/reload   # re-read the manifest: the content-update swap
//! ```
//!
//! The peer answers `GET /v1/{locale}/records/{id}` and `POST /v1/{locale}/records:batch`
//! like fms (locale check, ETag = the tree's content hash, `If-None-Match`, JSON errors,
//! duplicates once) under the same tower-http layers (body limit, timeout, panic catcher,
//! tracing), and reloads the same way: on `POST /admin/reload` it reads the manifest and
//! builds a map for every locale whose snapshot changed, then swaps one pointer. Its maps
//! are built from the snapshots (`serde_json::to_value` of every record of the merged tree):
//! the same data, held the way a dict-based server holds it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path as UrlPath, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use fms::{ContentHash, Manifest, Store};
use serde_json::Value;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

/// One locale's tree as the peer holds it.
struct Tree {
    hash: ContentHash,
    etag: HeaderValue,
    records: HashMap<String, Value>,
}

/// The peer's state: locale -> tree; one pointer swapped per reload.
struct Peer {
    trees: ArcSwap<HashMap<String, Arc<Tree>>>,
    manifest: PathBuf,
    reloading: Mutex<()>,
}

const MAX_BATCH: usize = 1000;
const MAX_ID: usize = 512;

fn error(status: StatusCode, code: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        format!("{{\"error\":\"{code}\"}}"),
    )
        .into_response()
}

fn valid_locale(l: &str) -> bool {
    (1..=35).contains(&l.len())
        && l.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn tree_of(peer: &Peer, locale: &str) -> Result<Arc<Tree>, (StatusCode, &'static str)> {
    if !valid_locale(locale) {
        return Err((StatusCode::BAD_REQUEST, "bad_locale"));
    }
    peer.trees
        .load()
        .get(locale)
        .cloned()
        .ok_or((StatusCode::NOT_FOUND, "unknown_locale"))
}

fn json(body: Vec<u8>, etag: HeaderValue) -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (header::ETAG, etag),
        ],
        body,
    )
        .into_response()
}

async fn peer_get(
    State(peer): State<Arc<Peer>>,
    UrlPath((locale, id)): UrlPath<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if id.len() > MAX_ID {
        return error(StatusCode::URI_TOO_LONG, "id_too_long");
    }
    let tree = match tree_of(&peer, &locale) {
        Ok(t) => t,
        Err((status, code)) => return error(status, code),
    };
    let Some(rec) = tree.records.get(&id) else {
        return error(StatusCode::NOT_FOUND, "not_found");
    };
    if headers
        .get(header::IF_NONE_MATCH)
        .is_some_and(|v| v.as_bytes() == tree.etag.as_bytes())
    {
        return (
            StatusCode::NOT_MODIFIED,
            [(header::ETAG, tree.etag.clone())],
        )
            .into_response();
    }
    let mut body = Vec::with_capacity(512);
    if serde_json::to_writer(&mut body, rec).is_err() {
        return error(StatusCode::INTERNAL_SERVER_ERROR, "internal");
    }
    json(body, tree.etag.clone())
}

async fn peer_batch(
    State(peer): State<Arc<Peer>>,
    UrlPath(locale): UrlPath<String>,
    body: Bytes,
) -> Response {
    let ids: Vec<std::borrow::Cow<'_, str>> = match serde_json::from_slice::<Vec<Id<'_>>>(&body) {
        Ok(ids) => ids.into_iter().map(|i| i.0).collect(),
        Err(_) => return error(StatusCode::BAD_REQUEST, "bad_json"),
    };
    if ids.len() > MAX_BATCH {
        return error(StatusCode::PAYLOAD_TOO_LARGE, "batch_too_large");
    }
    if ids.iter().any(|i| i.len() > MAX_ID) {
        return error(StatusCode::BAD_REQUEST, "id_too_long");
    }
    let tree = match tree_of(&peer, &locale) {
        Ok(t) => t,
        Err((status, code)) => return error(status, code),
    };
    let mut seen = std::collections::HashSet::with_capacity(ids.len());
    // {id: record | null}, written by hand (a serde_json::Map would clone the values).
    let mut body = Vec::with_capacity(1024 * ids.len().min(64));
    body.push(b'{');
    for id in &ids {
        if !seen.insert(&**id) {
            continue;
        }
        if body.len() > 1 {
            body.push(b',');
        }
        let _ = serde_json::to_writer(&mut body, &**id);
        body.push(b':');
        let _ = serde_json::to_writer(&mut body, &tree.records.get(&**id));
    }
    body.push(b'}');
    json(body, tree.etag.clone())
}

#[derive(serde::Deserialize)]
struct Id<'a>(#[serde(borrow)] std::borrow::Cow<'a, str>);

/// Reads the manifest and builds a map for every locale whose snapshot changed.
fn peer_reload(peer: &Peer) -> Result<String, String> {
    let _one = peer.reloading.lock().unwrap_or_else(|e| e.into_inner());
    let t = Instant::now();
    let store = Store::open_manifest(&peer.manifest).map_err(|e| e.to_string())?;
    let old = peer.trees.load_full();
    let mut next = HashMap::new();
    let mut built = Vec::new();
    for (locale, hash) in store.published() {
        if let Some(tree) = old.get(&locale).filter(|t| t.hash == hash) {
            next.insert(locale, tree.clone());
            continue;
        }
        let snap = store.current_exact(&locale).ok_or("vanished")?;
        let mut records = HashMap::with_capacity(snap.len());
        for (id, rec) in snap.iter() {
            let v = serde_json::to_value(rec).map_err(|e| format!("{locale} {id}: {e}"))?;
            records.insert(id.to_owned(), v);
        }
        built.push(locale.clone());
        next.insert(
            locale,
            Arc::new(Tree {
                hash,
                etag: HeaderValue::from_str(&format!("\"{hash}\"")).unwrap(),
                records,
            }),
        );
    }
    peer.trees.store(Arc::new(next));
    drop(old);
    Ok(format!(
        "built {} trees ({}) in {:.2}s",
        built.len(),
        built.join(","),
        t.elapsed().as_secs_f64()
    ))
}

fn layers(router: Router) -> Router {
    router
        .layer(DefaultBodyLimit::max(1 << 20))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(10),
        ))
        .layer(CatchPanicLayer::new())
        .layer(TraceLayer::new_for_http())
}

fn ok_or_500(r: Result<String, String>) -> Response {
    match r {
        Ok(m) => {
            eprintln!("reload: {m}");
            (StatusCode::OK, m).into_response()
        }
        Err(e) => {
            eprintln!("reload failed: {e}");
            (StatusCode::INTERNAL_SERVER_ERROR, e).into_response()
        }
    }
}

/// `prepare DIR`: after `fms demo --dir DIR` (whose manifest ends on the updated en),
/// writes `manifest-v1.json` (en.fms), `manifest-v2.json` (en-v2.fms over en.fms),
/// `manifest.json` = v1, and `ids.txt` (en's ids).
fn prepare(dir: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let m = Manifest::read(dir.join("manifest.json"))?;
    let mut v1 = m.clone();
    v1.bases.clear();
    v1.locales.insert("en".into(), "en.fms".into());
    let mut v2 = m;
    v2.locales.insert("en".into(), "en-v2.fms".into());
    v2.bases = vec!["en.fms".into()];
    v1.write(dir.join("manifest-v1.json"))?;
    v2.write(dir.join("manifest-v2.json"))?;
    v1.write(dir.join("manifest.json"))?;
    // Ids in both versions of en, so that a request that lands after the swap finds its
    // record too (the update removes 0.1% of them): any non-2xx is then a real error.
    let v2_store = Store::open_manifest(dir.join("manifest-v2.json"))?;
    let en2 = v2_store.current("en").ok_or("manifest-v2 serves no en")?;
    let en = fms::Snapshot::open(dir.join("en.fms"))?;
    let mut ids = String::new();
    let mut kept = 0;
    for id in en.ids().filter(|id| en2.contains(id)) {
        ids.push_str(id);
        ids.push('\n');
        kept += 1;
    }
    std::fs::write(dir.join("ids.txt"), ids)?;
    let locales: Vec<String> = v1.locales.keys().cloned().collect();
    std::fs::write(dir.join("locales.txt"), locales.join("\n") + "\n")?;
    println!(
        "prepared {}: {kept} of en's {} ids (those in both versions), locales {locales:?}",
        dir.display(),
        en.len()
    );
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: http_bench prepare DIR | http_bench fms|peer MANIFEST ADDR";
    let Some(mode) = args.first() else {
        return Err(usage.into());
    };
    if mode == "prepare" {
        return prepare(Path::new(args.get(1).ok_or(usage)?));
    }
    let manifest = PathBuf::from(args.get(1).ok_or(usage)?);
    let addr = args.get(2).ok_or(usage)?;
    let t = Instant::now();
    let app = match mode.as_str() {
        "fms" => {
            let store = Arc::new(Store::open_manifest(&manifest)?);
            let (s, m) = (store.clone(), manifest.clone());
            let admin = Router::new().route(
                "/admin/reload",
                post(move || {
                    let (s, m) = (s.clone(), m.clone());
                    async move {
                        ok_or_500(
                            tokio::task::spawn_blocking(move || {
                                let t = Instant::now();
                                let served = s.reload(&m).map_err(|e| e.to_string())?;
                                let evicted = s.evict_unpublished();
                                Ok(format!(
                                    "{} locales, {evicted} evicted, in {:.3}s",
                                    served.len(),
                                    t.elapsed().as_secs_f64()
                                ))
                            })
                            .await
                            .unwrap_or_else(|e| Err(e.to_string())),
                        )
                    }
                }),
            );
            fms::http::router(store).merge(admin)
        }
        "peer" => {
            let peer = Arc::new(Peer {
                trees: ArcSwap::from_pointee(HashMap::new()),
                manifest: manifest.clone(),
                reloading: Mutex::new(()),
            });
            eprintln!("peer: {}", peer_reload(&peer)?);
            let p = peer.clone();
            layers(
                Router::new()
                    .route("/v1/{locale}/records/{id}", get(peer_get))
                    .route("/v1/{locale}/records:batch", post(peer_batch))
                    .route("/healthz", get(|| async { "ok" }))
                    .with_state(peer),
            )
            .route(
                "/admin/reload",
                post(move || {
                    let p = p.clone();
                    async move {
                        ok_or_500(
                            tokio::task::spawn_blocking(move || peer_reload(&p))
                                .await
                                .unwrap_or_else(|e| Err(e.to_string())),
                        )
                    }
                }),
            )
        }
        _ => return Err(usage.into()),
    };
    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!(
        "http_bench {mode}: ready on http://{} after {:.2}s",
        listener.local_addr()?,
        t.elapsed().as_secs_f64()
    );
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
