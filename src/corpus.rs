//! A deterministic synthetic corpus shaped like a content site, for benchmarks, the demo
//! and `fms gen`.
//!
//! Scale 1 is the size of the site that motivated this crate: 26,100 entities —
//! 2,000 topics, 6,400 videos, 15,700 exercises and 2,000 articles whose bodies are
//! 5–20 KB of structured text (a list of `{"type": "paragraph", "text": ...}`, heading,
//! list, image, math and callout blocks). Records carry 20–35 realistic fields each: slug,
//! title, description, keyword lists, YouTube ids, durations, ISO dates, author lists, urls
//! built from slugs, listed locales, prerequisite and child id lists (ids of other records,
//! such as `"exercise:x1a2b3c4d"`), problem types as nested maps, booleans and nulls.
//!
//! Text reads like prose: words are drawn with a Zipf-like law from a fixed vocabulary of
//! 4,096 pseudo-words per locale, so titles, descriptions and bodies are mostly unique, as
//! on a real site, while what a real site repeats (kinds, licenses, locale lists, authors,
//! flags, popular keywords) repeats.
//!
//! Every locale has the same ids and the same structure. Each non-default locale
//! translates a fraction [`CorpusConfig::translated`] of the text fields (title,
//! description, keywords, article body text), each field decided independently, with a
//! word-for-word dictionary into that locale's own vocabulary; every other value is
//! identical to the default locale's tree.
//!
//! # Determinism
//!
//! The output is a function of the [`CorpusConfig`] alone: the generator is an inline
//! SplitMix64 (no `rand`, no randomly seeded hashing), so the same configuration gives
//! identical records across runs, platforms and crate versions (a change to the output
//! is a changelog entry). Each record comes from its own stream, keyed by seed, kind and
//! index, so [`records`] streams a tree without holding it.
//!
//! ```
//! use fms::corpus::{CorpusConfig, generate};
//! let cfg = CorpusConfig { scale: 0.01, locales: vec!["en".into(), "es".into()], ..Default::default() };
//! let corpus = generate(&cfg);
//! let (en, es) = (corpus.default_tree(), corpus.tree("es").unwrap());
//! assert_eq!(en.len(), es.len());
//! assert_eq!(en[0].0, es[0].0); // same ids in every locale
//! let (_, video) = en.iter().find(|(id, _)| id.starts_with("video:")).unwrap();
//! assert!(video["title"].is_string() && video["duration"].is_u64());
//! ```

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

use serde_json::{Map, Value};

/// What to generate. The defaults give the scale-1 English tree.
#[derive(Clone, Debug, PartialEq)]
pub struct CorpusConfig {
    /// Size multiplier: scale 1 is 26,100 entities; counts scale linearly (rounded, with
    /// at least one topic when there is any content). Clamped to `0..=100_000`.
    pub scale: f64,
    /// The seed: every value is a function of it.
    pub seed: u64,
    /// Locale codes; the first is the default locale, the others translate part of it.
    /// Empty means `["en"]`.
    pub locales: Vec<String>,
    /// Fraction (`0.0..=1.0`) of the text fields each non-default locale translates.
    pub translated: f64,
}

impl Default for CorpusConfig {
    fn default() -> CorpusConfig {
        CorpusConfig {
            scale: 1.0,
            seed: 1,
            locales: vec!["en".to_owned()],
            translated: 0.7,
        }
    }
}

impl CorpusConfig {
    /// How many entities of each kind this configuration generates. O(1).
    pub fn counts(&self) -> Counts {
        let s = if self.scale.is_finite() {
            self.scale.clamp(0.0, 100_000.0)
        } else {
            0.0
        };
        let n = |base: f64| (base * s).round() as u64;
        let (videos, exercises, articles) = (n(6_400.0), n(15_700.0), n(2_000.0));
        let mut topics = n(2_000.0);
        if topics == 0 && videos + exercises + articles > 0 {
            topics = 1;
        }
        Counts {
            topics,
            videos,
            exercises,
            articles,
        }
    }

    /// The locale codes, with the `["en"]` default applied.
    pub fn locale_codes(&self) -> Vec<String> {
        if self.locales.is_empty() {
            vec!["en".to_owned()]
        } else {
            self.locales.clone()
        }
    }

    fn translated_fraction(&self) -> f64 {
        if self.translated.is_nan() {
            0.0
        } else {
            self.translated.clamp(0.0, 1.0)
        }
    }
}

/// Entity counts per kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Counts {
    /// Topics: the tree's inner nodes (domains, subjects, units, lessons).
    pub topics: u64,
    /// Videos.
    pub videos: u64,
    /// Exercises.
    pub exercises: u64,
    /// Articles (with large structured bodies).
    pub articles: u64,
}

impl Counts {
    /// All entities.
    pub fn total(&self) -> u64 {
        self.topics + self.videos + self.exercises + self.articles
    }
}

/// A generated corpus: one tree of `(id, object)` records per locale, all with the same
/// ids in the same order (topics, then videos, exercises and articles).
#[derive(Clone, Debug, PartialEq)]
pub struct Corpus {
    /// The locale codes; the first is the default locale.
    pub locales: Vec<String>,
    /// One tree per locale, in the order of `locales`.
    pub trees: Vec<Vec<(String, Value)>>,
}

impl Corpus {
    /// The default locale's tree.
    pub fn default_tree(&self) -> &[(String, Value)] {
        &self.trees[0]
    }

    /// The tree of locale `code`, if generated.
    pub fn tree(&self, code: &str) -> Option<&[(String, Value)]> {
        let i = self.locales.iter().position(|l| l == code)?;
        Some(&self.trees[i])
    }
}

/// Generates every locale's tree. Scale 1 with one locale takes well under a second in
/// release builds; memory is that of the `serde_json` values (use [`records`] to stream).
pub fn generate(cfg: &CorpusConfig) -> Corpus {
    let locales = cfg.locale_codes();
    let trees = (0..locales.len())
        .map(|i| records(cfg, i).collect())
        .collect();
    Corpus { locales, trees }
}

/// Streams the tree of locale number `locale_index` (0 is the default locale), in the
/// same order as [`generate`]. Each record is generated on demand, from its own stream.
///
/// # Panics
///
/// If `locale_index` is not below the number of locales ([`CorpusConfig::locale_codes`]).
pub fn records(cfg: &CorpusConfig, locale_index: usize) -> Records {
    let locales = cfg.locale_codes();
    assert!(
        locale_index < locales.len(),
        "locale index {locale_index} out of range for {} locales",
        locales.len()
    );
    let counts = cfg.counts();
    let vocab = Vocab::new(&locales[0]);
    let translator = (locale_index > 0).then(|| Translator {
        locale_salt: str_hash(&locales[locale_index]),
        fraction: cfg.translated_fraction(),
        from: vocab.index(),
        to: Vocab::new(&locales[locale_index]),
    });
    let topics = counts.topics;
    Records {
        g: Gen {
            seed: cfg.seed,
            counts,
            first_leaf: if topics == 0 {
                0
            } else {
                (topics + BRANCHING - 2) / BRANCHING
            },
            default_locale: locales[0].clone(),
            vocab,
            authors: authors(),
        },
        translator,
        next: 0,
        total: counts.total(),
    }
}

