//! Parsing the header and section table at open: the O(1) part of reading a snapshot.

use std::ops::Range;

use crate::cold::ColdCache;
use crate::error::{Error, FormatKind, Result};
use crate::format::{self, Header};

/// Where a hash index (key table or id index) lives, checked at open so that every slot
/// and entry read later is in bounds.
#[derive(Clone, Debug)]
pub(crate) struct IndexLayout {
    /// Number of entries.
    pub count: u32,
    /// Number of slots (a power of two).
    pub slots: u32,
    /// Greatest probe length any lookup needs.
    pub max_probe: u32,
    /// Absolute offset of the first slot.
    pub slots_at: usize,
    /// Absolute offset of the first entry.
    pub entries_at: usize,
    /// Bytes of a slot's tag (4 before version 4, then 1), then of its entry number + 1.
    pub tag_w: u8,
    pub entry_w: u8,
    /// Bytes of each field of an entry (4 before version 4).
    pub field_w: u8,
    /// The masks of a slot's tag and entry number (kept, not computed per probe).
    tag_mask: u32,
    entry_mask: u32,
}

impl IndexLayout {
    /// Bytes per slot.
    #[inline]
    pub fn slot_len(&self) -> usize {
        usize::from(self.tag_w + self.entry_w)
    }

    /// Field `f` of entry `e` (`fields` per entry) in the file `b`; `None` past the
    /// entries.
    #[inline]
    pub fn field(&self, b: &[u8], e: u32, fields: usize, f: usize) -> Option<u32> {
        format::uint_at(b, self.field_at(e, fields, f)?, self.field_w.into())
    }

    /// A slot read as a little-endian integer `x`: its tag and its entry number + 1.
    #[inline]
    pub fn split_slot(&self, x: u64) -> (u32, u32) {
        let tag = x as u32 & self.tag_mask;
        let entry = (x >> (8 * self.tag_w)) as u32 & self.entry_mask;
        (tag, entry)
    }

    /// Absolute offset of field `f` of entry `e` (`fields` per entry); `None` past the
    /// entries.
    #[inline]
    pub fn field_at(&self, e: u32, fields: usize, f: usize) -> Option<usize> {
        (e < self.count)
            .then(|| self.entries_at + (e as usize * fields + f) * usize::from(self.field_w))
    }
}

/// Where one file's address spaces start inside the combined spaces of its overlay chain:
/// pool offsets, data offsets, shape ids and key ids below these belong to the base. All
/// zero for a full snapshot.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Starts {
    pub pool: u32,
    pub data: u32,
    pub shape: u32,
    pub key: u32,
    /// Cold numbers (version 6): not stored in the OVERLAY section, but the base chain's
    /// end, set when an overlay is joined to its base.
    pub cold: u32,
}

/// The OVERLAY section of an overlay (see FORMAT.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct OverlaySection {
    /// 1 + the base's depth.
    pub depth: u32,
    /// Records in the merged tree.
    pub records: u32,
    /// Leading id entries that replace or remove a base record.
    pub changed: u32,
    /// Tombstones among them.
    pub removed: u32,
}

/// Where a version-2 overlay's CHANGES section keeps its parts, checked at open so that
/// every word, rank and reference read later is in the file (see FORMAT.md "CHANGES").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ChangesLayout {
    /// Number of changed base ids (set bits, record references).
    pub count: u32,
    /// The bitset covers ordinals `0..ordinal_end` (= this overlay's ordinal start).
    pub ordinal_end: u32,
    /// Number of bitset words.
    pub words: u32,
    /// Absolute offset of the first bitset word.
    pub words_at: usize,
    /// Absolute offset of the rank directory.
    pub ranks_at: usize,
    /// Absolute offset of the first record reference.
    pub refs_at: usize,
}

