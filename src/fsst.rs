//! FSST string compression ("Fast Static Symbol Table", Boncz, Neumann and Leis, VLDB
//! 2020): a table of up to 255 symbols of 1 to 8 bytes; a compressed string is a sequence
//! of one-byte codes, code `c < n` standing for symbol `c` and code [`ESCAPE`] (255) for the
//! literal byte that follows it. Each string is compressed on its own, so any one of them
//! decodes without its neighbours (random access per string).
//!
//! Two halves:
//!
//! * **Read side** ([`Table`]): borrows a table from file bytes ([`Table::parse`], O(1))
//!   and decodes codes from the file. Both are untrusted: every method is safe Rust, is
//!   bounds-checked, never panics and treats malformed input (a code in `n..=254`, an
//!   escape as the last byte, a symbol length outside `1..=8`) as `None` / `false`. Nothing
//!   on it allocates except [`Table::decode_into`], into the caller's `Vec`.
//! * **Build side** ([`Trained`]): trains a table on sample strings and compresses with it.
//!
//! ## Why our own trainer rather than the `fsst-rs` crate
//!
//! `fsst-rs` 0.7 was evaluated first. It exposes its symbols and lengths and trains
//! deterministically, but: it needs Rust 1.86 (this crate's `rust-version` is 1.85), its
//! compressor is `unsafe` pointer code guarded by `assert!`s (a panic at build time is
//! still a failure we would rather rule out by construction), it derives a symbol's length
//! from its trailing zero bytes (so symbols ending in a NUL byte are not representable)
//! and it would bring a dependency (and its decoder, which must not be used here) for what
//! is ~200 lines. So [`Trained::train`] is the paper's algorithm written here in safe Rust:
//!
//! 1. A deterministic sample of at most [`SAMPLE_CAP`] bytes: all the strings if they fit,
//!    otherwise pieces of at most [`SAMPLE_LINE`] bytes drawn with a fixed-seed generator.
//! 2. Ten generations. Each compresses (part of, growing to all of) the sample with the
//!    current table (greedy longest match), counting how often every code and every pair
//!    of successive codes occurs (an escaped byte counts as a pseudo-code of its own).
//!    Every code is a candidate, and so is the concatenation (cut to 8 bytes) of every
//!    successive pair; a candidate's gain is its count times its length (a single byte's
//!    times 8: fewer escapes, the paper's reference implementation's heuristic). The 255
//!    candidates with the highest gain (ties broken by length, then bytes) are the next
//!    table.
//! 3. [`Trained::compress_into`] parses each string optimally: the fewest code bytes
//!    for the table (dynamic programming over the string's positions; of equally short
//!    choices, an escape before any symbol, then the longer symbol), never more than the
//!    greedy longest match that training uses. On the content-site corpus this and the
//!    five extra generations (the paper uses five) make the pool ~2% smaller, for ~19%
//!    more build CPU (BENCHMARKS.md).
//!
//! Same samples in, same table bytes out: no hash-map order, no randomness, no threads.
//!
//! ## On-disk table
//!
//! ```text
//! n:     u8            number of symbols, 0..=255
//! lens:  n x u8        symbol i's length, each must be 1..=8
//! syms:  n x 8 bytes   symbol i's bytes, zero-padded to 8
//! ```

use std::collections::HashMap;

/// The escape code: the byte after it is a literal.
pub(crate) const ESCAPE: u8 = 255;

/// The most sample bytes training looks at.
#[allow(dead_code)]
pub(crate) const SAMPLE_CAP: usize = 256 * 1024;

/// The longest piece of one string that goes into a sample larger than [`SAMPLE_CAP`].
#[allow(dead_code)]
pub(crate) const SAMPLE_LINE: usize = 512;

/// The most symbols a table holds (code 255 is the escape).
const MAX_SYMBOLS: usize = 255;

/// Bytes of the stack buffer [`Table::decode_str_chunks`] decodes through.
const CHUNK: usize = 256;

/// Strings of at most this many codes are decoded by [`Table::decode_into`] through a
/// stack buffer of the upper bound (8 bytes a code), then copied.
const STACK_CODES: usize = 64;

/// Longer strings of at most this many codes are decoded by [`Table::decode_into`] into
/// room for the upper bound in `out` (zero-filled, then truncated: faster than counting
/// first, `tests::speed`); longer ones count their length first (no 8x over-reservation).
const BOUND_CODES: usize = 4096;

/// A symbol table borrowed from file bytes: `n` lengths and `n` zero-padded 8-byte symbols.
#[derive(Clone, Copy, Debug)]
#[allow(dead_code)]
pub(crate) struct Table<'a> {
    /// Symbol `i`'s length (`lens.len()` is `n`).
    lens: &'a [u8],
    /// Symbol `i`'s bytes at `8 * i`, zero-padded (`syms.len()` is `8 * n`).
    syms: &'a [u8],
    /// Every length is known to be in 1..=8 ([`Table::cut_checked`]): the decoders skip
    /// their check per code.
    lens_ok: bool,
}

