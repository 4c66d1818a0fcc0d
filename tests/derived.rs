//! Format version 4's derived strings: a string stored as references to other strings of
//! the file and literals (URLs built from slugs and paths). What the builder finds, that
//! every read gives the text back (however it is asked for), serde, overlays, and hostile
//! derived entries (`fms::check::derived_snapshot`): each a precise error, never a panic.

mod common;

use std::borrow::Cow;
use std::sync::Arc;

use fms::format::put_varint;
use fms::{Compression, Error, FormatKind, Snapshot, SnapshotBuilder, Str};
use serde_json::{Value, json};

use common::{build_json as build, str_of};

/// Pages of a site: URL fields that repeat the slug and the parent's path (what the
/// builder derives), and enough other text for `Auto` to train symbol tables.
fn records(n: usize) -> Vec<(String, Value)> {
    (0..n)
        .map(|i| {
            let parent = format!("/unit-{}/lesson-{}", i % 7, i % 23);
            let slug = format!("fractions-and-decimals-{i}");
            let rel = format!("{parent}/v/{slug}");
            (
                format!("video:{i:05}"),
                json!({
                    "slug": slug,
                    "node_slug": format!("v/{slug}"),
                    "parent_path": parent,
                    "relative_url": rel,
                    "ka_url": format!("https://www.example.org{rel}"),
                    "youtube_id": format!("yt{i:09}x"),
                    "download": {
                        "mp4": format!("https://cdn.example.org/converted/yt{i:09}x.mp4/yt{i:09}x.mp4"),
                        "png": format!("https://cdn.example.org/converted/yt{i:09}x.mp4/yt{i:09}x.png"),
                    },
                    "description": format!("Learn how fractions and decimals relate, with worked example number {i} and a short quiz at the end."),
                    "n": i,
                }),
            )
        })
        .collect()
}

#[test]
fn urls_are_derived_and_read_back_every_way() {
    let recs = records(800);
    let bytes = build(&recs, Compression::Auto);
    let plain = build(&recs, Compression::None);
    let snap = Snapshot::from_bytes(bytes).unwrap();
    snap.verify().unwrap();
    assert_eq!(snap.as_bytes()[8], fms::FORMAT_VERSION as u8);
    let mut derived = 0;
    for (id, want) in &recs {
        let rec = snap.get(id).unwrap();
        // The whole record, through serde and to_owned.
        assert_eq!(serde_json::to_value(rec).unwrap(), *want, "{id}");
        assert_eq!(
            serde_json::to_value(rec.to_owned().unwrap()).unwrap(),
            *want,
            "{id}"
        );
        for field in ["ka_url", "relative_url", "node_slug"] {
            let s = str_of(&snap, id, field);
            let text = want[field].as_str().unwrap();
            derived += usize::from(s.is_derived());
            assert!(s.is_compressed() && !s.is_cold());
            assert_eq!(s, text);
            assert_eq!(s.len(), text.len());
            assert_eq!(s.to_string(), text);
            assert_eq!(format!("{s:?}"), format!("{text:?}"));
            assert_eq!(s.to_cow().unwrap(), text);
            let mut buf = String::from(">");
            s.write_into(&mut buf).unwrap();
            assert_eq!(&buf[1..], text);
            assert_eq!(
                serde_json::to_string(&s).unwrap(),
                serde_json::to_string(text).unwrap()
            );
            // Not equal to its prefixes, extensions or a changed byte.
            assert_ne!(s, &text[..text.len() - 1]);
            assert_ne!(s, format!("{text}/"));
            assert_ne!(s, text.replace('v', "w"));
            // Equal to the same text stored another way.
            assert_eq!(s, Str::from(text));
        }
    }
    // Every ka_url is the site plus the relative URL (which FSST alone codes well here).
    assert!(derived >= recs.len(), "{derived} derived URL strings");
    assert!(
        recs.iter()
            .all(|(id, _)| str_of(&snap, id, "ka_url").is_derived())
    );
    // Derived strings make the file smaller than FSST alone would.
    let fsst_only = {
        let mut b = SnapshotBuilder::new();
        for (id, r) in &recs {
            // The same text, but no field repeats another (every URL is cut to its tail).
            let mut r = r.clone();
            r["ka_url"] = json!(r["ka_url"].as_str().unwrap().replace('/', "|"));
            r["relative_url"] = json!(r["relative_url"].as_str().unwrap().replace('/', "|"));
            b.insert(id, &r).unwrap();
        }
        b.to_bytes().unwrap()
    };
    assert!(
        snap.as_bytes().len() < fsst_only.len(),
        "{} vs {}",
        snap.as_bytes().len(),
        fsst_only.len()
    );
    // Compression::None derives nothing.
    let plain = Snapshot::from_bytes(plain).unwrap();
    assert!(str_of(&plain, "video:00001", "ka_url").as_plain().is_some());
}

