//! The full validation pass: everything a read relies on, checked once, in O(n).
//!
//! Order: section checksums; the pool, scanned entry by entry (marking where entries start
//! and which are UTF-8); the key table; the shapes; the data section, scanned node by node
//! (every reference must point strictly backwards to the start of a node of the right
//! kind and a smaller height; heights and walk sizes are recomputed); the id index; the
//! cold blocks, each decoded once, with the cold strings the data pass met (a block's
//! headers are read before the data pass).
//! A snapshot that passes never makes a read return `None` or `Err`.
//!
//! An overlay is checked with its whole base chain, root first: each level's bookkeeping
//! (pool entry starts, shapes, nodes) stays available to the levels above it, whose
//! references may point into any level below.

use crate::error::{Error, FormatKind, Result};
use crate::format::{self, MAX_HEIGHT, TOMBSTONE, node, section, slot_walk_cost, tag};
use crate::read::{Raw, Snapshot, Starts};

/// A set of byte offsets, one bit each.
struct Bits(Vec<u64>);

impl Bits {
    fn new(len: usize) -> Bits {
        Bits(vec![0; len / 64 + 1])
    }
    fn set(&mut self, i: usize) {
        self.0[i / 64] |= 1 << (i % 64);
    }
    fn get(&self, i: usize) -> bool {
        self.0.get(i / 64).is_some_and(|w| w & (1 << (i % 64)) != 0)
    }
}

/// The pool's entries, two bits per byte offset: where an entry starts, and whether it
/// is UTF-8, side by side (`[starts, utf8]` for each 64 offsets). One cache line answers
/// a reference's check and gives its entry's length (the distance to the next start), so
/// the data pass does not touch the pool's own bytes: reading a string's length prefix
/// there missed the cache for most references (they jump around a pool far larger than
/// the cache) and was a third of `verify`'s time.
struct Marks {
    cells: Vec<[u64; 2]>,
    /// The pool's length: the end of its last entry.
    len: usize,
}

impl Marks {
    fn new(len: usize) -> Marks {
        Marks {
            cells: vec![[0; 2]; len / 64 + 1],
            len,
        }
    }

    fn set(&mut self, at: usize, utf8: bool) {
        if let Some(c) = self.cells.get_mut(at / 64) {
            c[0] |= 1 << (at % 64);
            c[1] |= u64::from(utf8) << (at % 64);
        }
    }

    /// If an entry starts at `at`: whether it is UTF-8.
    #[inline(always)]
    fn start(&self, at: usize) -> Option<bool> {
        let [starts, utf8] = *self.cells.get(at / 64)?;
        ((starts >> (at % 64)) & 1 == 1).then_some((utf8 >> (at % 64)) & 1 == 1)
    }

    /// The content length of the entry starting at `at`, if the next entry starts (or the
    /// pool ends) in the same or the next 64-offset word (`None` for a longer entry: the
    /// caller reads its length prefix; scanning on would make a file that refers to one
    /// long string from many nodes cost its length per reference).
    #[inline(always)]
    fn len(&self, at: usize) -> Option<usize> {
        let w = at / 64;
        // The next start (or the pool's end) ends this entry.
        let later = (self.cells.get(w)?[0] >> (at % 64)) & !1;
        let end = if later != 0 {
            at + later.trailing_zeros() as usize
        } else {
            match self.cells.get(w + 1) {
                Some([next, _]) if *next != 0 => 64 * (w + 1) + next.trailing_zeros() as usize,
                // No start in the next word either: the pool's end, if it comes first.
                _ if self.len <= 64 * (w + 2) => self.len,
                _ => return None,
            }
        };
        // `end - at` is a minimal varint of the content length `n` plus `n` bytes (the pool
        // pass parsed every entry), which gives `n`: the one `n` with `varint_len(n) + n`
        // equal to it.
        let total = end.checked_sub(at)?;
        (1..=10)
            .map(|k| total.wrapping_sub(k))
            .find(|&n| n < total && format::varint_len(n as u64) + n == total)
    }
}

/// A pool reference [`check_pool_ref`] accepted: the marks of the file holding its entry
/// and the entry's offset there.
struct Entry<'p> {
    marks: &'p Marks,
    at: usize,
}

impl Entry<'_> {
    /// The entry's content length (`off`: its combined pool offset, to read the length
    /// prefix of a long entry).
    #[inline(always)]
    fn len(&self, c: &Chain<'_, '_>, off: u32) -> usize {
        self.marks
            .len(self.at)
            .or_else(|| c.raw.pool_bytes(off).map(<[u8]>::len))
            .unwrap_or(0)
    }
}

struct Pool {
    marks: Marks,
    /// Pool entries already decoded as FSST strings of this file (checked on first use).
    fsst_ok: std::cell::RefCell<Bits>,
    /// Where the cold section's blocks start (from their headers; the blocks are decoded
    /// after the data pass).
    cold_starts: Bits,
    /// Pool entries of this file already queued in `cold_checks` (each is checked once).
    cold_ok: std::cell::RefCell<Bits>,
    /// Cold strings of this file met by a data pass (this file's or one above it), checked
    /// against their blocks after that pass, each block decoded once
    /// ([`verify_cold_blocks`]).
    cold_checks: std::cell::RefCell<Vec<ColdCheck>>,
    /// Where FSST strings are decoded to be checked.
    scratch: std::cell::RefCell<Vec<u8>>,
    /// Derived entries already checked (by offset in this pool): their decoded length and
    /// height (1 + the greatest height of their derived parts).
    derived_ok: std::cell::RefCell<hashbrown::HashMap<u32, (u64, u8)>>,
}

fn err(offset: usize, kind: FormatKind, what: impl Into<String>) -> Error {
    Error::format(offset, kind, what)
}

/// What one verified file of a chain leaves for the files above it.
struct Level<'a> {
    raw: Raw<'a>,
    pool: Pool,
    key_lens: Vec<u64>,
    shapes: Vec<ShapeInfo>,
    nodes: Nodes,
}

/// The file being checked (`raw`) and the verified levels below it, root first. Resolves a
/// combined address to the level that owns it: `(level, address inside that file)`.
struct Chain<'c, 'a> {
    raw: Raw<'a>,
    below: &'c [Level<'a>],
}

impl<'c, 'a> Chain<'c, 'a> {
    /// The combined address `addr` (of the space `start` picks: pool, data, shape or key)
    /// resolved to the file that owns it: `own` (this file's part) if this file's start is
    /// at or below it, else what `pick` takes from the level below that owns it; with the
    /// address inside that file. `None` only before every level (the root starts at 0).
    fn resolve<T>(
        &self,
        addr: u32,
        start: fn(&Starts) -> u32,
        own: T,
        pick: impl Fn(&'c Level<'a>) -> T,
    ) -> Option<(T, u32)> {
        match addr.checked_sub(start(&self.raw.l().starts)) {
            Some(o) => Some((own, o)),
            None => self.below.iter().rev().find_map(|l| {
                addr.checked_sub(start(&l.raw.l().starts))
                    .map(|o| (pick(l), o))
            }),
        }
    }
}

pub(crate) fn verify(snap: &Snapshot) -> Result<()> {
    let mut chain = vec![snap];
    while let Some(b) = chain.last().and_then(|s| s.base()) {
        chain.push(b);
    }
    let mut levels: Vec<Level<'_>> = Vec::with_capacity(chain.len());
    for s in chain.into_iter().rev() {
        let level = verify_level(Chain {
            raw: s.raw(),
            below: &levels,
        })
        .map_err(|e| {
            // Name the file when a base, not the snapshot asked about, is at fault.
            if std::ptr::eq(s, snap) {
                e
            } else {
                Error::Base {
                    hash: s.hash(),
                    source: Box::new(e),
                }
            }
        })?;
        levels.push(level);
    }
    Ok(())
}

