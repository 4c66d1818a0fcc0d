//! `fms demo`: the main job, end to end. Generates the synthetic content site in the default
//! locale and N translated locales, builds the default tree and one overlay per locale,
//! serves a burst of lookups from several threads through a `Store` opened from a manifest,
//! swaps in a new content version of the default tree while they run, and prints what it
//! all used next to the same data held as `HashMap<String, serde_json::Value>`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use fms::corpus::{self, CorpusConfig};
use fms::{BuildInfo, ContentHash, Manifest, Snapshot, SnapshotBuilder, Store};
use serde_json::Value;

use crate::CliResult;
use crate::heap;

/// Locale codes the demo adds to the default `en`, in this order.
const CODES: [&str; 20] = [
    "es", "pt", "fr", "de", "tr", "hi", "bn", "zh-hans", "ja", "ko", "ru", "pl", "it", "nl", "cs",
    "uk", "id", "vi", "th", "ar",
];

/// The fields each request reads by name.
const FIELDS: [&str; 4] = ["title", "kind", "slug", "description"];

#[derive(clap::Args)]
#[command(
    after_help = "What it does: generates the corpus (`fms gen`'s generator), builds the \
default tree (en) as a full snapshot and each locale as an overlay over it (the complete locale \
tree in, SnapshotBuilder::with_base + remove_absent), writes them and a manifest, opens a Store \
from the manifest, and serves requests from --threads threads for --seconds: each request picks \
a locale, pins store.current(locale) for the request, looks up a random id and reads four fields \
by name. Meanwhile it builds a content update of en (1% of records changed, 0.1% added, 0.1% \
removed) as an overlay over en, writes a new manifest in which en serves it, reloads the store \
and evicts what nothing serves. The locale overlays keep reading their own version of en.\n\n\
The HashMap<String, serde_json::Value> figures are measured by parsing the JSONL of the default \
tree and of one locale tree with a counting allocator; the figure for all trees is extrapolated \
from those two (and labelled so)."
)]
pub struct Args {
    /// Corpus scale (1 = the ~26,000-entity content site).
    #[arg(long, default_value_t = 1.0)]
    scale: f64,
    /// Corpus seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Translated locales besides the default one (at most 20).
    #[arg(long, default_value_t = 10)]
    locales: usize,
    /// Fraction of text fields each locale translates.
    #[arg(long, default_value_t = 0.7)]
    translated: f64,
    /// Reader threads.
    #[arg(long, default_value_t = 4)]
    threads: usize,
    /// How long to serve requests (the content update lands during it).
    #[arg(long, default_value_t = 3.0)]
    seconds: f64,
    /// Where to write the snapshots and manifest (default: a temporary directory, removed
    /// afterwards).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Then serve the same trees through the memcached tier: start 4 memcached servers on
    /// loopback (memcached must be installed), push, and serve 50-id get_many requests.
    #[arg(long)]
    remote: bool,
    /// String compression of every tree, as `fms build --compress`: none, auto or a zstd
    /// level 1-22.
    #[arg(long, default_value = "auto", value_parser = crate::build::parse_compression)]
    compress: fms::Compression,
}

