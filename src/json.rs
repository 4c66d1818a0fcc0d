//! JSON written straight from a snapshot's bytes: what `serde_json::to_vec` writes for a
//! record, list or value — byte for byte — without serde's per-value dispatch, and with
//! each plain string checked as UTF-8 in the same pass that escapes it.
//!
//! A whole-value write is one walk under the snapshot's walk limit, like every other
//! (the same budget as serde's, charged per slot). On failure (a corrupt file, the walk
//! limit) the output is truncated back to where the write began.

use crate::error::{Error, Result};
use crate::read::{List, Record, TextOrValue, ValueRef};
use crate::serde::Budget;

/// The escape of each ASCII byte in a JSON string, as `serde_json` writes it: 0 = none,
/// `u` = `\u00XX`, else the letter after the backslash.
static ESCAPE: [u8; 128] = {
    let mut t = [0u8; 128];
    let mut c = 0;
    while c < 0x20 {
        t[c] = b'u';
        c += 1;
    }
    t[0x08] = b'b';
    t[0x09] = b't';
    t[0x0A] = b'n';
    t[0x0C] = b'f';
    t[0x0D] = b'r';
    t[b'"' as usize] = b'"';
    t[b'\\' as usize] = b'\\';
    t
};

const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

/// Whether any byte of the 8 in `w` (little-endian) needs a look: a control byte, `"`,
/// `\`, or (unless `utf8_checked`) a byte ≥ 0x80. Exact as "any": the borrows of the
/// subtractions reach a higher byte only from a byte that is itself a hit.
#[inline(always)]
fn needs_look(w: u64, utf8_checked: bool) -> bool {
    let q = w ^ (LO * b'"' as u64);
    let b = w ^ (LO * b'\\' as u64);
    let m =
        (w.wrapping_sub(LO * 0x20) & !w) | (q.wrapping_sub(LO) & !q) | (b.wrapping_sub(LO) & !b);
    let m = if utf8_checked { m } else { m | w };
    m & HI != 0
}

/// The position of the first byte at or after `i` that a JSON string must escape, or
/// `None`; checks UTF-8 on the way unless `*checked` (from the first byte ≥ 0x80 on, the
/// rest of `s` at once, then sets `*checked`). `Err` if `s` is not UTF-8.
#[inline(always)]
fn next_escape(s: &[u8], mut i: usize, checked: &mut bool) -> Result<Option<usize>, ()> {
    while i < s.len() {
        if let Some(chunk) = s.get(i..i + 8) {
            let w = u64::from_le_bytes(chunk.try_into().expect("8 bytes"));
            if !needs_look(w, *checked) {
                i += 8;
                continue;
            }
        }
        // Byte by byte to the end of this 8-byte stretch (or of the string).
        let end = (i + 8).min(s.len());
        while i < end {
            let c = s[i];
            if c >= 0x80 {
                if !*checked {
                    // Everything before `i` is ASCII, so `s[i..]` starts a character.
                    std::str::from_utf8(&s[i..]).map_err(|_| ())?;
                    *checked = true;
                }
            } else if ESCAPE[c as usize] != 0 {
                return Ok(Some(i));
            }
            i += 1;
        }
    }
    Ok(None)
}

/// Appends `s` as a JSON string, exactly as `serde_json` writes a `&str` with these bytes.
/// `utf8_checked`: the caller knows `s` is UTF-8; otherwise it is checked here. `false`,
/// and `out` as it was, if it is not UTF-8.
pub(crate) fn write_str(out: &mut Vec<u8>, s: &[u8], mut utf8_checked: bool) -> bool {
    let start = out.len();
    out.reserve(s.len() + 2);
    out.push(b'"');
    let mut copied = 0; // s[..copied] is in `out`
    loop {
        let at = match next_escape(s, copied, &mut utf8_checked) {
            Ok(Some(at)) => at,
            Ok(None) => break,
            Err(()) => {
                out.truncate(start);
                return false;
            }
        };
        out.extend_from_slice(&s[copied..at]);
        let c = s[at];
        match ESCAPE[c as usize] {
            b'u' => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(&[
                    b'\\',
                    b'u',
                    b'0',
                    b'0',
                    HEX[(c >> 4) as usize],
                    HEX[(c & 15) as usize],
                ]);
            }
            e => out.extend_from_slice(&[b'\\', e]),
        }
        copied = at + 1;
    }
    out.extend_from_slice(&s[copied..]);
    out.push(b'"');
    true
}