/// The parsed header: section ranges and the sub-headers of the fixed-layout sections.
/// Everything in here was bounds-checked against the file at open.
#[derive(Clone, Debug)]
pub(crate) struct Layout {
    pub header: Header,
    /// Where this file's address spaces start (zero unless an overlay).
    pub starts: Starts,
    /// The OVERLAY section, for an overlay.
    pub overlay: Option<OverlaySection>,
    pub pool: Range<usize>,
    pub data: Range<usize>,
    pub shapes: Range<usize>,
    pub shape_count: u32,
    /// Where the parts of this file's first shapes (at most [`CACHED_SHAPES`]) are, found
    /// at open up to the first that does not parse: a map node's shape is then two bounds
    /// checks away instead of a parse of its header ([`crate::read::Raw::shape`]).
    pub shape_at: Box<[ShapeAt]>,
    pub keys: IndexLayout,
    pub ids: IndexLayout,
    /// The ordinal of this file's first own id entry in the chain's combined ordinal space
    /// (0 for a full snapshot; a version-1 overlay's is set when it is joined to its base).
    pub ordinal_start: u32,
    /// The CHANGES section of a version-2 overlay.
    pub changes: Option<ChangesLayout>,
    /// A tag derived from the content hash that `Key`s carry, so a key resolved in one
    /// snapshot is not silently used with another.
    pub key_tag: u64,
    /// The SYMBOLS section (empty in a version-1 file).
    pub symbols: Range<usize>,
    /// Number of symbol tables in it.
    pub symbol_count: u32,
    /// Per symbol table: where its symbol lengths start (from the section's start) and its
    /// number of symbols, found at open for a file of at most [`CACHED_TABLES`] tables whose
    /// offsets and counts are all in bounds and whose symbol lengths are all in 1..=8;
    /// empty otherwise. An FSST read then takes its table's two slices from here instead
    /// of reading the table's offset and count each time, and decodes without checking
    /// each code's length ([`crate::read::Raw::symbol_table`]).
    pub tables: Box<[(u32, u32)]>,
    /// The COLD section (empty in a version-1 file).
    pub cold: Range<usize>,
    /// The COLD section's zstd dictionary (empty for none).
    pub cold_dict: Range<usize>,
    /// The digested dictionary, built on the first cold read.
    pub cold_cache: ColdCache,
    /// Version 6: the COLD section's block directory (a `u32` offset per block), absolute;
    /// empty before version 6, whose cold strings are reached through pool entries.
    pub cold_dir: Range<usize>,
    /// Whether COLD is laid out as version 6 (cold strings addressed by number).
    pub cold_direct: bool,
    /// Bytes of this file and its bases' (added when an overlay is joined to its base),
    /// compressed sections counted at their greatest expansion
    /// ([`format::expanded_bytes`]): what the walk limit is computed from.
    pub chain_bytes: u64,
    /// How this file's node heads give their payload width (version 2: the low bits of
    /// each head; version 1: always 4 bytes).
    pub heads: format::Heads,
    /// Whether the file may hold derived strings (version 4 on).
    pub derived: bool,
    /// Whether its MAP slots may refer to patch nodes (version 5 on).
    pub nested_patches: bool,
}

fn bad(offset: usize, kind: FormatKind, what: impl Into<String>) -> Error {
    Error::format(offset, kind, what)
}

