//! The fault sweep: a real snapshot (the synthetic content-site corpus) and a real locale
//! overlay over it; every truncation point, and single-bit flips at more than 5,000
//! positions spread over every section of each file. Opening, looking up, iterating and
//! serializing never panic, and `verify()` rejects every damaged file (a flipped bit
//! breaks a section checksum or the header hash; a truncated file does not open).

use std::sync::Arc;

use fms::corpus::{self, CorpusConfig};
use fms::{Snapshot, SnapshotBuilder};

/// Bit positions per file: at least this many in all, spread over every section.
const FLIPS: usize = 5_200;
/// Every section (and the header) gets at least this many flips, or all its bits.
const MIN_PER_PART: usize = 256;

struct Files {
    base: Arc<Snapshot>,
    base_bytes: &'static [u8],
    overlay_bytes: &'static [u8],
}

fn files() -> Files {
    let cfg = CorpusConfig {
        scale: 0.004,
        locales: vec!["en".into(), "es".into()],
        ..CorpusConfig::default()
    };
    // The default compression: these records carry FSST symbol tables and cold zstd
    // blocks (checked below), so every format-v2 section is swept.
    let mut b = SnapshotBuilder::new();
    for (id, r) in corpus::records(&cfg, 0) {
        b.insert(&id, &r).unwrap();
    }
    let base_bytes: &'static [u8] = Box::leak(b.to_bytes().unwrap().into_boxed_slice());
    let base = Arc::new(Snapshot::from_bytes(base_bytes).unwrap());
    let mut o = SnapshotBuilder::with_base(&base);
    let mut n = 0;
    for (id, r) in corpus::records(&cfg, 1) {
        // Drop every 20th record (tombstones) and add a few new ones, besides the
        // translations (patches).
        n += 1;
        if n % 20 != 0 {
            o.insert(&id, &r).unwrap();
        }
    }
    o.insert(
        "video:new",
        &serde_json::json!({"title": "Nuevo", "duration": 3}),
    )
    .unwrap();
    o.remove_absent().unwrap();
    let info = o.to_bytes_with_info().unwrap();
    let ov = info.1.overlay.clone().unwrap();
    assert!(ov.patched > 50 && ov.removed > 3 && ov.added == 1, "{ov:?}");
    let overlay_bytes: &'static [u8] = Box::leak(info.0.into_boxed_slice());
    Snapshot::overlay_from_bytes(overlay_bytes, base.clone())
        .unwrap()
        .verify()
        .unwrap();
    Files {
        base,
        base_bytes,
        overlay_bytes,
    }
}

/// `(start, end)` of the header+table and of each section, from the section table (as
/// the reader parsed it: `Snapshot::stats`).
fn parts(bytes: &'static [u8], base: Option<&Arc<Snapshot>>) -> Vec<(usize, usize)> {
    let snap = match base {
        Some(b) => Snapshot::overlay_from_bytes(bytes, b.clone()),
        None => Snapshot::from_bytes(bytes),
    };
    let stats = snap.expect("a valid file").stats();
    let mut out = vec![(0, stats.header_bytes as usize)];
    out.extend(
        stats
            .sections
            .iter()
            .map(|s| (s.offset as usize, (s.offset + s.len) as usize)),
    );
    out
}

/// Bit positions: at least [`MIN_PER_PART`] per part (or all its bits), the rest spread
/// evenly over the file; a different bit of each byte.
fn positions(bytes: &'static [u8], base: Option<&Arc<Snapshot>>) -> Vec<(usize, u8)> {
    let mut out = Vec::new();
    for (start, end) in parts(bytes, base) {
        let bits = (end - start) * 8;
        if bits <= MIN_PER_PART {
            out.extend((start * 8..end * 8).map(|b| (b / 8, (b % 8) as u8)));
        } else {
            let step = bits / MIN_PER_PART;
            out.extend(
                (0..MIN_PER_PART)
                    .map(|i| start * 8 + i * step)
                    .map(|b| (b / 8, (b % 8) as u8)),
            );
        }
    }
    let rest = FLIPS.saturating_sub(out.len()).max(1);
    let step = (bytes.len() / rest).max(1);
    out.extend(
        (0..bytes.len())
            .step_by(step)
            .enumerate()
            .map(|(i, at)| (at, (i % 8) as u8)),
    );
    out.sort_unstable();
    out.dedup();
    out
}

/// Opens `bytes` (over `base` when given), reads everything, verifies: returns whether
/// verify accepted it. Must not panic.
fn exercise(bytes: Vec<u8>, base: Option<&Arc<Snapshot>>) -> bool {
    let snap = match base {
        Some(b) => Snapshot::overlay_from_bytes(bytes, b.clone()),
        None => Snapshot::from_bytes(bytes),
    };
    let Ok(snap) = snap else {
        return false;
    };
    read(&snap);
    snap.verify().is_ok()
}

