//! Format version 6: cold strings named by number (`block << 6 | k`, slot tag 14), the
//! COLD section's block directory and its blocks' string lengths (FORMAT.md "COLD"):
//! numbering across overlay chains (also over version-5 levels), the builder's cut at 64
//! strings a block, and what open, `verify` and reads say of damaged directories, blocks
//! and tags.

mod common;

use common::section;

use std::sync::Arc;

use fms::{Compression, Snapshot, SnapshotBuilder};
use serde_json::{Value, json};

const WORDS: [&str; 12] = [
    "alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa",
    "lambda", "mu",
];

/// Text of `n` words that compresses like text: a long field goes cold.
fn text(seed: u64, n: usize) -> String {
    common::prose(&WORDS, seed, n)
}

fn u32_at(b: &[u8], at: usize) -> usize {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap()) as usize
}

/// Where the COLD section's block count is (after `u32 dict_len` and the dictionary).
fn block_count_at(snap: &Snapshot) -> usize {
    let c = section(snap, "cold");
    c.start + 4 + u32_at(snap.as_bytes(), c.start)
}

/// Blocks of the file's own COLD section (0 if it is empty).
fn blocks(snap: &Snapshot) -> usize {
    if section(snap, "cold").is_empty() {
        return 0;
    }
    u32_at(snap.as_bytes(), block_count_at(snap))
}

/// Opened (for an overlay, over `base`) and verified, every record reads as `want`, and
/// again when the same bytes are joined to the base anew.
fn reads_as(bytes: Vec<u8>, base: Option<&Arc<Snapshot>>, want: &[(String, Value)]) -> Snapshot {
    let open = |b: Vec<u8>| match base {
        Some(base) => Snapshot::overlay_from_bytes(b, base.clone()).unwrap(),
        None => Snapshot::from_bytes(b).unwrap(),
    };
    let snap = open(bytes.clone());
    snap.verify().unwrap();
    for s in [&snap, &open(bytes)] {
        for (id, r) in want {
            assert_eq!(
                serde_json::to_value(s.get(id).unwrap()).unwrap(),
                *r,
                "{id}"
            );
        }
    }
    snap
}

/// The cold strings of `snap`'s records, read whole; each one must decode.
fn cold_texts(snap: &Snapshot) -> usize {
    let mut n = 0;
    common::each_string(snap, |s| {
        if s.is_cold() {
            assert_eq!(s.to_cow().unwrap().len(), s.len());
            n += 1;
        }
    });
    n
}

/// Three version-6 levels, each with cold strings of its own; the top one also holds
/// strings of both levels below (which it refers to by their numbers). An overlay's
/// numbers start at its base *chain's* end: numbering from the base's own count would
/// make the top level's numbers name the middle level's strings.
#[test]
fn stacked_overlays_number_cold_strings_after_their_whole_chain() {
    let recs: Vec<(String, Value)> = (0..40)
        .map(|i| {
            (
                format!("r{i:03}"),
                json!({"t": format!("t{i}"), "body": text(i, 900)}),
            )
        })
        .collect();
    let base = Arc::new(reads_as(
        common::build_json(&recs, Compression::Auto),
        None,
        &recs,
    ));
    let mut want = recs.clone();
    let mut o = SnapshotBuilder::with_base(&base);
    for (i, (id, r)) in want.iter_mut().enumerate().filter(|(i, _)| i % 2 == 0) {
        r["body"] = json!(text(1000 + i as u64, 900));
        o.insert(id, &*r).unwrap();
    }
    let o1 = Arc::new(reads_as(o.to_bytes().unwrap(), Some(&base), &want));
    let mut o = SnapshotBuilder::with_base(&o1);
    for (i, (id, r)) in want.iter_mut().enumerate() {
        r["old"] = recs[i].1["body"].clone();
        if i % 3 == 0 {
            r["body"] = json!(text(5000 + i as u64, 900));
        }
        o.insert(id, &*r).unwrap();
    }
    let o2 = reads_as(o.to_bytes().unwrap(), Some(&o1), &want);
    let counts = [blocks(&base), blocks(&o1), blocks(&o2)];
    assert!(
        counts.iter().all(|&b| b > 1),
        "blocks per level: {counts:?}"
    );
    assert!(cold_texts(&o2) > 40 + 20 + 14);
}

