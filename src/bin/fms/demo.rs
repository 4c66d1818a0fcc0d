//! `fms demo`: the main job, end to end. Generates the synthetic content-site corpus,
//! builds a snapshot, maps it, serves a burst of lookups from several threads, and prints
//! what it used next to the same data held as `HashMap<String, serde_json::Value>`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::CliResult;
use crate::heap;

#[derive(clap::Args)]
pub struct Args {
    /// Corpus scale (1 = the ~26,000-entity content site).
    #[arg(long, default_value_t = 1.0)]
    scale: f64,
    /// Corpus seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Reader threads.
    #[arg(long, default_value_t = 4)]
    threads: usize,
    /// Lookups per thread (each: id lookup + three field reads).
    #[arg(long, default_value_t = 1_000_000)]
    lookups: usize,
    /// Where to write the snapshot (default: a temporary directory, removed afterwards).
    #[arg(long)]
    dir: Option<PathBuf>,
}

fn mb(bytes: usize) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

/// Runs `lookups` reads on each of `threads` threads; returns (reads/s, checksum).
fn burst<F>(threads: usize, lookups: usize, ids: &Arc<Vec<String>>, read: F) -> (f64, usize)
where
    F: Fn(&str) -> usize + Send + Sync + Clone + 'static,
{
    let start = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let (ids, read) = (ids.clone(), read.clone());
            std::thread::spawn(move || {
                let mut sum = 0usize;
                let mut x = 0x9E37_79B9_7F4A_7C15u64 ^ t as u64;
                for _ in 0..lookups {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    sum = sum.wrapping_add(read(&ids[(x % ids.len() as u64) as usize]));
                }
                sum
            })
        })
        .collect();
    let sum = handles
        .into_iter()
        .map(|h| h.join().unwrap_or(0))
        .fold(0, usize::wrapping_add);
    let secs = start.elapsed().max(Duration::from_nanos(1)).as_secs_f64();
    ((threads * lookups) as f64 / secs, sum)
}

pub fn run(a: Args) -> CliResult {
    let t0 = Instant::now();
    let cfg = fms::corpus::CorpusConfig {
        scale: a.scale,
        seed: a.seed,
        ..Default::default()
    };
    let tmp = tempfile::tempdir().map_err(|e| format!("temporary directory: {e}"))?;
    let dir = a.dir.clone().unwrap_or_else(|| tmp.path().to_owned());
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let path = dir.join("en.fms");

    // 1. Corpus -> JSONL bytes (the publish pipeline's input) and a snapshot.
    let t = Instant::now();
    let mut jsonl_bytes = 0usize;
    let mut b = fms::SnapshotBuilder::new();
    let mut ids = Vec::new();
    for (id, rec) in fms::corpus::records(&cfg, 0) {
        jsonl_bytes += fms::corpus::jsonl_line(&id, &rec).len() + 1;
        b.insert(&id, &rec).map_err(|e| e.to_string())?;
        ids.push(id);
    }
    if ids.is_empty() {
        return Err("demo: the corpus is empty (scale too small)".into());
    }
    let info = b.write_to_path(&path).map_err(|e| e.to_string())?;
    drop(b);
    let build_time = t.elapsed();
    let ids = Arc::new(ids);

    // 2. Map it: heap and RSS before and after.
    let (heap0, rss0) = (heap::live(), heap::rss().unwrap_or(0));
    let t = Instant::now();
    let snap = Arc::new(fms::Snapshot::open(&path).map_err(|e| e.to_string())?);
    let open_time = t.elapsed();
    let open_heap = heap::live().saturating_sub(heap0);
    let t = Instant::now();
    snap.verify().map_err(|e| e.to_string())?;
    let verify_time = t.elapsed();

    // 3. A burst of lookups: id, then title by name, title again through a pre-resolved
    //    key, and kind by name.
    let s = snap.clone();
    let title = snap.key("title");
    let read_fms = move |id: &str| -> usize {
        let Some(r) = s.get(id) else { return 0 };
        let t = r.get("title").and_then(|v| v.as_str()).map_or(0, str::len);
        let d = title
            .and_then(|k| r.get_key(k))
            .and_then(|v| v.as_str())
            .map_or(0, str::len);
        let k = r.get("kind").and_then(|v| v.as_str()).map_or(0, str::len);
        t + d + k
    };
    let (fms_rate, fms_sum) = burst(a.threads, a.lookups, &ids, read_fms);
    let rss_fms = heap::rss().unwrap_or(0).saturating_sub(rss0);

    // 4. The naive baseline: the same records as HashMap<String, serde_json::Value>.
    let heap1 = heap::live();
    let map: HashMap<String, serde_json::Value> = fms::corpus::records(&cfg, 0).collect();
    let map_heap = heap::live().saturating_sub(heap1);
    let map = Arc::new(map);
    let m = map.clone();
    let read_map = move |id: &str| -> usize {
        let Some(r) = m.get(id) else { return 0 };
        let t = r.get("title").and_then(|v| v.as_str()).map_or(0, str::len);
        let k = r.get("kind").and_then(|v| v.as_str()).map_or(0, str::len);
        2 * t + k
    };
    let (map_rate, map_sum) = burst(a.threads, a.lookups, &ids, read_map);
    if fms_sum != map_sum {
        return Err(format!(
            "demo: fms and HashMap read different data ({fms_sum} vs {map_sum})"
        ));
    }

    println!(
        "fms demo: scale {} ({} records), seed {}, {} threads x {} lookups",
        a.scale, info.records, a.seed, a.threads, a.lookups
    );
    println!();
    println!("| what | fms snapshot | HashMap<String, serde_json::Value> | ratio |");
    println!("|---|---:|---:|---:|");
    println!(
        "| bytes (file vs JSONL text) | {} | {} | {:.2}x |",
        mb(info.bytes as usize),
        mb(jsonl_bytes),
        info.bytes as f64 / jsonl_bytes as f64
    );
    println!(
        "| heap to hold the tree | {} B | {} | {:.5}x |",
        open_heap,
        mb(map_heap),
        open_heap as f64 / map_heap.max(1) as f64
    );
    println!(
        "| RSS added by open + verify + serving (mapped pages, allocator slack) | {} | - | - |",
        mb(rss_fms)
    );
    println!(
        "| lookups/s (id + 3 fields) | {:.2} M | {:.2} M | {:.2}x |",
        fms_rate / 1e6,
        map_rate / 1e6,
        fms_rate / map_rate
    );
    println!();
    println!(
        "build {:.2?} ({} shapes, {} keys, {} strings), open {:.1?}, verify {:.1?} ({:.0} MB/s), total {:.1?}",
        build_time,
        info.shapes,
        info.keys,
        info.strings,
        open_time,
        verify_time,
        info.bytes as f64 / 1e6 / verify_time.as_secs_f64().max(1e-9),
        t0.elapsed()
    );
    println!("snapshot: {} (hash {})", path.display(), info.hash);
    if a.dir.is_none() {
        println!("(written to a temporary directory and removed; pass --dir to keep it)");
    }
    Ok(())
}