#[allow(dead_code)]
impl<'a> Table<'a> {
    /// The table starting at byte `at` of `b` (only bounds are checked here: n, lens and
    /// syms must be inside `b`). O(1).
    #[inline]
    pub fn parse(b: &'a [u8], at: usize) -> Option<Table<'a>> {
        Table::cut(b, at.checked_add(1)?, usize::from(*b.get(at)?))
    }

    /// The table of `n` symbols whose lengths start at byte `lens_at` of `b` (the byte
    /// after its count), its padded symbols after them; `None` unless both are inside `b`.
    #[inline]
    pub fn cut(b: &'a [u8], lens_at: usize, n: usize) -> Option<Table<'a>> {
        let syms_at = lens_at.checked_add(n)?;
        let end = syms_at.checked_add(n.checked_mul(8)?)?;
        Some(Table {
            lens: b.get(lens_at..syms_at)?,
            syms: b.get(syms_at..end)?,
            lens_ok: false,
        })
    }

    /// [`cut`](Self::cut) for a table whose lengths the caller has checked to be in
    /// 1..=8 ([`lens_ok`](Self::lens_ok) of the same bytes): a snapshot checks its tables'
    /// lengths once, at open, so that decoding a code costs one check fewer.
    #[inline]
    pub fn cut_checked(b: &'a [u8], lens_at: usize, n: usize) -> Option<Table<'a>> {
        Some(Table {
            lens_ok: true,
            ..Table::cut(b, lens_at, n)?
        })
    }

    /// Whether every symbol length is in 1..=8 (what [`validate`](Self::validate) checks
    /// of the lengths; the padding is not looked at). O(n).
    pub fn lens_ok(&self) -> bool {
        // `len - 1 < 8` for every length, as one OR over all of them (no early exit, so
        // it runs as a few vector instructions: a snapshot checks its tables at open).
        self.lens
            .iter()
            .fold(0u8, |acc, &len| acc | len.wrapping_sub(1))
            < 8
    }

    /// Number of symbols.
    pub fn len(&self) -> usize {
        self.lens.len()
    }

    /// Whether the table has no symbols (every byte is escaped).
    pub fn is_empty(&self) -> bool {
        self.lens.is_empty()
    }

    /// Bytes the table occupies: 1 + 9n.
    pub fn encoded_len(&self) -> usize {
        1 + self.lens.len() + self.syms.len()
    }

    /// Full check (for verify): every length in 1..=8 and the padding bytes past each
    /// length are 0.
    pub fn validate(&self) -> bool {
        self.lens
            .iter()
            .zip(self.syms.chunks_exact(8))
            .all(|(&len, sym)| {
                (1..=8).contains(&len) && sym[usize::from(len)..].iter().all(|&b| b == 0)
            })
    }

    /// Symbol `c`'s bytes (padded to 8) and length, or `None` if `c` is not a symbol code
    /// or its length is outside 1..=8.
    #[inline(always)]
    fn symbol(&self, c: u8) -> Option<([u8; 8], usize)> {
        let i = usize::from(c);
        let len = usize::from(*self.lens.get(i)?);
        let sym: [u8; 8] = self.syms.get(i * 8..i * 8 + 8)?.try_into().ok()?;
        if len.wrapping_sub(1) >= 8 {
            return None;
        }
        Some((sym, len))
    }

    /// Length of the decoded string, or None if `codes` is malformed (bad code, trailing
    /// escape, a symbol length outside 1..=8). No allocation.
    pub fn decoded_len(&self, codes: &[u8]) -> Option<usize> {
        let mut total = 0usize;
        let mut i = 0;
        while let Some(&c) = codes.get(i) {
            if c == ESCAPE {
                codes.get(i + 1)?;
                total += 1;
                i += 2;
            } else {
                let len = usize::from(*self.lens.get(usize::from(c))?);
                if len.wrapping_sub(1) >= 8 {
                    return None;
                }
                total += len;
                i += 1;
            }
        }
        Some(total)
    }

    /// The symbol lengths and the symbols (8 bytes each), both cut to the symbols both
    /// hold (`parse` makes them agree): a loop that checks a code `c < lens.len()` once
    /// may then index both arrays without another bounds check. (`parse` reads the count
    /// from one byte, so the escape code, 255, is never a symbol: testing
    /// `c < lens.len()` before the escape is the same as after.)
    #[inline(always)]
    fn arrays(&self) -> (&'a [u8], &'a [u8]) {
        let n = self.lens.len().min(self.syms.len() / 8);
        (&self.lens[..n], &self.syms[..8 * n])
    }

    /// Decodes `codes[*ci..]` into `buf[*pos..]`, advancing both, until the codes end or
    /// the next piece does not fit (then `*ci < codes.len()`). `None` on a malformed code
    /// (`*ci` and `*pos` are then meaningless). Writes whole 8-byte symbols while 8 bytes
    /// of room are left, exact lengths after.
    #[inline(always)]
    fn fill(&self, codes: &[u8], ci: &mut usize, buf: &mut [u8], pos: &mut usize) -> Option<()> {
        if self.lens_ok {
            self.fill_with::<false>(codes, ci, buf, pos)
        } else {
            self.fill_with::<true>(codes, ci, buf, pos)
        }
    }

    /// [`fill`](Self::fill), checking each symbol length it meets if `CHECK_LENS`.
    #[inline(always)]
    fn fill_with<const CHECK_LENS: bool>(
        &self,
        codes: &[u8],
        ci: &mut usize,
        buf: &mut [u8],
        pos: &mut usize,
    ) -> Option<()> {
        let (mut i, mut p) = (*ci, *pos);
        // One comparison checks a code against both arrays (see `arrays`), and
        // the compiler drops the bounds checks of the stores below (`p <= last2`,
        // `p <= last`): 12 instructions a code in the two-code loop for a table checked
        // at open, where one code a turn with its length check took 18 and reading each
        // array through `symbol` 23.
        let (lens, syms) = self.arrays();
        let n = lens.len();
        // Whole 8-byte stores while 8 bytes of room are left (`p <= last`).
        if let Some(last) = buf.len().checked_sub(8) {
            // The codes left as a shrinking slice: no index to keep beside it.
            let mut rest = codes.get(i..)?;
            // Two symbols a turn while 16 bytes of room are left.
            if let Some(last2) = last.checked_sub(8) {
                while let [c0, c1, tail @ ..] = rest {
                    let (c0, c1) = (usize::from(*c0), usize::from(*c1));
                    if p > last2 || c0 >= n || c1 >= n {
                        break;
                    }
                    let (l0, l1) = (usize::from(lens[c0]), usize::from(lens[c1]));
                    if CHECK_LENS && (l0.wrapping_sub(1) >= 8 || l1.wrapping_sub(1) >= 8) {
                        return None;
                    }
                    // `min(8)`: a no-op for lengths checked here or at open, and what
                    // keeps the second store within `buf` if the bytes checked at open
                    // are not the bytes read now (an `AsRef` that changes its answer).
                    buf[p..p + 8].copy_from_slice(&syms[8 * c0..8 * c0 + 8]);
                    let q = p + l0.min(8);
                    buf[q..q + 8].copy_from_slice(&syms[8 * c1..8 * c1 + 8]);
                    p = q + l1;
                    rest = tail;
                }
            }
            while let [c, tail @ ..] = rest {
                if p > last {
                    break;
                }
                let c = usize::from(*c);
                if c < n {
                    let len = usize::from(lens[c]);
                    if CHECK_LENS && len.wrapping_sub(1) >= 8 {
                        return None;
                    }
                    buf[p..p + 8].copy_from_slice(&syms[8 * c..8 * c + 8]);
                    p += len;
                    rest = tail;
                } else if c == usize::from(ESCAPE) {
                    let [b, tail @ ..] = tail else {
                        return None;
                    };
                    buf[p] = *b;
                    p += 1;
                    rest = tail;
                } else {
                    return None;
                }
            }
            i = codes.len() - rest.len();
        }
        while let Some(&c) = codes.get(i) {
            if c == ESCAPE {
                let b = *codes.get(i + 1)?;
                let Some(dst) = buf.get_mut(p) else {
                    break;
                };
                *dst = b;
                p += 1;
                i += 2;
            } else {
                let (sym, len) = self.symbol(c)?;
                let Some(dst) = buf.get_mut(p..p + len) else {
                    break;
                };
                dst.copy_from_slice(&sym[..len]);
                p += len;
                i += 1;
            }
        }
        // Only a length changed after open can push `p` past `buf` (a checked one moves
        // it at most to `buf.len()`): refuse it, as a malformed code.
        if p > buf.len() {
            return None;
        }
        *ci = i;
        *pos = p;
        Some(())
    }

    /// Appends the decoded bytes to `out`. On malformed input returns None and leaves
    /// `out` as it was. Short strings (at most [`BOUND_CODES`] codes) get room for 8 bytes
    /// a code at once and whole-symbol stores; longer ones count their length first (one
    /// extra pass, but no over-reservation).
    pub fn decode_into(&self, codes: &[u8], out: &mut Vec<u8>) -> Option<()> {
        if codes.len() <= STACK_CODES {
            return self.decode_into_stack(codes, out);
        }
        self.decode_into_by(codes, out, codes.len() <= BOUND_CODES)
    }

    /// [`Table::decode_into`] for at most [`STACK_CODES`] codes: through a stack buffer,
    /// then one copy (cheaper than zero-filling the upper bound in `out`).
    #[inline(always)]
    fn decode_into_stack(&self, codes: &[u8], out: &mut Vec<u8>) -> Option<()> {
        let mut buf = [0u8; STACK_CODES * 8];
        let (mut ci, mut pos) = (0, 0);
        self.fill(codes, &mut ci, &mut buf, &mut pos)?;
        if ci < codes.len() {
            return None;
        }
        out.extend_from_slice(buf.get(..pos)?);
        Some(())
    }

    /// [`Table::decode_into`], with room for the upper bound (`by_bound`) or for the
    /// counted length (measured against each other in `tests::speed`).
    #[inline(always)]
    fn decode_into_by(&self, codes: &[u8], out: &mut Vec<u8>, by_bound: bool) -> Option<()> {
        let old = out.len();
        let room = if by_bound {
            codes.len() * 8
        } else {
            // Slack for whole-symbol stores up to the end.
            self.decoded_len(codes)?.checked_add(7)?
        };
        out.resize(old.checked_add(room)?, 0);
        let (mut ci, mut pos) = (0, 0);
        let done = self.fill(codes, &mut ci, &mut out[old..], &mut pos);
        if done.is_some() && ci == codes.len() {
            out.truncate(old + pos);
            Some(())
        } else {
            out.truncate(old);
            None
        }
    }

    /// Decodes into `buf`, returning bytes written, or None if malformed or `buf` is too
    /// small. No allocation.
    pub fn decode_to_slice(&self, codes: &[u8], buf: &mut [u8]) -> Option<usize> {
        let (mut ci, mut pos) = (0, 0);
        self.fill(codes, &mut ci, buf, &mut pos)?;
        if ci < codes.len() {
            // Full: still report malformed codes as such (same answer either way).
            return None;
        }
        Some(pos)
    }

    /// Whether the decoded string equals `s`, without allocating (stops at the first
    /// difference). false if malformed.
    ///
    /// As in [`fill`](Self::fill), a code is checked once against both arrays; while 8
    /// bytes of `s` are left, a symbol is compared as one masked word (no `memcmp` call
    /// per code).
    pub fn eq_bytes(&self, codes: &[u8], s: &[u8]) -> bool {
        if self.lens_ok {
            self.eq_bytes_with::<false>(codes, s)
        } else {
            self.eq_bytes_with::<true>(codes, s)
        }
    }

    /// [`eq_bytes`](Self::eq_bytes), checking each symbol length it meets if `CHECK_LENS`.
    #[inline(always)]
    fn eq_bytes_with<const CHECK_LENS: bool>(&self, codes: &[u8], s: &[u8]) -> bool {
        let (lens, syms) = self.arrays();
        let n = lens.len();
        let mut p = 0usize;
        let mut i = 0;
        while let Some(&c) = codes.get(i) {
            let c = usize::from(c);
            if c < n {
                let len = usize::from(lens[c]);
                if CHECK_LENS && len.wrapping_sub(1) >= 8 {
                    return false;
                }
                let sym = &syms[8 * c..8 * c + 8];
                let same = match (
                    s.get(p..).and_then(<[u8]>::first_chunk::<8>),
                    sym.first_chunk::<8>(),
                ) {
                    (Some(have), Some(sym)) => {
                        let diff = u64::from_le_bytes(*have) ^ u64::from_le_bytes(*sym);
                        // `mask(len)` without its branch: `len` is in 1..=8 here (the
                        // branch cost 6% more instructions on `hot_reads eq`).
                        // `& 63`: a no-op for checked lengths, and no shift overflow
                        // for a length changed after open (see `fill_with`).
                        diff & (u64::MAX >> (64usize.wrapping_sub(8 * len) & 63)) == 0
                    }
                    _ => matches!(
                        (s.get(p..p + len), sym.get(..len)),
                        (Some(have), Some(sym)) if have == sym
                    ),
                };
                if !same {
                    return false;
                }
                p += len;
                i += 1;
            } else if c == usize::from(ESCAPE) {
                let (Some(&b), Some(&want)) = (codes.get(i + 1), s.get(p)) else {
                    return false;
                };
                if b != want {
                    return false;
                }
                p += 1;
                i += 2;
            } else {
                return false;
            }
        }
        p == s.len()
    }

    /// Decodes as UTF-8 text piece by piece through a 256-byte stack buffer, calling `f`
    /// with each valid, non-empty `&str` piece (pieces never split a char: an incomplete
    /// trailing char is carried over to the next piece). Returns Ok(true) if the whole
    /// string decoded and was valid UTF-8, Ok(false) if malformed codes or invalid UTF-8
    /// (some pieces may already have been passed to f), Err(e) if f failed. No heap
    /// allocation.
    pub fn decode_str_chunks<E>(
        &self,
        codes: &[u8],
        mut f: impl FnMut(&str) -> Result<(), E>,
    ) -> Result<bool, E> {
        let mut buf = [0u8; CHUNK];
        let mut carry = 0usize;
        let mut ci = 0usize;
        loop {
            let mut pos = carry;
            if self.fill(codes, &mut ci, &mut buf, &mut pos).is_none() {
                return Ok(false);
            }
            let end = ci >= codes.len();
            let filled = &buf[..pos];
            let (valid, rest) = match std::str::from_utf8(filled) {
                Ok(s) => (s, 0),
                Err(e) => {
                    // An invalid sequence, or an incomplete char with nothing to follow.
                    if e.error_len().is_some() || end {
                        match std::str::from_utf8(&filled[..e.valid_up_to()]) {
                            Ok(s) if !s.is_empty() => f(s)?,
                            _ => {}
                        }
                        return Ok(false);
                    }
                    let up_to = e.valid_up_to();
                    let Ok(s) = std::str::from_utf8(&filled[..up_to]) else {
                        return Ok(false);
                    };
                    (s, pos - up_to)
                }
            };
            if !valid.is_empty() {
                f(valid)?;
            }
            if end {
                return Ok(true);
            }
            // At most 3 bytes of an incomplete char: move them to the front.
            buf.copy_within(pos - rest..pos, 0);
            carry = rest;
        }
    }
}

/// A symbol as a little-endian word, zero past its length.
#[allow(dead_code)]
fn word(bytes: &[u8]) -> u64 {
    let mut w = [0u8; 8];
    let n = bytes.len().min(8);
    w[..n].copy_from_slice(&bytes[..n]);
    u64::from_le_bytes(w)
}

/// The mask of a symbol word's first `len` bytes (`len` in 1..=8).
#[allow(dead_code)]
fn mask(len: usize) -> u64 {
    if len >= 8 {
        u64::MAX
    } else {
        (1u64 << (8 * len)) - 1
    }
}

/// Symbols in a form that compresses by greedy longest match.
#[derive(Clone, Debug)]
#[allow(dead_code)]
struct Matcher {
    /// Symbol words, zero past their lengths.
    words: Vec<u64>,
    /// Symbol lengths, 1..=8.
    lens: Vec<u8>,
    /// For each first byte, the symbols starting with it, longest first (equal lengths in
    /// code order), each with its word, mask and length in line: what both the greedy
    /// and the optimal parse try at a position.
    by_first: Vec<Vec<Cand>>,
    /// For each byte, the code of the one-byte symbol that is that byte, if any.
    single: [Option<u8>; 256],
}

/// A symbol as a parse tries it: `word & mask` is its bytes.
#[derive(Clone, Copy, Debug)]
struct Cand {
    word: u64,
    mask: u64,
    len: u8,
    code: u8,
}

#[allow(dead_code)]
impl Matcher {
    /// A matcher over `symbols` (at most 255 of them, each `(word, len)` with len 1..=8).
    fn new(symbols: &[(u64, u8)]) -> Matcher {
        let mut m = Matcher {
            words: Vec::with_capacity(symbols.len()),
            lens: Vec::with_capacity(symbols.len()),
            by_first: vec![Vec::new(); 256],
            single: [None; 256],
        };
        for (code, &(w, len)) in symbols.iter().enumerate().take(MAX_SYMBOLS) {
            let code = code as u8;
            let mask = mask(usize::from(len));
            m.words.push(w & mask);
            m.lens.push(len);
            m.by_first[(w & 0xff) as usize].push(Cand {
                word: w & mask,
                mask,
                len,
                code,
            });
            if len == 1 {
                m.single[(w & 0xff) as usize] = Some(code);
            }
        }
        for list in &mut m.by_first {
            // Longest first; the sort is stable, so equal lengths keep code order.
            list.sort_by_key(|c| std::cmp::Reverse(c.len));
        }
        m
    }

    /// The longest symbol that `s` starts with, as `(code, len)`; `None` if none (the
    /// first byte must be escaped). `s` must not be empty.
    #[inline]
    fn longest(&self, s: &[u8]) -> Option<(u8, usize)> {
        let first = *s.first()?;
        let w = word(s.get(..8).unwrap_or(s));
        self.by_first[usize::from(first)]
            .iter()
            .find(|c| usize::from(c.len) <= s.len() && w & c.mask == c.word)
            .map(|c| (c.code, usize::from(c.len)))
    }
}

/// Scratch space of [`Trained::compress_with`]: per position of the string being
/// compressed, the fewest code bytes from there to its end and the code chosen there
/// (with its length, 1 for an escape).
#[derive(Default)]
#[allow(dead_code)]
pub(crate) struct Parse {
    cost: Vec<usize>,
    pick: Vec<(u8, u8)>,
}

/// A table trained at build time.
#[derive(Clone, Debug)]
#[allow(dead_code)]
pub(crate) struct Trained {
    /// The symbols, by code, with their matcher.
    m: Matcher,
}

/// The generations of training: the share (out of 128) of the sample each compresses.
/// Ten rather than the paper's five: on the corpus's fields the extra ones make the
/// pool 1.1% smaller (fifteen: 1.1%, twenty: 1.2%).
#[allow(dead_code)]
const GENERATIONS: [u64; 10] = [8, 20, 32, 44, 56, 68, 80, 98, 110, 128];

/// A fixed-seed xorshift step (the sample and generation subsets are drawn with it; the
/// tests draw their inputs with it too).
#[allow(dead_code)]
pub(crate) fn next(s: &mut u64) -> u64 {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    *s
}

/// A 64-bit mix of `x` (which sample pieces a generation looks at).
#[allow(dead_code)]
fn mix(x: u64) -> u64 {
    let x = (x ^ (x >> 33)).wrapping_mul(0xff51_afd7_ed55_8ccd);
    let x = (x ^ (x >> 33)).wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^ (x >> 33)
}

/// The training sample: every non-empty string if together they hold at most
/// [`SAMPLE_CAP`] bytes, else pieces of at most [`SAMPLE_LINE`] bytes drawn with a
/// fixed seed until the cap is reached.
#[allow(dead_code)]
fn sample<'s>(samples: &[&'s [u8]]) -> Vec<&'s [u8]> {
    let nonempty: Vec<&[u8]> = samples.iter().copied().filter(|s| !s.is_empty()).collect();
    let total = nonempty
        .iter()
        .fold(0usize, |acc, s| acc.saturating_add(s.len()));
    if total <= SAMPLE_CAP {
        return nonempty;
    }
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let mut out = Vec::new();
    let mut taken = 0usize;
    // Terminates: total > SAMPLE_CAP means there is a non-empty string, and every piece
    // holds at least one byte.
    while taken < SAMPLE_CAP {
        let line = nonempty[(next(&mut rng) % nonempty.len() as u64) as usize];
        let pieces = line.len().div_ceil(SAMPLE_LINE);
        let at = (next(&mut rng) % pieces as u64) as usize * SAMPLE_LINE;
        let piece = &line[at..line.len().min(at + SAMPLE_LINE)];
        out.push(piece);
        taken += piece.len();
    }
    out
}

