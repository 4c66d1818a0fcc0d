//! The on-disk layout: constants, the header codec and the checked byte readers.
//!
//! This module mirrors `FORMAT.md` section by section; reader, builder and verifier all take
//! their offsets, tags and widths from here. Everything is little-endian and alignment-free
//! (any offset is readable), so a snapshot can be read straight out of an mmap or any byte
//! buffer in safe code.
//!
//! Every read of file data goes through the helpers at the bottom ([`u32_at`], [`u64_at`],
//! [`varint_at`], [`slice_at`]); they return `None` on short input and use checked
//! arithmetic, so no offset taken from a file can cause a panic.
//!
//! Crate-private: the public surface is [`MAGIC`], [`VERSION`] (as `fms::FORMAT_VERSION`),
//! [`ContentHash`] and the limits re-exported in `fms::limits`. Tests and fuzz targets
//! reach the rest through `fms::check::format` (feature `fuzzing`), with no stability
//! promise.

use std::fmt;

/// The eight bytes every snapshot starts with.
pub const MAGIC: [u8; 8] = *b"\x89FMS\r\n\x1a\n";
/// The container format version this crate writes (6: cold strings addressed by number).
/// It also reads version 5 (cold strings through pool entries), version 4 (patch nodes only
/// at the top level), version 3 (no derived strings), version 2 (4-byte payloads) and
/// version 1 files (also without the SYMBOLS and COLD sections: no compressed strings, and
/// overlays addressed by id).
pub const VERSION: u16 = 6;

/// The first version whose nodes carry a payload width ([`Heads`]).
pub const NARROW_VERSION: u16 = 3;

/// The first version with derived strings (slot tag [`tag::DERIVED`]).
pub const DERIVED_VERSION: u16 = 4;

/// The first version whose MAP slots may refer to patch nodes (nested maps an overlay
/// changes stored as patches of the base's nodes).
pub const NESTED_PATCH_VERSION: u16 = 5;

/// The first version whose cold strings are addressed by number (slot tag
/// [`tag::COLD_DIRECT`], no pool entry; the COLD section has a block directory and each
/// block the lengths of its strings).
pub const COLD_DIRECT_VERSION: u16 = 6;

/// The oldest container format version this crate reads.
pub const MIN_VERSION: u16 = 1;

/// Header flag: the snapshot is an overlay over the snapshot named by `base_hash`.
pub const FLAG_OVERLAY: u16 = 1;

/// Fixed header length in bytes, before the section table.
pub const HEADER_LEN: usize = 48;
/// Offset of the format version (`u16`).
pub const OFF_VERSION: usize = 8;
/// Offset of the flags (`u16`).
pub const OFF_FLAGS: usize = 10;
/// Offset of the section count (`u16`).
pub const OFF_SECTION_COUNT: usize = 12;
/// Offset of the reserved `u16` (must be zero).
pub const OFF_RESERVED: usize = 14;
/// Offset of the 16-byte content hash.
pub const OFF_CONTENT_HASH: usize = 16;
/// Offset of the 16-byte base hash (zero unless [`FLAG_OVERLAY`]).
pub const OFF_BASE_HASH: usize = 32;

/// Length of one section table entry: kind `u32`, reserved `u32`, offset `u64`,
/// length `u64`, checksum `u64`.
pub const SECTION_ENTRY_LEN: usize = 32;
/// Most section table entries a reader accepts (bounds the work of `open`).
pub const MAX_SECTIONS: usize = 64;

/// Section kinds, in the order the builder writes them.
pub mod section {
    /// Strings, bytes values and 8-byte scalars: `varint len ++ bytes` entries.
    pub const POOL: u32 = 1;
    /// Map and list nodes; every reference points strictly backwards.
    pub const DATA: u32 = 2;
    /// Shape table: an offset index, then the shapes (lists of key ids).
    pub const SHAPES: u32 = 3;
    /// Key table: a hash index from key name to key id.
    pub const KEYS: u32 = 4;
    /// Id index: a hash index from record id to record node.
    pub const IDS: u32 = 5;
    /// Overlays only: where this file's address spaces start, the merged record count.
    pub const OVERLAY: u32 = 6;
    /// Version 2: the FSST symbol tables of this file's compressed strings.
    pub const SYMBOLS: u32 = 7;
    /// Version 2: long strings, one zstd frame each, and their dictionary.
    pub const COLD: u32 = 8;
    /// Version-2 overlays only: which base ids (by home ordinal) this overlay changes or
    /// removes, and their record references.
    pub const CHANGES: u32 = 9;

    /// All kinds a version-1 full snapshot contains, in file order.
    pub const ALL_V1: [u32; 5] = [POOL, DATA, SHAPES, KEYS, IDS];
    /// All kinds a version-1 overlay contains, in file order.
    pub const ALL_OVERLAY_V1: [u32; 6] = [POOL, DATA, SHAPES, KEYS, IDS, OVERLAY];
    /// All kinds a version-2 full snapshot contains, in file order.
    pub const ALL: [u32; 7] = [POOL, DATA, SHAPES, KEYS, IDS, SYMBOLS, COLD];
    /// All kinds a version-2 overlay contains, in file order.
    pub const ALL_OVERLAY: [u32; 9] = [
        POOL, DATA, SHAPES, KEYS, IDS, OVERLAY, CHANGES, SYMBOLS, COLD,
    ];

    /// The kinds a file of `version` contains, in order (`None` for an unknown version).
    pub fn kinds(version: u16, overlay: bool) -> Option<&'static [u32]> {
        Some(match (version, overlay) {
            (1, false) => &ALL_V1,
            (1, true) => &ALL_OVERLAY_V1,
            (2..=super::VERSION, false) => &ALL,
            (2..=super::VERSION, true) => &ALL_OVERLAY,
            _ => return None,
        })
    }

    /// The human name of a section kind, for errors and `inspect`.
    pub fn name(kind: u32) -> &'static str {
        match kind {
            POOL => "pool",
            DATA => "data",
            SHAPES => "shapes",
            KEYS => "keys",
            IDS => "ids",
            OVERLAY => "overlay",
            SYMBOLS => "symbols",
            COLD => "cold",
            CHANGES => "changes",
            _ => "unknown",
        }
    }
}

