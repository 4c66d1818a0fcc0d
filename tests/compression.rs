//! Format version 2's compressed strings: FSST symbol tables per field, the cold section,
//! the `Str` handle, serde through them, overlays over them, damage to them, and reading
//! version-1 files.

mod common;

use std::borrow::Cow;
use std::sync::Arc;

use fms::{Compression, Error, Snapshot, SnapshotBuilder, TupleMap, ValueRef};
use serde_json::json;

use common::{build_json as build, str_of};

/// Records with a short field (titles), a mid-length one (descriptions) and a long one
/// (bodies): enough text per field for `Auto` to train tables and go cold.
fn records(n: usize) -> Vec<(String, serde_json::Value)> {
    (0..n)
        .map(|i| {
            let body = format!(
                "Paragraph {i} of the article. Fractions name parts of a whole; the bottom number says how many equal parts, the top how many are taken. Example {}: {}/{} of a pizza. ",
                i * 7,
                i % 9 + 1,
                i % 11 + 2
            )
            .repeat(4);
            (
                format!("article:{i:05}"),
                json!({
                    "title": format!("Introduction to fractions, part {i}"),
                    "slug": format!("intro-to-fractions-{i}"),
                    "description": format!("Learn what the numerator and denominator of a fraction mean, with worked example number {i}."),
                    "body": body,
                    "tags": ["math", "fractions", format!("lesson-{}", i % 17)],
                    "n": i,
                }),
            )
        })
        .collect()
}

/// Varied prose over a fixed vocabulary (see `common::prose`).
fn prose(seed: u64, n: usize) -> String {
    const WORDS: [&str; 16] = [
        "дробь",
        "числитель",
        "знаменатель",
        "часть",
        "целое",
        "пример",
        "равные",
        "доли",
        "пицца",
        "половина",
        "треть",
        "четверть",
        "сумма",
        "разность",
        "ответ",
        "задача",
    ];
    common::prose(&WORDS, seed, n)
}

#[test]
fn auto_compresses_per_field_and_reads_back_exactly() {
    let recs = records(600);
    let plain = Snapshot::from_bytes(build(&recs, Compression::None)).unwrap();
    let auto = Snapshot::from_bytes(build(&recs, Compression::Auto)).unwrap();
    let max = Snapshot::from_bytes(build(&recs, Compression::Level(19))).unwrap();
    for s in [&plain, &auto, &max] {
        s.verify().unwrap();
    }
    assert!(
        auto.as_bytes().len() * 2 < plain.as_bytes().len(),
        "{} vs {}",
        auto.as_bytes().len(),
        plain.as_bytes().len()
    );

    // None: every string plain; Auto: bodies cold, descriptions FSST.
    assert!(str_of(&plain, "article:00007", "body").as_plain().is_some());
    let body = str_of(&auto, "article:00007", "body");
    assert!(body.is_cold(), "a long field goes cold");
    let desc = str_of(&auto, "article:00007", "description");
    assert!(
        desc.is_compressed() && !desc.is_cold(),
        "a mid-length field is FSST-coded"
    );

    // Every record reads the same, through every path.
    for (id, want) in &recs {
        let (a, p) = (auto.get(id).unwrap(), plain.get(id).unwrap());
        assert_eq!(serde_json::to_value(a).unwrap(), *want);
        assert_eq!(
            serde_json::to_string(&a).unwrap(),
            serde_json::to_string(&p).unwrap()
        );
        assert_eq!(a.to_string(), p.to_string());
        assert_eq!(format!("{a:?}"), format!("{p:?}"));
        assert!(a == TupleMap::try_from(want.clone()).unwrap());
        for field in ["title", "slug", "description", "body"] {
            let (x, y) = (str_of(&auto, id, field), str_of(&plain, id, field));
            let text = y.as_plain().unwrap();
            assert_eq!(x, text);
            assert_eq!(x, y);
            assert_eq!(x.len(), text.len());
            assert_eq!(x.to_string(), text);
            assert_eq!(x.to_cow().unwrap(), text);
            let mut buf = String::from(">");
            x.write_into(&mut buf).unwrap();
            assert_eq!(&buf[1..], text);
            // Unequal to a neighbour and to a prefix.
            assert!(x != text[..text.len() - 1]);
            assert!(x != format!("{text}!"));
        }
    }
}

