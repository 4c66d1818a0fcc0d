//! Holes a review found, each with a test that fails if it reopens: content hashes parsed
//! from hex digits only, the atomic write's rollback, and loading a snapshot into memory
//! for files that may change under a mapping.

use std::path::Path;
use std::str::FromStr;

use fms::{ContentHash, Error};

// ---- ContentHash::from_str ----

const HEX: &str = "0123456789abcdef0123456789abcdef";

#[test]
fn content_hash_parses_hex_digits_of_either_case() {
    let h = ContentHash::from_str(HEX).unwrap();
    assert_eq!(h.to_string(), HEX);
    assert_eq!(ContentHash::from_str(&HEX.to_uppercase()).unwrap(), h);
    assert_eq!(
        ContentHash::from_str("0123456789ABCDEF0123456789abcdef").unwrap(),
        h,
        "mixed case"
    );
}

#[test]
fn content_hash_rejects_anything_but_32_hex_digits() {
    let bad = [
        // `u8::from_str_radix` accepts "+f": a sign in any byte pair.
        "+f23456789abcdef0123456789abcdef".to_owned(),
        "0123456789abcdef0123456789abcd+f".to_owned(),
        "+0+1+2+3+4+5+6+7+8+9+a+b+c+d+e+f".to_owned(),
        "-f23456789abcdef0123456789abcdef".to_owned(),
        " f23456789abcdef0123456789abcdef".to_owned(),
        "0123456789abcdef0123456789abcde ".to_owned(),
        "0123456789abcdef 123456789abcdef".to_owned(),
        "0x23456789abcdef0123456789abcdef".to_owned(),
        "g123456789abcdef0123456789abcdef".to_owned(),
        HEX[..31].to_owned(),
        format!("{HEX}0"),
        String::new(),
        // Non-ASCII of the right byte length (a 2-byte character in place of two digits),
        // and of the right char count.
        format!("é{}", &HEX[2..]),
        format!("é{}", &HEX[1..]),
        format!("{}٣", &HEX[..31]),
    ];
    for s in &bad {
        let e = ContentHash::from_str(s).expect_err(s);
        assert!(matches!(e, Error::InvalidInput(_)), "{s:?}: {e:?}");
    }
}

// ---- write_file_atomically ----

fn names_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}

/// A `fill` that writes some bytes (more than the write buffer holds, so part of them
/// reaches the temporary file) and then fails.
fn write_then_fail(w: &mut dyn std::io::Write) -> fms::Result<()> {
    let chunk = vec![b'x'; 64 * 1024];
    for _ in 0..40 {
        w.write_all(&chunk).unwrap();
    }
    Err(Error::Value("fill failed on purpose".into()))
}

#[test]
fn a_failed_atomic_write_leaves_nothing_at_a_new_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.fms");
    // Watch the temporary file exist while `fill` runs: the rollback has work to do.
    let e = fms::write_file_atomically(&path, |w| {
        let during = names_in(dir.path());
        assert_eq!(during.len(), 1, "{during:?}");
        assert!(during[0].starts_with(".fms-tmp-"), "{during:?}");
        write_then_fail(w)
    })
    .unwrap_err();
    assert!(
        matches!(e.root(), Error::Value(m) if m == "fill failed on purpose"),
        "{e:?}"
    );
    assert!(!path.exists());
    assert_eq!(names_in(dir.path()), Vec::<String>::new(), "temp file left");
}

#[test]
fn a_failed_atomic_write_leaves_an_existing_file_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.fms");
    std::fs::write(&path, b"the old contents\n").unwrap();
    let e = fms::write_file_atomically(&path, write_then_fail).unwrap_err();
    assert!(matches!(e.root(), Error::Value(_)), "{e:?}");
    assert_eq!(std::fs::read(&path).unwrap(), b"the old contents\n");
    assert_eq!(names_in(dir.path()), ["out.fms"], "temp file left");

    // And a successful write replaces it whole.
    fms::write_file_atomically(&path, |w| {
        w.write_all(b"new\n")
            .map_err(|e| Error::Value(e.to_string()))
    })
    .unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b"new\n");
    assert_eq!(names_in(dir.path()), ["out.fms"]);
}

#[test]
fn an_atomic_write_into_a_missing_directory_is_an_io_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-dir");
    let mut called = false;
    let e = fms::write_file_atomically(missing.join("out.fms"), |_| {
        called = true;
        Ok(())
    })
    .unwrap_err();
    assert!(!called, "fill ran without a file to write to");
    match e.root() {
        Error::Io { path, source } => {
            assert_eq!(*path, missing, "{e}");
            assert_eq!(source.kind(), std::io::ErrorKind::NotFound, "{e}");
        }
        other => panic!("expected Error::Io, got {other:?}"),
    }
    assert_eq!(names_in(dir.path()), Vec::<String>::new());
}

// ---- loading into memory: files that may change under a map ----

use std::sync::Arc;

use fms::{Loading, Snapshot, SnapshotBuilder, Store};

fn records(version: i64) -> Vec<(String, serde_json::Value)> {
    (0..200)
        .map(|i| {
            (
                format!("r:{i}"),
                serde_json::json!({"version": version, "title": format!("title {i}"), "tags": ["a", i]}),
            )
        })
        .collect()
}

fn full(version: i64) -> Snapshot {
    let mut b = SnapshotBuilder::new();
    for (id, r) in records(version) {
        b.insert(&id, &r).unwrap();
    }
    Snapshot::from_bytes(b.to_bytes().unwrap()).unwrap()
}

