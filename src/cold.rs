//! The cold section's codec: long strings compressed one zstd frame each, with a
//! dictionary trained per snapshot (FORMAT.md "COLD").
//!
//! The frames are decoded by libzstd (through the `zstd` crate), which is written and
//! fuzzed for untrusted input; fms bounds every call: a frame is decoded into a buffer of
//! exactly the length its entry states (at most [`MAX_COLD_LEN`]), and anything else —
//! a frame that is longer, shorter, or malformed, or a dictionary zstd refuses — is a
//! decode failure (`None`), never a panic.
//!
//! The digested dictionary a reader needs is built on the first cold read of a file and
//! kept with it ([`ColdCache`]): its heap is what zstd's `ZSTD_sizeof_DDict` reports (the
//! dictionary's bytes plus ~27 KiB of tables). Each reading thread keeps one zstd
//! decompression context (~95 KiB) for all snapshots.

use std::cell::RefCell;
use std::sync::OnceLock;

use zstd::zstd_safe::{self, CParameter, DCtx, DDict};

/// Longest block (and so string) the cold section holds: the most one cold read decodes
/// and allocates.
pub const MAX_COLD_LEN: usize = 1 << 24;

/// Blocks the builder writes are at most this long (a string longer than the block
/// target is a block of its own, up to [`MAX_COLD_LEN`]).
pub const MAX_BLOCK: usize = 1 << 20;

/// Largest dictionary the builder trains: 128 KiB. On the content-site corpus, a
/// dictionary of 128 KiB rather than 64 makes the es overlay's cold section 1.5% smaller
/// at zstd level 3 (en's 0.1%) and ~7% at level 16; 192 KiB gave nothing more at level
/// 3 and little at 16 (BENCHMARKS.md), and costs a reader more heap (its digested
/// dictionary is about the dictionary's size plus 27 KiB, made on the first cold read of
/// a file).
pub const DICT_SIZE: usize = 128 * 1024;

/// Fewest sample bytes that get a dictionary (of a sixteenth of their size, up to
/// [`DICT_SIZE`]): zstd's trainer wants many samples and much more input than the
/// dictionary it makes; with less, a dictionary does not pay for itself.
const DICT_MIN_SAMPLES: usize = 256 * 1024;

/// Most sample bytes the dictionary is trained on (taken in order from the cold strings).
const DICT_SAMPLE_BYTES: usize = 8 << 20;

/// The digested dictionary of one file, built on its first cold read, and the file's
/// number for the readers' block cache.
pub(crate) struct ColdCache {
    ddict: OnceLock<Option<DDict<'static>>>,
    /// Unique in the process, never reused: a decoded block cached under it can only be
    /// this file's (see `read::text`), even after the file is dropped and another one is
    /// mapped at the same address.
    id: u64,
}

impl Default for ColdCache {
    fn default() -> Self {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        ColdCache {
            ddict: OnceLock::new(),
            id: NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        }
    }
}

impl ColdCache {
    /// This file's number (never 0, never reused in the process).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Bytes of heap the digested dictionary holds (0 before the first cold read).
    pub fn heap_bytes(&self) -> usize {
        self.ddict
            .get()
            .and_then(|d| d.as_ref())
            .map_or(0, DDict::sizeof)
    }
}

impl Clone for ColdCache {
    /// A fresh, empty cache (the dictionary is rebuilt on demand).
    fn clone(&self) -> Self {
        ColdCache::default()
    }
}

impl std::fmt::Debug for ColdCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ColdCache({} bytes)", self.heap_bytes())
    }
}

/// The cold block decoded last, kept for the next read of the same block: a record's long
/// strings, and consecutive records', share blocks, so walks that meet them in turn
/// decode each block about once.
pub(crate) struct LastBlock {
    /// `(file's ColdCache id, frame address, frame length, decoded length)`: equal keys
    /// mean the same frame bytes of a file that is still mapped (the caller reads from
    /// it, and ids are never reused), so the same decoded block.
    key: Option<(u64, usize, usize, usize)>,
    block: Vec<u8>,
}

impl Default for LastBlock {
    fn default() -> Self {
        Self::new()
    }
}

impl LastBlock {
    pub const fn new() -> LastBlock {
        LastBlock {
            key: None,
            block: Vec::new(),
        }
    }

    /// The decoded block of `frame` (`block_len` bytes once decoded) of the file whose
    /// dictionary is `dict` and cache `cache`, decoded unless it is the block held; `None`
    /// if it does not decode.
    pub fn get(
        &mut self,
        dict: &[u8],
        cache: &ColdCache,
        frame: &[u8],
        block_len: usize,
    ) -> Option<&[u8]> {
        let key = (cache.id(), frame.as_ptr() as usize, frame.len(), block_len);
        if self.key != Some(key) {
            self.key = None;
            self.block.clear();
            decompress(dict, cache, frame, block_len, &mut self.block)?;
            self.key = Some(key);
        }
        Some(&self.block)
    }

