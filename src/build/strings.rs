//! String values: collected while records are encoded, then stored when the file is
//! written — plain, FSST-coded with a symbol table trained per field, or in the cold
//! section as zstd frames — as [`Compression`] says.
//!
//! Records are encoded eagerly, but a symbol table can only be trained once the strings
//! it serves are known. So a string value longer than an inline one gets a *pending*
//! slot (tag [`PENDING`](super::encode::PENDING), payload = its number here), and
//! [`finish`] decides each string's encoding, lays out the pool entries and writes the
//! data section in the file's form with them ([`Encoder::narrow`]: narrow payloads). The
//! builder itself is left as it was (it can write again).

use std::collections::BTreeMap;

use hashbrown::HashTable;

use super::derive;
use super::encode::{Encoder, Fingerprint};
use crate::cold::ColdEncoder;
use crate::error::{Error, Result};
use crate::format::{self, MAX_SECTION_LEN, tag};
use crate::fsst::Trained;

/// How the builder stores string values (longer than the 4 bytes stored inline).
///
/// `Auto` (the default) chooses per field, by the field's strings in this file:
///
/// - a field whose strings average at least 200 bytes (article bodies) goes to the
///   **cold** section (its strings of 64 bytes or more): blocks of about 4 KiB, one zstd
///   frame each, with a dictionary of up to 128 KiB trained on them, so reading other
///   fields never touches its pages;
/// - a field with at least 16 KiB of strings gets its own **FSST**
///   symbol table; the other fields share one table (if they have that much together);
/// - a string is stored compressed only where that is shorter; otherwise, and for fields
///   with too little text to train on, it stays **plain** (zero-copy `&str`).
///
/// The output stays deterministic: the same records give the same bytes.
///
/// A higher zstd level ([`Compression::Level`]) trades build time for size. On the
/// content-site corpus (BENCHMARKS.md) level 16 makes the cold section ~16% smaller than
/// level 3, a whole tree 3.6% and a locale overlay 7.4%, for about 1.5× the build time;
/// levels above 16 wrote the same bytes there.
///
/// ```
/// # fn main() -> fms::Result<()> {
/// let mut b = fms::SnapshotBuilder::new();
/// b.set_compression(fms::Compression::None); // every string plain
/// b.insert("v:1", &serde_json::json!({"title": "Intro to loops"}))?;
/// let snap = fms::Snapshot::from_bytes(b.to_bytes()?)?;
/// let title = snap.get("v:1").unwrap().get("title").unwrap().as_str().unwrap();
/// assert_eq!(title.as_plain(), Some("Intro to loops"));
/// assert_eq!("auto".parse::<fms::Compression>()?, fms::Compression::Auto);
/// assert_eq!("19".parse::<fms::Compression>()?, fms::Compression::Level(19));
/// # Ok(()) }
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Compression {
    /// Every string plain: the fastest build and reads, the largest file.
    None,
    /// FSST per field, long fields cold with zstd level 3.
    #[default]
    Auto,
    /// As `Auto`, with this zstd level (1..=22) for the cold section.
    Level(i32),
}

/// The zstd level of the cold section under [`Compression::Auto`].
pub(crate) const DEFAULT_LEVEL: i32 = 3;

/// A field whose strings average at least this many bytes goes to the cold section.
pub(crate) const COLD_MEAN: usize = 200;

/// Strings of a cold field shorter than this stay in the pool (a frame would not pay).
pub(crate) const COLD_MIN: usize = 64;

/// Cold strings are compressed in blocks of about this many bytes (a read decodes its
/// block: at this size a few microseconds).
pub(crate) const COLD_BLOCK: usize = 4096;

/// A field with at least this many bytes of strings gets its own symbol table.
pub(crate) const FSST_FIELD_MIN: usize = 16 * 1024;

/// The thresholds of [`Compression::Auto`].
#[derive(Clone, Copy, Debug)]
pub(crate) struct Policy {
    pub cold_mean: usize,
    pub cold_min: usize,
    pub fsst_field_min: usize,
}

impl Default for Policy {
    fn default() -> Policy {
        Policy {
            cold_mean: COLD_MEAN,
            cold_min: COLD_MIN,
            fsst_field_min: FSST_FIELD_MIN,
        }
    }
}