#[test]
fn builds_are_deterministic() {
    let recs = records(300);
    assert_eq!(
        build(&recs, Compression::Auto),
        build(&recs, Compression::Auto)
    );
}

#[test]
fn compression_parses_like_the_cli_flag() {
    assert_eq!("none".parse::<Compression>().unwrap(), Compression::None);
    assert_eq!("auto".parse::<Compression>().unwrap(), Compression::Auto);
    assert_eq!("7".parse::<Compression>().unwrap(), Compression::Level(7));
    for bad in ["0", "23", "fast", ""] {
        let e = bad.parse::<Compression>().unwrap_err();
        assert!(matches!(e, Error::InvalidInput(_)), "{e:?}");
    }
    assert_eq!(Compression::Level(7).to_string(), "7");
}

#[derive(serde::Deserialize)]
struct Owned {
    title: String,
    body: String,
}

#[derive(serde::Deserialize)]
struct Cows<'a> {
    #[serde(borrow)]
    title: Cow<'a, str>,
    #[serde(borrow)]
    slug: Cow<'a, str>,
}

#[derive(Debug, serde::Deserialize)]
#[allow(dead_code)]
struct Borrowed<'a> {
    description: &'a str,
}

#[test]
fn serde_fields_take_compressed_strings() {
    let recs = records(600);
    let auto = Snapshot::from_bytes(build(&recs, Compression::Auto)).unwrap();
    let plain = Snapshot::from_bytes(build(&recs, Compression::None)).unwrap();
    let rec = auto.get("article:00042").unwrap();
    let o: Owned = rec.deserialize().unwrap();
    assert_eq!(o.title, "Introduction to fractions, part 42");
    assert_eq!(o.body, recs[42].1["body"].as_str().unwrap());
    let c: Cows = rec.deserialize().unwrap();
    assert_eq!(c.title, "Introduction to fractions, part 42");
    assert_eq!(c.slug, "intro-to-fractions-42");
    // A borrowed &str works on a plain string, and fails naming the field otherwise.
    let b: Borrowed = plain.get("article:00042").unwrap().deserialize().unwrap();
    assert!(b.description.starts_with("Learn"));
    let e = rec.deserialize::<Borrowed>().unwrap_err().to_string();
    assert!(e.contains("description"), "{e}");
}

#[test]
fn locale_overlays_over_a_compressed_base() {
    let recs = records(1200);
    let base = Arc::new(Snapshot::from_bytes(build(&recs, Compression::Auto)).unwrap());
    let mut o = SnapshotBuilder::with_base(&base);
    let mut want = recs.clone();
    for (i, (id, r)) in want.iter_mut().enumerate() {
        if i % 3 == 0 {
            r["title"] = json!(format!("Введение в дроби, часть {i}"));
            r["body"] = json!(prose(i as u64, 120));
            o.insert(id, r).unwrap();
        }
    }
    let over = common::overlay_reads_as(o, &base, &want);
    // The overlay's own text is compressed with its own tables.
    assert!(str_of(&over, "article:00003", "title").is_compressed());
    assert!(str_of(&over, "article:00003", "body").is_cold());
    // Unchanged fields still read through to the base.
    assert_eq!(
        str_of(&over, "article:00003", "slug"),
        "intro-to-fractions-3"
    );
}

/// The sections of a file: `(kind name, offset, len)`.
fn sections(bytes: &[u8]) -> Vec<(String, usize, usize)> {
    let snap = Snapshot::from_bytes(bytes.to_vec()).unwrap();
    snap.sections()
        .iter()
        .map(|s| (s.name.to_string(), s.offset as usize, s.len as usize))
        .collect()
}

