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
    let v5 = Snapshot::overlay_from_bytes(bytes.clone(), en.clone()).unwrap();
    v5.verify().unwrap();
    // The same bytes labelled version 4 (before nested patches): checksums fixed so that
    // only the rule is left to catch it.
    assert_eq!(u16::from_le_bytes([bytes[8], bytes[9]]), 5);
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
