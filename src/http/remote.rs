//! The same routes over a [`RemoteStore`] (features `http` and `remote`): records read
//! through the memcached tier instead of from mapped trees.
//!
//! What differs from [`super::router`]:
//!
//! - **Versions.** A request pins its locale's version ([`RemoteStore::pin`]) once and reads
//!   only it; the ETag is that version's manifest hash (which changes with every push that
//!   changes the locale's content).
//! - **Locales.** The published locales are those of the origin's durable pointers
//!   ([`RemoteStore::published`], re-read at most once per [`RemoteConfig::fresh`]); any
//!   other locale is unknown (404, or the default locale's records under
//!   [`UnknownLocale::DefaultLocale`]). Checking first keeps made-up locales from costing a
//!   memcached round trip, or a pin held in memory, each.
//! - **Blocking work.** The tier's client is blocking with its own deadlines
//!   ([`RemoteConfig::deadline`] for a whole `get_many`), so each request's reads run on
//!   tokio's blocking pool ([`tokio::task::spawn_blocking`]), at most [`MAX_BLOCKING`] at
//!   once: beyond that a request gets a 503 `busy` at once instead of queueing behind a tier
//!   that hangs. Malformed ids, locales, queries and bodies are refused before that.
//! - **Errors.** memcached or the origin's files unreachable or unreadable: 503
//!   `unavailable` (memcached alone being down is not an error: records come from the
//!   origin); something read that is unusable (a corrupt origin file): 500 `internal`. The
//!   answer has a generic message; the cause, with server addresses and origin paths, goes
//!   to the log (`tracing`).
//! - **304s.** `If-None-Match` naming the pinned version answers 304 without fetching the
//!   record when the version's manifest names the id exactly; otherwise after the fetch (a
//!   404 still comes first).
//! - **`/metrics`** adds the tier's counters (`fms_remote_*_total`: hot-set, cache and
//!   memcached hits, misses, corrupt items, origin reads, round trips, failed reads of the
//!   durable pointers) and the bytes in the in-process cache; the versions served are the
//!   pinned ones of the published locales.
//! - **`/v1/versions`** pins every published locale; if one cannot be pinned the answer is
//!   that error, not a partial list.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use fms::remote::{Cluster, ClusterConfig, RemoteConfig, RemoteStore};
//! let cluster = Arc::new(Cluster::new(ClusterConfig::new(&["127.0.0.1:11211".to_owned()]))?);
//! let store = Arc::new(RemoteStore::new(cluster, "origin/", RemoteConfig::default())?);
//! let app = fms::http::remote_router(store);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! axum::serve(listener, app).await?;
//! # Ok(()) }
//! ```
//!
//! [`RemoteConfig::fresh`]: crate::remote::RemoteConfig::fresh
//! [`RemoteConfig::deadline`]: crate::remote::RemoteConfig::deadline

use std::borrow::Cow;
use std::fmt::Write as _;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};

use super::metrics::{self, Metrics};
use super::records::{
    self, FieldsQuery, bad_path, batch_body, batch_ids, check_id, encode_failed, json_from_tree,
    not_found, write_batch, write_view,
};
use super::{
    ApiError, Config, UnknownLocale, etag, healthy, not_modified, not_modified_response,
    valid_locale, versions_response,
};
use crate::remote::store::Pinned;
use crate::remote::{RemoteError, RemoteStore};

/// The routes of [`super::router`] over a [`RemoteStore`], with the default [`Config`].
pub fn remote_router(store: Arc<RemoteStore>) -> Router {
    remote_router_with(store, Config::default(), Arc::new(Metrics::new()))
}

