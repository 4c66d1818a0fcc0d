//! Memory profile with dhat: the heap a server pays to hold N+1 content trees (the default
//! locale and N locales) with fms — a `Store` over a full snapshot and N locale overlays —
//! against the same trees as `HashMap<String, serde_json::Value>`.
//!
//! ```sh
//! cargo run --release --features dhat-heap --example memory_profile -- [--scale 1] [--locales 2]
//! ```
//!
//! It builds the trees first (not profiled), then profiles two phases and prints their heap
//! totals: loading the fms store and reading every record of every tree, then loading the
//! same trees as HashMaps. dhat writes `dhat-heap.json` (in the current directory) with
//! every allocation site of both phases: open it in dhat's viewer
//! (<https://nnethercote.github.io/dh_view/dh_view.html>, "Load…") and sort by "total
//! bytes" or "max bytes": the fms phase's sites are the `Store` and its snapshots
//! (hundreds of bytes each), the HashMap phase's are serde_json's maps and strings.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use fms::corpus::{self, CorpusConfig};
use fms::{Manifest, Snapshot, SnapshotBuilder, Store};
use serde_json::Value;

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

const CODES: [&str; 10] = ["es", "pt", "fr", "de", "it", "ja", "ko", "zh", "ru", "tr"];

fn arg(name: &str, default: f64) -> f64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

fn main() {
    let scale = arg("--scale", 1.0);
    let n = (arg("--locales", 2.0) as usize).min(CODES.len());
    let mut locales = vec!["en".to_owned()];
    locales.extend(CODES[..n].iter().map(|s| s.to_string()));
    let cfg = CorpusConfig {
        scale,
        locales: locales.clone(),
        ..CorpusConfig::default()
    };

    // Build (not profiled): en full, each locale an overlay over en, and a manifest.
    let dir = PathBuf::from("target/fms-memory-profile");
    std::fs::create_dir_all(&dir).expect("create the output directory");
    let mut b = SnapshotBuilder::new();
    for (id, r) in corpus::records(&cfg, 0) {
        b.insert(&id, &r).expect("insert");
    }
    b.write_to_path(dir.join("en.fms")).expect("write en");
    let en = Arc::new(Snapshot::open(dir.join("en.fms")).expect("open en"));
    let mut manifest = Manifest::new("en").locale("en", "en.fms");
    let mut file_bytes = en.as_bytes().len() as u64;
    for (i, code) in locales.iter().enumerate().skip(1) {
        let mut o = SnapshotBuilder::with_base(&en);
        for (id, r) in corpus::records(&cfg, i) {
            o.insert(&id, &r).expect("insert");
        }
        o.remove_absent().expect("remove_absent");
        let info = o
            .write_to_path(dir.join(format!("{code}.fms")))
            .expect("write");
        file_bytes += info.bytes;
        manifest = manifest.locale(code, format!("{code}.fms"));
    }
    manifest
        .write(dir.join("manifest.json"))
        .expect("write manifest");
    drop(en);
    // The JSONL the HashMap side parses, prepared before profiling too.
    let jsonl: Vec<Vec<String>> = (0..locales.len())
        .map(|i| {
            corpus::records(&cfg, i)
                .map(|(id, r)| corpus::jsonl_line(&id, &r))
                .collect()
        })
        .collect();

    let profiler = dhat::Profiler::builder()
        .file_name("dhat-heap.json")
        .build();

    // Phase 1: fms.
    let before = dhat::HeapStats::get();
    let store = Store::open_manifest(dir.join("manifest.json")).expect("open the store");
    let loaded = dhat::HeapStats::get();
    let mut fields = 0u64;
    for locale in &locales {
        let tree = store.current(locale).expect("published");
        for (_, rec) in tree.iter() {
            fields += rec.iter().count() as u64;
        }
    }
    let read = dhat::HeapStats::get();
    let fms_heap = loaded.curr_bytes - before.curr_bytes;
    let fms_blocks = loaded.curr_blocks - before.curr_blocks;
    let read_allocs = read.total_blocks - loaded.total_blocks;

    // Phase 2: the same trees as HashMaps, all held at once as a server would.
    let before = dhat::HeapStats::get();
    let maps: Vec<HashMap<String, Value>> = jsonl
        .iter()
        .map(|lines| {
            corpus::hashmap_of_jsonl(lines.iter().map(String::as_str)).expect("the corpus parses")
        })
        .collect();
    let after = dhat::HeapStats::get();
    let map_heap = after.curr_bytes - before.curr_bytes;
    let map_blocks = after.curr_blocks - before.curr_blocks;

    println!(
        "{} trees (en + {n} locales), scale {scale}, {} records each\n",
        locales.len(),
        maps[0].len()
    );
    println!("| | fms (Store: full en + {n} overlays) | HashMap<String, serde_json::Value> |");
    println!("|---|---:|---:|");
    println!(
        "| heap held after loading | {fms_heap} B in {fms_blocks} blocks | {} in {map_blocks} blocks |",
        mb(map_heap as u64)
    );
    println!(
        "| heap allocated by reading every field ({fields} fields) | {read_allocs} blocks | – |"
    );
    println!("| file bytes (mapped, not heap) | {} | – |", mb(file_bytes));
    println!(
        "\nfms heap / HashMap heap: {:.2e}; fms file bytes / HashMap heap: {:.3}",
        fms_heap as f64 / map_heap as f64,
        file_bytes as f64 / map_heap as f64
    );
    drop(maps);
    drop(store);
    drop(profiler);
    println!(
        "dhat-heap.json written: open it in https://nnethercote.github.io/dh_view/dh_view.html"
    );
}