    /// Lets the buffer go if it grew past `max` bytes.
    pub fn shrink_to(&mut self, max: usize) {
        if self.block.capacity() > max {
            *self = LastBlock::new();
        }
    }
}

thread_local! {
    static DCTX: RefCell<Option<DCtx<'static>>> = const { RefCell::new(None) };
}

/// Bytes of this thread's decompression context (0 before its first cold read).
pub(crate) fn context_bytes() -> usize {
    DCTX.with(|cell| {
        cell.try_borrow()
            .ok()
            .and_then(|c| c.as_ref().map(DCtx::sizeof))
            .unwrap_or(0)
    })
}

/// Decodes `frame` (compressed with the dictionary `dict`, empty for none) and appends
/// exactly `raw_len` bytes to `out`; `None` (and `out` as it was) if the frame does not
/// decode to exactly that many bytes.
pub(crate) fn decompress(
    dict: &[u8],
    cache: &ColdCache,
    frame: &[u8],
    raw_len: usize,
    out: &mut Vec<u8>,
) -> Option<()> {
    if raw_len > MAX_COLD_LEN {
        return None;
    }
    let ddict = if dict.is_empty() {
        None
    } else {
        Some(
            cache
                .ddict
                .get_or_init(|| DDict::try_create(dict))
                .as_ref()?,
        )
    };
    let start = out.len();
    out.try_reserve_exact(raw_len).ok()?;
    // zstd writes past the cursor, into the spare capacity (about `raw_len` bytes) and
    // no further: a frame that needs more is an error.
    let mut cursor = std::io::Cursor::new(std::mem::take(out));
    cursor.set_position(start as u64);
    let n = DCTX.with(|cell| {
        let mut slot = cell.try_borrow_mut().ok()?;
        if slot.is_none() {
            *slot = Some(DCtx::try_create()?);
        }
        let dctx = slot.as_mut()?;
        match ddict {
            Some(d) => dctx.decompress_using_ddict(&mut cursor, frame, d),
            None => dctx.decompress(&mut cursor, frame),
        }
        .ok()
    });
    *out = cursor.into_inner();
    if n != Some(raw_len) || out.len() != start + raw_len {
        out.truncate(start);
        return None;
    }
    Some(())
}

/// The build side: a dictionary trained on the cold strings and a compressor using it.
pub(crate) struct ColdEncoder {
    dict: Vec<u8>,
    level: i32,
}

impl ColdEncoder {
    /// Trains a dictionary of at most [`DICT_SIZE`] bytes on `samples` (the first
    /// [`DICT_SAMPLE_BYTES`] of them, in order, so the build stays deterministic). Too
    /// few samples for zstd's trainer give no dictionary (plain frames).
    pub fn train(samples: &[&[u8]], level: i32) -> ColdEncoder {
        let mut taken = Vec::new();
        let mut total = 0usize;
        for s in samples {
            if total + s.len() > DICT_SAMPLE_BYTES {
                break;
            }
            total += s.len();
            taken.push(*s);
        }
        let dict = if taken.len() >= 64 && total >= DICT_MIN_SAMPLES {
            zstd::dict::from_samples(&taken, DICT_SIZE.min(total / 16)).unwrap_or_default()
        } else {
            Vec::new()
        };
        ColdEncoder { dict, level }
    }

    /// The dictionary (empty for none).
    pub fn dict(&self) -> &[u8] {
        &self.dict
    }