/// [`remote_router`] with a [`Config`], counting requests into `metrics`.
pub fn remote_router_with(
    store: Arc<RemoteStore>,
    config: Config,
    metrics: Arc<Metrics>,
) -> Router {
    let (timeout, body_limit) = (config.timeout, config.max_body_bytes);
    let shared = Arc::new(Remote {
        store,
        config,
        metrics: metrics.clone(),
        permits: Arc::new(tokio::sync::Semaphore::new(MAX_BLOCKING)),
    });
    let routes = Router::new()
        .route("/v1/{locale}/records/{id}", get(get_record))
        .route("/v1/{locale}/records:batch", post(batch))
        .route("/v1/versions", get(versions))
        .route("/healthz", get(healthz))
        .route("/metrics", get(render))
        .with_state(shared);
    super::serve_layers(routes, timeout, body_limit, metrics)
}

/// The state of the remote routes.
struct Remote {
    store: Arc<RemoteStore>,
    config: Config,
    metrics: Arc<Metrics>,
    permits: Arc<tokio::sync::Semaphore>,
}

/// The API error of a tier that could not answer: 503 `unavailable` when memcached or the
/// origin's files cannot be reached or read (transient), 500 `internal` when what was read
/// is unusable (a corrupt file). The client gets the code and a generic message; the log
/// gets the cause (server addresses and origin paths stay out of answers).
fn tier_error(e: RemoteError) -> ApiError {
    let transient = matches!(
        e,
        RemoteError::Unavailable { .. }
            | RemoteError::Io { .. }
            | RemoteError::Protocol { .. }
            | RemoteError::Fms(crate::Error::Io { .. })
    );
    if transient {
        tracing::warn!("fms http: the memcached tier could not answer: {e}");
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the records could not be read now (memcached and the origin did not answer); retry later",
        )
    } else {
        tracing::error!("fms http: the memcached tier gave an unusable answer: {e}");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the records could not be read (the server's log says why)",
        )
    }
}

/// Most requests whose reads may run on the blocking pool at once; more get a 503 `busy`
/// at once instead of queueing behind a tier that hangs (the tier's own deadlines bound a
/// read, but a stuck origin file system may not).
pub const MAX_BLOCKING: usize = 256;

/// Runs `f` (reads through the tier) on the blocking pool, under [`MAX_BLOCKING`].
async fn blocking(
    shared: &Arc<Remote>,
    f: impl FnOnce() -> Result<Response, ApiError> + Send + 'static,
) -> Result<Response, ApiError> {
    let Ok(permit) = shared.permits.clone().try_acquire_owned() else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "busy",
            format!(
                "{MAX_BLOCKING} requests are already waiting on the memcached tier; retry later"
            ),
        ));
    };
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        f()
    })
    .await
    .unwrap_or_else(|e| {
        tracing::error!("fms http: a request's reads failed: {e}");
        Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the request failed",
        ))
    })
}

/// A 400 for a malformed locale, checked before any blocking work.
fn check_locale(locale: &str) -> Result<(), ApiError> {
    if valid_locale(locale) {
        Ok(())
    } else {
        Err(super::bad_locale())
    }
}

/// The locale to pin for `locale` (checked by [`check_locale`]), and the
/// `Content-Language` of a fallback: as `super::resolve`, over the published locales.
/// Blocking (it may read the durable pointers).
fn resolve(shared: &Remote, locale: &str) -> Result<(String, Option<String>), ApiError> {
    let published = shared.store.published().map_err(tier_error)?;
    if published.locales.contains_key(locale) {
        return Ok((locale.to_owned(), None));
    }
    let default = &published.default_locale;
    match (
        shared.config.unknown_locale,
        published.locales.contains_key(default),
    ) {
        (_, false) => Err(super::not_ready()),
        (UnknownLocale::NotFound, true) => Err(super::unknown_locale(locale)),
        (UnknownLocale::DefaultLocale, true) => Ok((default.clone(), Some(default.clone()))),
    }
}