/// The naive in-memory baseline that benchmarks and examples compare fms with: JSONL
/// (one object per line with a string `"id"`, as [`jsonl_line`] writes) parsed into
/// `id → object`, the id removed from the object, as a server holding the tree in a
/// `HashMap<String, serde_json::Value>` would. Blank lines are skipped; an error names the
/// 1-based line.
///
/// ```
/// let lines = ["{\"id\":\"v:1\",\"title\":\"Intro\"}", ""];
/// let map = fms::corpus::hashmap_of_jsonl(lines).unwrap();
/// assert_eq!(map["v:1"]["title"], "Intro");
/// assert!(fms::corpus::hashmap_of_jsonl(["{\"title\":1}"]).is_err());
/// ```
pub fn hashmap_of_jsonl<'a>(
    lines: impl IntoIterator<Item = &'a str>,
) -> Result<HashMap<String, Value>, String> {
    let lines = lines.into_iter();
    let mut map = HashMap::with_capacity(lines.size_hint().0);
    for (n, line) in lines.enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let mut v: Value =
            serde_json::from_str(line).map_err(|e| format!("line {}: {e}", n + 1))?;
        let id = match v.as_object_mut().and_then(|m| m.remove("id")) {
            Some(Value::String(id)) => id,
            _ => return Err(format!("line {}: no string \"id\"", n + 1)),
        };
        map.insert(id, v);
    }
    Ok(map)
}

/// One record as a JSONL line (without the newline): `{"id": <id>, ...fields}`, the input
/// `fms build --id-field id` expects.
pub fn jsonl_line(id: &str, record: &Value) -> String {
    jsonl_line_as("id", id, record).unwrap_or_default()
}

/// Any serializable map (a `serde_json` object, a [`crate::Record`], a [`crate::TupleMap`])
/// as a JSONL line with its id first under `id_field`: what `fms export` writes and
/// `fms build --id-field <id_field>` reads back. Fails if `record` cannot be serialized
/// (e.g. a corrupt record) or is not a map.
pub fn jsonl_line_as<T: serde::Serialize + ?Sized>(
    id_field: &str,
    id: &str,
    record: &T,
) -> serde_json::Result<String> {
    use serde::ser::Error as _;
    let fields = serde_json::to_string(record)?;
    let key = serde_json::to_string(id_field)?;
    let id = serde_json::to_string(id)?;
    match fields.strip_prefix('{') {
        Some("}") => Ok(format!("{{{key}:{id}}}")),
        Some(rest) => Ok(format!("{{{key}:{id},{rest}")),
        None => Err(serde_json::Error::custom("record is not a map")),
    }
}

/// The iterator returned by [`records`]: `(id, object)` pairs.
pub struct Records {
    g: Gen,
    translator: Option<Translator>,
    next: u64,
    total: u64,
}

impl Iterator for Records {
    type Item = (String, Value);

    fn next(&mut self) -> Option<(String, Value)> {
        if self.next >= self.total {
            return None;
        }
        let (kind, i) = self.g.locate(self.next);
        self.next += 1;
        let mut rec = self.g.record(kind, i);
        if let Some(t) = &self.translator {
            t.apply(self.g.seed, kind, i, &mut rec);
        }
        Some((self.g.id(kind, i), Value::Object(rec)))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = usize::try_from(self.total - self.next).unwrap_or(usize::MAX);
        (n, Some(n))
    }
}

impl ExactSizeIterator for Records {}

// ---------------------------------------------------------------------------------------
// Randomness: SplitMix64, keyed streams, stable string hashing.

/// SplitMix64 (Steele, Lea, Flood 2014): tiny, fast, and fixed forever.
struct Rng(u64);

const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

/// The SplitMix64 finalizer: a bijective mix of 64 bits.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A stream keyed by `parts`: distinct keys give unrelated streams.
fn stream(parts: &[u64]) -> Rng {
    Rng(parts.iter().fold(0x6A09_E667_F3BC_C909, |h, &p| {
        mix(h ^ p).wrapping_add(GOLDEN)
    }))
}

/// FNV-1a: a stable hash for locale codes (std's hashers are randomly seeded or
/// unspecified across versions).
fn str_hash(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(GOLDEN);
        mix(self.0)
    }

    /// Uniform in `0..n` (`n > 0`), by multiply-shift; the bias is below 2^-40 for the
    /// ranges used here.
    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    /// Uniform in `[0, 1)`: exact integer-to-float conversion and a multiplication by a
    /// power of two, so the same on every platform.
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len() as u64) as usize]
    }

    /// Zipf-like rank in `0..n` (`n > 0`): rank `r` has probability about `1 / (r + 1)`,
    /// the law of word frequencies in prose. Octaves `{0}, {1}, [2, 4), [4, 8), …` are
    /// equally likely, ranks within an octave uniform. Integer arithmetic only: `powf`
    /// and friends may differ between platforms and Rust versions, which would break the
    /// promise that a seed always gives the same corpus.
    fn zipf(&mut self, n: usize) -> usize {
        let octaves = u64::from(usize::BITS - (n - 1).leading_zeros());
        loop {
            let r = match self.below(octaves + 1) {
                0 => 0,
                b => {
                    let lo = 1u64 << (b - 1);
                    lo + self.below(lo)
                }
            };
            if r < n as u64 {
                return r as usize;
            }
        }
    }

    /// `n` lowercase hex digits.
    fn hex(&mut self, out: &mut String, n: usize) {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut bits = 0u64;
        for i in 0..n {
            if i % 16 == 0 {
                bits = self.next_u64();
            }
            out.push(HEX[(bits & 15) as usize] as char);
            bits >>= 4;
        }
    }

    fn hex_string(&mut self, n: usize) -> String {
        let mut s = String::with_capacity(n);
        self.hex(&mut s, n);
        s
    }
}

/// A bijection of `u32` (the "lowbias32" integer hash): distinct indexes get distinct ids.
fn permute32(mut x: u32) -> u32 {
    x ^= x >> 16;
    x = x.wrapping_mul(0x7feb_352d);
    x ^= x >> 15;
    x = x.wrapping_mul(0x846c_a68b);
    x ^ (x >> 16)
}

// ---------------------------------------------------------------------------------------
// Vocabulary and text.

