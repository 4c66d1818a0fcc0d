//! The rules of version-2 nodes' narrow payloads (FORMAT.md "DATA"): every width a file
//! may name is read safely, and `verify` refuses what reads could not rely on — a node
//! wider than its slots need (two encodings of one value), an inline string longer than
//! its payload, a node cut by the end of the data section, a reference that does not
//! point backwards at a node. Each file is hand-made from a valid one by replacing its
//! data section (`fms::check::replace_section`) or one of its bytes.

use fms::format::{join_head, tag};
use fms::{Error, FormatKind, Snapshot, SnapshotBuilder};
use serde_json::json;

/// The data section's place in the section table.
const DATA: usize = 1;

fn build(record: serde_json::Value) -> Vec<u8> {
    let mut b = SnapshotBuilder::new();
    b.set_compression(fms::Compression::None);
    b.insert("r", &record).unwrap();
    b.to_bytes().unwrap()
}

/// The data section of `bytes`.
fn data(bytes: &[u8]) -> Vec<u8> {
    let at = fms::format::HEADER_LEN + DATA * fms::format::SECTION_ENTRY_LEN;
    let off = u64::from_le_bytes(bytes[at + 8..at + 16].try_into().unwrap()) as usize;
    let len = u64::from_le_bytes(bytes[at + 16..at + 24].try_into().unwrap()) as usize;
    bytes[off..off + len].to_vec()
}

/// `bytes` with its data section replaced (the one record stays at data offset 0).
fn with_data(bytes: &[u8], new: &[u8]) -> Snapshot {
    Snapshot::from_bytes(fms::check::replace_section(bytes, DATA, new).unwrap()).unwrap()
}

fn assert_format_error(snap: &Snapshot, kind: FormatKind, words: &str) {
    match snap.verify() {
        Err(Error::Format { kind: k, what, .. }) if k == kind && what.contains(words) => {}
        other => panic!("expected a {kind:?} error about {words:?}, got {other:?}"),
    }
}

#[test]
fn the_writer_picks_the_narrowest_width() {
    // One map node: header (map, height 1), head (shape 0, width 2), tag INT, 300 LE.
    let bytes = build(json!({"n": 300}));
    assert_eq!(
        data(&bytes),
        [0x01, join_head(0, 2) as u8, tag::INT, 0x2c, 0x01]
    );
    let bytes = build(json!({"n": -5}));
    assert_eq!(data(&bytes), [0x01, join_head(0, 1) as u8, tag::INT, 0xfb]);
    let snap = Snapshot::from_bytes(bytes).unwrap();
    assert_eq!(snap.get("r").unwrap().get("n").unwrap().as_i64(), Some(-5));
    // 1.0f32 is 0x3f800000: its two high bytes.
    let bytes = build(json!({"f": 1.0}));
    assert_eq!(
        data(&bytes),
        [0x01, join_head(0, 2) as u8, tag::F32, 0x80, 0x3f]
    );
}

#[test]
fn a_node_wider_than_its_slots_need_fails_verify() {
    let bytes = build(json!({"n": 5}));
    assert_eq!(data(&bytes), [0x01, join_head(0, 1) as u8, tag::INT, 5]);
    for w in 2..=4 {
        let mut node = vec![0x01, join_head(0, w) as u8, tag::INT, 5];
        node.resize(3 + w, 0);
        let snap = with_data(&bytes, &node);
        // Readers take any width...
        assert_eq!(snap.get("r").unwrap().get("n").unwrap().as_i64(), Some(5));
        // ...but a file has one encoding.
        assert_format_error(&snap, FormatKind::BadEncoding, "width");
    }
}

#[test]
fn an_inline_string_longer_than_its_payload_fails_verify_and_reads_none() {
    let bytes = build(json!({"s": "ab"}));
    assert_eq!(
        data(&bytes),
        [0x01, join_head(0, 2) as u8, tag::STR_INLINE + 2, b'a', b'b']
    );
    // Four bytes claimed, three stored.
    let node = [
        0x01,
        join_head(0, 3) as u8,
        tag::STR_INLINE + 4,
        b'a',
        b'b',
        b'c',
    ];
    let snap = with_data(&bytes, &node);
    assert!(snap.get("r").unwrap().get("s").is_none());
    assert_format_error(&snap, FormatKind::BadEncoding, "width");
    let _ = serde_json::to_string(&snap.get("r").unwrap());
    let _ = snap.get("r").unwrap().to_owned();

    // The same after a slot that needs the node's whole width (verify stops measuring
    // ordinary slots there, never inline strings).
    let bytes = build(json!({"n": 70000, "s": "ab"}));
    let [n0, n1, n2] = [0x70, 0x11, 0x01]; // 70000 = 0x011170
    assert_eq!(
        data(&bytes),
        [
            0x01,
            join_head(0, 3) as u8,
            tag::INT,
            tag::STR_INLINE + 2,
            n0,
            n1,
            n2,
            b'a',
            b'b',
            0
        ]
    );
    let node = [
        0x01,
        join_head(0, 3) as u8,
        tag::INT,
        tag::STR_INLINE + 4,
        n0,
        n1,
        n2,
        b'a',
        b'b',
        b'c',
    ];
    let snap = with_data(&bytes, &node);
    assert_eq!(
        snap.get("r").unwrap().get("n").unwrap().as_i64(),
        Some(70000)
    );
    assert!(snap.get("r").unwrap().get("s").is_none());
    assert_format_error(&snap, FormatKind::BadEncoding, "width");
}