fn verify_level<'a>(c: Chain<'_, 'a>) -> Result<Level<'a>> {
    let (b, l) = (c.raw.b, c.raw.l());
    for s in &l.header.sections {
        let bytes = b
            .get(s.offset as usize..(s.offset + s.len) as usize)
            .ok_or_else(|| {
                err(
                    s.offset as usize,
                    FormatKind::Truncated,
                    "section out of bounds",
                )
            })?;
        if format::section_checksum(bytes) != s.checksum {
            return Err(Error::Checksum {
                section: section::name(s.kind),
                offset: s.offset,
                end: s.offset + s.len,
            });
        }
    }
    verify_symbols(c.raw)?;
    let pool = verify_pool(c.raw)?;
    let key_lens = verify_keys(&c, &pool)?;
    let shapes = verify_shapes(&c, &key_lens)?;
    let nodes = verify_data(&c, &pool, &shapes)?;
    verify_ids(&c, &pool, &nodes)?;
    verify_cold_blocks(c.raw, pool.cold_checks.take(), true)?;
    // This file's references to the cold strings of the levels below it.
    for l in c.below {
        let checks = l.pool.cold_checks.take();
        if !checks.is_empty() {
            verify_cold_blocks(l.raw, checks, false)?;
        }
    }
    Ok(Level {
        raw: c.raw,
        pool,
        key_lens,
        shapes,
        nodes,
    })
}

fn verify_pool(raw: Raw<'_>) -> Result<Pool> {
    let l = raw.l();
    let pool = raw.pool().ok_or_else(|| {
        err(
            l.pool.start,
            FormatKind::Truncated,
            "pool section out of bounds",
        )
    })?;
    let mut p = Pool {
        marks: Marks::new(pool.len()),
        fsst_ok: std::cell::RefCell::new(Bits::new(pool.len())),
        cold_starts: cold_blocks(raw)?,
        cold_ok: std::cell::RefCell::new(Bits::new(pool.len())),
        cold_checks: std::cell::RefCell::new(Vec::new()),
        scratch: std::cell::RefCell::new(Vec::new()),
        derived_ok: std::cell::RefCell::new(hashbrown::HashMap::new()),
    };
    for entry in format::pool_entries(pool) {
        let (at, entry) = entry.map_err(|at| {
            err(
                l.pool.start + at,
                FormatKind::Truncated,
                "pool entry overruns the pool section",
            )
        })?;
        p.marks.set(at, is_utf8(entry));
    }
    Ok(p)
}

/// Whether `b` is UTF-8: ASCII eight bytes at a time (the standard library checks a slice
/// shorter than 64 bytes, most pool entries, byte by byte), else `simdutf8`.
#[inline(always)]
fn is_utf8(b: &[u8]) -> bool {
    let mut chunks = b.chunks_exact(8);
    let mut any = 0u64;
    for c in &mut chunks {
        any |= u64::from_le_bytes(c.try_into().unwrap_or_default());
    }
    for &x in chunks.remainder() {
        any |= u64::from(x);
    }
    any & 0x8080_8080_8080_8080 == 0 || simdutf8::basic::from_utf8(b).is_ok()
}

/// Checks the SYMBOLS section (FORMAT.md "SYMBOLS"): the tables tile it in order after
/// the offsets, each valid (symbol lengths 1..=8, zero padding).
fn verify_symbols(raw: Raw<'_>) -> Result<()> {
    let l = raw.l();
    let sec = raw.b.get(l.symbols.clone()).unwrap_or_default();
    let mut at = if sec.is_empty() {
        0
    } else {
        4 + 4 * l.symbol_count as usize
    };
    for t in 0..l.symbol_count {
        let where_ = l.symbols.start + 4 + 4 * t as usize;
        if format::u32_at(sec, 4 + 4 * t as usize).map(|o| o as usize) != Some(at) {
            return Err(err(
                where_,
                FormatKind::BadEncoding,
                format!(
                    "symbol table {t} does not start where table {} ends",
                    t.wrapping_sub(1)
                ),
            ));
        }
        let table = raw
            .symbol_table(u64::from(t))
            .filter(|tb| tb.validate())
            .ok_or_else(|| {
                err(
                    l.symbols.start + at,
                    FormatKind::BadEncoding,
                    format!("symbol table {t} is cut or has a symbol length outside 1..=8"),
                )
            })?;
        at += table.encoded_len();
    }
    if at != sec.len() {
        return Err(err(
            l.symbols.start + at,
            FormatKind::BadEncoding,
            "symbols section has bytes after its last table",
        ));
    }
    Ok(())
}

/// A cold string a data pass met: its block (offset in the COLD section of the file
/// holding it) and where it lies in the decoded block, with what an error names (the
/// slot's byte offset, the pool entry's offset). 32 bytes: a block is shorter than 16 MiB,
/// but the COLD section may pass 4 GiB.
struct ColdCheck {
    block_at: u64,
    at: u64,
    start: u32,
    end: u32,
    off: u32,
}

/// The blocks of the COLD section (FORMAT.md "COLD"), from their headers alone: each one's
/// lengths within the limits, its frame inside the section; returns where they start. Their
/// frames are decoded after the data pass ([`verify_cold_blocks`]).
fn cold_blocks(raw: Raw<'_>) -> Result<Bits> {
    let mut starts = Bits::new(raw.b.get(raw.l().cold.clone()).map_or(0, <[u8]>::len));
    for_each_cold_block(raw, |at, _, _, _| {
        starts.set(at);
        Ok(())
    })?;
    Ok(starts)
}