const VOCAB_LEN: usize = 4_096;
/// Ranks below this are function words ("the", "of", ...): short and frequent.
const FUNCTION_WORDS: usize = 64;

const ONSETS: &[&str] = &[
    "", "", "b", "c", "d", "f", "g", "h", "k", "l", "m", "n", "p", "r", "s", "t", "v", "w", "z",
    "br", "ch", "cl", "cr", "dr", "fl", "fr", "gl", "gr", "pl", "pr", "sc", "sh", "sl", "sp", "st",
    "str", "th", "tr", "qu",
];
const NUCLEI: &[&str] = &[
    "a", "e", "i", "o", "u", "a", "e", "i", "o", "ai", "ea", "ee", "ie", "io", "ou", "oa", "y",
];
const CODAS: &[&str] = &[
    "", "", "", "", "n", "r", "s", "l", "m", "t", "nd", "nt", "st", "rk", "ng", "x", "ct",
];

/// Letters that make a locale's pseudo-words look like its language.
fn locale_letters(code: &str) -> (&'static [&'static str], &'static [&'static str]) {
    match code.split(['-', '_']).next().unwrap_or("") {
        "es" => (&["ll", "ñ", "j"], &["á", "é", "í", "ó", "ue", "ie", "ú"]),
        "pt" => (&["lh", "nh", "ç", "j"], &["ã", "õ", "ão", "é", "ê", "á"]),
        "fr" => (&["ch", "j", "qu"], &["é", "è", "eau", "ou", "ê", "oi"]),
        "de" => (&["sch", "tz", "kr", "z"], &["ä", "ö", "ü", "ei", "au"]),
        "tr" => (&["ç", "ş", "ğ"], &["ı", "ö", "ü"]),
        _ => (&[], &[]),
    }
}

/// A locale's words, by frequency rank; low ranks are short.
struct Vocab {
    words: Vec<String>,
}

impl Vocab {
    /// The vocabulary of locale `code`: fixed for the code, independent of the seed.
    fn new(code: &str) -> Vocab {
        let (extra_onsets, extra_nuclei) = locale_letters(code);
        let onsets: Vec<&str> = ONSETS.iter().chain(extra_onsets).copied().collect();
        let nuclei: Vec<&str> = NUCLEI.iter().chain(extra_nuclei).copied().collect();
        let mut rng = stream(&[0x76_6f63_6162, str_hash(code)]);
        let mut seen = HashSet::with_capacity(VOCAB_LEN);
        let mut words = Vec::with_capacity(VOCAB_LEN);
        while words.len() < VOCAB_LEN {
            let rank = words.len();
            let syllables = match rank {
                0..FUNCTION_WORDS => 1,
                FUNCTION_WORDS..512 => rng.range(1, 2),
                512..2048 => rng.range(2, 3),
                _ => rng.range(2, 4),
            };
            let mut w = String::new();
            for s in 0..syllables {
                w.push_str(rng.pick::<&str>(&onsets));
                w.push_str(rng.pick::<&str>(&nuclei));
                if s + 1 == syllables || rng.chance(0.3) {
                    w.push_str(rng.pick::<&str>(CODAS));
                }
            }
            if w.chars().count() >= 2 && seen.insert(w.clone()) {
                words.push(w);
            }
        }
        Vocab { words }
    }

    /// Word → rank, for translation.
    fn index(&self) -> hashbrown::HashMap<String, usize> {
        self.words
            .iter()
            .enumerate()
            .map(|(i, w)| (w.clone(), i))
            .collect()
    }

    /// A word of running text.
    fn prose_word(&self, rng: &mut Rng) -> &str {
        &self.words[rng.zipf(VOCAB_LEN)]
    }

    /// A content word (no function words), for titles and keywords.
    fn content_word(&self, rng: &mut Rng) -> &str {
        &self.words[FUNCTION_WORDS + rng.below((VOCAB_LEN - FUNCTION_WORDS) as u64) as usize]
    }

    /// A content word drawn Zipf-like: popular keywords repeat across records.
    fn keyword(&self, rng: &mut Rng) -> &str {
        &self.words[FUNCTION_WORDS + rng.zipf(VOCAB_LEN - FUNCTION_WORDS)]
    }

    /// A sentence of `lo..=hi` words, capitalized, with the odd comma.
    fn sentence(&self, rng: &mut Rng, out: &mut String, lo: u64, hi: u64) {
        let n = rng.range(lo, hi);
        for i in 0..n {
            let w = self.prose_word(rng);
            if i == 0 {
                push_capitalized(out, w);
            } else {
                out.push(' ');
                out.push_str(w);
            }
            if i + 2 < n && rng.chance(0.08) {
                out.push(',');
            }
        }
        out.push(if rng.chance(0.05) { '?' } else { '.' });
    }

    /// `lo..=hi` sentences.
    fn prose(&self, rng: &mut Rng, lo: u64, hi: u64) -> String {
        let mut out = String::new();
        for i in 0..rng.range(lo, hi) {
            if i > 0 {
                out.push(' ');
            }
            self.sentence(rng, &mut out, 5, 18);
        }
        out
    }

    /// A title: 2–6 capitalized content words, sometimes joined by a function word.
    fn title(&self, rng: &mut Rng) -> String {
        let mut out = String::new();
        for i in 0..rng.range(2, 6) {
            if i > 0 {
                out.push(' ');
                if rng.chance(0.25) {
                    out.push_str(&self.words[rng.below(FUNCTION_WORDS as u64) as usize]);
                    out.push(' ');
                }
            }
            push_capitalized(&mut out, self.content_word(rng));
        }
        out
    }

    /// 3–10 keywords, one or two words each.
    fn keywords(&self, rng: &mut Rng) -> Value {
        let n = rng.range(3, 10);
        let mut list = Vec::with_capacity(n as usize);
        for _ in 0..n {
            let mut k = self.keyword(rng).to_owned();
            if rng.chance(0.3) {
                k.push(' ');
                k.push_str(self.keyword(rng));
            }
            list.push(Value::String(k));
        }
        Value::Array(list)
    }
}

fn push_capitalized(out: &mut String, w: &str) {
    let mut cs = w.chars();
    if let Some(c) = cs.next() {
        out.extend(c.to_uppercase());
        out.push_str(cs.as_str());
    }
}

/// `"some-title-words"`.
fn slugify(title: &str) -> String {
    let mut s = String::with_capacity(title.len());
    for c in title.chars() {
        if c.is_alphanumeric() {
            s.extend(c.to_lowercase());
        } else if !s.is_empty() && !s.ends_with('-') {
            s.push('-');
        }
    }
    while s.ends_with('-') {
        s.pop();
    }
    s
}