#[test]
fn damaged_tables_and_frames_fail_verify_and_never_panic() {
    let recs = records(200);
    let good = build(&recs, Compression::Auto);
    for (name, at, len) in sections(&good) {
        if name != "symbols" && name != "cold" {
            continue;
        }
        assert!(len > 0, "{name} is empty");
        let mut failures = 0;
        for k in (0..len).step_by(len / 97 + 1) {
            let mut bad = good.clone();
            bad[at + k] ^= 0x5a;
            let bad = fms::check::fix_checksums(&bad).unwrap();
            // Open checks the COLD section's header (its block count and directory fit).
            let Ok(snap) = Snapshot::from_bytes(bad) else {
                failures += 1;
                continue;
            };
            let verified = snap.verify().is_ok();
            failures += usize::from(!verified);
            // Reads never panic; a string that does not decode is an error, not text.
            for (_, rec) in snap.iter() {
                for (_, v) in rec.iter() {
                    if let ValueRef::Str(s) = v {
                        let r = s.to_cow();
                        if verified {
                            r.unwrap();
                        }
                        let _ = s.to_string();
                        let _ = s.len();
                    }
                }
                let _ = serde_json::to_string(&rec);
            }
        }
        assert!(failures > 0, "no flip in {name} was caught");
    }
}

/// Files written by version 1 of the format (committed fixtures) are still read.
#[test]
fn version_1_files_are_read() {
    for name in ["content.fms", "scalars.fms"] {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/v1")
            .join(name);
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(
            u16::from_le_bytes([bytes[8], bytes[9]]),
            1,
            "{name} is a v1 file"
        );
        let snap = Snapshot::open(&path).unwrap();
        snap.verify().unwrap();
        assert!(!snap.is_empty());
        for (_, rec) in snap.iter() {
            serde_json::to_string(&rec).unwrap();
        }
    }
    let snap = Snapshot::open(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/v1/content.fms"),
    )
    .unwrap();
    assert_eq!(
        str_of(&snap, "video:intro", "title"),
        "Introduction to algebra"
    );
    // An overlay built on a v1 base is a v2 file that reads through it.
    let base = Arc::new(snap);
    let mut o = SnapshotBuilder::with_base(&base);
    o.insert("video:new", &json!({"title": "New video"}))
        .unwrap();
    let over = Snapshot::overlay_from_bytes(o.to_bytes().unwrap(), base).unwrap();
    over.verify().unwrap();
    assert_eq!(str_of(&over, "video:new", "title"), "New video");
    assert_eq!(
        str_of(&over, "video:intro", "title"),
        "Introduction to algebra"
    );
}

/// Files written by version 2 of the format (before narrow nodes: 4-byte payloads, with
/// compressed strings; committed fixtures, the fuzz seeds of that version) are still read.
#[test]
fn version_2_files_are_read() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/v2");
    let (mut cold, mut fsst) = (0, 0);
    for name in ["cold.fms", "content.fms"] {
        let path = dir.join(name);
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(u16::from_le_bytes([bytes[8], bytes[9]]), 2, "{name}");
        let snap = Arc::new(Snapshot::open(&path).unwrap());
        snap.verify().unwrap();
        assert!(!snap.is_empty());
        for (_, rec) in snap.iter() {
            serde_json::to_string(&rec).unwrap();
            for v in rec.values() {
                if let Some(s) = v.as_str() {
                    cold += usize::from(s.is_cold());
                    fsst += usize::from(s.is_compressed() && !s.is_cold());
                    s.to_cow().unwrap();
                }
            }
        }
        // An overlay written now (the current version) reads through a version-2 base.
        let (id, rec) = snap.iter().next().unwrap();
        let (id, before) = (id.to_owned(), rec.to_owned().unwrap());
        let mut o = SnapshotBuilder::with_base(&snap);
        o.insert("added:1", &json!({"title": "New", "n": 300}))
            .unwrap();
        let over = Snapshot::overlay_from_bytes(o.to_bytes().unwrap(), snap.clone()).unwrap();
        assert_eq!(
            u16::from_le_bytes([over.as_bytes()[8], over.as_bytes()[9]]),
            fms::FORMAT_VERSION
        );
        over.verify().unwrap();
        assert_eq!(over.get(&id).unwrap().to_owned().unwrap(), before);
        assert_eq!(str_of(&over, "added:1", "title"), "New");
    }
    assert!(
        cold > 0 && fsst > 0,
        "the fixtures hold cold ({cold}) and FSST ({fsst}) strings"
    );
}

