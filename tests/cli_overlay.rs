//! `fms --base`: building overlays from complete trees and reading them back through their
//! bases, with the CLI binary as a user runs it (no terminal: no progress bar).

mod common;

use std::path::Path;

use common::{fms, stderr, stdout};

use serde_json::Value;

/// Runs `fms`, asserting success and an empty stderr (no progress bar without a terminal).
fn ok(args: &[&str], dir: &Path) -> String {
    let o = fms(args, dir);
    assert!(o.status.success(), "fms {args:?} failed: {}", stderr(&o));
    assert!(
        o.stderr.is_empty(),
        "fms {args:?} wrote to stderr: {:?}",
        stderr(&o)
    );
    stdout(&o)
}

/// Runs `fms`, asserting failure with a one-line error; returns that line.
fn fails(args: &[&str], dir: &Path) -> String {
    let o = fms(args, dir);
    assert!(
        !o.status.success(),
        "fms {args:?} succeeded: {}",
        stdout(&o)
    );
    let err = stderr(&o);
    assert!(
        err.starts_with("fms: error: ") && err.trim_end().lines().count() == 1,
        "{err:?}"
    );
    err
}

fn read(dir: &Path, p: &str) -> String {
    std::fs::read_to_string(dir.join(p)).unwrap()
}

fn lines(text: &str) -> Vec<Value> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Writes records as JSONL the way `fms gen` and `fms export` do: the id first, then the
/// fields (in key order: serde_json's map here is sorted, as the generator's fields are).
fn write_jsonl(dir: &Path, name: &str, records: &[Value]) {
    let mut text = String::new();
    for r in records {
        let mut fields = r.as_object().unwrap().clone();
        let id = fields.remove("id").unwrap();
        let rest = serde_json::to_string(&fields).unwrap();
        let sep = if fields.is_empty() { "" } else { "," };
        text.push_str(&format!("{{\"id\":{id}{sep}{}\n", &rest[1..]));
    }
    std::fs::write(dir.join(name), text).unwrap();
}

/// The content hash `fms verify` reports.
fn hash_of(dir: &Path, snap: &str, bases: &[&str]) -> String {
    let mut args = vec!["verify", snap];
    for b in bases {
        args.extend(["--base", b]);
    }
    let out = ok(&args, dir);
    let at = out.find("hash ").expect("a hash") + 5;
    out[at..at + 32].to_string()
}

/// The number written just before `word` in `text` (e.g. "12 patched").
fn count_before(text: &str, word: &str) -> u64 {
    let at = text
        .find(&format!(" {word}"))
        .unwrap_or_else(|| panic!("no {word:?} in {text}"));
    let digits: String = text[..at]
        .chars()
        .rev()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.chars().rev().collect::<String>().parse().unwrap()
}

/// Generates en, es, pt at scale 0.02 and builds en.fms (full), es.fms (overlay over
/// en.fms) and pt.fms (full). Returns es's build output.
fn corpus(dir: &Path) -> String {
    ok(
        &["gen", "--scale", "0.02", "--locales", "en,es,pt", "-o", "c"],
        dir,
    );
    ok(&["build", "c/en.jsonl", "-o", "en.fms"], dir);
    ok(&["build", "c/pt.jsonl", "-o", "pt.fms"], dir);
    ok(
        &["build", "c/es.jsonl", "-o", "es.fms", "--base", "en.fms"],
        dir,
    )
}