#[allow(dead_code)]
impl Trained {
    /// Trains on `samples` (deterministic; any input, including none).
    pub fn train(samples: &[&[u8]]) -> Trained {
        let sample = sample(samples);
        let mut symbols: Vec<(u64, u8)> = Vec::new();
        for frac in GENERATIONS {
            let m = Matcher::new(&symbols);
            let n = symbols.len();
            // Extended codes: 0..n the symbols, n + b the escaped byte b.
            let ext = n + 256;
            let ext_sym = |e: usize| -> (u64, u8) {
                if e < n {
                    symbols[e]
                } else {
                    ((e - n) as u64, 1)
                }
            };
            let mut count1 = vec![0u64; ext];
            // Pairs of successive extended codes, as `first * ext + second`.
            let mut pairs: Vec<u32> = Vec::new();
            for (k, line) in sample.iter().enumerate() {
                if frac < 128 && (mix(k as u64) & 127) > frac {
                    continue;
                }
                let mut prev: Option<usize> = None;
                let mut i = 0;
                while i < line.len() {
                    let rest = &line[i..];
                    let (code, len) = match m.longest(rest) {
                        Some((c, len)) => (usize::from(c), len),
                        None => (n + usize::from(rest[0]), 1),
                    };
                    count1[code] += 1;
                    if let Some(p) = prev {
                        pairs.push((p * ext + code) as u32);
                    }
                    if len > 1 {
                        // The first byte alone is a candidate too (it may beat the symbol).
                        let b = rest[0];
                        let first =
                            m.single[usize::from(b)].map_or(n + usize::from(b), usize::from);
                        count1[first] += 1;
                        if let Some(p) = prev {
                            pairs.push((p * ext + first) as u32);
                        }
                    }
                    prev = Some(code);
                    i += len;
                }
            }
            let mut gains: HashMap<(u64, u8), u64> = HashMap::new();
            for (e, &count) in count1.iter().enumerate() {
                if count == 0 {
                    continue;
                }
                let (w, len) = ext_sym(e);
                let weight = if len == 1 { 8 } else { u64::from(len) };
                *gains.entry((w, len)).or_default() += count * weight;
            }
            if frac < 128 {
                pairs.sort_unstable();
                for run in pairs.chunk_by(|a, b| a == b) {
                    let (a, b) = (run[0] as usize / ext, run[0] as usize % ext);
                    let ((w1, l1), (w2, l2)) = (ext_sym(a), ext_sym(b));
                    if l1 >= 8 {
                        continue;
                    }
                    let len = (l1 + l2).min(8);
                    let w = (w1 | (w2 << (8 * u32::from(l1)))) & mask(usize::from(len));
                    *gains.entry((w, len)).or_default() += run.len() as u64 * u64::from(len);
                }
            }
            let mut ranked: Vec<((u64, u8), u64)> = gains.into_iter().collect();
            // Highest gain first; ties: longer first, then by bytes (a total order).
            ranked.sort_unstable_by(|(ka, ga), (kb, gb)| {
                gb.cmp(ga)
                    .then(kb.1.cmp(&ka.1))
                    .then(ka.0.to_le_bytes().cmp(&kb.0.to_le_bytes()))
            });
            ranked.truncate(MAX_SYMBOLS);
            symbols = ranked.into_iter().map(|(k, _)| k).collect();
        }
        // A stable, readable code order: by bytes, then length.
        symbols.sort_unstable_by(|a, b| {
            a.0.to_le_bytes()
                .cmp(&b.0.to_le_bytes())
                .then(a.1.cmp(&b.1))
        });
        Trained {
            m: Matcher::new(&symbols),
        }
    }