/// The version a request for `locale` reads ([`resolve`], then pinned), its ETag, and the
/// `Content-Language` of a fallback. Blocking.
fn pin(
    shared: &Remote,
    locale: &str,
) -> Result<(Arc<Pinned>, HeaderValue, Option<String>), ApiError> {
    let (locale, fallback) = resolve(shared, locale)?;
    let pinned = shared.store.pin(&locale).map_err(tier_error)?;
    let tag = etag(pinned.hash());
    Ok((pinned, tag, fallback))
}

/// The fields of a `?fields=`, owned (for the blocking pool).
fn owned_projection(
    config: &Config,
    query: &Result<Query<FieldsQuery>, QueryRejection>,
) -> Result<Option<Vec<String>>, ApiError> {
    Ok(records::projection(config, query)?.map(|f| f.into_iter().map(str::to_owned).collect()))
}

fn borrowed(fields: &Option<Vec<String>>) -> Option<Vec<&str>> {
    fields
        .as_ref()
        .map(|f| f.iter().map(String::as_str).collect())
}

/// `GET /v1/{locale}/records/{id}`.
async fn get_record(
    State(shared): State<Arc<Remote>>,
    path: Result<Path<(String, String)>, PathRejection>,
    query: Result<Query<FieldsQuery>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let Path((locale, id)) = path.map_err(bad_path)?;
    check_id(&shared.config, &id)?;
    let fields = owned_projection(&shared.config, &query)?;
    check_locale(&locale)?;
    let me = shared.clone();
    blocking(&shared, move || {
        let (pinned, tag, fallback) = pin(&me, &locale)?;
        // A revalidation of an id the version names exactly needs no fetch: the tag says
        // the version, and the version has the record (404 before 304 still holds).
        let revalidated = not_modified(&headers, &tag);
        if revalidated && pinned.version().entry(&id).is_some_and(|e| e.is_exact()) {
            return Ok(not_modified_response(tag));
        }
        let got = me
            .store
            .get_many_in(&pinned, &[id.as_str()])
            .map_err(tier_error)?
            .pop()
            .flatten();
        let Some(rec) = got else {
            return Ok(not_found(&id, &locale, tag));
        };
        if revalidated {
            return Ok(not_modified_response(tag));
        }
        let mut body = Vec::with_capacity(512);
        write_view(&mut body, rec.record(), borrowed(&fields).as_deref()).map_err(encode_failed)?;
        Ok(json_from_tree(body, tag, fallback))
    })
    .await
}

/// `POST /v1/{locale}/records:batch`: one `get_many` for the whole batch.
async fn batch(
    State(shared): State<Arc<Remote>>,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<FieldsQuery>, QueryRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let Path(locale) = path.map_err(bad_path)?;
    let body = batch_body(&shared.config, body)?;
    let fields = owned_projection(&shared.config, &query)?;
    let ids: Vec<String> = batch_ids(&shared.config, &body)?
        .into_iter()
        .map(Cow::into_owned)
        .collect();
    check_locale(&locale)?;
    let me = shared.clone();
    blocking(&shared, move || {
        let (pinned, tag, fallback) = pin(&me, &locale)?;
        let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
        let recs = me.store.get_many_in(&pinned, &ids).map_err(tier_error)?;
        let mut out = Vec::with_capacity(1024 * ids.len().min(64));
        let fields = borrowed(&fields);
        write_batch(&mut out, &ids, fields.as_deref(), |i, _| {
            recs.get(i)?.as_ref().map(|r| r.record())
        })
        .map_err(encode_failed)?;
        Ok(json_from_tree(out, tag, fallback))
    })
    .await
}

/// `GET /v1/versions`: the version each published locale serves (pinning each; if one
/// cannot be pinned, the answer is that error, not a partial list).
async fn versions(
    State(shared): State<Arc<Remote>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let me = shared.clone();
    blocking(&shared, move || {
        let published = me.store.published().map_err(tier_error)?;
        let mut locales = std::collections::BTreeMap::new();
        for locale in published.locales.keys() {
            let pinned = me.store.pin(locale).map_err(tier_error)?;
            locales.insert(locale.clone(), pinned.hash().to_string());
        }
        Ok(versions_response(
            &headers,
            &published.default_locale,
            locales,
        ))
    })
    .await
}

