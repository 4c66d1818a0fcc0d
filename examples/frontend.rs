//! A frontend server that embeds fms: its own routes, the fms JSON API merged in, and a
//! handler of its own that reads records (the pattern to copy: pin `store.current(locale)`
//! once per request, render everything from that one tree).
//!
//! ```sh
//! cargo run --release --example frontend                     # builds a tiny demo tree first
//! cargo run --release --example frontend -- trees/manifest.json 127.0.0.1:3000
//! curl localhost:3000/es/video:1                             # this app's HTML page
//! curl localhost:3000/v1/es/records/video:1                  # the fms API, merged in
//! ```

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use fms::{Manifest, SnapshotBuilder, Store};

/// What this app's handlers share: here just the store.
#[derive(Clone)]
struct App {
    store: Arc<Store>,
}

/// `GET /{locale}/{id}`: an HTML page for one record and its children.
async fn page(State(app): State<App>, Path((locale, id)): Path<(String, String)>) -> Response {
    // Pin one tree for the whole request: a reload in the middle cannot mix versions.
    let Some(tree) = app.store.current(&locale) else {
        return (StatusCode::SERVICE_UNAVAILABLE, "no content yet").into_response();
    };
    let Some(rec) = tree.get(&id) else {
        return (StatusCode::NOT_FOUND, "no such page").into_response();
    };
    let text = |name: &str| {
        rec.get(name)
            .and_then(|v| v.to_str())
            .map(|s| escape(&s))
            .unwrap_or_default()
    };
    let mut html = format!(
        "<h1>{}</h1><p>{}</p><ul>",
        text("title"),
        text("description")
    );
    // Related records come from the same pinned tree.
    if let Some(children) = rec.get("children").and_then(|v| v.as_list()) {
        for child in children.iter().filter_map(|c| c.to_str()) {
            let title = tree
                .get(&child)
                .and_then(|r| r.get("title"))
                .and_then(|v| v.to_str())
                .unwrap_or("(missing)".into());
            html.push_str(&format!("<li>{}</li>", escape(&title)));
        }
    }
    html.push_str("</ul>");
    // The same validator the fms API uses: a CDN can cache the page per content version.
    (
        [(header::ETAG, format!("\"page-{}\"", tree.hash()))],
        Html(html),
    )
        .into_response()
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A tiny tree (en + an es overlay) in a temporary directory, for running without data.
fn demo_tree(dir: &std::path::Path) -> fms::Result<std::path::PathBuf> {
    use serde_json::json;
    let mut b = SnapshotBuilder::new();
    b.insert(
        "video:1",
        &json!({"title": "Intro", "description": "Start here", "children": ["video:2"]}),
    )?;
    b.insert(
        "video:2",
        &json!({"title": "Loops", "description": "Again", "children": []}),
    )?;
    b.write_to_path(dir.join("en.fms"))?;
    let en = Arc::new(fms::Snapshot::open(dir.join("en.fms"))?);
    let mut o = SnapshotBuilder::with_base(&en);
    o.insert(
        "video:1",
        &json!({"title": "Introducción", "description": "Empieza aquí", "children": ["video:2"]}),
    )?;
    o.write_to_path(dir.join("es.fms"))?;
    let manifest = dir.join("manifest.json");
    Manifest::new("en")
        .locale("en", "en.fms")
        .locale("es", "es.fms")
        .write(&manifest)?;
    Ok(manifest)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let tmp = tempfile::tempdir()?;
    let manifest = match args.next() {
        Some(m) => m.into(),
        None => demo_tree(tmp.path())?,
    };
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:3000".into());

    let store = Arc::new(Store::open_manifest(&manifest)?);
    let app = Router::new()
        .route("/", get(|| async { "a frontend with fms inside" }))
        .route("/{locale}/{id}", get(page))
        .with_state(App {
            store: store.clone(),
        })
        // The fms API next to the app's own routes (a Router<()>, so merge after with_state).
        .merge(fms::http::router(store.clone()));

    // Reload on SIGHUP, as `fms serve` does (it also polls the manifest).
    #[cfg(unix)]
    {
        let (store, manifest) = (store.clone(), manifest.clone());
        let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
        tokio::spawn(async move {
            while hup.recv().await.is_some() {
                let (s, m) = (store.clone(), manifest.clone());
                match tokio::task::spawn_blocking(move || s.reload(&m)).await {
                    Ok(Ok(served)) => eprintln!("reloaded: {served:?}"),
                    Ok(Err(e)) => eprintln!("reload failed, old versions still served: {e}"),
                    Err(e) => eprintln!("reload task failed: {e}"),
                }
                store.evict_unpublished();
            }
        });
    }

    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("frontend on http://{}", listener.local_addr()?);
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