/// Lookup, iteration and serialization of every record (the lighter half of
/// `common::read_everything`, which the corruption tests run in full).
fn read(snap: &Snapshot) {
    let title = snap.key("title");
    for id in snap.ids() {
        if let Some(rec) = snap.get(id) {
            let _ = (rec.get("title"), title.map(|k| rec.get_key(k)));
        }
    }
    for (_, rec) in snap.iter() {
        for (_, v) in rec.iter() {
            let _ = v.as_str().map(|s| s.len());
        }
        // Decodes every string (FSST codes, cold blocks): errors, never panics.
        let _ = serde_json::to_string(&rec);
    }
}

/// Runs of 0xFF over every section, with the checksums and content hash recomputed so
/// that the damage reaches the structural checks and the string decoders: the fuzz
/// checks' assertions (no panic; a file that verifies reads without failure) must hold.
fn ff_runs(name: &str, good: &'static [u8], base: Option<&Arc<Snapshot>>) {
    let mut n = 0;
    for (start, end) in parts(good, base) {
        let step = ((end - start) / 12).max(1);
        for at in (start..end).step_by(step) {
            for len in [1usize, 16] {
                let mut bad = good.to_vec();
                let stop = (at + len).min(bad.len());
                bad[at..stop].fill(0xff);
                match base {
                    Some(_) => {
                        let Some(fixed) = fms::check::fix_checksums(&bad) else {
                            continue;
                        };
                        let _ = exercise(fixed, base);
                    }
                    None => {
                        fms::check::open_read(&bad);
                        fms::check::verified_reads(&bad);
                    }
                }
                n += 1;
            }
        }
    }
    eprintln!("{name}: {n} runs of 0xFF (checksums fixed), no panic");
}

fn sweep(name: &str, good: &'static [u8], base: Option<&Arc<Snapshot>>) {
    let pos = positions(good, base);
    assert!(pos.len() >= 5_000, "{name}: only {} positions", pos.len());
    for (start, end) in parts(good, base) {
        assert!(
            pos.iter().any(|&(at, _)| (start..end).contains(&at)),
            "{name}: no flip in bytes {start}..{end}"
        );
    }
    let mut accepted = Vec::new();
    for &(at, bit) in &pos {
        let mut bad = good.to_vec();
        bad[at] ^= 1 << bit;
        if exercise(bad, base) {
            accepted.push((at, bit));
        }
    }
    assert!(
        accepted.is_empty(),
        "{name}: verify accepted {} damaged files, e.g. bit {:?}",
        accepted.len(),
        accepted.first()
    );
    for cut in 0..good.len() {
        let opened = match base {
            Some(b) => Snapshot::overlay_from_bytes(&good[..cut], b.clone()).is_ok(),
            None => Snapshot::from_bytes(&good[..cut]).is_ok(),
        };
        assert!(!opened, "{name}: cut to {cut} bytes still opens");
    }
    eprintln!(
        "{name}: {} bytes, {} bit flips and {} truncations, all rejected",
        good.len(),
        pos.len(),
        good.len()
    );
}

#[test]
fn every_fault_in_a_real_snapshot_is_rejected_without_panic() {
    let f = files();
    let st = f.base.stats();
    for s in ["symbols", "cold"] {
        assert!(
            st.sections.iter().any(|x| x.name == s && x.len > 0),
            "the snapshot has no {s} section to sweep"
        );
    }
    // And derived strings (format version 4) among its values.
    let derived = f
        .base
        .iter()
        .flat_map(|(_, rec)| rec.values().collect::<Vec<_>>())
        .filter(|v| v.as_str().is_some_and(|s| s.is_derived()))
        .count();
    assert!(derived > 0, "the snapshot has no derived strings to sweep");
    ff_runs("snapshot", f.base_bytes, None);
    sweep("snapshot", f.base_bytes, None);
}

#[test]
fn every_fault_in_a_real_overlay_is_rejected_without_panic() {
    let f = files();
    sweep("overlay", f.overlay_bytes, Some(&f.base));
    ff_runs("overlay", f.overlay_bytes, Some(&f.base));
    // And the reverse: a damaged base under the intact overlay. The header is kept (so
    // the base hash still matches), the sections are flipped.
    let head = parts(f.base_bytes, None)[0].1;
    let step = (f.base_bytes.len() - head) / 300;
    for i in 0..300 {
        let at = head + i * step;
        let mut bad = f.base_bytes.to_vec();
        bad[at] ^= 1 << (i % 8);
        // A flip in a section header that open checks (an index's counts) fails open.
        let Ok(base) = Snapshot::from_bytes(bad) else {
            continue;
        };
        let base = Arc::new(base);
        let over = Snapshot::overlay_from_bytes(f.overlay_bytes, base).unwrap();
        read(&over);
        assert!(over.verify().is_err(), "damaged base byte {at} accepted");
    }
}
