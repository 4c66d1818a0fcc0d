//! Real memcached and nutcracker processes for the remote-tier tests: free loopback ports,
//! wait until each answers, killed on drop (SIGCONT first, in case a test stopped one).
//!
//! When a binary is missing the tests fail if `CI=true` (CI must install them, see
//! `.ci/run`) and skip with a message otherwise.
#![allow(dead_code)]

#[cfg(feature = "http")]
pub mod http;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The binary `name` on PATH (or in /usr/sbin, /usr/bin); `None` if absent and not on CI;
/// panics if absent on CI.
pub fn binary(name: &str) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    dirs.extend(["/usr/sbin", "/usr/bin", "/usr/local/bin"].map(PathBuf::from));
    if let Some(p) = dirs.iter().map(|d| d.join(name)).find(|p| p.is_file()) {
        return Some(p);
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!(
            "{name} is not installed, and CI=true: install it (apt-get install -y memcached nutcracker)"
        );
    }
    eprintln!(
        "SKIPPED: {name} is not installed (apt-get install -y memcached nutcracker); set CI=true to make this a failure"
    );
    None
}

/// A loopback port nothing listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A child process killed (and reaped) on drop.
pub struct Proc {
    pub child: Child,
    pub port: u16,
}

impl Proc {
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }
    /// Sends a signal (`STOP`, `CONT`, `KILL`) with kill(1).
    pub fn signal(&self, sig: &str) {
        let _ = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.pid().to_string())
            .status();
    }
}