/// `f(offset, decoded length, frame, strings)` of each block of the COLD section, in
/// order, after checking its header; `strings` is a version-6 block's header (its strings'
/// lengths), `None` before version 6.
fn for_each_cold_block(
    raw: Raw<'_>,
    mut f: impl FnMut(usize, usize, &[u8], Option<&format::ColdBlock<'_>>) -> Result<()>,
) -> Result<()> {
    let l = raw.l();
    let sec = raw.b.get(l.cold.clone()).unwrap_or_default();
    if sec.is_empty() {
        return Ok(());
    }
    if l.cold_direct {
        // The directory names the blocks in order, and they tile the rest of the section.
        let dir = raw.b.get(l.cold_dir.clone()).unwrap_or_default();
        let mut at = l.cold_dir.end - l.cold.start;
        for (b, o) in dir.chunks_exact(4).enumerate() {
            let o = u32::from_le_bytes([o[0], o[1], o[2], o[3]]) as usize;
            let bad = |what: String| {
                err(
                    l.cold_dir.start + 4 * b,
                    FormatKind::BadEncoding,
                    format!("cold block {b}: {what}"),
                )
            };
            if o != at {
                return Err(bad(format!(
                    "starts at {o}, expected {at} (blocks follow the directory in order, \
                     without gaps)"
                )));
            }
            let block = format::cold_block(sec, at).ok_or_else(|| {
                bad(
                    "header does not read (1 to 64 strings, lengths, a frame inside the \
                     section, at most 16 MiB and 256 times its entry)"
                        .into(),
                )
            })?;
            f(at, block.len, block.frame, Some(&block))?;
            at += block.entry_len;
        }
        if at != sec.len() {
            return Err(err(
                l.cold.start + at,
                FormatKind::BadEncoding,
                "cold section has bytes after its last block",
            ));
        }
        return Ok(());
    }
    let mut at = 4 + l.cold_dict.len();
    while at < sec.len() {
        let bad = |what: &str| {
            err(
                l.cold.start + at,
                FormatKind::BadEncoding,
                format!("cold block: {what}"),
            )
        };
        let (len, u1) = format::varint_at(sec, at).ok_or_else(|| bad("cut length"))?;
        let (flen, u2) = format::varint_at(sec, at + u1).ok_or_else(|| bad("cut frame length"))?;
        let len = usize::try_from(len)
            .ok()
            .filter(|&n| n <= format::MAX_COLD_LEN)
            .ok_or_else(|| bad("longer than the cold limit"))?;
        let frame = usize::try_from(flen)
            .ok()
            .and_then(|f| format::slice_at(sec, at + u1 + u2, f))
            .ok_or_else(|| bad("frame overruns the section"))?;
        if len > format::MAX_COLD_RATIO.saturating_mul(u1 + u2 + frame.len()) {
            return Err(bad("decodes to more than 256 times its entry"));
        }
        f(at, len, frame, None)?;
        at += u1 + u2 + frame.len();
    }
    Ok(())
}

/// Decodes the blocks of `raw`'s COLD section, each at most once, in order: with `all`
/// every block, which must decode to exactly its length of UTF-8 (a file's own pass); else
/// only those `checks` name (a verified base's blocks, for the strings of a file above it).
/// Each of `checks` must start and end on a character boundary of its block, which makes
/// it a UTF-8 slice of the (UTF-8) block.
fn verify_cold_blocks(raw: Raw<'_>, mut checks: Vec<ColdCheck>, all: bool) -> Result<()> {
    let l = raw.l();
    let dict = raw.b.get(l.cold_dict.clone()).unwrap_or_default();
    checks.sort_unstable_by_key(|c| c.block_at);
    let mut checks = checks.into_iter().peekable();
    let mut buf = Vec::new();
    for_each_cold_block(raw, |at, len, frame, strings| {
        if !all && checks.peek().is_none_or(|c| c.block_at != at as u64) {
            return Ok(());
        }
        buf.clear();
        crate::cold::decompress(dict, &l.cold_cache, frame, len, &mut buf).ok_or_else(|| {
            err(
                l.cold.start + at,
                FormatKind::BadEncoding,
                "cold block: frame does not decode to its stated length",
            )
        })?;
        let text = simdutf8::basic::from_utf8(&buf).map_err(|_| {
            err(
                l.cold.start + at,
                FormatKind::BadUtf8,
                "cold block is not UTF-8",
            )
        })?;
        // Version 6: every string of the block is checked here (slots name them by
        // number, and need no check of their own against the decoded text).
        let mut start = 0;
        for len in strings.into_iter().flat_map(format::ColdBlock::lengths) {
            start += len;
            if !text.is_char_boundary(start) {
                return Err(err(
                    l.cold.start + at,
                    FormatKind::BadUtf8,
                    format!("cold block: a string ends at {start}, inside a character"),
                ));
            }
        }
        while let Some(c) = checks.next_if(|c| c.block_at == at as u64) {
            if !(text.is_char_boundary(c.start as usize) && text.is_char_boundary(c.end as usize)) {
                return Err(err(
                    c.at as usize,
                    FormatKind::BadUtf8,
                    format!(
                        "cold string at pool offset {}: not UTF-8 (or cut inside a character)",
                        c.off
                    ),
                ));
            }
        }
        Ok(())
    })?;
    // Every check named a block start (the data pass checked it), so none is left.
    match checks.next() {
        Some(c) => Err(err(
            c.at as usize,
            FormatKind::OutOfBounds,
            format!("cold string at pool offset {}: not in a cold block", c.off),
        )),
        None => Ok(()),
    }
}

/// Checks a compressed string slot (tag FSST or COLD) with payload `off`; returns its
/// decoded length.
fn check_compressed(c: &Chain<'_, '_>, pool: &Pool, t: u8, off: u32, at: usize) -> Result<u64> {
    let what = if t == tag::FSST {
        "compressed string"
    } else {
        "cold string"
    };
    check_pool_ref(c, pool, off, false, false, at, what)?;
    let (p, o) = c
        .resolve(off, |s| s.pool, pool, |l| &l.pool)
        .unwrap_or((pool, u32::MAX));
    let bad = |kind, why: &str| err(at, kind, format!("{what} at pool offset {off}: {why}"));
    if t == tag::COLD {
        let cr = c
            .raw
            .cold_entry(off)
            .ok_or_else(|| bad(FormatKind::OutOfBounds, "not a slice of a cold block"))?;
        if !p.cold_starts.get(cr.block_at) {
            return Err(bad(
                FormatKind::OutOfBounds,
                "not the start of a cold block",
            ));
        }
        if !p.cold_ok.borrow().get(o as usize) {
            // Checked against its block after the data pass, by the file holding it (this
            // one's own, or a base's): each block is then decoded once, however the
            // strings of blocks alternate here. The start and end fit: a block is at most
            // 16 MiB (checked by the block headers' pass).
            p.cold_checks.borrow_mut().push(ColdCheck {
                block_at: cr.block_at as u64,
                at: at as u64,
                start: cr.start as u32,
                end: (cr.start + cr.len) as u32,
                off,
            });
            p.cold_ok.borrow_mut().set(o as usize);
        }
        return Ok(cr.len as u64);
    }
    // The entry is `varint table ++ codes`, in the pool of the file whose symbol tables
    // it names (what `Raw::fsst_str` reads).
    let (table, codes) = c
        .raw
        .fsst_entry(off)
        .ok_or_else(|| bad(FormatKind::OutOfBounds, "no such symbol table"))?;
    if p.fsst_ok.borrow().get(o as usize) {
        return Ok(table.decoded_len(codes).unwrap_or(0) as u64);
    }
    // Decoded once, into one buffer for the whole pass that only ever grows (so it is
    // zeroed once, not per string); its length is the walk cost.
    let mut buf = p.scratch.borrow_mut();
    // Room for whole-symbol stores; a long string counts its length first, so that the
    // buffer stays near the longest decoded string, not eight times its codes.
    let room = if codes.len() <= 4096 {
        codes.len() * 8
    } else {
        table
            .decoded_len(codes)
            .ok_or_else(|| bad(FormatKind::BadEncoding, MALFORMED_CODES))?
            .saturating_add(7)
    };
    if buf.len() < room {
        buf.resize(room, 0);
    }
    let out = &mut buf[..room];
    let text = table
        .decode_to_slice(codes, out)
        .and_then(|n| buf.get(..n))
        .ok_or_else(|| bad(FormatKind::BadEncoding, MALFORMED_CODES))?;
    if !is_utf8(text) {
        return Err(bad(
            FormatKind::BadEncoding,
            "codes decode to bytes that are not UTF-8",
        ));
    }
    let len = text.len();
    p.fsst_ok.borrow_mut().set(o as usize);
    Ok(len as u64)
}

/// What `verify` says of FSST codes that do not decode.
const MALFORMED_CODES: &str = "codes do not decode (a code the table lacks, or an escape cut off)";

/// Checks a derived string (tag DERIVED, or a derived part of one) whose entry is at `off`,
/// read at nesting `depth` (1 for a slot's own): its parts, recursively, and that they add
/// up to its length. Returns the decoded length and the entry's height.
fn check_derived(
    c: &Chain<'_, '_>,
    pool: &Pool,
    off: u32,
    at: usize,
    depth: u8,
) -> Result<(u64, u8)> {
    let what = "derived string";
    check_pool_ref(c, pool, off, false, false, at, what)?;
    let (p, o) = c
        .resolve(off, |s| s.pool, pool, |l| &l.pool)
        .unwrap_or((pool, u32::MAX));
    let bad = |kind, why: &str| err(at, kind, format!("{what} at pool offset {off}: {why}"));
    let too_deep = || {
        bad(
            FormatKind::Limit,
            &format!("nested more than {} deep", format::MAX_DERIVED_DEPTH),
        )
    };
    if depth > format::MAX_DERIVED_DEPTH {
        return Err(too_deep());
    }
    let d = c
        .raw
        .pool_bytes(off)
        .and_then(|e| format::Derived::parse(e, off))
        .ok_or_else(|| bad(FormatKind::BadEncoding, "an empty entry"))?;
    if let Some(&(len, h)) = p.derived_ok.borrow().get(&o) {
        if u32::from(depth) + u32::from(h) - 1 > u32::from(format::MAX_DERIVED_DEPTH) {
            return Err(too_deep());
        }
        return Ok((len, h));
    }
    let mut total = 0u64;
    let mut height = 1u8;
    for part in d.parts() {
        let part = part.map_err(|()| {
            bad(
                FormatKind::BadEncoding,
                &format!(
                    "a part is cut short, points at or above the entry, or is one of over {}",
                    format::MAX_DERIVED_PARTS
                ),
            )
        })?;
        let len = match part {
            format::Part::Plain(x) => {
                check_pool_ref(c, pool, x, true, false, at, "part of a derived string")?;
                c.raw.pool_bytes(x).map_or(0, <[u8]>::len) as u64
            }
            format::Part::Fsst(x) => check_compressed(c, pool, tag::FSST, x, at)?,
            format::Part::Derived(x) => {
                let (len, h) = check_derived(c, pool, x, at, depth + 1)?;
                height = height.max(h + 1);
                len
            }
            format::Part::Literal(b) => {
                if std::str::from_utf8(b).is_err() {
                    return Err(bad(FormatKind::BadUtf8, "a literal part is not UTF-8"));
                }
                b.len() as u64
            }
        };
        if len == 0 {
            return Err(bad(FormatKind::BadEncoding, "a part is empty"));
        }
        total += len;
    }
    if total > d.limit as u64 {
        return Err(bad(
            FormatKind::Limit,
            &format!(
                "its parts make {total} bytes, over {} times its entry",
                format::MAX_DERIVED_RATIO
            ),
        ));
    }
    p.derived_ok.borrow_mut().insert(o, (total, height));
    Ok((total, height))
}

/// Checks that `off` is the start of a pool entry (and UTF-8 if `utf8`, 8 bytes if `wide`)
/// in this file's pool or a base's.
#[inline(always)]
fn check_pool_ref<'p>(
    c: &Chain<'p, '_>,
    pool: &'p Pool,
    off: u32,
    utf8: bool,
    wide: bool,
    at: usize,
    what: &str,
) -> Result<Entry<'p>> {
    let (p, o) = c
        .resolve(off, |s| s.pool, pool, |l| &l.pool)
        .unwrap_or((pool, u32::MAX));
    let entry = Entry {
        marks: &p.marks,
        at: o as usize,
    };
    let Some(is_utf8) = p.marks.start(entry.at) else {
        return Err(err(
            at,
            FormatKind::OutOfBounds,
            format!("{what}: pool offset {off} is not the start of an entry"),
        ));
    };
    if utf8 && !is_utf8 {
        return Err(err(
            at,
            FormatKind::BadUtf8,
            format!("{what}: pool entry at {off} is not UTF-8"),
        ));
    }
    if wide && entry.len(c, off) != 8 {
        return Err(err(
            at,
            FormatKind::BadEncoding,
            format!("{what}: pool entry at {off} is not 8 bytes"),
        ));
    }
    Ok(entry)
}