impl Policy {
    /// Compresses even tiny inputs (for the fuzz targets and tests: every decoder is
    /// reached by small files).
    #[cfg(feature = "fuzzing")]
    pub fn eager() -> Policy {
        Policy {
            cold_mean: 40,
            cold_min: 8,
            fsst_field_min: 0,
        }
    }
}

/// Most symbol tables per file (one per field, plus the shared one).
const MAX_TABLES: usize = 255;

impl std::str::FromStr for Compression {
    type Err = Error;
    /// `none`, `auto`, or a zstd level `1`..=`22`.
    fn from_str(s: &str) -> Result<Compression> {
        match s {
            "none" => Ok(Compression::None),
            "auto" => Ok(Compression::Auto),
            _ => match s.parse::<i32>() {
                Ok(l) if (1..=22).contains(&l) => Ok(Compression::Level(l)),
                _ => Err(Error::InvalidInput(format!(
                    "compression {s:?}: expected none, auto or a zstd level 1..=22"
                ))),
            },
        }
    }
}

impl std::fmt::Display for Compression {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Compression::None => f.write_str("none"),
            Compression::Auto => f.write_str("auto"),
            Compression::Level(l) => write!(f, "{l}"),
        }
    }
}

/// The string values of a build, each distinct one once, in first-seen order.
#[derive(Default)]
pub(crate) struct Strings {
    arena: Vec<u8>,
    /// Start in `arena` and length of each string.
    spans: Vec<(usize, u32)>,
    /// The key id of the field each was first seen in (`u32::MAX`: none).
    fields: Vec<u32>,
    /// Each string's number and fingerprint.
    dedup: HashTable<(u32, Fingerprint)>,
}

impl Strings {
    /// The number of `s` (a new one if it was not seen before).
    pub fn add(&mut self, s: &str, field: u32) -> Result<u32> {
        let b = s.as_bytes();
        let fp = Fingerprint::of(b);
        if let Some(i) = self.find_fp(b, fp) {
            return Ok(i);
        }
        let len = u32::try_from(b.len()).map_err(|_| Error::Limit {
            what: "string length",
            limit: u32::MAX as u64,
        })?;
        let i = u32::try_from(self.spans.len())
            .ok()
            .filter(|&i| i < u32::MAX)
            .ok_or(Error::Limit {
                what: "distinct strings",
                limit: u32::MAX as u64,
            })?;
        self.spans.push((self.arena.len(), len));
        self.arena.extend_from_slice(b);
        self.fields.push(field);
        self.dedup
            .insert_unique(fp.hash(), (i, fp), |&(_, f)| f.hash());
        Ok(i)
    }

    /// The number of the string `b`, if it is one of them.
    pub fn find(&self, b: &[u8]) -> Option<u32> {
        self.find_fp(b, Fingerprint::of(b))
    }

    fn find_fp(&self, b: &[u8], fp: Fingerprint) -> Option<u32> {
        self.dedup
            .find(fp.hash(), |&(i, f)| f == fp && self.get(i as usize) == b)
            .map(|&(i, _)| i)
    }

    pub(crate) fn get(&self, i: usize) -> &[u8] {
        let (at, len) = self.spans[i];
        &self.arena[at..at + len as usize]
    }

    fn len(&self) -> usize {
        self.spans.len()
    }
}

/// How one string is to be stored.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Plain,
    Fsst(u32),
    Cold,
}

/// What the builder writes for pool and data, and the string sections.
pub(crate) struct Finished {
    pub pool: Vec<u8>,
    pub data: super::encode::Narrowed,
    pub symbols: Vec<u8>,
    pub cold: Vec<u8>,
    /// Pool entries this file stores.
    pub pool_entries: usize,
}