impl Proc {
    /// SIGSTOP, then waits (up to 2 s) until every thread of the process is stopped:
    /// the signal is asynchronous, and a thread still running would answer.
    pub fn hang(&self) {
        self.signal("STOP");
        let tasks = format!("/proc/{}/task", self.pid());
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(2) {
            let all_stopped = std::fs::read_dir(&tasks)
                .map(|d| {
                    d.flatten().all(|t| {
                        std::fs::read_to_string(t.path().join("stat"))
                            .ok()
                            .and_then(|s| s.rsplit_once(") ").map(|(_, r)| r.starts_with('T')))
                            .unwrap_or(true)
                    })
                })
                .unwrap_or(true);
            if all_stopped {
                return;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        panic!("process {} did not stop", self.pid());
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.signal("CONT");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_answers(port: u16, what: &str) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(10) {
        if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
            s.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
            if s.write_all(b"version\r\n").is_ok() {
                let mut line = String::new();
                if BufReader::new(&s).read_line(&mut line).is_ok() && line.starts_with("VERSION") {
                    return;
                }
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("{what} on port {port} did not answer within 10 s");
}

/// Starts `memcached -l 127.0.0.1 -p PORT -U 0 -u root -m 32` on a free port and waits
/// until it answers `version`. `None` if memcached is missing (not on CI).
pub fn memcached() -> Option<Proc> {
    memcached_on(None)
}

/// [`memcached`] on a given port (or a free one).
pub fn memcached_on(port: Option<u16>) -> Option<Proc> {
    let bin = binary("memcached")?;
    for _ in 0..5 {
        let port = port.unwrap_or_else(free_port);
        let child = Command::new(&bin)
            .args([
                "-l",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "-U",
                "0",
                "-u",
                "root",
                "-m",
                "32",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn memcached");
        let mut p = Proc { child, port };
        std::thread::sleep(Duration::from_millis(30));
        if let Ok(Some(_)) = p.child.try_wait() {
            continue; // lost the port race; try another
        }
        wait_answers(port, "memcached");
        return Some(p);
    }
    panic!("could not start memcached");
}

/// `n` memcached servers; `None` if memcached is missing (not on CI).
pub fn memcacheds(n: usize) -> Option<Vec<Proc>> {
    (0..n).map(|_| memcached()).collect()
}

/// Starts nutcracker with `hash: md5, distribution: ketama` over `servers` (each a
/// twemproxy server line, `host:port:weight [name]`), on a free port; waits until it
/// answers. `None` if nutcracker is missing (not on CI).
pub fn nutcracker(dir: &Path, servers: &[String]) -> Option<Proc> {
    let bin = binary("nutcracker")?;
    let port = free_port();
    let stats = free_port();
    let mut conf = format!(
        "fms:\n  listen: 127.0.0.1:{port}\n  hash: md5\n  distribution: ketama\n  auto_eject_hosts: false\n  timeout: 2000\n  servers:\n"
    );
    for s in servers {
        conf.push_str(&format!("   - {s}\n"));
    }
    let path = dir.join(format!("nutcracker-{port}.yml"));
    std::fs::write(&path, conf).unwrap();
    let child = Command::new(bin)
        .arg("-c")
        .arg(&path)
        .args(["-s", &stats.to_string(), "-a", "127.0.0.1"])
        .arg("-o")
        .arg(dir.join(format!("nutcracker-{port}.log")))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn nutcracker");
    let p = Proc { child, port };
    // nutcracker answers `version` by forwarding it, so wait for a set/get round trip.
    let start = Instant::now();
    loop {
        if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
            s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
            if s.write_all(b"get fms-probe\r\n").is_ok() {
                let mut line = String::new();
                if BufReader::new(&s).read_line(&mut line).is_ok() && line.starts_with("END") {
                    return Some(p);
                }
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "nutcracker did not answer"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Sends a raw text-protocol request and reads until `end` appears at the end of the
/// reply. For tests only: no deadline beyond 5 s.
pub fn raw(addr: &str, req: &[u8], end: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(req).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 65536];
    while !out.ends_with(end) {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "connection closed");
        out.extend_from_slice(&buf[..n]);
    }
    out
}

/// memcached's `stats` as (name, value) pairs.
pub fn stats(addr: &str) -> std::collections::HashMap<String, String> {
    let r = raw(addr, b"stats\r\n", b"END\r\n");
    String::from_utf8_lossy(&r)
        .lines()
        .filter_map(|l| {
            let mut it = l.strip_prefix("STAT ")?.splitn(2, ' ');
            Some((it.next()?.to_owned(), it.next()?.to_owned()))
        })
        .collect()
}

/// One `stats` counter as a number.
pub fn stat(addr: &str, name: &str) -> u64 {
    stats(addr)[name].parse().unwrap()
}

/// Which of `keys` memcached at `addr` holds (a pipelined `mg <key> k q` + `mn`).
pub fn held_keys(addr: &str, keys: &[String]) -> std::collections::HashSet<String> {
    let mut req = Vec::new();
    for k in keys {
        req.extend_from_slice(format!("mg {k} k q\r\n").as_bytes());
    }
    req.extend_from_slice(b"mn\r\n");
    let r = raw(addr, &req, b"MN\r\n");
    String::from_utf8_lossy(&r)
        .lines()
        .filter_map(|l| l.strip_prefix("HD k").map(str::to_owned))
        .collect()
}

/// Sends `req` and reads exactly `n` reply lines (one per pipelined text command).
pub fn raw_lines(addr: &str, req: &[u8], n: usize) -> Vec<String> {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut w = s.try_clone().unwrap();
    let req = req.to_vec();
    let writer = std::thread::spawn(move || w.write_all(&req).unwrap());
    let mut r = BufReader::new(s);
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let mut line = String::new();
        assert!(r.read_line(&mut line).unwrap() > 0, "connection closed");
        out.push(line.trim_end().to_owned());
    }
    writer.join().unwrap();
    out
}

/// Trees for the remote tests: `en` (full) and `es`, `pt` overlays over it, written to
/// `dir` with a `manifest.json`. `version` changes a few `en` records (a content update);
/// files are named by version so an update never rewrites a file in place.
pub fn write_origin(dir: &Path, version: u32, records: usize) {
    use fms::{Manifest, Snapshot, SnapshotBuilder};
    use serde_json::json;
    use std::sync::Arc;
    let en_rec = |i: usize| {
        let changed = i % 50 == 0 && version > 1;
        json!({
            "id": format!("video:{i}"),
            "title": if changed { format!("Video {i}, revised v{version}") } else { format!("Video {i}") },
            "duration": i * 7,
            "ratio": i as f64 / 3.0,
            "tags": ["math", format!("t{}", i % 9)],
            "body": if i % 10 == 0 { "lorem ipsum dolor sit amet ".repeat(40 + i % 30) } else { String::new() },
            "nested": {"a": [1, 2, {"b": null}], "listed": i % 3 == 0},
        })
    };
    let mut b = SnapshotBuilder::new();
    for i in 0..records {
        b.insert(&format!("video:{i}"), &en_rec(i)).unwrap();
    }
    let en_file = format!("en-v{version}.fms");
    b.write_to_path(dir.join(&en_file)).unwrap();
    let en = Arc::new(Snapshot::open(dir.join(&en_file)).unwrap());
    let mut manifest = Manifest::new("en").locale("en", &en_file);
    for (locale, every) in [("es", 3), ("pt", 7)] {
        let mut o = SnapshotBuilder::with_base(&en);
        for i in 0..records {
            if i == 5 {
                continue; // removed in this locale
            }
            let mut r = en_rec(i);
            if i % every == 0 {
                r["title"] = json!(format!("{locale} título {i}"));
            }
            o.insert(&format!("video:{i}"), &r).unwrap();
        }
        o.insert(
            &format!("{locale}:only"),
            &json!({"title": format!("only in {locale}")}),
        )
        .unwrap();
        o.remove_absent().unwrap();
        let file = format!("{locale}-v{version}.fms");
        o.write_to_path(dir.join(&file)).unwrap();
        manifest = manifest.locale(locale, &file);
    }
    manifest.write(dir.join("manifest.json")).unwrap();
}

/// The local tree a locale serves per the origin's manifest.json.
pub fn local_tree(dir: &Path, locale: &str) -> std::sync::Arc<fms::Snapshot> {
    let store = fms::Store::open_manifest(dir.join("manifest.json")).unwrap();
    store.current(locale).unwrap()
}

/// Test-sized deadlines: 100 ms batches, down after 2 errors for 2 s.
pub fn cluster(addrs: &[String], gutter: &[String]) -> std::sync::Arc<fms::remote::Cluster> {
    use fms::remote::ClusterConfig;
    let mut cfg = ClusterConfig::new(addrs);
    cfg.gutter = gutter.to_vec();
    cfg.timeouts.connect = Duration::from_millis(50);
    cfg.timeouts.batch = Duration::from_millis(100);
    cfg.health.errors = 2;
    cfg.health.down_for = Duration::from_secs(2);
    std::sync::Arc::new(fms::remote::Cluster::new(cfg).unwrap())
}

/// A memcached tier for a test: its servers, their addresses, the origin directory and a
/// test cluster ([`cluster`]).
#[cfg(feature = "remote")]
pub struct Tier {
    pub mcs: Vec<Proc>,
    pub addrs: Vec<String>,
    pub dir: tempfile::TempDir,
    pub cluster: std::sync::Arc<fms::remote::Cluster>,
}

/// `n` memcached servers, an origin of `records` records per tree ([`write_origin`],
/// version 1) in a temporary directory, pushed with `opts`; `None` as [`memcacheds`].
#[cfg(feature = "remote")]
pub fn pushed_tier(
    n: usize,
    records: usize,
    opts: &fms::remote::push::PushOptions,
) -> Option<Tier> {
    let mcs = memcacheds(n)?;
    let addrs: Vec<String> = mcs.iter().map(|m| m.addr()).collect();
    let dir = tempfile::tempdir().unwrap();
    write_origin(dir.path(), 1, records);
    let cluster = cluster(&addrs, &[]);
    fms::remote::push::push(dir.path(), &cluster, opts).unwrap();
    Some(Tier {
        mcs,
        addrs,
        dir,
        cluster,
    })
}

/// `flush_all` on every server.
pub fn flush_all(addrs: &[String]) {
    for a in addrs {
        raw(a, b"flush_all\r\n", b"OK\r\n");
    }
}