/// Cold strings among the string values of `snap`'s records (top-level and nested).
fn cold_strings(snap: &Snapshot) -> usize {
    let mut n = 0;
    common::each_string(snap, |s| n += usize::from(s.is_cold()));
    n
}

/// Files written by version 5 (cold strings reached through pool entries, tag COLD;
/// committed fixtures made with the version-5 CLI from the JSONL beside them: a full
/// snapshot and an overlay over it) are still read. An overlay written now over the
/// version-5 base keeps the base's cold strings (tag COLD, in the base) where it patches
/// other fields, and numbers its own (tag COLD_DIRECT): both read and verify in one chain.
#[test]
fn version_5_files_are_read() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/v5");
    let base = Arc::new(Snapshot::open(dir.join("base.fms")).unwrap());
    let es = Snapshot::open_overlay(dir.join("es.fms"), base.clone()).unwrap();
    for (snap, name) in [(&*base, "base"), (&es, "es")] {
        assert_eq!(
            u16::from_le_bytes([snap.as_bytes()[8], snap.as_bytes()[9]]),
            5
        );
        snap.verify().unwrap();
        let want = common::jsonl(&dir.join(format!("{name}.jsonl")));
        assert_eq!(snap.len(), want.len(), "{name}");
        for (id, r) in &want {
            assert_eq!(
                serde_json::to_value(snap.get(id).unwrap()).unwrap(),
                *r,
                "{name} {id}"
            );
        }
        assert!(cold_strings(snap) > 0, "{name} holds cold strings");
    }
    // Now: new titles (the bodies stay the base's cold strings) and new long bodies.
    let mut want = common::jsonl(&dir.join("base.jsonl"));
    let words = [
        "mundo", "texto", "largo", "para", "leer", "nunca", "siempre", "casa",
    ];
    let mut o = SnapshotBuilder::with_base(&base);
    for (k, (id, r)) in want.iter_mut().enumerate() {
        r["title"] = json!(format!("Título {k}"));
        if k % 2 == 0 {
            r["body"] = json!(common::prose(&words, k as u64, 120));
        }
        o.insert(id, &*r).unwrap();
    }
    let over = common::overlay_reads_as(o, &base, &want);
    assert_eq!(
        u16::from_le_bytes([over.as_bytes()[8], over.as_bytes()[9]]),
        fms::FORMAT_VERSION
    );
    let sections = over.sections();
    let cold = sections.iter().find(|s| s.name == "cold").unwrap();
    assert!(cold.len > 0, "the overlay stores cold strings of its own");
    let (old, new) = want.iter().partition::<Vec<_>, _>(|(id, _)| {
        let k: usize = id.trim_start_matches("article:").parse().unwrap();
        k % 2 == 1
    });
    for (part, what) in [(old, "the base's"), (new, "the overlay's")] {
        for (id, _) in part {
            let body = str_of(&over, id, "body");
            assert!(body.is_cold(), "{id}: {what} body is cold");
        }
    }
}