#[test]
fn a_locale_overlay_reads_back_as_the_tree_it_was_built_from() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let built = corpus(d);
    let en_hash = hash_of(d, "en.fms", &[]);
    assert!(
        built.contains(&format!("overlay over {en_hash} (depth 1)")),
        "{built}"
    );
    // Every es record has an en record with the same id, so nothing is added or removed;
    // translated records are changed (whole or patched), the others cost nothing.
    let es_input = read(d, "c/es.jsonl");
    let es = lines(&es_input);
    let en = lines(&read(d, "c/en.jsonl"));
    let differing = es.iter().zip(&en).filter(|(a, b)| a != b).count() as u64;
    assert_eq!(count_before(&built, "added"), 0);
    assert_eq!(count_before(&built, "removed"), 0);
    assert_eq!(
        count_before(&built, "replaced") + count_before(&built, "patched"),
        differing
    );
    assert_eq!(
        count_before(&built, "unchanged"),
        es.len() as u64 - differing
    );
    assert!(differing > 0 && differing < es.len() as u64);
    // The overlay is much smaller than the full tree.
    let size = |p: &str| std::fs::metadata(d.join(p)).unwrap().len();
    assert!(size("es.fms") * 2 < size("pt.fms"), "{}", size("es.fms"));

    // export --base: the same records, in the same order, with the same fields in the
    // same order; and since the generator lists ids in en's order, byte for byte.
    let exported = ok(&["export", "--base", "en.fms", "es.fms"], d);
    let back = lines(&exported);
    assert_eq!(back.len(), es.len());
    for (i, (a, b)) in back.iter().zip(&es).enumerate() {
        assert_eq!(a, b, "line {}", i + 1);
        let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
        assert_eq!(keys(a), keys(b), "field order of line {}", i + 1);
    }
    assert!(exported == es_input, "export is not byte-identical");
    // export -o with the base after the snapshot: the same bytes.
    ok(
        &["export", "es.fms", "-o", "es.out.jsonl", "--base", "en.fms"],
        d,
    );
    assert_eq!(read(d, "es.out.jsonl"), es_input);

    // get --base: a translated record and an untranslated one, and one field.
    let (i, _) = es
        .iter()
        .zip(&en)
        .enumerate()
        .find(|(_, (a, b))| a != b)
        .unwrap();
    let (j, _) = es
        .iter()
        .zip(&en)
        .enumerate()
        .find(|(_, (a, b))| a == b)
        .unwrap();
    for k in [i, j] {
        let id = es[k]["id"].as_str().unwrap();
        let got: Value =
            serde_json::from_str(&ok(&["get", "es.fms", id, "--base", "en.fms"], d)).unwrap();
        let mut want = es[k].clone();
        want.as_object_mut().unwrap().remove("id");
        assert_eq!(got, want, "{id}");
        let title: Value = serde_json::from_str(&ok(
            &["get", "--base", "en.fms", "es.fms", id, "--field", "title"],
            d,
        ))
        .unwrap();
        assert_eq!(title, es[k]["title"]);
    }

    // verify --base checks the chain.
    let v = ok(&["verify", "es.fms", "--base", "en.fms"], d);
    assert!(
        v.contains("ok (") && v.contains(&format!("overlay over {en_hash}")),
        "{v}"
    );

    // diff --base: the changed records are exactly the ones that differ.
    let summary: Value = serde_json::from_str(&ok(
        &[
            "diff",
            "--base",
            "en.fms",
            "en.fms",
            "es.fms",
            "--summary",
            "--json",
        ],
        d,
    ))
    .unwrap();
    assert_eq!(summary["changed"], differing);
    assert_eq!(summary["added"], 0);
    assert_eq!(summary["removed"], 0);
    assert_eq!(summary["unchanged"], es.len() as u64 - differing);
}

