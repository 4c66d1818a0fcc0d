//! An embeddable HTTP API over a [`Store`] (feature `http`): an [`axum::Router`] that
//! serves records as JSON, written straight from the mapped snapshot into the response
//! body.
//!
//! | route | answer |
//! |---|---|
//! | `GET /v1/{locale}/records/{id}` | the record as a JSON object; `?fields=a,b` keeps only those fields (in that order; absent ones are left out; the query string is decoded like a form, invalid UTF-8 lossily) |
//! | `POST /v1/{locale}/records:batch` | body: a JSON array of ids (at most [`Config::max_batch`]); answer: `{id: record or null}` in request order, duplicates once; `?fields=` as above |
//! | `GET /v1/versions` | `{"default_locale": .., "locales": {locale: content hash}}` |
//! | `GET /healthz` | 200 `{"status":"ok",..}` once the default locale has a tree, 503 before |
//! | `GET /metrics` | Prometheus text: requests and latencies by route, versions served, bytes mapped, RSS, heap (if [`Config::heap_bytes`] is set) |
//!
//! **Versions and caching.** A request pins one tree (`store.current`) and reads only it. Every
//! answer from a tree carries `ETag: "<content hash>"` of that tree (for `/v1/versions`, a hash
//! of the whole mapping; `/healthz` the default tree's); a `GET` whose `If-None-Match` names it
//! gets `304 Not Modified` with no body, so HTTP caches and CDNs in front revalidate for free. A
//! new content version changes the hash, hence the ETag. `/metrics` has none
//! (`Cache-Control: no-store`). `POST` batches carry the ETag but are never answered 304 (RFC
//! 9110 gives conditional `POST`s a 412, which no client wants here).
//!
//! **Locales.** A locale the store publishes is served its own tree; an overlay reads through
//! to its base for records and fields it does not change, so an untranslated record is
//! served in the default locale's words. A locale *without* a tree of its own is "unknown":
//! by default a 404 (`unknown_locale`), so that made-up locales cannot fill a CDN with copies
//! of the default tree under endless URLs. [`UnknownLocale::DefaultLocale`] serves such
//! locales the default locale's tree instead (exactly [`Store::current`]), with
//! `Content-Language` naming the default locale. Locales are 1–35 bytes of ASCII letters,
//! digits, `-` and `_`; anything else is a 400.
//!
//! **Errors.** Every error is a JSON body `{"error": code, "message": text}` with a 4xx/5xx
//! status, never a panic (a handler panic would be caught and answered 500 all the same):
//!
//! | status | `error` | when |
//! |---|---|---|
//! | 400 | `bad_path`, `bad_query`, `bad_locale`, `bad_json`, `bad_batch`, `id_too_long` (batch), `too_many_fields` | malformed input: percent-encoding that is not UTF-8, a body that is not a JSON array of strings, ... |
//! | 404 | `not_found`, `unknown_locale`, `no_route` | no such record / locale / route |
//! | 405 | `method_not_allowed` | e.g. `GET` on the batch route |
//! | 408 | (empty body) | the request took longer than [`Config::timeout`] |
//! | 413 | `body_too_large`, `batch_too_large` | body over [`Config::max_body_bytes`], more than [`Config::max_batch`] ids |
//! | 414 | `id_too_long` | an id over [`Config::max_id_bytes`] in the path |
//! | 500 | `internal` | a record the snapshot cannot encode (a corrupt file) |
//! | 503 | `not_ready` | nothing published for the default locale yet |
//!
//! Limits, timeouts, tracing and panic catching are tower / tower-http layers around the
//! routes, not code in each handler.
//!
//! **Over the memcached tier** (features `http` and `remote`): `remote_router` serves the
//! same routes from a `RemoteStore` (`fms::remote`); its docs say what differs.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! let store = Arc::new(fms::Store::open_manifest("trees/manifest.json")?);
//! let app = axum::Router::new()
//!     .route("/", axum::routing::get(|| async { "my frontend" }))
//!     .merge(fms::http::router(store.clone()));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! axum::serve(listener, app).await?;
//! # Ok(()) }
//! ```

mod metrics;
mod records;
#[cfg(feature = "remote")]
mod remote;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::format::ContentHash;
use crate::read::Snapshot;
use crate::store::Store;

pub use metrics::Metrics;
#[cfg(feature = "remote")]
pub use remote::{remote_router, remote_router_with};

/// What a locale without a tree of its own gets (see the module docs, "Locales").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum UnknownLocale {
    /// 404 `unknown_locale` (the default).
    #[default]
    NotFound,
    /// The default locale's tree, like [`Store::current`].
    DefaultLocale,
}

