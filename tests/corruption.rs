//! Corruption: truncations and bit flips of a real snapshot never panic, and `verify()`
//! rejects every one of them.

mod common;

use fms::Snapshot;

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
            Err(e) => {
                // The message says where.
                let msg = e.to_string();
                assert!(msg.contains("byte") || msg.contains("version"), "{msg}");
            }
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
    let data = fms::format::HEADER_LEN + 5 * fms::format::SECTION_ENTRY_LEN;
    let mut b = bytes.clone();
    b[data + 3] ^= 0x10; // inside the pool, the first section
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
    for (bytes, needle) in [
        (vec![], "shorter than"),
        (
            b"{\"title\": \"not a snapshot\"} padding padding padding padding".to_vec(),
            "bad magic",
        ),
        (vec![0u8; 4096], "bad magic"),
    ] {
        let err = Snapshot::from_bytes(bytes).unwrap_err();
        assert!(err.to_string().contains(needle), "{err}");
    }
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.fms");
    std::fs::write(&empty, b"").unwrap();
    let err = Snapshot::open(&empty).unwrap_err();
    assert!(err.to_string().contains("empty"), "{err}");
    let err = Snapshot::open(dir.path().join("missing.fms")).unwrap_err();
    assert!(err.to_string().contains("missing.fms"), "{err}");
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
    assert!(err.to_string().contains("walk cost"), "{err}");
    let rec = snap.get("r").unwrap();
    let err = serde_json::to_string(&rec).unwrap_err();
    assert!(err.to_string().contains("walk cost"), "{err}");
    let err = rec.to_owned().unwrap_err();
    assert!(err.to_string().contains("walk cost"), "{err}");
}