#[test]
fn unknown_versions_say_to_rebuild() {
    let mut bytes = build(&records(3), Compression::Auto);
    bytes[8] = 7;
    let e = Snapshot::from_bytes(bytes).unwrap_err();
    assert!(
        matches!(
            e,
            Error::Version {
                found: 7,
                supported: 6
            }
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains("rebuild"), "{e}");
}

/// An overlay refers to the base's compressed strings (FSST or cold) wherever it stores an
/// equal string, instead of compressing it again with its own tables.
#[test]
fn overlays_reuse_the_base_chain_compressed_strings() {
    let recs = records(600);
    let base = Arc::new(Snapshot::from_bytes(build(&recs, Compression::Auto)).unwrap());
    assert!(str_of(&base, "article:00005", "description").is_compressed());
    assert!(str_of(&base, "article:00006", "body").is_cold());
    let mut o = SnapshotBuilder::with_base(&base);
    let reused = json!({
        "title": recs[5].1["description"],
        "body": recs[6].1["body"],
        "tags": [recs[7].1["description"]],
    });
    let info = {
        o.insert("article:new", &reused).unwrap();
        o.to_bytes_with_info().unwrap().1
    };
    // The only new pool entry is the new id.
    assert_eq!(info.strings, 1, "{info:?}");
    let over = Snapshot::overlay_from_bytes(o.to_bytes().unwrap(), base).unwrap();
    over.verify().unwrap();
    assert_eq!(
        serde_json::to_value(over.get("article:new").unwrap()).unwrap(),
        reused
    );
    assert!(str_of(&over, "article:new", "body").is_cold());
}

/// Readers keep the last cold block each thread decoded (a record's long strings share
/// blocks). The cache must never answer for another file: not for another snapshot read
/// in turn, nor for a new snapshot whose bytes land where a dropped one's were.
#[test]
fn the_cold_block_cache_never_answers_for_another_file() {
    let one = records(40);
    let other: Vec<_> = one
        .iter()
        .map(|(id, r)| {
            let mut r = r.clone();
            let body = r["body"].as_str().unwrap().replace("pizza", "pazzi");
            r["body"] = body.into();
            (id.clone(), r)
        })
        .collect();
    let (a, b) = (
        build(&one, Compression::Auto),
        build(&other, Compression::Auto),
    );
    let body = |recs: &[(String, serde_json::Value)], id: &str| {
        let i = recs.iter().position(|(k, _)| k == id).unwrap();
        recs[i].1["body"].as_str().unwrap().to_owned()
    };
    // Two snapshots read in turn.
    let (sa, sb) = (
        Snapshot::from_bytes(a.clone()).unwrap(),
        Snapshot::from_bytes(b.clone()).unwrap(),
    );
    for i in 0..40 {
        let id = format!("article:{i:05}");
        for (snap, recs) in [(&sa, &one), (&sb, &other), (&sa, &one)] {
            let s = str_of(snap, &id, "body");
            assert!(s.is_cold());
            assert_eq!(s.to_cow().unwrap(), body(recs, &id));
        }
    }
    drop((sa, sb));
    // A snapshot dropped, and the other's bytes copied to where it was (the allocator
    // hands the freed buffer out again): reads see the new file, never the old block.
    let mut reused = 0;
    for round in 0..20 {
        let (first, second, recs) = if round % 2 == 0 {
            (&a, &b, &other)
        } else {
            (&b, &a, &one)
        };
        let old = Snapshot::from_bytes(first.clone()).unwrap();
        let at = old.as_bytes().as_ptr();
        let _ = str_of(&old, "article:00007", "body").to_cow().unwrap();
        drop(old);
        let new = Snapshot::from_bytes(second.clone()).unwrap();
        reused += usize::from(new.as_bytes().as_ptr() == at);
        assert_eq!(
            str_of(&new, "article:00007", "body").to_cow().unwrap(),
            body(recs, "article:00007")
        );
    }
    assert!(
        reused > 0,
        "the allocator never reused the buffer: the test proved nothing"
    );
}

/// `write_json` (what the HTTP layer sends) is `serde_json::to_vec` byte for byte on
/// plain, FSST and cold strings — with escapes, controls and non-Latin text inside them —
/// and through an overlay that replaces and patches records.
#[test]
fn write_json_is_serde_json_for_every_string_kind() {
    let mut recs = records(600);
    for (i, (_, r)) in recs.iter_mut().enumerate() {
        if i % 4 == 0 {
            r["description"] = json!(format!(
                "A \"quoted\" line {i}\n\tthen a tab, a backslash \\ and \u{1} — {}",
                prose(i as u64, 6)
            ));
            r["body"] = json!(format!("{}\n\n\"{}\"\r\n", prose(i as u64, 200), i));
        }
    }
    let json_of = |rec: fms::Record<'_>| {
        let mut out = Vec::new();
        rec.write_json(&mut out).unwrap();
        assert_eq!(out, serde_json::to_vec(&rec).unwrap());
        out
    };
    for c in [Compression::None, Compression::Auto, Compression::Level(19)] {
        let snap = Snapshot::from_bytes(build(&recs, c)).unwrap();
        for (id, r) in &recs {
            let out = json_of(snap.get(id).unwrap());
            assert_eq!(
                serde_json::from_slice::<serde_json::Value>(&out).unwrap(),
                *r
            );
        }
    }
    let base = Arc::new(Snapshot::from_bytes(build(&recs, Compression::Auto)).unwrap());
    // The escaped strings really are compressed: FSST and cold.
    assert!(str_of(&base, "article:00004", "description").is_compressed());
    assert!(str_of(&base, "article:00004", "body").is_cold());
    let mut o = SnapshotBuilder::with_base(&base);
    let mut want = recs.clone();
    for (i, (id, r)) in want.iter_mut().enumerate() {
        if i % 3 == 0 {
            r["title"] = json!(format!("Введение в \"дроби\", часть {i}"));
            if i % 2 == 0 {
                r["body"] = json!(prose(i as u64, 120));
            }
            o.insert(id, r).unwrap();
        }
    }
    let over = Snapshot::overlay_from_bytes(o.to_bytes().unwrap(), base.clone()).unwrap();
    for (id, r) in &want {
        let out = json_of(over.get(id).unwrap());
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(&out).unwrap(),
            *r
        );
    }
}