/// Slot tags: the first byte array of every map or list node holds one per slot; the
/// matching `u32` payload says where or what the value is.
pub mod tag {
    /// `null`; payload 0.
    pub const NULL: u8 = 0;
    /// `false`; payload 0.
    pub const FALSE: u8 = 1;
    /// `true`; payload 0.
    pub const TRUE: u8 = 2;
    /// An integer in `i32` range, stored in the payload.
    pub const INT: u8 = 3;
    /// An `i64`: the payload is a pool offset of an 8-byte entry.
    pub const INT64: u8 = 4;
    /// A float exactly representable as `f32`: the payload is its bits.
    pub const F32: u8 = 5;
    /// An `f64`: the payload is a pool offset of an 8-byte entry.
    pub const F64: u8 = 6;
    /// A string: the payload is a pool offset of a UTF-8 entry.
    pub const STR: u8 = 7;
    /// A byte string: the payload is a pool offset.
    pub const BYTES: u8 = 8;
    /// A list: the payload is a data offset of a list node.
    pub const LIST: u8 = 9;
    /// A nested map: the payload is a data offset of a map node.
    pub const MAP: u8 = 10;
    /// Version 2: an FSST-compressed string: the payload is a pool offset of an entry
    /// `varint table ++ codes`; the table is in the SYMBOLS section of the file whose
    /// pool holds the entry.
    pub const FSST: u8 = 11;
    /// Version 2: a long string in the COLD section: the payload is a pool offset of an
    /// entry `varint offset` into the COLD section of the file whose pool holds it.
    pub const COLD: u8 = 12;
    /// Version 4: a derived string, the concatenation of parts that are other pool
    /// strings or literal bytes: the payload is a pool offset of a derived entry
    /// ([`super::Derived`]).
    pub const DERIVED: u8 = 13;
    /// Version 6: a long string in the COLD section, addressed without a pool entry: the
    /// payload is its combined cold number, `block << COLD_BLOCK_BITS | index in block`
    /// ([`super::ColdBlock`]).
    pub const COLD_DIRECT: u8 = 14;
    /// A string of 0..=4 bytes stored in the payload itself: tag `STR_INLINE + len`.
    pub const STR_INLINE: u8 = 16;
    /// Longest string stored inline.
    pub const STR_INLINE_MAX: u8 = 4;
}

/// Node header byte: bits 7 and 6 are the kind, bits 0..=5 the node's height.
pub mod node {
    /// Kind bit of a list node (clear for a map node).
    pub const LIST_BIT: u8 = 0x80;
    /// Kind bit of a patch node (overlays only): a record given as the changed slots of a
    /// map node of its base. Never set together with [`LIST_BIT`].
    pub const PATCH_BIT: u8 = 0x40;
    /// Mask of the height bits.
    pub const HEIGHT_MASK: u8 = 0x3f;
}

/// Record reference of an overlay's id entry that removes the id from the base (a
/// tombstone). No node can start there: a node is at least 2 bytes and every data address
/// is below `2^32 - 1`.
pub const TOMBSTONE: u32 = u32::MAX;

/// Most overlays stacked on one full snapshot (the full snapshot has depth 0). Reads that
/// miss in an overlay fall through to its base, so this bounds the work of every lookup.
pub const MAX_OVERLAY_DEPTH: u32 = 8;

/// Most slots of a map node a patch node may patch (so finding a patched slot, which counts
/// the mask bits before it, costs at most 32 byte popcounts; records have 10–40 fields).
pub const MAX_PATCH_SLOTS: usize = 256;

/// Most FSST symbol tables in one file's SYMBOLS section.
pub const MAX_SYMBOL_TABLES: u32 = 1 << 16;

/// Longest string the COLD section holds (a cold read allocates at most this).
pub const MAX_COLD_LEN: usize = crate::cold::MAX_COLD_LEN;

/// A version-6 cold number is `block << COLD_BLOCK_BITS | index`: a block holds at most
/// `2^COLD_BLOCK_BITS` strings, and each level of a chain numbers `blocks << COLD_BLOCK_BITS`.
pub const COLD_BLOCK_BITS: u32 = 6;

/// Most strings in one version-6 cold block.
pub const COLD_BLOCK_STRINGS: usize = 1 << COLD_BLOCK_BITS;

/// Most a cold entry may expand: its string is at most this many times the entry's bytes
/// (the builder keeps strings that compress more in the pool). With FSST's inherent
/// bound (a code byte decodes to at most 8 bytes) this bounds a file's decoded size.
pub const MAX_COLD_RATIO: usize = 256;

/// Most an FSST code byte decodes to.
pub const FSST_MAX_RATIO: u64 = 8;

/// Most a derived entry may expand: its string is at most this many times the entry's
/// bytes: at most `MAX_DERIVED_RATIO × (len + 1)` bytes for an entry of `len` bytes.
pub const MAX_DERIVED_RATIO: usize = 64;

/// Most parts a derived entry has.
pub const MAX_DERIVED_PARTS: usize = 8;

/// Deepest nesting of derived strings: a derived string whose parts are plain or FSST
/// strings has depth 1; one with a derived part, 1 + that part's depth. (A read visits at
/// most (length + 1) x depth parts: every part gives at least one byte.)
pub const MAX_DERIVED_DEPTH: u8 = 16;

/// One part of a derived entry (FORMAT.md "POOL"): a reference to another pool entry,
/// read as the kind its part head names, or literal UTF-8 bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part<'a> {
    /// A plain string entry (as tag STR reads it) at this pool offset.
    Plain(u32),
    /// An FSST entry (as tag FSST reads it).
    Fsst(u32),
    /// A derived entry (as tag DERIVED reads it).
    Derived(u32),
    /// These bytes (UTF-8 checked by the reader).
    Literal(&'a [u8]),
}