/// Chooses each string's mode (see [`Compression`]); returns the modes and, per symbol
/// table, the strings it is trained on.
fn plan(strings: &Strings, c: Compression, policy: Policy) -> (Vec<Mode>, Vec<Vec<usize>>) {
    let n = strings.len();
    let mut modes = vec![Mode::Plain; n];
    let mut tables = Vec::new();
    if c == Compression::None {
        return (modes, tables);
    }
    let mut by_field: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
    for (i, &f) in strings.fields.iter().enumerate() {
        by_field.entry(f).or_default().push(i);
    }
    let bytes = |ids: &[usize]| ids.iter().map(|&i| strings.get(i).len()).sum::<usize>();
    let mut shared = Vec::new();
    for ids in by_field.values() {
        let total = bytes(ids);
        if total / ids.len().max(1) >= policy.cold_mean {
            for &i in ids {
                let len = strings.get(i).len();
                if len >= policy.cold_min && len <= crate::cold::MAX_COLD_LEN {
                    modes[i] = Mode::Cold;
                } else {
                    shared.push(i);
                }
            }
        } else if total >= policy.fsst_field_min && tables.len() < MAX_TABLES - 1 {
            for &i in ids {
                modes[i] = Mode::Fsst(tables.len() as u32);
            }
            tables.push(ids.clone());
        } else {
            shared.extend_from_slice(ids);
        }
    }
    if !shared.is_empty() && bytes(&shared) >= policy.fsst_field_min {
        shared.sort_unstable();
        for &i in &shared {
            modes[i] = Mode::Fsst(tables.len() as u32);
        }
        tables.push(shared);
    }
    (modes, tables)
}

/// `f` of every item, in order, computed on up to `available_parallelism` threads.
fn parallel_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    parallel_runs(items, threads, |run| run.iter().map(&f).collect::<Vec<R>>())
        .into_iter()
        .flatten()
        .collect()
}

/// `f` of runs of consecutive items, one run per thread, on up to `threads` threads
/// (one run, on this thread, for at most one thread or item): the results in the runs'
/// order.
fn parallel_runs<T: Sync, R: Send>(
    items: &[T],
    threads: usize,
    f: impl Fn(&[T]) -> R + Sync,
) -> Vec<R> {
    if threads <= 1 || items.len() <= 1 {
        return vec![f(items)];
    }
    let chunk = items.len().div_ceil(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = items.chunks(chunk).map(|c| s.spawn(|| f(c))).collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    })
}

/// Each of `blocks` compressed into one frame by `encoder` on up to `threads` threads, a
/// run of consecutive blocks each with its own zstd context: the same frames, in the same
/// order, whatever the number of threads. `None` if zstd fails.
fn compress_blocks(
    encoder: &ColdEncoder,
    blocks: &[&[u8]],
    threads: usize,
) -> Option<Vec<Vec<u8>>> {
    let runs = parallel_runs(blocks, threads, |run| encoder.compress_all(run));
    let mut frames = Vec::with_capacity(blocks.len());
    for run in runs {
        frames.extend(run?);
    }
    Some(frames)
}

