//! The worked example of FORMAT.md, byte for byte: if the layout changes, this test and
//! the document must change together.

use fms::format::*;

#[test]
fn worked_example_matches_format_md() {
    let m = fms::TupleMap::from_pairs([("title", "Intro".into()), ("n", 42.into())]);
    let mut b = fms::SnapshotBuilder::new();
    b.insert("v:1", &m).unwrap();
    let bytes = b.to_bytes().unwrap();
    assert_eq!(&bytes[..8], &MAGIC);
    assert_eq!(&bytes[8..16], &[6, 0, 0, 0, 7, 0, 0, 0]);
    assert_eq!(&bytes[32..48], &[0u8; 16]);
    let section = |i: usize| {
        let at = HEADER_LEN + i * SECTION_ENTRY_LEN;
        let off = u64::from_le_bytes(bytes[at + 8..at + 16].try_into().unwrap()) as usize;
        let len = u64::from_le_bytes(bytes[at + 16..at + 24].try_into().unwrap()) as usize;
        assert_eq!(
            u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()),
            section::ALL[i]
        );
        &bytes[off..off + len]
    };
    assert_eq!(section(0), b"\x05title\x01n\x03v:1\x05Intro");
    assert_eq!(
        section(1),
        // Map, height 1; head: shape 0 << 2 | width 1 - 1; tags STR, INT; 1-byte payloads.
        &[0x01, 0x00, 0x07, 0x03, 12, 42]
    );
    assert_eq!(
        section(2),
        &[
            1, 0, 0, 0, // one shape
            8, 0, 0, 0, // shape 0 at offset 8
            2, 0, 0, 0, 0, 1, 0, 0, 0, // two keys: ids 0 and 1
            0, 0, 0, 0, 2, 1, 2, // slot table: base 0, span 2, slots 1 and 2 (+1)
        ]
    );
    // Narrow indexes: max probe u16, entry width 1, field width 1; 2-byte slots (tag,
    // entry + 1); 1-byte fields.
    let keys = section(3);
    assert_eq!(&keys[..12], &[2, 0, 0, 0, 4, 0, 0, 0, keys[8], 0, 1, 1]);
    assert_eq!(keys.len(), 12 + 4 * 2 + 2);
    assert_eq!(&keys[12 + 8..], &[0, 6]);
    let ids = section(4);
    assert_eq!(&ids[..12], &[1, 0, 0, 0, 2, 0, 0, 0, 1, 0, 1, 1]);
    assert_eq!(&ids[12 + 4..], &[8, 0]);
    // A slot holds the hash's top byte and the entry number + 1.
    let h = index_hash(b"v:1");
    let home = index_home(h, 2) as usize;
    assert_eq!(
        &ids[12 + 2 * home..12 + 2 * home + 2],
        &[(h >> 56) as u8, 1]
    );
    // Too little text to train a table on: SYMBOLS and COLD are empty.
    assert!(section(5).is_empty() && section(6).is_empty());
    assert_eq!(
        ContentHash::of_header(&bytes[..HEADER_LEN + 7 * SECTION_ENTRY_LEN]),
        fms::Snapshot::from_bytes(bytes.clone()).unwrap().hash()
    );
}