impl Layout {
    /// Checks the header, the section table and its hash, and the sub-headers. O(1) in the
    /// size of the data: reads only the first bytes of the file and of three sections.
    pub fn parse(b: &[u8]) -> Result<Layout> {
        use format::*;
        if b.len() < HEADER_LEN {
            return Err(bad(
                b.len(),
                FormatKind::Truncated,
                format!(
                    "file is {} bytes, shorter than the {HEADER_LEN}-byte header",
                    b.len()
                ),
            ));
        }
        if b[..8] != MAGIC {
            return Err(bad(
                0,
                FormatKind::BadMagic,
                "not an fms snapshot (bad magic bytes)",
            ));
        }
        let version = u16_at(b, OFF_VERSION).unwrap_or(0);
        if !(MIN_VERSION..=VERSION).contains(&version) {
            return Err(Error::Version {
                found: version,
                supported: VERSION,
            });
        }
        let flags = u16_at(b, OFF_FLAGS).unwrap_or(0);
        if flags & !FLAG_OVERLAY != 0 {
            return Err(bad(
                OFF_FLAGS,
                FormatKind::BadHeader,
                format!("unknown flags {flags:#06x}"),
            ));
        }
        let count = u16_at(b, OFF_SECTION_COUNT).unwrap_or(0) as usize;
        if count > MAX_SECTIONS {
            return Err(bad(
                OFF_SECTION_COUNT,
                FormatKind::Limit,
                format!("{count} sections (at most {MAX_SECTIONS})"),
            ));
        }
        if u16_at(b, OFF_RESERVED) != Some(0) {
            return Err(bad(
                OFF_RESERVED,
                FormatKind::BadHeader,
                "reserved header field is not zero",
            ));
        }
        let table_end = HEADER_LEN + count * SECTION_ENTRY_LEN;
        let Some(prefix) = b.get(..table_end) else {
            return Err(bad(
                b.len(),
                FormatKind::Truncated,
                format!(
                    "file ends inside the section table ({count} entries end at byte {table_end})"
                ),
            ));
        };
        let mut content_hash = ContentHash::default();
        content_hash
            .0
            .copy_from_slice(&b[OFF_CONTENT_HASH..OFF_CONTENT_HASH + 16]);
        if ContentHash::of_header(prefix) != content_hash {
            return Err(Error::Checksum {
                section: "header",
                offset: 0,
                end: table_end as u64,
            });
        }
        let mut base_hash = ContentHash::default();
        base_hash
            .0
            .copy_from_slice(&b[OFF_BASE_HASH..OFF_BASE_HASH + 16]);
        if (flags & FLAG_OVERLAY == 0) != base_hash.is_zero() {
            return Err(bad(
                OFF_BASE_HASH,
                FormatKind::BadHeader,
                "base hash and overlay flag disagree",
            ));
        }
        let is_overlay = flags & FLAG_OVERLAY != 0;
        // In range: the version was checked above.
        let kinds: &[u32] = section::kinds(version, is_overlay).unwrap_or_default();

        let mut sections = Vec::with_capacity(count);
        let mut expect_at = table_end as u64;
        for i in 0..count {
            let at = SectionEntry::at(i);
            // In bounds: the table's end was checked above.
            let (e, reserved) = SectionEntry::read(b, i)
                .ok_or_else(|| bad(at, FormatKind::Truncated, "section table entry cut"))?;
            if reserved != 0 {
                return Err(bad(
                    at + 4,
                    FormatKind::BadHeader,
                    "reserved section table field is not zero",
                ));
            }
            if kinds.get(i) != Some(&e.kind) {
                return Err(bad(
                    at,
                    FormatKind::BadHeader,
                    format!(
                        "section {i} has kind {} (expected {:?})",
                        e.kind,
                        kinds.get(i)
                    ),
                ));
            }
            if e.offset != expect_at {
                return Err(bad(
                    at + 8,
                    FormatKind::BadHeader,
                    format!(
                        "section `{}` starts at {} (expected {expect_at})",
                        section::name(e.kind),
                        e.offset
                    ),
                ));
            }
            expect_at = e
                .offset
                .checked_add(e.len)
                .ok_or_else(|| bad(at + 16, FormatKind::BadHeader, "section length overflows"))?;
            sections.push(e);
        }
        if count != kinds.len() {
            return Err(bad(
                OFF_SECTION_COUNT,
                FormatKind::BadHeader,
                format!("{count} sections (expected {})", kinds.len()),
            ));
        }
        if expect_at != b.len() as u64 {
            return Err(bad(
                b.len(),
                FormatKind::Truncated,
                format!(
                    "sections end at byte {expect_at} but the file is {} bytes (truncated or padded)",
                    b.len()
                ),
            ));
        }
        let range =
            |i: usize| sections[i].offset as usize..(sections[i].offset + sections[i].len) as usize;
        let (pool, data, shapes, keys, ids) = (range(0), range(1), range(2), range(3), range(4));
        for r in [&pool, &data] {
            if (r.end - r.start) as u64 > MAX_SECTION_LEN {
                return Err(bad(
                    r.start,
                    FormatKind::Limit,
                    format!("section larger than {MAX_SECTION_LEN} bytes"),
                ));
            }
        }

        let shape_count = header_u32(b, shapes.start, shapes.end, "shape table has no count")?;
        let min = (shape_count as u64) * SHAPE_OFFSET_LEN as u64 + 4;
        if ((shapes.end - shapes.start) as u64) < min {
            return Err(bad(
                shapes.start,
                FormatKind::Truncated,
                format!("shape table too short for {shape_count} shapes"),
            ));
        }
        let narrow = version >= format::NARROW_INDEX_VERSION;
        let keys_l = index_layout(b, keys, KEY_FIELDS, narrow, "key table")?;
        let ids_l = index_layout(b, ids, ID_FIELDS, narrow, "id index")?;
        let key_tag = u64::from_le_bytes(content_hash.0[..8].try_into().unwrap_or_default());
        let (starts, overlay, ordinal_start, changes) = if is_overlay {
            let (s, o, ordinal_start) = overlay_section(b, range(5), ids_l.count, version)?;
            let changes = if version >= 2 {
                Some(changes_section(b, range(6), &o, ordinal_start)?)
            } else {
                None
            };
            (s, Some(o), ordinal_start, changes)
        } else {
            (Starts::default(), None, 0, None)
        };
        // Version 2's string sections come last (after OVERLAY and CHANGES in an overlay);
        // a version-1 file has neither (empty ranges: no compressed string can be read).
        let (symbols, symbol_count, cold, cold_dict, cold_dir) = if version >= 2 {
            let first = if is_overlay { 7 } else { 5 };
            let symbols = range(first);
            let symbol_count = symbols_header(b, &symbols)?;
            let cold = range(first + 1);
            let (cold_dict, cold_dir) = cold_header(b, &cold, version)?;
            (symbols, symbol_count, cold, cold_dict, cold_dir)
        } else {
            let end = b.len();
            (end..end, 0, end..end, end..end, end..end)
        };
        let tables = symbol_tables(b, &symbols, symbol_count);
        let shape_at = shapes_at(b.get(shapes.clone()).unwrap_or_default(), shape_count);
        let layout = Layout {
            header: Header {
                version,
                flags,
                content_hash,
                base_hash,
                sections,
            },
            pool,
            data,
            shapes,
            shape_count,
            shape_at,
            keys: keys_l,
            ids: ids_l,
            ordinal_start,
            changes,
            key_tag,
            starts,
            overlay,
            symbols,
            symbol_count,
            tables,
            cold,
            cold_dict,
            cold_cache: ColdCache::default(),
            cold_dir,
            cold_direct: version >= format::COLD_DIRECT_VERSION,
            chain_bytes: 0,
            heads: format::Heads::of(version >= format::NARROW_VERSION),
            derived: version >= format::DERIVED_VERSION,
            nested_patches: version >= format::NESTED_PATCH_VERSION,
        };
        let mut layout = layout;
        layout.chain_bytes = format::expanded_bytes(
            b.len() as u64,
            layout.pool.len() as u64,
            layout.symbol_count > 0,
            layout.derived,
            layout.cold.len() as u64,
        );
        layout.totals().ok_or_else(|| {
            bad(
                layout.pool.start,
                FormatKind::Limit,
                "overlay address spaces overflow 32 bits (base plus this file)",
            )
        })?;
        layout.ordinal_end().ok_or_else(|| {
            bad(
                layout.ids.entries_at,
                FormatKind::Limit,
                "overlay id ordinals overflow 32 bits (base plus this file)",
            )
        })?;
        Ok(layout)
    }