#[derive(serde::Deserialize)]
struct Page<'a> {
    ka_url: String,
    #[serde(borrow)]
    relative_url: Cow<'a, str>,
}

#[derive(Debug, serde::Deserialize)]
#[allow(dead_code)]
struct Borrowed<'a> {
    ka_url: &'a str,
}

#[test]
fn serde_takes_derived_strings_and_names_the_field_a_borrow_cannot_take() {
    let recs = records(800);
    let snap = Snapshot::from_bytes(build(&recs, Compression::Auto)).unwrap();
    let rec = snap.get("video:00042").unwrap();
    assert!(str_of(&snap, "video:00042", "ka_url").is_derived());
    let p: Page = rec.deserialize().unwrap();
    assert_eq!(p.ka_url, recs[42].1["ka_url"]);
    assert_eq!(p.relative_url, recs[42].1["relative_url"].as_str().unwrap());
    let e = rec.deserialize::<Borrowed>().unwrap_err().to_string();
    assert!(e.contains("ka_url"), "{e}");
}

#[test]
fn overlays_read_the_base_derived_strings_and_derive_their_own() {
    let recs = records(800);
    let base = Arc::new(Snapshot::from_bytes(build(&recs, Compression::Auto)).unwrap());
    let mut o = SnapshotBuilder::with_base(&base);
    let mut want = recs.clone();
    for (i, (id, r)) in want.iter_mut().enumerate() {
        if i % 2 == 0 {
            // A translated description; the URLs stay (the overlay refers to the base's
            // derived strings) ...
            r["description"] = json!(format!(
                "Aprende cómo se relacionan las fracciones y los decimales, ejemplo {i}, con una prueba corta al final."
            ));
            // ... and new URLs, which the overlay derives from its own strings.
            if i % 4 == 0 {
                let slug = format!("fracciones-y-decimales-{i}");
                r["slug"] = json!(slug);
                r["node_slug"] = json!(format!("v/{slug}"));
            }
            o.insert(id, r).unwrap();
        }
    }
    let over = common::overlay_reads_as(o, &base, &want);
    assert!(str_of(&over, "video:00002", "ka_url").is_derived());
    let own = str_of(&over, "video:00004", "node_slug");
    assert_eq!(own, "v/fracciones-y-decimales-4");
}

/// A derived entry of `parts`, each `(kind, value)` with its literal bytes for kind 3.
fn entry(parts: &[(u64, u64, &[u8])]) -> Vec<u8> {
    let mut e = Vec::new();
    for &(kind, v, lit) in parts {
        put_varint(&mut e, v << 2 | kind);
        e.extend_from_slice(lit);
    }
    e
}

const PLAIN: u64 = 0;
const FSST: u64 = 1;
const DERIVED: u64 = 2;
const LITERAL: u64 = 3;

/// Opens `bytes`, reads its one field every way; returns the text if it reads, the
/// error of `verify` otherwise (reads and verify must agree).
fn read(bytes: Vec<u8>) -> Result<String, Error> {
    fms::check::open_read(&bytes);
    let snap = Snapshot::from_bytes(bytes).unwrap();
    let rec = snap.get("r").unwrap();
    let verified = snap.verify();
    let got = rec.get("s").and_then(|v| v.as_str()).map(|s| {
        // Every way of reading agrees with the others.
        let cow = s.to_cow();
        let json = serde_json::to_string(&rec);
        let shown = s.to_string();
        match &cow {
            Ok(text) => {
                assert_eq!(
                    json.unwrap(),
                    format!("{{\"s\":{}}}", serde_json::to_string(text).unwrap())
                );
                assert_eq!(&shown, text);
                assert_eq!(s, **text);
                assert_eq!(s.len(), text.len());
            }
            Err(_) => {
                assert!(json.is_err());
                assert!(shown.ends_with('\u{FFFD}'), "{shown:?}");
            }
        }
        cow.map(Cow::into_owned)
    });
    match (got, verified) {
        (Some(Ok(text)), Ok(())) => Ok(text),
        (Some(Ok(text)), Err(e)) => panic!("reads {text:?}, but verify says {e}"),
        (_, Ok(())) => panic!("verify passes, but the string does not read"),
        (_, Err(e)) => Err(e),
    }
}

fn kind(e: Error) -> (FormatKind, String) {
    match e {
        Error::Format { kind, .. } => (kind, e.to_string()),
        other => panic!("not a format error: {other}"),
    }
}

