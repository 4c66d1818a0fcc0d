//! What one locale tree costs: an fms snapshot against compact JSONL, bincode 2 and a
//! `HashMap<String, serde_json::Value>` on the heap, for the same synthetic corpus.
//!
//! Run: `cargo run --release --example heap_peers [-- <scale>]` (default scale 1).
//!
//! Heap is measured with dhat (requested bytes, without the allocator's own per-block
//! overhead) and, as a cross-check that includes that overhead, as the growth of the
//! process's resident set while the `HashMap` is loaded with no profiler running.

use std::collections::{HashMap, HashSet};

use fms::corpus::{self, CorpusConfig};
use fms::{Snapshot, SnapshotBuilder};
use serde_json::Value;

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

/// Resident set size in bytes, from `/proc/self/statm` (Linux only).
fn rss() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

/// Loads the JSONL into the peer: id → object, as a server would.
fn load(jsonl: &str) -> HashMap<String, Value> {
    corpus::hashmap_of_jsonl(jsonl.lines()).expect("the corpus parses")
}

/// Sums string bytes over a value: `(all string values, object keys)`; collects the
/// distinct strings.
fn anatomy<'a>(v: &'a Value, acc: &mut (u64, u64), distinct: &mut HashSet<&'a str>) {
    match v {
        Value::String(s) => {
            acc.0 += s.len() as u64;
            distinct.insert(s);
        }
        Value::Array(a) => a.iter().for_each(|x| anatomy(x, acc, distinct)),
        Value::Object(m) => {
            for (k, x) in m {
                acc.1 += k.len() as u64;
                distinct.insert(k);
                anatomy(x, acc, distinct);
            }
        }
        _ => {}
    }
}

fn mb(b: u64) -> String {
    format!("{:.1} MB", b as f64 / 1e6)
}

/// The child process: prints the resident-set growth of loading the JSONL at `path`.
fn rss_load(path: &str) {
    let text = std::fs::read_to_string(path).expect("read JSONL");
    let before = rss().expect("/proc/self/statm");
    let peer = load(&text);
    let after = rss().expect("/proc/self/statm");
    assert!(!peer.is_empty());
    println!("{}", after.saturating_sub(before));
}

