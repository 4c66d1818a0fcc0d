//! `fms demo --remote`: after the in-process demo, the same trees through the memcached
//! tier: starts 4 memcached servers on loopback (when memcached is installed), pushes the
//! demo's directory to them, and serves 50-id `get_many` requests from several threads.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fms::remote::push::{self, PushOptions};
use fms::remote::{Cluster, ClusterConfig, RemoteConfig, RemoteStore};

use crate::CliResult;

/// A memcached process, killed when dropped.
struct Server(Child, u16);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The memcached binary on PATH (or in /usr/bin, /usr/local/bin).
pub fn memcached_binary() -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    dirs.extend(["/usr/bin", "/usr/local/bin"].map(PathBuf::from));
    dirs.into_iter()
        .map(|d| d.join("memcached"))
        .find(|p| p.is_file())
}

fn start(bin: &Path) -> Result<Server, String> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| format!("no free port: {e}"))?
        .port();
    let child = Command::new(bin)
        .args([
            "-l",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-U",
            "0",
            "-u",
            "root",
        ])
        .args(["-m", "1024"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("{}: {e}", bin.display()))?;
    let server = Server(child, port);
    for _ in 0..250 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(server);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Err(format!(
        "memcached on port {port} did not answer within 5 s"
    ))
}

/// The error when memcached is not installed: what to install.
pub fn missing() -> String {
    "fms demo --remote needs memcached, which is not installed: apt-get install -y memcached \
     (or run fms demo without --remote)"
        .into()
}

pub fn run(dir: &Path, threads: usize, seconds: f64) -> CliResult {
    let Some(bin) = memcached_binary() else {
        return Err(
            "fms demo --remote needs memcached, which is not installed: \
                    apt-get install -y memcached (or run fms demo without --remote)"
                .into(),
        );
    };
    say!(
        "\nthe memcached tier: 4 memcached servers on loopback ({})",
        bin.display()
    );
    let servers = (0..4).map(|_| start(&bin)).collect::<Result<Vec<_>, _>>()?;
    let addrs: Vec<String> = servers
        .iter()
        .map(|s| format!("127.0.0.1:{}", s.1))
        .collect();
    let mut cfg = ClusterConfig::new(&addrs);
    cfg.timeouts.batch = Duration::from_secs(5);
    let cluster = Arc::new(Cluster::new(cfg).map_err(|e| e.to_string())?);
    let t = Instant::now();
    let r = push::push(dir, &cluster, &PushOptions::default()).map_err(|e| e.to_string())?;
    let manifests: u64 = r.locales.iter().map(|l| l.manifest_bytes).sum();
    say!(
        "push: {} records of {} trees -> {} distinct items ({:.1} MB) sent in {:.1}s; record \
         manifests {:.1} MB ({:.1} bytes/id) in {}/remote",
        r.records,
        r.locales.len(),
        r.unique_items,
        r.bytes_sent as f64 / 1e6,
        t.elapsed().as_secs_f64(),
        manifests as f64 / 1e6,
        manifests as f64 / r.records.max(1) as f64,
        dir.display()
    );

    // Frontends read through the tier with a hot set of every 10th id.
    let locales: Vec<String> = r.locales.iter().map(|l| l.locale.clone()).collect();
    let en = fms::Store::open_manifest(dir.join("manifest.json"))
        .map_err(|e| e.to_string())?
        .current(&locales[0])
        .ok_or("no default tree")?;
    let ids: Vec<String> = en.ids().map(str::to_owned).collect();
    let rcfg = RemoteConfig {
        hot_ids: ids.iter().step_by(10).take(2000).cloned().collect(),
        ..RemoteConfig::default()
    };
    let store = Arc::new(RemoteStore::new(cluster.clone(), dir, rcfg).map_err(|e| e.to_string())?);
    let ids = Arc::new(ids);
    let locales = Arc::new(locales);
    let until = Instant::now() + Duration::from_secs_f64(seconds);
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let (store, ids, locales) = (store.clone(), ids.clone(), locales.clone());
            std::thread::spawn(move || -> Result<(Vec<Duration>, u64), String> {
                let mut x = 0x9e37_79b9_7f4a_7c15u64 ^ (t as u64 + 1);
                let mut next = move || {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x
                };
                let mut lat = Vec::new();
                let mut found = 0;
                while Instant::now() < until {
                    let locale = &locales[(next() % locales.len() as u64) as usize];
                    let req: Vec<&str> = (0..50)
                        .map(|_| ids[(next() % ids.len() as u64) as usize].as_str())
                        .collect();
                    let s = Instant::now();
                    let got = store.get_many(locale, &req).map_err(|e| e.to_string())?;
                    lat.push(s.elapsed());
                    found += got.iter().filter(|r| r.is_some()).count() as u64;
                }
                Ok((lat, found))
            })
        })
        .collect();
    let mut lat = Vec::new();
    let mut found = 0;
    for h in handles {
        let (l, f) = h.join().map_err(|_| "a reader panicked")??;
        lat.extend(l);
        found += f;
    }
    lat.sort();
    let n = lat.len().max(1);
    let s = store.stats();
    say!(
        "get_many of 50 ids from {threads} threads for {seconds}s: {} requests ({:.0}/s), p50 \
         {:.0} µs, p99 {:.0} µs; {} of {} ids found",
        lat.len(),
        lat.len() as f64 / seconds,
        lat.get(n / 2).map_or(0.0, |d| d.as_secs_f64() * 1e6),
        lat.get(n * 99 / 100).map_or(0.0, |d| d.as_secs_f64() * 1e6),
        found,
        lat.len() * 50
    );
    say!(
        "served from: hot set {}, byte cache {} ({:.1} MB held), memcached {}, origin {}; \
         {:.2} memcached round trips per request; {} corrupt items",
        s.hot_hits,
        s.cache_hits,
        store.cache_bytes() as f64 / 1e6,
        s.memcached_hits,
        s.origin_fetches,
        s.round_trips as f64 / s.requests.max(1) as f64,
        s.corrupt
    );
    drop(servers);
    Ok(())
}
