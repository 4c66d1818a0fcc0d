//! Holes a review found, each with a test that fails if it reopens: content hashes parsed
//! from hex digits only, the atomic write's rollback, and loading a snapshot into memory
//! for files that may change under a mapping.

use std::path::Path;
use std::str::FromStr;

use fms::{ContentHash, Error};

/// The error an operation failed with, below any wrapping that adds context (a file name):
/// the innermost `fms::Error` in the `source` chain. Tests match variants on this, so a
/// change in how errors are wrapped touches only this function.
fn cause(e: &Error) -> &Error {
    let mut cur = e;
    while let Some(next) = std::error::Error::source(cur).and_then(|s| s.downcast_ref::<Error>()) {
        cur = next;
    }
    cur
}

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
        matches!(cause(&e), Error::Value(m) if m == "fill failed on purpose"),
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
    assert!(matches!(cause(&e), Error::Value(_)), "{e:?}");
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
    match cause(&e) {
        Error::Io { path, source } => {
            assert_eq!(path, &missing, "{e}");
            assert_eq!(source.kind(), std::io::ErrorKind::NotFound, "{e}");
        }
        other => panic!("expected Error::Io, got {other:?}"),
    }
    assert!(e.to_string().contains("no-such-dir"), "{e}");
    assert_eq!(names_in(dir.path()), Vec::<String>::new());
}