    /// Compresses each of `strings` into one frame; `None` if zstd fails.
    pub fn compress_all(&self, strings: &[&[u8]]) -> Option<Vec<Vec<u8>>> {
        let mut cctx = zstd_safe::CCtx::try_create()?;
        let cdict;
        if !self.dict.is_empty() {
            cdict = zstd_safe::CDict::try_create(&self.dict, self.level)?;
            cctx.ref_cdict(&cdict).ok()?;
        }
        for p in [
            CParameter::CompressionLevel(self.level),
            CParameter::ContentSizeFlag(false),
            CParameter::ChecksumFlag(false),
            CParameter::DictIdFlag(false),
        ] {
            cctx.set_parameter(p).ok()?;
        }
        let mut out = Vec::with_capacity(strings.len());
        for s in strings {
            let mut frame = Vec::with_capacity(zstd_safe::compress_bound(s.len()));
            cctx.compress2(&mut frame, s).ok()?;
            out.push(frame);
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(i: usize) -> Vec<u8> {
        format!(
            "Article {i}: the quick brown fox jumps over the lazy dog, number {}. ",
            i * 7
        )
        .repeat(20)
        .into_bytes()
    }

    #[test]
    fn frames_round_trip_with_and_without_a_dictionary() {
        let owned: Vec<Vec<u8>> = (0..400).map(text).collect();
        let samples: Vec<&[u8]> = owned.iter().map(Vec::as_slice).collect();
        for enc in [
            ColdEncoder::train(&samples, 3),
            ColdEncoder::train(&samples[..2], 3),
        ] {
            let frames = enc.compress_all(&samples).unwrap();
            let cache = ColdCache::default();
            for (s, f) in samples.iter().zip(&frames) {
                let mut out = b"x".to_vec();
                decompress(enc.dict(), &cache, f, s.len(), &mut out).unwrap();
                assert_eq!(&out[1..], *s);
                // A wrong stated length fails and leaves the buffer as it was.
                let mut out = b"x".to_vec();
                assert!(decompress(enc.dict(), &cache, f, s.len() - 1, &mut out).is_none());
                assert!(decompress(enc.dict(), &cache, f, s.len() + 1, &mut out).is_none());
                assert_eq!(out, b"x");
            }
        }
        assert!(!ColdEncoder::train(&samples, 3).dict().is_empty());
    }

    #[test]
    fn frames_do_not_depend_on_how_blocks_are_split_between_contexts() {
        // The builder compresses runs of blocks on different threads, each with its own
        // context (`build::strings::compress_blocks`, tested there for the order of the
        // frames): a frame must depend on its block and the dictionary alone.
        let owned: Vec<Vec<u8>> = (0..300).map(text).collect();
        let samples: Vec<&[u8]> = owned.iter().map(Vec::as_slice).collect();
        for level in [3, 16] {
            let enc = ColdEncoder::train(&samples, level);
            assert!(!enc.dict().is_empty());
            let whole = enc.compress_all(&samples).unwrap();
            for k in [1, 7, 150, 299] {
                let mut split = enc.compress_all(&samples[..k]).unwrap();
                split.extend(enc.compress_all(&samples[k..]).unwrap());
                assert_eq!(split, whole, "level {level}, split at {k}");
            }
        }
    }

    #[test]
    fn a_dictionary_takes_256_kib_of_samples() {
        // 64 samples (the fewest that get one) of 4,096 bytes: exactly 256 KiB.
        let owned: Vec<Vec<u8>> = (0..64)
            .map(|i| {
                (0..4096)
                    .map(|k| b"abcdefgh "[(k * 7 + i * 13 + k / 9) % 9])
                    .collect()
            })
            .collect();
        let samples: Vec<&[u8]> = owned.iter().map(Vec::as_slice).collect();
        assert_eq!(
            samples.iter().map(|s| s.len()).sum::<usize>(),
            DICT_MIN_SAMPLES
        );
        assert!(!ColdEncoder::train(&samples, 3).dict().is_empty());
        // One byte less, or one sample less: none.
        let short: Vec<&[u8]> = samples
            .iter()
            .enumerate()
            .map(|(i, s)| if i == 0 { &s[1..] } else { *s })
            .collect();
        assert!(ColdEncoder::train(&short, 3).dict().is_empty());
        assert!(ColdEncoder::train(&samples[1..], 3).dict().is_empty());
    }

    #[test]
    fn the_largest_dictionary_digests_within_the_heap_target() {
        // Word salad over 2,000 made-up words, 4 MB in 1,000 samples: enough for the
        // trainer to fill a dictionary of DICT_SIZE, whose digested form a reader holds per
        // file (the target: at most 256 KiB of heap per snapshot).
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || crate::fsst::next(&mut x);
        let words: Vec<String> = (0..2000)
            .map(|_| {
                (0..3 + next() % 6)
                    .map(|_| (b'a' + (next() % 26) as u8) as char)
                    .collect()
            })
            .collect();
        let owned: Vec<Vec<u8>> = (0..1000)
            .map(|_| {
                let mut s = String::new();
                while s.len() < 4000 {
                    s.push_str(&words[(next() % 2000) as usize]);
                    s.push(' ');
                }
                s.into_bytes()
            })
            .collect();
        let samples: Vec<&[u8]> = owned.iter().map(Vec::as_slice).collect();
        let enc = ColdEncoder::train(&samples, 3);
        assert!(
            enc.dict().len() > DICT_SIZE / 2 && enc.dict().len() <= DICT_SIZE,
            "{} B",
            enc.dict().len()
        );
        let frames = enc.compress_all(&samples[..1]).unwrap();
        let cache = ColdCache::default();
        let mut out = Vec::new();
        decompress(enc.dict(), &cache, &frames[0], samples[0].len(), &mut out).unwrap();
        assert_eq!(out, samples[0]);
        let heap = cache.heap_bytes();
        assert!(heap > enc.dict().len() && heap <= 256 * 1024, "{heap} B");
    }

    #[test]
    fn garbage_frames_and_dictionaries_fail_cleanly() {
        let cache = ColdCache::default();
        let mut out = Vec::new();
        for frame in [&b""[..], b"\x28\xb5\x2f\xfd", b"garbage", &[0xff; 64]] {
            assert!(decompress(b"", &cache, frame, 10, &mut out).is_none());
            assert!(
                decompress(&[0x37, 0xa4, 0x30, 0xec, 1, 2], &cache, frame, 10, &mut out).is_none()
            );
        }
        assert!(out.is_empty());
        assert!(decompress(b"", &cache, b"", MAX_COLD_LEN + 1, &mut out).is_none());
    }
}
