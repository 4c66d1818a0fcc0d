//! Limits of the format (FORMAT.md, "Limits"), each at and just past its value, on the
//! read side. The builder's side of the nesting and walk limits is tested in
//! tests/roundtrip.rs, the overlay depth in tests/overlay.rs.

mod common;

use std::sync::Arc;

use fms::FormatKind;
use fms::format;
use fms::limits::{MAX_OVERLAY_DEPTH, MAX_PROBE, MAX_SECTIONS};
use fms::{Error, Snapshot, SnapshotBuilder};
use serde_json::json;

fn base() -> Arc<Snapshot> {
    let mut b = SnapshotBuilder::new();
    for i in 0..4 {
        b.insert(
            &format!("r:{i}"),
            &json!({"title": format!("t{i}"), "n": i}),
        )
        .unwrap();
    }
    Arc::new(Snapshot::from_bytes(b.to_bytes().unwrap()).unwrap())
}

fn overlay_over(base: &Arc<Snapshot>) -> Vec<u8> {
    let mut o = SnapshotBuilder::with_base(base);
    o.insert("r:1", &json!({"title": "uno dos tres", "n": 1}))
        .unwrap();
    o.to_bytes().unwrap()
}

/// Sets the `u32` at `at` (counted from the end of the file if negative) and fixes the
/// checksums, so that only the structural check can reject the file.
fn with_u32(bytes: &[u8], at: isize, v: u32) -> Vec<u8> {
    let mut b = bytes.to_vec();
    let at = if at < 0 {
        b.len() - at.unsigned_abs()
    } else {
        at as usize
    };
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
    common::rechecksum(b)
}

/// Where the OVERLAY section of an overlay file starts (the sixth section).
fn overlay_at(bytes: &[u8]) -> isize {
    let (e, _) = format::SectionEntry::read(bytes, 5).unwrap();
    assert_eq!(e.kind, format::section::OVERLAY);
    e.offset as isize
}

/// The kind of the format error `r` must be.
fn format_error(r: fms::Result<Snapshot>) -> FormatKind {
    match r {
        Err(Error::Format { kind, .. }) => kind,
        other => panic!("expected a format error, got {other:?}"),
    }
}

#[test]
fn overlay_depth_is_checked_at_open() {
    let base = base();
    let good = overlay_over(&base);
    // Depth is the OVERLAY section's first field.
    let depth_at = overlay_at(&good);
    Snapshot::overlay_from_bytes(good.clone(), base.clone()).unwrap();
    for depth in [0, MAX_OVERLAY_DEPTH + 1, u32::MAX] {
        let bad = with_u32(&good, depth_at, depth);
        let kind = format_error(Snapshot::overlay_from_bytes(bad, base.clone()));
        assert_eq!(kind, FormatKind::Limit);
    }
    // Within the limit but not 1 + the base's depth.
    let bad = with_u32(&good, depth_at, MAX_OVERLAY_DEPTH);
    let kind = format_error(Snapshot::overlay_from_bytes(bad, base.clone()));
    assert_eq!(kind, FormatKind::BadOverlay);
}

#[test]
fn overlay_address_spaces_must_continue_the_base_and_fit_32_bits() {
    let base = base();
    let good = overlay_over(&base);
    // pool start (second field): one byte off, and so large that the overlay's own pool
    // would end past 2^32 - 1.
    let ov = overlay_at(&good);
    let at = ov as usize + 4;
    let real = u32::from_le_bytes(good[at..at + 4].try_into().unwrap());
    let kind = format_error(Snapshot::overlay_from_bytes(
        with_u32(&good, ov + 4, real + 1),
        base.clone(),
    ));
    assert_eq!(kind, FormatKind::BadOverlay);
    let kind = format_error(Snapshot::overlay_from_bytes(
        with_u32(&good, ov + 4, u32::MAX - 2),
        base.clone(),
    ));
    assert_eq!(kind, FormatKind::Limit);
    // Counts that do not fit: `removed` past `changed`, and a `changed` other than the
    // CHANGES section's count.
    let kind = format_error(Snapshot::overlay_from_bytes(
        with_u32(&good, ov + 28, 2),
        base.clone(),
    ));
    assert_eq!(kind, FormatKind::BadOverlay);
    let kind = format_error(Snapshot::overlay_from_bytes(
        with_u32(&good, ov + 24, 2),
        base.clone(),
    ));
    assert_eq!(kind, FormatKind::BadOverlay);
}

#[test]
fn overlay_ordinal_start_must_continue_the_base_and_fit_32_bits() {
    let base = base();
    let good = overlay_over(&base);
    // The ordinal start is the OVERLAY section's ninth field: the base's 4 ids.
    let at = overlay_at(&good) + 32;
    assert_eq!(good[at as usize..at as usize + 4], 4u32.to_le_bytes());
    // Off by one: the CHANGES section no longer covers it (its ordinal end is the base's)...
    let kind = format_error(Snapshot::overlay_from_bytes(
        with_u32(&good, at, 5),
        base.clone(),
    ));
    assert_eq!(kind, FormatKind::BadOverlay);
    // ...and with the CHANGES section's ordinal end moved along (same bitset length),
    // it does not continue the base.
    let changes = format::SectionEntry::read(&good, 6).unwrap().0;
    assert_eq!(changes.kind, format::section::CHANGES);
    let moved = with_u32(&with_u32(&good, at, 5), changes.offset as isize + 4, 5);
    let kind = format_error(Snapshot::overlay_from_bytes(moved, base.clone()));
    assert_eq!(kind, FormatKind::BadOverlay);
    // Ordinals past 2^32 - 1 (with the overlay's own id entry): refused at open.
    let huge = u32::MAX - 1;
    let big = with_u32(&good, at, huge);
    let kind = format_error(Snapshot::overlay_from_bytes(big, base.clone()));
    assert!(
        matches!(kind, FormatKind::BadOverlay | FormatKind::Limit),
        "{kind:?}"
    );
}