/// The site's authors: a fixed list; a few write most of the content.
fn authors() -> Vec<String> {
    let v = Vocab::new("names");
    let mut rng = stream(&[0x6175_7468_6f72]);
    (0..160)
        .map(|_| {
            let mut s = String::new();
            push_capitalized(&mut s, v.content_word(&mut rng));
            s.push(' ');
            push_capitalized(&mut s, v.content_word(&mut rng));
            s
        })
        .collect()
}

/// Locale codes by how often content is listed in them.
const LOCALES: &[&str] = &[
    "en", "es", "pt", "fr", "de", "tr", "hi", "bn", "zh-hans", "ja", "ko", "ru", "pl", "it", "nl",
    "cs", "uk", "ka", "hy", "id", "ms", "ta", "te", "ur", "sv", "nb", "da", "el", "bg", "sr", "hu",
    "ro", "vi", "th", "fa", "he", "ar", "az", "uz", "mn",
];

const LICENSES: &[(&str, &str)] = &[
    (
        "CC BY-NC-SA 3.0 US",
        "https://creativecommons.org/licenses/by-nc-sa/3.0/us/",
    ),
    (
        "CC BY-NC-ND 3.0 US",
        "https://creativecommons.org/licenses/by-nc-nd/3.0/us/",
    ),
    (
        "Standard YouTube License",
        "https://www.youtube.com/t/terms",
    ),
    ("CC BY 4.0", "https://creativecommons.org/licenses/by/4.0/"),
];

// ---------------------------------------------------------------------------------------
// Records.

/// Children per topic: the topic tree is a complete tree in heap order.
const BRANCHING: u64 = 6;
/// Seconds since the epoch of 2011-01-01 and of 2025-01-01.
const DATES: (u64, u64) = (1_293_840_000, 1_735_689_600);
const SITE: &str = "https://www.example.org";
const CDN: &str = "https://cdn.example.org";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Topic,
    Video,
    Exercise,
    Article,
}

impl Kind {
    fn prefix(self) -> &'static str {
        match self {
            Kind::Topic => "topic",
            Kind::Video => "video",
            Kind::Exercise => "exercise",
            Kind::Article => "article",
        }
    }
    fn name(self) -> &'static str {
        match self {
            Kind::Topic => "Topic",
            Kind::Video => "Video",
            Kind::Exercise => "Exercise",
            Kind::Article => "Article",
        }
    }
    /// The url segment of a content item (`/v/slug`).
    fn letter(self) -> &'static str {
        match self {
            Kind::Topic => "t",
            Kind::Video => "v",
            Kind::Exercise => "e",
            Kind::Article => "a",
        }
    }
    fn tag(self) -> u64 {
        match self {
            Kind::Topic => 1,
            Kind::Video => 2,
            Kind::Exercise => 3,
            Kind::Article => 4,
        }
    }
}

/// Stream salts: each part of a record draws from its own stream, so that e.g. a title
/// can be computed alone (for urls and child lists) and translating one field leaves
/// the others' randomness untouched.
mod salt {
    pub const TITLE: u64 = 1;
    pub const BODY: u64 = 2;
    pub const ID: u64 = 3;
    pub const TRANSLATE: u64 = 4;
}

/// The per-tree generation context.
struct Gen {
    seed: u64,
    counts: Counts,
    /// The first topic with no topic children; topics from here on hold content.
    first_leaf: u64,
    default_locale: String,
    vocab: Vocab,
    authors: Vec<String>,
}

fn put(m: &mut Map<String, Value>, k: &str, v: impl Into<Value>) {
    m.insert(k.to_owned(), v.into());
}

fn strings<I: IntoIterator<Item = String>>(it: I) -> Value {
    Value::Array(it.into_iter().map(Value::String).collect())
}

impl Gen {
    /// Position in the tree's order → kind and index within the kind.
    fn locate(&self, mut p: u64) -> (Kind, u64) {
        let c = self.counts;
        for (kind, n) in [
            (Kind::Topic, c.topics),
            (Kind::Video, c.videos),
            (Kind::Exercise, c.exercises),
        ] {
            if p < n {
                return (kind, p);
            }
            p -= n;
        }
        (Kind::Article, p)
    }

    fn count(&self, kind: Kind) -> u64 {
        match kind {
            Kind::Topic => self.counts.topics,
            Kind::Video => self.counts.videos,
            Kind::Exercise => self.counts.exercises,
            Kind::Article => self.counts.articles,
        }
    }

    /// `"video:x1a2b3c4d"`: unique per kind (a bijection of the index, below 2^32).
    fn id(&self, kind: Kind, i: u64) -> String {
        let salt = mix(self.seed ^ kind.tag().wrapping_mul(GOLDEN) ^ salt::ID) as u32;
        format!("{}:x{:08x}", kind.prefix(), permute32((i as u32) ^ salt))
    }

    fn rng(&self, kind: Kind, i: u64, part: u64) -> Rng {
        stream(&[self.seed, kind.tag(), i, part])
    }

    fn title(&self, kind: Kind, i: u64) -> String {
        self.vocab.title(&mut self.rng(kind, i, salt::TITLE))
    }

    fn slug(&self, kind: Kind, i: u64) -> String {
        slugify(&self.title(kind, i))
    }

    fn parent(t: u64) -> Option<u64> {
        (t > 0).then(|| (t - 1) / BRANCHING)
    }

    fn depth(mut t: u64) -> u64 {
        let mut d = 0;
        while let Some(p) = Gen::parent(t) {
            t = p;
            d += 1;
        }
        d
    }

    /// The depth-1 ancestor of topic `t` (a domain such as "math"); the root for itself.
    fn domain(mut t: u64) -> u64 {
        while let Some(p) = Gen::parent(t) {
            if p == 0 {
                return t;
            }
            t = p;
        }
        t
    }

    fn leaves(&self) -> u64 {
        self.counts.topics - self.first_leaf
    }

    /// The first item of `kind` under leaf number `l` (items are spread evenly).
    fn leaf_start(&self, kind: Kind, l: u64) -> u64 {
        let n = self.count(kind);
        ((u128::from(l) * u128::from(n)) / u128::from(self.leaves().max(1))) as u64
    }

    /// The leaf topic holding item `j` of `kind`: the last leaf whose start is `<= j`.
    fn leaf_of(&self, kind: Kind, j: u64) -> u64 {
        let n = u128::from(self.count(kind).max(1));
        let l = ((u128::from(j) + 1) * u128::from(self.leaves()) - 1) / n;
        self.first_leaf + l as u64
    }

    /// `/domain-slug/topic-slug`.
    fn topic_path(&self, t: u64) -> String {
        let d = Gen::domain(t);
        if d == t {
            format!("/{}", self.slug(Kind::Topic, t))
        } else {
            format!(
                "/{}/{}",
                self.slug(Kind::Topic, d),
                self.slug(Kind::Topic, t)
            )
        }
    }

