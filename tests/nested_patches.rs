//! Format version 5: an overlay stores a nested map it changes (same keys, same order) as a
//! patch of the base's node, also inside lists (emojibase's translated skin-tone
//! variants), and reads, serializes, anchors and verifies it like any map.

mod common;

use std::sync::Arc;

use common::check_record;
use fms::{Snapshot, SnapshotBuilder, TupleMap};
use serde_json::{Value as Json, json};

/// An emoji-like record: a label and skin-tone variants that are maps of ten fields.
fn emoji(i: usize, label: &str) -> Json {
    let skin = |t: usize| {
        json!({
            "label": format!("{label}: tone {t}"),
            "hexcode": format!("1F{i:03X}-1F3F{t}"),
            "emoji": "👋",
            "text": "",
            "type": 1,
            "order": i * 10 + t,
            "group": 1,
            "subgroup": 16,
            "version": 1,
            "tone": t,
        })
    };
    json!({
        "label": label,
        "tags": ["hand", "wave"],
        "meta": {"group": 1, "subgroup": 16, "label": label, "note": "", "order": i},
        "skins": (1..=5).map(skin).collect::<Vec<_>>(),
    })
}

fn tree(label: impl Fn(usize) -> String) -> Vec<(String, TupleMap)> {
    (0..40)
        .map(|i| {
            let m = TupleMap::try_from(emoji(i, &label(i))).unwrap();
            (format!("e{i}"), m)
        })
        .collect()
}

fn full(recs: &[(String, TupleMap)]) -> Arc<Snapshot> {
    let mut b = SnapshotBuilder::new();
    for (id, m) in recs {
        b.insert(id, m).unwrap();
    }
    Arc::new(Snapshot::from_bytes(b.to_bytes().unwrap()).unwrap())
}

fn overlay_bytes(base: &Arc<Snapshot>, recs: &[(String, TupleMap)]) -> Vec<u8> {
    let mut b = SnapshotBuilder::with_base(base);
    for (id, m) in recs {
        b.upsert(id, m).unwrap();
    }
    b.to_bytes().unwrap()
}

fn data_len(snap: &Snapshot) -> u64 {
    snap.stats()
        .sections
        .iter()
        .find(|s| s.name == "data")
        .map_or(0, |s| s.len)
}

#[test]
fn translated_nested_maps_read_as_the_tree_and_cost_a_patch_each() {
    let en = full(&tree(|i| format!("waving hand {i}")));
    let de_tree = tree(|i| format!("winkende Hand {i}"));
    let de = Snapshot::overlay_from_bytes(overlay_bytes(&en, &de_tree), en.clone()).unwrap();
    de.verify().unwrap();
    assert_eq!(de.len(), de_tree.len());
    // Each record: a top-level patch, and its five skins and `meta` as nested patches.
    let info = de.stats().overlay.unwrap();
    assert_eq!((info.patched, info.nested_patched), (40, 40 * 6));
    for (id, m) in &de_tree {
        check_record(&de, de.get(id).unwrap(), m);
    }

    // The same change where the nested maps cannot be patched (the overlay's have one
    // more key each): every skin and `meta` is stored whole. Patches save most of a node
    // per nested map.
    let wider: Vec<(String, TupleMap)> = de_tree
        .iter()
        .map(|(id, m)| {
            let mut j: Json = serde_json::to_value(m).unwrap();
            for s in j["skins"].as_array_mut().unwrap() {
                s["extra"] = json!(1);
            }
            j["meta"]["extra"] = json!(1);
            (id.clone(), TupleMap::try_from(j).unwrap())
        })
        .collect();
    let de_w = Snapshot::overlay_from_bytes(overlay_bytes(&en, &wider), en.clone()).unwrap();
    de_w.verify().unwrap();
    assert_eq!(de_w.stats().overlay.unwrap().nested_patched, 0);
    let (patched, whole) = (data_len(&de), data_len(&de_w));
    // 40 records x 6 nested maps: a whole 10-field node is ~30 bytes more than a patch
    // of one slot.
    assert!(
        patched + 40 * 6 * 20 < whole,
        "nested patches: data {patched} B, whole nested maps: {whole} B"
    );
}