#[test]
fn inspect_of_an_overlay_shows_its_own_sections_and_what_it_stores() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let built = corpus(d);
    let en_hash = hash_of(d, "en.fms", &[]);
    let r: Value =
        serde_json::from_str(&ok(&["inspect", "es.fms", "--base", "en.fms", "--json"], d)).unwrap();
    let names: Vec<&str> = r["sections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "header", "pool", "data", "shapes", "keys", "ids", "overlay", "changes", "symbols",
            "cold"
        ]
    );
    let total: u64 = r["sections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["bytes"].as_u64().unwrap())
        .sum();
    let size = std::fs::metadata(d.join("es.fms")).unwrap().len();
    assert_eq!(total, size);
    assert_eq!(r["bytes"], size);
    let o = &r["overlay"];
    assert_eq!(o["base"], en_hash.as_str());
    assert_eq!(o["depth"], 1);
    assert_eq!(
        o["base_bytes"],
        std::fs::metadata(d.join("en.fms")).unwrap().len()
    );
    for word in ["added", "replaced", "patched", "removed", "unchanged"] {
        assert_eq!(o[word], count_before(&built, word), "{word}");
    }
    assert_eq!(
        o["entries"],
        o["added"].as_u64().unwrap()
            + o["replaced"].as_u64().unwrap()
            + o["patched"].as_u64().unwrap()
            + o["removed"].as_u64().unwrap()
    );
    // Record-level figures are over the merged tree.
    let es = lines(&read(d, "c/es.jsonl"));
    assert_eq!(r["records"], es.len() as u64);
    assert_eq!(r["records_read"], es.len() as u64);

    let text = ok(&["inspect", "es.fms", "--base", "en.fms"], d);
    assert!(
        text.contains(&format!("overlay over {en_hash} (depth 1")),
        "{text}"
    );
    assert!(
        text.contains("  overlay "),
        "no overlay section row in {text}"
    );
    // A full snapshot has no overlay part.
    let full: Value = serde_json::from_str(&ok(&["inspect", "en.fms", "--json"], d)).unwrap();
    assert!(full["overlay"].is_null());
}

#[test]
fn an_overlay_without_its_base_or_over_the_wrong_one_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    corpus(d);
    let en_hash = hash_of(d, "en.fms", &[]);
    let pt_hash = hash_of(d, "pt.fms", &[]);
    let id = lines(&read(d, "c/es.jsonl"))[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    // No --base: every reading command says it is an overlay over en's hash, and to pass
    // --base.
    for args in [
        vec!["export", "es.fms"],
        vec!["get", "es.fms", &id],
        vec!["verify", "es.fms"],
        vec!["inspect", "es.fms"],
        vec!["diff", "pt.fms", "es.fms"],
    ] {
        let err = fails(&args, d);
        assert!(
            err.contains("es.fms")
                && err.contains(&format!("an overlay over {en_hash}"))
                && err.contains("--base"),
            "{args:?}: {err}"
        );
    }
    // diff's two sides may serve as each other's base.
    let d2 = ok(&["diff", "en.fms", "es.fms", "--summary"], d);
    assert!(d2.contains("0 added, 0 removed"), "{d2}");
    // The wrong base: pt.fms is a full snapshot, not the one es.fms was built over.
    let err = fails(&["export", "--base", "pt.fms", "es.fms"], d);
    assert!(
        err.contains("es.fms")
            && err.contains(&en_hash)
            && err.contains(&format!("pt.fms is {pt_hash}"))
            && err.contains("--base"),
        "{err}"
    );
    // A base that is not a snapshot at all: its own error, naming it.
    let err = fails(&["export", "--base", "c/en.jsonl", "es.fms"], d);
    assert!(err.contains("c/en.jsonl"), "{err}");
    // A missing base file.
    let err = fails(&["get", "--base", "nope.fms", "es.fms", &id], d);
    assert!(err.contains("nope.fms"), "{err}");
    // Building over two separate chains is ambiguous.
    let err = fails(
        &[
            "build",
            "c/es.jsonl",
            "-o",
            "x.fms",
            "--base",
            "es.fms",
            "--base",
            "pt.fms",
            "--base",
            "en.fms",
        ],
        d,
    );
    assert!(err.contains("chains") && err.contains("pt.fms"), "{err}");
    assert!(!d.join("x.fms").exists());
}