/// Ends a JSON string whose opening quote is at `out[from]` and whose bytes (just decoded
/// there) follow it: checked as UTF-8, escaped if they need it, closing quote added.
/// `false`, and `out` truncated to `from`, if they are not UTF-8.
pub(crate) fn close_decoded(out: &mut Vec<u8>, from: usize) -> bool {
    if next_escape(&out[from + 1..], 0, &mut false) == Ok(None) {
        out.push(b'"');
        return true;
    }
    // Escapes to write, or not UTF-8: the general path (which checks again).
    let tail = out.split_off(from + 1);
    out.truncate(from);
    write_str(out, &tail, false)
}

fn corrupt(what: impl FnOnce() -> String) -> Error {
    Error::Corrupt { what: what() }
}

/// Appends a plain string's bytes (from the file, unchecked) as a JSON string.
fn text(out: &mut Vec<u8>, s: &[u8], what: impl FnOnce() -> String) -> Result<()> {
    if write_str(out, s, false) {
        Ok(())
    } else {
        Err(corrupt(|| format!("{} is not UTF-8", what())))
    }
}

/// Appends one value, charging `budget` for what it walks below it.
fn value(out: &mut Vec<u8>, v: ValueRef<'_>, budget: &Budget) -> Result<()> {
    match v {
        ValueRef::Null => out.extend_from_slice(b"null"),
        ValueRef::Bool(true) => out.extend_from_slice(b"true"),
        ValueRef::Bool(false) => out.extend_from_slice(b"false"),
        ValueRef::Int(i) => out.extend_from_slice(itoa::Buffer::new().format(i).as_bytes()),
        // serde_json's own float formatting (and `null` for what JSON cannot hold).
        ValueRef::Float(f) => serde_json::to_writer(&mut *out, &f).map_err(Error::Json)?,
        ValueRef::Str(s) => {
            s.write_json(out)?;
        }
        ValueRef::Bytes(b) => {
            // As serde_json writes bytes: an array of numbers.
            out.push(b'[');
            let mut buf = itoa::Buffer::new();
            for (i, x) in b.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(buf.format(*x).as_bytes());
            }
            out.push(b']');
        }
        ValueRef::List(l) => list(out, l, budget)?,
        ValueRef::Map(r) => map(out, r, budget)?,
    }
    Ok(())
}

fn text_or_value(
    out: &mut Vec<u8>,
    v: TextOrValue<'_>,
    key: usize,
    budget: &Budget,
    what: impl FnOnce() -> String,
) -> Result<()> {
    match v {
        TextOrValue::Text(s) => {
            budget.spend_len(key, s.len())?;
            text(out, s, what)
        }
        TextOrValue::Value(ValueRef::Str(s)) => {
            // Charged after decoding with the decoded length (what `Str::len` would count
            // first, in a pass of its own).
            let n = s.write_json(out)?;
            budget.spend_len(key, n)
        }
        TextOrValue::Value(v) => {
            let bytes = match &v {
                ValueRef::Bytes(b) => b.len(),
                _ => 0,
            };
            budget.spend_len(key, bytes)?;
            value(out, v, budget)
        }
    }
}