/// A chain that mixes versions: the committed version-5 base and overlay (cold strings
/// through pool entries, tag 12), then two version-6 overlays with cold strings of their
/// own (tag 14) and copies of the version-5 levels' strings.
#[test]
fn version_6_overlays_stack_on_a_version_5_chain() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/v5");
    let base = Arc::new(Snapshot::open(dir.join("base.fms")).unwrap());
    let es = Arc::new(Snapshot::open_overlay(dir.join("es.fms"), base.clone()).unwrap());
    let es_json = common::jsonl(&dir.join("es.jsonl"));
    let mut want = es_json.clone();
    let mut o = SnapshotBuilder::with_base(&es);
    for (k, (id, r)) in want.iter_mut().enumerate() {
        if k % 2 == 0 {
            r["body"] = json!(text(k as u64, 900));
        }
        r["copy"] = r["body"].clone();
        o.insert(id, &*r).unwrap();
    }
    let o1 = Arc::new(reads_as(o.to_bytes().unwrap(), Some(&es), &want));
    let mut o = SnapshotBuilder::with_base(&o1);
    for (k, (id, r)) in want.iter_mut().enumerate() {
        if k % 3 == 0 {
            r["body"] = json!(text(7000 + k as u64, 900));
        }
        r["copy2"] = es_json[k].1["body"].clone();
        o.insert(id, &*r).unwrap();
    }
    let o2 = reads_as(o.to_bytes().unwrap(), Some(&o1), &want);
    assert!(blocks(&o1) > 0 && blocks(&o2) > 0);
    assert!(cold_texts(&o2) > 0);
}

/// A block holds at most 64 strings (its numbers are `block << 6 | k`): with cold strings
/// of 8 bytes and up (`eager_compression`), 4 KiB blocks would hold more, and the builder
/// starts a new block at the 65th. (At the default policy, strings of 64 bytes and up in
/// 4 KiB blocks, the size cut comes first.)
#[test]
fn a_block_holds_at_most_64_strings() {
    let recs: Vec<(String, Value)> = (0..300)
        .map(|i| {
            (
                format!("r{i:03}"),
                json!({"b": format!("{} {i}", text(i, 8))}),
            )
        })
        .collect();
    let mut b = SnapshotBuilder::new();
    b.eager_compression();
    for (id, r) in &recs {
        b.insert(id, r).unwrap();
    }
    let snap = reads_as(b.to_bytes().unwrap(), None, &recs);
    let cold = cold_texts(&snap);
    assert!(cold > 128, "{cold} cold strings");
    // The strings average ~55 bytes: 64 of them fill ~3.5 KiB, so only the count cut
    // gives this many blocks.
    assert!(
        blocks(&snap) >= cold.div_ceil(64),
        "{} blocks",
        blocks(&snap)
    );
}

/// 40 long texts (cold, several blocks) and a short plain string "hello".
fn file_with_cold_blocks() -> (Vec<u8>, Snapshot) {
    let mut recs: Vec<(String, Value)> = (0..40)
        .map(|i| (format!("r{i:03}"), json!({"body": text(i, 900)})))
        .collect();
    recs.push(("a".into(), json!({"s": "hello"})));
    let bytes = common::build_json(&recs, Compression::Auto);
    let snap = reads_as(bytes.clone(), None, &recs);
    assert!(blocks(&snap) > 1);
    (bytes, snap)
}

/// The error of opening and verifying `bad` (checksums fixed), which must fail; every
/// read of it must still be an answer, not a panic.
fn refused(bad: Vec<u8>) -> String {
    let snap = match Snapshot::from_bytes(common::rechecksum(bad)) {
        Ok(s) => s,
        Err(e) => return e.to_string(),
    };
    for (_, rec) in snap.iter() {
        let _ = serde_json::to_string(&rec);
    }
    snap.verify().unwrap_err().to_string()
}

/// An unsigned LEB128 varint at `at`: `(value, bytes)`.
fn varint(b: &[u8], at: usize) -> (u64, usize) {
    let (mut v, mut i) = (0u64, 0);
    loop {
        v |= u64::from(b[at + i] & 0x7f) << (7 * i);
        i += 1;
        if b[at + i - 1] < 0x80 {
            return (v, i);
        }
    }
}

