//! The bytes of a record stored in memcached (an *item*), and its key. The one place that
//! knows them, so that the tier can move to another record encoding (format v2) by
//! changing this module and the key prefix.
//!
//! An item is a 28-byte envelope around a single-record fms snapshot whose one id is the
//! record's own id (FORMAT.md, "Remote items"):
//!
//! | offset | bytes | field |
//! |---|---|---|
//! | 0 | 4 | magic `FMSR` |
//! | 4 | 1 | envelope version (2) |
//! | 5 | 1 | payload kind (1: a single-record fms snapshot, its id the record's id; 2: that snapshot as one zstd frame, when smaller) |
//! | 6 | 2 | reserved, 0 |
//! | 8 | 4 | payload length, u32 LE |
//! | 12 | 16 | content hash: xxh3-128 of the snapshot (of kind 2: once decoded), LE |
//! | 28 | n | payload |
//!
//! The payload is built deterministically from the id and the record's fields, so a record
//! equal across locales and versions under one id has one payload, hence one hash and one
//! memcached key: `fms2:r:<14 hex digits>`, the low 56 bits of the hash (what manifests
//! store). Equal records under different ids are different items.
//!
//! Reading verifies everything before a record is served: envelope, length, the hash's
//! low 56 bits against the key's, the hash against the payload, the snapshot's full
//! structure and checksums ([`Snapshot::verify`]), and that it holds exactly one record.
//! Anything else is [`RemoteError::Corrupt`]. Which id it holds is for the caller to
//! check ([`RemoteRecord::id`]).

use std::sync::Arc;

use xxhash_rust::xxh3::xxh3_128;

use super::error::{RemoteError, RemoteResult};
use crate::{Anchor, Record, Snapshot, SnapshotBuilder};

/// The envelope's magic bytes.
pub const MAGIC: [u8; 4] = *b"FMSR";
/// The envelope version this build writes and reads (2: the payload's id is the
/// record's; 1 used the id `r`).
pub const VERSION: u8 = 2;
/// Payload kind: a single-record fms snapshot.
pub const KIND_SNAPSHOT: u8 = 1;
/// Payload kind: the same snapshot as one zstd frame (with its content size), written
/// when that is smaller. The content hash is still that of the snapshot's bytes.
pub const KIND_ZSTD_SNAPSHOT: u8 = 2;
/// zstd level of compressed payloads.
pub const ZSTD_LEVEL: i32 = 3;
/// The largest snapshot a compressed payload may decode to (memcached's items are at most
/// 1 MiB by default; this bounds what a corrupt item can make a reader allocate).
pub const MAX_DECODED: usize = 16 << 20;
/// ... and at most this many times the frame's own length.
pub const MAX_RATIO: usize = 256;
/// Envelope bytes before the payload.
pub const HEADER_BYTES: usize = 28;
/// The prefix of record keys; the `2` names this encoding (items carrying their id).
pub const KEY_PREFIX: &str = "fms2:r:";
/// Bytes of an item hash as manifests store it.
pub const HASH_BYTES: usize = 7;
const HASH_MASK: u64 = (1 << (8 * HASH_BYTES)) - 1;

/// An item's hash as keys and manifests use it: the low 56 bits of the XXH3-128 of its
/// payload. Two different items of one id agree in these bits with probability 2^-56.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ItemHash(pub u64);

impl ItemHash {
    /// The item hash of a full content hash (its low 56 bits).
    pub fn of(content: u128) -> ItemHash {
        ItemHash(content as u64 & HASH_MASK)
    }

    /// The memcached key of the item: `fms2:r:` and 14 lowercase hex digits.
    pub fn key(&self) -> String {
        format!("{KEY_PREFIX}{:014x}", self.0)
    }

    /// The 7 little-endian bytes (as manifests store them).
    pub fn to_bytes(self) -> [u8; HASH_BYTES] {
        let b = self.0.to_le_bytes();
        [b[0], b[1], b[2], b[3], b[4], b[5], b[6]]
    }

    /// From 7 little-endian bytes; `None` for another length.
    pub fn from_bytes(b: &[u8]) -> Option<ItemHash> {
        let b: [u8; HASH_BYTES] = b.try_into().ok()?;
        let mut w = [0u8; 8];
        w[..HASH_BYTES].copy_from_slice(&b);
        Some(ItemHash(u64::from_le_bytes(w)))
    }
}

impl std::fmt::Display for ItemHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:014x}", self.0)
    }
}

/// An encoded item: its hash and its bytes (envelope and payload).
#[derive(Clone, Debug)]
pub struct Item {
    /// The item hash (key and manifest).
    pub hash: ItemHash,
    /// The full content hash (XXH3-128 of the payload).
    pub content: u128,
    /// The bytes to store.
    pub bytes: Vec<u8>,
}

