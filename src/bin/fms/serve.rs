//! `fms serve`: the HTTP router (`fms::http`) as a sidecar over a manifest, or over the
//! memcached tier (`--memcached ... --origin DIR`). Over a manifest it reloads when the
//! manifest changes (polled), on SIGHUP, and on `POST /admin/reload` from loopback, and logs
//! each swap; over the tier, versions follow `fms push` by themselves. Shuts down
//! gracefully on SIGTERM or ctrl-c (requests in flight finish).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::extract::{ConnectInfo, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use fms::Store;
use fms::http::{Config, UnknownLocale};

use crate::CliResult;

#[derive(clap::Args)]
#[command(after_help = "Routes: GET /v1/{locale}/records/{id}[?fields=a,b], \
POST /v1/{locale}/records:batch (a JSON array of ids), GET /v1/versions, GET /healthz, \
GET /metrics, and POST /admin/reload (from loopback addresses only). Every record answer \
carries ETag = the content hash of the tree it was read from; If-None-Match gives 304.\n\n\
Reloads: when the manifest file changes (checked every --poll-ms), on SIGHUP, or on POST \
/admin/reload; each is one atomic swap (Store::reload), all or nothing, then versions nothing \
serves are evicted. A failed reload is logged and the old versions keep serving. SIGTERM or \
ctrl-c: stop accepting, let requests in flight finish, exit 0.\n\n\
With --memcached and --origin instead of --manifest: the same routes read through the \
memcached tier (fms::http::remote_router); each request pins its locale's version, the \
ETag is that version's manifest hash, and a push shows within a second. No /admin/reload \
there, and SIGHUP only logs.")]
pub struct Args {
    /// The manifest (locale -> snapshot file; see `fms::Manifest`). Or --memcached and
    /// --origin.
    #[arg(
        long,
        required_unless_present = "memcached",
        conflicts_with = "memcached"
    )]
    manifest: Option<PathBuf>,
    #[command(flatten)]
    tier: crate::tier::TierArgs,
    /// Address to listen on (port 0: any free port; the chosen one is printed).
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    /// How often to check the manifest for changes, in milliseconds (0: never).
    #[arg(long, default_value_t = 1000)]
    poll_ms: u64,
    /// Serve locales without a tree of their own the default locale's tree (default: 404).
    #[arg(long)]
    fallback_unknown_locales: bool,
    /// Most ids in one batch request.
    #[arg(long, default_value_t = 1000)]
    max_batch: usize,
    /// Worker threads (default: one per core).
    #[arg(long)]
    threads: Option<usize>,
}

/// Reloads the store from the manifest, one at a time, logging each swap.
struct Reloader {
    store: Arc<Store>,
    manifest: PathBuf,
    /// The manifest file's identity at the last reload (mtime, length, inode).
    seen: Mutex<Option<Stamp>>,
}

type Stamp = (SystemTime, u64, u64);

fn stamp(path: &std::path::Path) -> Option<Stamp> {
    let m = std::fs::metadata(path).ok()?;
    #[cfg(unix)]
    let ino = std::os::unix::fs::MetadataExt::ino(&m);
    #[cfg(not(unix))]
    let ino = 0;
    Some((m.modified().ok()?, m.len(), ino))
}

impl Reloader {
    /// Reloads (on a blocking thread: it maps files) and logs what changed. `Err` is the
    /// reason it failed; the store then serves what it served before.
    async fn reload(self: &Arc<Self>, why: &str) -> Result<String, String> {
        let me = self.clone();
        let why = why.to_owned();
        tokio::task::spawn_blocking(move || me.reload_now(&why))
            .await
            .map_err(|e| format!("reload task failed: {e}"))?
    }

    fn reload_now(&self, why: &str) -> Result<String, String> {
        *self.seen.lock().unwrap_or_else(|e| e.into_inner()) = stamp(&self.manifest);
        let before = self.store.published();
        let result = self.store.reload(&self.manifest);
        let after = match result {
            Ok(after) => after,
            Err(e) => {
                let msg = format!("reload ({why}) failed, still serving the old versions: {e}");
                tracing::error!("{msg}");
                return Err(msg);
            }
        };
        let evicted = self.store.evict_unpublished();
        let mut changes = Vec::new();
        for (locale, hash) in &after {
            match before.get(locale) {
                Some(old) if old == hash => {}
                Some(old) => changes.push(format!("{locale} {old} -> {hash}")),
                None => changes.push(format!("{locale} + {hash}")),
            }
        }
        for locale in before.keys().filter(|l| !after.contains_key(*l)) {
            changes.push(format!("{locale} removed"));
        }
        let msg = if changes.is_empty() {
            format!("reload ({why}): no change")
        } else {
            format!(
                "reload ({why}): swapped {}; {evicted} unserved snapshots evicted",
                changes.join(", ")
            )
        };
        tracing::info!("{msg}");
        Ok(msg)
    }

    /// Polls the manifest's identity; reloads when it changes.
    async fn watch(self: Arc<Self>, every: Duration) {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let now = stamp(&self.manifest);
            let changed = {
                let seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
                now.is_some() && now != *seen
            };
            if changed {
                let _ = self.reload("manifest changed").await;
            }
        }
    }
}

