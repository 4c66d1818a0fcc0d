//! `fms inspect` and `fms diff`: the numbers they report on small hand-made snapshots and
//! on a generated corpus, and their error paths (the path named, a non-zero exit).

mod common;

use std::path::Path;

use common::{fms, stderr, stdout};

use serde_json::{Value, json};

/// Writes `lines` (JSON objects with an `id`, fields in the order given) as JSONL and
/// builds `<name>.fms` from them; returns the records as values.
fn build(dir: &Path, name: &str, lines: &[String]) -> Vec<Value> {
    let jsonl: String = lines.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(dir.join(format!("{name}.jsonl")), jsonl).unwrap();
    let o = fms(
        &[
            "build",
            &format!("{name}.jsonl"),
            "-o",
            &format!("{name}.fms"),
        ],
        dir,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn run_json(args: &[&str], dir: &Path) -> Value {
    let o = fms(args, dir);
    assert!(o.status.success(), "{args:?}: {}", stderr(&o));
    serde_json::from_slice(&o.stdout).expect("one JSON object")
}

fn body(c: char, n: usize) -> String {
    std::iter::repeat_n(c, n).collect()
}

/// Five records, two shapes; one title shared by two records, one long body.
fn small(dir: &Path) -> Vec<Value> {
    let lines = [
        r#"{"id":"v:1","title":"Shared title text","n":1}"#.to_string(),
        r#"{"id":"v:2","title":"Shared title text","n":2}"#.to_string(),
        r#"{"id":"v:3","title":"Another title","n":3}"#.to_string(),
        format!(
            r#"{{"id":"a:1","title":"Article one","body":"{}","tags":["x","yz"]}}"#,
            body('a', 600)
        ),
        format!(
            r#"{{"id":"a:2","title":"Article two","body":"{}","tags":["x"]}}"#,
            body('b', 300)
        ),
    ];
    build(dir, "small", &lines)
}

/// Compact JSON bytes of a record without its id, as inspect measures them.
fn json_bytes(record: &Value) -> u64 {
    let mut r = record.clone();
    r.as_object_mut().unwrap().remove("id");
    serde_json::to_string(&r).unwrap().len() as u64
}

fn keys(shape: &Value) -> Vec<&str> {
    shape["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap())
        .collect()
}

#[test]
fn inspect_json_reports_sections_shapes_fields_records_and_pool() {
    let dir = tempfile::tempdir().unwrap();
    let records = small(dir.path());
    let file_len = std::fs::metadata(dir.path().join("small.fms"))
        .unwrap()
        .len();
    let r = run_json(&["inspect", "small.fms", "--json"], dir.path());

    assert_eq!(r["file"], "small.fms");
    assert_eq!(r["bytes"], file_len);
    assert_eq!(r["records"], 5);
    assert_eq!(r["records_read"], 5);
    assert_eq!(r["record_shapes"], 2);
    assert_eq!(r["hash"].as_str().unwrap().len(), 32);

    // Sections: the header and table, then the seven sections in file order, tiling the file.
    let sections = r["sections"].as_array().unwrap();
    let names: Vec<&str> = sections
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "header", "pool", "data", "shapes", "keys", "ids", "symbols", "cold"
        ]
    );
    assert_eq!(sections[0]["bytes"], 48 + 7 * 32);
    let mut end = 0;
    for s in sections {
        assert_eq!(s["offset"], end, "{s}");
        end += s["bytes"].as_u64().unwrap();
    }
    assert_eq!(end, file_len);
    let pct: f64 = sections
        .iter()
        .map(|s| s["percent"].as_f64().unwrap())
        .sum();
    assert!((pct - 100.0).abs() < 0.1, "{pct}");

    // Shapes: the most used first, then by bytes (the article shape has the big bodies).
    let by_records = r["shapes_by_records"].as_array().unwrap();
    assert_eq!(keys(&by_records[0]), ["title", "n"]);
    assert_eq!(by_records[0]["records"], 3);
    assert_eq!(by_records[0]["label"], "S1");
    assert_eq!(keys(&by_records[1]), ["title", "body", "tags"]);
    assert_eq!(by_records[1]["records"], 2);
    let article_bytes: u64 = records[3..].iter().map(json_bytes).sum();
    assert_eq!(by_records[1]["json_bytes"], article_bytes);
    assert_eq!(by_records[1]["string_bytes"], 11 + 600 + 3 + 11 + 300 + 1);
    let by_bytes = r["shapes_by_bytes"].as_array().unwrap();
    assert_eq!(by_bytes[0]["label"], "S2");
    assert_eq!(by_bytes.len(), 2);

    // Fields by string bytes: body (900), title (69), tags (4), n (0).
    let fields = r["fields_by_string_bytes"].as_array().unwrap();
    let got: Vec<(&str, u64, u64)> = fields
        .iter()
        .map(|f| {
            (
                f["name"].as_str().unwrap(),
                f["string_bytes"].as_u64().unwrap(),
                f["records"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("body", 900, 2),
            ("title", 69, 5),
            ("tags", 4, 2),
            ("n", 0, 3)
        ]
    );

    // Largest records by compact JSON bytes, all five, biggest first.
    let largest = r["largest_records"].as_array().unwrap();
    let ids: Vec<&str> = largest.iter().map(|x| x["id"].as_str().unwrap()).collect();
    assert_eq!(ids[..2], ["a:1", "a:2"]);
    assert_eq!(largest[0]["json_bytes"], json_bytes(&records[3]));
    assert_eq!(largest[0]["fields"], 3);
    assert_eq!(largest.len(), 5);

    // Pool: six distinct value strings over 4 bytes, seven references, one of them shared;
    // "x", "yz" and "x" are inline.
    let p = &r["pool"];
    assert_eq!(p["value_strings"], 6);
    assert_eq!(p["value_string_bytes"], 17 + 13 + 11 + 11 + 600 + 300);
    assert_eq!(p["value_references"], 7);
    assert_eq!(p["shared_strings"], 1);
    assert_eq!(p["shared_bytes"], 17);
    assert_eq!(p["shared_references"], 2);
    assert_eq!(p["once_strings"], 5);
    assert_eq!(p["saved_bytes"], 17);
    assert_eq!(p["inline_strings"], 3);
    // The 7 references by stored form (this small file has no symbol tables: all plain).
    let forms = ["plain", "fsst", "cold", "derived"]
        .map(|f| p[format!("{f}_references")].as_u64().unwrap());
    assert_eq!(forms.iter().sum::<u64>(), 7, "{forms:?}");
    // Ids and key names: none shared with a value.
    assert_eq!(p["id_only_strings"], 5);
    assert_eq!(p["key_only_strings"], 4);
    assert_eq!(
        p["content_bytes"].as_u64().unwrap() + p["prefix_bytes"].as_u64().unwrap(),
        p["bytes"].as_u64().unwrap()
    );
    assert_eq!(p["bytes"], sections[1]["bytes"]);
    assert_eq!(p["other_bytes"], 0);
}

#[test]
fn inspect_text_shows_the_same_numbers_and_top_limits_the_lists() {
    let dir = tempfile::tempdir().unwrap();
    small(dir.path());
    let file_len = std::fs::metadata(dir.path().join("small.fms"))
        .unwrap()
        .len();
    let o = fms(&["inspect", "small.fms"], dir.path());
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    for needle in [
        format!("small.fms: {file_len} bytes, hash "),
        "records: 5,".to_string(),
        "  header              0          272".to_string(),
        format!("  total                 {file_len:>12}  100.0%"),
        "  S1           3        0".to_string(),
        "title, n\n".to_string(),
        "title, body, tags\n".to_string(),
        "  body                            2          900".to_string(),
        "  a:1 ".to_string(),
        "6 distinct".to_string(),
        "referenced 2+ times:          1 strings,           17 bytes, 2 references".to_string(),
    ] {
        assert!(out.contains(&needle), "missing {needle:?} in:\n{out}");
    }

    let r = run_json(
        &["inspect", "small.fms", "--json", "--top", "1"],
        dir.path(),
    );
    for list in [
        "shapes_by_records",
        "shapes_by_bytes",
        "fields_by_string_bytes",
        "largest_records",
    ] {
        assert_eq!(r[list].as_array().unwrap().len(), 1, "{list}");
    }
    assert_eq!(r["largest_records"][0]["id"], "a:1");
    assert_eq!(r["shapes_by_bytes"][0]["label"], "S2");
    let r = run_json(
        &["inspect", "small.fms", "--json", "--top", "0"],
        dir.path(),
    );
    assert!(r["largest_records"].as_array().unwrap().is_empty());
    assert_eq!(r["records"], 5);
}

#[test]
fn inspect_and_diff_on_a_generated_corpus() {
    let dir = tempfile::tempdir().unwrap();
    let o = fms(
        &["gen", "--scale", "0.02", "--locales", "en,es", "-o", "c"],
        dir.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    for l in ["en", "es"] {
        let o = fms(
            &["build", &format!("c/{l}.jsonl"), "-o", &format!("{l}.fms")],
            dir.path(),
        );
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let lines = std::fs::read_to_string(dir.path().join("c/en.jsonl"))
        .unwrap()
        .lines()
        .count() as u64;
    let r = run_json(
        &["inspect", "en.fms", "--json", "--top", "1000"],
        dir.path(),
    );
    assert_eq!(r["records"], lines);
    assert_eq!(r["records_read"], lines);
    // The corpus's URLs are derived strings, its titles FSST-coded, its bodies cold.
    for form in ["fsst", "cold", "derived"] {
        let n = r["pool"][format!("{form}_references")].as_u64().unwrap();
        assert!(n > 0, "no {form} strings");
    }
    let sum: u64 = r["sections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["bytes"].as_u64().unwrap())
        .sum();
    assert_eq!(sum, r["bytes"].as_u64().unwrap());
    // Every shape in the file is seen (top-level or nested), and records add up.
    let shapes = r["shapes_by_records"].as_array().unwrap();
    assert_eq!(shapes.len() as u64, r["shapes"].as_u64().unwrap());
    let recs: u64 = shapes.iter().map(|s| s["records"].as_u64().unwrap()).sum();
    assert_eq!(recs, lines);
    // The shapes' JSON bytes are the export's bytes without the ids.
    let o = fms(&["export", "en.fms"], dir.path());
    let export_bytes: u64 = stdout(&o)
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            json_bytes(&v)
        })
        .sum();
    let json: u64 = shapes
        .iter()
        .map(|s| s["json_bytes"].as_u64().unwrap())
        .sum();
    assert_eq!(json, export_bytes);

    // A translation changes fields, never ids.
    let d = run_json(
        &["diff", "en.fms", "es.fms", "--json", "--summary"],
        dir.path(),
    );
    assert_eq!(d["added"], 0);
    assert_eq!(d["removed"], 0);
    assert!(d["changed"].as_u64().unwrap() > 0);
    assert_eq!(
        d["changed"].as_u64().unwrap() + d["unchanged"].as_u64().unwrap(),
        lines
    );
}

fn diff_pair(dir: &Path) {
    let lines = |ls: &[&str]| ls.iter().map(|l| l.to_string()).collect::<Vec<_>>();
    build(
        dir,
        "old",
        &lines(&[
            r#"{"id":"a","t":"x","n":1,"l":[1,2,{"q":1}]}"#,
            r#"{"id":"b","t":"y"}"#,
            r#"{"id":"c","t":"z","old":true}"#,
            r#"{"id":"same","m":{"x":1,"y":[1]},"s":"a longer string"}"#,
        ]),
    );
    build(
        dir,
        "new",
        &lines(&[
            r#"{"id":"a","t":"x","n":1.0,"l":[1,2,{"q":2}]}"#,
            r#"{"id":"c","t":"zz","new":null}"#,
            // Field order differs, values are equal: unchanged.
            r#"{"id":"same","s":"a longer string","m":{"y":[1],"x":1}}"#,
            r#"{"id":"d e","t":"w"}"#,
        ]),
    );
}

#[test]
fn diff_lists_added_removed_and_changed_ids_with_their_fields() {
    let dir = tempfile::tempdir().unwrap();
    diff_pair(dir.path());
    let o = fms(&["diff", "old.fms", "new.fms"], dir.path());
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        "old.fms -> new.fms: 1 added, 1 removed, 2 changed, 1 unchanged\n\
         ~ a: n, l\n\
         ~ c: t (+new, -old)\n\
         + \"d e\"\n\
         - b\n"
    );

    let o = fms(&["diff", "old.fms", "new.fms", "--summary"], dir.path());
    assert!(o.status.success());
    assert_eq!(
        stdout(&o),
        "old.fms -> new.fms: 1 added, 1 removed, 2 changed, 1 unchanged\n"
    );

    let d = run_json(&["diff", "old.fms", "new.fms", "--json"], dir.path());
    assert_eq!(
        d,
        json!({
            "a": "old.fms",
            "b": "new.fms",
            "counts": {"added": 1, "removed": 1, "changed": 2, "unchanged": 1},
            "changed": [
                {"id": "a", "changed": ["n", "l"], "added": [], "removed": []},
                {"id": "c", "changed": ["t"], "added": ["new"], "removed": ["old"]},
            ],
            "added": ["d e"],
            "removed": ["b"],
        })
    );

    // The other way round, and a snapshot against itself.
    let o = fms(&["diff", "new.fms", "old.fms"], dir.path());
    let out = stdout(&o);
    assert!(out.starts_with("new.fms -> old.fms: 1 added, 1 removed, 2 changed, 1 unchanged\n"));
    assert!(
        out.contains("~ c: t (+old, -new)\n") && out.contains("+ b\n"),
        "{out}"
    );
    let d = run_json(
        &["diff", "old.fms", "old.fms", "--json", "--summary"],
        dir.path(),
    );
    assert_eq!(
        d,
        json!({"added": 0, "removed": 0, "changed": 0, "unchanged": 4})
    );
}

#[test]
fn errors_name_the_path_and_exit_non_zero() {
    let dir = tempfile::tempdir().unwrap();
    small(dir.path());
    let bytes = std::fs::read(dir.path().join("small.fms")).unwrap();
    std::fs::write(dir.path().join("cut.fms"), &bytes[..bytes.len() - 3]).unwrap();
    std::fs::write(
        dir.path().join("junk.fms"),
        b"this is not a snapshot at all, not even close to one",
    )
    .unwrap();
    std::fs::write(dir.path().join("empty.fms"), b"").unwrap();

    let cases: &[(&[&str], &str)] = &[
        (&["inspect", "missing.fms"], "missing.fms"),
        (&["inspect", "cut.fms"], "cut.fms"),
        (&["inspect", "junk.fms", "--json"], "junk.fms"),
        (&["inspect", "empty.fms"], "empty.fms"),
        (&["diff", "missing.fms", "small.fms"], "missing.fms"),
        (&["diff", "small.fms", "missing.fms"], "missing.fms"),
        (&["diff", "small.fms", "cut.fms"], "cut.fms"),
        (&["diff", "junk.fms", "small.fms", "--json"], "junk.fms"),
    ];
    for (args, path) in cases {
        let o = fms(args, dir.path());
        assert!(!o.status.success(), "{args:?} succeeded");
        let err = stderr(&o);
        assert!(err.starts_with("fms: error: "), "{args:?}: {err}");
        assert!(err.contains(path), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(o.stdout.is_empty(), "{args:?} printed {}", stdout(&o));
    }
}