/// Part-head kinds: the low two bits of a part's head.
pub mod part {
    /// A plain string entry's offset follows in the head.
    pub const PLAIN: u64 = 0;
    /// An FSST entry's offset.
    pub const FSST: u64 = 1;
    /// A derived entry's offset.
    pub const DERIVED: u64 = 2;
    /// A literal: its length in the head, its bytes after it.
    pub const LITERAL: u64 = 3;
}

/// A derived pool entry: 1..=[`MAX_DERIVED_PARTS`] parts, each `varint head` (`value << 2
/// | kind`) and, for a literal, `value` bytes. A reference's `value` is its distance back
/// from `at` (the entry's own combined pool offset), at least 1, so no entry can be part
/// of itself. The string (every part non-empty) is at most [`MAX_DERIVED_RATIO`] times
/// the entry's bytes.
#[derive(Clone, Copy, Debug)]
pub struct Derived<'a> {
    /// The most the string may decode to: [`MAX_DERIVED_RATIO`] times the entry's bytes
    /// (plus 1, for its length prefix).
    pub limit: usize,
    parts: &'a [u8],
    at: u32,
}

impl<'a> Derived<'a> {
    /// Parses the entry bytes `entry` of the entry at combined pool offset `at` (its
    /// parts are checked one by one as they are read: [`Derived::parts`]).
    pub fn parse(entry: &'a [u8], at: u32) -> Option<Derived<'a>> {
        if entry.is_empty() {
            return None;
        }
        Some(Derived {
            // The entry's bytes plus 1 (its length prefix is at least 1 byte).
            limit: MAX_DERIVED_RATIO.saturating_mul(entry.len() + 1),
            parts: entry,
            at,
        })
    }

    /// The entry's own combined pool offset.
    pub fn at(&self) -> u32 {
        self.at
    }

    /// The parts in order; `Err(())` ends the walk at a malformed part (a reference not
    /// strictly below the entry, a literal cut by the end, more than
    /// [`MAX_DERIVED_PARTS`] parts).
    pub fn parts(&self) -> impl Iterator<Item = std::result::Result<Part<'a>, ()>> + 'a {
        let (b, at) = (self.parts, self.at);
        let mut pos = 0usize;
        let mut n = 0usize;
        std::iter::from_fn(move || {
            if pos >= b.len() {
                return None;
            }
            n += 1;
            let part = (|| {
                if n > MAX_DERIVED_PARTS {
                    return None;
                }
                let (h, used) = varint_at(b, pos)?;
                pos += used;
                let v = h >> 2;
                if h & 3 == part::LITERAL {
                    let lit = slice_at(b, pos, usize::try_from(v).ok()?)?;
                    pos += lit.len();
                    return Some(Part::Literal(lit));
                }
                // A reference is the distance back from the entry.
                let off = u32::try_from(v).ok().filter(|&d| d >= 1)?;
                let off = at.checked_sub(off)?;
                Some(match h & 3 {
                    part::PLAIN => Part::Plain(off),
                    part::FSST => Part::Fsst(off),
                    _ => Part::Derived(off),
                })
            })();
            match part {
                Some(p) => Some(Ok(p)),
                None => {
                    pos = b.len();
                    Some(Err(()))
                }
            }
        })
    }
}

/// Appends part `p` to a derived entry being written at combined pool offset `at` (each
/// reference below it).
pub fn put_part(out: &mut Vec<u8>, p: Part<'_>, at: u32) {
    let back = |o: u32| u64::from(at - o);
    let (v, kind) = match p {
        Part::Plain(o) => (back(o), part::PLAIN),
        Part::Fsst(o) => (back(o), part::FSST),
        Part::Derived(o) => (back(o), part::DERIVED),
        Part::Literal(b) => (b.len() as u64, part::LITERAL),
    };
    put_varint(out, v << 2 | kind);
    if let Part::Literal(b) = p {
        out.extend_from_slice(b);
    }
}

/// The size the walk limit is computed from, for a file of `file` bytes whose pool
/// is `pool` bytes (FSST-coded when `symbols`, and with derived strings too when also
/// `derived`: version 4) and whose COLD section is `cold` bytes:
/// each counted at its greatest expansion, so that compression does not shrink what a
/// walk may produce below what the file can hold decoded.
pub fn expanded_bytes(file: u64, pool: u64, symbols: bool, derived: bool, cold: u64) -> u64 {
    // Derived strings are written only in files with symbol tables.
    let ratio = match (symbols, derived) {
        (false, _) => 1,
        (true, false) => FSST_MAX_RATIO,
        (true, true) => MAX_DERIVED_RATIO as u64,
    };
    let fsst = (ratio - 1).saturating_mul(pool);
    file.saturating_add(fsst)
        .saturating_add((MAX_COLD_RATIO as u64 - 1).saturating_mul(cold))
}

/// A version-6 cold block's entry (FORMAT.md "COLD"): `varint count ++ count × varint
/// length ++ varint frame_len ++ frame`, the frame decoding to the strings one after
/// another.
#[derive(Clone, Copy, Debug)]
pub struct ColdBlock<'a> {
    /// The `count` length varints (`1..=COLD_BLOCK_STRINGS` of them).
    lengths: &'a [u8],
    /// Decoded length: the sum of the strings' lengths.
    pub len: usize,
    /// The zstd frame.
    pub frame: &'a [u8],
    /// Bytes of the whole entry.
    pub entry_len: usize,
}

/// The version-6 cold block whose entry starts at `at` of the COLD section `sec`, if its
/// header reads: `count` in `1..=COLD_BLOCK_STRINGS`, minimal varints, a decoded length of
/// at most [`MAX_COLD_LEN`] and at most [`MAX_COLD_RATIO`] times the entry's bytes, the
/// frame inside `sec`. Reads at most `COLD_BLOCK_STRINGS + 2` varints.
pub fn cold_block(sec: &[u8], at: usize) -> Option<ColdBlock<'_>> {
    cold_block_string(sec, at, 0).map(|(b, _)| b)
}