#[test]
fn stacked_overlays_removed_and_added_ids_read_back_through_every_base() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    corpus(d);
    let en = lines(&read(d, "c/en.jsonl"));
    // v2: a content update over en: some records changed, some removed, two added.
    let mut v2 = Vec::new();
    let mut dropped = Vec::new();
    for (i, r) in en.iter().enumerate() {
        if i % 40 == 7 {
            dropped.push(r["id"].as_str().unwrap().to_string());
            continue;
        }
        let mut r = r.clone();
        if i % 25 == 3 {
            r["title"] = Value::from(format!("Updated title {i}"));
        }
        v2.push(r);
    }
    v2.push(serde_json::json!({"id": "video:new-1", "title": "New", "duration": 61}));
    v2.push(
        serde_json::json!({"id": "topic:new-2", "title": "Newer", "children": ["video:new-1"]}),
    );
    write_jsonl(d, "v2.jsonl", &v2);
    let built = ok(
        &["build", "v2.jsonl", "-o", "v2.fms", "--base", "en.fms"],
        d,
    );
    assert_eq!(count_before(&built, "removed"), dropped.len() as u64);
    assert_eq!(count_before(&built, "added"), 2);
    assert_eq!(
        count_before(&built, "replaced") + count_before(&built, "patched"),
        en.len().div_ceil(25) as u64
            - en.iter()
                .enumerate()
                .filter(|(i, _)| i % 25 == 3 && i % 40 == 7)
                .count() as u64
    );
    // Removed ids are gone from the merged tree (tombstones), the rest reads back as v2.
    let back = ok(&["export", "--base", "en.fms", "v2.fms"], d);
    assert_eq!(lines(&back), v2);
    assert_eq!(back, read(d, "v2.jsonl"));
    for id in &dropped {
        let err = fails(&["get", "v2.fms", id, "--base", "en.fms"], d);
        assert!(err.contains("no record with id"), "{err}");
    }

    // v3 over v2 over en: stacked; the bases in either order.
    let mut v3: Vec<Value> = v2[3..].to_vec();
    v3[0]["title"] = Value::from("Changed again");
    v3.push(serde_json::json!({"id": "video:new-3", "title": "Newest"}));
    write_jsonl(d, "v3.jsonl", &v3);
    let built = ok(
        &[
            "build", "v3.jsonl", "-o", "v3.fms", "--base", "v2.fms", "--base", "en.fms",
        ],
        d,
    );
    let v2_hash = hash_of(d, "v2.fms", &["en.fms"]);
    assert!(
        built.contains(&format!("overlay over {v2_hash} (depth 2)")),
        "{built}"
    );
    assert_eq!(count_before(&built, "removed"), 3);
    assert_eq!(count_before(&built, "added"), 1);
    for bases in [["en.fms", "v2.fms"], ["v2.fms", "en.fms"]] {
        let back = ok(
            &["export", "v3.fms", "--base", bases[0], "--base", bases[1]],
            d,
        );
        assert_eq!(lines(&back), v3);
        assert_eq!(back, read(d, "v3.jsonl"));
    }
    let v = ok(
        &["verify", "v3.fms", "--base", "v2.fms", "--base", "en.fms"],
        d,
    );
    assert!(v.contains("depth 2"), "{v}");
    // Only the top of the chain: v2.fms (a --base file) lacks its own base.
    let en_hash = hash_of(d, "en.fms", &[]);
    let err = fails(&["export", "v3.fms", "--base", "v2.fms"], d);
    assert!(
        err.contains("v2.fms (a --base file)") && err.contains(&en_hash),
        "{err}"
    );
    // diff between two overlays of one chain.
    let s: Value = serde_json::from_str(&ok(
        &[
            "diff",
            "v2.fms",
            "v3.fms",
            "--base",
            "en.fms",
            "--base",
            "v2.fms",
            "--summary",
            "--json",
        ],
        d,
    ))
    .unwrap();
    assert_eq!(
        (&s["added"], &s["removed"], &s["changed"]),
        (&Value::from(1), &Value::from(3), &Value::from(1))
    );
}