#[test]
fn a_node_cut_by_the_end_of_the_data_section_is_refused() {
    let bytes = build(json!({"n": 5, "m": 7}));
    let good = data(&bytes);
    assert_eq!(good.len(), 2 + 2 * 2);
    // The same head (two slots of width 1), every shorter section; and width 4 claimed
    // over the same bytes.
    let mut cases: Vec<Vec<u8>> = (2..good.len()).map(|l| good[..l].to_vec()).collect();
    let mut wide = good.clone();
    wide[1] = join_head(0, 4) as u8;
    cases.push(wide);
    for node in cases {
        let snap = with_data(&bytes, &node);
        assert!(snap.get("r").is_none(), "{node:?}");
        assert!(snap.iter().next().is_none(), "{node:?}");
        assert!(snap.verify().is_err(), "{node:?}");
    }
    // A list whose count runs past the section.
    let bytes = build(json!({"l": [1, 2]}));
    let mut d = data(&bytes);
    let list_head = join_head(2, 1) as u8;
    assert_eq!(d[..2], [0x81, list_head]);
    d[1] = join_head(9, 1) as u8;
    let snap = with_data(&bytes, &d);
    assert!(snap.get("r").unwrap().get("l").is_none());
    assert!(snap.verify().is_err());
}

#[test]
fn references_out_of_range_fail_verify_and_read_none() {
    let bytes = build(json!({"m": {"x": 1}}));
    let d = data(&bytes);
    // The nested map (shape 1) at 0, 4 bytes; then the record (shape 0): header, head, tag MAP, payload 0.
    assert_eq!(d[..2], [0x01, join_head(1, 1) as u8]);
    assert_eq!(d[4..], [0x02, join_head(0, 1) as u8, tag::MAP, 0]);
    // Forwards (the record itself), past the section, into the middle of a node.
    for (to, words) in [
        (4u8, "backwards"),
        (200, "backwards"),
        (1, "start of a node"),
    ] {
        let mut bad = d.clone();
        bad[7] = to;
        let snap = with_data(&bytes, &bad);
        let rec = snap.get("r").unwrap();
        assert!(rec.get("m").is_none_or(|v| v.as_map().is_some()), "{to}");
        assert_format_error(&snap, FormatKind::OutOfBounds, words);
        let _ = serde_json::to_string(&rec);
    }
}

#[test]
fn every_width_of_every_slot_is_read_safely() {
    // Every head width over the same bytes, every tag: no panic, and verify decides.
    let bytes = build(json!({"a": 1, "b": 2}));
    for w in 1..=4 {
        for t in 0..=255u8 {
            let mut node = vec![0x01, join_head(0, w) as u8, t, tag::INT];
            node.extend(std::iter::repeat_n(0x41, 2 * w));
            let snap = with_data(&bytes, &node);
            if let Some(rec) = snap.get("r") {
                let _ = rec.get("a");
                let _ = serde_json::to_string(&rec);
                let _ = rec.to_owned();
            }
            let _ = snap.verify();
        }
    }
}

#[test]
fn a_patch_node_wider_than_its_slots_need_fails_verify() {
    let mut b = SnapshotBuilder::new();
    let fields = |n: i64| json!({"a": n, "b": "bbbbbbbbbb", "c": "cccccccccc", "d": "dddddddddd", "e": "eeeeeeeeee"});
    b.insert("r", &fields(1)).unwrap();
    let base = std::sync::Arc::new(Snapshot::from_bytes(b.to_bytes().unwrap()).unwrap());
    let mut o = SnapshotBuilder::with_base(&base);
    o.insert("r", &fields(5)).unwrap();
    let (bytes, info) = o.to_bytes_with_info().unwrap();
    assert_eq!(info.overlay.unwrap().patched, 1);
    let d = data(&bytes);
    // Header (patch, height 1), head (base node 0 << 2 | width 1 - 1), mask (slot 0),
    // tag INT, payload 5.
    assert_eq!(d, [0x41, join_head(0, 1) as u8, 0b1, tag::INT, 5]);
    let read = |d: &[u8]| {
        let bytes = fms::check::replace_section(&bytes, DATA, d).unwrap();
        Snapshot::overlay_from_bytes(bytes, base.clone()).unwrap()
    };
    read(&d).verify().unwrap();
    let wide = [0x41, join_head(0, 2) as u8, 0b1, tag::INT, 5, 0];
    let snap = read(&wide);
    assert_eq!(snap.get("r").unwrap().get("a").unwrap().as_i64(), Some(5));
    assert_format_error(&snap, FormatKind::BadEncoding, "width");
    // Cut: the payload missing.
    let snap = read(&d[..4]);
    assert!(snap.get("r").is_none());
    assert!(snap.verify().is_err());
}