/// `GET /healthz`: 200 once the default locale's version can be pinned, 503 before.
async fn healthz(State(shared): State<Arc<Remote>>) -> Result<Response, ApiError> {
    let me = shared.clone();
    blocking(&shared, move || {
        let published = me.store.published().map_err(|e| {
            tracing::warn!("fms http: /healthz: the origin's pointers could not be read: {e}");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "not_ready",
                "the origin's pointers could not be read",
            )
        })?;
        if !published.locales.contains_key(&published.default_locale) {
            return Err(super::not_ready());
        }
        let pinned = me.store.pin(&published.default_locale).map_err(|e| {
            tracing::warn!("fms http: /healthz: the default locale could not be pinned: {e}");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "not_ready",
                "the default locale's version could not be pinned",
            )
        })?;
        let version = pinned.version();
        Ok(healthy(
            published.locales.len(),
            version.len(),
            pinned.hash(),
        ))
    })
    .await
}

/// `GET /metrics`: the request counters, the pinned versions, the tier's counters and the
/// process's memory. No I/O beyond `/proc/self/status`.
async fn render(State(shared): State<Arc<Remote>>) -> Response {
    let mut out = String::with_capacity(8 * 1024);
    shared.metrics.write_requests(&mut out);
    let store = &shared.store;
    out.push_str("# HELP fms_served_version The content hash each locale serves (value 1).\n");
    out.push_str("# TYPE fms_served_version gauge\n");
    for (locale, hash) in store.pinned_versions() {
        let _ = writeln!(
            out,
            "fms_served_version{{locale=\"{}\",hash=\"{hash}\"}} 1",
            metrics::label(&locale)
        );
    }
    let s = store.stats();
    for (name, help, v) in [
        ("requests", "get_many calls.", s.requests),
        ("ids", "Ids asked for.", s.ids),
        (
            "hot_hits",
            "Records served from the version's hot set.",
            s.hot_hits,
        ),
        (
            "cache_hits",
            "Records served from the in-process cache.",
            s.cache_hits,
        ),
        (
            "flight_waits",
            "Records served by waiting on another request's fetch.",
            s.flight_waits,
        ),
        (
            "memcached_hits",
            "Verified items read from memcached.",
            s.memcached_hits,
        ),
        (
            "memcached_misses",
            "Items memcached did not have or could not give.",
            s.memcached_misses,
        ),
        (
            "corrupt",
            "Items from memcached that failed verification (never served).",
            s.corrupt,
        ),
        (
            "origin_fetches",
            "Records read from the origin.",
            s.origin_fetches,
        ),
        (
            "lease_waits",
            "Items lost to another process's lease and polled for.",
            s.lease_waits,
        ),
        ("pointer_reads", "Version pointer reads.", s.pointer_reads),
        (
            "pointer_fallbacks",
            "Pointer reads answered by the durable pointers.",
            s.pointer_fallbacks,
        ),
        (
            "pointers_file_errors",
            "Failed reads of the durable pointers (the last list read is kept).",
            s.pointers_file_errors,
        ),
        (
            "round_trips",
            "Batches sent to memcached servers.",
            s.round_trips,
        ),
    ] {
        let _ = write!(
            out,
            "# HELP fms_remote_{name}_total {help}\n# TYPE fms_remote_{name}_total counter\n\
             fms_remote_{name}_total {v}\n"
        );
    }
    let _ = write!(
        out,
        "# HELP fms_remote_cache_bytes Bytes in the in-process record cache.\n\
         # TYPE fms_remote_cache_bytes gauge\nfms_remote_cache_bytes {}\n",
        store.cache_bytes()
    );
    metrics::process_gauges(&mut out, shared.config.heap_bytes);
    metrics::text_response(out)
}