    fn date(rng: &mut Rng) -> (u64, String) {
        let t = rng.range(DATES.0, DATES.1);
        (t, iso(t))
    }

    fn authors(&self, rng: &mut Rng) -> Value {
        let n = rng.range(1, 3);
        strings((0..n).map(|_| self.authors[rng.zipf(self.authors.len())].clone()))
    }

    fn listed_locales(rng: &mut Rng) -> Value {
        let n = 1 + rng.zipf(LOCALES.len());
        let n = if rng.chance(0.6) { n.max(8) } else { n };
        strings(
            LOCALES[..n.min(LOCALES.len())]
                .iter()
                .map(|s| (*s).to_owned()),
        )
    }

    fn license(m: &mut Map<String, Value>, rng: &mut Rng) {
        let (name, url) = if rng.chance(0.85) {
            LICENSES[0]
        } else {
            *rng.pick(&LICENSES[1..])
        };
        put(m, "license_name", name);
        put(m, "license_url", url);
    }

    /// Fields every kind has.
    fn common(&self, kind: Kind, i: u64, rng: &mut Rng, m: &mut Map<String, Value>) -> String {
        let title = self.title(kind, i);
        let slug = slugify(&title);
        put(m, "kind", kind.name());
        put(m, "title", title);
        put(m, "slug", slug.clone());
        put(m, "sha", rng.hex_string(40));
        put(m, "deleted", false);
        put(m, "listed_locales", Gen::listed_locales(rng));
        put(m, "source_language", self.default_locale.as_str());
        let (created, creation_date) = Gen::date(rng);
        put(m, "creation_date", creation_date);
        put(
            m,
            "date_modified",
            iso(created + rng.below(DATES.1 + 86_400 * 365 - created)),
        );
        let id = self.id(kind, i);
        let hex = id.rsplit(':').next().unwrap_or_default();
        put(m, "progress_key", format!("{}{hex}", kind.letter()));
        slug
    }

    /// Fields of a content item (video, exercise, article) under a leaf topic.
    fn content(&self, kind: Kind, i: u64, slug: &str, rng: &mut Rng, m: &mut Map<String, Value>) {
        let leaf = self.leaf_of(kind, i);
        let path = format!("{}/{}/{slug}", self.topic_path(leaf), kind.letter());
        put(m, "ka_url", format!("{SITE}{path}"));
        put(m, "relative_url", path);
        put(m, "node_slug", format!("{}/{slug}", kind.letter()));
        put(m, "parent_topic", self.id(Kind::Topic, leaf));
        put(
            m,
            "position",
            i - self.leaf_start(kind, leaf - self.first_leaf),
        );
        put(m, "author_names", self.authors(rng));
        Gen::license(m, rng);
        put(m, "do_not_publish", Value::Null);
    }

    fn record(&self, kind: Kind, i: u64) -> Map<String, Value> {
        let mut rng = self.rng(kind, i, salt::BODY);
        let mut m = Map::new();
        let slug = self.common(kind, i, &mut rng, &mut m);
        match kind {
            Kind::Topic => self.topic(i, &slug, &mut rng, &mut m),
            Kind::Video => self.video(i, &slug, &mut rng, &mut m),
            Kind::Exercise => self.exercise(i, &slug, &mut rng, &mut m),
            Kind::Article => self.article(i, &slug, &mut rng, &mut m),
        }
        m
    }

    fn topic(&self, t: u64, slug: &str, rng: &mut Rng, m: &mut Map<String, Value>) {
        let depth = Gen::depth(t);
        let description = if rng.chance(0.2) {
            String::new()
        } else {
            self.vocab.prose(rng, 1, 2)
        };
        put(m, "description", description);
        let mut children: Vec<(Kind, u64)> = Vec::new();
        if t < self.first_leaf {
            let first = t * BRANCHING + 1;
            let end = (first + BRANCHING).min(self.counts.topics);
            children.extend((first..end).map(|c| (Kind::Topic, c)));
        } else {
            // Interleave the leaf's videos, exercises and articles, as a lesson would.
            let l = t - self.first_leaf;
            let mut ranges: Vec<(Kind, std::ops::Range<u64>)> =
                [Kind::Video, Kind::Exercise, Kind::Article]
                    .into_iter()
                    .map(|k| (k, self.leaf_start(k, l)..self.leaf_start(k, l + 1)))
                    .collect();
            while ranges.iter().any(|(_, r)| !r.is_empty()) {
                for (k, r) in &mut ranges {
                    if let Some(j) = r.next() {
                        children.push((*k, j));
                    }
                }
            }
        }
        put(
            m,
            "children",
            strings(children.iter().map(|&(k, j)| self.id(k, j))),
        );
        let child_data = children
            .iter()
            .map(|&(k, j)| {
                let mut c = Map::new();
                put(&mut c, "kind", k.name());
                put(&mut c, "id", self.id(k, j));
                Value::Object(c)
            })
            .collect::<Vec<_>>();
        put(m, "child_data", child_data);
        put(
            m,
            "render_type",
            match depth {
                0 => "Root",
                1 => "Domain",
                2 => "Subject",
                3 => "Topic",
                _ => "Tutorial",
            },
        );
        put(m, "domain_slug", self.slug(Kind::Topic, Gen::domain(t)));
        put(
            m,
            "parent_topic",
            Gen::parent(t).map_or(Value::Null, |p| self.id(Kind::Topic, p).into()),
        );
        let path = self.topic_path(t);
        put(m, "ka_url", format!("{SITE}{path}"));
        put(m, "node_slug", slug);
        put(m, "extended_slug", path.trim_start_matches('/').to_owned());
        put(m, "relative_url", path);
        put(
            m,
            "icon_url",
            if depth <= 3 {
                Value::from(format!("{CDN}/topic-icons/{slug}.png"))
            } else {
                Value::Null
            },
        );
        put(
            m,
            "background_image_url",
            if depth <= 2 && rng.chance(0.7) {
                Value::from(format!("{CDN}/backgrounds/{}.jpg", rng.hex_string(12)))
            } else {
                Value::Null
            },
        );
        put(m, "in_knowledge_map", rng.chance(0.4));
        put(m, "x_pos", rng.below(1200));
        put(m, "y_pos", rng.below(800));
        put(m, "hide", rng.chance(0.02));
        put(
            m,
            "curriculum_key",
            if rng.chance(0.3) {
                Value::from(*rng.pick(&["us-cc", "us-ngss", "in-ncert", "mx-sep", "br-bncc"]))
            } else {
                Value::Null
            },
        );
    }