/// Bytes in MB (kB below 0.1 MB, so that a small overlay does not read as 0.0 MB).
fn mb(bytes: u64) -> String {
    if bytes < 100_000 {
        format!("{:.1} kB", bytes as f64 / 1e3)
    } else {
        format!("{:.1} MB", bytes as f64 / 1e6)
    }
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// A xorshift64 step: the demo's request stream, deterministic per thread.
fn next(x: &mut u64) -> u64 {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    *x
}

/// The string bytes of the request's fields (so reads cannot be optimized away).
fn read_fms(rec: &fms::Record<'_>) -> usize {
    FIELDS
        .iter()
        .map(|f| rec.get(f).and_then(|v| v.as_str()).map_or(0, |s| s.len()))
        .sum()
}

fn read_map(rec: &Value) -> usize {
    FIELDS
        .iter()
        .map(|f| rec.get(f).and_then(Value::as_str).map_or(0, str::len))
        .sum()
}

/// One built tree.
struct Tree {
    locale: String,
    file: String,
    info: BuildInfo,
    /// Bytes of the same tree as compact JSONL.
    jsonl: u64,
    secs: f64,
}

/// Builds locale `index` of `cfg` as an overlay over `base`: the complete tree in, then
/// `remove_absent`; writes `dir/<file>`.
fn build_overlay(
    cfg: &CorpusConfig,
    index: usize,
    base: &Arc<Snapshot>,
    dir: &Path,
    compress: fms::Compression,
) -> Result<Tree, String> {
    let t = Instant::now();
    let locale = cfg.locale_codes()[index].clone();
    let file = format!("{locale}.fms");
    let mut b = SnapshotBuilder::with_base(base);
    b.set_compression(compress);
    let mut jsonl = 0u64;
    for (id, rec) in corpus::records(cfg, index) {
        jsonl += corpus::jsonl_line(&id, &rec).len() as u64 + 1;
        b.insert(&id, &rec).map_err(err)?;
    }
    b.remove_absent().map_err(err)?;
    let info = b.write_to_path(dir.join(&file)).map_err(err)?;
    Ok(Tree {
        locale,
        file,
        info,
        jsonl,
        secs: t.elapsed().as_secs_f64(),
    })
}

/// The content update: the default tree with 1% of records changed (title and
/// date_modified), 0.1% removed and 0.1% added, built as an overlay over `base`.
fn build_update(
    cfg: &CorpusConfig,
    base: &Arc<Snapshot>,
    path: &Path,
    compress: fms::Compression,
) -> Result<(BuildInfo, Vec<String>), String> {
    let mut b = SnapshotBuilder::with_base(base);
    b.set_compression(compress);
    let mut changed = Vec::new();
    for (i, (id, mut rec)) in corpus::records(cfg, 0).enumerate() {
        if i % 1000 == 501 {
            continue; // removed in the new version
        }
        if i % 100 == 37 {
            if let Some(obj) = rec.as_object_mut() {
                let title = obj.get("title").and_then(Value::as_str).unwrap_or("");
                let title = format!("{title} (updated)");
                obj.insert("title".into(), Value::from(title));
                obj.insert("date_modified".into(), Value::from("2026-11-24T00:00:00Z"));
            }
            changed.push(id.clone());
        }
        if i % 1000 == 777 {
            let new_id = format!("{id}-v2");
            b.insert(&new_id, &rec).map_err(err)?;
        }
        b.insert(&id, &rec).map_err(err)?;
    }
    b.remove_absent().map_err(err)?;
    let info = b.write_to_path(path).map_err(err)?;
    Ok((info, changed))
}

/// What the reader threads did.
#[derive(Default)]
struct Served {
    requests: u64,
    /// Requests served in each phase: before the update, while it is built (the build
    /// shares the CPU), after the swap.
    by_phase: [u64; 3],
    found: u64,
    bytes: usize,
    en_old: u64,
    en_new: u64,
}

/// What the reader threads share with the main thread.
struct Serving {
    store: Store,
    /// The locales requests pick from (the default one first).
    locales: Vec<String>,
    /// The ids requests look up.
    ids: Vec<String>,
    /// The default tree's version before the update.
    en_old: ContentHash,
    stop: AtomicBool,
    /// 0 before the update, 1 while it is built, 2 after the swap.
    phase: AtomicUsize,
    /// Whether some request has read the updated default tree.
    saw_new: AtomicBool,
}

/// Serves requests from `threads` threads until `stop`: each picks a locale, pins its tree
/// for the request, looks up a random id, reads `FIELDS` by name.
fn serve(sh: &Arc<Serving>, threads: usize) -> Vec<std::thread::JoinHandle<Served>> {
    (0..threads)
        .map(|t| {
            let sh = sh.clone();
            std::thread::spawn(move || {
                let mut s = Served::default();
                let mut x = 0x9E37_79B9_7F4A_7C15u64 ^ (t as u64 + 1).wrapping_mul(0xA24B_AED4);
                let (nl, ni) = (sh.locales.len() as u64, sh.ids.len() as u64);
                while !sh.stop.load(Ordering::Relaxed) {
                    s.by_phase[sh.phase.load(Ordering::Relaxed).min(2)] += 256;
                    for _ in 0..256 {
                        let li = (next(&mut x) % nl) as usize;
                        let id = &sh.ids[(next(&mut x) % ni) as usize];
                        // One request: pin the locale's current version, read through it.
                        let Some(tree) = sh.store.current(&sh.locales[li]) else {
                            continue;
                        };
                        if li == 0 {
                            if tree.hash() == sh.en_old {
                                s.en_old += 1;
                            } else {
                                if s.en_new == 0 {
                                    sh.saw_new.store(true, Ordering::Relaxed);
                                }
                                s.en_new += 1;
                            }
                        }
                        if let Some(rec) = tree.get(id) {
                            s.found += 1;
                            s.bytes = s.bytes.wrapping_add(read_fms(&rec));
                        }
                        s.requests += 1;
                    }
                }
                s
            })
        })
        .collect()
}

/// Runs `read(i)` for random `i` from `threads` threads for `secs`; returns requests/s.
fn burst<F>(threads: usize, n: usize, secs: f64, read: F) -> f64
where
    F: Fn(usize) -> usize + Send + Sync + Clone + 'static,
{
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let (read, stop, done) = (read.clone(), stop.clone(), done.clone());
            std::thread::spawn(move || {
                let mut x = 0x2545_F491_4F6C_DD1Du64 ^ (t as u64 + 1).wrapping_mul(0x9E37_79B9);
                let (mut count, mut sum) = (0usize, 0usize);
                while !stop.load(Ordering::Relaxed) {
                    for _ in 0..256 {
                        sum = sum.wrapping_add(read((next(&mut x) % n as u64) as usize));
                    }
                    count += 256;
                }
                done.fetch_add(count, Ordering::Relaxed);
                std::hint::black_box(sum)
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs_f64(secs));
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        let _ = h.join();
    }
    done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
}

/// The tree of locale `index` as `HashMap<String, serde_json::Value>`, parsed from its JSONL
/// lines; returns the map and the heap it holds (counting allocator: bytes live after
/// minus before; each line is freed before the next).
fn parse_as_map(cfg: &CorpusConfig, index: usize) -> Result<(HashMap<String, Value>, u64), String> {
    let lines: Vec<String> = corpus::records(cfg, index)
        .map(|(id, rec)| corpus::jsonl_line(&id, &rec))
        .collect();
    let before = heap::live();
    let mut map = HashMap::new();
    for line in &lines {
        let mut v: Value = serde_json::from_str(line).map_err(err)?;
        let id = match v.as_object_mut().and_then(|o| o.remove("id")) {
            Some(Value::String(s)) => s,
            _ => return Err("demo: a generated record has no string id".into()),
        };
        map.insert(id, v);
    }
    let held = heap::live().saturating_sub(before) as u64;
    drop(lines);
    Ok((map, held))
}

pub fn run(a: Args) -> CliResult {
    let t0 = Instant::now();
    if !a.scale.is_finite() || a.scale <= 0.0 {
        return Err(format!(
            "--scale must be a positive number, not {}",
            a.scale
        ));
    }
    if a.locales > CODES.len() {
        return Err(format!(
            "--locales: at most {}, not {}",
            CODES.len(),
            a.locales
        ));
    }
    if !(0.0..=1.0).contains(&a.translated) {
        return Err(format!(
            "--translated must be between 0 and 1, not {}",
            a.translated
        ));
    }
    if a.threads == 0 || !a.seconds.is_finite() || a.seconds <= 0.0 {
        return Err("--threads and --seconds must be positive".into());
    }
    if a.remote && crate::demo_remote::memcached_binary().is_none() {
        return Err(crate::demo_remote::missing());
    }
    let mut codes = vec!["en".to_owned()];
    codes.extend(CODES[..a.locales].iter().map(|c| c.to_string()));
    let cfg = CorpusConfig {
        scale: a.scale,
        seed: a.seed,
        locales: codes.clone(),
        translated: a.translated,
    };
    let tmp = tempfile::tempdir().map_err(|e| format!("temporary directory: {e}"))?;
    let dir = a.dir.clone().unwrap_or_else(|| tmp.path().to_owned());
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    say!(
        "fms demo: scale {} ({} entities per tree), en + {} locales translating {:.0}% of text \
         fields, seed {}, in {}",
        a.scale,
        cfg.counts().total(),
        a.locales,
        a.translated * 100.0,
        a.seed,
        dir.display()
    );

    // 1. The default tree: corpus -> full snapshot.
    let t = Instant::now();
    let mut b = SnapshotBuilder::new();
    b.set_compression(a.compress);
    let mut ids = Vec::new();
    let mut en_jsonl = 0u64;
    for (id, rec) in corpus::records(&cfg, 0) {
        en_jsonl += corpus::jsonl_line(&id, &rec).len() as u64 + 1;
        b.insert(&id, &rec).map_err(err)?;
        ids.push(id);
    }
    if ids.is_empty() {
        return Err("demo: the corpus is empty (scale too small)".into());
    }
    let info = b.write_to_path(dir.join("en.fms")).map_err(err)?;
    drop(b);
    let mut trees = vec![Tree {
        locale: "en".into(),
        file: "en.fms".into(),
        info,
        jsonl: en_jsonl,
        secs: t.elapsed().as_secs_f64(),
    }];
    say!(
        "built en.fms: {} records, {} in {:.2}s",
        trees[0].info.records,
        mb(trees[0].info.bytes),
        trees[0].secs
    );

    // 2. One overlay per locale over en, built in parallel (complete tree in, minimal
    //    overlay out).
    let t = Instant::now();
    let base = Arc::new(Snapshot::open(dir.join("en.fms")).map_err(err)?);
    let workers = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .min(a.locales.max(1));
    let next_locale = AtomicUsize::new(1);
    let built: Vec<Result<Tree, String>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                s.spawn(|| {
                    let mut out = Vec::new();
                    loop {
                        let i = next_locale.fetch_add(1, Ordering::Relaxed);
                        if i >= codes.len() {
                            break out;
                        }
                        out.push(build_overlay(&cfg, i, &base, &dir, a.compress));
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| {
                h.join()
                    .unwrap_or_else(|_| vec![Err("a build panicked".into())])
            })
            .collect()
    });
    let mut locale_trees = built.into_iter().collect::<Result<Vec<_>, _>>()?;
    locale_trees.sort_by_key(|t| codes.iter().position(|c| *c == t.locale));
    drop(base);
    if !locale_trees.is_empty() {
        say!(
            "built {} locale overlays over en in {:.2}s on {workers} threads ({:.2}s each on average)",
            locale_trees.len(),
            t.elapsed().as_secs_f64(),
            locale_trees.iter().map(|t| t.secs).sum::<f64>() / locale_trees.len() as f64
        );
    }
    trees.extend(locale_trees);

    // 3. A manifest, and a Store opened from it: what a server does at start.
    let manifest_path = dir.join("manifest.json");
    let mut manifest = Manifest::new("en");
    for t in &trees {
        manifest = manifest.locale(&t.locale, &t.file);
    }
    manifest.write(&manifest_path).map_err(err)?;
    let (heap0, rss0) = (heap::live(), heap::status("VmRSS:"));
    let file0 = heap::status("RssFile:");
    let t = Instant::now();
    let store = Store::open_manifest(&manifest_path).map_err(err)?;
    let open_secs = t.elapsed().as_secs_f64();
    let store_heap = heap::live().saturating_sub(heap0);
    let en_old = store.current("en").ok_or("demo: en is not served")?.hash();
    say!(
        "opened the store from {}: {} trees in {:.2} ms, {} B of heap",
        manifest_path.display(),
        store.published().len(),
        open_secs * 1e3,
        store_heap
    );

    // 4. Serve; a content update of en lands while the requests run.
    let sh = Arc::new(Serving {
        store,
        locales: codes.clone(),
        ids,
        en_old,
        stop: AtomicBool::new(false),
        phase: AtomicUsize::new(0),
        saw_new: AtomicBool::new(false),
    });
    let start = Instant::now();
    let handles = serve(&sh, a.threads);
    std::thread::sleep(Duration::from_secs_f64(a.seconds * 0.25));
    sh.phase.store(1, Ordering::Relaxed);
    let t = Instant::now();
    let build_started = start.elapsed().as_secs_f64();
    let en_v1 = sh.store.current("en").ok_or("demo: en is not served")?;
    let (update, changed) = build_update(&cfg, &en_v1, &dir.join("en-v2.fms"), a.compress)?;
    drop(en_v1);
    let update_build = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let next_manifest = Manifest {
        bases: vec![PathBuf::from("en.fms")],
        ..manifest.clone().locale("en", "en-v2.fms")
    };
    next_manifest.write(&manifest_path).map_err(err)?;
    let heap_reload = heap::live();
    sh.store.reload(&manifest_path).map_err(err)?;
    let evicted = sh.store.evict_unpublished();
    // The readers allocate nothing and the update's builder is gone: this is the store's.
    let store_heap_after = (store_heap + heap::live()).saturating_sub(heap_reload);
    let swap_ms = t.elapsed().as_secs_f64() * 1e3;
    let swapped_at = start.elapsed().as_secs_f64();
    sh.phase.store(2, Ordering::Relaxed);
    let remaining = (a.seconds - swapped_at).max(a.seconds * 0.25);
    std::thread::sleep(Duration::from_secs_f64(remaining));
    // Serve until some request has read the new version (at once, unless the machine is
    // very busy), so that the demo always shows both.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !sh.saw_new.load(Ordering::Relaxed) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    sh.stop.store(true, Ordering::Relaxed);
    let mut served = Served::default();
    for h in handles {
        let s = h.join().map_err(|_| "demo: a reader thread panicked")?;
        served.requests += s.requests;
        served.found += s.found;
        served.bytes = served.bytes.wrapping_add(s.bytes);
        served.en_old += s.en_old;
        served.en_new += s.en_new;
        for p in 0..3 {
            served.by_phase[p] += s.by_phase[p];
        }
    }
    let serve_secs = start.elapsed().as_secs_f64();
    let spans = [
        build_started,
        swapped_at - build_started,
        serve_secs - swapped_at,
    ];
    let rate = |p: usize| served.by_phase[p] as f64 / spans[p].max(1e-9);
    let (rss_served, file_served, anon_served) = (
        heap::status("VmRSS:"),
        heap::status("RssFile:"),
        heap::status("RssAnon:"),
    );
    let upd = update
        .overlay
        .as_ref()
        .ok_or("demo: the update is not an overlay")?;
    say!(
        "served {} requests on {} threads in {:.2}s; the update (en-v2.fms: {} changed, {} added, \
         {} removed, {}) was built in {:.2}s while serving and swapped in at {:.2}s ({:.1} ms: \
         write manifest, reload, evict {evicted})",
        served.requests,
        a.threads,
        serve_secs,
        upd.replaced + upd.patched,
        upd.added,
        upd.removed,
        mb(update.bytes),
        update_build,
        swapped_at,
        swap_ms
    );

    // The swap is visible to en, and only to en: each locale pins its own version of en.
    let en_now = sh.store.current("en").ok_or("demo: en is not served")?;
    let probe = changed.first().ok_or("demo: the update changed nothing")?;
    let title = |tree: &Snapshot| -> String {
        tree.get(probe)
            .and_then(|r| {
                r.get("title")
                    .and_then(|v| v.to_str())
                    .map(|s| s.into_owned())
            })
            .unwrap_or_default()
    };
    if !title(&en_now).ends_with("(updated)") {
        return Err(format!("demo: en does not serve the update for {probe}"));
    }
    if let Some(other) = codes.get(1).and_then(|c| sh.store.current(c)) {
        if title(&other).ends_with("(updated)") {
            return Err(format!("demo: {} sees en's update", codes[1]));
        }
    }
    drop(en_now);

    // 5. Verify every tree (each overlay's whole chain); after the RSS reading, since it
    //    touches every page.
    let t = Instant::now();
    for (locale, _) in sh.store.published() {
        let tree = sh.store.current(&locale).ok_or("demo: a locale vanished")?;
        tree.verify().map_err(|e| format!("{locale}: {e}"))?;
    }
    let verify_secs = t.elapsed().as_secs_f64();

    // 6. The default tree alone: fms against HashMap<String, serde_json::Value>, same reads.
    let cmp_secs = (a.seconds / 3.0).clamp(0.05, 1.0);
    let en_tree = Arc::new(Snapshot::open(dir.join("en.fms")).map_err(err)?);
    let n_ids = sh.ids.len();
    let (s, sh2) = (en_tree.clone(), sh.clone());
    let fms_rate = burst(a.threads, n_ids, cmp_secs, move |i| {
        s.get(&sh2.ids[i]).map_or(0, |r| read_fms(&r))
    });
    let (map, map_heap_en) = parse_as_map(&cfg, 0)?;
    // Same data read both ways.
    for id in &sh.ids {
        let x = en_tree.get(id).map(|r| read_fms(&r));
        let y = map.get(id).map(read_map);
        if x != y {
            return Err(format!("demo: fms and HashMap read {id} differently"));
        }
    }
    let map = Arc::new(map);
    let (m, sh2) = (map.clone(), sh.clone());
    let map_rate = burst(a.threads, n_ids, cmp_secs, move |i| {
        m.get(&sh2.ids[i]).map_or(0, read_map)
    });
    drop(map);
    let map_heap_locale = if a.locales > 0 {
        let (m, h) = parse_as_map(&cfg, 1)?;
        drop(m);
        Some(h)
    } else {
        None
    };

    // 7. The tables.
    let total_bytes: u64 = trees.iter().map(|t| t.info.bytes).sum();
    let total_jsonl: u64 = trees.iter().map(|t| t.jsonl).sum();
    let n = trees.len() as u64;
    say!();
    say!("| tree | file | stores | records | bytes | JSONL of the tree |");
    say!("|---|---|---|---:|---:|---:|");
    for t in &trees {
        let stores = match &t.info.overlay {
            None => "full snapshot".to_owned(),
            Some(o) => format!(
                "overlay over en: {} changed ({} as changed fields only), {} unchanged",
                o.replaced + o.patched,
                o.patched,
                o.unchanged
            ),
        };
        say!(
            "| {} | {} | {stores} | {} | {} | {} |",
            t.locale,
            t.file,
            t.info.records,
            mb(t.info.bytes),
            mb(t.jsonl)
        );
    }
    say!(
        "| **{n} trees** | | | {} | **{}** | {} |",
        trees.iter().map(|t| t.info.records as u64).sum::<u64>(),
        mb(total_bytes),
        mb(total_jsonl)
    );
    say!(
        "| en v2 (content update) | en-v2.fms | overlay over en: {} changed, {} added, {} removed | {} | {} | - |",
        upd.replaced + upd.patched,
        upd.added,
        upd.removed,
        update.records,
        mb(update.bytes)
    );
    say!();
    let (map_all, how) = match map_heap_locale {
        Some(l) => (
            map_heap_en + l * (n - 1),
            format!(
                "{} (extrapolated: en {} + {} x {} measured for {})",
                mb(map_heap_en + l * (n - 1)),
                mb(map_heap_en),
                n - 1,
                mb(l),
                codes[1]
            ),
        ),
        None => (map_heap_en, format!("{} (measured)", mb(map_heap_en))),
    };
    say!("| measure | fms | HashMap<String, serde_json::Value> | ratio |");
    say!("|---|---:|---:|---:|");
    say!(
        "| bytes of {n} trees (files vs JSONL text) | {} | {} | {:.2}x |",
        mb(total_bytes),
        mb(total_jsonl),
        total_bytes as f64 / total_jsonl as f64
    );
    say!(
        "| heap to hold the tree: en | {} B (store, all trees) | {} (measured) | - |",
        store_heap,
        mb(map_heap_en)
    );
    if let Some(l) = map_heap_locale {
        say!(
            "| heap to hold the tree: {} | (included above) | {} (measured) | - |",
            codes[1],
            mb(l)
        );
    }
    say!(
        "| heap to hold {n} trees | {} B | {how} | {:.6}x |",
        store_heap,
        store_heap as f64 / map_all.max(1) as f64
    );
    say!(
        "| heap of the store after the update and eviction | {} B | - | - |",
        store_heap_after
    );
    say!(
        "| RSS of the process after serving (VmRSS) | {}: {} mapped snapshot pages + {} anonymous | - | - |",
        mb(rss_served),
        mb(file_served.saturating_sub(file0)),
        mb(anon_served)
    );
    say!(
        "| lookups/s, {n} trees through the store (pin + get + {} fields), after the swap | {:.2} M | - | - |",
        FIELDS.len(),
        rate(2) / 1e6
    );
    say!(
        "| lookups/s, en only (get + {} fields) | {:.2} M | {:.2} M | {:.2}x |",
        FIELDS.len(),
        fms_rate / 1e6,
        map_rate / 1e6,
        fms_rate / map_rate.max(1.0)
    );
    say!();
    say!(
        "requests through the store: {:.2} M/s before the update (cold: first reads fault the \
         pages in), {:.2} M/s while it was built (sharing the CPU with the build), {:.2} M/s after \
         the swap",
        rate(0) / 1e6,
        rate(1) / 1e6,
        rate(2) / 1e6
    );
    say!(
        "requests to en: {} read en v1, {} read en v2 (after the swap); {} of {} requests found \
         their id (ids removed by the update are not found in en v2)",
        served.en_old,
        served.en_new,
        served.found,
        served.requests
    );
    say!(
        "RSS {} before opening the store (anonymous: the generator's and builders' heap, freed \
         but kept by the allocator, and the request id list); verify of all {n} trees (each overlay's chain) {:.2}s; total {:.1}s",
        mb(rss0),
        verify_secs,
        t0.elapsed().as_secs_f64()
    );
    if a.remote {
        crate::demo_remote::run(&dir, a.threads, a.seconds)?;
    }
    if a.dir.is_none() {
        say!("(written to a temporary directory and removed; pass --dir to keep it)");
    }
    Ok(())
}