    /// Appends the codes of `s` to `out` (always decodable by this table's `Table` back
    /// to `s`): the fewest bytes of codes this table can encode `s` in.
    pub fn compress_into(&self, s: &[u8], out: &mut Vec<u8>) {
        self.compress_with(s, out, &mut Parse::default());
    }

    /// [`compress_into`](Self::compress_into) with a caller's scratch space (reused
    /// between strings: no allocation once it has grown to the longest string).
    ///
    /// An optimal parse: going backwards, `cost[i]` is the fewest code bytes for
    /// `s[i..]`, the least of 1 + `cost[i + len]` over the symbols matching at `i` and
    /// 2 + `cost[i + 1]` for an escape; of equally cheap choices, the escape, then the
    /// longer symbol (candidates come longest first). Then the choices
    /// are followed forwards from 0.
    pub fn compress_with(&self, s: &[u8], out: &mut Vec<u8>, scratch: &mut Parse) {
        let n = s.len();
        scratch.cost.clear();
        scratch.cost.resize(n + 1, 0);
        scratch.pick.clear();
        scratch.pick.resize(n, (ESCAPE, 1));
        for i in (0..n).rev() {
            let rest = &s[i..];
            let w = word(rest.get(..8).unwrap_or(rest));
            let room = rest.len().min(8) as u8;
            // An escape: 2 bytes, then the rest.
            let mut best = (2 + scratch.cost[i + 1], ESCAPE, 1u8);
            for c in &self.m.by_first[usize::from(rest[0])] {
                if w & c.mask == c.word && c.len <= room {
                    let k = 1 + scratch.cost[i + usize::from(c.len)];
                    // Candidates come longest first: only a strictly cheaper one wins.
                    if k < best.0 {
                        best = (k, c.code, c.len);
                    }
                }
            }
            scratch.cost[i] = best.0;
            scratch.pick[i] = (best.1, best.2);
        }
        let mut i = 0;
        while let Some(&(c, len)) = scratch.pick.get(i) {
            out.push(c);
            if c == ESCAPE {
                out.push(s[i]);
            }
            i += usize::from(len);
        }
    }

    /// Greedy longest match: what training parses with, and what the optimal parse is
    /// checked against (by [`fuzz_check`] and the tests).
    fn compress_greedy(&self, s: &[u8], out: &mut Vec<u8>) {
        let mut i = 0;
        while let Some(rest) = s.get(i..).filter(|r| !r.is_empty()) {
            match self.m.longest(rest) {
                Some((c, len)) => {
                    out.push(c);
                    i += len;
                }
                None => {
                    out.push(ESCAPE);
                    out.push(rest[0]);
                    i += 1;
                }
            }
        }
    }

    /// Appends the table in the on-disk encoding (1 + 9n bytes).
    pub fn write_table(&self, out: &mut Vec<u8>) {
        out.push(self.m.lens.len() as u8);
        out.extend_from_slice(&self.m.lens);
        for w in &self.m.words {
            out.extend_from_slice(&w.to_le_bytes());
        }
    }

    /// Number of symbols.
    pub fn len(&self) -> usize {
        self.m.lens.len()
    }

    /// Whether the table has no symbols.
    pub fn is_empty(&self) -> bool {
        self.m.lens.is_empty()
    }
}