/// Stores the pending strings of `enc` and resolves its pending slots.
pub(crate) fn finish(enc: &Encoder, c: Compression, policy: Policy) -> Result<Finished> {
    let strings = &enc.strings;
    let (mut modes, groups) = plan(strings, c, policy);
    let level = match c {
        Compression::Level(l) => l,
        _ => DEFAULT_LEVEL,
    };
    // The cold section is built on its own thread (which compresses its blocks on as many
    // threads as there are cores) while the symbol tables are trained and the FSST
    // strings compressed on the others (every step is deterministic, so the output does
    // not depend on the threads).
    let ids: Vec<usize> = (0..strings.len()).collect();
    let chunks: Vec<&[usize]> = ids.chunks(CODE_CHUNK).collect();
    let (cold, tables, codes) = std::thread::scope(|s| {
        let cold_job = s.spawn(|| cold_section(strings, &modes, level, enc.starts.cold));
        let tables = parallel_map(&groups, |ids| {
            let samples: Vec<&[u8]> = ids.iter().map(|&i| strings.get(i)).collect();
            Trained::train(&samples)
        });
        let codes = parallel_map(&chunks, |chunk| {
            let mut buf = Vec::new();
            let mut scratch = crate::fsst::Parse::default();
            let mut ends = Vec::with_capacity(chunk.len());
            for &i in *chunk {
                if let Mode::Fsst(t) = modes[i] {
                    format::put_varint(&mut buf, t as u64);
                    tables[t as usize].compress_with(strings.get(i), &mut buf, &mut scratch);
                }
                ends.push(buf.len());
            }
            (buf, ends)
        });
        let cold = cold_job
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p));
        (cold, tables, codes)
    });
    let (cold, cold_at) = cold?;
    for (m, at) in modes.iter_mut().zip(&cold_at) {
        if *m == Mode::Cold && at.is_none() {
            *m = Mode::Plain;
        }
    }
    // The FSST entry (`varint table ++ codes`) of string `i`.
    let fsst_entry = |i: usize| -> &[u8] {
        let (buf, ends) = &codes[i / CODE_CHUNK];
        let k = i % CODE_CHUNK;
        let from = if k == 0 { 0 } else { ends[k - 1] };
        &buf[from..ends[k]]
    };

    // Derived strings (format version 4): found now that every string's own cost is
    // known; written after the strings they refer to.
    let own_cost = |i: usize| -> usize {
        let len = match modes[i] {
            Mode::Fsst(_) => fsst_entry(i).len().min(strings.get(i).len()),
            _ => strings.get(i).len(),
        };
        format::varint_len(len as u64) + len
    };
    // Only in a file with symbol tables (whose walk limit counts their expansion).
    let (derived, pooled) = if tables.is_empty() {
        (Vec::new(), hashbrown::HashSet::new())
    } else {
        derivations(strings, &modes, own_cost)
    };
    // Tables that only derived strings would use are left out (at least one stays, so
    // that the file's walk limit counts its derived strings' expansion), and the others
    // renumbered.
    let is_derived = |i: usize| derived.get(i).is_some_and(Option::is_some);
    let mut used = vec![false; tables.len()];
    for (i, &mode) in modes.iter().enumerate() {
        if let Mode::Fsst(t) = mode
            && !is_derived(i)
            && fsst_entry(i).len() < strings.get(i).len()
        {
            used[t as usize] = true;
        }
    }
    if !used.is_empty() && !used.contains(&true) {
        used[0] = true;
    }
    let mut renumber = vec![None; tables.len()];
    let mut kept = Vec::new();
    for (t, table) in tables.iter().enumerate() {
        if used[t] {
            renumber[t] = Some(kept.len() as u64);
            kept.push(table);
        }
    }
    // String `i`'s FSST entry with its table's new number; `None` if its table was left
    // out.
    let fsst_bytes = |i: usize, out: &mut Vec<u8>| -> bool {
        let Mode::Fsst(t) = modes[i] else {
            return false;
        };
        let Some(nt) = renumber[t as usize] else {
            return false;
        };
        let e = fsst_entry(i);
        let used = format::varint_at(e, 0).map_or(0, |(_, n)| n);
        format::put_varint(out, nt);
        out.extend_from_slice(&e[used..]);
        true
    };

    let mut symbols = Vec::new();
    if !kept.is_empty() {
        symbols.extend_from_slice(&(kept.len() as u32).to_le_bytes());
        let mut bodies = Vec::new();
        let head = 4 + 4 * kept.len();
        for t in kept {
            let at = u32::try_from(head + bodies.len()).map_err(|_| Error::Limit {
                what: "symbols section bytes",
                limit: u32::MAX as u64,
            })?;
            symbols.extend_from_slice(&at.to_le_bytes());
            t.write_table(&mut bodies);
        }
        symbols.extend_from_slice(&bodies);
    }

    // Pool entries: plain strings reuse any equal entry of the chain; FSST and cold
    // entries only this file's (their table and frame are this file's).
    let mut pool = enc.pool.bytes.clone();
    let mut added: HashTable<u32> = HashTable::new();
    let start = enc.pool.start();
    let mut new_entries = 0usize;
    // Where the next entry goes (in this file's pool).
    let pool_end = std::cell::Cell::new(pool.len());
    // The (combined) offset of an entry holding `bytes`: an equal entry of the chain's
    // (`base`) or this file's, or a new one; always a new one, and never shared later,
    // unless `share` (a derived entry, whose parts must lie below it).
    let mut intern = |bytes: &[u8], base: bool, share: bool| -> Result<u32> {
        let hash = xxhash_rust::xxh3::xxh3_64(bytes);
        let found = share
            .then(|| {
                enc.pool.find(bytes, base).or_else(|| {
                    added
                        .find(hash, |&o| {
                            format::pool_entry(&pool, o as usize) == Some(bytes)
                        })
                        .map(|&o| start + o)
                })
            })
            .flatten();
        if let Some(off) = found {
            return Ok(off);
        }
        let own = u32::try_from(pool.len())
            .ok()
            .filter(|&o| u64::from(start) + u64::from(o) < MAX_SECTION_LEN)
            .ok_or(Error::Limit {
                what: "pool bytes (with the base's)",
                limit: MAX_SECTION_LEN,
            })?;
        format::put_varint(&mut pool, bytes.len() as u64);
        pool.extend_from_slice(bytes);
        pool_end.set(pool.len());
        if share {
            let p = &pool;
            added.insert_unique(hash, own, |&o| {
                xxhash_rust::xxh3::xxh3_64(format::pool_entry(p, o as usize).unwrap_or_default())
            });
        }
        new_entries += 1;
        Ok(start + own)
    };
    // Strings are written in first-seen order (one record's together), a derived one
    // right after the strings it refers to that are not written yet: its references are
    // then mostly short distances back.
    const UNSET: u8 = u8::MAX;
    let mut resolved = vec![(UNSET, 0u32); strings.len()];
    let mut entry = Vec::new();
    let mut stack: Vec<(usize, bool)> = Vec::new();
    for first in 0..strings.len() {
        stack.push((first, false));
        while let Some((i, parts_done)) = stack.pop() {
            if resolved[i].0 != UNSET {
                continue;
            }
            let s = strings.get(i);
            let pieces = derived.get(i).and_then(Option::as_ref);
            if let Some(pieces) = pieces {
                if !parts_done {
                    // Its parts first (each shorter than it, so this ends).
                    stack.push((i, true));
                    for p in pieces.iter().rev() {
                        if let derive::Piece::Ref(j) = *p {
                            stack.push((j as usize, false));
                        }
                    }
                    continue;
                }
                let mut parts = Vec::with_capacity(pieces.len());
                for p in pieces {
                    parts.push(match *p {
                        derive::Piece::Ref(j) => {
                            let (t, off) = resolved[j as usize];
                            match t {
                                tag::STR => format::Part::Plain(off),
                                tag::FSST => format::Part::Fsst(off),
                                _ => format::Part::Derived(off),
                            }
                        }
                        derive::Piece::Literal(a, b) => {
                            let lit = &s[a as usize..b as usize];
                            if pooled.contains(lit) {
                                format::Part::Plain(intern(lit, true, true)?)
                            } else {
                                format::Part::Literal(lit)
                            }
                        }
                    });
                }
                // The entry is appended, never shared: its parts must lie below it.
                let at = start + pool_end.get() as u32;
                entry.clear();
                for part in parts {
                    format::put_part(&mut entry, part, at);
                }
                if s.len() <= format::MAX_DERIVED_RATIO * (entry.len() + 1) {
                    resolved[i] = (tag::DERIVED, intern(&entry, false, false)?);
                    continue;
                }
                // Expands more than the format allows (its references came out shorter
                // than estimated): stored as it would be otherwise.
            }
            entry.clear();
            let (t, base) = match modes[i] {
                Mode::Plain => (tag::STR, true),
                Mode::Fsst(_) => {
                    if fsst_bytes(i, &mut entry) && entry.len() < s.len() {
                        (tag::FSST, false)
                    } else {
                        entry.clear();
                        (tag::STR, true)
                    }
                }
                Mode::Cold => match cold_at[i] {
                    // No pool entry: the slot holds the string's number.
                    Some(n) => {
                        resolved[i] = (tag::COLD_DIRECT, n);
                        continue;
                    }
                    None => (tag::STR, true),
                },
            };
            let bytes: &[u8] = if t == tag::STR { s } else { &entry };
            resolved[i] = (t, intern(bytes, base, true)?);
        }
    }
    let data = enc.narrow(
        |id| {
            resolved
                .get(id as usize)
                .copied()
                .ok_or_else(|| Error::Corrupt {
                    what: format!("pending string {id}"),
                })
        },
        |s| intern(s, true, true),
    )?;
    if u64::from(start) + pool.len() as u64 >= MAX_SECTION_LEN {
        return Err(Error::Limit {
            what: "pool bytes (with the base's)",
            limit: MAX_SECTION_LEN,
        });
    }
    Ok(Finished {
        pool,
        data,
        symbols,
        cold,
        pool_entries: enc.pool.len() + new_entries,
    })
}

