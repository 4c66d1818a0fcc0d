//! Shared test data: a small but varied snapshot exercising every value kind.
#![allow(dead_code)]

use fms::{SnapshotBuilder, TupleMap, Value};
use serde_json::json;

/// Records with every kind of value: short (inline) and long strings, wide ints and
/// floats, bytes, nested maps, lists of maps, shared lists, nulls, booleans.
pub fn varied_records(n: usize) -> Vec<(String, TupleMap)> {
    (0..n)
        .map(|i| {
            let kind = ["video", "exercise", "article", "topic"][i % 4];
            let mut m: TupleMap = TupleMap::try_from(json!({
                "slug": format!("{kind}-{i}"),
                "title": format!("Title number {i} of kind {kind}"),
                "kind": kind,
                "lang": "en",
                "duration": (i as i64) * 37,
                "big": i64::MAX - i as i64,
                "ratio": i as f64 / 3.0,
                "half": 0.5,
                "listed": i % 3 == 0,
                "deleted": null,
                "keywords": ["math", format!("kw{}", i % 5)],
                "locales": ["en", "es", "pt"],
                "children": (0..(i % 4)).map(|c| format!("exercise:{c}")).collect::<Vec<_>>(),
                "problem": {"type": "multiple_choice", "answers": [1, 2, {"deep": [true, null]}]},
            }))
            .unwrap();
            if i % 5 == 0 {
                m.insert("blob", Value::Bytes(vec![0, 1, 2, 255, (i % 256) as u8]));
            }
            if i % 7 == 0 {
                m.insert("note", "é");
            }
            (format!("{kind}:{i}"), m)
        })
        .collect()
}

/// Bytes of a snapshot of `records`.
pub fn build(records: &[(String, TupleMap)]) -> Vec<u8> {
    let mut b = SnapshotBuilder::new();
    for (id, m) in records {
        b.insert(id, m).unwrap();
    }
    b.to_bytes().unwrap()
}

/// Recomputes every section checksum and the content hash, so that a deliberately
/// corrupted file passes the checksum checks and reaches the structural ones.
pub fn rechecksum(mut bytes: Vec<u8>) -> Vec<u8> {
    use fms::format::*;
    let count =
        u16::from_le_bytes([bytes[OFF_SECTION_COUNT], bytes[OFF_SECTION_COUNT + 1]]) as usize;
    if HEADER_LEN + count * SECTION_ENTRY_LEN > bytes.len() {
        return bytes;
    }
    for i in 0..count {
        let at = HEADER_LEN + i * SECTION_ENTRY_LEN;
        let off = u64::from_le_bytes(bytes[at + 8..at + 16].try_into().unwrap()) as usize;
        let len = u64::from_le_bytes(bytes[at + 16..at + 24].try_into().unwrap()) as usize;
        let Some(section) = bytes.get(off..off.saturating_add(len)) else {
            continue;
        };
        let sum = section_checksum(section);
        bytes[at + 24..at + 32].copy_from_slice(&sum.to_le_bytes());
    }
    let end = (HEADER_LEN + count * SECTION_ENTRY_LEN).min(bytes.len());
    let hash = ContentHash::of_header(&bytes[..end]);
    bytes[OFF_CONTENT_HASH..OFF_CONTENT_HASH + 16].copy_from_slice(&hash.0);
    bytes
}

/// Exercises every read a server would do; must never panic, whatever the bytes.
/// Returns how many records were fully readable.
pub fn read_everything(snap: &fms::Snapshot) -> usize {
    let mut ok = 0;
    let title = snap.key("title");
    for id in snap.ids() {
        let _ = snap.contains(id);
        let _ = snap.get(id);
    }
    for (_, rec) in snap.iter() {
        let _ = rec.len();
        for k in rec.keys() {
            let _ = rec.get(k);
            let _ = rec.contains_key(k);
        }
        for v in rec.values() {
            let _ = (
                v.as_str(),
                v.as_i64(),
                v.as_f64(),
                v.as_bytes(),
                v.as_bool(),
            );
            if let Some(l) = v.as_list() {
                let _ = l.iter().count();
            }
        }
        if let Some(k) = title {
            let _ = rec.get_key(k);
        }
        let _ = format!("{rec:?}");
        let json = serde_json::to_string(&rec);
        let owned = rec.to_owned();
        let de = rec.deserialize::<fms::TupleMap>();
        if json.is_ok() && owned.is_ok() && de.is_ok() {
            ok += 1;
        }
    }
    ok
}

/// Writes a snapshot of `n` small records (ids `r:0`.. `r:{n-1}`) to `path`.
pub fn write_numbered(path: &std::path::Path, n: usize) {
    let mut b = SnapshotBuilder::new();
    for i in 0..n {
        b.insert(
            &format!("r:{i}"),
            &json!({"title": format!("Record {i}"), "n": i, "kind": "video", "tags": ["a", format!("t{}", i % 10)]}),
        )
        .unwrap();
    }
    b.write_to_path(path).unwrap();
}
