//! [`Str`]: a string value as stored — plain (borrowed), FSST-compressed, cold, or derived
//! from other strings.

use std::borrow::Cow;
use std::fmt;

use crate::cold::{self, ColdCache};
use crate::error::{Error, Result};
use crate::fsst::Table;

/// A string value of a snapshot: a cheap `Copy` handle, like `&str`.
///
/// A plain string borrows the snapshot's bytes ([`as_plain`](Self::as_plain) gives the
/// `&str` with no copy). A compressed one (FORMAT.md: FSST-coded in the pool, a zstd
/// frame in the cold section, or derived: references to other strings of the file and
/// literal bytes, such as a URL made of a site prefix and a slug) is decoded only when
/// asked:
///
/// | call | heap | cost |
/// |---|---|---|
/// | `==` with a `&str` / `String` / `Str` | none | FSST: decodes until the first difference; cold: its block; derived: its parts until the first difference |
/// | [`write_into`](Self::write_into) a caller's `String` | none (the buffer grows if it must) | FSST: a few ns per byte; cold: its ~4 KiB zstd block; derived: its parts' |
/// | `Display` (`{}`), [`len`](Self::len) | none | as above (`len` of an FSST string scans its codes, of a derived one sums its parts') |
/// | [`to_cow`](Self::to_cow) | none for plain, one `String` otherwise | as above |
///
/// A cold block is decoded into a buffer each thread keeps (it grows to the largest
/// block read, once), and stays there for the thread's next cold read: a record's long
/// strings, and consecutive records', share blocks, so reading them in turn decodes each
/// block once.
///
/// On a file that passed [`verify`](crate::Snapshot::verify) every string decodes. On a
/// damaged file a string that does not decode (bad codes, bad UTF-8, a bad frame) is an
/// [`Error::Corrupt`] from the fallible calls, unequal to every string, and shown as
/// `U+FFFD` by `Display` (after what of it did decode).
///
/// ```
/// # fn main() -> fms::Result<()> {
/// let mut b = fms::SnapshotBuilder::new();
/// b.insert("v:1", &serde_json::json!({"title": "Intro to loops"}))?;
/// let snap = fms::Snapshot::from_bytes(b.to_bytes()?)?;
/// let title = snap.get("v:1").unwrap().get("title").unwrap().as_str().unwrap();
/// assert_eq!(title, "Intro to loops");
/// let mut buf = String::new();
/// title.write_into(&mut buf)?;
/// assert_eq!(title.to_cow()?, buf);
/// # Ok(()) }
/// ```
#[derive(Clone, Copy)]
pub struct Str<'a>(Repr<'a>);

/// A walk over a string's pieces was stopped (by its callback, or a derived string's parts
/// not adding up).
struct Stop;

#[derive(Clone, Copy)]
enum Repr<'a> {
    Plain(&'a str),
    Fsst {
        table: Table<'a>,
        codes: &'a [u8],
        /// The (combined) pool offset of its entry.
        at: u32,
    },
    Cold {
        /// The frame of the block holding the string, and the block's decoded length.
        frame: &'a [u8],
        block_len: usize,
        /// The string: `start..start + len` of the decoded block.
        start: usize,
        len: usize,
        dict: &'a [u8],
        cache: &'a ColdCache,
        /// Its slot tag (COLD or COLD_DIRECT) and payload: the (combined) pool offset of
        /// its pool entry, or its (combined) cold number.
        tag: u8,
        at: u32,
    },
    /// The concatenation of its parts (other strings of the chain, literals).
    Derived {
        raw: super::Raw<'a>,
        /// Its entry (which knows its own pool offset).
        d: crate::format::Derived<'a>,
        /// Its nesting depth (1 for a slot's own string).
        depth: u8,
    },
}