fn main() {
    if let [_, flag, path] = &std::env::args().collect::<Vec<_>>()[..] {
        if flag == "--rss-load" {
            return rss_load(path);
        }
    }
    let scale = std::env::args()
        .nth(1)
        .map(|s| s.parse::<f64>().expect("scale: a number"))
        .unwrap_or(1.0);
    let cfg = CorpusConfig {
        scale,
        ..CorpusConfig::default()
    };
    let t = std::time::Instant::now();
    let tree = corpus::generate(&cfg).trees.remove(0);
    let gen_time = t.elapsed();

    let mut jsonl = String::new();
    for (id, rec) in &tree {
        jsonl.push_str(&corpus::jsonl_line(id, rec));
        jsonl.push('\n');
    }
    let jsonl_bytes = jsonl.len() as u64;

    let (mut acc, mut distinct) = ((0u64, 0u64), HashSet::new());
    for (id, rec) in &tree {
        distinct.insert(id.as_str());
        acc.0 += id.len() as u64;
        anatomy(rec, &mut acc, &mut distinct);
    }
    let distinct_bytes: u64 = distinct.iter().map(|s| s.len() as u64).sum();
    let distinct_count = distinct.len();
    drop(distinct);

    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("en.fms");
    let mut b = SnapshotBuilder::new();
    for (id, rec) in &tree {
        b.insert(id, rec).expect("insert");
    }
    let info = b.write_to_path(&path).expect("write snapshot");
    drop(b);

    // Two locale trees (the motivating case): the default tree plus a second locale that
    // translates 70% of the text fields, as two snapshots and as one snapshot holding both
    // (ids prefixed with the locale), whose shared pool stores each untranslated string once.
    let two = CorpusConfig {
        locales: vec![cfg.locale_codes()[0].clone(), "es".to_owned()],
        ..cfg.clone()
    };
    let mut second = SnapshotBuilder::new();
    let mut both = SnapshotBuilder::new();
    let mut jsonl2 = jsonl_bytes;
    for (id, rec) in &tree {
        both.insert(&format!("en/{id}"), rec).expect("insert");
    }
    for (id, rec) in corpus::records(&two, 1) {
        jsonl2 += corpus::jsonl_line(&id, &rec).len() as u64 + 1;
        second.insert(&id, &rec).expect("insert");
        both.insert(&format!("es/{id}"), &rec).expect("insert");
    }
    let second_bytes = second.to_bytes_with_info().expect("build").1.bytes;
    let both_bytes = both.to_bytes_with_info().expect("build").1.bytes;
    drop((second, both));
    drop(tree);

    // Resident-set growth of loading the peer, measured in a fresh child process with no
    // profiler running (it includes malloc's per-block overhead and fragmentation: the
    // real-world number).
    let jsonl_path = dir.path().join("en.jsonl");
    std::fs::write(&jsonl_path, &jsonl).expect("write JSONL");
    let rss_delta = std::env::current_exe().ok().and_then(|exe| {
        let out = std::process::Command::new(exe)
            .arg("--rss-load")
            .arg(&jsonl_path)
            .output()
            .ok()?;
        String::from_utf8(out.stdout)
            .ok()?
            .trim()
            .parse::<u64>()
            .ok()
    });

    let _profiler = dhat::Profiler::builder().testing().build();
    let h0 = dhat::HeapStats::get();
    let peer = load(&jsonl);
    let h1 = dhat::HeapStats::get();
    let map_heap = (h1.curr_bytes - h0.curr_bytes) as u64;
    let map_blocks = h1.curr_blocks - h0.curr_blocks;

    let s0 = dhat::HeapStats::get();
    let snap = Snapshot::open(&path).expect("open");
    let s1 = dhat::HeapStats::get();
    let open_heap = (s1.curr_bytes - s0.curr_bytes) as u64;
    let open_blocks = s1.curr_blocks - s0.curr_blocks;

    // Reading every record's title allocates nothing.
    let title = snap.key("title").expect("title key");
    let r0 = dhat::HeapStats::get();
    let mut title_bytes = 0;
    for (_, rec) in snap.iter() {
        title_bytes += rec
            .get_key(title)
            .and_then(|v| v.as_str())
            .map_or(0, |s| s.len());
    }
    let r1 = dhat::HeapStats::get();
    let read_allocs = r1.total_blocks - r0.total_blocks;

    let bincode_bytes = bincode::serde::encode_to_vec(&peer, bincode::config::standard())
        .expect("bincode")
        .len() as u64;
    assert_eq!(peer.len(), snap.len());

    let snap_bytes = info.bytes;
    let ratio = |x: u64| snap_bytes as f64 / x as f64;
    println!(
        "corpus: scale {scale}, seed {}, locale {}: {} records, generated in {gen_time:.2?}",
        cfg.seed,
        cfg.locale_codes()[0],
        snap.len()
    );
    println!();
    println!("| ratio | value |");
    println!("|---|---:|");
    println!(
        "| fms snapshot / compact JSONL | {:.3} |",
        ratio(jsonl_bytes)
    );
    println!("| fms snapshot / bincode 2 | {:.3} |", ratio(bincode_bytes));
    println!(
        "| fms snapshot / HashMap heap (dhat) | {:.3} |",
        ratio(map_heap)
    );
    if let Some(d) = rss_delta {
        println!("| fms snapshot / HashMap RSS growth | {:.3} |", ratio(d));
    }
    println!();
    println!("| form | bytes | |");
    println!("|---|---:|---:|");
    println!(
        "| compact JSONL (`{{\"id\":..,...}}` + `\\n`) | {jsonl_bytes} | {} |",
        mb(jsonl_bytes)
    );
    println!("| fms snapshot file | {snap_bytes} | {} |", mb(snap_bytes));
    println!(
        "| bincode 2 (standard) of the HashMap | {bincode_bytes} | {} |",
        mb(bincode_bytes)
    );
    println!(
        "| HashMap<String, Value> heap, dhat ({map_blocks} blocks) | {map_heap} | {} |",
        mb(map_heap)
    );
    if let Some(d) = rss_delta {
        println!(
            "| HashMap<String, Value> RSS growth while loading | {d} | {} |",
            mb(d)
        );
    }
    println!("| fms Snapshot::open heap ({open_blocks} blocks) | {open_heap} | |");
    println!(
        "| fms allocations reading {} titles ({title_bytes} bytes) | {read_allocs} | |",
        snap.len()
    );
    println!();
    println!("snapshot sections:");
    for (name, bytes) in &info.sections {
        println!(
            "  {name:<8} {bytes:>12}  {:5.1}%",
            *bytes as f64 * 100.0 / snap_bytes as f64
        );
    }
    println!(
        "  ({} distinct strings in the pool, {} shapes, {} keys, {} nodes)",
        info.strings, info.shapes, info.keys, info.nodes
    );
    println!();
    println!(
        "two locales ({} + es, translated {}):",
        cfg.locale_codes()[0],
        two.translated
    );
    println!("  compact JSONL, both trees       {jsonl2:>12}");
    println!(
        "  two snapshots                   {:>12}  {:.3} of JSONL",
        snap_bytes + second_bytes,
        (snap_bytes + second_bytes) as f64 / jsonl2 as f64
    );
    println!(
        "  one snapshot holding both trees {both_bytes:>12}  {:.3} of JSONL",
        both_bytes as f64 / jsonl2 as f64
    );
    println!();
    println!("corpus anatomy (JSON text, before escaping):");
    println!(
        "  string values incl. ids  {:>12}  {:5.1}% of JSONL",
        acc.0,
        acc.0 as f64 * 100.0 / jsonl_bytes as f64
    );
    println!(
        "  object keys              {:>12}  {:5.1}% of JSONL",
        acc.1,
        acc.1 as f64 * 100.0 / jsonl_bytes as f64
    );
    println!(
        "  distinct strings         {distinct_bytes:>12}  {:5.1}% of JSONL ({distinct_count} strings)",
        distinct_bytes as f64 * 100.0 / jsonl_bytes as f64
    );
}