/// For each string, the parts it is stored as if it is derived (FORMAT.md "POOL"):
/// where that costs less than `own_cost(i)` (its entry as it would be stored otherwise),
/// it nests at most [`format::MAX_DERIVED_DEPTH`] deep, and it expands at most
/// [`format::MAX_DERIVED_RATIO`] times its entry.
fn derivations<'s>(
    strings: &'s Strings,
    modes: &[Mode],
    own_cost: impl Fn(usize) -> usize + Sync,
) -> (
    Vec<Option<Vec<derive::Piece>>>,
    hashbrown::HashSet<&'s [u8]>,
) {
    let n = strings.len();
    // Cold strings are neither derived nor parts (a part must be cheap to read).
    let usable = |j: u32| modes[j as usize] != Mode::Cold;
    let ids: Vec<usize> = (0..n).collect();
    let chunks: Vec<&[usize]> = ids.chunks(CODE_CHUNK).collect();
    let found: Vec<Option<Vec<derive::Piece>>> = parallel_map(&chunks, |chunk| {
        chunk
            .iter()
            .map(|&i| {
                if !usable(i as u32) {
                    return None;
                }
                let s = strings.get(i);
                let pieces = derive::split(strings, i as u32, s, usable)?;
                let cost = derive::cost(&pieces);
                (cost + 1 < own_cost(i) && s.len() <= format::MAX_DERIVED_RATIO * cost)
                    .then_some(pieces)
            })
            .collect::<Vec<_>>()
    })
    .into_iter()
    .flatten()
    .collect();
    // Depths, shortest first (parts are shorter than what they make).
    let mut order: Vec<usize> = (0..n).filter(|&i| found[i].is_some()).collect();
    order.sort_by_key(|&i| (strings.get(i).len(), i));
    let mut depth = vec![0u8; n];
    let mut out = found;
    for i in order {
        let d = out[i].as_ref().map_or(0, |pieces| {
            1 + pieces
                .iter()
                .map(|p| match *p {
                    derive::Piece::Ref(j) => depth[j as usize],
                    derive::Piece::Literal(..) => 0,
                })
                .max()
                .unwrap_or(0)
        });
        if d > format::MAX_DERIVED_DEPTH {
            out[i] = None;
        } else {
            depth[i] = d;
        }
    }
    // A literal that more than one derived string has is a pool string of its own,
    // referred to (URL prefixes); one that a single string has stays in its entry.
    let mut seen: hashbrown::HashMap<&[u8], u32> = hashbrown::HashMap::new();
    for (i, pieces) in out.iter().enumerate() {
        for p in pieces.iter().flatten() {
            if let derive::Piece::Literal(a, b) = *p {
                let lit = &strings.get(i)[a as usize..b as usize];
                if lit.len() > derive::INLINE_LITERAL {
                    *seen.entry(lit).or_default() += 1;
                }
            }
        }
    }
    let pooled = seen
        .into_iter()
        .filter(|&(_, n)| n > 1)
        .map(|(lit, _)| lit)
        .collect();
    (out, pooled)
}