/// Limits and policies of the router. `Config::default()` holds the documented defaults;
/// change fields with struct update syntax:
///
/// ```
/// let config = fms::http::Config { max_batch: 100, ..Default::default() };
/// # let _ = config;
/// ```
#[derive(Clone, Debug)]
pub struct Config {
    /// Most ids in one batch request (default 1,000); more is a 413 `batch_too_large`.
    pub max_batch: usize,
    /// Longest id, in bytes after percent-decoding (default 512): a 414 in a path, a 400 in
    /// a batch. Ids are looked up as they are, with any other characters.
    pub max_id_bytes: usize,
    /// Most fields one `?fields=` may name (default 64); more is a 400.
    pub max_fields: usize,
    /// Largest request body (default 1 MiB); larger is a 413 `body_too_large`, refused
    /// before it is read whole.
    pub max_body_bytes: usize,
    /// How long one request may take (default 10 s); then a 408.
    pub timeout: Duration,
    /// What a locale without a tree of its own gets.
    pub unknown_locale: UnknownLocale,
    /// Live heap bytes of the process, if the embedder counts them (a counting global
    /// allocator, as `fms serve` has); reported as `fms_heap_bytes` by `/metrics`.
    pub heap_bytes: Option<fn() -> usize>,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            max_batch: 1000,
            max_id_bytes: 512,
            max_fields: 64,
            max_body_bytes: 1 << 20,
            timeout: Duration::from_secs(10),
            unknown_locale: UnknownLocale::NotFound,
            heap_bytes: None,
        }
    }
}

/// What every handler shares.
struct Shared {
    store: Arc<Store>,
    config: Config,
    metrics: Arc<Metrics>,
}

/// The fms routes over `store` with the default [`Config`]: `Router<()>`, ready to
/// [`merge`](Router::merge) into an app's router or to serve alone. Publishing a new version
/// in the store (`publish`, `reload`) changes what the next request reads; requests already
/// running finish on the version they pinned.
pub fn router(store: Arc<Store>) -> Router {
    router_with(store, Config::default())
}

/// [`router`] with explicit limits and policies.
pub fn router_with(store: Arc<Store>, config: Config) -> Router {
    router_with_metrics(store, config, Arc::new(Metrics::new()))
}

/// [`router_with`], counting into `metrics` (for an embedder that reads them too, or
/// that builds the router again after a change of configuration and keeps the counts).
pub fn router_with_metrics(store: Arc<Store>, config: Config, metrics: Arc<Metrics>) -> Router {
    let timeout = config.timeout;
    let body_limit = config.max_body_bytes;
    let shared = Arc::new(Shared {
        store,
        config,
        metrics: metrics.clone(),
    });
    let routes = Router::new()
        .route("/v1/{locale}/records/{id}", get(records::get_record))
        .route("/v1/{locale}/records:batch", post(records::batch))
        .route("/v1/versions", get(versions))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics::render))
        .with_state(shared);
    serve_layers(routes, timeout, body_limit, metrics)
}

/// The fallbacks and the tower layers every router of this module gets, around `routes`.
fn serve_layers(
    routes: Router,
    timeout: Duration,
    body_limit: usize,
    metrics: Arc<Metrics>,
) -> Router {
    routes
        .fallback(|| async { error(StatusCode::NOT_FOUND, "no_route", "no such route") })
        .method_not_allowed_fallback(|| async {
            error(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this route does not take that method",
            )
        })
        // Innermost first: metrics see every answer below them, the timeout's 408 and a
        // caught panic's 500 included.
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            timeout,
        ))
        .layer(CatchPanicLayer::custom(|_| {
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "the request failed",
            )
        }))
        .layer(axum::middleware::from_fn_with_state(
            metrics,
            metrics::track,
        ))
        .layer(TraceLayer::new_for_http())
}

/// An error answer: a status and a JSON body `{"error": code, "message": message}`.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    pub(crate) fn new(
        status: StatusCode,
        code: &'static str,
        message: impl Into<String>,
    ) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        #[derive(serde::Serialize)]
        struct Body<'a> {
            error: &'a str,
            message: &'a str,
        }
        let body = serde_json::to_vec(&Body {
            error: self.code,
            message: &self.message,
        })
        .unwrap_or_default();
        (self.status, [(header::CONTENT_TYPE, JSON)], body).into_response()
    }
}