#[test]
fn nested_patches_stack_serialize_and_anchor() {
    let en = full(&tree(|i| format!("waving hand {i}")));
    let l1_tree = tree(|i| format!("winkende Hand {i}"));
    let l1 =
        Arc::new(Snapshot::overlay_from_bytes(overlay_bytes(&en, &l1_tree), en.clone()).unwrap());
    // Level 2 changes other fields of the maps level 1 patched (a patch over the plain
    // node under level 1's patch), leaves some patched maps as they are (reused as
    // stored), and changes one back to the base's value.
    let l2_tree: Vec<(String, TupleMap)> = l1_tree
        .iter()
        .enumerate()
        .map(|(i, (id, m))| {
            let mut j: Json = serde_json::to_value(m).unwrap();
            match i % 3 {
                0 => j["skins"][1]["order"] = json!(9999),
                1 => j["meta"]["note"] = json!("neu"),
                _ => j["skins"][2] = emoji(i, &format!("waving hand {i}"))["skins"][2].clone(),
            }
            j["label"] = json!(format!("l2 {i}"));
            (id.clone(), TupleMap::try_from(j).unwrap())
        })
        .collect();
    let l2 = Snapshot::overlay_from_bytes(overlay_bytes(&l1, &l2_tree), l1.clone()).unwrap();
    l2.verify().unwrap();
    for (id, m) in &l2_tree {
        let rec = l2.get(id).unwrap();
        check_record(&l2, rec, m);
        let want = serde_json::to_value(m).unwrap();
        assert_eq!(serde_json::to_value(rec).unwrap(), want, "{id}");
        let mut buf = Vec::new();
        rec.write_json(&mut buf).unwrap();
        assert_eq!(buf, serde_json::to_vec(&rec).unwrap(), "{id}");
        // Every nested map, patched or not, has an anchor that reads it back.
        let skins = rec.get("skins").unwrap().as_list().unwrap();
        for s in skins.iter().chain(rec.get("meta")) {
            let map = s.as_map().unwrap();
            let a = map.anchor().expect("anchor");
            assert_eq!(
                l2.record_at(a).unwrap().to_owned().unwrap(),
                map.to_owned().unwrap()
            );
        }
    }
    // Level 1 still reads as its own tree through its own chain.
    for (id, m) in &l1_tree {
        check_record(&l1, l1.get(id).unwrap(), m);
    }
}

#[test]
fn a_nested_patch_in_a_version_4_file_is_refused() {
    let en = full(&tree(|i| format!("waving hand {i}")));
    let mut bytes = overlay_bytes(&en, &tree(|i| format!("winkende Hand {i}")));
    let now = Snapshot::overlay_from_bytes(bytes.clone(), en.clone()).unwrap();
    now.verify().unwrap();
    // The same bytes labelled version 4 (before nested patches): checksums fixed so that
    // only the rule is left to catch it.
    assert_eq!(
        u16::from_le_bytes([bytes[8], bytes[9]]),
        fms::FORMAT_VERSION
    );
    bytes[8..10].copy_from_slice(&4u16.to_le_bytes());
    let bytes = fms::check::fix_checksums(&bytes).unwrap();
    let v4 = Snapshot::overlay_from_bytes(bytes, en.clone()).unwrap();
    let e = v4.verify().unwrap_err().to_string();
    assert!(e.contains("nested patches: version 5 on"), "{e}");
    // Reads fail for the nested maps alone, without a panic.
    let rec = v4.get("e3").unwrap();
    assert!(rec.get("label").is_some());
    assert!(rec.get("meta").is_none());
    assert!(serde_json::to_vec(&rec).is_err());
    assert!(rec.write_json(&mut Vec::new()).is_err());
}