/// [`cold_block`] and, in the same pass over its header, the start and length of its
/// string `k` in the decoded block (`None` if `k >= count`).
#[inline]
pub fn cold_block_string(
    sec: &[u8],
    at: usize,
    k: usize,
) -> Option<(ColdBlock<'_>, Option<(usize, usize)>)> {
    let (count, u) = varint_at(sec, at)?;
    let count = usize::try_from(count)
        .ok()
        .filter(|c| (1..=COLD_BLOCK_STRINGS).contains(c))?;
    let first = at + u;
    let (mut p, mut len, mut string) = (first, 0usize, None);
    for i in 0..count {
        let (l, u) = varint2_at(sec, p)?;
        let l = usize::try_from(l).ok()?;
        if i == k {
            string = Some((len, l));
        }
        len = len.checked_add(l)?;
        p += u;
    }
    let (flen, u) = varint_at(sec, p)?;
    let frame = slice_at(sec, p + u, usize::try_from(flen).ok()?)?;
    let entry_len = p + u + frame.len() - at;
    if len > MAX_COLD_LEN || len > MAX_COLD_RATIO.saturating_mul(entry_len) {
        return None;
    }
    let block = ColdBlock {
        lengths: &sec[first..p],
        len,
        frame,
        entry_len,
    };
    Some((block, string))
}

impl ColdBlock<'_> {
    /// The lengths of the block's strings, in order (checked by [`cold_block`]).
    pub fn lengths(&self) -> impl Iterator<Item = usize> + '_ {
        let mut p = 0;
        std::iter::from_fn(move || {
            let (l, u) = varint_at(self.lengths, p)?;
            p += u;
            usize::try_from(l).ok()
        })
    }
}

/// Writes a version-6 cold block's entry for strings of `lengths` and their `frame`.
pub fn put_cold_block(out: &mut Vec<u8>, lengths: &[usize], frame: &[u8]) {
    put_varint(out, lengths.len() as u64);
    for &l in lengths {
        put_varint(out, l as u64);
    }
    put_varint(out, frame.len() as u64);
    out.extend_from_slice(frame);
}

/// Length of a version-2 OVERLAY section: nine `u32`s, the ninth the ordinal start (see
/// FORMAT.md).
pub const OVERLAY_SECTION_LEN: usize = 36;

/// Length of a version-1 OVERLAY section: eight `u32`s (no ordinal start).
pub const OVERLAY_SECTION_LEN_V1: usize = 32;

/// Length of the CHANGES section's header: `count u32`, `ordinal_end u32`.
pub const CHANGES_HEADER_LEN: usize = 8;

/// Bitset words per entry of the CHANGES section's rank directory (512 bits a block).
pub const RANK_BLOCK_WORDS: usize = 8;

/// The set bits of `b`, eight bytes at a time (x86-64's baseline has no `popcnt`, so a
/// popcount per byte costs about what one per 8-byte word does). The one bit counter of
/// rank directories and patch masks.
#[inline]
pub fn count_ones(b: &[u8]) -> u32 {
    let mut words = b.chunks_exact(8);
    let mut n = 0;
    for w in &mut words {
        if let Ok(a) = <[u8; 8]>::try_from(w) {
            n += u64::from_le_bytes(a).count_ones();
        }
    }
    // The last 0..=7 bytes as one word (a shift loop: no call to copy them).
    let rest = words
        .remainder()
        .iter()
        .fold(0u64, |a, &x| (a << 8) | u64::from(x));
    n + rest.count_ones()
}

/// The layout of a CHANGES section covering ordinals `0..ordinal_end` with `count` set
/// bits: `(bitset words, rank directory entries, total length in bytes)`.
pub fn changes_layout(ordinal_end: u32, count: u32) -> (u64, u64, u64) {
    let words = u64::from(ordinal_end).div_ceil(64);
    let ranks = words.div_ceil(RANK_BLOCK_WORDS as u64);
    let len = CHANGES_HEADER_LEN as u64 + 8 * words + 4 * ranks + 4 * u64::from(count);
    (words, ranks, len)
}

/// Bytes of the widest slot: one tag byte and a 4-byte payload (every slot of a version-1
/// node; a version-2 node's payloads are `1..=4` bytes, see [`payload_width`]).
pub const SLOT_LEN: usize = 5;

/// Widest slot payload, in bytes (a version-1 node's only width).
pub const MAX_WIDTH: usize = 4;

/// Bits of a version-2 node head (and patch head) that hold the payload width: the head is
/// `value << WIDTH_BITS | (width - 1)` (FORMAT.md "DATA").
pub const WIDTH_BITS: u32 = 2;

/// How a file's node heads split into a value and a payload width: version 3 (`narrow`)
/// stores `value << WIDTH_BITS | (width - 1)`, versions 1 and 2 the value alone, with width
/// [`MAX_WIDTH`]. Kept as a shift, a mask and an offset so that the split costs no
/// branch on the read path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Heads {
    shift: u32,
    mask: u64,
    base: usize,
}

impl Heads {
    /// The heads of a version-3 file (`narrow`) or of an older one.
    pub fn of(narrow: bool) -> Heads {
        if narrow {
            Heads {
                shift: WIDTH_BITS,
                mask: (1 << WIDTH_BITS) - 1,
                base: 1,
            }
        } else {
            Heads {
                shift: 0,
                mask: 0,
                base: MAX_WIDTH,
            }
        }
    }

    /// Whether these are version-3 heads (with a width).
    #[inline]
    pub fn narrow(&self) -> bool {
        self.shift != 0
    }

    /// A node head as stored: `(value, width)`; the width is always in `1..=4`.
    #[inline(always)]
    pub fn split(&self, head: u64) -> (u64, usize) {
        (head >> self.shift, (head & self.mask) as usize + self.base)
    }
}