/// Fuzz check (used by the `fsst` fuzz target and by the tests that replay its corpus).
///
/// `data[0]` is a mode byte, the rest the input. The input is read as a table (at offset
/// 0) followed by codes; with bit 0 of the mode set, the table's lengths are first forced
/// into 1..=8 and its padding zeroed, so that valid tables come up often. Every [`Table`]
/// method runs on it and must agree with the others. Then the input, split at the byte
/// equal to the mode byte, trains a table; every piece (and the whole input) must
/// compress and decode back, and training again must give the same table bytes.
/// Panics on a disagreement.
#[allow(dead_code)]
pub fn fuzz_check(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let mut bytes = rest.to_vec();
    let n = usize::from(bytes.first().copied().unwrap_or(0));
    if mode & 1 == 1 {
        for i in 0..n {
            let Some(len) = bytes.get_mut(1 + i) else {
                break;
            };
            *len = *len % 8 + 1;
            let len = usize::from(*len);
            let at = 1 + n + 8 * i;
            for b in bytes.iter_mut().skip(at + len).take(8 - len) {
                *b = 0;
            }
        }
    }
    if let Some(t) = Table::parse(&bytes, 0) {
        assert_eq!(t.encoded_len(), 1 + 9 * t.len());
        let _ = t.validate();
        check_codes(&t, &bytes[t.encoded_len()..]);
        if mode & 1 == 1 {
            assert!(t.validate(), "sanitized table must validate");
        }
    }
    // Tables at other offsets and truncated never panic.
    for at in [1usize, 2, bytes.len()] {
        let _ = Table::parse(&bytes, at);
    }

    // Training and round trips.
    let pieces: Vec<&[u8]> = rest.split(|&b| b == mode).collect();
    let trained = Trained::train(&pieces);
    let mut table = Vec::new();
    trained.write_table(&mut table);
    let mut again = Vec::new();
    Trained::train(&pieces).write_table(&mut again);
    assert_eq!(table, again, "training is deterministic");
    let t = Table::parse(&table, 0).expect("a written table parses");
    assert_eq!(t.encoded_len(), table.len());
    assert_eq!(t.len(), trained.len());
    assert!(t.validate(), "a written table validates");
    let mut scratch = Parse::default();
    for s in pieces.iter().copied().chain([rest]) {
        let mut codes = vec![7u8];
        trained.compress_into(s, &mut codes);
        // The same codes with a scratch reused from the strings before.
        let mut reused = vec![7u8];
        trained.compress_with(s, &mut reused, &mut scratch);
        assert_eq!(codes, reused, "scratch reuse");
        let mut greedy = Vec::new();
        trained.compress_greedy(s, &mut greedy);
        assert!(
            codes.len() - 1 <= greedy.len(),
            "optimal parse longer than greedy"
        );
        let codes = &codes[1..];
        let mut out = vec![1u8, 2];
        assert_eq!(t.decode_into(codes, &mut out), Some(()));
        assert_eq!(&out[2..], s, "round trip");
        assert!(t.eq_bytes(codes, s));
        check_codes(&t, codes);
    }
}

/// The decoding of `codes` by the format's definition, one code at a time and with no
/// tricks (`None` on a code past the table, a symbol length outside 1..=8 or a trailing
/// escape): what the fast decoders must agree with.
#[allow(dead_code)]
fn decode_reference(t: &Table<'_>, codes: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut it = codes.iter();
    while let Some(&c) = it.next() {
        if c == ESCAPE {
            out.push(*it.next()?);
        } else {
            let i = usize::from(c);
            let len = usize::from(*t.lens.get(i)?);
            if !(1..=8).contains(&len) {
                return None;
            }
            out.extend_from_slice(t.syms.get(8 * i..8 * i + len)?);
        }
    }
    Some(out)
}

/// Runs every [`Table`] decoding method on `codes` and asserts that they agree.
#[allow(dead_code)]
fn check_codes(t: &Table<'_>, codes: &[u8]) {
    check_codes_of(t, codes);
    // A table whose lengths are all in 1..=8 decodes the same once they are known to be
    // (as a snapshot's tables found at open are: no check per code).
    if t.lens_ok() {
        check_codes_of(
            &Table {
                lens_ok: true,
                ..*t
            },
            codes,
        );
    }
}

