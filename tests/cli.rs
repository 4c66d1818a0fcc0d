//! The `fms` command line: round trip, error paths that name file and line or offset,
//! nothing left at the output path on failure, and the demo at a tiny scale.

mod common;

use common::{fms, stderr};

#[test]
fn build_get_verify_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("a.jsonl"),
        "{\"id\":\"v:1\",\"title\":\"Intro\",\"n\":1}\n\n{\"id\":\"v:2\",\"title\":\"Loops\",\"tags\":[\"a\"]}\n",
    )
    .unwrap();
    let o = fms(&["build", "a.jsonl", "-o", "a.fms"], dir.path());
    assert!(o.status.success(), "{}", stderr(&o));
    let o = fms(&["get", "a.fms", "v:1"], dir.path());
    assert!(o.status.success(), "{}", stderr(&o));
    let got: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(got, serde_json::json!({"title": "Intro", "n": 1}));
    // Field order of the input is kept.
    assert!(
        String::from_utf8_lossy(&o.stdout).find("title")
            < String::from_utf8_lossy(&o.stdout).find("\"n\"")
    );
    let o = fms(&["get", "a.fms", "v:2", "--field", "tags"], dir.path());
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap(),
        serde_json::json!(["a"])
    );
    let o = fms(&["verify", "a.fms"], dir.path());
    assert!(o.status.success() && String::from_utf8_lossy(&o.stdout).contains("ok (2 records"));
}

#[test]
fn bad_input_names_file_and_line_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "{\"id\":\"a\"}\n{\"id\":\"b\",\n",
            "bad.jsonl:2: invalid JSON",
        ),
        (
            "{\"id\":\"a\"}\n[1,2]\n",
            "bad.jsonl:2: expected a JSON object, got a list",
        ),
        (
            "{\"title\":\"no id\"}\n",
            "bad.jsonl:1: missing id field \"id\"",
        ),
        (
            "{\"id\":\"a\"}\n{\"id\":\"a\"}\n",
            "bad.jsonl:2: duplicate id \"a\"",
        ),
        ("{\"id\":[1]}\n", "bad.jsonl:1: id field \"id\" is a list"),
        (
            "{\"id\":\"a\",\"n\":18446744073709551615}\n",
            "bad.jsonl:1:",
        ),
    ];
    for (input, expect) in cases {
        std::fs::write(dir.path().join("bad.jsonl"), input).unwrap();
        let o = fms(&["build", "bad.jsonl", "-o", "out.fms"], dir.path());
        assert!(!o.status.success());
        assert!(stderr(&o).contains(expect), "{input:?}: {}", stderr(&o));
        assert!(
            !dir.path().join("out.fms").exists(),
            "{input:?} left an output file"
        );
    }
    let o = fms(&["build", "missing.jsonl", "-o", "out.fms"], dir.path());
    assert!(!o.status.success() && stderr(&o).contains("missing.jsonl"));
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers, vec![std::ffi::OsString::from("bad.jsonl")]);
}

#[test]
fn broken_snapshots_are_reported_with_an_offset() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("a.jsonl"),
        "{\"id\":\"x\",\"v\":\"some text here\"}\n",
    )
    .unwrap();
    assert!(
        fms(&["build", "a.jsonl", "-o", "a.fms"], dir.path())
            .status
            .success()
    );
    let bytes = std::fs::read(dir.path().join("a.fms")).unwrap();
    std::fs::write(dir.path().join("cut.fms"), &bytes[..bytes.len() - 3]).unwrap();
    let o = fms(&["verify", "cut.fms"], dir.path());
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("cut.fms") && stderr(&o).contains("byte"),
        "{}",
        stderr(&o)
    );
    let mut flipped = bytes.clone();
    flipped[250] ^= 4;
    std::fs::write(dir.path().join("flip.fms"), &flipped).unwrap();
    let o = fms(&["verify", "flip.fms"], dir.path());
    assert!(
        !o.status.success() && stderr(&o).contains("checksum"),
        "{}",
        stderr(&o)
    );
    let o = fms(&["get", "a.fms", "nope"], dir.path());
    assert!(!o.status.success() && stderr(&o).contains("no record with id \"nope\""));
}