/// Encodes record `id` as an item, compressed when that is smaller. Deterministic: an
/// equal id and record give equal bytes.
pub fn encode(id: &str, rec: &Record<'_>) -> RemoteResult<Item> {
    encode_with(id, rec, true)
}

/// [`encode`], compressing only if `compress`. The hash (and key) is the same either way:
/// that of the record's snapshot.
pub fn encode_with(id: &str, rec: &Record<'_>, compress: bool) -> RemoteResult<Item> {
    let mut b = SnapshotBuilder::new();
    b.insert(id, rec)?;
    Ok(wrap_as(b.to_bytes()?, compress))
}

/// [`wrap`], compressing only if `compress` (and it is smaller).
fn wrap_as(snapshot: Vec<u8>, compress: bool) -> Item {
    let content = xxh3_128(&snapshot);
    let hash = ItemHash::of(content);
    let z = compress
        .then(|| zstd::bulk::compress(&snapshot, ZSTD_LEVEL).ok())
        .flatten();
    let (kind, payload) = match z {
        Some(z) if z.len() < snapshot.len() && snapshot.len() <= MAX_DECODED => {
            (KIND_ZSTD_SNAPSHOT, z)
        }
        _ => (KIND_SNAPSHOT, snapshot),
    };
    let mut bytes = Vec::with_capacity(HEADER_BYTES + payload.len());
    bytes.extend_from_slice(&MAGIC);
    bytes.push(VERSION);
    bytes.push(kind);
    bytes.extend_from_slice(&[0, 0]);
    bytes.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    bytes.extend_from_slice(&content.to_le_bytes());
    bytes.extend_from_slice(&payload);
    Item {
        hash,
        content,
        bytes,
    }
}

/// A verified record: read from an item (a single-record snapshot), or from a version's
/// mapped hot-set snapshot.
#[derive(Debug)]
pub struct RemoteRecord {
    snap: Arc<Snapshot>,
    /// In a hot-set snapshot: the record's place and id.
    hot: Option<(Anchor, Box<str>)>,
}

impl RemoteRecord {
    /// Record `id` of a (verified) hot-set snapshot; `None` if it has no such record.
    pub(crate) fn hot(snap: &Arc<Snapshot>, id: &str) -> Option<RemoteRecord> {
        Some(RemoteRecord {
            hot: Some((snap.anchor(id)?, id.into())),
            snap: snap.clone(),
        })
    }

    /// The record, read like any snapshot's (zero-copy from the item's bytes, or from the
    /// mapped hot set).
    pub fn record(&self) -> Record<'_> {
        match &self.hot {
            Some((at, _)) => self
                .snap
                .record_at(*at)
                .expect("anchored in this snapshot when it was made"),
            None => {
                self.snap
                    .iter()
                    .next()
                    .expect("verified at decode: the item holds its record")
                    .1
            }
        }
    }

    /// The record's id (the item carries it). O(1).
    pub fn id(&self) -> &str {
        match &self.hot {
            Some((_, id)) => id,
            None => self
                .snap
                .ids()
                .next()
                .expect("verified at decode: the item holds its record"),
        }
    }

    /// Whether it is served from the version's hot-set snapshot.
    pub fn is_hot(&self) -> bool {
        self.hot.is_some()
    }

    /// The heap bytes the record holds (for the byte-bounded cache): its item's bytes, or
    /// for a hot record only its handle (the snapshot is mapped).
    pub fn weight(&self) -> usize {
        match &self.hot {
            Some((_, id)) => id.len() + 64,
            None => self.snap.as_bytes().len() + 64,
        }
    }
}

thread_local! {
    /// A zstd decoding context per thread: making one per item cost more than decoding
    /// a few KiB (~15 µs of 24 per item on the corpus).
    static DCTX: std::cell::RefCell<Option<zstd::bulk::Decompressor<'static>>> =
        std::cell::RefCell::new(zstd::bulk::Decompressor::new().ok());
}