    fn video(&self, i: u64, slug: &str, rng: &mut Rng, m: &mut Map<String, Value>) {
        self.content(Kind::Video, i, slug, rng, m);
        put(m, "description", self.vocab.prose(rng, 1, 3));
        put(m, "keywords", self.vocab.keywords(rng));
        let yt = youtube_id(rng);
        put(m, "youtube_id", yt.clone());
        put(m, "translated_youtube_id", yt.clone());
        put(m, "translated_youtube_lang", self.default_locale.as_str());
        put(m, "duration", rng.range(45, 1_500));
        let (added, date_added) = Gen::date(rng);
        put(m, "date_added", date_added);
        put(m, "publication_date", iso(added + rng.below(86_400 * 30)));
        let mut dl = Map::new();
        put(
            &mut dl,
            "mp4",
            format!("{CDN}/ka-youtube-converted/{yt}.mp4/{yt}.mp4"),
        );
        put(
            &mut dl,
            "mp4-low",
            format!("{CDN}/ka-youtube-converted/{yt}.mp4-low/{yt}-low.mp4"),
        );
        put(
            &mut dl,
            "png",
            format!("{CDN}/ka-youtube-converted/{yt}.mp4/{yt}.png"),
        );
        put(
            &mut dl,
            "m3u8",
            format!("{CDN}/ka-youtube-converted/{yt}.m3u8/{yt}.m3u8"),
        );
        put(m, "download_urls", dl);
        let mut th = Map::new();
        put(
            &mut th,
            "default",
            format!("https://img.youtube.com/vi/{yt}/hqdefault.jpg"),
        );
        put(
            &mut th,
            "filtered",
            format!("https://img.youtube.com/vi/{yt}/mqdefault.jpg"),
        );
        put(m, "thumbnail_urls", th);
        put(
            m,
            "image_url",
            format!("https://img.youtube.com/vi/{yt}/hqdefault.jpg"),
        );
        put(m, "has_questions", rng.chance(0.3));
        put(m, "clarifications_enabled", rng.chance(0.5));
        let tags = rng.below(4);
        put(
            m,
            "concept_tags",
            strings((0..tags).map(|_| format!("TA{:04}", rng.zipf(600)))),
        );
        let leaf = self.leaf_of(Kind::Video, i) - self.first_leaf;
        let ex = self.leaf_start(Kind::Exercise, leaf)..self.leaf_start(Kind::Exercise, leaf + 1);
        put(
            m,
            "related_exercise",
            if ex.is_empty() {
                Value::Null
            } else {
                self.id(Kind::Exercise, rng.range(ex.start, ex.end - 1))
                    .into()
            },
        );
        put(m, "extra_properties", Value::Null);
    }

    fn exercise(&self, i: u64, slug: &str, rng: &mut Rng, m: &mut Map<String, Value>) {
        self.content(Kind::Exercise, i, slug, rng, m);
        put(m, "description", self.vocab.prose(rng, 1, 2));
        put(m, "tags", self.vocab.keywords(rng));
        put(m, "name", slug.replace('-', "_"));
        let earlier = |rng: &mut Rng, n: u64| -> Vec<String> {
            let n = n.min(i);
            (0..n)
                .map(|_| self.id(Kind::Exercise, i - 1 - rng.below(i.min(40))))
                .collect()
        };
        let n = rng.range(0, 4);
        put(m, "prerequisites", strings(earlier(rng, n)));
        let n = rng.range(0, 2);
        put(m, "covers", strings(earlier(rng, n)));
        let leaf = self.leaf_of(Kind::Exercise, i) - self.first_leaf;
        let vids = self.leaf_start(Kind::Video, leaf)..self.leaf_start(Kind::Video, leaf + 1);
        put(
            m,
            "related_video_ids",
            strings(vids.map(|v| self.id(Kind::Video, v))),
        );
        let types = (0..rng.range(1, 3))
            .map(|t| {
                let mut pt = Map::new();
                put(&mut pt, "name", format!("Type {}", t + 1));
                let items = (0..rng.range(1, 6))
                    .map(|_| {
                        let mut it = Map::new();
                        put(&mut it, "id", format!("x{}", rng.hex_string(16)));
                        put(&mut it, "sha", rng.hex_string(40));
                        put(&mut it, "live", rng.chance(0.95));
                        Value::Object(it)
                    })
                    .collect::<Vec<_>>();
                put(&mut pt, "items", items);
                Value::Object(pt)
            })
            .collect::<Vec<_>>();
        put(m, "problem_types", types);
        put(
            m,
            "seconds_per_fast_problem",
            rng.range(30, 300) as f64 / 10.0,
        );
        put(
            m,
            "suggested_completion_criteria",
            *rng.pick(&[
                "num_correct_in_a_row_5",
                "num_correct_in_a_row_5",
                "num_correct_in_a_row_3",
                "num_correct_in_a_row_10",
            ]),
        );
        put(m, "is_quiz", rng.chance(0.05));
        put(m, "is_skill_check", rng.chance(0.1));
        put(m, "uses_assessment_items", true);
        put(m, "live", rng.chance(0.97));
        put(m, "hide", false);
        put(m, "file_name", Value::Null);
        put(
            m,
            "tracking_document_url",
            if rng.chance(0.2) {
                Value::from(format!(
                    "https://docs.example.org/document/d/{}/edit",
                    rng.hex_string(32)
                ))
            } else {
                Value::Null
            },
        );
        put(
            m,
            "difficulty",
            match rng.below(5) {
                0 => Value::Null,
                1 | 2 => "easy".into(),
                3 => "medium".into(),
                _ => "hard".into(),
            },
        );
    }

    fn article(&self, i: u64, slug: &str, rng: &mut Rng, m: &mut Map<String, Value>) {
        self.content(Kind::Article, i, slug, rng, m);
        put(m, "description", self.vocab.prose(rng, 1, 3));
        put(m, "keywords", self.vocab.keywords(rng));
        let (_, date_added) = Gen::date(rng);
        put(m, "date_added", date_added);
        let (body, words) = self.body(rng);
        put(m, "body", body);
        put(m, "word_count", words);
        put(m, "reading_time_minutes", words.div_ceil(200));
        put(m, "clarifications_enabled", rng.chance(0.5));
        put(
            m,
            "image_url",
            if rng.chance(0.6) {
                Value::from(format!("{CDN}/article-images/{}.png", rng.hex_string(40)))
            } else {
                Value::Null
            },
        );
    }

