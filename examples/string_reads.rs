//! What reading a string costs by how it is stored: plain (`&str`), FSST-coded, cold
//! (zstd frame). Builds the scale-1 content site twice (`--compress none` and `auto`),
//! then times, per stored form, reading a field and decoding it into a reused buffer, and
//! counts heap allocations with a counting allocator.
//!
//! `cargo run --release --example string_reads [-- SCALE]` prints a table (BENCHMARKS.md
//! "Issue 10").

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use fms::{Compression, Snapshot, SnapshotBuilder, ValueRef};

struct Counting;
static ALLOCS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards to the system allocator; only counts.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: as the caller promised for `l`.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: `p` came from `alloc` with `l`.
        unsafe { System.dealloc(p, l) }
    }
}

#[global_allocator]
static A: Counting = Counting;

fn build(records: &[(String, serde_json::Value)], c: Compression) -> Snapshot {
    let mut b = SnapshotBuilder::new();
    b.set_compression(c);
    for (id, r) in records {
        b.insert(id, r).unwrap();
    }
    Snapshot::from_bytes(b.to_bytes().unwrap()).unwrap()
}

/// Every `(id, field path)` whose string is stored in form `want` (as `form` names it),
/// up to `n`, from top-level fields and the first text block of a body.
fn strings_of<'a>(
    snap: &'a Snapshot,
    want: &str,
    max_len: usize,
    n: usize,
) -> Vec<(&'a str, &'static str)> {
    let mut out = Vec::new();
    for (id, rec) in snap.iter() {
        for field in ["title", "description", "slug", "ka_url"] {
            if let Some(ValueRef::Str(s)) = rec.get(field) {
                if form(&s) == want && s.len() <= max_len {
                    out.push((id, field));
                }
            }
        }
        if out.len() >= n {
            break;
        }
    }
    out
}

fn form(s: &fms::Str<'_>) -> &'static str {
    if s.is_cold() {
        "cold"
    } else if s.is_compressed() {
        "fsst"
    } else {
        "plain"
    }
}

/// The longest text block of each article body (`body` is a list of `{type, text}` maps).
fn bodies(snap: &Snapshot, n: usize) -> Vec<(&str, fms::Str<'_>)> {
    let mut out = Vec::new();
    for (id, rec) in snap.iter() {
        if let Some(ValueRef::List(blocks)) = rec.get("body") {
            let longest = blocks
                .iter()
                .filter_map(|b| b.as_map().and_then(|m| m.get("text")))
                .filter_map(|v| v.as_str())
                .max_by_key(|s| s.len());
            if let Some(s) = longest {
                out.push((id, s));
            }
        }
        if out.len() >= n {
            break;
        }
    }
    out
}

fn time<T>(label: &str, ops: usize, mut f: impl FnMut() -> T) {
    // Warm up, then the best of 5 rounds.
    black_box(f());
    let mut best = f64::MAX;
    let mut allocs = 0;
    for _ in 0..5 {
        let a0 = ALLOCS.load(Ordering::Relaxed);
        let t = Instant::now();
        black_box(f());
        best = best.min(t.elapsed().as_secs_f64());
        allocs = ALLOCS.load(Ordering::Relaxed) - a0;
    }
    println!(
        "| {label} | {:.1} ns | {:.2} |",
        best * 1e9 / ops as f64,
        allocs as f64 / ops as f64
    );
}

fn main() {
    let scale: f64 = std::env::args()
        .nth(1)
        .map(|s| s.parse().unwrap())
        .unwrap_or(1.0);
    let cfg = fms::corpus::CorpusConfig {
        scale,
        ..Default::default()
    };
    let records: Vec<(String, serde_json::Value)> = fms::corpus::records(&cfg, 0).collect();
    let plain = build(&records, Compression::None);
    let auto = build(&records, Compression::Auto);
    println!(
        "scale {scale}: {} records; none {} bytes, auto {} bytes\n",
        records.len(),
        plain.as_bytes().len(),
        auto.as_bytes().len()
    );
    println!(
        "| read (get id + field, then the string into a reused String) | per op | allocations per op |"
    );
    println!("|---|---:|---:|");
    let mut buf = String::with_capacity(1 << 16);
    for (snap, want, max) in [
        (&plain, "plain", 64),
        (&auto, "fsst", 64),
        (&auto, "fsst", 1 << 20),
    ] {
        let list = strings_of(snap, want, max, 20_000);
        let bytes: usize = list
            .iter()
            .map(|(id, f)| {
                snap.get(id)
                    .unwrap()
                    .get(f)
                    .unwrap()
                    .as_str()
                    .unwrap()
                    .len()
            })
            .sum();
        time(
            &format!(
                "{want} strings ≤ {max} B ({} of them, mean {} B)",
                list.len(),
                bytes / list.len().max(1)
            ),
            list.len(),
            || {
                let mut n = 0;
                for (id, f) in &list {
                    let s = snap.get(id).unwrap().get(f).unwrap().as_str().unwrap();
                    buf.clear();
                    s.write_into(&mut buf).unwrap();
                    n += buf.len();
                }
                n
            },
        );
    }
    // Decoding alone, with the handle in hand (no lookup): what a string costs to read
    // out, by how it is stored.
    for (snap, want) in [(&plain, "plain"), (&auto, "fsst")] {
        let handles: Vec<fms::Str<'_>> = strings_of(snap, want, 64, 20_000)
            .iter()
            .map(|(id, f)| snap.get(id).unwrap().get(f).unwrap().as_str().unwrap())
            .collect();
        time(
            &format!("decode only: {want} strings ≤ 64 B, handle in hand"),
            handles.len(),
            || {
                let mut n = 0;
                for s in &handles {
                    buf.clear();
                    s.write_into(&mut buf).unwrap();
                    n += buf.len();
                }
                n
            },
        );
    }
    // Long text: the first block of each article body.
    for (snap, name) in [(&plain, "plain"), (&auto, "auto")] {
        let list = bodies(snap, 2_000);
        let cold = list.iter().filter(|(_, s)| s.is_cold()).count();
        let bytes: usize = list.iter().map(|(_, s)| s.len()).sum();
        time(
            &format!(
                "longest body text block, {name} ({} blocks, {cold} cold, mean {} B)",
                list.len(),
                bytes / list.len().max(1)
            ),
            list.len(),
            || {
                let mut n = 0;
                for (_, s) in &list {
                    buf.clear();
                    s.write_into(&mut buf).unwrap();
                    n += buf.len();
                }
                n
            },
        );
    }
    // The hot path without decoding: get + field handle only.
    for (snap, name) in [(&plain, "none"), (&auto, "auto")] {
        let ids: Vec<&str> = snap.ids().take(20_000).collect();
        time(
            &format!("get + get(\"title\") handle only, {name}"),
            ids.len(),
            || {
                let mut n = 0;
                for id in &ids {
                    n += usize::from(snap.get(id).unwrap().get("title").is_some());
                }
                n
            },
        );
    }
    println!(
        "\nzstd dictionary of the auto snapshot (after its cold reads): {} B; this thread's zstd context: {} B",
        auto.decoder_heap_bytes(),
        Snapshot::cold_context_bytes()
    );
}