/// `POST /admin/reload`: loopback peers only.
async fn admin_reload(
    State(reloader): State<Arc<Reloader>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
) -> Response {
    if !peer.ip().is_loopback() {
        tracing::warn!("refused POST /admin/reload from {peer}");
        return (
            StatusCode::FORBIDDEN,
            [("content-type", "application/json")],
            r#"{"error":"forbidden","message":"/admin/reload is accepted from loopback addresses only"}"#,
        )
            .into_response();
    }
    let (status, key, text) = match reloader.reload("admin endpoint").await {
        Ok(m) => (StatusCode::OK, "status", m),
        Err(m) => (StatusCode::INTERNAL_SERVER_ERROR, "error", m),
    };
    let body = serde_json::json!({ key: if status.is_success() { "reloaded" } else { "reload_failed" }, "message": text });
    (
        status,
        [("content-type", "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// The SIGTERM stream, registered before the port is announced (until then SIGTERM's
/// default action, an abrupt exit, would apply).
#[cfg(unix)]
type Term = Option<tokio::signal::unix::Signal>;
#[cfg(not(unix))]
type Term = Option<()>;

fn term_signal() -> Term {
    #[cfg(unix)]
    return tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    #[cfg(not(unix))]
    None
}

/// Resolves on SIGTERM or ctrl-c.
#[allow(unused_mut, unused_variables)]
async fn shutdown_signal(mut term: Term) {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async move {
        #[cfg(unix)]
        if let Some(t) = term.as_mut() {
            t.recv().await;
            return;
        }
        std::future::pending::<()>().await
    };
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down: no new connections; requests in flight finish");
}

pub fn run(a: Args) -> CliResult {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_max_level(tracing::Level::INFO)
        .init();
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    rt.enable_all();
    if let Some(n) = a.threads {
        rt.worker_threads(n.max(1));
    }
    let rt = rt.build().map_err(|e| format!("tokio runtime: {e}"))?;
    rt.block_on(serve(a))
}

async fn serve(a: Args) -> CliResult {
    let config = Config {
        max_batch: a.max_batch,
        unknown_locale: if a.fallback_unknown_locales {
            UnknownLocale::DefaultLocale
        } else {
            UnknownLocale::NotFound
        },
        heap_bytes: Some(crate::heap::live),
        ..Config::default()
    };
    let (app, reloader) = match (&a.manifest, a.tier.store()?) {
        (Some(manifest), _) => {
            let store = Arc::new(
                Store::open_manifest(manifest)
                    .map_err(|e| format!("{}: {e}", manifest.display()))?,
            );
            let reloader = Arc::new(Reloader {
                store: store.clone(),
                manifest: manifest.clone(),
                seen: Mutex::new(stamp(manifest)),
            });
            let app = fms::http::router_with(store.clone(), config).merge(
                Router::new()
                    .route("/admin/reload", post(admin_reload))
                    .with_state(reloader.clone()),
            );
            tracing::info!(
                "serving {} locales from {} (default {}): {:?}",
                store.published().len(),
                manifest.display(),
                store.default_locale(),
                store.published()
            );
            (app, Some(reloader))
        }
        (None, Some(store)) => {
            let store = Arc::new(store);
            let published = store
                .published()
                .map_err(|e| format!("{e} (has `fms push` published this origin?)"))?;
            tracing::info!(
                "serving {} locales through memcached {} (default {}, origin {}): {:?}",
                published.locales.len(),
                a.tier.memcached.as_deref().unwrap_or_default(),
                published.default_locale,
                a.tier
                    .origin
                    .as_deref()
                    .unwrap_or(std::path::Path::new(""))
                    .display(),
                published.locales.keys().collect::<Vec<_>>()
            );
            let app =
                fms::http::remote_router_with(store, config, Arc::new(fms::http::Metrics::new()));
            (app, None)
        }
        (None, None) => {
            return Err("fms serve needs --manifest, or --memcached and --origin".into());
        }
    };
    let listener = tokio::net::TcpListener::bind(a.addr)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", a.addr))?;
    let addr = listener
        .local_addr()
        .map_err(|e| format!("cannot listen on {}: {e}", a.addr))?;
    if let Some(r) = reloader.as_ref().filter(|_| a.poll_ms > 0) {
        tokio::spawn(r.clone().watch(Duration::from_millis(a.poll_ms)));
    }
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut hup = signal(SignalKind::hangup()).map_err(|e| format!("SIGHUP handler: {e}"))?;
        let r = reloader.clone();
        tokio::spawn(async move {
            while hup.recv().await.is_some() {
                match &r {
                    Some(r) => {
                        let _ = r.reload("SIGHUP").await;
                    }
                    None => tracing::info!(
                        "SIGHUP: nothing to reload (versions follow the tier's pointers)"
                    ),
                }
            }
        });
    }
    let term = term_signal();
    // Announced only once the SIGHUP and SIGTERM handlers are in place (their default
    // action is to terminate), so a supervisor that reads this line may signal from then
    // on. Tests and scripts read it to learn the port.
    say!("fms serve: listening on http://{addr}");
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown_signal(term))
    .await
    .map_err(|e| format!("server: {e}"))?;
    tracing::info!("stopped");
    Ok(())
}