    /// An article body: 5–20 KB of blocks. Returns the blocks and the word count.
    fn body(&self, rng: &mut Rng) -> (Value, u64) {
        let target = rng.range(5_000, 20_000) as usize;
        let mut size = 0;
        let mut words = 0;
        let mut blocks = Vec::new();
        let mut count = |s: &str| {
            words += s.split_ascii_whitespace().count() as u64;
            s.len()
        };
        while size < target {
            let mut b = Map::new();
            let kind = if blocks.is_empty() { 0 } else { rng.below(20) };
            match kind {
                0..=1 => {
                    let text = self.vocab.title(rng);
                    size += count(&text) + 38;
                    put(&mut b, "type", "heading");
                    put(&mut b, "level", if kind == 0 { 2 } else { 3 });
                    put(&mut b, "text", text);
                }
                2..=3 => {
                    let items = (0..rng.range(2, 6))
                        .map(|_| {
                            let mut s = String::new();
                            self.vocab.sentence(rng, &mut s, 4, 14);
                            size += count(&s) + 3;
                            Value::String(s)
                        })
                        .collect::<Vec<_>>();
                    size += 40;
                    put(&mut b, "type", "list");
                    put(&mut b, "ordered", rng.chance(0.4));
                    put(&mut b, "items", items);
                }
                4 => {
                    let mut alt = String::new();
                    self.vocab.sentence(rng, &mut alt, 3, 10);
                    size += count(&alt) + 130;
                    put(&mut b, "type", "image");
                    put(
                        &mut b,
                        "url",
                        format!("{CDN}/article-images/{}.png", rng.hex_string(40)),
                    );
                    put(&mut b, "alt", alt);
                    put(&mut b, "width", *rng.pick(&[320, 480, 640, 800]));
                    put(&mut b, "height", *rng.pick(&[180, 240, 360, 450]));
                }
                5 => {
                    let tex = tex(rng);
                    size += tex.len() + 26;
                    put(&mut b, "type", "math");
                    put(&mut b, "tex", tex);
                }
                6 => {
                    let mut s = String::new();
                    self.vocab.sentence(rng, &mut s, 6, 20);
                    size += count(&s) + 44;
                    put(&mut b, "type", "callout");
                    put(&mut b, "style", *rng.pick(&["note", "tip", "warning"]));
                    put(&mut b, "text", s);
                }
                _ => {
                    let text = self.vocab.prose(rng, 2, 6);
                    size += count(&text) + 30;
                    put(&mut b, "type", "paragraph");
                    put(&mut b, "text", text);
                }
            }
            blocks.push(Value::Object(b));
        }
        (Value::Array(blocks), words)
    }
}

/// 11 characters of YouTube's id alphabet.
fn youtube_id(rng: &mut Rng) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let bits = rng.next_u64();
    (0..11)
        .map(|k| ALPHABET[((bits >> (k * 6)) & 63) as usize] as char)
        .collect()
}

/// A small equation in TeX.
fn tex(rng: &mut Rng) -> String {
    let v = *rng.pick(&["x", "y", "t", "n", "a"]);
    let op = |rng: &mut Rng| *rng.pick(&["+", "-"]);
    match rng.below(3) {
        0 => format!(
            "{}{v}^{} {} {}{v} {} {} = 0",
            rng.range(1, 9),
            rng.range(2, 3),
            op(rng),
            rng.range(1, 20),
            op(rng),
            rng.range(1, 50)
        ),
        1 => format!(
            "\\frac{{{}}}{{{}}} {} \\frac{{{}}}{{{}}} = \\frac{{{v}}}{{{}}}",
            rng.range(1, 12),
            rng.range(2, 12),
            op(rng),
            rng.range(1, 12),
            rng.range(2, 12),
            rng.range(2, 24)
        ),
        _ => format!("\\sqrt{{{}{v}}} = {}", rng.range(2, 99), rng.range(1, 30)),
    }
}

/// `secs` since the epoch as `YYYY-MM-DDTHH:MM:SSZ` (proleptic Gregorian, UTC).
fn iso(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let mut s = String::with_capacity(20);
    let _ = write!(
        s,
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3_600,
        rem / 60 % 60,
        rem % 60
    );
    s
}

// ---------------------------------------------------------------------------------------
// Translation.

/// Translates text word for word into another locale's vocabulary (same rank, so the
/// translation of a frequent word is frequent), keeping punctuation and capitals.
struct Translator {
    locale_salt: u64,
    fraction: f64,
    from: hashbrown::HashMap<String, usize>,
    to: Vocab,
}

/// The text fields a locale may translate, each decided on its own.
const TRANSLATED_FIELDS: [&str; 5] = ["title", "description", "keywords", "tags", "body"];

impl Translator {
    fn apply(&self, seed: u64, kind: Kind, i: u64, m: &mut Map<String, Value>) {
        for (f, field) in TRANSLATED_FIELDS.iter().enumerate() {
            let Some(v) = m.get_mut(*field) else {
                continue;
            };
            let mut rng = stream(&[
                seed,
                kind.tag(),
                i,
                salt::TRANSLATE,
                self.locale_salt,
                f as u64,
            ]);
            if !rng.chance(self.fraction) {
                continue;
            }
            if *field == "body" {
                self.body(v);
            } else {
                self.value(v);
            }
        }
    }

    /// Strings and lists of strings.
    fn value(&self, v: &mut Value) {
        match v {
            Value::String(s) => *s = self.text(s),
            Value::Array(a) => a.iter_mut().for_each(|x| self.value(x)),
            _ => {}
        }
    }

    /// An article body: the text of each block; urls and TeX stay.
    fn body(&self, v: &mut Value) {
        let Value::Array(blocks) = v else { return };
        for b in blocks {
            if let Value::Object(b) = b {
                for key in ["text", "items", "alt"] {
                    if let Some(x) = b.get_mut(key) {
                        self.value(x);
                    }
                }
            }
        }
    }