#[test]
fn a_crafted_derived_entry_reads_when_well_formed() {
    // "hello" at 4; the entry refers 1 entry back to it (distance at - 4), then a literal.
    let text = read(fms::check::derived_snapshot(&[b"hello"], |at| {
        entry(&[(PLAIN, u64::from(at - 4), b""), (LITERAL, 3, b"-xy")])
    }))
    .unwrap();
    assert_eq!(text, "hello-xy");
    // Nested: a derived part that is itself derived.
    let text = read(fms::check::derived_snapshot(
        &[b"ab", &entry(&[(PLAIN, 3, b""), (LITERAL, 1, b"c")])],
        |at| entry(&[(DERIVED, u64::from(at - 7), b""), (LITERAL, 1, b"!")]),
    ))
    .unwrap();
    assert_eq!(text, "abc!");
}

#[test]
fn hostile_derived_entries_are_precise_errors() {
    type Case = (&'static str, Vec<u8>, FormatKind, &'static str);
    // A chain of `levels` derived entries, each referring to the one before it (2 bytes
    // back: a one-byte entry and its length), the first to the plain "ab" at 4 (3 bytes
    // back): the slot's string is `levels` deep.
    let deep = |levels: usize| {
        let mut before: Vec<Vec<u8>> = vec![b"ab".to_vec()];
        for _ in 1..levels {
            let (kind, back) = if before.len() == 1 {
                (PLAIN, 3)
            } else {
                (DERIVED, 2)
            };
            before.push(entry(&[(kind, back, b"")]));
        }
        let (kind, back) = if levels == 1 {
            (PLAIN, 3)
        } else {
            (DERIVED, 2)
        };
        fms::check::derived_snapshot(
            &before.iter().map(Vec::as_slice).collect::<Vec<_>>(),
            |_| entry(&[(kind, back, b"")]),
        )
    };
    let big = [b'x'; 1000];
    let cases: Vec<Case> = vec![
        (
            "itself",
            fms::check::derived_snapshot(&[], |_| entry(&[(DERIVED, 0, b"")])),
            FormatKind::BadEncoding,
            "points at or above the entry",
        ),
        (
            "before the pool",
            fms::check::derived_snapshot(&[], |at| entry(&[(PLAIN, u64::from(at) + 1, b"")])),
            FormatKind::BadEncoding,
            "points at or above the entry",
        ),
        (
            "not an entry start",
            fms::check::derived_snapshot(&[b"hello"], |at| {
                entry(&[(PLAIN, u64::from(at - 5), b"")])
            }),
            FormatKind::OutOfBounds,
            "not the start of an entry",
        ),
        (
            "empty literal",
            fms::check::derived_snapshot(&[b"hello"], |at| {
                entry(&[(PLAIN, u64::from(at - 4), b""), (LITERAL, 0, b"")])
            }),
            FormatKind::BadEncoding,
            "a part is empty",
        ),
        (
            "empty entry",
            fms::check::derived_snapshot(&[], |_| Vec::new()),
            FormatKind::BadEncoding,
            "an empty entry",
        ),
        (
            "literal not UTF-8",
            fms::check::derived_snapshot(&[], |_| entry(&[(LITERAL, 2, b"\xff\xfe")])),
            FormatKind::BadUtf8,
            "not UTF-8",
        ),
        (
            "literal cut by the entry's end",
            fms::check::derived_snapshot(&[], |_| entry(&[(LITERAL, 9, b"abc")])),
            FormatKind::BadEncoding,
            "cut short",
        ),
        (
            "nine parts",
            fms::check::derived_snapshot(&[], |_| entry(&[(LITERAL, 1, &b"a"[..]); 9])),
            FormatKind::BadEncoding,
            "over 8",
        ),
        (
            "expands past 64 times its entry",
            fms::check::derived_snapshot(&[&big], |at| {
                let back = u64::from(at - 4);
                entry(&[(PLAIN, back, b""), (PLAIN, back, b""), (PLAIN, back, b"")])
            }),
            FormatKind::Limit,
            "over 64 times its entry",
        ),
        (
            "an FSST part in a file without symbol tables",
            fms::check::derived_snapshot(&[b"hello"], |at| {
                entry(&[(FSST, u64::from(at - 4), b"")])
            }),
            FormatKind::OutOfBounds,
            "no such symbol table",
        ),
        (
            "a plain part that is not UTF-8",
            fms::check::derived_snapshot(&[b"\xffab"], |at| {
                entry(&[(PLAIN, u64::from(at - 4), b"")])
            }),
            FormatKind::BadUtf8,
            "not UTF-8",
        ),
        (
            "nested 17 deep",
            deep(17),
            FormatKind::Limit,
            "nested more than 16 deep",
        ),
    ];
    for (what, bytes, want, says) in cases {
        let (k, msg) = kind(read(bytes).expect_err(what));
        assert_eq!(k, want, "{what}: {msg}");
        assert!(msg.contains(says), "{what}: {msg}");
        assert!(
            msg.contains("derived string") || msg.contains("pool offset"),
            "{what}: {msg}"
        );
    }
    // 16 deep is the limit, and reads.
    assert_eq!(read(deep(16)).unwrap(), "ab");
}