#[test]
fn section_count_at_and_past_the_limits() {
    let good = base().as_bytes().to_vec();
    let mut bad = good.clone();
    bad[format::OFF_SECTION_COUNT..format::OFF_SECTION_COUNT + 2]
        .copy_from_slice(&(MAX_SECTIONS as u16 + 1).to_le_bytes());
    let kind = format_error(Snapshot::from_bytes(bad));
    assert_eq!(kind, FormatKind::Limit);
    // 6 sections without the overlay flag: the table does not match the kinds.
    let mut bad = good.clone();
    bad[format::OFF_SECTION_COUNT..format::OFF_SECTION_COUNT + 2]
        .copy_from_slice(&6u16.to_le_bytes());
    let kind = format_error(Snapshot::from_bytes(common::rechecksum(bad)));
    assert_eq!(kind, FormatKind::BadHeader);
}

#[test]
fn probe_limit_at_and_past() {
    let snap = base();
    let good = snap.as_bytes().to_vec();
    // The KEYS section's header: count, slots, max probe (u16, then the two widths).
    // Find it through the table.
    let at = snap.sections()[3].offset as isize + 8;
    let slots = u32::from_le_bytes(good[at as usize - 4..at as usize].try_into().unwrap());
    let widths = u32::from_le_bytes(good[at as usize..at as usize + 4].try_into().unwrap());
    let with_u32 = |b: &[u8], at: isize, v: u32| with_u32(b, at, v | (widths & 0xffff_0000));
    // At the limit (when the table has that many slots) the file opens; past it, never.
    if slots >= MAX_PROBE {
        Snapshot::from_bytes(with_u32(&good, at, MAX_PROBE)).unwrap();
    } else {
        // A small table: the probe count may not exceed its slots either.
        let ok = with_u32(&good, at, slots);
        Snapshot::from_bytes(ok).unwrap().verify().unwrap();
        let kind = format_error(Snapshot::from_bytes(with_u32(&good, at, slots + 1)));
        assert_eq!(kind, FormatKind::BadIndex);
    }
    let kind = format_error(Snapshot::from_bytes(with_u32(&good, at, MAX_PROBE + 1)));
    assert_eq!(kind, FormatKind::BadIndex);
}

/// A version-4 index names its widths (1..=4) in its header, and they must be the
/// narrowest that hold its entry numbers and fields: out of range is an error at open,
/// wider than needed (yet consistent) an error of `verify`.
#[test]
fn narrow_index_widths() {
    let mut b = SnapshotBuilder::new();
    b.insert("v:1", &json!({"title": "Intro", "n": 42}))
        .unwrap();
    let good = b.to_bytes().unwrap();
    let snap = Snapshot::from_bytes(good.clone()).unwrap();
    let ids_at = snap.sections()[4].offset as usize;
    let ids = &good[ids_at..ids_at + snap.sections()[4].len as usize];
    // One entry in two slots: widths 1 and 1, 2-byte slots, 2 one-byte fields.
    assert_eq!(&ids[8..12], &[1, 0, 1, 1]);
    assert_eq!(ids.len(), 12 + 2 * 2 + 2);
    for (byte, v) in [(10, 0u8), (10, 5), (11, 0), (11, 5)] {
        let mut bad = good.clone();
        bad[ids_at + byte] = v;
        let kind = format_error(Snapshot::from_bytes(common::rechecksum(bad)));
        assert_eq!(kind, FormatKind::BadIndex, "byte {byte} = {v}");
    }
    // Widths in range but not the section's length: an error at open.
    let mut bad = good.clone();
    bad[ids_at + 11] = 2;
    let kind = format_error(Snapshot::from_bytes(common::rechecksum(bad)));
    assert_eq!(kind, FormatKind::BadEncoding);
    // Two-byte fields, consistently: it opens and reads, and verify says it is too wide.
    let mut wide = ids[..16].to_vec();
    wide[11] = 2;
    for &f in &ids[16..] {
        wide.extend_from_slice(&[f, 0]);
    }
    let bytes = fms::check::replace_section(&good, 4, &wide).unwrap();
    let snap = Snapshot::from_bytes(bytes).unwrap();
    assert_eq!(
        snap.get("v:1").unwrap().get("n").unwrap().as_i64(),
        Some(42)
    );
    match snap.verify() {
        Err(
            e @ Error::Format {
                kind: FormatKind::BadIndex,
                ..
            },
        ) => {
            assert!(e.to_string().contains("narrowest are 1 and 1"), "{e}");
        }
        other => panic!("{other:?}"),
    }
}