    /// The first id entry that is this file's own (has a home ordinal here): 0, except in
    /// a version-1 overlay, whose first `changed` entries change base ids.
    #[inline]
    pub fn own_first(&self) -> u32 {
        match (self.overlay, self.changes) {
            (Some(o), None) => o.changed.min(self.ids.count),
            _ => 0,
        }
    }

    /// Where an overlay over this snapshot starts its ordinals: this file's ordinal start
    /// plus its own id entries. `None` if that reaches `2^32 - 1` (checked at open).
    #[inline]
    pub fn ordinal_end(&self) -> Option<u32> {
        let own = self.ids.count - self.own_first();
        self.ordinal_start
            .checked_add(own)
            .filter(|&e| u64::from(e) < format::MAX_SECTION_LEN)
    }

    /// Where an overlay over this snapshot starts its address spaces: this file's starts
    /// plus its own sizes. `None` if they overflow `u32` (checked at open, so never after).
    pub fn totals(&self) -> Option<Starts> {
        let add = |start: u32, len: usize| {
            let end = u64::from(start) + len as u64;
            u32::try_from(end)
                .ok()
                .filter(|&e| u64::from(e) < format::MAX_SECTION_LEN)
        };
        Some(Starts {
            pool: add(self.starts.pool, self.pool.len())?,
            data: add(self.starts.data, self.data.len())?,
            shape: add(self.starts.shape, self.shape_count as usize)?,
            key: add(self.starts.key, self.keys.count as usize)?,
            cold: add(self.starts.cold, self.cold_numbers())?,
        })
    }

    /// Version 6: blocks in the COLD section's directory.
    #[inline]
    pub fn cold_blocks(&self) -> usize {
        self.cold_dir.len() / 4
    }

    /// How many cold numbers this file's own strings take: `2^COLD_BLOCK_BITS` a block
    /// (saturating where `usize` is narrower than the count, which [`Self::totals`] then
    /// refuses).
    pub fn cold_numbers(&self) -> usize {
        usize::try_from((self.cold_blocks() as u64) << format::COLD_BLOCK_BITS)
            .unwrap_or(usize::MAX)
    }

    /// Joins this (overlay) layout to its base's: the chain's bytes.
    pub fn over(&mut self, base: &Layout) {
        self.chain_bytes = self.chain_bytes.saturating_add(base.chain_bytes);
    }

    /// The walk limit of every record read through this file: [`format::walk_limit`] of
    /// its chain's bytes.
    #[inline]
    pub fn walk_limit(&self) -> u64 {
        format::walk_limit(self.chain_bytes)
    }

    /// 0 for a full snapshot, 1 + the base's depth for an overlay.
    #[inline]
    pub fn depth(&self) -> u32 {
        self.overlay.map_or(0, |o| o.depth)
    }
}

/// Parses the OVERLAY section (eight `u32`s; nine in version 2, the ninth the ordinal
/// start) of an overlay with `ids` id entries: `(starts, section, ordinal start)`.
fn overlay_section(
    b: &[u8],
    r: Range<usize>,
    ids: u32,
    version: u16,
) -> Result<(Starts, OverlaySection, u32)> {
    use format::*;
    let want = if version >= 2 {
        OVERLAY_SECTION_LEN
    } else {
        OVERLAY_SECTION_LEN_V1
    };
    if r.end - r.start != want {
        return Err(bad(
            r.start,
            FormatKind::BadEncoding,
            format!(
                "overlay section is {} bytes, expected {want}",
                r.end - r.start
            ),
        ));
    }
    let f = |i: usize| u32_at(b, r.start + 4 * i).unwrap_or(0);
    let starts = Starts {
        pool: f(1),
        data: f(2),
        shape: f(3),
        key: f(4),
        cold: 0,
    };
    let o = OverlaySection {
        depth: f(0),
        records: f(5),
        changed: f(6),
        removed: f(7),
    };
    if o.depth == 0 || o.depth > MAX_OVERLAY_DEPTH {
        return Err(bad(
            r.start,
            FormatKind::Limit,
            format!("overlay depth {} out of 1..={MAX_OVERLAY_DEPTH}", o.depth),
        ));
    }
    // Version 1: the first `changed` id entries change base ids. Version 2: `changed`
    // counts the CHANGES section's references (checked with it).
    if (version < 2 && o.changed > ids) || o.removed > o.changed {
        return Err(bad(
            r.start + 24,
            FormatKind::BadOverlay,
            format!(
                "overlay counts {} changed, {} removed do not fit its {ids} id entries",
                o.changed, o.removed
            ),
        ));
    }
    let ordinal_start = if version >= 2 { f(8) } else { 0 };
    Ok((starts, o, ordinal_start))
}