/// The version-2 head of a node whose value (shape id, element count or patch base) is
/// `value` and whose payloads are `width` (`1..=4`) bytes.
pub fn join_head(value: u64, width: usize) -> u64 {
    (value << WIDTH_BITS) | (width.clamp(1, MAX_WIDTH) as u64 - 1)
}

/// The narrowest payload width (`1..=4`) that holds a slot of tag `t` whose value, as a
/// version-1 payload (the full `u32`), is `p`: an `INT` sign-extends from its width, an
/// `F32` keeps its high bytes (the rest are zero), an inline string needs its length,
/// every other payload (a pool or data reference, 0 for null and booleans) its
/// significant bytes. A version-2 node's width is the greatest of its slots'.
#[inline]
pub fn payload_width(t: u8, p: u32) -> usize {
    let bytes = |bits: u32| (bits.div_ceil(8) as usize).max(1);
    match t {
        tag::INT => {
            let v = p as i32;
            // Bits of the two's-complement value, plus a sign bit.
            bytes(
                33 - if v < 0 {
                    (!v).leading_zeros()
                } else {
                    v.leading_zeros()
                },
            )
            .min(MAX_WIDTH)
        }
        tag::F32 => (MAX_WIDTH - (p.trailing_zeros() / 8) as usize).max(1),
        t if (tag::STR_INLINE..=tag::STR_INLINE + tag::STR_INLINE_MAX).contains(&t) => {
            usize::from(t - tag::STR_INLINE).max(1)
        }
        _ => bytes(32 - p.leading_zeros()),
    }
}

/// The `width` bytes a version-2 node stores for a slot of tag `t` whose full (version-1)
/// payload is `p`: the low bytes, except for an `F32`, whose high bytes are kept. Inverse
/// of [`widen_payload`] for `width >= payload_width(t, p)`.
pub fn narrow_payload(t: u8, p: u32, width: usize) -> u32 {
    let width = width.clamp(1, MAX_WIDTH);
    let shift = 8 * (MAX_WIDTH - width) as u32;
    let stored = if t == tag::F32 { p >> shift } else { p };
    stored & WIDTH_MASK[width - 1]
}

/// A stored payload of `width` bytes (`stored`, zero-extended) as the full payload of a
/// slot of tag `t`: an `INT` sign-extends, an `F32` shifts back up, others are as stored.
#[inline(always)]
pub fn widen_payload(t: u8, stored: u32, width: usize) -> u32 {
    // 0..=24 for widths 1..=4 (wrapping: any width gives some value, never a panic).
    let shift = (8 * MAX_WIDTH.wrapping_sub(width)) as u32;
    match t {
        tag::INT => (stored.wrapping_shl(shift) as i32).wrapping_shr(shift) as u32,
        tag::F32 => stored.wrapping_shl(shift),
        _ => stored,
    }
}

/// Greatest height of a node: a map or list holding only scalars has height 1; a node's
/// height is one more than its tallest child's. Bounds recursion on every read path.
pub const MAX_HEIGHT: u8 = 63;

/// Greatest *walk cost* of one record: what a single walk (serialize, deserialize,
/// `to_owned`, `Debug`) may visit below it, counting shared subtrees each time they are
/// reached. Each slot costs 1, plus the byte length of its key name (in
/// a map), plus the byte length of its string or bytes value; plus the cost of the node it
/// refers to. So both the work and the output of a walk are bounded, however much a small
/// file shares. A snapshot's own limit is lower for small files: see [`walk_limit`].
pub const MAX_WALK: u64 = 1 << 24;

/// The walk limit of every snapshot, however small: see [`walk_limit`].
pub const WALK_FLOOR: u64 = 1 << 14;

/// Walk cost allowed per byte of a snapshot's files (its own and its bases'): see
/// [`walk_limit`].
pub const WALK_PER_BYTE: u64 = 8;

/// The walk limit of a snapshot whose files (its own and its bases') hold `chain_bytes`:
/// `min(MAX_WALK, max(WALK_FLOOR, WALK_PER_BYTE × chain_bytes))`. Every record of a
/// snapshot that verifies has a walk cost within it (the builder refuses to write one
/// that does not), and every whole-value walk stops with an error past it, so no read of
/// any file, verified or not, does work or allocates memory beyond a small multiple of
/// the file's size (or of `WALK_FLOOR`).
pub fn walk_limit(chain_bytes: u64) -> u64 {
    chain_bytes
        .saturating_mul(WALK_PER_BYTE)
        .clamp(WALK_FLOOR, MAX_WALK)
}

/// The walk cost of one slot itself (the node it refers to is charged separately): 1,
/// plus its key name's bytes (`key_bytes`, 0 in a list), plus its string or bytes value's
/// bytes (`value_bytes`, 0 for other values). The one formula the builder, `verify` and
/// every walk charge.
#[inline]
pub fn slot_walk_cost(key_bytes: usize, value_bytes: usize) -> u64 {
    1 + key_bytes as u64 + value_bytes as u64
}

/// Greatest number of probes in a hash index lookup; the builder grows a table until every
/// entry is found within it.
pub const MAX_PROBE: u32 = 64;

/// Largest pool or data section (offsets are `u32`).
pub const MAX_SECTION_LEN: u64 = u32::MAX as u64;

/// Length of a hash index section header: count `u32`, slot count `u32`, max probe `u32`
/// (version 4: max probe `u16`, slot entry width `u8`, field width `u8`).
pub const INDEX_HEADER_LEN: usize = 12;
/// Fields of a key table entry: the pool offset of the name.
pub const KEY_FIELDS: usize = 1;
/// Fields of an id index entry: the pool offset of the id, the data offset of the record.
pub const ID_FIELDS: usize = 2;

/// The first version whose hash indexes are narrow (one-byte tags; entry numbers and
/// entry fields as wide as they need).
pub const NARROW_INDEX_VERSION: u16 = 4;

