//! Corruption: truncations and bit flips of a real snapshot never panic, and `verify()`
//! rejects every one of them.

mod common;

use fms::{Error, FormatKind, Snapshot};

fn sample() -> Vec<u8> {
    common::build(&common::varied_records(40))
}

#[test]
fn every_truncation_is_rejected_at_open() {
    let bytes = sample();
    for len in 0..bytes.len() {
        let cut = bytes[..len].to_vec();
        match Snapshot::from_bytes(cut) {
            Ok(_) => panic!(
                "a snapshot truncated to {len} of {} bytes opened",
                bytes.len()
            ),
            // A format error says where (its offset), or the version field is cut.
            Err(e) => assert!(
                matches!(e, Error::Format { .. } | Error::Version { .. }),
                "{e}"
            ),
        }
    }
}

#[test]
fn every_seventh_bit_flip_never_panics_and_is_rejected() {
    let bytes = sample();
    Snapshot::from_bytes(bytes.clone())
        .unwrap()
        .verify()
        .unwrap();
    let mut opened = 0;
    for bit in (0..bytes.len() * 8).step_by(7) {
        let mut b = bytes.clone();
        b[bit / 8] ^= 1 << (bit % 8);
        let Ok(snap) = Snapshot::from_bytes(b) else {
            continue;
        };
        opened += 1;
        common::read_everything(&snap);
        assert!(
            snap.verify().is_err(),
            "flip of bit {bit} (byte {}) passed verify",
            bit / 8
        );
    }
    // Flips outside the header open (open is O(1)) and must be caught by verify.
    assert!(opened > bytes.len(), "only {opened} flipped files opened");
}

/// With the checksums recomputed, flips reach the structural checks. Some flips are
/// harmless (a different integer, a different character); the promise is that nothing
/// panics and that whatever `verify` accepts reads back completely.
#[test]
fn rechecksummed_flips_never_panic_and_verified_ones_read_fully() {
    let bytes = sample();
    let (mut rejected, mut accepted) = (0, 0);
    for bit in (0..bytes.len() * 8).step_by(5) {
        let mut b = bytes.clone();
        b[bit / 8] ^= 1 << (bit % 8);
        let b = common::rechecksum(b);
        let Ok(snap) = Snapshot::from_bytes(b) else {
            rejected += 1;
            continue;
        };
        let readable = common::read_everything(&snap);
        match snap.verify() {
            Ok(()) => {
                accepted += 1;
                assert_eq!(
                    readable,
                    snap.len(),
                    "bit {bit}: verified, but not every record reads"
                );
            }
            Err(e) => {
                rejected += 1;
                // The checksums were recomputed, so verify must find the damage itself and
                // say where it is: a format error at a byte inside the file.
                match e {
                    fms::Error::Format { offset, .. } => assert!(
                        offset < bytes.len() as u64,
                        "bit {bit}: offset {offset} is past the file ({} bytes)",
                        bytes.len()
                    ),
                    e => panic!("bit {bit}: expected Error::Format, got {e:?}"),
                }
            }
        }
    }
    assert!(
        rejected > 0 && accepted > 0,
        "rejected {rejected}, accepted {accepted}"
    );
}

#[test]
fn checksum_errors_name_the_section() {
    let bytes = sample();
    let snap = Snapshot::from_bytes(bytes.clone()).unwrap();
    let pool = snap.sections()[0].offset as usize;
    let mut b = bytes.clone();
    b[pool + 3] ^= 0x10; // inside the pool, the first section
    let err = Snapshot::from_bytes(b).unwrap().verify().unwrap_err();
    assert!(
        matches!(
            err,
            fms::Error::Checksum {
                section: "pool",
                ..
            }
        ),
        "{err}"
    );
    let mut b = bytes;
    b[20] ^= 1; // inside the content hash
    let err = Snapshot::from_bytes(b).unwrap_err();
    assert!(
        matches!(
            err,
            fms::Error::Checksum {
                section: "header",
                ..
            }
        ),
        "{err}"
    );
    drop(snap);
}

#[test]
fn garbage_and_wrong_files_are_clear_errors() {
    for (bytes, want) in [
        (vec![], FormatKind::Truncated),
        (
            b"{\"title\": \"not a snapshot\"} padding padding padding padding".to_vec(),
            FormatKind::BadMagic,
        ),
        (vec![0u8; 4096], FormatKind::BadMagic),
    ] {
        let err = Snapshot::from_bytes(bytes).unwrap_err();
        assert!(
            matches!(err, Error::Format { kind, offset: 0, .. } if kind == want),
            "{err}"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.fms");
    std::fs::write(&empty, b"").unwrap();
    let err = Snapshot::open(&empty).unwrap_err();
    match &err {
        Error::File { path, source } => {
            assert_eq!(path, &empty);
            assert!(matches!(
                **source,
                Error::Format {
                    kind: FormatKind::BadMagic,
                    ..
                }
            ));
        }
        e => panic!("expected an error naming the file, got {e:?}"),
    }
    let missing = dir.path().join("missing.fms");
    let err = Snapshot::open(&missing).unwrap_err();
    assert!(
        matches!(&err, Error::Io { path, source } if *path == missing
            && source.kind() == std::io::ErrorKind::NotFound),
        "{err}"
    );
}

/// The fuzz regression where one small record reached a 4,000-byte string 2^20 times
/// through doubly-shared lists: verify rejects it and walks stop at the walk budget
/// instead of materialising gigabytes.
#[test]
fn shared_references_cannot_amplify_a_walk() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fuzz/regressions/walk-amplifies-string-bytes.fms"
    );
    let snap = Snapshot::open(path).unwrap();
    assert!(snap.as_bytes().len() < 5000, "a small file");
    let err = snap.verify().unwrap_err();
    assert!(
        matches!(
            err,
            Error::Format {
                kind: FormatKind::Limit,
                ..
            }
        ),
        "{err}"
    );
    let rec = snap.get("r").unwrap();
    // serde_json's own error type carries our message only as text.
    let err = serde_json::to_string(&rec).unwrap_err();
    assert!(err.to_string().contains("walk cost"), "{err}");
    let err = rec.to_owned().unwrap_err();
    let limit = fms::limits::walk_limit(snap.as_bytes().len() as u64);
    assert!(
        matches!(err, Error::Limit { limit: l, .. } if l == limit),
        "{err}"
    );
}