/// A cold string must be a UTF-8 slice of its block: a pool entry edited to start inside
/// a two-byte character (its block still whole UTF-8) is refused by `verify`, naming the
/// string — checked after the data pass, when each block is decoded once.
#[test]
fn verify_refuses_a_cold_string_cut_inside_a_character() {
    // 300 bytes each: the field goes cold, both strings in one block.
    let recs = [
        ("a".to_owned(), json!({ "body": "é".repeat(150) })),
        ("b".to_owned(), json!({ "body": "ü".repeat(150) })),
    ];
    let bytes = build(&recs, Compression::Auto);
    let snap = Snapshot::from_bytes(bytes.clone()).unwrap();
    snap.verify().unwrap();
    assert!(str_of(&snap, "a", "body").is_cold());
    let cold = common::section(&snap, "cold");
    // The block's header: 2 strings, of 300 (ac 02) bytes each.
    let header = [2u8, 0xac, 0x02, 0xac, 0x02];
    let found: Vec<usize> = (cold.start..=cold.end - header.len())
        .filter(|&i| bytes[i..i + header.len()] == header)
        .collect();
    assert_eq!(
        found.len(),
        1,
        "the block header is in the cold section once"
    );
    let mut cut = bytes;
    // 301 and 299 bytes: the same block, the first string ending inside a character.
    cut[found[0]..found[0] + 5].copy_from_slice(&[2, 0xad, 0x02, 0xab, 0x02]);
    let snap = Snapshot::from_bytes(common::rechecksum(cut)).unwrap();
    match snap.verify() {
        Err(Error::Format { kind, what, .. }) => {
            assert_eq!(kind, fms::FormatKind::BadUtf8);
            assert!(what.contains("inside a character"), "{what}");
        }
        other => panic!("expected a BadUtf8 error, got {other:?}"),
    }
    // Reading them is an error too, not a panic or a wrong string.
    assert!(str_of(&snap, "a", "body").to_cow().is_err());
    assert!(str_of(&snap, "b", "body").to_cow().is_err());
}