/// The fewest bytes (1..=4) that hold `v`.
#[inline]
pub fn uint_width(v: u32) -> usize {
    (4 - v.leading_zeros() as usize / 8).max(1)
}

/// The little-endian unsigned integer of `w` bytes (1..=4) at `at`: one 4-byte load
/// masked where the bytes after it are in `b`. `None` if `w` is out of range or the
/// bytes are not all there.
#[inline(always)]
pub fn uint_at(b: &[u8], at: usize, w: usize) -> Option<u32> {
    let mask = *WIDTH_MASK.get(w.wrapping_sub(1))?;
    match b.get(at..at.wrapping_add(4)) {
        Some(four) => Some(u32::from_le_bytes(four.try_into().ok()?) & mask),
        None => Some(
            b.get(at..at.checked_add(w)?)?
                .iter()
                .rev()
                .fold(0, |acc, &x| (acc << 8) | u32::from(x)),
        ),
    }
}

/// Bytes per shape index entry: `u32` offset of the shape inside the section.
pub const SHAPE_OFFSET_LEN: usize = 4;
/// Bytes per key id inside a shape.
pub const SHAPE_KEY_LEN: usize = 4;
/// Shapes of at most this many keys carry a slot table (one byte per entry).
pub const SHAPE_TABLE_MAX_KEYS: usize = 255;

/// Whether the writer gives a shape of `n` keys whose ids span `span` values a slot
/// table: small shapes whose key ids are close together (a table of at most `4n + 16`
/// bytes). Other shapes are searched by scanning their key ids.
pub fn shape_has_table(n: usize, span: u64) -> bool {
    n > 0 && n <= SHAPE_TABLE_MAX_KEYS && span <= 4 * n as u64 + 16
}

/// The hash used by the key and id indexes: XXH3-64 with seed 0.
#[inline]
pub fn index_hash(bytes: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(bytes)
}

/// The slot a hash starts probing at, for a table of `slots` (a power of two).
#[inline]
pub fn index_home(hash: u64, slots: u32) -> u32 {
    (hash as u32) & (slots - 1)
}

/// The tag stored in a slot to skip most mismatches without touching the entry (version
/// 4 stores its top byte: `index_tag(h) >> 24`).
#[inline]
pub fn index_tag(hash: u64) -> u32 {
    (hash >> 32) as u32
}

/// A section's checksum: XXH3-64 of its bytes.
#[inline]
pub fn section_checksum(bytes: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(bytes)
}

/// A snapshot's content hash: XXH3-128 over the header (with the content hash field
/// zeroed) and the section table. Section checksums are in the table, so the content hash
/// covers every byte of the file.
///
/// Displayed as 32 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct ContentHash(pub [u8; 16]);

impl ContentHash {
    /// Computes the hash of a header-plus-section-table prefix.
    pub fn of_header(header_and_table: &[u8]) -> ContentHash {
        let mut h = xxhash_rust::xxh3::Xxh3::new();
        let split = OFF_CONTENT_HASH.min(header_and_table.len());
        h.update(&header_and_table[..split]);
        h.update(&[0u8; 16]);
        if header_and_table.len() > OFF_CONTENT_HASH + 16 {
            h.update(&header_and_table[OFF_CONTENT_HASH + 16..]);
        }
        ContentHash(h.digest128().to_le_bytes())
    }

    /// Whether this is the all-zero hash (no base).
    pub fn is_zero(&self) -> bool {
        self.0 == [0; 16]
    }
}

impl fmt::Display for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ContentHash({self})")
    }
}

/// Parses exactly 32 hex digits, upper or lower case: no sign, no whitespace, no prefix.
impl std::str::FromStr for ContentHash {
    type Err = crate::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || crate::Error::InvalidInput(format!("not a 32-digit hex content hash: {s:?}"));
        // Checked here, not left to `u8::from_str_radix`, which accepts a leading `+`.
        if s.len() != 32 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad());
        }
        let mut out = [0u8; 16];
        for (i, o) in out.iter_mut().enumerate() {
            *o = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
        }
        Ok(ContentHash(out))
    }
}

/// One entry of the section table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SectionEntry {
    /// The section kind (see [`section`]).
    pub kind: u32,
    /// Offset of the section from the start of the file.
    pub offset: u64,
    /// Length in bytes.
    pub len: u64,
    /// [`section_checksum`] of the section's bytes.
    pub checksum: u64,
}

impl SectionEntry {
    /// Reads entry `i` of the section table of `b` (no validation beyond bounds):
    /// `(entry, its reserved field)`. The one decoder of a table entry, for `open`, the
    /// checksum fixer of the fuzz checks and the tests.
    pub fn read(b: &[u8], i: usize) -> Option<(SectionEntry, u32)> {
        let at = HEADER_LEN.checked_add(i.checked_mul(SECTION_ENTRY_LEN)?)?;
        Some((
            SectionEntry {
                kind: u32_at(b, at)?,
                offset: u64_at(b, at + 8)?,
                len: u64_at(b, at + 16)?,
                checksum: u64_at(b, at + 24)?,
            },
            u32_at(b, at + 4)?,
        ))
    }

    /// Where entry `i` of the section table starts.
    pub fn at(i: usize) -> usize {
        HEADER_LEN + i * SECTION_ENTRY_LEN
    }
}

/// The decoded fixed header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// Format version.
    pub version: u16,
    /// Flags ([`FLAG_OVERLAY`]).
    pub flags: u16,
    /// Content hash stored in the file.
    pub content_hash: ContentHash,
    /// Base hash (zero unless an overlay).
    pub base_hash: ContentHash,
    /// The section table, in file order.
    pub sections: Vec<SectionEntry>,
}

impl Header {
    /// Length of the header plus its section table.
    pub fn encoded_len(&self) -> usize {
        HEADER_LEN + self.sections.len() * SECTION_ENTRY_LEN
    }