fn check_codes_of(t: &Table<'_>, codes: &[u8]) {
    let len = t.decoded_len(codes);
    // The reference decoder gives the same answers, for every buffer size around the
    // decoded length (and for 8 bytes a code).
    let want = decode_reference(t, codes);
    assert_eq!(want.as_ref().map(Vec::len), len, "reference decoded_len");
    let sizes = match len {
        Some(n) => vec![n.saturating_sub(1), n, n + 1, n + 7, codes.len() * 8],
        None => vec![0, codes.len(), codes.len() * 8 + 8],
    };
    for size in sizes {
        let mut buf = vec![0u8; size];
        let got = t.decode_to_slice(codes, &mut buf);
        let fits = want.as_ref().filter(|w| w.len() <= size);
        assert_eq!(got, fits.map(Vec::len), "decode_to_slice, {size} bytes");
        if let (Some(n), Some(w)) = (got, fits) {
            assert_eq!(&buf[..n], &w[..], "decode_to_slice bytes");
        }
    }
    let mut out = vec![0xaa, 0xbb];
    let into = t.decode_into(codes, &mut out);
    assert_eq!(len.is_some(), into.is_some(), "decoded_len vs decode_into");
    let decoded = out.get(2..).unwrap_or_default().to_vec();
    assert_eq!(&out[..2], &[0xaa, 0xbb], "decode_into keeps what was there");
    let Some(len) = len else {
        assert_eq!(out.len(), 2, "decode_into leaves out as it was");
        let mut buf = vec![0u8; codes.len() * 8 + 8];
        assert_eq!(t.decode_to_slice(codes, &mut buf), None);
        assert!(!t.eq_bytes(codes, b""));
        assert_eq!(t.decode_str_chunks(codes, |_| Ok::<(), ()>(())), Ok(false));
        return;
    };
    assert_eq!(decoded.len(), len, "decoded_len vs decode_into");
    // Exactly big enough, one byte bigger, one byte too small.
    for extra in [0usize, 1] {
        let mut buf = vec![0u8; len + extra];
        assert_eq!(t.decode_to_slice(codes, &mut buf), Some(len));
        assert_eq!(&buf[..len], &decoded[..]);
    }
    if len > 0 {
        let mut buf = vec![0u8; len - 1];
        assert_eq!(t.decode_to_slice(codes, &mut buf), None, "too small");
    }
    assert!(t.eq_bytes(codes, &decoded));
    // A change at any byte (the first 80), a cut at any length, is seen: the word
    // comparison must mask exactly the symbol's bytes.
    for k in 0..decoded.len().min(80) {
        let mut other = decoded.clone();
        other[k] ^= 1 << (k % 8);
        assert!(!t.eq_bytes(codes, &other), "changed at {k}");
        assert!(!t.eq_bytes(codes, &decoded[..k]), "cut at {k}");
        let mut tail = decoded.clone();
        tail[k..].iter_mut().for_each(|b| *b ^= 0x20);
        assert!(!t.eq_bytes(codes, &tail), "changed from {k} on");
    }
    let mut longer = decoded.clone();
    longer.push(0);
    assert!(!t.eq_bytes(codes, &longer));
    if let Some(last) = longer.len().checked_sub(2) {
        longer.pop();
        longer[last] ^= 0x80;
        assert!(!t.eq_bytes(codes, &longer));
    }
    let mut text = String::new();
    let ok = t.decode_str_chunks(codes, |s| {
        assert!(!s.is_empty());
        text.push_str(s);
        Ok::<(), ()>(())
    });
    match std::str::from_utf8(&decoded) {
        Ok(s) => {
            assert_eq!(ok, Ok(true));
            assert_eq!(text, s);
        }
        Err(e) => {
            assert_eq!(ok, Ok(false));
            assert!(decoded.starts_with(text.as_bytes()));
            assert!(text.len() <= e.valid_up_to());
        }
    }
    // An error from f stops decoding at the first piece.
    let mut calls = 0;
    let r = t.decode_str_chunks(codes, |_| {
        calls += 1;
        Err(())
    });
    assert!(calls <= 1);
    assert_eq!(r.is_err(), calls == 1);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lens_ok_is_every_length_in_1_to_8() {
        for n in [1usize, 7, 8, 9, 31, 255] {
            for at in [0, n / 2, n - 1] {
                for v in 0..=255u8 {
                    let mut b = vec![n as u8];
                    b.extend((0..n).map(|i| if i == at { v } else { 1 + (i % 8) as u8 }));
                    b.extend(std::iter::repeat_n(0, 8 * n));
                    let t = Table::parse(&b, 0).unwrap();
                    assert_eq!(
                        t.lens_ok(),
                        (1..=8).contains(&v),
                        "{n} symbols, {v} at {at}"
                    );
                }
            }
        }
    }
    use proptest::prelude::*;

    /// Trains on `samples`, then compresses and decodes each back through the written
    /// table, checking every method; returns (table bytes, total code bytes).
    fn round_trip(samples: &[&[u8]]) -> (Vec<u8>, usize) {
        let trained = Trained::train(samples);
        let mut table = Vec::new();
        trained.write_table(&mut table);
        let t = Table::parse(&table, 0).unwrap();
        assert!(t.validate());
        let mut total = 0;
        for s in samples {
            let mut codes = Vec::new();
            trained.compress_into(s, &mut codes);
            total += codes.len();
            let mut out = Vec::new();
            t.decode_into(&codes, &mut out).unwrap();
            assert_eq!(&out, s);
            assert_eq!(t.decoded_len(&codes), Some(s.len()));
            assert!(t.eq_bytes(&codes, s));
            check_codes(&t, &codes);
        }
        (table, total)
    }

    #[test]
    fn ascii_round_trip_compresses() {
        let text: Vec<String> = (0..300)
            .map(|i| format!("Introduction to algebra, part {i}: what a variable is, and why we use letters for numbers."))
            .collect();
        let samples: Vec<&[u8]> = text.iter().map(|s| s.as_bytes()).collect();
        let (table, codes) = round_trip(&samples);
        let raw: usize = samples.iter().map(|s| s.len()).sum();
        assert!(table.len() > 1);
        assert!(codes * 3 < raw, "{codes} code bytes for {raw} raw bytes");
    }

    #[test]
    fn multibyte_binary_and_empty_round_trip() {
        let strings: Vec<Vec<u8>> = vec![
            "Привет, мир! Как дела? Всё хорошо.".into(),
            "日本語のテキスト、中文文本，한국어 텍스트".into(),
            "emoji 😀🎉👩‍👩‍👧‍👦 and flags 🇳🇱🇯🇵".into(),
            Vec::new(),
            vec![0xff; 40],
            vec![0xff, 0, 0xff, 0, 255, 254, 0, 0, 0],
            (0..=255u8).collect(),
            vec![0; 100],
        ];
        let samples: Vec<&[u8]> = strings.iter().map(|s| s.as_slice()).collect();
        round_trip(&samples);
        // Strings the table was not trained on still round trip.
        let trained = Trained::train(&samples[..2]);
        let mut table = Vec::new();
        trained.write_table(&mut table);
        let t = Table::parse(&table, 0).unwrap();
        for s in &samples {
            let mut codes = Vec::new();
            trained.compress_into(s, &mut codes);
            let mut out = Vec::new();
            t.decode_into(&codes, &mut out).unwrap();
            assert_eq!(&out, s);
        }
    }

    /// A table of exactly these symbols.
    fn table_of(symbols: &[&[u8]]) -> Trained {
        let symbols: Vec<(u64, u8)> = symbols.iter().map(|s| (word(s), s.len() as u8)).collect();
        Trained {
            m: Matcher::new(&symbols),
        }
    }

    /// The fewest code bytes of any parse of `s` by `symbols` (a symbol or an escape at
    /// every position), by recursion over byte slices: independent of the matcher's
    /// words and masks.
    fn fewest(symbols: &[Vec<u8>], s: &[u8]) -> usize {
        let mut best = vec![0usize; s.len() + 1];
        for i in (0..s.len()).rev() {
            best[i] = 2 + best[i + 1];
            for sym in symbols {
                if s[i..].starts_with(sym) {
                    best[i] = best[i].min(1 + best[i + sym.len()]);
                }
            }
        }
        best[0]
    }

    #[test]
    fn the_parse_is_optimal_where_greedy_is_not() {
        // Greedy takes "abc", then escapes d, e, f (7 bytes); "ab" + "cdef" is 2.
        let t = table_of(&[b"ab", b"abc", b"cdef"]);
        let (mut codes, mut greedy) = (Vec::new(), Vec::new());
        t.compress_into(b"abcdef", &mut codes);
        t.compress_greedy(b"abcdef", &mut greedy);
        assert_eq!((codes.len(), greedy.len()), (2, 7));
        // A tie goes to the longer symbol: "ab" + "c" and "a" + "bc" are both 2 bytes.
        let t = table_of(&[b"a", b"ab", b"bc", b"c"]);
        let mut codes = Vec::new();
        t.compress_into(b"abc", &mut codes);
        assert_eq!(codes, [1, 3]);
        // A symbol whose trailing NUL bytes reach past the end of the string does not
        // match there (the string's word is zero-padded too).
        for (sym, s) in [
            (&b"a\0"[..], &b"a"[..]),
            (b"a\0\0", b"a\0"),
            (b"\0\0\0\0\0\0\0\0", b"\0\0\0\0\0\0\0"),
        ] {
            let t = table_of(&[sym]);
            let mut codes = Vec::new();
            t.compress_into(s, &mut codes);
            assert_eq!(codes.len(), 2 * s.len(), "{sym:?} {s:?}");
        }
        // Against an exhaustive search, on small tables (duplicates and NUL bytes
        // included, symbols of 1 to 8 bytes) over a three-byte alphabet.
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut next = move |n: u64| super::next(&mut x) % n;
        let alphabet = [b'a', b'b', 0];
        let mut scratch = Parse::default();
        for _ in 0..4000 {
            let mut symbols: Vec<Vec<u8>> = (0..next(10))
                .map(|_| {
                    (0..1 + next(8))
                        .map(|_| alphabet[next(3) as usize])
                        .collect()
                })
                .collect();
            if let Some(first) = symbols.first().cloned().filter(|_| next(3) == 0) {
                symbols.push(first);
            }
            let refs: Vec<&[u8]> = symbols.iter().map(Vec::as_slice).collect();
            let t = table_of(&refs);
            let s: Vec<u8> = (0..next(24)).map(|_| alphabet[next(3) as usize]).collect();
            let (mut codes, mut greedy) = (Vec::new(), Vec::new());
            t.compress_with(&s, &mut codes, &mut scratch);
            t.compress_greedy(&s, &mut greedy);
            assert_eq!(codes.len(), fewest(&symbols, &s), "{symbols:?} {s:?}");
            assert!(codes.len() <= greedy.len());
            let mut table = Vec::new();
            t.write_table(&mut table);
            let mut out = Vec::new();
            Table::parse(&table, 0)
                .unwrap()
                .decode_into(&codes, &mut out)
                .unwrap();
            assert_eq!(out, s);
        }
    }

    #[test]
    fn no_samples_gives_an_empty_table() {
        for samples in [&[][..], &[&b""[..], b""][..]] {
            let trained = Trained::train(samples);
            assert_eq!(trained.len(), 0);
            let mut table = Vec::new();
            trained.write_table(&mut table);
            assert_eq!(table, [0]);
            let t = Table::parse(&table, 0).unwrap();
            let mut codes = Vec::new();
            trained.compress_into(b"ab\xff", &mut codes);
            assert_eq!(codes, [ESCAPE, b'a', ESCAPE, b'b', ESCAPE, 0xff]);
            let mut buf = [0u8; 3];
            assert_eq!(t.decode_to_slice(&codes, &mut buf), Some(3));
            assert_eq!(&buf, b"ab\xff");
        }
    }

    #[test]
    fn huge_samples_are_capped() {
        let big = "the quick brown fox jumps over the lazy dog ".repeat(40_000);
        let samples: Vec<&[u8]> = vec![big.as_bytes(); 4];
        let (table, codes) = round_trip(&samples[..1]);
        assert!(codes * 4 < big.len());
        let mut again = Vec::new();
        Trained::train(&samples).write_table(&mut again);
        assert_eq!(table, again);
    }

    #[test]
    fn training_is_deterministic() {
        let text: Vec<String> = (0..2000)
            .map(|i| format!("record {i} has title number {} and {}", i * 7, i % 13))
            .collect();
        let samples: Vec<&[u8]> = text.iter().map(|s| s.as_bytes()).collect();
        let tables: Vec<Vec<u8>> = (0..3)
            .map(|_| {
                let mut t = Vec::new();
                Trained::train(&samples).write_table(&mut t);
                t
            })
            .collect();
        assert_eq!(tables[0], tables[1]);
        assert_eq!(tables[0], tables[2]);
        assert_eq!(tables[0].len(), 1 + 9 * usize::from(tables[0][0]));
    }

    /// A hand-made table: "ab" (0), "c" (1), "hello!!!" (2).
    fn table_bytes() -> Vec<u8> {
        let mut b = vec![3, 2, 1, 8];
        b.extend_from_slice(b"ab\0\0\0\0\0\0");
        b.extend_from_slice(b"c\0\0\0\0\0\0\0");
        b.extend_from_slice(b"hello!!!");
        b
    }

    #[test]
    fn malformed_codes() {
        let b = table_bytes();
        let t = Table::parse(&b, 0).unwrap();
        assert!(t.validate());
        assert_eq!(t.encoded_len(), b.len());
        let mut out = vec![9];
        assert_eq!(t.decode_into(&[0, 1, 2, ESCAPE, b'z'], &mut out), Some(()));
        assert_eq!(out, b"\x09abchello!!!z");
        for bad in [&[3u8][..], &[0, 254], &[0, ESCAPE], &[ESCAPE], &[2, 100, 0]] {
            let mut out = vec![9];
            assert_eq!(t.decoded_len(bad), None, "{bad:?}");
            assert_eq!(t.decode_into(bad, &mut out), None);
            assert_eq!(out, [9]);
            assert_eq!(t.decode_to_slice(bad, &mut [0; 64]), None);
            assert!(!t.eq_bytes(bad, b"ab"));
            assert_eq!(t.decode_str_chunks(bad, |_| Ok::<(), ()>(())), Ok(false));
            check_codes(&t, bad);
        }
        // A long malformed string (past the decode-by-bound size).
        let mut long = vec![2u8; 500];
        long.push(200);
        let mut out = Vec::new();
        assert_eq!(t.decode_into(&long, &mut out), None);
        assert!(out.is_empty());
        // Buffer too small.
        assert_eq!(t.decode_to_slice(&[2, 2], &mut [0; 15]), None);
        assert_eq!(t.decode_to_slice(&[2, 2], &mut [0; 16]), Some(16));
    }

    /// The fast decoders answer as the reference does on broken tables (0, 255 or some
    /// symbols; lengths 0, 9 or anything; junk after a symbol's length) for codes that
    /// mix escapes, codes past the table and a trailing escape: short strings at every
    /// buffer size from empty to 8 bytes a code + 9 (junk-filled buffers), long ones
    /// (past `decode_into`'s 64-code stack path and its 4,096-code bound) at the sizes
    /// around their length.
    #[test]
    fn tables_decode_as_the_reference_does_on_broken_tables() {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || super::next(&mut x);
        // Long strings that decode, past the stack path and past the bound.
        let mut long_ok = [0usize; 2];
        for round in 0..1500 {
            let n = match round % 3 {
                0 => 0,
                1 => 255,
                _ => (next() % 256) as usize,
            };
            let mut bytes = vec![n as u8];
            for _ in 0..n {
                bytes.push(match next() % 4 {
                    0 => 0,
                    1 => 9,
                    2 => next() as u8,
                    _ => (next() % 8 + 1) as u8,
                });
            }
            bytes.extend((0..8 * n).map(|_| next() as u8));
            let t = Table::parse(&bytes, 0).unwrap();
            // Mostly short strings (every buffer size is tried), sometimes long ones: past
            // the stack path of `decode_into` (64 codes) and past its bound (4,096).
            let count = match round % 10 {
                0 => 65 + next() % 200,
                1 if round % 50 == 1 => 4_097 + next() % 100,
                _ => next() % 12,
            };
            // Long strings mostly use the table's valid symbols, so that some decode.
            let good: Vec<u8> = (0..n)
                .filter(|&c| (1..=8).contains(&bytes[1 + c]))
                .map(|c| c as u8)
                .collect();
            let bad = if count > 12 { 97 } else { 5 };
            let codes: Vec<u8> = (0..count)
                .map(|_| match next() % bad {
                    0 => ESCAPE,
                    // The longest ones only escapes and valid symbols.
                    _ if count > 4096 && !good.is_empty() => {
                        good[(next() % good.len() as u64) as usize]
                    }
                    1 => n.saturating_sub(1) as u8,
                    2 => n as u8,
                    3 => n.wrapping_add(1) as u8,
                    _ if count > 12 && !good.is_empty() => {
                        good[(next() % good.len() as u64) as usize]
                    }
                    _ => (next() % (n as u64 + 1)) as u8,
                })
                .collect();
            let want = decode_reference(&t, &codes);
            if want.is_some() && codes.len() > 64 {
                long_ok[usize::from(codes.len() > 4096)] += 1;
            }
            assert_eq!(
                t.decoded_len(&codes),
                want.as_ref().map(Vec::len),
                "{round}"
            );
            let junk = next() as u8;
            let mut out = vec![junk];
            let into = t.decode_into(&codes, &mut out);
            assert_eq!(into.is_some(), want.is_some(), "{round}");
            match &want {
                Some(w) => {
                    assert_eq!(&out[1..], &w[..], "{round}");
                    assert!(t.eq_bytes(&codes, w), "{round}");
                    if !w.is_empty() {
                        let mut other = w.clone();
                        let k = (next() % w.len() as u64) as usize;
                        other[k] ^= 1 << (next() % 8);
                        assert!(!t.eq_bytes(&codes, &other), "{round} {k}");
                    }
                }
                None => {
                    assert_eq!(out, [junk], "{round}");
                    assert!(!t.eq_bytes(&codes, &[]), "{round}");
                }
            }
            let sizes: Vec<usize> = if codes.len() < 12 {
                (0..codes.len() * 8 + 10).collect()
            } else {
                let n = want.as_ref().map_or(codes.len(), Vec::len);
                vec![0, 7, n.saturating_sub(1), n, n + 1, codes.len() * 8 + 8]
            };
            for size in sizes {
                let mut buf = vec![junk; size];
                let fits = want.as_ref().filter(|w| w.len() <= size);
                let got = t.decode_to_slice(&codes, &mut buf);
                assert_eq!(got, fits.map(Vec::len), "{round} {size}");
                if let (Some(n), Some(w)) = (got, fits) {
                    assert_eq!(&buf[..n], &w[..], "{round} {size}");
                }
            }
        }
        assert!(long_ok.iter().all(|&k| k > 0), "{long_ok:?}");
    }

    #[test]
    fn bad_tables() {
        for bad_len in [0u8, 9, 255] {
            let mut b = table_bytes();
            b[1] = bad_len;
            let t = Table::parse(&b, 0).unwrap();
            assert!(!t.validate());
            assert_eq!(t.decoded_len(&[0]), None);
            assert_eq!(t.decode_into(&[0], &mut Vec::new()), None);
            assert_eq!(t.decode_to_slice(&[0], &mut [0; 64]), None);
            assert!(!t.eq_bytes(&[0], b"ab"));
            // Other symbols still decode.
            assert_eq!(t.decoded_len(&[1, 2]), Some(9));
        }
        // Non-zero padding: invalid for verify, decodable all the same.
        let mut b = table_bytes();
        b[4 + 3] = b'x';
        assert!(!Table::parse(&b, 0).unwrap().validate());
        // Truncated tables and offsets past the end.
        let b = table_bytes();
        for end in 0..b.len() {
            assert!(Table::parse(&b[..end], 0).is_none(), "cut at {end}");
        }
        assert!(Table::parse(&b, b.len()).is_none());
        assert!(Table::parse(&b, usize::MAX).is_none());
        let mut at = vec![7u8, 7];
        at.extend_from_slice(&b);
        assert_eq!(Table::parse(&at, 2).unwrap().len(), 3);
    }

    #[test]
    fn str_chunks_carry_a_split_char() {
        // Table: "é" is two bytes; one-byte "a".
        let mut b = vec![2, 1, 2];
        b.extend_from_slice(b"a\0\0\0\0\0\0\0");
        b.extend_from_slice(&[0xc3, 0xa9, 0, 0, 0, 0, 0, 0]);
        let t = Table::parse(&b, 0).unwrap();
        // 255 'a's then "é" straddles the 256-byte buffer; then an escaped 4-byte char
        // byte by byte, straddling again further on.
        for prefix in [250usize, 251, 252, 253, 254, 255, 256, 509, 510, 511] {
            let mut codes = vec![0u8; prefix];
            codes.push(1);
            for &byte in "😀".as_bytes() {
                codes.extend_from_slice(&[ESCAPE, byte]);
            }
            codes.extend(std::iter::repeat_n(1u8, 200));
            let want = format!("{}é😀{}", "a".repeat(prefix), "é".repeat(200));
            let mut got = String::new();
            let mut pieces = 0;
            let r = t.decode_str_chunks(&codes, |s| {
                pieces += 1;
                got.push_str(s);
                Ok::<(), ()>(())
            });
            assert_eq!(r, Ok(true));
            assert_eq!(got, want);
            assert!(pieces > 1);
            check_codes(&t, &codes);
        }
        // Invalid UTF-8: a lone continuation byte; a truncated char at the end.
        assert_eq!(
            t.decode_str_chunks(&[0, ESCAPE, 0x80], |_| Ok::<(), ()>(())),
            Ok(false)
        );
        assert_eq!(
            t.decode_str_chunks(&[0, ESCAPE, 0xc3], |_| Ok::<(), ()>(())),
            Ok(false)
        );
        assert_eq!(t.decode_str_chunks(&[], |_| Err("no call")), Ok(true));
        assert_eq!(t.decode_str_chunks(&[0], |_| Err("stop")), Err("stop"));
    }

    #[test]
    fn fuzz_check_on_examples() {
        fuzz_check(b"");
        fuzz_check(b"\x00");
        fuzz_check(&[1, 3, 9, 9, 9]);
        let mut d = vec![1u8];
        d.extend(table_bytes());
        d.extend_from_slice(&[0, 1, 2, ESCAPE, 0xff]);
        fuzz_check(&d);
        fuzz_check("\nhello world\nhello there\nПривет мир\n日本語".as_bytes());
    }

    /// Throughput and compression ratio on the synthetic content site (not a timed test:
    /// it prints). Run: `cargo test --release --lib fsst::tests::speed -- --ignored
    /// --nocapture`.
    #[cfg(feature = "corpus")]
    #[test]
    #[ignore = "a measurement; prints numbers"]
    fn speed() {
        use std::hint::black_box;
        use std::time::Instant;
        let corpus = crate::corpus::generate(&crate::corpus::CorpusConfig::default());
        let field = |name: &str| -> Vec<Vec<u8>> {
            corpus
                .default_tree()
                .iter()
                .filter_map(|(_, v)| v.get(name)?.as_str().map(|s| s.as_bytes().to_vec()))
                .collect()
        };
        for name in ["body", "description", "title"] {
            let values = field(name);
            if values.is_empty() {
                continue;
            }
            let refs: Vec<&[u8]> = values.iter().map(|v| v.as_slice()).collect();
            let start = Instant::now();
            let trained = Trained::train(&refs);
            let train_ms = start.elapsed().as_secs_f64() * 1e3;
            let raw: usize = refs.iter().map(|v| v.len()).sum();
            let mut codes = Vec::new();
            let start = Instant::now();
            for v in &refs {
                trained.compress_into(v, &mut codes);
            }
            let compress_ns = start.elapsed().as_nanos() as f64 / raw as f64;
            let mut table = Vec::new();
            trained.write_table(&mut table);
            println!(
                "{name}: {} values, {raw} B, avg {:.0} B -> codes {} B = {:.3} of raw ({:.3} with the {} B table); {} symbols; training {train_ms:.1} ms, compression {compress_ns:.2} ns/B",
                refs.len(),
                raw as f64 / refs.len() as f64,
                codes.len(),
                codes.len() as f64 / raw as f64,
                (codes.len() + table.len()) as f64 / raw as f64,
                table.len(),
                trained.len()
            );
        }

        // Decoding: short strings (titles and descriptions cut to at most 64 bytes), and
        // ~1 KB strings (descriptions joined).
        let mut text: Vec<Vec<u8>> = field("title");
        text.extend(field("description"));
        let refs: Vec<&[u8]> = text.iter().map(|v| v.as_slice()).collect();
        let trained = Trained::train(&refs);
        let mut table = Vec::new();
        trained.write_table(&mut table);
        let t = Table::parse(&table, 0).unwrap();
        let short: Vec<&[u8]> = refs.iter().map(|s| &s[..s.len().min(64)]).collect();
        let mut long: Vec<Vec<u8>> = Vec::new();
        let mut cur = Vec::new();
        for s in &refs {
            cur.extend_from_slice(s);
            cur.push(b' ');
            if cur.len() >= 1024 {
                cur.truncate(1024);
                long.push(std::mem::take(&mut cur));
            }
        }
        let long: Vec<&[u8]> = long.iter().map(|v| v.as_slice()).collect();
        for (what, set) in [("<= 64 B", &short), ("1 KB", &long)] {
            let coded: Vec<Vec<u8>> = set
                .iter()
                .map(|s| {
                    let mut c = Vec::new();
                    trained.compress_into(s, &mut c);
                    c
                })
                .collect();
            let raw: usize = set.iter().map(|s| s.len()).sum();
            let n_codes: usize = coded.iter().map(|c| c.len()).sum();
            let reps = (4_000_000 / raw.max(1)).max(1);
            let mut out = Vec::with_capacity(16 * 1024);
            let mut time = |name: &str, f: &mut dyn FnMut(&[u8], &mut Vec<u8>)| {
                // The fastest of 7 rounds (the machine is shared).
                let mut ns = f64::MAX;
                for _ in 0..7 {
                    let start = Instant::now();
                    for _ in 0..reps {
                        for c in &coded {
                            out.clear();
                            f(black_box(c), &mut out);
                            black_box(&out);
                        }
                    }
                    let round = start.elapsed().as_nanos() as f64 / (reps * coded.len()) as f64;
                    ns = ns.min(round);
                }
                println!(
                    "  {what}: {name}: {ns:.1} ns/string ({:.2} GB/s decoded), avg {:.1} B from {:.1} codes",
                    raw as f64 / coded.len() as f64 / ns,
                    raw as f64 / coded.len() as f64,
                    n_codes as f64 / coded.len() as f64
                );
            };
            time("decode_into (auto)", &mut |c, out| {
                t.decode_into(c, out).unwrap()
            });
            if coded.iter().all(|c| c.len() <= STACK_CODES) {
                time("decode_into through the stack", &mut |c, out| {
                    t.decode_into_stack(c, out).unwrap()
                });
            }
            time("decode_into by bound", &mut |c, out| {
                t.decode_into_by(c, out, true).unwrap()
            });
            time("decode_into by decoded_len", &mut |c, out| {
                t.decode_into_by(c, out, false).unwrap()
            });
            time("decoded_len only", &mut |c, _| {
                black_box(t.decoded_len(c).unwrap());
            });
            let mut buf = [0u8; 2048];
            time("decode_to_slice", &mut |c, _| {
                black_box(t.decode_to_slice(c, &mut buf).unwrap());
            });
            time("decode_str_chunks", &mut |c, _| {
                let mut n = 0;
                t.decode_str_chunks(c, |s| {
                    n += s.len();
                    Ok::<(), ()>(())
                })
                .unwrap();
                black_box(n);
            });
            time("memcpy of the codes (baseline)", &mut |c, out| {
                out.extend_from_slice(c)
            });
        }
    }

    proptest! {
        #[test]
        fn proptest_round_trip(
            train in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..80), 0..20),
            text in proptest::collection::vec("[a-zé日😀 ]{0,60}", 0..20),
            other in proptest::collection::vec(any::<u8>(), 0..200),
        ) {
            let mut samples: Vec<&[u8]> = train.iter().map(|s| s.as_slice()).collect();
            samples.extend(text.iter().map(|s| s.as_bytes()));
            let trained = Trained::train(&samples);
            let mut table = Vec::new();
            trained.write_table(&mut table);
            let t = Table::parse(&table, 0).unwrap();
            prop_assert!(t.validate());
            for s in samples.iter().copied().chain([other.as_slice()]) {
                let mut codes = Vec::new();
                trained.compress_into(s, &mut codes);
                let mut out = Vec::new();
                prop_assert_eq!(t.decode_into(&codes, &mut out), Some(()));
                prop_assert_eq!(&out[..], s);
                check_codes(&t, &codes);
            }
        }

        #[test]
        fn proptest_any_bytes(data in proptest::collection::vec(any::<u8>(), 0..600)) {
            fuzz_check(&data);
        }
    }
}
