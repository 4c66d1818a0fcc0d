//! The memcached tier's figures (BENCHMARKS.md, "Remote tier"): starts 4 real memcached
//! servers on loopback, builds the synthetic content site (en + N locale overlays) as an
//! origin, pushes it, pushes a content update, and measures 50-id `get_many` at 0%, 90%
//! and 99% in-process hit rates.
//!
//! ```sh
//! cargo run --release --example remote_bench -- [--scale 1] [--locales 10] [--requests 2000]
//! HOT=config cargo run --release --example remote_bench   # hot set fetched at pin instead
//! ITEMS=plain cargo run --release --example remote_bench  # items stored uncompressed
//! ```

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fms::corpus::{self, CorpusConfig};
use fms::remote::push::{self, PushOptions};
use fms::remote::{Cluster, ClusterConfig, RemoteConfig, RemoteStore};
use fms::{Manifest, Snapshot, SnapshotBuilder};

const CODES: [&str; 10] = [
    "es", "pt", "fr", "de", "tr", "hi", "bn", "zh-hans", "ja", "ko",
];

struct Memcached(Child, u16);

impl Drop for Memcached {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_memcached(mb: u32) -> Memcached {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new("memcached")
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
        .args(["-m", &mb.to_string(), "-t", "2"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("memcached is not installed: apt-get install -y memcached");
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Memcached(child, port);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("memcached did not start");
}

fn stat(addr: &str, name: &str) -> u64 {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.write_all(b"stats\r\n").unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    while !out.ends_with(b"END\r\n") {
        let n = s.read(&mut buf).unwrap();
        out.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&out);
    text.lines()
        .find_map(|l| {
            l.strip_prefix(&format!("STAT {name} "))
                .map(|v| v.parse().unwrap())
        })
        .unwrap()
}

fn arg(name: &str, default: f64) -> f64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(|v| v.parse().unwrap())
        .unwrap_or(default)
}

/// Writes the origin; returns (bytes of the snapshot files, bytes of the trees as JSONL).
fn build_origin(dir: &Path, cfg: &CorpusConfig) -> (u64, u64) {
    let mut jsonl = 0u64;
    let mut b = SnapshotBuilder::new();
    for (id, rec) in corpus::records(cfg, 0) {
        jsonl += corpus::jsonl_line(&id, &rec).len() as u64 + 1;
        b.insert(&id, &rec).unwrap();
    }
    b.write_to_path(dir.join("en.fms")).unwrap();
    let en = Arc::new(Snapshot::open(dir.join("en.fms")).unwrap());
    let mut m = Manifest::new("en").locale("en", "en.fms");
    let mut bytes = en.as_bytes().len() as u64;
    for (i, code) in cfg.locale_codes().iter().enumerate().skip(1) {
        let mut b = SnapshotBuilder::with_base(&en);
        for (id, rec) in corpus::records(cfg, i) {
            jsonl += corpus::jsonl_line(&id, &rec).len() as u64 + 1;
            b.insert(&id, &rec).unwrap();
        }
        b.remove_absent().unwrap();
        let info = b.write_to_path(dir.join(format!("{code}.fms"))).unwrap();
        bytes += info.bytes;
        m = m.locale(code, format!("{code}.fms"));
    }
    m.write(dir.join("manifest.json")).unwrap();
    (bytes, jsonl)
}

/// The content update of `fms demo`: 1% of en's records changed, 0.1% removed, 0.1% added.
fn build_update(dir: &Path, cfg: &CorpusConfig) {
    let en = Arc::new(Snapshot::open(dir.join("en.fms")).unwrap());
    let mut b = SnapshotBuilder::with_base(&en);
    for (i, (id, mut rec)) in corpus::records(cfg, 0).enumerate() {
        if i % 1000 == 501 {
            continue;
        }
        if i % 100 == 37 {
            if let Some(obj) = rec.as_object_mut() {
                let t = obj
                    .get("title")
                    .and_then(|v| v.as_str())
                    .unwrap_or("")
                    .to_owned();
                obj.insert("title".into(), format!("{t} (updated)").into());
            }
        }
        if i % 1000 == 777 {
            b.insert(&format!("{id}-v2"), &rec).unwrap();
        }
        b.insert(&id, &rec).unwrap();
    }
    b.remove_absent().unwrap();
    b.write_to_path(dir.join("en-v2.fms")).unwrap();
    let mut m = Manifest::read(dir.join("manifest.json")).unwrap();
    m.locales.insert("en".into(), "en-v2.fms".into());
    m.bases.push("en.fms".into());
    m.write(dir.join("manifest.json")).unwrap();
}

fn main() {
    let scale = arg("--scale", 1.0);
    let n_locales = arg("--locales", 10.0) as usize;
    let requests = arg("--requests", 2000.0) as usize;
    let mb = arg("--memcached-mb", 1024.0) as u32;
    let mut locales = vec!["en".to_owned()];
    locales.extend(CODES[..n_locales].iter().map(|s| s.to_string()));
    let cfg = CorpusConfig {
        scale,
        locales,
        ..CorpusConfig::default()
    };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let t = Instant::now();
    let (tree_bytes, jsonl_bytes) = build_origin(dir, &cfg);
    println!(
        "origin: en + {n_locales} locale overlays at scale {scale}: {tree_bytes} bytes of snapshot files, {jsonl_bytes} bytes as JSONL, built in {:.1?}",
        t.elapsed()
    );

    let servers: Vec<Memcached> = (0..4).map(|_| start_memcached(mb)).collect();
    let addrs: Vec<String> = servers
        .iter()
        .map(|m| format!("127.0.0.1:{}", m.1))
        .collect();
    let mut ccfg = ClusterConfig::new(&addrs);
    ccfg.timeouts.batch = Duration::from_secs(5);
    let cluster = Arc::new(Cluster::new(ccfg).unwrap());
    // The hot set: every 10th id of es (2000 ids), chosen at push time (a snapshot per
    // version, mapped by readers), or with HOT=config fetched into memory at pin
    // (`RemoteConfig::hot_ids`) as before.
    let hot_at_push = std::env::var("HOT").as_deref() != Ok("config");
    let es_ids: Vec<String> = fms::Store::open_manifest(dir.join("manifest.json"))
        .unwrap()
        .current("es")
        .unwrap()
        .ids()
        .map(str::to_owned)
        .collect();
    let hot: Vec<String> = es_ids.iter().step_by(10).take(2000).cloned().collect();
    let popts = PushOptions {
        hot_ids: if hot_at_push { hot.clone() } else { Vec::new() },
        // ITEMS=plain: items stored uncompressed.
        compress_items: std::env::var("ITEMS").as_deref() != Ok("plain"),
        ..PushOptions::default()
    };
    let t = Instant::now();
    let rep = push::push(dir, &cluster, &popts).unwrap();
    let mc_bytes: u64 = addrs.iter().map(|a| stat(a, "bytes")).sum();
    let evictions: u64 = addrs.iter().map(|a| stat(a, "evictions")).sum();
    println!(
        "push: {:.1?}; {} records in {} trees, {} distinct items, {} item bytes; memcached holds {} bytes ({} evictions)",
        t.elapsed(),
        rep.records,
        rep.locales.len(),
        rep.unique_items,
        rep.unique_item_bytes,
        mc_bytes,
        evictions
    );
    // What the trees hold as records: sum of the items if each tree stored all its own.
    let mut json_map_total = 0u64;
    for l in &rep.locales {
        // A JSON id -> hash map of the same tree: {"id":"<32 hex>",...}.
        let tree = fms::Store::open_manifest(dir.join("manifest.json"))
            .unwrap()
            .current(&l.locale)
            .unwrap();
        let json_map: u64 = tree
            .ids()
            .map(|id| id.len() as u64 + 2 + 3 + 34)
            .sum::<u64>()
            + 2;
        json_map_total += json_map;
        println!(
            "  {:>2}: {:>6} records, manifest {:>8} bytes = {:>5.2} bytes/id{}; JSON id->hash map {:>8} bytes ({:.1} bytes/id)",
            l.locale,
            l.records,
            l.manifest_bytes,
            l.manifest_bytes as f64 / l.records as f64,
            if l.overlay { " (overlay)" } else { "" },
            json_map,
            json_map as f64 / l.records as f64
        );
    }
    let manifest_total: u64 = rep.locales.iter().map(|l| l.manifest_bytes).sum();
    println!("  manifests total {manifest_total} bytes vs JSON maps {json_map_total} bytes");

    build_update(dir, &cfg);
    let t = Instant::now();
    let upd = push::push(dir, &cluster, &popts).unwrap();
    let en = &upd.locales[0];
    println!(
        "content update (1% of en changed, 0.1% removed, 0.1% added): shipped {} items, {} bytes in {:.1?}; {} pointers flipped; new en manifest {} bytes ({}, {:.2} bytes/id)",
        upd.items_sent,
        upd.bytes_sent,
        t.elapsed(),
        upd.pointers_flipped,
        en.manifest_bytes,
        if en.overlay {
            "an overlay over the previous one"
        } else {
            "full"
        },
        en.manifest_bytes as f64 / en.records as f64
    );
    for l in &upd.locales[1..2] {
        println!(
            "  then {}: manifest {} bytes ({:.2} bytes/id)",
            l.locale,
            l.manifest_bytes,
            l.manifest_bytes as f64 / l.records as f64
        );
    }

    // get_many of 50 ids, in-process hits from the hot set, the rest through memcached.
    let tree = fms::Store::open_manifest(dir.join("manifest.json"))
        .unwrap()
        .current("es")
        .unwrap();
    let ids: Vec<String> = tree.ids().map(str::to_owned).collect();
    assert_eq!(ids, es_ids, "the update leaves es as it was");
    let cold: Vec<&String> = ids
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 10 != 0)
        .map(|(_, s)| s)
        .collect();
    for rate in [0.0, 0.9, 0.99] {
        let rcfg = RemoteConfig {
            cache_bytes: 1,
            hot_ids: if hot_at_push { Vec::new() } else { hot.clone() },
            ..RemoteConfig::default()
        };
        let store = RemoteStore::new(cluster.clone(), dir, rcfg).unwrap();
        let pinned = store.pin("es").unwrap();
        let mut rng = 0x9e3779b97f4a7c15u64;
        let mut next = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let mut lat = Vec::with_capacity(requests);
        let rt0 = cluster.round_trips();
        let s0 = store.stats();
        let t = Instant::now();
        for _ in 0..requests {
            let req: Vec<&str> = (0..50)
                .map(|_| {
                    if (next() % 10_000) as f64 / 10_000.0 < rate {
                        hot[(next() % hot.len() as u64) as usize].as_str()
                    } else {
                        cold[(next() % cold.len() as u64) as usize].as_str()
                    }
                })
                .collect();
            let s = Instant::now();
            let got = store.get_many_in(&pinned, &req).unwrap();
            lat.push(s.elapsed());
            assert!(got.iter().all(Option::is_some));
        }
        let secs = t.elapsed().as_secs_f64();
        lat.sort();
        let s1 = store.stats();
        println!(
            "get_many(50) at {:>4.0}% in-process hits: {:>7.0} req/s, p50 {:>6.0} µs, p99 {:>6.0} µs; {:.2} memcached round trips/request, hits {:.1}% hot / {} from memcached / {} from origin",
            rate * 100.0,
            requests as f64 / secs,
            lat[lat.len() / 2].as_secs_f64() * 1e6,
            lat[lat.len() * 99 / 100].as_secs_f64() * 1e6,
            (cluster.round_trips() - rt0) as f64 / requests as f64,
            100.0 * (s1.hot_hits - s0.hot_hits) as f64 / (requests * 50) as f64,
            s1.memcached_hits - s0.memcached_hits,
            s1.origin_fetches - s0.origin_fetches,
        );
    }
}