    /// Encodes the header and table, computing and filling in the content hash.
    pub fn encode(&mut self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&self.version.to_le_bytes());
        out.extend_from_slice(&self.flags.to_le_bytes());
        out.extend_from_slice(&(self.sections.len() as u16).to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(&[0u8; 16]);
        out.extend_from_slice(&self.base_hash.0);
        for s in &self.sections {
            out.extend_from_slice(&s.kind.to_le_bytes());
            out.extend_from_slice(&0u32.to_le_bytes());
            out.extend_from_slice(&s.offset.to_le_bytes());
            out.extend_from_slice(&s.len.to_le_bytes());
            out.extend_from_slice(&s.checksum.to_le_bytes());
        }
        self.content_hash = ContentHash::of_header(&out);
        out[OFF_CONTENT_HASH..OFF_CONTENT_HASH + 16].copy_from_slice(&self.content_hash.0);
        out
    }
}

/// Appends `v` as an unsigned LEB128 varint.
pub fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Bytes `v` takes as a varint.
pub fn varint_len(mut v: u64) -> usize {
    let mut n = 1;
    while v >= 0x80 {
        v >>= 7;
        n += 1;
    }
    n
}

/// Reads an unsigned LEB128 varint at `off`: `(value, bytes used)`. `None` if the input ends
/// first, or the encoding is longer than 10 bytes or overflows `u64`. Non-minimal encodings
/// are rejected so every value has one encoding.
#[inline(always)]
pub fn varint_at(b: &[u8], off: usize) -> Option<(u64, usize)> {
    // Most varints in a snapshot (string lengths, shape ids) are one byte.
    let first = *b.get(off)?;
    if first < 0x80 {
        return Some((first as u64, 1));
    }
    varint_slow(b, off)
}

#[cold]
#[inline(never)]
fn varint_slow(b: &[u8], off: usize) -> Option<(u64, usize)> {
    let mut v: u64 = 0;
    for i in 0..10 {
        let byte = *b.get(off.checked_add(i)?)?;
        let bits = (byte & 0x7f) as u64;
        if i == 9 && bits > 1 {
            return None;
        }
        v |= bits << (7 * i);
        if byte < 0x80 {
            if byte == 0 && i > 0 {
                return None;
            }
            return Some((v, i + 1));
        }
    }
    None
}

/// [`varint_at`] with the two-byte case inline too (cold block headers: string lengths
/// of 128 bytes to 16 KiB); the same results for every input.
#[inline(always)]
pub fn varint2_at(b: &[u8], off: usize) -> Option<(u64, usize)> {
    let first = *b.get(off)?;
    if first < 0x80 {
        return Some((u64::from(first), 1));
    }
    match *b.get(off.checked_add(1)?)? {
        // A zero last group is not minimal.
        0 => None,
        second if second < 0x80 => Some((u64::from(first & 0x7f) | u64::from(second) << 7, 2)),
        _ => varint_slow(b, off),
    }
}

/// `len` bytes at `off`, or `None` if they are not all inside `b`.
#[inline]
pub fn slice_at(b: &[u8], off: usize, len: usize) -> Option<&[u8]> {
    b.get(off..off.checked_add(len)?)
}

/// A little-endian `u16` at `off`.
#[inline]
pub fn u16_at(b: &[u8], off: usize) -> Option<u16> {
    Some(u16::from_le_bytes(slice_at(b, off, 2)?.try_into().ok()?))
}

/// A little-endian `u32` at `off`.
#[inline]
pub fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_le_bytes(slice_at(b, off, 4)?.try_into().ok()?))
}

/// A little-endian `u64` at `off`.
#[inline]
pub fn u64_at(b: &[u8], off: usize) -> Option<u64> {
    Some(u64::from_le_bytes(slice_at(b, off, 8)?.try_into().ok()?))
}

/// Masks of the low `w` bytes of a `u32`, by `w - 1`.
const WIDTH_MASK: [u32; 4] = [0xff, 0xffff, 0xff_ffff, 0xffff_ffff];

/// Slot `i` of a node's slot arrays (`n` tags, then `n` payloads of `w` bytes each,
/// FORMAT.md "DATA"): its tag, its stored payload (zero-extended; see [`widen_payload`])
/// and the payload's bytes; `None` if `i >= n`, `w` is not in `1..=4` or the arrays are
/// cut. `slots` may run on past the node (to the end of the data section): the payload is
/// then read with one 4-byte load. The one slot decoder, for the reader and `verify`.
#[inline(always)]
pub fn slot_at(slots: &[u8], n: usize, i: usize, w: usize) -> Option<(u8, u32, &[u8])> {
    if i >= n {
        return None;
    }
    let t = *slots.get(i)?;
    // Callers pass `n` and `w` of arrays that fit in `slots`, so this does not wrap; if it
    // did, the checked `get`s below would only miss.
    let at = n.wrapping_add(i.wrapping_mul(w));
    let bytes = slots.get(at..at.wrapping_add(w))?;
    Some((t, uint_at(slots, at, w)?, bytes))
}

/// [`slot_at`] where the caller has checked the bounds, with the payload widened
/// ([`widen_payload`]) to its version-1 form: `(NULL, 0)` past the bounds.
#[inline(always)]
pub fn slot_or_null(slots: &[u8], n: usize, i: usize, w: usize) -> (u8, u32) {
    match slot_at(slots, n, i, w) {
        Some((t, p, _)) => (t, widen_payload(t, p, w)),
        None => (tag::NULL, 0),
    }
}

/// A pool entry (`varint len ++ bytes`) starting at `off`.
#[inline(always)]
pub fn pool_entry(pool: &[u8], off: usize) -> Option<&[u8]> {
    let (len, n) = varint_at(pool, off)?;
    slice_at(pool, off + n, usize::try_from(len).ok()?)
}