thread_local! {
    /// Where cold blocks are decoded. The block stays for the next read: a record's long
    /// strings (and consecutive records') share blocks, so reading them in turn (a whole
    /// record's JSON, an export) decodes each block once.
    static SCRATCH: std::cell::RefCell<cold::LastBlock> =
        const { std::cell::RefCell::new(cold::LastBlock::new()) };
}

/// Strings up to this many bytes are decoded on the stack where a `&str` is needed whole
/// (serde); longer ones into a `String`.
pub(crate) const STACK_DECODE: usize = 512;

impl<'a> Str<'a> {
    /// A plain string.
    pub(crate) fn plain(s: &'a str) -> Str<'a> {
        Str(Repr::Plain(s))
    }

    /// An FSST-coded string whose entry is at pool offset `at`.
    pub(crate) fn fsst(table: Table<'a>, codes: &'a [u8], at: u32) -> Str<'a> {
        Str(Repr::Fsst { table, codes, at })
    }

    /// A cold string (`c`: its block and place in it; `dict`: the file's dictionary),
    /// stored with slot tag `tag` and payload `at`.
    pub(crate) fn cold(c: super::ColdRef<'a>, dict: &'a [u8], tag: u8, at: u32) -> Str<'a> {
        Str(Repr::Cold {
            frame: c.frame,
            block_len: c.block_len,
            start: c.start,
            len: c.len,
            dict,
            cache: &c.level.l().cold_cache,
            tag,
            at,
        })
    }

    /// A derived string (its entry `d`), read through `raw` at nesting `depth`.
    pub(crate) fn derived(
        raw: super::Raw<'a>,
        d: crate::format::Derived<'a>,
        depth: u8,
    ) -> Str<'a> {
        Str(Repr::Derived { raw, d, depth })
    }

    /// Calls `f` with each part of a derived string, in order; `Ok(false)` if a part
    /// does not read (or this is not a derived string).
    fn for_each_part<E>(
        &self,
        mut f: impl FnMut(Str<'a>) -> std::result::Result<(), E>,
    ) -> std::result::Result<bool, E> {
        let Repr::Derived { raw, d, depth, .. } = self.0 else {
            return Ok(false);
        };
        for p in d.parts() {
            match p.ok().and_then(|p| raw.part_str(p, depth)) {
                Some(s) => f(s)?,
                None => return Ok(false),
            }
        }
        Ok(true)
    }

    /// The sum of a derived string's parts' lengths (no decoding, no UTF-8 check); `None`
    /// if a part does not read or is empty, or the sum passes the entry's bound.
    fn derived_len(&self) -> Option<usize> {
        use crate::format::Part;
        let Repr::Derived { raw, d, depth, .. } = self.0 else {
            return None;
        };
        let mut n = 0usize;
        for p in d.parts() {
            let len = match p.ok()? {
                Part::Plain(o) => raw.pool_bytes(o)?.len(),
                Part::Literal(b) => b.len(),
                Part::Fsst(o) => match raw.fsst_str(o)?.0 {
                    Repr::Fsst { table, codes, .. } => table.decoded_len(codes)?,
                    _ => return None,
                },
                Part::Derived(o) => raw.derived_str(o, depth + 1)?.derived_len()?,
            };
            n += len;
            if len == 0 || n > d.limit {
                return None;
            }
        }
        Some(n)
    }

    /// Decodes a derived string's bytes into `buf[*n..]`, advancing `*n`, without checking
    /// UTF-8 (the caller checks the whole: one pass instead of one per part). `false` if
    /// this is not a derived string, a part does not read or gives nothing, the string
    /// passes its bound, or `buf` is too small.
    fn derived_bytes(&self, buf: &mut [u8], n: &mut usize) -> bool {
        use crate::format::Part;
        fn copy(b: &[u8], buf: &mut [u8], n: &mut usize) -> bool {
            match buf.get_mut(*n..*n + b.len()) {
                Some(to) => {
                    to.copy_from_slice(b);
                    *n += b.len();
                    true
                }
                None => false,
            }
        }
        let Repr::Derived { raw, d, depth, .. } = self.0 else {
            return false;
        };
        let start = *n;
        for p in d.parts() {
            let before = *n;
            let ok = match p {
                Ok(Part::Plain(o)) => raw.pool_bytes(o).is_some_and(|b| copy(b, buf, n)),
                Ok(Part::Literal(b)) => copy(b, buf, n),
                Ok(Part::Fsst(o)) => match raw.fsst_str(o).map(|s| s.0) {
                    Some(Repr::Fsst { table, codes, .. }) => {
                        match table.decode_to_slice(codes, buf.get_mut(*n..).unwrap_or_default()) {
                            Some(k) => {
                                *n += k;
                                true
                            }
                            None => false,
                        }
                    }
                    _ => false,
                },
                Ok(Part::Derived(o)) => raw
                    .derived_str(o, depth + 1)
                    .is_some_and(|s| s.derived_bytes(buf, n)),
                Err(()) => false,
            };
            if !ok || *n == before || *n - start > d.limit {
                return false;
            }
        }
        true
    }

    /// Decodes an FSST or derived string into `buf` without checking UTF-8 (the caller
    /// checks the whole once): its length, or `None` for another kind of string, or one
    /// that does not fit or does not decode.
    fn decode_on_stack(&self, buf: &mut [u8]) -> Option<usize> {
        match self.0 {
            Repr::Fsst { table, codes, .. } => table.decode_to_slice(codes, buf),
            Repr::Derived { .. } => {
                let mut n = 0;
                self.derived_bytes(buf, &mut n).then_some(n)
            }
            Repr::Plain(_) | Repr::Cold { .. } => None,
        }
    }

    /// How a compressed string is stored: its slot tag and pool offset (what a builder
    /// writes to refer to the same string). `None` for a plain string.
    pub(crate) fn stored(&self) -> Option<(u8, u32)> {
        match self.0 {
            Repr::Plain(_) => None,
            Repr::Fsst { at, .. } => Some((crate::format::tag::FSST, at)),
            Repr::Cold { tag, at, .. } => Some((tag, at)),
            Repr::Derived { d, .. } => Some((crate::format::tag::DERIVED, d.at())),
        }
    }

    /// The string itself if it is stored plain: zero-copy, no decoding.
    #[inline]
    pub fn as_plain(&self) -> Option<&'a str> {
        match self.0 {
            Repr::Plain(s) => Some(s),
            _ => None,
        }
    }

    /// Whether the string is stored compressed (FSST, cold, or derived from others).
    pub fn is_compressed(&self) -> bool {
        !matches!(self.0, Repr::Plain(_))
    }

    /// Whether the string is derived: stored as references to other strings of the file
    /// and literal bytes (FORMAT.md "POOL", version 4).
    pub fn is_derived(&self) -> bool {
        matches!(self.0, Repr::Derived { .. })
    }

    /// Whether the string is stored in the cold section (a zstd frame).
    pub fn is_cold(&self) -> bool {
        matches!(self.0, Repr::Cold { .. })
    }

    /// Length in bytes of the decoded string. Plain and cold strings know it; an FSST
    /// string is scanned (no decoding, no heap), a derived one sums its parts'. On a
    /// damaged file: 0 for a string whose structure does not read, and the byte length
    /// for one that only fails its UTF-8 check (which `write_into` and the other decoding
    /// calls report).
    pub fn len(&self) -> usize {
        match self.0 {
            Repr::Plain(s) => s.len(),
            Repr::Fsst { table, codes, .. } => table.decoded_len(codes).unwrap_or(0),
            Repr::Cold { len, .. } => len,
            Repr::Derived { .. } => self.derived_len().unwrap_or(0),
        }
    }

    /// Whether the string is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends the string to `out`. No heap allocation beyond `out` growing (a cold
    /// string's block is decoded into a per-thread buffer first). On a string that does
    /// not decode, [`Error::Corrupt`] and `out` as it was.
    pub fn write_into(&self, out: &mut String) -> Result<()> {
        match self.0 {
            Repr::Plain(s) => {
                out.push_str(s);
                return Ok(());
            }
            Repr::Cold { .. } => {
                let s = self.with_cold_str(|s| out.push_str(s));
                return s.ok_or_else(|| self.corrupt());
            }
            // Most decode on the stack and are checked once: FSST strings in a small
            // buffer (cheaper to clear: most are short), derived ones (URLs) in a larger.
            Repr::Fsst { .. } => {
                let mut buf = [0u8; 128];
                if let Some(n) = self.decode_on_stack(&mut buf) {
                    out.push_str(std::str::from_utf8(&buf[..n]).map_err(|_| self.corrupt())?);
                    return Ok(());
                }
            }
            Repr::Derived { .. } => {
                let mut buf = [0u8; STACK_DECODE];
                if let Some(n) = self.decode_on_stack(&mut buf) {
                    out.push_str(std::str::from_utf8(&buf[..n]).map_err(|_| self.corrupt())?);
                    return Ok(());
                }
            }
        }
        // Longer ones (or damaged ones) in checked pieces, a derived one at most to its
        // entry's bound; nothing is left behind on failure.
        let start = out.len();
        let done = self.for_each_piece(|piece| {
            out.push_str(piece);
            Ok::<(), ()>(())
        });
        if done == Ok(true) {
            Ok(())
        } else {
            out.truncate(start);
            Err(self.corrupt())
        }
    }

    /// Appends the string as a JSON string, exactly as `serde_json` writes it, and
    /// returns its decoded length; on a string that does not decode, [`Error::Corrupt`]
    /// and `out` as it was.
    pub(crate) fn write_json(&self, out: &mut Vec<u8>) -> Result<usize> {
        let n = match self.0 {
            Repr::Plain(s) => crate::json::write_str(out, s.as_bytes(), true).then_some(s.len()),
            Repr::Fsst { table, codes, .. } => {
                let from = out.len();
                out.push(b'"');
                if table.decode_into(codes, out).is_some() {
                    let n = out.len() - from - 1;
                    crate::json::close_decoded(out, from).then_some(n)
                } else {
                    out.truncate(from);
                    None
                }
            }
            Repr::Cold { len, .. } => self
                .with_cold_str(|s| crate::json::write_str(out, s.as_bytes(), true))
                .unwrap_or(false)
                .then_some(len),
            Repr::Derived { .. } => {
                let from = out.len();
                out.push(b'"');
                let mut buf = [0u8; STACK_DECODE];
                let done = if let Some(n) = self.decode_on_stack(&mut buf) {
                    // Checked (and escaped) as a whole by `close_decoded`.
                    out.extend_from_slice(&buf[..n]);
                    Ok(true)
                } else {
                    self.for_each_piece(|piece| {
                        out.extend_from_slice(piece.as_bytes());
                        Ok::<(), ()>(())
                    })
                };
                let n = out.len() - from - 1;
                if done == Ok(true) && crate::json::close_decoded(out, from) {
                    Some(n)
                } else {
                    out.truncate(from);
                    None
                }
            }
        };
        n.ok_or_else(|| self.corrupt())
    }

    /// The string as a `Cow`: borrowed when plain, decoded into a new `String` otherwise.
    pub fn to_cow(&self) -> Result<Cow<'a, str>> {
        match self.0 {
            Repr::Plain(s) => Ok(Cow::Borrowed(s)),
            _ => {
                let mut s = String::with_capacity(self.len());
                self.write_into(&mut s)?;
                Ok(Cow::Owned(s))
            }
        }
    }

    /// Calls `f` with a cold string's text: its block is decoded into this thread's
    /// scratch buffer (which grows to the largest block read; after that no cold read
    /// allocates) and the string's slice checked as UTF-8. `None` if this is not a cold
    /// string or it does not decode.
    fn with_cold_str<T>(&self, f: impl FnOnce(&str) -> T) -> Option<T> {
        let Repr::Cold {
            frame,
            block_len,
            start,
            len,
            dict,
            cache,
            ..
        } = self.0
        else {
            return None;
        };
        fn slice(block: &[u8], start: usize, len: usize) -> Option<&str> {
            std::str::from_utf8(block.get(start..start.checked_add(len)?)?).ok()
        }
        SCRATCH.with(|cell| {
            let Ok(mut last) = cell.try_borrow_mut() else {
                // Taken by a caller up the stack (a callback that reads another cold
                // string): a buffer of this call's own.
                let mut own = cold::LastBlock::new();
                let block = own.get(dict, cache, frame, block_len)?;
                return Some(f(slice(block, start, len)?));
            };
            let out = f(slice(last.get(dict, cache, frame, block_len)?, start, len)?);
            // A block longer than any the builder writes (a file may hold one of up to
            // MAX_COLD_LEN) is not kept: a thread holds at most MAX_BLOCK bytes.
            last.shrink_to(cold::MAX_BLOCK);
            Some(out)
        })
    }

    /// Calls `f` with the string in valid UTF-8 pieces (one piece for a plain or cold
    /// string, one or more per part of a derived one), without heap allocation.
    /// `Ok(false)` if the string does not decode (some pieces may have been passed
    /// already).
    pub(crate) fn for_each_piece<E>(
        &self,
        mut f: impl FnMut(&str) -> std::result::Result<(), E>,
    ) -> std::result::Result<bool, E> {
        let mut err = None;
        let done = self.pieces(&mut |s| {
            f(s).map_err(|e| {
                err = Some(e);
                Stop
            })
        });
        match (done, err) {
            (_, Some(e)) => Err(e),
            (Ok(whole), None) => Ok(whole),
            (Err(Stop), None) => Ok(false),
        }
    }

    /// [`for_each_piece`](Self::for_each_piece) through one `dyn` callback, so that the
    /// parts of a derived string (nested at most [`MAX_DERIVED_DEPTH`] deep) reuse it.
    /// `Err(Stop)`: the callback stopped the walk, or a derived string's parts did not
    /// add up.
    ///
    /// [`MAX_DERIVED_DEPTH`]: crate::format::MAX_DERIVED_DEPTH
    fn pieces(
        &self,
        f: &mut dyn FnMut(&str) -> std::result::Result<(), Stop>,
    ) -> std::result::Result<bool, Stop> {
        match self.0 {
            Repr::Plain(s) => f(s).map(|()| true),
            Repr::Fsst { table, codes, .. } => table.decode_str_chunks(codes, f),
            Repr::Cold { .. } => self
                .with_cold_str(f)
                .map_or(Ok(false), |r| r.map(|()| true)),
            Repr::Derived { d, .. } => {
                // Each part must give at least one byte, and all of them together no more
                // than the entry's length: so a read visits at most (length + 1) x depth
                // parts, whatever the bytes. A part that does not decode ends the walk,
                // like a malformed one.
                let total = std::cell::Cell::new(0usize);
                let mut guarded = |piece: &str| {
                    total.set(total.get() + piece.len());
                    if total.get() > d.limit {
                        return Err(Stop);
                    }
                    f(piece)
                };
                self.for_each_part(|part| {
                    let before = total.get();
                    match part.pieces(&mut guarded) {
                        Ok(true) if total.get() > before => Ok(()),
                        Ok(_) => Err(Stop),
                        Err(e) => Err(e),
                    }
                })
            }
        }
    }

    /// Calls `f` with the whole string as one `&str`: borrowed when plain, decoded on the
    /// stack when short, into a `String` otherwise. `Err(Corrupt)` if it does not decode.
    pub(crate) fn with_str<T>(&self, f: impl FnOnce(&str) -> T) -> Result<T> {
        match self.0 {
            Repr::Plain(s) => Ok(f(s)),
            Repr::Cold { .. } => self.with_cold_str(f).ok_or_else(|| self.corrupt()),
            Repr::Fsst { .. } | Repr::Derived { .. } => {
                // On the stack if it fits, else into a `String`.
                let mut buf = [0u8; STACK_DECODE];
                if let Some(n) = self.decode_on_stack(&mut buf) {
                    return std::str::from_utf8(&buf[..n])
                        .map(f)
                        .map_err(|_| self.corrupt());
                }
                let mut s = String::new();
                self.write_into(&mut s)?;
                Ok(f(&s))
            }
        }
    }

    /// Whether the decoded string is `other`, without heap allocation (a cold string's
    /// block is decoded into the thread's scratch buffer).
    fn eq_bytes(&self, other: &[u8]) -> bool {
        match self.0 {
            Repr::Plain(s) => s.as_bytes() == other,
            Repr::Fsst { table, codes, .. } => table.eq_bytes(codes, other),
            Repr::Cold { len, .. } => {
                len == other.len() && self.with_cold_str(|s| s.as_bytes() == other) == Some(true)
            }
            Repr::Derived { .. } => {
                let mut rest = other;
                self.for_each_piece(|piece| match rest.strip_prefix(piece.as_bytes()) {
                    Some(r) => {
                        rest = r;
                        Ok(())
                    }
                    None => Err(()),
                }) == Ok(true)
                    && rest.is_empty()
            }
        }
    }

    fn corrupt(&self) -> Error {
        Error::Corrupt {
            what: format!(
                "a {} string does not decode",
                match self.0 {
                    Repr::Cold { .. } => "cold",
                    Repr::Derived { .. } => "derived",
                    _ => "compressed",
                }
            ),
        }
    }
}

