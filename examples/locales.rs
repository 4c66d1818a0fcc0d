//! Many trees at once: the default locale's tree plus 10 locale overlays (each translating
//! 70% of the text fields), against the same 11 trees as full snapshots, as JSONL and as
//! `HashMap<String, serde_json::Value>` on the heap; and the resident memory of a process
//! that opens all 11 and reads every field of every record.
//!
//! Run: `cargo run --release --example locales [-- <scale> [<locales>]]` (default: scale 1,
//! 10 locales besides `en`). The files go to `target/fms-locales/`.
//!
//! Heap is measured with dhat (requested bytes); RSS is read from `/proc/self/status` of a
//! child process (`locales read <dir>`) that does nothing but open and read the trees.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use fms::corpus::{self, CorpusConfig};
use fms::{Snapshot, SnapshotBuilder, Store};
use serde_json::Value;

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

const CODES: [&str; 10] = ["es", "pt", "fr", "de", "it", "ja", "ko", "zh", "ru", "tr"];

/// Bytes of the strings in `new` that differ from `old` at the same place: the text a
/// translation actually changes. Equal values count 0; strings count their new bytes;
/// lists of equal length and objects with the same keys are compared element by element;
/// anything else counts all the strings of the new value.
fn changed_text(new: &Value, old: Option<&Value>) -> u64 {
    match (new, old) {
        (n, Some(o)) if n == o => 0,
        (Value::String(s), _) => s.len() as u64,
        (Value::Array(a), Some(Value::Array(b))) if a.len() == b.len() => {
            a.iter().zip(b).map(|(x, y)| changed_text(x, Some(y))).sum()
        }
        (Value::Object(a), Some(Value::Object(b))) if a.keys().eq(b.keys()) => {
            a.iter().map(|(k, x)| changed_text(x, b.get(k))).sum()
        }
        (Value::Array(a), _) => a.iter().map(|x| changed_text(x, None)).sum(),
        (Value::Object(a), _) => a.values().map(|x| changed_text(x, None)).sum(),
        _ => 0,
    }
}

fn section(info: &fms::BuildInfo, name: &str) -> u64 {
    info.sections
        .iter()
        .find(|(s, _)| *s == name)
        .map_or(0, |s| s.1)
}