#[test]
fn failed_overlay_builds_name_file_and_line_and_leave_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    corpus(d);
    let before: std::collections::BTreeSet<_> = std::fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    let en = read(d, "c/en.jsonl");
    let mut broken: Vec<&str> = en.lines().take(5).collect();
    broken[2] = "{\"id\": \"video:broken\", \"title\": ";
    std::fs::write(d.join("broken.jsonl"), broken.join("\n") + "\n").unwrap();
    let err = fails(
        &["build", "broken.jsonl", "-o", "out.fms", "--base", "en.fms"],
        d,
    );
    assert!(err.contains("broken.jsonl:3: invalid JSON"), "{err}");
    assert!(!d.join("out.fms").exists());
    // A duplicate id in the complete tree.
    let dup = format!(
        "{}\n{}\n",
        en.lines().next().unwrap(),
        en.lines().next().unwrap()
    );
    std::fs::write(d.join("dup.jsonl"), dup).unwrap();
    let err = fails(
        &["build", "dup.jsonl", "-o", "out.fms", "--base", "en.fms"],
        d,
    );
    assert!(err.contains("dup.jsonl:2: duplicate id"), "{err}");
    assert!(!d.join("out.fms").exists());
    // A missing base, a base that is an overlay without its own base, a missing input.
    let err = fails(
        &["build", "c/es.jsonl", "-o", "out.fms", "--base", "nope.fms"],
        d,
    );
    assert!(err.contains("nope.fms"), "{err}");
    let err = fails(
        &["build", "c/es.jsonl", "-o", "out.fms", "--base", "es.fms"],
        d,
    );
    assert!(err.contains("es.fms") && err.contains("--base"), "{err}");
    let err = fails(
        &["build", "nope.jsonl", "-o", "out.fms", "--base", "en.fms"],
        d,
    );
    assert!(err.contains("nope.jsonl"), "{err}");
    assert!(!d.join("out.fms").exists());
    // Nothing else was left behind either (no temporary files).
    let after: std::collections::BTreeSet<_> = std::fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n != "broken.jsonl" && n != "dup.jsonl")
        .collect();
    assert_eq!(before, after);
}

#[test]
fn build_quiet_and_without_a_terminal_prints_only_the_summary() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("a.jsonl"), "{\"id\":\"v:1\",\"title\":\"Intro\"}\n").unwrap();
    // `ok` asserts an empty stderr: no progress bar when stderr is not a terminal.
    for extra in [None, Some("--quiet"), Some("-q")] {
        let mut args = vec!["build", "a.jsonl", "-o", "a.fms"];
        args.extend(extra);
        let out = ok(&args, d);
        assert_eq!(out.lines().count(), 1, "{out}");
        assert!(out.starts_with("a.fms: 1 records"), "{out}");
    }
}

/// A `--base` chain already at the depth limit: `fms build` says so before reading its
/// input (not as an error at line 1 of the input), and writes nothing.
#[test]
fn a_chain_at_the_depth_limit_is_refused_before_reading_the_input() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let version = |v: usize| {
        vec![
            serde_json::json!({"id": "a", "title": format!("version {v}")}),
            serde_json::json!({"id": "b", "title": "stays"}),
        ]
    };
    write_jsonl(d, "v0.jsonl", &version(0));
    ok(&["build", "v0.jsonl", "-o", "v0.fms"], d);
    let max = fms::limits::MAX_OVERLAY_DEPTH as usize;
    for v in 1..=max {
        write_jsonl(d, &format!("v{v}.jsonl"), &version(v));
        let mut args = vec![
            "build".to_owned(),
            format!("v{v}.jsonl"),
            "-o".to_owned(),
            format!("v{v}.fms"),
        ];
        for b in 0..v {
            args.extend(["--base".to_owned(), format!("v{b}.fms")]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        ok(&args, d);
    }
    let next = max + 1;
    write_jsonl(d, &format!("v{next}.jsonl"), &version(next));
    let mut args = vec![
        "build".to_owned(),
        format!("v{next}.jsonl"),
        "-o".to_owned(),
        format!("v{next}.fms"),
    ];
    for b in 0..next {
        args.extend(["--base".to_owned(), format!("v{b}.fms")]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let err = fails(&args, d);
    assert!(
        err.contains("already 8 overlays deep") && !err.contains(".jsonl:1"),
        "{err}"
    );
    assert!(!d.join(format!("v{next}.fms")).exists());
}