fn overlay(base: &Arc<Snapshot>, version: i64) -> Snapshot {
    let mut b = SnapshotBuilder::with_base(base);
    for (id, r) in records(version) {
        b.insert(&id, &r).unwrap();
    }
    Snapshot::overlay_from_bytes(b.to_bytes().unwrap(), base.clone()).unwrap()
}

/// Every record of `snap` as JSON, in order.
fn dump(snap: &Snapshot) -> Vec<String> {
    snap.iter()
        .map(|(id, r)| format!("{id} {}", serde_json::to_string(&r).unwrap()))
        .collect()
}

/// Rewrites the file at `path` in place (same inode): first every byte zeroed at the same
/// length (what a map would see as changed bytes), then truncated to nothing (what would
/// make a map fault).
fn clobber_in_place(path: &Path) {
    use std::io::Write;
    let len = std::fs::metadata(path).unwrap().len();
    let mut f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.write_all(&vec![0; len as usize]).unwrap();
    f.sync_all().unwrap();
    f.set_len(0).unwrap();
    f.sync_all().unwrap();
}

#[test]
fn a_snapshot_opened_in_memory_survives_its_file_being_rewritten_and_truncated() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("en.fms");
    let original = full(1);
    std::fs::write(&path, original.as_bytes()).unwrap();
    let snap = Snapshot::open_in_memory(&path).unwrap();
    assert_eq!(snap.hash(), original.hash());
    let want = dump(&original);
    assert_eq!(dump(&snap), want);

    clobber_in_place(&path);
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);
    assert_eq!(snap.hash(), original.hash());
    assert_eq!(dump(&snap), want);
    snap.verify().unwrap();
    // And the file is gone altogether.
    std::fs::remove_file(&path).unwrap();
    assert_eq!(dump(&snap), want);
}

#[test]
fn an_overlay_opened_in_memory_survives_its_files_being_rewritten() {
    let dir = tempfile::tempdir().unwrap();
    let (bp, op) = (dir.path().join("en.fms"), dir.path().join("es.fms"));
    let base = Arc::new(full(1));
    let es = overlay(&base, 2);
    std::fs::write(&bp, base.as_bytes()).unwrap();
    std::fs::write(&op, es.as_bytes()).unwrap();
    let base_m = Arc::new(Snapshot::open_in_memory(&bp).unwrap());
    let es_m = Snapshot::open_overlay_in_memory(&op, base_m.clone()).unwrap();
    assert_eq!(es_m.hash(), es.hash());
    assert_eq!(es_m.base_hash(), Some(base.hash()));
    let want = dump(&es);
    clobber_in_place(&bp);
    clobber_in_place(&op);
    assert_eq!(dump(&es_m), want);
    es_m.verify().unwrap();

    // The same errors as open_overlay: another base is a BaseMismatch.
    std::fs::write(&op, es.as_bytes()).unwrap();
    let other = Arc::new(full(3));
    let e = Snapshot::open_overlay_in_memory(&op, other.clone()).unwrap_err();
    assert!(
        matches!(e.root(), Error::BaseMismatch { expected, found }
            if *expected == base.hash() && *found == other.hash()),
        "{e:?}"
    );
}

#[test]
fn opening_in_memory_reports_missing_and_empty_files() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.fms");
    let e = Snapshot::open_in_memory(&missing).unwrap_err();
    assert!(
        matches!(e.root(), Error::Io { path, source }
            if path == &missing && source.kind() == std::io::ErrorKind::NotFound),
        "{e:?}"
    );
    let empty = dir.path().join("empty.fms");
    std::fs::write(&empty, b"").unwrap();
    let e = Snapshot::open_in_memory(&empty).unwrap_err();
    assert!(matches!(e.root(), Error::Format { offset: 0, .. }), "{e:?}");
    // Exactly what `open` says about the same files.
    let m = Snapshot::open(&empty).unwrap_err();
    assert_eq!(e.to_string(), m.to_string());
}

#[test]
fn a_store_loading_into_memory_survives_its_files_being_rewritten() {
    let dir = tempfile::tempdir().unwrap();
    let base = Arc::new(full(1));
    let es = overlay(&base, 2);
    for (name, s) in [("en.fms", &*base), ("es.fms", &es)] {
        std::fs::write(dir.path().join(name), s.as_bytes()).unwrap();
    }
    let mpath = dir.path().join("manifest.json");
    fms::Manifest::new("en")
        .locale("en", "en.fms")
        .locale("es", "es.fms")
        .write(&mpath)
        .unwrap();

    assert_eq!(Store::new("en").loading(), Loading::Mmap, "the default");
    let store = Store::new("en").with_loading(Loading::Memory);
    assert_eq!(store.loading(), Loading::Memory);
    let served = store.reload(&mpath).unwrap();
    assert_eq!(served["en"], base.hash());
    assert_eq!(served["es"], es.hash());
    // And `load`, by hand, the same way: the same content, registered once.
    let again = store.load(dir.path().join("es.fms")).unwrap();
    assert!(Arc::ptr_eq(&again, &store.current("es").unwrap()));
    let other = dir.path().join("v3.fms");
    std::fs::write(&other, full(3).as_bytes()).unwrap();
    let v3 = store.load(&other).unwrap();

    for name in ["en.fms", "es.fms", "v3.fms"] {
        clobber_in_place(&dir.path().join(name));
    }
    assert_eq!(dump(&store.current("en").unwrap()), dump(&base));
    assert_eq!(dump(&store.current("es").unwrap()), dump(&es));
    assert_eq!(dump(&store.current("pt").unwrap()), dump(&base));
    assert_eq!(dump(&v3), dump(&full(3)));
    store.current("es").unwrap().verify().unwrap();
}