/// The pool's entries in order: `Ok((offset, bytes))` each, then `Err(offset)` once if
/// the entry at `offset` overruns the pool (and nothing after it). The one scanner of a
/// pool, for `verify`, the builder's base dedup and `Snapshot::stats`.
pub fn pool_entries(pool: &[u8]) -> impl Iterator<Item = Result<(usize, &[u8]), usize>> + '_ {
    let mut at = Some(0usize);
    std::iter::from_fn(move || {
        let off = at.filter(|&a| a < pool.len())?;
        match pool_entry(pool, off) {
            Some(entry) => {
                // The entry ends where its bytes end (after the varint length).
                at = Some(entry.as_ptr() as usize - pool.as_ptr() as usize + entry.len());
                Some(Ok((off, entry)))
            }
            None => {
                at = None;
                Some(Err(off))
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varint_round_trip_and_rejects_bad_encodings() {
        for v in [0u64, 1, 127, 128, 300, 1 << 35, u64::MAX] {
            let mut out = Vec::new();
            put_varint(&mut out, v);
            assert_eq!(out.len(), varint_len(v));
            assert_eq!(varint_at(&out, 0), Some((v, out.len())));
            assert_eq!(varint_at(&out[..out.len() - 1], 0), None);
        }
        // Non-minimal: 0 encoded in two bytes.
        assert_eq!(varint_at(&[0x80, 0x00], 0), None);
        // Overflow past 64 bits.
        assert_eq!(varint_at(&[0xff; 10], 0), None);
        assert_eq!(
            varint_at(
                &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02],
                0
            ),
            None
        );
    }

    #[test]
    fn varint2_at_agrees_with_varint_at() {
        let mut cases: Vec<Vec<u8>> = Vec::new();
        for a in 0..=255u8 {
            cases.push(vec![a]);
            for b in 0..=255u8 {
                cases.push(vec![a, b]);
                cases.push(vec![a, b, 0x01]);
                cases.push(vec![a, b, 0x80, 0x00]);
            }
        }
        for c in &cases {
            for off in 0..=c.len() {
                assert_eq!(varint2_at(c, off), varint_at(c, off), "{c:02x?} at {off}");
            }
        }
        assert_eq!(varint2_at(&[0x80], usize::MAX), None);
    }

    #[test]
    fn payload_widths_are_the_narrowest_that_round_trip() {
        let ints = [
            0i32,
            1,
            -1,
            127,
            128,
            -128,
            -129,
            32767,
            -32768,
            32768,
            1 << 23,
            -(1 << 23),
            (1 << 23) - 1,
            i32::MAX,
            i32::MIN,
        ];
        let floats = [0.0f32, 1.0, -2.5, 0.1, 1e30, f32::MIN_POSITIVE, 100.0];
        let cases = ints
            .iter()
            .map(|&i| (tag::INT, i as u32))
            .chain(floats.iter().map(|f| (tag::F32, f.to_bits())))
            .chain([0u32, 255, 256, 65535, 65536, 1 << 24, u32::MAX].map(|p| (tag::STR, p)));
        for (t, p) in cases {
            let w = payload_width(t, p);
            assert!((1..=4).contains(&w));
            for width in w..=4 {
                let stored = narrow_payload(t, p, width);
                assert_eq!(stored & !WIDTH_MASK[width - 1], 0, "{t} {p:#x} in {width}");
                assert_eq!(widen_payload(t, stored, width), p, "{t} {p:#x} in {width}");
            }
            if w > 1 {
                // One byte narrower loses the value.
                let stored = narrow_payload(t, p, w - 1);
                assert_ne!(
                    widen_payload(t, stored, w - 1),
                    p,
                    "{t} {p:#x} in {}",
                    w - 1
                );
            }
        }
        assert_eq!(payload_width(tag::INT, 127), 1);
        assert_eq!(payload_width(tag::INT, 128), 2);
        assert_eq!(payload_width(tag::INT, -128i32 as u32), 1);
        assert_eq!(payload_width(tag::F32, 1.0f32.to_bits()), 2);
        assert_eq!(payload_width(tag::STR_INLINE + 3, 0), 3);
        assert_eq!(payload_width(tag::NULL, 0), 1);
    }

    #[test]
    fn count_ones_counts_every_bit_of_any_length() {
        let bytes: Vec<u8> = (0..40u32).map(|i| (i * 37 + 11) as u8).collect();
        for from in 0..9 {
            for to in from..bytes.len() {
                let b = &bytes[from..to];
                let naive: u32 = b.iter().map(|x| x.count_ones()).sum();
                assert_eq!(count_ones(b), naive, "{from}..{to}");
            }
        }
        assert_eq!(count_ones(&[0xff; 17]), 17 * 8);
    }

    #[test]
    fn slots_read_at_any_width_and_refuse_bad_ones() {
        // Two slots of width 3: INT -2 and STR 0x010203.
        let slots = [tag::INT, tag::STR, 0xfe, 0xff, 0xff, 3, 2, 1];
        assert_eq!(
            slot_at(&slots, 2, 0, 3),
            Some((tag::INT, 0xff_fffe, &slots[2..5]))
        );
        assert_eq!(slot_or_null(&slots, 2, 0, 3), (tag::INT, -2i32 as u32));
        // The last payload ends the array: read byte by byte.
        assert_eq!(
            slot_at(&slots, 2, 1, 3),
            Some((tag::STR, 0x010203, &slots[5..8]))
        );
        assert_eq!(slot_at(&slots, 2, 2, 3), None);
        assert_eq!(slot_at(&slots, 2, 0, 0), None);
        assert_eq!(slot_at(&slots, 2, 0, 5), None);
        assert_eq!(slot_at(&slots[..7], 2, 1, 3), None);
        assert_eq!(slot_or_null(&slots[..7], 2, 1, 3), (tag::NULL, 0));
    }

    #[test]
    fn content_hash_parses_its_display() {
        let h = ContentHash([0xab; 16]);
        assert_eq!(h.to_string().parse::<ContentHash>().unwrap(), h);
        assert!("xyz".parse::<ContentHash>().is_err());
    }
}