/// Checks that a version-4 index's widths are the narrowest that hold its entry numbers
/// and `widest`, the widest of its entries' fields (so an index has one encoding).
fn check_index_widths(idx: &crate::read::IndexLayout, widest: usize, what: &str) -> Result<()> {
    if idx.tag_w == 4 {
        return Ok(());
    }
    let entry_w = format::uint_width(idx.count);
    if usize::from(idx.entry_w) != entry_w || usize::from(idx.field_w) != widest {
        return Err(err(
            idx.slots_at - 2,
            FormatKind::BadIndex,
            format!(
                "{what} widths are {} and {}, the narrowest are {entry_w} and {widest}",
                idx.entry_w, idx.field_w
            ),
        ));
    }
    Ok(())
}

/// Checks the key table; returns each key name's length in bytes.
fn verify_keys(c: &Chain<'_, '_>, pool: &Pool) -> Result<Vec<u64>> {
    let raw = c.raw;
    let k = &raw.l().keys;
    let mut lens = Vec::with_capacity(k.count as usize);
    let mut widest = 1;
    for id in 0..k.count {
        let at = k
            .field_at(id, format::KEY_FIELDS, 0)
            .unwrap_or(k.entries_at);
        let off = raw
            .own_key_offset(id)
            .ok_or_else(|| err(at, FormatKind::Truncated, "key entry out of bounds"))?;
        widest = widest.max(format::uint_width(off));
        check_pool_ref(c, pool, off, true, false, at, "key name")?;
        let name = raw
            .own_key_name(id)
            .ok_or_else(|| err(at, FormatKind::OutOfBounds, "unreadable key name"))?;
        if raw.find_own_key(name, format::index_hash(name)) != Some(id) {
            return Err(err(
                at,
                FormatKind::BadIndex,
                format!(
                    "key {id} ({:?}) is not found by the key index (duplicate or misplaced)",
                    String::from_utf8_lossy(name)
                ),
            ));
        }
        if let Some(d) = raw.down()
            && std::str::from_utf8(name)
                .ok()
                .and_then(|n| d.find_key(n))
                .is_some()
        {
            return Err(err(
                at,
                FormatKind::BadOverlay,
                format!(
                    "key {:?} is already defined by the base",
                    String::from_utf8_lossy(name)
                ),
            ));
        }
        lens.push(name.len() as u64);
    }
    check_index_widths(k, widest, "key table")?;
    Ok(lens)
}

/// The byte length of key `k`'s name (combined key id).
fn key_len(c: &Chain<'_, '_>, own: &[u64], k: u32) -> Option<u64> {
    let (lens, o) = c.resolve(k, |s| s.key, own, |l| &l.key_lens[..])?;
    lens.get(o as usize).copied()
}

/// What the data pass needs to know about a shape.
struct ShapeInfo {
    /// Number of keys (slots of a map node of this shape).
    keys: usize,
    /// Total bytes of its key names (part of the walk cost of every map node of it).
    key_bytes: u64,
}

/// Checks every shape; returns its [`ShapeInfo`], indexed by shape id.
///
/// Shapes must tile the section in order (each starts where the previous one ends), so
/// the work here is linear in the section: no shape body can be checked twice.
fn verify_shapes(c: &Chain<'_, '_>, key_lens: &[u64]) -> Result<Vec<ShapeInfo>> {
    let raw = c.raw;
    let sec = raw.b.get(raw.l().shapes.clone()).ok_or_else(|| {
        err(
            raw.l().shapes.start,
            FormatKind::Truncated,
            "shape section out of bounds",
        )
    })?;
    let mut expect = 4 + raw.l().shape_count as usize * format::SHAPE_OFFSET_LEN;
    let mut shapes = Vec::new();
    let total_keys = raw.l().starts.key as usize + raw.l().keys.count as usize;
    let mut seen = vec![false; total_keys];
    for s in 0..raw.l().shape_count {
        let at = raw.l().shapes.start + 4 + s as usize * format::SHAPE_OFFSET_LEN;
        if format::u32_at(raw.b, at).map(|o| o as usize) != Some(expect) {
            return Err(err(
                at,
                FormatKind::BadEncoding,
                format!("shape {s} does not start at {expect}, where the previous shape ends"),
            ));
        }
        let shape = raw.shape(raw.l().starts.shape + s).ok_or_else(|| {
            err(
                at,
                FormatKind::Truncated,
                format!("shape {s} overruns the shape section"),
            )
        })?;
        expect = shape.table.as_ptr() as usize - sec.as_ptr() as usize + shape.table.len();
        let keys = shape.keys;
        for c in keys.chunks_exact(format::SHAPE_KEY_LEN) {
            let k = u32::from_le_bytes(c.try_into().unwrap_or_default()) as usize;
            match seen.get_mut(k) {
                None => {
                    return Err(err(
                        at,
                        FormatKind::OutOfBounds,
                        format!("shape {s} names key {k}, past the key table"),
                    ));
                }
                Some(true) => {
                    return Err(err(
                        at,
                        FormatKind::BadEncoding,
                        format!("shape {s} names key {k} twice"),
                    ));
                }
                Some(flag) => *flag = true,
            }
        }
        let mut bytes = 0u64;
        for ch in keys.chunks_exact(format::SHAPE_KEY_LEN) {
            let k = u32::from_le_bytes(ch.try_into().unwrap_or_default());
            seen[k as usize] = false;
            bytes += key_len(c, key_lens, k).unwrap_or(0);
        }
        shapes.push(ShapeInfo {
            keys: keys.len() / format::SHAPE_KEY_LEN,
            key_bytes: bytes,
        });
        // The slot table, if any, must map exactly the shape's keys to their slots.
        if !shape.table.is_empty() {
            let n = keys.len() / format::SHAPE_KEY_LEN;
            let filled = shape.table.iter().filter(|&&t| t != 0).count();
            let consistent = filled == n
                && keys
                    .chunks_exact(format::SHAPE_KEY_LEN)
                    .enumerate()
                    .all(|(i, c)| {
                        let k = u32::from_le_bytes(c.try_into().unwrap_or_default());
                        let entry = shape.table.get(k.wrapping_sub(shape.base) as usize);
                        entry.is_some_and(|&t| t as usize == i + 1)
                    });
            if !consistent {
                return Err(err(
                    at,
                    FormatKind::BadEncoding,
                    format!("shape {s} has a slot table that does not match its keys"),
                ));
            }
        }
    }
    if expect != sec.len() {
        return Err(err(
            raw.l().shapes.start + expect,
            FormatKind::BadEncoding,
            "bytes after the last shape",
        ));
    }
    Ok(shapes)
}