/// A cold string's (combined) number, FORMAT.md "COLD".
type ColdAt = Option<u32>;

/// Strings per chunk of FSST compression work.
const CODE_CHUNK: usize = 4096;

/// The COLD section (empty if no string goes cold) and each string's combined cold
/// number (`None` where the string is not cold, or its block did not pay); `first` is the
/// first number of this file (the base chain's end).
fn cold_section(
    strings: &Strings,
    modes: &[Mode],
    level: i32,
    first: u32,
) -> Result<(Vec<u8>, Vec<ColdAt>)> {
    let cold_ids: Vec<usize> = (0..strings.len())
        .filter(|&i| modes[i] == Mode::Cold)
        .collect();
    let mut cold_at: Vec<ColdAt> = vec![None; strings.len()];
    if cold_ids.is_empty() {
        return Ok((Vec::new(), cold_at));
    }
    let raw: Vec<&[u8]> = cold_ids.iter().map(|&i| strings.get(i)).collect();
    let encoder = ColdEncoder::train(&raw, level);
    // Consecutive cold strings (in first-seen order: one record's text together) form
    // blocks of about COLD_BLOCK bytes and at most COLD_BLOCK_STRINGS strings, one frame
    // each.
    let mut blocks: Vec<std::ops::Range<usize>> = Vec::new();
    let mut from = 0;
    let mut size = 0;
    for (k, s) in raw.iter().enumerate() {
        if size > 0 && size + s.len() > crate::cold::MAX_BLOCK {
            blocks.push(from..k);
            (from, size) = (k, 0);
        }
        size += s.len();
        if size >= COLD_BLOCK || k + 1 - from == format::COLD_BLOCK_STRINGS {
            blocks.push(from..k + 1);
            (from, size) = (k + 1, 0);
        }
    }
    if from < raw.len() {
        blocks.push(from..raw.len());
    }
    let joined: Vec<Vec<u8>> = blocks.iter().map(|r| raw[r.clone()].concat()).collect();
    let inputs: Vec<&[u8]> = joined.iter().map(Vec::as_slice).collect();
    // The blocks are compressed on all threads (the output does not depend on them).
    // At high levels this is most of a build's time.
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let frames = compress_blocks(&encoder, &inputs, threads).ok_or_else(|| Error::Corrupt {
        what: "zstd failed to compress a cold block".into(),
    })?;
    // The entries of the blocks that pay: those that save more than their entry's bytes
    // and directory slot, and expand within the format's bound. The strings of the others
    // stay in the pool (`cold_at` is `None` for them).
    let mut entries = Vec::new();
    let mut offsets: Vec<usize> = Vec::new();
    let mut lengths = Vec::new();
    for ((r, block), frame) in blocks.iter().zip(&joined).zip(&frames) {
        lengths.clear();
        lengths.extend(raw[r.clone()].iter().map(|s| s.len()));
        let at = entries.len();
        format::put_cold_block(&mut entries, &lengths, frame);
        let entry = entries.len() - at;
        if entry + 4 >= block.len() || block.len() > format::MAX_COLD_RATIO * entry {
            entries.truncate(at);
            continue;
        }
        let number = u64::from(first) + ((offsets.len() as u64) << format::COLD_BLOCK_BITS);
        if number + format::COLD_BLOCK_STRINGS as u64 >= MAX_SECTION_LEN {
            return Err(Error::Limit {
                what: "cold string numbers (with the base's)",
                limit: MAX_SECTION_LEN,
            });
        }
        for (j, k) in r.clone().enumerate() {
            cold_at[cold_ids[k]] = Some(number as u32 + j as u32);
        }
        offsets.push(at);
    }
    if offsets.is_empty() {
        return Ok((Vec::new(), cold_at));
    }
    let dict = encoder.dict();
    let head = 4 + dict.len() + 4 + 4 * offsets.len();
    let mut cold = Vec::with_capacity(head + entries.len());
    cold.extend_from_slice(&(dict.len() as u32).to_le_bytes());
    cold.extend_from_slice(dict);
    cold.extend_from_slice(&(offsets.len() as u32).to_le_bytes());
    for at in &offsets {
        let at = u32::try_from(head + at).map_err(|_| Error::Limit {
            what: "cold section bytes",
            limit: MAX_SECTION_LEN,
        })?;
        cold.extend_from_slice(&at.to_le_bytes());
    }
    cold.extend_from_slice(&entries);
    Ok((cold, cold_at))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cold_frames_come_back_in_order_whatever_the_threads() {
        let owned: Vec<Vec<u8>> = (0..300)
            .map(|i| format!("Block {i}: the fraction {} over {}. ", i * 7, i % 13).repeat(40))
            .map(String::into_bytes)
            .collect();
        let blocks: Vec<&[u8]> = owned.iter().map(Vec::as_slice).collect();
        for level in [3, 16] {
            let enc = ColdEncoder::train(&blocks, level);
            assert!(!enc.dict().is_empty());
            let whole = enc.compress_all(&blocks).unwrap();
            for threads in [0, 1, 2, 3, 5, 16] {
                for n in [0, 1, 2, 3, 17, 300] {
                    let frames = compress_blocks(&enc, &blocks[..n], threads).unwrap();
                    assert_eq!(frames, whole[..n], "level {level}, {threads} threads, {n}");
                }
            }
        }
    }

    #[test]
    fn parallel_map_keeps_the_order() {
        for n in [0usize, 1, 2, 7, 1000] {
            let items: Vec<usize> = (0..n).collect();
            let squares: Vec<usize> = (0..n).map(|i| i * i).collect();
            assert_eq!(parallel_map(&items, |&i| i * i), squares);
        }
    }
}