/// The `/proc/self/status` fields, in bytes.
fn status(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

/// Child mode: open every tree of the manifest in `dir` through a Store, read every field
/// of every record of each locale, print RSS.
fn read_all(dir: &Path) {
    let rss0 = status("VmRSS:");
    let start = Instant::now();
    let store = Store::open_manifest(dir.join("manifest.json")).expect("manifest");
    let opened = start.elapsed();
    let rss_open = status("VmRSS:");
    let mut fields = 0u64;
    let mut bytes = 0u64;
    for (locale, _) in store.published() {
        let tree = store.current(&locale).unwrap();
        for (_, rec) in tree.iter() {
            for (_, v) in rec.iter() {
                fields += 1;
                // Serializing walks every nested value and string.
                bytes += serde_json::to_string(&v).unwrap().len() as u64;
            }
        }
    }
    println!(
        "child: opened {} trees in {opened:.2?}; read {fields} fields ({bytes} bytes of JSON) in {:.2?}",
        store.published().len(),
        start.elapsed()
    );
    println!(
        "child: RSS {} MB before open, {} MB after open, {} MB after reading everything (peak {} MB)",
        rss0 >> 20,
        rss_open >> 20,
        status("VmRSS:") >> 20,
        status("VmHWM:") >> 20
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("read") {
        return read_all(Path::new(&args[2]));
    }
    let scale: f64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(1.0);
    let n_locales: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(10);
    let mut locales = vec!["en".to_owned()];
    locales.extend(CODES.iter().take(n_locales).map(|s| s.to_string()));
    let cfg = CorpusConfig {
        scale,
        locales: locales.clone(),
        translated: 0.7,
        ..CorpusConfig::default()
    };
    let dir = PathBuf::from("target/fms-locales");
    std::fs::create_dir_all(&dir).unwrap();

    let t = Instant::now();
    let en: Vec<(String, Value)> = corpus::records(&cfg, 0).collect();
    let mut b = SnapshotBuilder::new();
    for (id, r) in &en {
        b.insert(id, r).unwrap();
    }
    let en_info = b.write_to_path(dir.join("en.fms")).unwrap();
    let base = Arc::new(Snapshot::open(dir.join("en.fms")).unwrap());
    let en_by_id: HashMap<&str, &Value> = en.iter().map(|(i, v)| (i.as_str(), v)).collect();
    let jsonl_of = |tree: &[(String, Value)]| -> u64 {
        tree.iter()
            .map(|(id, v)| corpus::jsonl_line(id, v).len() as u64 + 1)
            .sum()
    };
    let en_jsonl = jsonl_of(&en);
    println!(
        "scale {scale}: {} records per tree, {} locales besides en, 70% of text fields translated",
        en.len(),
        locales.len() - 1
    );

    // Per tree: overlay bytes, its id index, changed text, full snapshot bytes, JSONL bytes.
    println!(
        "\n| tree | overlay bytes | of which id index | changed text bytes | (overlay − ids) / text | full snapshot bytes | JSONL bytes | records patched / replaced |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---|");
    println!(
        "| en (default, full) | {} | {} | – | – | {} | {} | – |",
        en_info.bytes,
        section(&en_info, "ids"),
        en_info.bytes,
        en_jsonl
    );
    let mut manifest = fms::Manifest::new("en").locale("en", "en.fms");
    let (mut sum_over, mut sum_full, mut sum_jsonl) = (en_info.bytes, en_info.bytes, en_jsonl);
    let (mut sum_text, mut sum_ids) = (0u64, 0u64);
    let mut worst_ratio = 0f64;
    for (li, code) in locales.iter().enumerate().skip(1) {
        let tree: Vec<(String, Value)> = corpus::records(&cfg, li).collect();
        let text: u64 = tree
            .iter()
            .map(|(id, v)| changed_text(v, en_by_id.get(id.as_str()).copied()))
            .sum();
        let mut o = SnapshotBuilder::with_base(&base);
        for (id, r) in &tree {
            o.insert(id, r).unwrap();
        }
        o.remove_absent().unwrap();
        let file = format!("{code}.fms");
        let info = o.write_to_path(dir.join(&file)).unwrap();
        manifest = manifest.locale(code, file);
        let mut f = SnapshotBuilder::new();
        for (id, r) in &tree {
            f.insert(id, r).unwrap();
        }
        let full = f.to_bytes_with_info().unwrap().1;
        let ids = section(&info, "ids");
        let ratio = (info.bytes - ids) as f64 / text.max(1) as f64;
        worst_ratio = worst_ratio.max(ratio);
        let ov = info.overlay.clone().unwrap();
        let jsonl = jsonl_of(&tree);
        println!(
            "| {code} (overlay) | {} | {ids} | {text} | {ratio:.3} | {} | {jsonl} | {} / {} |",
            info.bytes, full.bytes, ov.patched, ov.replaced
        );
        sum_over += info.bytes;
        sum_full += full.bytes;
        sum_jsonl += jsonl;
        sum_text += text;
        sum_ids += ids;
    }
    manifest.write(dir.join("manifest.json")).unwrap();
    println!(
        "| **all {} trees** | **{sum_over}** | {sum_ids} | {sum_text} | worst {worst_ratio:.3} | {sum_full} | {sum_jsonl} | |",
        locales.len()
    );
    println!("(built in {:.1?})", t.elapsed());

    // Heap of the same trees as HashMap<String, serde_json::Value>, one at a time (dhat).
    let t = Instant::now();
    let _profiler = dhat::Profiler::builder().testing().build();
    let mut heap_total = 0u64;
    let mut heaps = Vec::new();
    for li in 0..locales.len() {
        let tree: Vec<(String, Value)> = corpus::records(&cfg, li).collect();
        let jsonl: Vec<String> = tree
            .iter()
            .map(|(id, v)| corpus::jsonl_line(id, v))
            .collect();
        drop(tree);
        let before = dhat::HeapStats::get().curr_bytes;
        let map =
            corpus::hashmap_of_jsonl(jsonl.iter().map(String::as_str)).expect("the corpus parses");
        let heap = (dhat::HeapStats::get().curr_bytes - before) as u64;
        assert_eq!(map.len(), en.len());
        drop(map);
        heaps.push(heap);
        heap_total += heap;
    }
    println!(
        "\nHashMap<String, serde_json::Value> heap (dhat, each tree loaded alone): {} MB total for {} trees (default tree {} MB; measured in {:.1?})",
        heap_total >> 20,
        heaps.len(),
        heaps[0] >> 20,
        t.elapsed()
    );
    println!(
        "fms bytes / HashMap heap: default + overlays {:.4}; 11 full snapshots {:.4}; JSONL {:.4}",
        sum_over as f64 / heap_total as f64,
        sum_full as f64 / heap_total as f64,
        sum_jsonl as f64 / heap_total as f64
    );
    println!(
        "fms default + overlays / 11 full snapshots: {:.4}",
        sum_over as f64 / sum_full as f64
    );

    // RSS of a fresh process that opens all trees and reads everything.
    let exe = std::env::current_exe().unwrap();
    let out = std::process::Command::new(exe)
        .arg("read")
        .arg(&dir)
        .output()
        .unwrap();
    print!("{}", String::from_utf8_lossy(&out.stdout));
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
}