/// A JSON error answer: `{"error": code, "message": message}`.
pub(crate) fn error(
    status: StatusCode,
    code: &'static str,
    message: impl Into<String>,
) -> Response {
    ApiError::new(status, code, message).into_response()
}

const JSON: HeaderValue = HeaderValue::from_static("application/json");

/// Whether `locale` is well formed: 1–35 bytes of ASCII letters, digits, `-`, `_`.
fn valid_locale(locale: &str) -> bool {
    (1..=35).contains(&locale.len())
        && locale
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The tree a request for `locale` reads (pinned for the whole request), with the locale
/// whose tree it is when that is not `locale` (a fallback); or the error answer.
fn resolve(shared: &Shared, locale: &str) -> Result<(Arc<Snapshot>, Option<String>), ApiError> {
    if !valid_locale(locale) {
        return Err(bad_locale());
    }
    let store = &shared.store;
    if let Some(tree) = store.current_exact(locale) {
        return Ok((tree, None));
    }
    match (shared.config.unknown_locale, store.current(locale)) {
        (_, None) => Err(not_ready()),
        (UnknownLocale::NotFound, Some(_)) => Err(unknown_locale(locale)),
        (UnknownLocale::DefaultLocale, Some(tree)) => {
            Ok((tree, Some(store.default_locale().to_owned())))
        }
    }
}

/// The 400 of a malformed locale.
fn bad_locale() -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "bad_locale",
        "a locale is 1-35 ASCII letters, digits, '-' or '_'",
    )
}

/// The 503 of a store that serves nothing for its default locale yet.
fn not_ready() -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "not_ready",
        "no tree is published for the default locale yet",
    )
}

/// The 404 of a locale without a tree of its own ([`UnknownLocale::NotFound`]).
fn unknown_locale(locale: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "unknown_locale",
        format!("no tree for locale {locale:?}"),
    )
}

/// `"<hex>"`: the ETag of content `hash`.
fn etag(hash: ContentHash) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{hash}\"")).unwrap_or(HeaderValue::from_static("\"\""))
}

/// Whether `If-None-Match` in `headers` matches `tag` (weak comparison, as RFC 9110 says
/// for `If-None-Match`; `*` matches anything). Malformed headers match nothing.
fn not_modified(headers: &HeaderMap, tag: &HeaderValue) -> bool {
    let tag = tag.as_bytes();
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .any(|t| t == "*" || t.strip_prefix("W/").unwrap_or(t).as_bytes() == tag)
}

/// A 304 carrying the ETag.
fn not_modified_response(tag: HeaderValue) -> Response {
    (StatusCode::NOT_MODIFIED, [(header::ETAG, tag)]).into_response()
}

async fn versions(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let store = &shared.store;
    let locales = store
        .published()
        .into_iter()
        .map(|(l, h)| (l, h.to_string()))
        .collect();
    versions_response(&headers, store.default_locale(), locales)
}

/// `/v1/versions`: `{"default_locale": .., "locales": {locale: hash}}`, tagged with a hash
/// of the body (and answered 304 when `If-None-Match` names it).
fn versions_response(
    headers: &HeaderMap,
    default_locale: &str,
    locales: std::collections::BTreeMap<String, String>,
) -> Response {
    #[derive(serde::Serialize)]
    struct Body<'a> {
        default_locale: &'a str,
        locales: std::collections::BTreeMap<String, String>,
    }
    let body = serde_json::to_vec(&Body {
        default_locale,
        locales,
    })
    .unwrap_or_default();
    let digest = xxhash_rust::xxh3::xxh3_128(&body).to_le_bytes();
    let tag = etag(ContentHash(digest));
    if not_modified(headers, &tag) {
        return not_modified_response(tag);
    }
    ([(header::CONTENT_TYPE, JSON), (header::ETAG, tag)], body).into_response()
}

async fn healthz(State(shared): State<Arc<Shared>>) -> Response {
    let store = &shared.store;
    match store.current_exact(store.default_locale()) {
        Some(tree) => healthy(store.published().len(), tree.len(), tree.hash()),
        None => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_ready",
            "no tree is published for the default locale yet",
        ),
    }
}

/// `/healthz`'s 200: how many locales are published, the default tree's records, and its
/// hash as the ETag.
fn healthy(locales: usize, default_records: usize, default_hash: ContentHash) -> Response {
    let body = format!(
        "{{\"status\":\"ok\",\"locales\":{locales},\"default_records\":{default_records}}}"
    );
    (
        [
            (header::CONTENT_TYPE, JSON),
            (header::ETAG, etag(default_hash)),
        ],
        body,
    )
        .into_response()
}