/// Checks and opens an item read under the key of `expected`. Any failure is
/// [`RemoteError::Corrupt`]; nothing unverified is returned. O(item size).
pub fn decode(expected: ItemHash, bytes: &[u8]) -> RemoteResult<RemoteRecord> {
    let corrupt = |what: &str| RemoteError::Corrupt {
        key: expected.key(),
        what: what.to_owned(),
    };
    if bytes.len() < HEADER_BYTES {
        return Err(corrupt("shorter than the envelope"));
    }
    if bytes[0..4] != MAGIC {
        return Err(corrupt("bad magic"));
    }
    if bytes[4] != VERSION {
        return Err(corrupt(&format!(
            "envelope version {} (reads {VERSION})",
            bytes[4]
        )));
    }
    let kind = bytes[5];
    if !matches!(kind, KIND_SNAPSHOT | KIND_ZSTD_SNAPSHOT) || bytes[6..8] != [0, 0] {
        return Err(corrupt("unknown payload kind"));
    }
    let len = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize;
    let payload = &bytes[HEADER_BYTES..];
    if payload.len() != len {
        return Err(corrupt(&format!(
            "payload is {} bytes, envelope says {len}",
            payload.len()
        )));
    }
    let stated = u128::from_le_bytes(bytes[12..28].try_into().expect("16 bytes"));
    if ItemHash::of(stated) != expected {
        return Err(corrupt(&format!(
            "item of {} stored under this key",
            ItemHash::of(stated)
        )));
    }
    let snapshot = if kind == KIND_ZSTD_SNAPSHOT {
        // The frame states its content size; bounded before anything is allocated.
        let size = match zstd::zstd_safe::get_frame_content_size(payload) {
            Ok(Some(s)) => usize::try_from(s).unwrap_or(usize::MAX),
            _ => return Err(corrupt("compressed payload states no content size")),
        };
        if size > MAX_DECODED || size > MAX_RATIO.saturating_mul(payload.len()) {
            return Err(corrupt(&format!(
                "compressed payload would decode to {size} bytes"
            )));
        }
        let out = DCTX
            .with(|d| match d.try_borrow_mut() {
                Ok(mut d) => match d.as_mut() {
                    Some(d) => d.decompress(payload, size),
                    None => zstd::bulk::decompress(payload, size),
                },
                Err(_) => zstd::bulk::decompress(payload, size),
            })
            .map_err(|e| corrupt(&format!("compressed payload does not decode: {e}")))?;
        if out.len() != size {
            return Err(corrupt(
                "compressed payload decodes short of its content size",
            ));
        }
        out
    } else {
        payload.to_vec()
    };
    if xxh3_128(&snapshot) != stated {
        return Err(corrupt("payload does not match its hash"));
    }
    let snap = Snapshot::from_bytes(snapshot).map_err(|e| corrupt(&e.to_string()))?;
    snap.verify().map_err(|e| corrupt(&e.to_string()))?;
    if snap.len() != 1 || snap.ids().next().is_none() || snap.iter().next().is_none() {
        return Err(corrupt("payload is not a single record"));
    }
    Ok(RemoteRecord {
        snap: Arc::new(snap),
        hot: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item_of(v: serde_json::Value) -> Item {
        let mut b = SnapshotBuilder::new();
        b.insert("x", &v).unwrap();
        let s = Snapshot::from_bytes(b.to_bytes().unwrap()).unwrap();
        encode("x", &s.get("x").unwrap()).unwrap()
    }

    #[test]
    fn round_trip_and_dedup() {
        let a = item_of(serde_json::json!({"title": "Intro", "n": 3}));
        let b = item_of(serde_json::json!({"title": "Intro", "n": 3}));
        assert_eq!(a.hash, b.hash);
        assert_eq!(a.bytes, b.bytes);
        let r = decode(a.hash, &a.bytes).unwrap();
        assert_eq!(
            serde_json::to_string(&r.record()).unwrap(),
            r#"{"n":3,"title":"Intro"}"# // json! sorts keys; the item keeps the record's order
        );
        assert_ne!(
            a.hash,
            item_of(serde_json::json!({"title": "Intro", "n": 4})).hash
        );
    }

    #[test]
    fn the_item_carries_its_id() {
        let v = serde_json::json!({"title": "Intro"});
        let mut b = SnapshotBuilder::new();
        b.insert("a", &v).unwrap();
        b.insert("b", &v).unwrap();
        let s = Snapshot::from_bytes(b.to_bytes().unwrap()).unwrap();
        let (a, bb) = (
            encode("a", &s.get("a").unwrap()).unwrap(),
            encode("b", &s.get("b").unwrap()).unwrap(),
        );
        assert_ne!(a.hash, bb.hash, "equal records under two ids are two items");
        assert_eq!(decode(a.hash, &a.bytes).unwrap().id(), "a");
        assert_eq!(decode(bb.hash, &bb.bytes).unwrap().id(), "b");
        assert_eq!(a.hash.key().len(), KEY_PREFIX.len() + 14);
        assert_eq!(ItemHash::from_bytes(&a.hash.to_bytes()), Some(a.hash));
        assert!(a.hash.0 < 1 << 56);
    }

    #[test]
    fn compressible_records_are_stored_compressed_under_their_record_hash() {
        let v = serde_json::json!({"title": "Intro", "body": "fractions and parts ".repeat(50)});
        let z = item_of(v.clone());
        assert_eq!(z.bytes[5], KIND_ZSTD_SNAPSHOT);
        // The hash is the snapshot's: what the plain encoding of the record hashes to.
        let mut b = SnapshotBuilder::new();
        b.insert("x", &v).unwrap();
        let plain = b.to_bytes().unwrap();
        assert!(
            z.bytes.len() < plain.len(),
            "{} vs {}",
            z.bytes.len(),
            plain.len()
        );
        assert_eq!(z.content, xxh3_128(&plain));
        let r = decode(z.hash, &z.bytes).unwrap();
        assert_eq!(r.id(), "x");
        assert_eq!(serde_json::to_value(r.record()).unwrap(), v);
        // The uncompressed kind reads back the same, under the same hash.
        let p = wrap_as(plain, false);
        assert_eq!((p.bytes[5], p.hash), (KIND_SNAPSHOT, z.hash));
        assert_eq!(
            serde_json::to_value(decode(p.hash, &p.bytes).unwrap().record()).unwrap(),
            v
        );
    }

    #[test]
    fn a_compressed_payload_cannot_make_a_reader_allocate_much() {
        // A frame that states 1 GiB of zeros (it compresses to a few KiB): refused by its
        // stated size, before decoding.
        let big = vec![0u8; 1 << 30];
        let frame = zstd::bulk::compress(&big, 1).unwrap();
        drop(big);
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&[VERSION, KIND_ZSTD_SNAPSHOT, 0, 0]);
        bytes.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        let h = 42u128;
        bytes.extend_from_slice(&h.to_le_bytes());
        bytes.extend_from_slice(&frame);
        let err = decode(ItemHash::of(h), &bytes).unwrap_err();
        assert!(err.to_string().contains("would decode to"), "{err}");
        // A frame without a content size is refused too.
        let mut nosize = bytes[..HEADER_BYTES].to_vec();
        let mut enc = zstd::stream::Encoder::new(Vec::new(), 1).unwrap();
        std::io::Write::write_all(&mut enc, b"no size").unwrap();
        let frame = enc.finish().unwrap();
        nosize[8..12].copy_from_slice(&(frame.len() as u32).to_le_bytes());
        nosize.extend_from_slice(&frame);
        assert!(decode(ItemHash::of(h), &nosize).is_err());
    }

    #[test]
    fn every_corruption_is_rejected() {
        let a = item_of(serde_json::json!({"title": "Intro", "body": "x".repeat(300)}));
        assert!(decode(a.hash, &a.bytes[..a.bytes.len() - 1]).is_err());
        assert!(decode(ItemHash(a.hash.0 ^ 1), &a.bytes).is_err());
        // Any flip is rejected, or (in a compressed frame, a bit the decoder does not
        // need) decodes to the very same snapshot: never to anything else.
        let want = serde_json::to_string(&decode(a.hash, &a.bytes).unwrap().record()).unwrap();
        let mut rejected = 0;
        for i in 0..a.bytes.len() {
            let mut b = a.bytes.clone();
            b[i] ^= 0x40;
            match decode(a.hash, &b) {
                Err(_) => rejected += 1,
                Ok(r) => {
                    assert_eq!(a.bytes[5], KIND_ZSTD_SNAPSHOT, "flip at byte {i} accepted");
                    assert_eq!(serde_json::to_string(&r.record()).unwrap(), want);
                }
            }
        }
        assert!(
            rejected * 10 >= a.bytes.len() * 9,
            "{rejected} of {}",
            a.bytes.len()
        );
        let mut b = SnapshotBuilder::new();
        b.insert("x", &serde_json::json!({"a": 1})).unwrap();
        let tiny = wrap_as(b.to_bytes().unwrap(), false);
        for i in 0..tiny.bytes.len() {
            let mut b = tiny.bytes.clone();
            b[i] ^= 0x40;
            assert!(decode(tiny.hash, &b).is_err(), "flip at byte {i} accepted");
        }
        let other = item_of(serde_json::json!({"title": "Other"}));
        assert!(
            decode(a.hash, &other.bytes).is_err(),
            "another item under this key"
        );
    }

    #[test]
    fn envelope_overhead() {
        let a = item_of(serde_json::json!({"title": "Intro"}));
        // Printed for FORMAT.md; bounded so a format change that bloats items is noticed.
        eprintln!("item of a one-field record: {} bytes", a.bytes.len());
        assert!(a.bytes.len() < 440, "{}", a.bytes.len());
    }
}