    fn text(&self, s: &str) -> String {
        let mut out = String::with_capacity(s.len() + s.len() / 8);
        let mut word = String::new();
        let mut start = None;
        for (at, c) in s.char_indices().chain(std::iter::once((s.len(), ' '))) {
            if c.is_alphabetic() {
                start.get_or_insert(at);
                continue;
            }
            if let Some(st) = start.take() {
                let run = &s[st..at];
                // Generated text capitalizes only a run's first letter.
                let mut cs = run.chars();
                let first = cs.next().unwrap_or(' ');
                let lower = if first.is_uppercase() {
                    word.clear();
                    word.extend(first.to_lowercase());
                    word.push_str(cs.as_str());
                    word.as_str()
                } else {
                    run
                };
                match self.from.get(lower) {
                    Some(&rank) => {
                        let t = &self.to.words[rank];
                        if first.is_uppercase() {
                            push_capitalized(&mut out, t);
                        } else {
                            out.push_str(t);
                        }
                    }
                    None => out.push_str(run),
                }
            }
            if at < s.len() {
                out.push(c);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small(locales: &[&str]) -> CorpusConfig {
        CorpusConfig {
            scale: 0.05,
            seed: 7,
            locales: locales.iter().map(|s| (*s).to_owned()).collect(),
            translated: 0.7,
        }
    }

    #[test]
    fn same_seed_same_output_other_seed_other_output() {
        let cfg = small(&["en", "es"]);
        let a = generate(&cfg);
        assert_eq!(a, generate(&cfg));
        let b = generate(&CorpusConfig { seed: 8, ..cfg });
        assert_ne!(a.trees[0], b.trees[0]);
    }

    #[test]
    fn streaming_matches_generate() {
        let cfg = small(&["en", "pt"]);
        let c = generate(&cfg);
        let r = records(&cfg, 1);
        assert_eq!(r.len(), c.trees[1].len());
        assert!(r.eq(c.trees[1].iter().cloned()));
    }

    #[test]
    fn counts_scale_and_ids_are_unique() {
        let c = CorpusConfig::default().counts();
        assert_eq!(
            (c.topics, c.videos, c.exercises, c.articles),
            (2_000, 6_400, 15_700, 2_000)
        );
        let cfg = small(&["en"]);
        let tree = generate(&cfg).trees.remove(0);
        assert_eq!(tree.len() as u64, cfg.counts().total());
        let ids: HashSet<&str> = tree.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(ids.len(), tree.len());
        // Every referenced id exists.
        for (_, r) in &tree {
            for key in ["children", "prerequisites", "covers", "related_video_ids"] {
                for v in r.get(key).and_then(Value::as_array).into_iter().flatten() {
                    assert!(ids.contains(v.as_str().unwrap()), "{key}: {v}");
                }
            }
            for key in ["parent_topic", "related_exercise"] {
                if let Some(Value::String(s)) = r.get(key) {
                    assert!(ids.contains(s.as_str()), "{key}: {s}");
                }
            }
        }
        // Every content item is some topic's child exactly once.
        let mut parents: std::collections::HashMap<&str, usize> = Default::default();
        for (_, r) in &tree {
            for c in r["children"].as_array().into_iter().flatten() {
                *parents.entry(c.as_str().unwrap()).or_default() += 1;
            }
        }
        for (id, r) in &tree {
            if !id.starts_with("topic:x") || r["parent_topic"].is_string() {
                assert_eq!(parents.get(id.as_str()), Some(&1), "{id}");
            }
        }
    }

    #[test]
    fn records_look_like_a_content_site() {
        let cfg = small(&["en"]);
        let tree = generate(&cfg).trees.remove(0);
        let mut titles = HashSet::new();
        for (id, r) in &tree {
            let m = r.as_object().unwrap();
            assert!((18..=40).contains(&m.len()), "{id} has {} fields", m.len());
            titles.insert(m["title"].as_str().unwrap());
            if id.starts_with("article:") {
                let body = serde_json::to_string(&m["body"]).unwrap().len();
                assert!((4_500..=22_000).contains(&body), "{id} body {body} bytes");
            }
            assert_eq!(m["creation_date"].as_str().unwrap().len(), 20);
        }
        assert!(
            titles.len() * 100 >= tree.len() * 99,
            "titles mostly unique"
        );
    }

    #[test]
    fn locales_translate_a_fraction_of_text_fields() {
        let cfg = CorpusConfig {
            scale: 0.2,
            ..small(&["en", "es"])
        };
        let c = generate(&cfg);
        let (en, es) = (&c.trees[0], &c.trees[1]);
        let (mut fields, mut changed) = (0, 0);
        for ((id_en, a), (id_es, b)) in en.iter().zip(es) {
            assert_eq!(id_en, id_es);
            let (a, b) = (a.as_object().unwrap(), b.as_object().unwrap());
            assert!(a.keys().eq(b.keys()));
            for (k, v) in a {
                if TRANSLATED_FIELDS.contains(&k.as_str()) {
                    if *v != Value::String(String::new()) {
                        fields += 1;
                        changed += usize::from(*v != b[k]);
                    }
                } else {
                    assert_eq!(*v, b[k], "{id_en}.{k} changed");
                }
            }
        }
        let f = changed as f64 / fields as f64;
        assert!((0.66..0.74).contains(&f), "translated fraction {f}");
    }

    /// The output is part of the contract (benchmarks quote snapshot hashes): a change
    /// here must be deliberate, and noted in the changelog.
    #[test]
    fn output_is_pinned() {
        let cfg = CorpusConfig {
            scale: 0.01,
            locales: vec!["en".into(), "es".into()],
            ..CorpusConfig::default()
        };
        let mut h = 0xcbf2_9ce4_8422_2325_u64;
        for tree in generate(&cfg).trees {
            for (id, r) in tree {
                h = str_hash(&format!("{h:x}{}", jsonl_line(&id, &r)));
            }
        }
        assert_eq!(h, PINNED, "corpus output changed: {h:#x}");
    }
    const PINNED: u64 = 0xa81f_f756_6cf3_7739;

    #[test]
    fn tiny_and_odd_configs() {
        for scale in [0.0, 0.0002, -1.0, f64::NAN] {
            let cfg = CorpusConfig {
                scale,
                locales: vec![],
                translated: f64::NAN,
                ..CorpusConfig::default()
            };
            let c = generate(&cfg);
            assert_eq!(c.locales, ["en"]);
            assert_eq!(c.default_tree().len() as u64, cfg.counts().total());
        }
        let c = CorpusConfig {
            scale: 0.0002,
            ..CorpusConfig::default()
        }
        .counts();
        assert_eq!((c.topics, c.videos, c.exercises, c.articles), (1, 1, 3, 0));
    }

    #[test]
    fn iso_dates() {
        assert_eq!(iso(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso(DATES.0), "2011-01-01T00:00:00Z");
        assert_eq!(iso(1_709_210_096), "2024-02-29T12:34:56Z");
    }

    #[test]
    fn jsonl_lines_put_the_id_first() {
        let v = serde_json::json!({"b": 1, "a": "x"});
        assert_eq!(
            jsonl_line("video:1", &v),
            r#"{"id":"video:1","a":"x","b":1}"#
        );
        assert_eq!(jsonl_line("t", &serde_json::json!({})), r#"{"id":"t"}"#);
    }

    #[test]
    fn the_corpus_builds_into_a_snapshot() {
        let cfg = small(&["en"]);
        let mut b = crate::SnapshotBuilder::new();
        let tree = generate(&cfg).trees.remove(0);
        for (id, r) in &tree {
            b.insert(id, r).unwrap();
        }
        let snap = crate::Snapshot::from_bytes(b.to_bytes().unwrap()).unwrap();
        snap.verify().unwrap();
        let (id, r) = &tree[tree.len() - 1];
        let rec = snap.get(id).unwrap();
        assert_eq!(serde_json::to_value(rec).unwrap(), *r);
    }
}