/// The [`ShapeInfo`] of shape `s` (combined id).
fn shape_info<'s>(c: &'s Chain<'_, '_>, own: &'s [ShapeInfo], s: u64) -> Option<&'s ShapeInfo> {
    let (shapes, o) = c.resolve(u32::try_from(s).ok()?, |s| s.shape, own, |l| &l.shapes[..])?;
    shapes.get(o as usize)
}

/// The data nodes of one file: a bit per byte offset marking where a node starts, with a
/// rank directory (nodes before each 64-offset word), and each node's walk weight in
/// offset order. Finding a node by offset is O(1): one bit test and one popcount, where a
/// binary search over the nodes missed the cache on every step (it was a fifth of
/// `verify`'s time).
struct Nodes {
    starts: Vec<u64>,
    /// `ranks[w]`: nodes that start before offset `64 * w` (filled up to the last node's
    /// word).
    ranks: Vec<u32>,
    weights: Vec<u32>,
}

impl Nodes {
    /// An empty table for a data section of `len` bytes.
    fn new(len: usize) -> Nodes {
        Nodes {
            starts: vec![0; len / 64 + 1],
            ranks: Vec::new(),
            weights: Vec::new(),
        }
    }

    /// Adds the node at `off` (after every node added so far) of walk weight `weight`.
    fn push(&mut self, off: u32, weight: u32) {
        let w = off as usize / 64;
        while self.ranks.len() <= w {
            // The nodes so far all start in earlier words.
            self.ranks.push(self.weights.len() as u32);
        }
        if let Some(word) = self.starts.get_mut(w) {
            *word |= 1 << (off % 64);
        }
        self.weights.push(weight);
    }

    /// The walk weight of the node starting at `off`, if one does.
    #[inline(always)]
    fn weight(&self, off: u32) -> Option<u64> {
        let w = off as usize / 64;
        let word = *self.starts.get(w)?;
        let bit = off % 64;
        if (word >> bit) & 1 == 0 {
            return None;
        }
        let rank = self.ranks.get(w)? + (word & ((1u64 << bit) - 1)).count_ones();
        self.weights.get(rank as usize).map(|&x| u64::from(x))
    }
}

/// A verified node anywhere in the chain: its header byte and walk weight.
#[inline(always)]
fn node_at(c: &Chain<'_, '_>, own: &Nodes, off: u32) -> Option<(u8, u64)> {
    let ((raw, nodes), o) = c.resolve(off, |s| s.data, (c.raw, own), |l| (l.raw, &l.nodes))?;
    let w = nodes.weight(o)?;
    Some((*raw.data()?.get(o as usize)?, w))
}

/// The data pass's view of the file: what a slot check needs.
struct DataCtx<'x, 'c, 'a> {
    c: &'x Chain<'c, 'a>,
    pool: &'x Pool,
    nodes: &'x Nodes,
}

impl DataCtx<'_, '_, '_> {
    /// Checks one slot of a node at combined offset `node_at`; returns the slot's walk
    /// weight below itself (value bytes, child cost) and its child's height (0: scalar).
    /// `pv` is the slot's payload widened to 4 bytes ([`format::widen_payload`]); its
    /// node's width is checked by the caller ([`check_width`]).
    #[inline(always)]
    fn slot(&self, t: u8, pv: u32, node_at: u32, slot_at: usize) -> Result<(u64, u8)> {
        let p = pv.to_le_bytes();
        Ok(match t {
            tag::NULL | tag::FALSE | tag::TRUE if pv != 0 => {
                return Err(err(
                    slot_at,
                    FormatKind::BadEncoding,
                    format!("slot tag {t} with non-zero payload"),
                ));
            }
            tag::NULL | tag::FALSE | tag::TRUE | tag::INT | tag::F32 => (0, 0),
            tag::INT64 | tag::F64 => {
                check_pool_ref(self.c, self.pool, pv, false, true, slot_at, "wide number")?;
                (0, 0)
            }
            tag::FSST | tag::COLD => (check_compressed(self.c, self.pool, t, pv, slot_at)?, 0),
            tag::COLD_DIRECT if self.c.raw.l().cold_direct => {
                // Its block's header is read here; the block pass decodes it, and checks
                // every string's boundaries in it.
                let cr = self.c.raw.cold_numbered(pv).ok_or_else(|| {
                    err(
                        slot_at,
                        FormatKind::OutOfBounds,
                        format!("cold string number {pv}: no such string in the chain"),
                    )
                })?;
                (cr.len as u64, 0)
            }
            tag::DERIVED if self.c.raw.l().derived => {
                (check_derived(self.c, self.pool, pv, slot_at, 1)?.0, 0)
            }
            // Two arms, so that each passes constants (an inlined check is specialised).
            tag::STR => {
                let entry = check_pool_ref(self.c, self.pool, pv, true, false, slot_at, "string")?;
                (entry.len(self.c, pv) as u64, 0)
            }
            tag::BYTES => {
                let entry = check_pool_ref(self.c, self.pool, pv, false, false, slot_at, "bytes")?;
                (entry.len(self.c, pv) as u64, 0)
            }
            tag::LIST | tag::MAP => {
                if pv >= node_at {
                    return Err(err(
                        slot_at,
                        FormatKind::OutOfBounds,
                        format!("reference to {pv} does not point backwards"),
                    ));
                }
                let (head, child) = node_at_checked(self.c, self.nodes, pv, slot_at)?;
                let want = if t == tag::LIST { node::LIST_BIT } else { 0 };
                let kind = head & (node::LIST_BIT | node::PATCH_BIT);
                if t == tag::MAP && kind == node::PATCH_BIT {
                    // Version 5: a nested map stored as a patch, if the file holding the
                    // patch node allows it (what a read of the slot asks).
                    if self.c.raw.map_at(pv, MAX_HEIGHT + 1).is_none() {
                        return Err(err(
                            slot_at,
                            FormatKind::BadEncoding,
                            format!(
                                "MAP slot refers to patch node {pv}, which its file's \
                                 version does not allow there (nested patches: version 5 on)"
                            ),
                        ));
                    }
                } else if kind != want {
                    return Err(err(
                        slot_at,
                        FormatKind::OutOfBounds,
                        format!("reference to {pv} points at a node of the wrong kind"),
                    ));
                }
                (child, head & node::HEIGHT_MASK)
            }
            t if (tag::STR_INLINE..=tag::STR_INLINE + tag::STR_INLINE_MAX).contains(&t) => {
                let len = (t - tag::STR_INLINE) as usize;
                if std::str::from_utf8(&p[..len]).is_err() || p[len..].iter().any(|&x| x != 0) {
                    return Err(err(
                        slot_at,
                        FormatKind::BadUtf8,
                        "inline string is not UTF-8 or not zero-padded",
                    ));
                }
                (len as u64, 0)
            }
            _ => {
                return Err(err(
                    slot_at,
                    FormatKind::BadEncoding,
                    format!("unknown slot tag {t}"),
                ));
            }
        })
    }
}

