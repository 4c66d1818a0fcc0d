//! Request counters and latency histograms (lock-free atomics, one set per route), and
//! `/metrics` in the Prometheus text format.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::Shared;

/// The routes counted apart; anything else (no route matched) is `other`.
const ROUTES: [&str; 6] = [
    "/v1/{locale}/records/{id}",
    "/v1/{locale}/records:batch",
    "/v1/versions",
    "/healthz",
    "/metrics",
    "other",
];

/// Status classes counted apart.
const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// Upper bounds of the latency buckets, in seconds (then `+Inf`).
const BUCKETS: [f64; 14] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
    5.0,
];

/// Counts of one route.
#[derive(Default)]
struct RouteStats {
    by_class: [AtomicU64; CLASSES.len()],
    /// Non-cumulative bucket counts; the last one is `+Inf`.
    buckets: [AtomicU64; BUCKETS.len() + 1],
    nanos: AtomicU64,
}

/// What the router counts: requests by route and status class, and their latencies. Shared
/// by every request with relaxed atomic adds (no lock). Create one to pass to
/// [`router_with_metrics`](super::router_with_metrics) if the embedder wants the counts too.
pub struct Metrics {
    routes: [RouteStats; ROUTES.len()],
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::new()
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("requests", &self.requests())
            .finish()
    }
}

impl Metrics {
    /// All counts zero.
    pub fn new() -> Metrics {
        Metrics {
            routes: Default::default(),
        }
    }

    /// Requests answered so far, all routes and statuses together.
    pub fn requests(&self) -> u64 {
        self.routes
            .iter()
            .flat_map(|r| r.by_class.iter())
            .map(|c| c.load(Relaxed))
            .sum()
    }

    fn record(&self, route: usize, status: u16, secs: f64, nanos: u64) {
        let r = &self.routes[route.min(ROUTES.len() - 1)];
        let class = usize::from(status / 100).saturating_sub(1).min(4);
        r.by_class[class].fetch_add(1, Relaxed);
        let bucket = BUCKETS
            .iter()
            .position(|&b| secs <= b)
            .unwrap_or(BUCKETS.len());
        r.buckets[bucket].fetch_add(1, Relaxed);
        r.nanos.fetch_add(nanos, Relaxed);
    }

    /// The request part of `/metrics`.
    pub(super) fn write_requests(&self, out: &mut String) {
        out.push_str(
            "# HELP fms_http_requests_total Requests answered, by route and status class.\n",
        );
        out.push_str("# TYPE fms_http_requests_total counter\n");
        for (route, r) in ROUTES.iter().zip(&self.routes) {
            for (class, c) in CLASSES.iter().zip(&r.by_class) {
                let n = c.load(Relaxed);
                if n > 0 {
                    let _ = writeln!(
                        out,
                        "fms_http_requests_total{{route=\"{route}\",status=\"{class}\"}} {n}"
                    );
                }
            }
        }
        out.push_str(
            "# HELP fms_http_request_duration_seconds Time from the request to its response head.\n",
        );
        out.push_str("# TYPE fms_http_request_duration_seconds histogram\n");
        for (route, r) in ROUTES.iter().zip(&self.routes) {
            let mut cumulative = 0;
            for (i, b) in r.buckets.iter().enumerate() {
                cumulative += b.load(Relaxed);
                let le = BUCKETS.get(i).map_or("+Inf".to_owned(), |b| b.to_string());
                let _ = writeln!(
                    out,
                    "fms_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{le}\"}} {cumulative}"
                );
            }
            let _ = writeln!(
                out,
                "fms_http_request_duration_seconds_sum{{route=\"{route}\"}} {}",
                r.nanos.load(Relaxed) as f64 / 1e9
            );
            let _ = writeln!(
                out,
                "fms_http_request_duration_seconds_count{{route=\"{route}\"}} {cumulative}"
            );
        }
    }
}

/// Middleware: times every request and counts it under its route and status.
pub(super) async fn track(
    State(metrics): State<Arc<Metrics>>,
    req: Request,
    next: Next,
) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .and_then(|m| ROUTES.iter().position(|r| *r == m.as_str()))
        .unwrap_or(ROUTES.len() - 1);
    let start = Instant::now();
    let resp = next.run(req).await;
    let took = start.elapsed();
    metrics.record(
        route,
        resp.status().as_u16(),
        took.as_secs_f64(),
        took.as_nanos().min(u128::from(u64::MAX)) as u64,
    );
    resp
}

/// A Prometheus label value: `\`, `"` and newlines escaped.
pub(super) fn label(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Resident set size of this process in bytes (Linux; `None` elsewhere).
fn rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// `GET /metrics`.
pub(super) async fn render(State(shared): State<Arc<Shared>>) -> Response {
    let mut out = String::with_capacity(8 * 1024);
    shared.metrics.write_requests(&mut out);
    let store = &shared.store;
    out.push_str("# HELP fms_served_version The content hash each locale serves (value 1).\n");
    out.push_str("# TYPE fms_served_version gauge\n");
    for (locale, hash) in store.published() {
        let _ = writeln!(
            out,
            "fms_served_version{{locale=\"{}\",hash=\"{hash}\"}} 1",
            label(&locale)
        );
    }
    let hashes = store.loaded_hashes();
    let mapped: u64 = hashes
        .iter()
        .filter_map(|h| store.get(*h))
        .map(|s| s.as_bytes().len() as u64)
        .sum();
    let _ = write!(
        out,
        "# HELP fms_loaded_snapshots Snapshots loaded (served, bases, or not yet evicted).\n\
         # TYPE fms_loaded_snapshots gauge\nfms_loaded_snapshots {}\n\
         # HELP fms_mapped_bytes Bytes of the loaded snapshots' files (mapped, not necessarily resident).\n\
         # TYPE fms_mapped_bytes gauge\nfms_mapped_bytes {mapped}\n",
        hashes.len()
    );
    process_gauges(&mut out, shared.config.heap_bytes);
    text_response(out)
}

/// RSS, and the heap if the config can tell it.
pub(super) fn process_gauges(out: &mut String, heap_bytes: Option<fn() -> usize>) {
    if let Some(rss) = rss_bytes() {
        let _ = write!(
            out,
            "# HELP process_resident_memory_bytes Resident set size.\n\
             # TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes {rss}\n"
        );
    }
    if let Some(heap) = heap_bytes {
        let _ = write!(
            out,
            "# HELP fms_heap_bytes Live heap bytes of the process.\n\
             # TYPE fms_heap_bytes gauge\nfms_heap_bytes {}\n",
            heap()
        );
    }
}

/// The Prometheus text `out`, never cached.
pub(super) fn text_response(out: String) -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        out,
    )
        .into_response()
}