/// Checks the CHANGES section of a version-2 overlay (FORMAT.md "CHANGES") against its
/// OVERLAY section: it covers exactly the base's ordinals, holds `changed` references,
/// and its length is exactly that of its parts.
fn changes_section(
    b: &[u8],
    r: Range<usize>,
    o: &OverlaySection,
    ordinal_start: u32,
) -> Result<ChangesLayout> {
    use format::*;
    let hdr = |i: usize| u32_at(b, r.start + 4 * i).filter(|_| r.len() >= CHANGES_HEADER_LEN);
    let (Some(count), Some(ordinal_end)) = (hdr(0), hdr(1)) else {
        return Err(bad(
            r.start,
            FormatKind::Truncated,
            "changes section header is truncated",
        ));
    };
    if count != o.changed || ordinal_end != ordinal_start || count > ordinal_end {
        return Err(bad(
            r.start,
            FormatKind::BadOverlay,
            format!(
                "changes section holds {count} changes of ordinals below {ordinal_end}, \
                 but the overlay section says {} changes over a base of {ordinal_start} ordinals",
                o.changed
            ),
        ));
    }
    let (words, ranks, len) = changes_layout(ordinal_end, count);
    if r.len() as u64 != len {
        return Err(bad(
            r.start,
            FormatKind::BadEncoding,
            format!(
                "changes section is {} bytes, expected {len} for {count} changes of {ordinal_end} ordinals",
                r.len()
            ),
        ));
    }
    // In range: the section (of exactly this length) is inside the file.
    let words_at = r.start + CHANGES_HEADER_LEN;
    let ranks_at = words_at + 8 * words as usize;
    Ok(ChangesLayout {
        count,
        ordinal_end,
        words: words as u32,
        words_at,
        ranks_at,
        refs_at: ranks_at + 4 * ranks as usize,
    })
}

/// Checks the SYMBOLS section's header (FORMAT.md "SYMBOLS"): a `u32` table count and
/// that many `u32` table offsets, all inside the section; returns the count. An empty
/// section holds no table.
fn symbols_header(b: &[u8], r: &Range<usize>) -> Result<u32> {
    use format::*;
    if r.is_empty() {
        return Ok(0);
    }
    let count = header_u32(b, r.start, r.end, "symbols section has no count")?;
    if count > MAX_SYMBOL_TABLES {
        return Err(bad(
            r.start,
            FormatKind::Limit,
            format!("{count} symbol tables (at most {MAX_SYMBOL_TABLES})"),
        ));
    }
    if 4 + 4 * count as u64 > r.len() as u64 {
        return Err(bad(
            r.start,
            FormatKind::Truncated,
            format!("symbols section too short for {count} table offsets"),
        ));
    }
    Ok(count)
}

/// At most this many shapes of a file are found at open ([`Layout::shape_at`]): 20 bytes
/// of heap each, and about 80 instructions each at open (the content-site tree has 15
/// shapes, browser-compat-data 94; a file of 1,100 shapes opens in 2,537 instructions
/// without the cache, 84,697 with 1,024 shapes cached, hence a cap as low as this).
pub(crate) const CACHED_SHAPES: u32 = 256;

/// Where a shape's parts are in its SHAPES section (FORMAT.md "SHAPES"), as offsets from
/// the section's start: its `n` key ids, its key base and its slot table of `span` bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ShapeAt {
    pub keys: u32,
    pub n: u32,
    pub base: u32,
    pub table: u32,
    pub span: u32,
}

impl ShapeAt {
    /// Shape `s` of the SHAPES section `sec` of `count` shapes: `None` if `s` is not
    /// below `count`, or its offset, its key ids or its table are out of bounds.
    pub fn parse(sec: &[u8], s: u32, count: u32) -> Option<ShapeAt> {
        use format::*;
        if s >= count {
            return None;
        }
        let off = u32_at(sec, 4 + s as usize * SHAPE_OFFSET_LEN)? as usize;
        let (n, used) = varint_at(sec, off)?;
        let n = u32::try_from(n).ok()?;
        let keys = off + used;
        let len = (n as usize).checked_mul(SHAPE_KEY_LEN)?;
        slice_at(sec, keys, len)?;
        let base = u32_at(sec, keys + len)?;
        let (span, used) = varint_at(sec, keys + len + 4)?;
        let table = keys + len + 4 + used;
        let span = u32::try_from(span).ok()?;
        slice_at(sec, table, span as usize)?;
        Some(ShapeAt {
            keys: u32::try_from(keys).ok()?,
            n,
            base,
            table: u32::try_from(table).ok()?,
            span,
        })
    }
}

/// [`Layout::shape_at`] of the SHAPES section `sec` of `count` shapes: its first shapes,
/// up to [`CACHED_SHAPES`] of them, and only those before the first that does not parse
/// (reads parse that one and the later ones as they use them, and fail on a broken one).
fn shapes_at(sec: &[u8], count: u32) -> Box<[ShapeAt]> {
    let n = count.min(CACHED_SHAPES);
    // One allocation of the final size when every shape parses (the heap tests count it).
    let mut found = Vec::with_capacity(n as usize);
    found.extend((0..n).map_while(|s| ShapeAt::parse(sec, s, count)));
    found.into_boxed_slice()
}