#[inline(always)]
fn node_at_checked(c: &Chain<'_, '_>, nodes: &Nodes, pv: u32, at: usize) -> Result<(u8, u64)> {
    node_at(c, nodes, pv).ok_or_else(|| {
        err(
            at,
            FormatKind::OutOfBounds,
            format!("reference to {pv} is not the start of a node"),
        )
    })
}

fn verify_data(c: &Chain<'_, '_>, pool: &Pool, shapes: &[ShapeInfo]) -> Result<Nodes> {
    let raw = c.raw;
    let data = raw.data().ok_or_else(|| {
        err(
            raw.l().data.start,
            FormatKind::Truncated,
            "data section out of bounds",
        )
    })?;
    let base = raw.l().data.start;
    let start = raw.l().starts.data;
    let limit = raw.l().walk_limit();
    let mut nodes = Nodes::new(data.len());
    let mut at = 0usize;
    while at < data.len() {
        let abs = base + at;
        // Combined offset of this node: fits, since the layout's totals were checked.
        let here = start + at as u32;
        let head = data[at];
        let height = head & node::HEIGHT_MASK;
        if height == 0 || height > MAX_HEIGHT {
            return Err(err(
                abs,
                FormatKind::Limit,
                format!("node height {height} out of 1..={MAX_HEIGHT}"),
            ));
        }
        let cx = DataCtx {
            c,
            pool,
            nodes: &nodes,
        };
        let (weight, end) = match head & (node::LIST_BIT | node::PATCH_BIT) {
            node::PATCH_BIT => verify_patch(&cx, shapes, data, at, here)?,
            kind if kind == node::LIST_BIT || kind == 0 => {
                let is_list = kind == node::LIST_BIT;
                let (head, used) = format::varint_at(data, at + 1)
                    .ok_or_else(|| err(abs + 1, FormatKind::Truncated, "truncated node header"))?;
                let (n, w) = raw.l().heads.split(head);
                // Walk cost of this node: key name bytes of its shape, then per slot.
                let mut weight = 0u64;
                let count = if is_list {
                    usize::try_from(n)
                        .map_err(|_| err(abs + 1, FormatKind::Limit, "list too long"))?
                } else {
                    // Every shape was parsed by verify_shapes: use its figures.
                    let shape = shape_info(c, shapes, n).ok_or_else(|| {
                        err(
                            abs + 1,
                            FormatKind::OutOfBounds,
                            format!("map node names shape {n}, past the shape table"),
                        )
                    })?;
                    weight += shape.key_bytes;
                    shape.keys
                };
                let slots_at = at + 1 + used;
                let slots = count
                    .checked_mul(w + 1)
                    .and_then(|len| format::slice_at(data, slots_at, len))
                    .ok_or_else(|| {
                        err(
                            abs,
                            FormatKind::Truncated,
                            format!("node of {count} slots overruns the data section"),
                        )
                    })?;
                let mut tallest = 0u8;
                let mut need = 1;
                // The tags, then the payloads, each read from `data` (one masked 4-byte
                // load where the data runs on past the node; `w` is in 1..=4).
                let pays_at = slots_at + count;
                for (i, &t) in slots[..count].iter().enumerate() {
                    let stored = format::uint_at(data, pays_at + i * w, w).unwrap_or(0);
                    let p = format::widen_payload(t, stored, w);
                    // Only an inline string can need more than `w` bytes: once a slot
                    // needs `w`, the others need not be measured (`need` stays exact).
                    if need < w || t >= tag::STR_INLINE {
                        need = need.max(format::payload_width(t, p));
                    }
                    let (cost, h) = cx.slot(t, p, here, base + slots_at + i)?;
                    weight += slot_walk_cost(0, 0) + cost;
                    tallest = tallest.max(h);
                }
                check_width(raw.l().heads.narrow(), w, need, abs + 1)?;
                if height != tallest + 1 {
                    return Err(err(
                        abs,
                        FormatKind::BadEncoding,
                        format!("node height {height}, expected {}", tallest + 1),
                    ));
                }
                (weight, slots_at + slots.len())
            }
            _ => {
                return Err(err(
                    abs,
                    FormatKind::BadEncoding,
                    "node header sets both the list and patch bits",
                ));
            }
        };
        if weight > limit {
            return Err(err(
                abs,
                FormatKind::Limit,
                format!(
                    "node has walk cost {weight} (values plus string bytes), more than the \
                     snapshot's walk limit {limit}"
                ),
            ));
        }
        // weight <= MAX_WALK = 2^24 was checked above, so it fits in a u32.
        nodes.push(at as u32, weight as u32);
        at = end;
    }
    Ok(nodes)
}

/// Checks the patch node at `at` (combined offset `here`); returns its walk weight (that
/// of the merged record) and where it ends.
fn verify_patch(
    cx: &DataCtx<'_, '_, '_>,
    shapes: &[ShapeInfo],
    data: &[u8],
    at: usize,
    here: u32,
) -> Result<(u64, usize)> {
    let c = cx.c;
    let abs = c.raw.l().data.start + at;
    if c.raw.l().overlay.is_none() {
        return Err(err(
            abs,
            FormatKind::BadOverlay,
            "patch node in a snapshot that is not an overlay",
        ));
    }
    let (height, base_off, w, mask_at) = c
        .raw
        .patch_head(data, at as u32)
        .ok_or_else(|| err(abs + 1, FormatKind::Truncated, "truncated patch node"))?;
    if base_off >= here {
        return Err(err(
            abs + 1,
            FormatKind::OutOfBounds,
            format!("patch base {base_off} does not point backwards"),
        ));
    }
    let (head, _) = node_at_checked(c, cx.nodes, base_off, abs + 1)?;
    if head & (node::LIST_BIT | node::PATCH_BIT) != 0 {
        return Err(err(
            abs + 1,
            FormatKind::OutOfBounds,
            format!("patch base {base_off} is not a map node"),
        ));
    }
    let base = c
        .raw
        .plain_map_at(base_off, MAX_HEIGHT + 1)
        .ok_or_else(|| {
            err(
                abs + 1,
                FormatKind::OutOfBounds,
                format!("patch base {base_off} is unreadable"),
            )
        })?;
    let n = base.len();
    if n > format::MAX_PATCH_SLOTS {
        return Err(err(
            abs + 1,
            FormatKind::Limit,
            format!(
                "patch base has {n} slots, more than {}",
                format::MAX_PATCH_SLOTS
            ),
        ));
    }
    let shape_bytes = {
        // The base node's shape: read its id again to charge its key names.
        let (owner, o) = c
            .resolve(base_off, |s| s.data, c.raw, |l| l.raw)
            .ok_or_else(|| {
                err(
                    abs + 1,
                    FormatKind::OutOfBounds,
                    "patch base outside the chain",
                )
            })?;
        let s = owner
            .data()
            .and_then(|d| format::varint_at(d, o as usize + 1))
            .map(|(head, _)| owner.l().heads.split(head).0)
            .unwrap_or(u64::MAX);
        shape_info(c, shapes, s).map_or(0, |i| i.key_bytes)
    };
    let mask_len = n.div_ceil(8);
    let mask_abs = c.raw.l().data.start + mask_at;
    let mask = format::slice_at(data, mask_at, mask_len).ok_or_else(|| {
        err(
            mask_abs,
            FormatKind::Truncated,
            "patch mask overruns the data section",
        )
    })?;
    let m = format::count_ones(mask) as usize;
    if m == 0 {
        return Err(err(
            mask_abs,
            FormatKind::BadOverlay,
            "patch replaces no slot",
        ));
    }
    if n % 8 != 0 && mask[mask_len - 1] >> (n % 8) != 0 {
        return Err(err(
            mask_abs,
            FormatKind::BadOverlay,
            format!("patch mask sets bits past the base's {n} slots"),
        ));
    }
    let own_at = mask_at + mask_len;
    let own = format::slice_at(data, own_at, m * (w + 1)).ok_or_else(|| {
        err(
            abs,
            FormatKind::Truncated,
            format!("patch of {m} slots overruns the data section"),
        )
    })?;
    let mut weight = shape_bytes;
    let mut tallest = 0u8;
    let mut j = 0;
    let mut need = 1;
    for i in 0..n {
        if mask[i / 8] & (1 << (i % 8)) != 0 {
            let (t, p) = format::slot_or_null(own, m, j, w);
            need = need.max(format::payload_width(t, p));
            let (cost, h) = cx.slot(t, p, here, c.raw.l().data.start + own_at + j)?;
            weight += slot_walk_cost(0, 0) + cost;
            tallest = tallest.max(h + 1);
            j += 1;
        } else {
            // A slot of the (verified, earlier) base node: O(1) with the node tables.
            let (t, p) = base.raw_slot(i);
            let (cost, _) = cx.slot(t, p, here, abs + 1)?;
            weight += slot_walk_cost(0, 0) + cost;
        }
    }
    check_width(c.raw.l().heads.narrow(), w, need, abs + 1)?;
    let expect = tallest.max(base.height());
    if height != expect {
        return Err(err(
            abs,
            FormatKind::BadEncoding,
            format!("patch height {height}, expected {expect}"),
        ));
    }
    Ok((weight, own_at + own.len()))
}

