//! A real HTTP server and client for the router tests: the router on a free loopback port,
//! reqwest to talk to it, and what an answer carries.

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::Value;

/// Serves `router` on a free loopback port; the server stops when the runtime does.
pub async fn start(router: axum::Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    addr
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .no_proxy()
        .build()
        .unwrap()
}

/// Status, headers and body (as JSON where it is JSON) of a response.
pub struct Answer {
    pub status: u16,
    pub etag: Option<String>,
    pub content_language: Option<String>,
    pub text: String,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.text))
    }
    /// The `error` code of a JSON error body.
    pub fn error(&self) -> String {
        self.json()["error"].as_str().unwrap_or("").to_owned()
    }
}

pub async fn answer(r: reqwest::Response) -> Answer {
    let h = |name: &str| {
        r.headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    let (status, etag, content_language) = (r.status().as_u16(), h("etag"), h("content-language"));
    let text = r.text().await.unwrap();
    Answer {
        status,
        etag,
        content_language,
        text,
    }
}

pub async fn get(c: &reqwest::Client, addr: SocketAddr, path: &str) -> Answer {
    answer(c.get(format!("http://{addr}{path}")).send().await.unwrap()).await
}

pub async fn post(
    c: &reqwest::Client,
    addr: SocketAddr,
    path: &str,
    body: impl Into<reqwest::Body>,
) -> Answer {
    answer(
        c.post(format!("http://{addr}{path}"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap(),
    )
    .await
}

/// Sends a request built with the client and reads its answer.
pub async fn send(r: reqwest::RequestBuilder) -> Answer {
    answer(r.send().await.unwrap()).await
}