fn map(out: &mut Vec<u8>, rec: Record<'_>, budget: &Budget) -> Result<()> {
    out.push(b'{');
    for i in 0..rec.len() {
        if i > 0 {
            out.push(b',');
        }
        let (name, v) = rec
            .text_entry(i)
            .ok_or_else(|| corrupt(|| format!("field {i} of a record")))?;
        text(out, name, || format!("the key of field {i}"))?;
        out.push(b':');
        text_or_value(out, v, name.len(), budget, || {
            format!("the value of field {}", String::from_utf8_lossy(name))
        })?;
    }
    out.push(b'}');
    Ok(())
}

fn list(out: &mut Vec<u8>, l: List<'_>, budget: &Budget) -> Result<()> {
    out.push(b'[');
    for i in 0..l.len() {
        if i > 0 {
            out.push(b',');
        }
        let v = l
            .text_get(i)
            .ok_or_else(|| corrupt(|| format!("list element {i}")))?;
        text_or_value(out, v, 0, budget, || format!("list element {i}"))?;
    }
    out.push(b']');
    Ok(())
}

/// Appends `v` as compact JSON under a fresh walk budget; on failure `out` is as it was.
pub(crate) fn write_value(out: &mut Vec<u8>, v: ValueRef<'_>) -> Result<()> {
    let start = out.len();
    let r = value(out, v, &Budget::of(&v));
    if r.is_err() {
        out.truncate(start);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serde(s: &str) -> Vec<u8> {
        serde_json::to_vec(s).unwrap()
    }

    #[test]
    fn strings_are_written_as_serde_json_writes_them() {
        let mut cases: Vec<String> = vec![
            String::new(),
            "plain".into(),
            "exactly8".into(),
            "sixteen bytes ok".into(),
            "quote \" and backslash \\ and \u{7f}".into(),
            "tab\tnewline\ncr\rbs\u{8}ff\u{c}nul\u{0}unit\u{1f}".into(),
            "naïve café — 日本語 🎉".into(),
            "\"\"\"\"\"\"\"\"\"".into(),
            "ascii first then ü at 17".into(),
        ];
        for c in 0u8..0x80 {
            cases.push(format!(
                "{}{}{}",
                "x".repeat(c as usize % 11),
                c as char,
                "y".repeat(7)
            ));
        }
        for s in &cases {
            for checked in [false, true] {
                let mut out = b"prefix".to_vec();
                assert!(write_str(&mut out, s.as_bytes(), checked));
                assert_eq!(&out[6..], serde(s), "{s:?}");
            }
            let mut out = b"prefix\"".to_vec();
            out.extend_from_slice(s.as_bytes());
            assert!(close_decoded(&mut out, 6));
            assert_eq!(&out[6..], serde(s), "{s:?}");
        }
    }

    #[test]
    fn bytes_that_are_not_utf8_are_refused_and_nothing_is_left() {
        for bad in [
            &b"\xff"[..],
            b"abcdefgh\xc3",
            b"abcdefghijklmnop\xed\xa0\x80",
            b"\xe6\x97\xa5\xff",
            b"caf\xc3\xa9 \xc3",
        ] {
            let mut out = b"x".to_vec();
            assert!(!write_str(&mut out, bad, false), "{bad:?}");
            assert_eq!(out, b"x");
            out.push(b'"');
            out.extend_from_slice(bad);
            assert!(!close_decoded(&mut out, 1), "{bad:?}");
            assert_eq!(out, b"x");
        }
    }

    #[test]
    fn the_look_test_misses_no_special_byte_in_any_lane() {
        for lane in 0..8 {
            for c in 0u8..=255 {
                let mut w = [b'a'; 8];
                w[lane] = c;
                let v = u64::from_le_bytes(w);
                let special = c < 0x20 || c == b'"' || c == b'\\';
                assert_eq!(needs_look(v, true), special, "{c:#x} in lane {lane}");
                assert_eq!(needs_look(v, false), special || c >= 0x80, "{c:#x}");
            }
        }
    }
}