impl PartialEq<str> for Str<'_> {
    fn eq(&self, other: &str) -> bool {
        self.eq_bytes(other.as_bytes())
    }
}

impl PartialEq<&str> for Str<'_> {
    fn eq(&self, other: &&str) -> bool {
        self.eq_bytes(other.as_bytes())
    }
}

impl PartialEq<String> for Str<'_> {
    fn eq(&self, other: &String) -> bool {
        self.eq_bytes(other.as_bytes())
    }
}

impl PartialEq<Str<'_>> for str {
    fn eq(&self, other: &Str<'_>) -> bool {
        other == self
    }
}

impl PartialEq<Str<'_>> for &str {
    fn eq(&self, other: &Str<'_>) -> bool {
        other == *self
    }
}

impl PartialEq<Str<'_>> for String {
    fn eq(&self, other: &Str<'_>) -> bool {
        other == self
    }
}

/// Two strings are equal when their decoded texts are (however each is stored).
impl PartialEq for Str<'_> {
    fn eq(&self, other: &Str<'_>) -> bool {
        match other.0 {
            Repr::Plain(s) => self.eq_bytes(s.as_bytes()),
            _ => other
                .with_str(|o| self.eq_bytes(o.as_bytes()))
                .unwrap_or(false),
        }
    }
}

/// The text itself (`U+FFFD` for a string that does not decode, so that `to_string`
/// never panics on a damaged file).
impl fmt::Display for Str<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.for_each_piece(|s| f.write_str(s))? {
            f.write_str("\u{FFFD}")?;
        }
        Ok(())
    }
}

/// As `&str`'s `Debug` (quoted and escaped).
impl fmt::Debug for Str<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.with_str(|s| fmt::Debug::fmt(s, f)) {
            Ok(r) => r,
            Err(_) => f.write_str("<corrupt string>"),
        }
    }
}

/// Serializes as a string (decoded on the stack when short).
impl serde::Serialize for Str<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::Error as _;
        self.with_str(|v| s.serialize_str(v))
            .map_err(S::Error::custom)?
    }
}

impl<'a> From<&'a str> for Str<'a> {
    fn from(s: &'a str) -> Str<'a> {
        Str::plain(s)
    }
}
