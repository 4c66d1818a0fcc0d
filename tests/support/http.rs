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

/// `fms serve` as a child process, killed (and reaped) on drop.
#[cfg(all(feature = "cli", unix))]
pub struct KillOnDrop(pub std::process::Child);

#[cfg(all(feature = "cli", unix))]
impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Sends `sig` (e.g. `-TERM`) with kill(1).
#[cfg(all(feature = "cli", unix))]
pub fn signal(child: &std::process::Child, sig: &str) {
    let ok = std::process::Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill {sig}");
}

/// Starts `fms serve --addr 127.0.0.1:0 --threads 2 ARGS`; returns the child and the
/// address it printed on its first line.
#[cfg(all(feature = "cli", unix))]
pub async fn spawn_fms_serve(args: &[&std::ffi::OsStr]) -> (KillOnDrop, SocketAddr) {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let mut child = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_fms"))
            .args(["serve", "--addr", "127.0.0.1:0", "--threads", "2"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let stdout = child.0.stdout.take().unwrap();
    let line = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        line
    })
    .await
    .unwrap();
    let addr = line
        .trim()
        .rsplit("http://")
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no address in {line:?}"));
    (child, addr)
}

/// The exit status (waiting for it) and everything the server logged.
#[cfg(all(feature = "cli", unix))]
pub async fn terminate_wait(child: KillOnDrop) -> (std::process::ExitStatus, String) {
    tokio::task::spawn_blocking(move || {
        use std::io::Read;
        let mut child = child;
        let mut log = String::new();
        child
            .0
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut log)
            .unwrap();
        (child.0.wait().unwrap(), log)
    })
    .await
    .unwrap()
}
