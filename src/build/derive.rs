//! Derived strings (format version 4): a string value stored as the concatenation of
//! other string values of the same file and literal bytes, where that is shorter than its
//! own (FSST-coded) bytes.
//!
//! Content trees repeat their own values inside other values: a page's URL is a site
//! prefix, its parent's path and its slug; a video's download URLs carry its YouTube id.
//! Per-string compression cannot see that, so the builder looks for it: each string is cut
//! at separator bytes (`/`, `.`, `-`, `_`, `:`, `?`, `=`, `&`, `#`), and a stretch between
//! two cuts that is itself a string value of the file becomes a reference to that value.
//! The search is greedy (the longest such stretch first, then the pieces left and right
//! of it), bounded (strings up to [`MAX_LEN`] bytes, at most
//! [`format::MAX_DERIVED_PARTS`] parts) and deterministic.

use super::strings::Strings;
use crate::format;

/// Strings shorter than this are not derived (their own codes are already short).
pub(crate) const MIN_LEN: usize = 12;

/// Strings longer than this are not searched (prose: nothing to gain, and quadratic in
/// its cut points).
pub(crate) const MAX_LEN: usize = 512;

/// A stretch shorter than this is never a reference (a reference costs ~4 bytes).
const MIN_REF: usize = 5;

/// Literals up to this long are always stored in the derived entry; longer ones that
/// several derived strings have, as a pool string of their own that each refers to (URL
/// prefixes).
pub(crate) const INLINE_LITERAL: usize = 2;

/// Most cut points searched in one string.
const MAX_CUTS: usize = 48;

/// One part of a derivation, before pool offsets are known.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Piece {
    /// String number `i` of the build.
    Ref(u32),
    /// Bytes `start..end` of the derived string itself.
    Literal(u32, u32),
}

fn is_sep(b: u8) -> bool {
    matches!(
        b,
        b'/' | b'.' | b'-' | b'_' | b':' | b'?' | b'=' | b'&' | b'#'
    )
}

/// The greedy split of string `i` (`s`) into references to other strings of `strings`
/// that `usable` accepts and literals, or `None` if it has no reference.
pub(crate) fn split(
    strings: &Strings,
    i: u32,
    s: &[u8],
    usable: impl Fn(u32) -> bool,
) -> Option<Vec<Piece>> {
    if s.len() < MIN_LEN || s.len() > MAX_LEN {
        return None;
    }
    // Cut points: the ends, and both sides of every separator byte (ASCII, so every cut is
    // a character boundary).
    let mut cuts: Vec<usize> = vec![0];
    for (k, &b) in s.iter().enumerate() {
        if is_sep(b) {
            for c in [k, k + 1] {
                if cuts.last() != Some(&c) {
                    cuts.push(c);
                }
            }
        }
        if cuts.len() >= MAX_CUTS {
            break;
        }
    }
    if cuts.last() != Some(&s.len()) {
        cuts.push(s.len());
    }
    let find = |a: usize, b: usize| -> Option<u32> {
        if b - a < MIN_REF || (a == 0 && b == s.len()) {
            return None;
        }
        strings.find(&s[a..b]).filter(|&j| j != i && usable(j))
    };
    let mut pieces = Vec::new();
    // The longest stretch between cuts `lo..=hi` that is another usable string.
    fn longest(
        cuts: &[usize],
        lo: usize,
        hi: usize,
        find: &impl Fn(usize, usize) -> Option<u32>,
    ) -> Option<(usize, usize, u32)> {
        let mut best: Option<(usize, usize, u32)> = None;
        for a in lo..hi {
            for b in (a + 1..=hi).rev() {
                let len = cuts[b] - cuts[a];
                if best.is_some_and(|(x, y, _)| cuts[y] - cuts[x] >= len) {
                    break;
                }
                if let Some(j) = find(cuts[a], cuts[b]) {
                    best = Some((a, b, j));
                    break;
                }
            }
        }
        best
    }
    // Splits cuts `lo..=hi`: the longest reference, then what is left of it and right of
    // it; a literal where nothing matches (or the parts would run out).
    fn go(
        cuts: &[usize],
        lo: usize,
        hi: usize,
        find: &impl Fn(usize, usize) -> Option<u32>,
        out: &mut Vec<Piece>,
    ) {
        if lo >= hi {
            return;
        }
        match longest(cuts, lo, hi, find) {
            Some((a, b, j)) if out.len() + 3 <= format::MAX_DERIVED_PARTS => {
                go(cuts, lo, a, find, out);
                out.push(Piece::Ref(j));
                go(cuts, b, hi, find, out);
            }
            _ => out.push(Piece::Literal(cuts[lo] as u32, cuts[hi] as u32)),
        }
    }
    go(&cuts, 0, cuts.len() - 1, &find, &mut pieces);
    // Adjacent literals (left by the parts limit) are one.
    let mut merged: Vec<Piece> = Vec::with_capacity(pieces.len());
    for p in pieces {
        match (merged.last_mut(), p) {
            (Some(Piece::Literal(_, end)), Piece::Literal(_, e)) => *end = e,
            _ => merged.push(p),
        }
    }
    (merged.iter().any(|p| matches!(p, Piece::Ref(_))) && merged.len() <= format::MAX_DERIVED_PARTS)
        .then_some(merged)
}

/// What a reference is reckoned to cost before offsets are known (a varint of the distance
/// back: 2 bytes within about 4 KiB, 4 across the pool).
const REF_COST: usize = 4;

/// What a derived entry of `pieces` costs in the pool (estimated: references at
/// [`REF_COST`] bytes), with its length prefix.
pub(crate) fn cost(pieces: &[Piece]) -> usize {
    let body: usize = pieces
        .iter()
        .map(|p| match *p {
            Piece::Ref(_) => REF_COST,
            Piece::Literal(a, b) if (b - a) as usize <= INLINE_LITERAL => 1 + (b - a) as usize,
            Piece::Literal(..) => 4,
        })
        .sum();
    format::varint_len(body as u64) + body
}