/// Files with at most this many symbol tables have them found at open
/// ([`Layout::tables`]); the builder writes at most 255.
pub(crate) const CACHED_TABLES: u32 = 256;

/// [`Layout::tables`] of the SYMBOLS section `r` with `count` tables: empty if there are
/// more than [`CACHED_TABLES`], one of them is out of bounds or has a symbol length
/// outside 1..=8 (reads then find each table as they go, check each code's length, and
/// fail on a bad one as before). At most 256 offsets and 256 × 255 lengths read: O(1).
fn symbol_tables(b: &[u8], r: &Range<usize>, count: u32) -> Box<[(u32, u32)]> {
    if count > CACHED_TABLES {
        return Box::default();
    }
    let Some(sec) = b.get(r.clone()) else {
        return Box::default();
    };
    let mut tables = Vec::with_capacity(count as usize); // one allocation, kept as is
    for t in 0..count as usize {
        let found = format::u32_at(sec, 4 + 4 * t).and_then(|at| {
            let table = crate::fsst::Table::parse(sec, at as usize)?;
            table.lens_ok().then_some(())?;
            Some((at.checked_add(1)?, table.len() as u32))
        });
        match found {
            Some(e) => tables.push(e),
            None => return Box::default(),
        }
    }
    tables.into_boxed_slice()
}

/// Checks the COLD section's header (FORMAT.md "COLD"): a `u32` dictionary length and the
/// dictionary inside the section, and from version 6 on a `u32` block count and the block
/// directory; returns the ranges of the dictionary and of the directory. An empty section
/// holds no string.
fn cold_header(b: &[u8], r: &Range<usize>, version: u16) -> Result<(Range<usize>, Range<usize>)> {
    use format::*;
    if r.is_empty() {
        return Ok((r.end..r.end, r.end..r.end));
    }
    let dict = cold_dict(b, r)?;
    if version < COLD_DIRECT_VERSION {
        return Ok((dict, r.end..r.end));
    }
    let blocks = header_u32(b, dict.end, r.end, "cold section has no block count")?;
    let start = dict.end + 4;
    match (blocks as usize)
        .checked_mul(4)
        .and_then(|n| start.checked_add(n))
        .filter(|&e| e <= r.end && blocks > 0)
    {
        Some(end) => Ok((dict, start..end)),
        None => Err(bad(
            dict.end,
            FormatKind::Truncated,
            format!("cold block directory of {blocks} blocks does not fit its section"),
        )),
    }
}

/// The `u32` at `at` of a section ending at `end` (a count or length opening it); an
/// error naming `missing` if the section is too short for it.
fn header_u32(b: &[u8], at: usize, end: usize, missing: &str) -> Result<u32> {
    format::u32_at(b, at)
        .filter(|_| end.saturating_sub(at) >= 4)
        .ok_or_else(|| bad(at, FormatKind::Truncated, missing))
}

/// The COLD section's dictionary: a `u32` length, then that many bytes inside the section.
fn cold_dict(b: &[u8], r: &Range<usize>) -> Result<Range<usize>> {
    let len = header_u32(b, r.start, r.end, "cold section has no dictionary length")?;
    let start = r.start + 4;
    match start.checked_add(len as usize).filter(|&e| e <= r.end) {
        Some(end) => Ok(start..end),
        None => Err(bad(
            r.start,
            FormatKind::Truncated,
            format!("cold dictionary of {len} bytes overruns its section"),
        )),
    }
}