#[test]
fn a_cold_section_without_blocks_or_with_bytes_after_them_is_refused() {
    let (bytes, snap) = file_with_cold_blocks();
    let count = block_count_at(&snap);
    let mut bad = bytes.clone();
    bad[count..count + 4].copy_from_slice(&0u32.to_le_bytes());
    let e = refused(bad);
    assert!(e.contains("cold block directory of 0 blocks"), "{e}");
    // The last block's frame said to be a byte shorter: a byte is left after it.
    let (cold, n) = (section(&snap, "cold"), blocks(&snap));
    let mut p = cold.start + u32_at(&bytes, count + 4 * n);
    let (strings, u) = varint(&bytes, p);
    p += u;
    for _ in 0..strings {
        p += varint(&bytes, p).1;
    }
    let (frame, u) = varint(&bytes, p);
    assert_eq!(
        p + u + frame as usize,
        cold.end,
        "the last block ends the section"
    );
    assert!(u == 2 && frame > 128, "a 2-byte frame length ({frame})");
    let mut bad = bytes;
    bad[p] = ((frame - 1) & 0x7f) as u8 | 0x80;
    bad[p + 1] = ((frame - 1) >> 7) as u8;
    let e = refused(bad);
    assert!(
        e.contains("cold section has bytes after its last block"),
        "{e}"
    );
}

/// Tag 12 (a pool entry naming a block offset, versions 2 to 5) may not name a block of
/// a version-6 COLD section, whose blocks a version-5 parse would misread: a STR slot
/// turned into tag 12, its entry rewritten to name a real v6 block start, is refused by
/// `verify` and does not read.
#[test]
fn a_version_5_cold_entry_into_a_version_6_section_is_refused() {
    let (bytes, snap) = file_with_cold_blocks();
    let (cold, pool, data) = (
        section(&snap, "cold"),
        section(&snap, "pool"),
        section(&snap, "data"),
    );
    let dir = block_count_at(&snap) + 4;
    // A block start of 3 varint bytes, as the pool entry "hello" has 5 bytes to rewrite.
    let at = (0..blocks(&snap))
        .map(|k| u32_at(&bytes, dir + 4 * k))
        .find(|o| (1 << 14..1 << 21).contains(o))
        .expect("a block past 16 KiB");
    assert!(at < cold.len());
    let p = (pool.start..=pool.end - 6)
        .find(|&i| &bytes[i..i + 6] == b"\x05hello")
        .unwrap();
    let mut bad = bytes.clone();
    // `varint block ++ varint start 0 ++ varint length 1`.
    bad[p + 1..p + 6].copy_from_slice(&[
        (at & 0x7f) as u8 | 0x80,
        ((at >> 7) & 0x7f) as u8 | 0x80,
        (at >> 14) as u8,
        0,
        1,
    ]);
    let off = (p - pool.start) as u32;
    let w = (32 - off.leading_zeros()).div_ceil(8).max(1) as usize;
    let slot: Vec<usize> = (data.start..=data.end - 1 - w)
        .filter(|&i| {
            bytes[i] == fms::format::tag::STR && bytes[i + 1..=i + w] == off.to_le_bytes()[..w]
        })
        .collect();
    assert_eq!(slot.len(), 1, "the STR slot of \"hello\"");
    bad[slot[0]] = fms::format::tag::COLD;
    let broken = Snapshot::from_bytes(common::rechecksum(bad.clone())).unwrap();
    assert!(broken.get("a").unwrap().get("s").is_none());
    let e = refused(bad);
    assert!(e.contains("not a slice of a cold block"), "{e}");
}

/// Tag 14 belongs to version 6: in a version-5 file (the committed fixture, a tag-12 slot
/// turned into 14) it is an unknown tag to `verify`.
#[test]
fn tag_14_in_a_version_5_file_is_refused() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/v5");
    let bytes = std::fs::read(dir.join("base.fms")).unwrap();
    let snap = Snapshot::from_bytes(bytes.clone()).unwrap();
    let data = section(&snap, "data");
    let first = (data.start..data.end)
        .find(|&i| bytes[i] == fms::format::tag::COLD)
        .unwrap();
    let mut bad = bytes;
    bad[first] = fms::format::tag::COLD_DIRECT;
    let e = refused(bad);
    assert!(e.contains("tag 14"), "{e}");
}