/// Checks a node's payload width `w` against `need`, the greatest
/// [`format::payload_width`] of its slots: a version-3 node's must be exactly that (every
/// slot fits, and the node has one encoding); an older node's is 4 and holds anything.
fn check_width(narrow: bool, w: usize, need: usize, at: usize) -> Result<()> {
    if narrow && w != need {
        return Err(err(
            at,
            FormatKind::BadEncoding,
            format!("node payload width {w}, but its slots need exactly {need}"),
        ));
    }
    Ok(())
}

/// Checks that record reference `rec` (of an id entry or a change, at byte `at`) is the
/// start of a map or patch node of this file or one below.
fn check_record_ref(c: &Chain<'_, '_>, nodes: &Nodes, rec: u32, at: usize) -> Result<()> {
    let kind = node_at(c, nodes, rec).map(|(h, _)| h & (node::LIST_BIT | node::PATCH_BIT));
    if !matches!(kind, Some(0 | node::PATCH_BIT)) || c.raw.record_at(rec).is_none() {
        return Err(err(
            at,
            FormatKind::OutOfBounds,
            format!("record offset {rec} is not the start of a map or patch node"),
        ));
    }
    Ok(())
}

fn verify_ids(c: &Chain<'_, '_>, pool: &Pool, nodes: &Nodes) -> Result<()> {
    let raw = c.raw;
    let ids = &raw.l().ids;
    // A version-1 overlay's first `changed` entries change base ids; a version-2
    // overlay's entries all add ids (its changes are in CHANGES).
    let changed = raw.l().own_first();
    let base = raw.l().overlay.and(raw.down());
    let mut removed = 0u32;
    let mut widest = 1;
    let rec_at = |e: u32| {
        ids.field_at(e, format::ID_FIELDS, 1)
            .unwrap_or(ids.entries_at)
    };
    for e in 0..ids.count {
        let at = ids
            .field_at(e, format::ID_FIELDS, 0)
            .unwrap_or(ids.entries_at);
        let id_off = raw
            .id_pool_offset(e)
            .ok_or_else(|| err(at, FormatKind::Truncated, "id entry out of bounds"))?;
        check_pool_ref(c, pool, id_off, true, false, at, "id")?;
        let id = raw
            .id_at(e)
            .ok_or_else(|| err(at, FormatKind::OutOfBounds, "unreadable id"))?;
        if raw.find_id(id) != Some(e) {
            return Err(err(
                at,
                FormatKind::BadIndex,
                format!("id {id:?} is not found by the id index (duplicate or misplaced)"),
            ));
        }
        let rec = raw
            .id_record_offset(e)
            .ok_or_else(|| err(rec_at(e), FormatKind::Truncated, "id entry out of bounds"))?;
        widest = widest.max(format::uint_width(id_off).max(format::uint_width(rec)));
        if let Some(base) = base {
            let in_base = base.contains(id);
            if e < changed && !in_base {
                return Err(err(
                    at,
                    FormatKind::BadOverlay,
                    format!("overlay changes or removes {id:?}, which its base does not have"),
                ));
            }
            if e >= changed && in_base {
                return Err(err(
                    at,
                    FormatKind::BadOverlay,
                    format!("overlay adds {id:?}, which its base already has"),
                ));
            }
            if rec == TOMBSTONE {
                if e >= changed {
                    return Err(err(
                        rec_at(e),
                        FormatKind::BadOverlay,
                        format!("added id {id:?} is a tombstone"),
                    ));
                }
                removed += 1;
                continue;
            }
        }
        check_record_ref(c, nodes, rec, rec_at(e))?;
    }
    check_index_widths(ids, widest, "id index")?;
    if let Some(base) = base {
        removed += verify_changes(c, nodes, base)?;
    }
    if let (Some(o), Some(base)) = (raw.l().overlay, raw.base()) {
        let expect = (base.len() as u64 + (ids.count - changed) as u64).checked_sub(removed as u64);
        if removed != o.removed || expect != Some(o.records as u64) {
            return Err(err(
                raw.l().header.sections[5].offset as usize + 20,
                FormatKind::BadOverlay,
                format!(
                    "overlay counts {} records and {} removals, but its entries give {expect:?} and {removed}",
                    o.records, o.removed
                ),
            ));
        }
    }
    Ok(())
}