fn index_layout(
    b: &[u8],
    r: Range<usize>,
    fields: usize,
    narrow: bool,
    what: &str,
) -> Result<IndexLayout> {
    use format::*;
    let hdr = |i: usize| u32_at(b, r.start + 4 * i).filter(|_| r.end - r.start >= INDEX_HEADER_LEN);
    let (Some(count), Some(slots), Some(probe_word)) = (hdr(0), hdr(1), hdr(2)) else {
        return Err(bad(
            r.start,
            FormatKind::Truncated,
            format!("{what} header is truncated"),
        ));
    };
    // Version 4: max probe u16, then the entry and field widths.
    let (max_probe, tag_w, entry_w, field_w) = if narrow {
        let [_, _, e, f] = probe_word.to_le_bytes();
        (probe_word & 0xffff, 1, e as usize, f as usize)
    } else {
        (probe_word, 4, 4, 4)
    };
    if !(1..=4).contains(&entry_w) || !(1..=4).contains(&field_w) {
        return Err(bad(
            r.start + 10,
            FormatKind::BadIndex,
            format!("{what} widths {entry_w} and {field_w} out of range 1..=4"),
        ));
    }
    if !slots.is_power_of_two() || (slots as u64) < count as u64 {
        return Err(bad(
            r.start + 4,
            FormatKind::BadIndex,
            format!("{what} has {slots} slots for {count} entries"),
        ));
    }
    if max_probe > MAX_PROBE || max_probe > slots || ((count > 0) != (max_probe > 0)) {
        return Err(bad(
            r.start + 8,
            FormatKind::BadIndex,
            format!("{what} max probe {max_probe} out of range"),
        ));
    }
    let expect = INDEX_HEADER_LEN as u64
        + slots as u64 * (tag_w + entry_w) as u64
        + count as u64 * (fields * field_w) as u64;
    if (r.end - r.start) as u64 != expect {
        return Err(bad(
            r.start,
            FormatKind::BadEncoding,
            format!(
                "{what} is {} bytes, expected {expect} for {count} entries in {slots} slots",
                r.end - r.start
            ),
        ));
    }
    Ok(IndexLayout {
        count,
        slots,
        max_probe,
        slots_at: r.start + INDEX_HEADER_LEN,
        entries_at: r.start + INDEX_HEADER_LEN + slots as usize * (tag_w + entry_w),
        tag_w: tag_w as u8,
        entry_w: entry_w as u8,
        field_w: field_w as u8,
        tag_mask: (((1u64 << (8 * tag_w)) - 1) as u32),
        entry_mask: (((1u64 << (8 * entry_w)) - 1) as u32),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fsst::Table;

    /// A SYMBOLS section (FORMAT.md "SYMBOLS") of tables with `sizes[t]` symbols each,
    /// after `pad` bytes of other file, and its range.
    fn section(pad: usize, sizes: &[u8]) -> (Vec<u8>, Range<usize>) {
        let mut tables = Vec::new();
        let mut offsets = Vec::new();
        let head = 4 + 4 * sizes.len();
        for (t, &n) in sizes.iter().enumerate() {
            offsets.push((head + tables.len()) as u32);
            tables.push(n);
            tables.extend((0..n).map(|_| 1));
            tables.extend((0..n).flat_map(|i| [b'a' + (t as u8 + i) % 26, 0, 0, 0, 0, 0, 0, 0]));
        }
        let mut b = vec![0xEE; pad];
        b.extend((sizes.len() as u32).to_le_bytes());
        offsets.iter().for_each(|o| b.extend(o.to_le_bytes()));
        b.extend(tables);
        let r = pad..b.len();
        (b, r)
    }

    /// A SHAPES section (FORMAT.md "SHAPES") of shapes with `keys[s]` key ids each (key
    /// base 7 + s, a slot table of `keys[s]` bytes), and each shape's offset in it.
    fn shapes_section(keys: &[u32]) -> (Vec<u8>, Vec<usize>) {
        let mut b = (keys.len() as u32).to_le_bytes().to_vec();
        b.resize(4 + 4 * keys.len(), 0);
        let mut offs = Vec::new();
        for (s, &n) in keys.iter().enumerate() {
            let at = b.len();
            offs.push(at);
            b[4 + 4 * s..8 + 4 * s].copy_from_slice(&(at as u32).to_le_bytes());
            format::put_varint(&mut b, u64::from(n));
            (0..n).for_each(|k| b.extend((7 + s as u32 + k).to_le_bytes()));
            b.extend((7 + s as u32).to_le_bytes());
            format::put_varint(&mut b, u64::from(n));
            b.extend((1..=n).map(|k| k as u8));
        }
        (b, offs)
    }

    #[test]
    fn shapes_found_at_open_are_the_shapes_parse_finds() {
        let (b, _) = shapes_section(&[0, 3, 200, 1]);
        let found = shapes_at(&b, 4);
        assert_eq!(found.len(), 4);
        for (s, at) in found.iter().enumerate() {
            assert_eq!(Some(*at), ShapeAt::parse(&b, s as u32, 4));
            let n = [0, 3, 200, 1][s];
            assert_eq!(at.n, n);
            assert_eq!(at.base, 7 + s as u32);
            assert_eq!(at.span, n);
            let keys = &b[at.keys as usize..at.keys as usize + 4 * n as usize];
            let first = keys
                .get(..4)
                .map(|k| u32::from_le_bytes(k.try_into().unwrap()));
            assert_eq!(first, (n > 0).then_some(7 + s as u32));
            assert_eq!(
                b[at.table as usize..][..n as usize],
                (1..=n).map(|k| k as u8).collect::<Vec<_>>()
            );
        }
        // At most CACHED_SHAPES, and none past the count.
        assert_eq!(shapes_at(&b, 2).len(), 2);
        let many: Vec<u32> = vec![1; CACHED_SHAPES as usize + 5];
        let (big, _) = shapes_section(&many);
        assert_eq!(
            shapes_at(&big, many.len() as u32).len(),
            CACHED_SHAPES as usize
        );
        // The shapes before the first that does not parse: an offset past the section,
        // or a slot table cut short.
        let (mut far, _) = shapes_section(&[2, 2, 2]);
        far[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(ShapeAt::parse(&far, 1, 3), None);
        assert_eq!(shapes_at(&far, 3).len(), 1);
        // A shape id at or past the count is none, even where the bytes after the offset
        // table read as an offset to a shape: here shape 0's key count (8) and first key
        // id (0) are the `u32` 8, its own offset.
        let mut one = vec![1, 0, 0, 0, 8, 0, 0, 0, 8];
        one.extend([0u8; 32]);
        one.extend([0, 0, 0, 0, 0]);
        assert!(ShapeAt::parse(&one, 0, 1).is_some());
        assert_eq!(ShapeAt::parse(&one, 1, 1), None);
        assert_eq!(ShapeAt::parse(&one, 1, 2).map(|a| a.n), Some(8));
        let (mut cut, offs) = shapes_section(&[2, 2, 5]);
        cut.truncate(cut.len() - 1);
        assert!(offs[2] < cut.len());
        assert_eq!(shapes_at(&cut, 3).len(), 2);
    }

    /// A buffer that is `first` when a snapshot is opened from it and `later` afterwards
    /// (tests/common has the same for the integration tests).
    struct Flip {
        first: Vec<u8>,
        later: Vec<u8>,
        calls: std::sync::atomic::AtomicUsize,
    }

    impl AsRef<[u8]> for Flip {
        fn as_ref(&self) -> &[u8] {
            let calls = self
                .calls
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            if calls == 0 { &self.first } else { &self.later }
        }
    }

    #[test]
    fn shapes_found_at_open_are_sliced_from_the_bytes_as_they_are_now() {
        let mut b = crate::SnapshotBuilder::new();
        for i in 0..300 {
            b.insert(
                &format!("r:{i}"),
                &serde_json::json!({ format!("k{i}"): i }),
            )
            .unwrap();
        }
        let good = b.to_bytes().unwrap();
        let snap = crate::Snapshot::from_bytes(good.clone()).unwrap();
        let (sec, count) = (snap.layout().shapes.clone(), snap.layout().shape_count);
        assert_eq!(count, 300);
        for cut in [
            0,
            sec.start,
            sec.start + 40,
            (sec.start + sec.end) / 2,
            sec.end - 1,
        ] {
            let later = good[..cut].to_vec();
            let snap = crate::Snapshot::from_bytes(Flip {
                first: good.clone(),
                later,
                calls: Default::default(),
            })
            .unwrap();
            let raw = snap.raw();
            for s in 0..count {
                let at = ShapeAt::parse(&good[sec.clone()], s, count).unwrap();
                // A shape found at open reads while its bytes are there; the others are
                // parsed from the section, which is cut.
                let there = sec.start + (at.table + at.span) as usize <= cut;
                let expect = there && s < CACHED_SHAPES;
                assert_eq!(raw.shape(s).is_some(), expect, "shape {s}, cut at {cut}");
            }
        }
    }

    #[test]
    fn tables_found_at_open_are_the_tables_parse_finds() {
        let (b, r) = section(13, &[3, 0, 255, 1]);
        let found = symbol_tables(&b, &r, 4);
        assert_eq!(found.len(), 4);
        let sec = &b[r.clone()];
        for (t, &(lens, n)) in found.iter().enumerate() {
            let at = u32::from_le_bytes(sec[4 + 4 * t..8 + 4 * t].try_into().unwrap());
            let parsed = Table::parse(sec, at as usize).unwrap();
            let cached = Table::cut_checked(&b, r.start + lens as usize, n as usize).unwrap();
            assert_eq!(parsed.len(), cached.len());
            assert_eq!(parsed.encoded_len(), cached.encoded_len());
            for c in 0..=255u8 {
                assert_eq!(
                    parsed.decoded_len(&[c]),
                    cached.decoded_len(&[c]),
                    "table {t}"
                );
            }
        }
        // Nothing is found for a table that does not fit the section, an offset past it,
        // more than CACHED_TABLES tables or an empty section: reads fall back to parsing
        // each table, which fails as before.
        let (mut cut, r2) = section(0, &[2, 4]);
        cut.truncate(cut.len() - 1);
        assert!(symbol_tables(&cut, &(r2.start..cut.len()), 2).is_empty());
        let (mut far, r3) = section(0, &[2, 4]);
        far[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(symbol_tables(&far, &r3, 2).is_empty());
        // A symbol length outside 1..=8 (0 or 9) in any table.
        for bad in [0u8, 9] {
            let (mut lens, r5) = section(0, &[2, 4]);
            // The second table's lengths: after the count and two offsets, the first
            // table (its count, 2 lengths, 2 symbols) and its own count.
            let second = 4 + 4 * 2 + (1 + 2 + 16) + 1;
            lens[second + 3] = bad;
            assert!(symbol_tables(&lens, &r5, 2).is_empty(), "length {bad}");
            lens[second + 3] = 8;
            assert_eq!(symbol_tables(&lens, &r5, 2).len(), 2);
        }
        let many = vec![1u8; CACHED_TABLES as usize + 1];
        let (big, r4) = section(0, &many);
        assert!(symbol_tables(&big, &r4, CACHED_TABLES + 1).is_empty());
        assert_eq!(symbol_tables(&big, &r4, CACHED_TABLES).len(), 256);
        assert!(symbol_tables(&b, &(5..5), 0).is_empty());
    }
}