#[test]
fn demo_runs_end_to_end_at_a_tiny_scale() {
    let dir = tempfile::tempdir().unwrap();
    let o = fms(
        &[
            "demo",
            "--scale",
            "0.01",
            "--locales",
            "2",
            "--seconds",
            "0.3",
            "--threads",
            "2",
            "--dir",
            "out",
        ],
        dir.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    for needle in [
        "bytes of 3 trees (files vs JSONL text)",
        "heap to hold 3 trees",
        "(extrapolated: en",
        "lookups/s",
        "verify of all 3 trees",
        "| es | es.fms | overlay over en:",
        "| en v2 (content update) | en-v2.fms |",
    ] {
        assert!(out.contains(needle), "missing {needle:?} in:\n{out}");
    }
    // The update was swapped in while requests ran: some requests read each version.
    let line = out
        .lines()
        .find(|l| l.starts_with("requests to en: "))
        .unwrap();
    let nums: Vec<u64> = line
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    assert!(nums[0] > 0 && nums[1] > 0, "{line}");
    // What it wrote: the trees, the update and the manifest that serves it.
    for f in ["en.fms", "es.fms", "pt.fms", "en-v2.fms", "manifest.json"] {
        assert!(dir.path().join("out").join(f).exists(), "{f}");
    }
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("out/manifest.json")).unwrap())
            .unwrap();
    assert_eq!(manifest["locales"]["en"], "en-v2.fms");
    assert_eq!(manifest["locales"]["es"], "es.fms");
    assert_eq!(manifest["bases"], serde_json::json!(["en.fms"]));
}

#[test]
fn gen_build_export_gives_back_the_input_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let o = fms(
        &[
            "gen",
            "--scale",
            "0.02",
            "--locales",
            "en,es",
            "-o",
            "corpus",
        ],
        dir.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    for locale in ["en", "es"] {
        let input = format!("corpus/{locale}.jsonl");
        let snap = format!("{locale}.fms");
        let o = fms(&["build", &input, "-o", &snap], dir.path());
        assert!(o.status.success(), "{}", stderr(&o));
        let o = fms(&["export", &snap], dir.path());
        assert!(o.status.success(), "{}", stderr(&o));
        let original = std::fs::read(dir.path().join(&input)).unwrap();
        // One record per input line, all of them in the snapshot (so the comparison
        // below is not between two empty outputs).
        let lines = original
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .count();
        let records = fms::Snapshot::open(dir.path().join(&snap)).unwrap().len();
        assert_eq!(records, lines, "{locale}");
        assert!(records > 100, "{locale}: only {records} records");
        assert!(
            o.stdout == original,
            "export of {locale} differs from its input"
        );
    }
    // The same seed gives the same corpus; translated locales differ from the default.
    let o = fms(
        &[
            "gen",
            "--scale",
            "0.02",
            "--locales",
            "en,es",
            "-o",
            "again",
        ],
        dir.path(),
    );
    assert!(o.status.success());
    let read = |p: &str| std::fs::read(dir.path().join(p)).unwrap();
    assert_eq!(read("corpus/en.jsonl"), read("again/en.jsonl"));
    assert_ne!(read("corpus/en.jsonl"), read("corpus/es.jsonl"));
    // export -o is atomic: a missing directory fails and leaves nothing.
    let o = fms(&["export", "en.fms", "-o", "no/such/out.jsonl"], dir.path());
    assert!(
        !o.status.success() && stderr(&o).contains("no/such"),
        "{}",
        stderr(&o)
    );
}

/// A reader that went away (`fms verify x | head -0`) is no error: the command finishes
/// its work, exits by how that went, and does not panic.
#[test]
fn a_closed_stdout_is_no_panic() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("a.jsonl"),
        "{\"id\":\"v:1\",\"title\":\"Intro\"}\n",
    )
    .unwrap();
    for (args, ok) in [
        (&["build", "a.jsonl", "-o", "a.fms"][..], true),
        (&["verify", "a.fms"][..], true),
        (&["verify", "a.jsonl"][..], false),
    ] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_fms"))
            .args(args)
            .current_dir(dir.path())
            .stdout(writer)
            .stderr(std::process::Stdio::piped())
            .output()
            .unwrap();
        let err = stderr(&o);
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert_eq!(o.status.success(), ok, "{args:?}: {err}");
    }
    assert!(dir.path().join("a.fms").exists());
}