/// Every single-byte substitution in the COLD section, and in the slots of tag 14, of a
/// small version-6 file with three blocks (one of two strings): open, reads and `verify`
/// never panic, and a file `verify` accepts reads every string.
#[test]
fn every_byte_of_a_cold_section_substituted() {
    let recs = [
        (
            "a".to_owned(),
            json!({ "body": "é".repeat(2100), "t": "x".repeat(70) }),
        ),
        (
            "b".to_owned(),
            json!({ "body": "ü".repeat(2100), "t": "y".repeat(70) }),
        ),
        (
            "c".to_owned(),
            json!({ "body": ["ä".repeat(150), "ö".repeat(150)], "t": "z".repeat(70) }),
        ),
    ];
    let bytes = common::build_json(&recs, Compression::Auto);
    let snap = reads_as(bytes.clone(), None, &recs);
    assert_eq!(blocks(&snap), 3);
    let data = section(&snap, "data");
    let mut at: Vec<usize> = section(&snap, "cold").collect();
    for i in data.clone() {
        if bytes[i] == fms::format::tag::COLD_DIRECT {
            at.extend(i..(i + 8).min(data.end));
        }
    }
    let (mut opened, mut verified) = (0, 0);
    for &p in &at {
        for v in (0..=255u8).filter(|&v| v != bytes[p]) {
            let mut bad = bytes.clone();
            bad[p] = v;
            let Ok(s) = Snapshot::from_bytes(common::rechecksum(bad)) else {
                continue;
            };
            opened += 1;
            let ok = s.verify().is_ok();
            verified += usize::from(ok);
            common::each_string(&s, |s| {
                let text = s.to_cow();
                assert!(!ok || text.is_ok(), "verified, but a string does not read");
                let _ = (s.len(), s == "x");
            });
        }
    }
    assert!(
        opened > 1000 && verified > 0,
        "{opened} opened, {verified} verified"
    );
}

/// A version-6 COLD section with two blocks (two long strings that do not share one) and
/// what `verify` and reads say when its directory or a cold number is damaged.
#[test]
fn damaged_cold_directories_and_numbers_are_caught() {
    let recs = [
        ("a".to_owned(), json!({ "body": "é".repeat(2100) })),
        ("b".to_owned(), json!({ "body": "ü".repeat(2100) })),
    ];
    let bytes = common::build_json(&recs, Compression::Auto);
    let snap = reads_as(bytes.clone(), None, &recs);
    let (cold, data) = (section(&snap, "cold"), section(&snap, "data"));
    // `u32 dict_len` (0: two strings are too few to train on), `u32 blocks`, offsets.
    assert_eq!(bytes[cold.start..cold.start + 8], [0, 0, 0, 0, 2, 0, 0, 0]);
    let dir = cold.start + 8;
    let expect = |bad: Vec<u8>, what: &str| {
        let snap = match Snapshot::from_bytes(common::rechecksum(bad)) {
            Ok(s) => s,
            Err(e) => {
                assert!(e.to_string().contains(what), "{e}");
                return;
            }
        };
        let e = snap.verify().unwrap_err().to_string();
        assert!(e.contains(what), "{e}");
        for (_, rec) in snap.iter() {
            let _ = serde_json::to_string(&rec);
        }
    };
    // The second block said to start a byte late: the blocks no longer tile.
    let mut bad = bytes.clone();
    bad[dir + 4] += 1;
    expect(bad, "cold block 1: starts at");
    // More blocks than the directory has room for: refused at open.
    let mut bad = bytes.clone();
    bad[cold.start + 4] = 200;
    expect(bad, "cold block directory of 200 blocks");
    // A slot naming string 1 of block 0, which holds one string (numbers are `block << 6
    // | k`; the two slots hold 0 and 64 = 0x40).
    let slot = |payload: u8| {
        (data.start..data.end - 1)
            .filter(|&i| bytes[i] == fms::format::tag::COLD_DIRECT && bytes[i + 1] == payload)
            .collect::<Vec<_>>()
    };
    let (first, second) = (slot(0), slot(0x40));
    assert_eq!((first.len(), second.len()), (1, 1), "one slot each");
    let mut bad = bytes.clone();
    bad[first[0] + 1] = 1;
    let broken = Snapshot::from_bytes(common::rechecksum(bad.clone())).unwrap();
    assert!(
        broken.get("a").unwrap().get("body").is_none(),
        "no string there"
    );
    assert_eq!(common::str_of(&broken, "b", "body").len(), 4200);
    expect(bad, "cold string number 1: no such string");
    // Past the last block.
    let mut bad = bytes;
    bad[second[0] + 1] = 0x80;
    expect(bad, "cold string number 128");
}