/// Checks a version-2 overlay's CHANGES section (FORMAT.md "CHANGES"): no bit set past
/// `ordinal_end`, the rank directory, the count; each set bit is the home ordinal of an id
/// the base has (and whose home it is), and its reference a map or patch node or a
/// tombstone. Returns the number of tombstones. Nothing for other files.
fn verify_changes(c: &Chain<'_, '_>, nodes: &Nodes, base: Raw<'_>) -> Result<u32> {
    let raw = c.raw;
    let Some(ch) = raw.l().changes else {
        return Ok(0);
    };
    let word = |i: usize| {
        let at = ch.words_at + 8 * i;
        format::u64_at(raw.b, at)
            .ok_or_else(|| err(at, FormatKind::Truncated, "changes bitset out of bounds"))
    };
    let words = ch.words as usize;
    if ch.ordinal_end % 64 != 0 && words > 0 {
        let last = word(words - 1)?;
        if last >> (ch.ordinal_end % 64) != 0 {
            return Err(err(
                ch.words_at + 8 * (words - 1),
                FormatKind::BadOverlay,
                format!(
                    "changes bitset has bits set at or past its end, ordinal {}",
                    ch.ordinal_end
                ),
            ));
        }
    }
    let mut rank = 0u32;
    let mut removed = 0u32;
    for i in 0..words {
        if i % format::RANK_BLOCK_WORDS == 0 {
            let at = ch.ranks_at + 4 * (i / format::RANK_BLOCK_WORDS);
            let stored = format::u32_at(raw.b, at)
                .ok_or_else(|| err(at, FormatKind::Truncated, "rank directory out of bounds"))?;
            if stored != rank {
                return Err(err(
                    at,
                    FormatKind::BadOverlay,
                    format!(
                        "rank directory says {stored} changes before word {i}, the bitset {rank}"
                    ),
                ));
            }
        }
        let mut w = word(i)?;
        while w != 0 {
            let o = (i * 64) as u32 + w.trailing_zeros();
            w &= w - 1;
            if rank >= ch.count {
                return Err(err(
                    ch.words_at + 8 * i,
                    FormatKind::BadOverlay,
                    format!("changes bitset has more than its {} set bits", ch.count),
                ));
            }
            let ref_at = ch.refs_at + 4 * rank as usize;
            rank += 1;
            // The id whose home ordinal `o` is: an own entry of a level below.
            let id = c
                .below
                .iter()
                .rev()
                .find(|l| l.raw.l().ordinal_start <= o)
                .and_then(|l| {
                    let e = (o - l.raw.l().ordinal_start).checked_add(l.raw.l().own_first())?;
                    l.raw.id_at(e)
                })
                .ok_or_else(|| {
                    err(
                        ch.words_at + 8 * i,
                        FormatKind::BadOverlay,
                        format!("changes ordinal {o}, which no id of the base has"),
                    )
                })?;
            let h = format::index_hash(id.as_bytes());
            let home = base
                .home(id.as_bytes(), h)
                .and_then(|(l, e)| l.own_ordinal(e));
            if home != Some(o) || !base.contains(id) {
                return Err(err(
                    ch.words_at + 8 * i,
                    FormatKind::BadOverlay,
                    format!(
                        "overlay changes or removes {id:?} (ordinal {o}), which its base does not have there"
                    ),
                ));
            }
            let rec = format::u32_at(raw.b, ref_at)
                .ok_or_else(|| err(ref_at, FormatKind::Truncated, "change out of bounds"))?;
            if rec == TOMBSTONE {
                removed += 1;
            } else {
                check_record_ref(c, nodes, rec, ref_at)?;
            }
        }
    }
    if rank != ch.count {
        return Err(err(
            ch.words_at,
            FormatKind::BadOverlay,
            format!(
                "changes bitset has {rank} set bits, the section counts {}",
                ch.count
            ),
        ));
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `Marks` give back every entry's UTF-8 flag and length (the length prefix's
    /// width changes at 128 and 16,384 bytes; entries cross 64-offset words and end the
    /// pool), and nothing for an offset that is not an entry's start.
    #[test]
    fn marks_give_each_entry_its_length() {
        let lens = [
            0usize, 1, 5, 63, 64, 65, 126, 127, 128, 129, 200, 0, 3, 16_383, 16_384, 16_385, 7,
            300, 1, 2,
        ];
        let mut pool = Vec::new();
        for (i, &n) in lens.iter().enumerate() {
            format::put_varint(&mut pool, n as u64);
            // Every third entry is not UTF-8.
            let byte = if i % 3 == 2 && n > 0 { 0xFF } else { b'a' };
            pool.extend(std::iter::repeat_n(byte, n));
        }
        let mut marks = Marks::new(pool.len());
        let mut want = Vec::new();
        for e in format::pool_entries(&pool) {
            let (at, bytes) = e.expect("a well-formed pool");
            let utf8 = std::str::from_utf8(bytes).is_ok();
            marks.set(at, utf8);
            want.push((at, utf8, bytes.len()));
        }
        assert_eq!(want.len(), lens.len());
        for (k, &(at, utf8, len)) in want.iter().enumerate() {
            // The length comes from the marks when the next entry (or the pool's end)
            // is within the entry's word or the next one.
            let near = match want.get(k + 1) {
                Some(next) => next.0 / 64 <= at / 64 + 1,
                None => pool.len() <= 64 * (at / 64 + 2),
            };
            assert_eq!(marks.start(at), Some(utf8), "entry at {at}");
            assert_eq!(marks.len(at), near.then_some(len), "entry at {at}");
        }
        let starts: Vec<usize> = want.iter().map(|w| w.0).collect();
        for at in 0..pool.len() + 70 {
            if !starts.contains(&at) {
                assert_eq!(marks.start(at), None, "offset {at} starts no entry");
            }
        }
    }

    /// `Nodes::weight` finds exactly the nodes pushed, across and within words, and
    /// nothing between them.
    #[test]
    fn nodes_find_each_node_by_offset() {
        let offs = [0u32, 1, 9, 63, 64, 65, 127, 128, 400, 1000, 1001, 4095];
        let mut nodes = Nodes::new(4096);
        for (i, &o) in offs.iter().enumerate() {
            nodes.push(o, 10 * i as u32 + 7);
        }
        for o in 0..4200 {
            let want = offs.iter().position(|&x| x == o).map(|i| 10 * i as u64 + 7);
            assert_eq!(nodes.weight(o), want, "offset {o}");
        }
    }

    /// `is_utf8` agrees with the standard library at every length and every position of
    /// a non-ASCII piece (in the eight-byte chunks, across them and in the tail): bad
    /// bytes, cut sequences, and characters of two, three and four bytes.
    #[test]
    fn is_utf8_agrees_with_std() {
        let pieces: [&[u8]; 8] = [
            &[0xFF],
            &[0x80],
            &[0xC3],
            &[0xE2, 0x82],
            "é".as_bytes(),
            "€".as_bytes(),
            "😀".as_bytes(),
            &[0xF0, 0x9F, 0x98],
        ];
        for len in 0..40 {
            let ascii = vec![b'a'; len];
            assert!(is_utf8(&ascii));
            for at in 0..len {
                for piece in pieces {
                    let mut b = ascii.clone();
                    let end = (at + piece.len()).min(len);
                    b[at..end].copy_from_slice(&piece[..end - at]);
                    let want = std::str::from_utf8(&b).is_ok();
                    assert_eq!(is_utf8(&b), want, "{len} {at} {piece:?}");
                }
            }
        }
    }

    /// FSST strings are decoded whole and checked as UTF-8: a short one (decoded with
    /// room for 8 bytes a code) and one of more than 4,096 codes (whose length is counted
    /// first). Two codes overwritten by `ESCAPE 0xFF`, where the codes still decode, put a
    /// 0xFF byte in the text, and `verify` must refuse it as not UTF-8.
    #[cfg(feature = "fuzzing")]
    #[test]
    fn fsst_strings_that_decode_to_bad_utf8_are_refused() {
        use crate::{Compression, ValueRef};
        let word = |i: usize| ["fraction", "numerator", "denominator", "pizza", "slice"][i % 5];
        let note = |i: usize, n: usize| -> String {
            let words: Vec<_> = (0..n).map(|k| word(i / (k % 4 + 1) + k)).collect();
            format!("note {i}: {}", words.join(" "))
        };
        let mut b = crate::SnapshotBuilder::new();
        b.set_compression(Compression::Auto);
        for i in 0..1000 {
            b.insert(&format!("r{i}"), &serde_json::json!({ "note": note(i, 8) }))
                .unwrap();
        }
        // About 70 KB: the field's mean stays below the cold threshold.
        b.insert("long", &serde_json::json!({ "note": note(7, 8000) }))
            .unwrap();
        let bytes = b.to_bytes().unwrap();
        let snap = Snapshot::from_bytes(bytes.clone()).unwrap();
        snap.verify().unwrap();
        for (id, min_codes) in [("r5", 3), ("long", 4097)] {
            let rec = snap.get(id).unwrap();
            let Some(ValueRef::Str(s)) = rec.get("note") else {
                panic!("{id}: no note");
            };
            let Some((tag::FSST, off)) = s.stored() else {
                panic!("{id}: not an FSST string");
            };
            let (table, codes) = snap.raw().fsst_entry(off).unwrap();
            assert!(codes.len() >= min_codes, "{id}: {} codes", codes.len());
            // Where the codes sit in the file; the first place from the middle on where
            // the edited codes still decode (not at an escape's second byte).
            let at = codes.as_ptr() as usize - snap.raw().b.as_ptr() as usize;
            let edited = (codes.len() / 2..codes.len() - 1)
                .map(|k| {
                    let mut c = codes.to_vec();
                    c[k..k + 2].copy_from_slice(&[crate::fsst::ESCAPE, 0xFF]);
                    (k, c)
                })
                .find(|(_, c)| table.decoded_len(c).is_some())
                .map(|(k, _)| k)
                .expect("a place where the edited codes decode");
            let mut bad = bytes.clone();
            bad[at + edited..at + edited + 2].copy_from_slice(&[crate::fsst::ESCAPE, 0xFF]);
            let bad = crate::check::fix_checksums(&bad).unwrap();
            match Snapshot::from_bytes(bad).unwrap().verify() {
                Err(Error::Format { kind, what, .. }) => {
                    assert_eq!(kind, FormatKind::BadEncoding, "{id}: {what}");
                    assert!(what.contains("not UTF-8"), "{id}: {what}");
                }
                other => panic!("{id}: expected a BadEncoding error, got {other:?}"),
            }
        }
    }
}