/// The combined data offset of the node a record is read from (from its anchor's `Debug`).
fn node_offset_of(rec: fms::Record<'_>) -> u32 {
    let dbg = format!("{:?}", rec.anchor().unwrap());
    let i = dbg.find("off: ").unwrap() + 5;
    dbg[i..]
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

/// A patch node over the map node at `base` (combined offset), 4-byte payloads.
fn patch_node(out: &mut Vec<u8>, height: u8, base: u32, mask: u8, slots: &[(u8, u32)]) {
    use fms::format::{join_head, node, put_varint};
    out.push(node::PATCH_BIT | height);
    put_varint(out, join_head(u64::from(base), 4));
    out.push(mask);
    out.extend(slots.iter().map(|s| s.0));
    for s in slots {
        out.extend_from_slice(&s.1.to_le_bytes());
    }
}

/// A one-record base `{a, b}` and the bytes of an overlay that patches it, with the
/// base's record node offset and data length.
fn tiny() -> (Arc<Snapshot>, Vec<u8>, u32, u32) {
    let mut b = SnapshotBuilder::new();
    b.insert("r:0", &json!({"a": 1, "b": 2})).unwrap();
    let base = Arc::new(Snapshot::from_bytes(b.to_bytes().unwrap()).unwrap());
    let node = node_offset_of(base.get("r:0").unwrap());
    let data = data_len(&base) as u32;
    let mut o = SnapshotBuilder::with_base(&base);
    o.insert("r:0", &json!({"a": 5, "b": 2})).unwrap();
    (base, o.to_bytes().unwrap(), node, data)
}

/// Review finding: a list head whose slot count makes the node's end wrap around made
/// `stats()` (and so `fms inspect`) walk forever.
#[test]
fn stats_end_on_a_node_whose_length_overflows() {
    use fms::format::{join_head, node, put_varint};
    let (base, bytes, _, _) = tiny();
    let e = fms::format::SectionEntry::read(&bytes, 1).unwrap().0;
    let mut data = bytes[e.offset as usize..(e.offset + e.len) as usize].to_vec();
    // (2^64 - 11) / 5 slots of width 4: header + 10-byte head + 5n wraps to the start.
    data.push(node::LIST_BIT | 1);
    put_varint(&mut data, join_head(3_689_348_814_741_910_321, 4));
    data.extend_from_slice(&[0; 8]);
    let bytes = fms::check::replace_section(&bytes, 1, &data).unwrap();
    let s = Snapshot::overlay_from_bytes(bytes, base).unwrap();
    assert!(s.get("r:0").is_some());
    assert!(s.verify().is_err());
    // A regression loops: the thread gives it two minutes for what takes microseconds.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(s.stats().overlay.unwrap().nested_patched).unwrap());
    let nested = rx
        .recv_timeout(std::time::Duration::from_secs(120))
        .expect("stats() did not end");
    assert_eq!(nested, 0);
}

/// Review finding: patches whose two slots both refer to the patch before them make a
/// tree of 2^levels paths over `levels` nodes; indexing such a base for a new overlay
/// (`with_base`) walked every path. It must walk each node once. (With the old walk, 40
/// levels would take hours; the thread gives it two minutes.)
#[test]
fn indexing_a_base_walks_each_patch_node_once() {
    use fms::format::tag;
    let levels: u8 = 40;
    let (base, bytes, node, data) = tiny();
    let mut p1 = Vec::new();
    patch_node(&mut p1, 1, node, 0b01, &[(tag::INT, 0)]);
    let mut pk = Vec::new();
    patch_node(&mut pk, 2, node, 0b11, &[(tag::MAP, 0), (tag::MAP, 0)]);
    let (len1, lenk) = (p1.len() as u32, pk.len() as u32);
    let at = |k: u8| {
        data + lenk
            + if k == 1 {
                0
            } else {
                len1 + u32::from(k - 2) * lenk
            }
    };
    let mut own = Vec::new();
    // The record's patch first (at `data`), then P_1 .. P_levels.
    patch_node(
        &mut own,
        levels + 1,
        node,
        0b11,
        &[(tag::MAP, at(levels)); 2],
    );
    own.extend_from_slice(&p1);
    for k in 2..=levels {
        patch_node(&mut own, k, node, 0b11, &[(tag::MAP, at(k - 1)); 2]);
    }
    let bytes = fms::check::replace_section(&bytes, 1, &own).unwrap();
    let hostile = Arc::new(Snapshot::overlay_from_bytes(bytes, base).unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    let h = hostile.clone();
    std::thread::spawn(move || {
        let mut b = SnapshotBuilder::with_base(&h);
        b.insert("new", &json!({"a": 1})).unwrap();
        tx.send(b.to_bytes().is_ok()).unwrap();
    });
    let built = rx
        .recv_timeout(std::time::Duration::from_secs(120))
        .expect("with_base over 40 chained patches did not finish");
    assert!(built);
    // The reads stop at the walk limit, as before.
    assert!(hostile.get("r:0").unwrap().to_owned().is_err());
}

/// Review finding: a changed slot of a patch is encoded against the base's current value
/// (what a lower overlay made it), so a stacked overlay does not store again what the
/// level below stores already.
#[test]
fn a_stacked_overlay_reuses_the_values_of_the_level_below() {
    let big: Vec<Json> = (0..200)
        .map(|i| json!({"x": i, "y": i + 1, "z": i + 2}))
        .collect();
    let rec = |a: &str, tail: i64| {
        let mut l = big.clone();
        l[199]["x"] = json!(tail);
        json!({"k1": 1, "k2": 2, "k3": 3, "m": {"a": a, "b": 1, "c": 2, "d": l}})
    };
    let mut b = SnapshotBuilder::new();
    b.insert("r", &rec("en", 0)).unwrap();
    let full = Arc::new(Snapshot::from_bytes(b.to_bytes().unwrap()).unwrap());
    let mut o = SnapshotBuilder::with_base(&full);
    o.upsert("r", &rec("en", 7)).unwrap(); // level 1 changes the long list m.d
    let l1 = Arc::new(Snapshot::overlay_from_bytes(o.to_bytes().unwrap(), full).unwrap());
    let mut o = SnapshotBuilder::with_base(&l1);
    o.upsert("r", &rec("L2", 7)).unwrap(); // level 2 changes m.a alone
    let l2 = Snapshot::overlay_from_bytes(o.to_bytes().unwrap(), l1.clone()).unwrap();
    l2.verify().unwrap();
    assert_eq!(
        serde_json::to_value(l2.get("r").unwrap()).unwrap(),
        rec("L2", 7)
    );
    // Level 1 wrote the list anew (~600 bytes); level 2 is two small patches.
    let (d1, d2) = (data_len(&l1), data_len(&l2));
    assert!(
        d1 > 500 && d2 < 60,
        "level 1 data {d1} B, level 2 data {d2} B"
    );
}

/// A version-5 overlay over a version-4 overlay (top-level patches only) over a full
/// snapshot: nested patches of the v5 level over the chain read back and verify.
#[test]
fn nested_patches_over_a_version_4_overlay() {
    let rec = |i: usize, l: &str| json!({"label": l, "n": i, "m": {"a": l, "b": i, "c": 1, "d": [{"x": l, "y": 1, "z": 2}]}, "k": 1});
    let mut b = SnapshotBuilder::new();
    for i in 0..10 {
        b.insert(&format!("r:{i}"), &rec(i, "en")).unwrap();
    }
    let full = Arc::new(Snapshot::from_bytes(b.to_bytes().unwrap()).unwrap());
    let mut o = SnapshotBuilder::with_base(&full);
    for i in 0..10 {
        let mut j = rec(i, "en");
        j["label"] = json!("L1");
        if i == 3 {
            j["m"] = json!({"other": 1, "keys": 2, "here": 3});
        }
        o.upsert(&format!("r:{i}"), &j).unwrap();
    }
    let (mut l1, info) = o.to_bytes_with_info().unwrap();
    assert_eq!(info.overlay.unwrap().nested_patched, 0);
    l1[8..10].copy_from_slice(&4u16.to_le_bytes());
    let l1 = fms::check::fix_checksums(&l1).unwrap();
    let l1 = Arc::new(Snapshot::overlay_from_bytes(l1, full).unwrap());
    l1.verify().unwrap();
    let mut o = SnapshotBuilder::with_base(&l1);
    let mut want = Vec::new();
    for i in 0..10 {
        let mut j = rec(i, "en");
        j["label"] = json!("L1");
        if i == 3 {
            j["m"] = json!({"other": 1, "keys": 2, "here": 9});
        } else {
            j["m"]["a"] = json!("L2");
            j["m"]["d"][0]["x"] = json!("L2");
        }
        o.upsert(&format!("r:{i}"), &j).unwrap();
        want.push(j);
    }
    let l2 = Snapshot::overlay_from_bytes(o.to_bytes().unwrap(), l1).unwrap();
    l2.verify().unwrap();
    assert!(l2.stats().overlay.unwrap().nested_patched > 0);
    for (i, j) in want.iter().enumerate() {
        let got = serde_json::to_value(l2.get(&format!("r:{i}")).unwrap()).unwrap();
        assert_eq!(&got, j, "r:{i}");
    }
}
