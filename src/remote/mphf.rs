//! A small minimal-ish perfect hash function over a record manifest's ids ("hash and
//! displace", after PTHash), written to be read straight from mapped, untrusted bytes.
//!
//! Build: every id is hashed with XXH3-64 under a seed; the hash's high bits pick one of
//! `buckets = ceil(n / 5)` buckets; buckets are placed largest first; bucket *b* gets the
//! smallest 16-bit *pilot* p for which every key's slot `fmix64(h ^ mix(p)) % m` is free
//! and distinct. `m = n + ceil(n / 100)` (α ≈ 0.99, so the last buckets still find free
//! slots quickly). A bucket with no pilot (or two keys with one hash) restarts the build
//! under the next seed; after [`MAX_SEEDS`] seeds the build fails with an error.
//!
//! Read: one hash, one pilot, one modulo: O(1), no heap. Every id maps to *some* slot
//! below `m` (membership is not encoded: the caller checks it). Parameters are checked
//! once ([`Params::parse`], [`Mphf::new`]); a lookup on any bytes never panics.
//!
//! Crates weighed and not used: `ph`, `boomphf`, `ptr_hash` deserialize into heap
//! structures and do not promise to read untrusted mapped bytes safely.

use xxhash_rust::xxh3::xxh3_64_with_seed;

/// Bytes of the parameters: `n`, `m`, `buckets`, `seed`, four u32 LE.
pub const PARAMS_BYTES: usize = 16;
/// Bytes per pilot (u16 LE).
pub const PILOT_BYTES: usize = 2;
/// Seeds tried before a build gives up.
pub const MAX_SEEDS: u32 = 64;
/// Keys per bucket, on average.
pub const KEYS_PER_BUCKET: u64 = 5;
/// The most keys one function may hold (slots are addressed with u32).
pub const MAX_KEYS: u64 = (u32::MAX as u64 / 102) * 100;

/// The function's parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Params {
    /// Keys it was built over.
    pub n: u32,
    /// Slots: `n + ceil(n / 100)`.
    pub m: u32,
    /// Buckets (pilots): `ceil(n / 5)`.
    pub buckets: u32,
    /// The XXH3 seed that worked.
    pub seed: u32,
}

/// `m` for `n` keys.
pub fn slots_for(n: u64) -> u64 {
    n + n.div_ceil(100)
}

/// Buckets for `n` keys.
pub fn buckets_for(n: u64) -> u64 {
    n.div_ceil(KEYS_PER_BUCKET)
}

impl Params {
    /// Parses and checks the 16 parameter bytes: `m` and `buckets` must be the ones `n`
    /// implies. `None` for anything else.
    pub fn parse(b: &[u8]) -> Option<Params> {
        if b.len() != PARAMS_BYTES {
            return None;
        }
        let u = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let p = Params {
            n: u(0),
            m: u(4),
            buckets: u(8),
            seed: u(12),
        };
        let n = u64::from(p.n);
        (n <= MAX_KEYS && u64::from(p.m) == slots_for(n) && u64::from(p.buckets) == buckets_for(n))
            .then_some(p)
    }

    /// The 16 bytes.
    pub fn to_bytes(self) -> [u8; PARAMS_BYTES] {
        let mut b = [0; PARAMS_BYTES];
        for (i, v) in [self.n, self.m, self.buckets, self.seed].iter().enumerate() {
            b[i * 4..i * 4 + 4].copy_from_slice(&v.to_le_bytes());
        }
        b
    }

    /// Bytes the pilots take.
    pub fn pilot_bytes(&self) -> usize {
        self.buckets as usize * PILOT_BYTES
    }
}

fn key_hash(seed: u32, id: &[u8]) -> u64 {
    xxh3_64_with_seed(id, u64::from(seed))
}

/// The bucket of hash `h`: its high bits, scaled to `buckets` (< `buckets` when > 0).
fn bucket(h: u64, buckets: u32) -> usize {
    ((u128::from(h) * u128::from(buckets)) >> 64) as usize
}

fn fmix64(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^ (x >> 33)
}

/// The slot of hash `h` under `pilot` (`m > 0`).
fn slot(h: u64, pilot: u16, m: u32) -> usize {
    let mix = (u64::from(pilot) + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    (fmix64(h ^ mix) % u64::from(m)) as usize
}

/// A function read from its parameters and pilot bytes (zero-copy).
#[derive(Clone, Copy, Debug)]
pub struct Mphf<'a> {
    params: Params,
    pilots: &'a [u8],
}

impl<'a> Mphf<'a> {
    /// The function, if `pilots` holds exactly `params.buckets` pilots. O(1).
    pub fn new(params: Params, pilots: &'a [u8]) -> Option<Mphf<'a>> {
        (pilots.len() == params.pilot_bytes()).then_some(Mphf { params, pilots })
    }

    /// The parameters.
    pub fn params(&self) -> Params {
        self.params
    }

    /// The slot of `id` (< `m`); `None` only for a function over no keys. O(1),
    /// allocation-free. An id the function was not built over gets some slot too.
    pub fn slot(&self, id: &[u8]) -> Option<usize> {
        let p = self.params;
        if p.m == 0 || p.buckets == 0 {
            return None;
        }
        let h = key_hash(p.seed, id);
        let b = bucket(h, p.buckets);
        let at = b.checked_mul(PILOT_BYTES)?;
        let pb = self.pilots.get(at..at.checked_add(PILOT_BYTES)?)?;
        Some(slot(h, u16::from_le_bytes([pb[0], pb[1]]), p.m))
    }
}

/// A built function: its parameters, pilots, and the slot of each key in input order.
#[derive(Clone, Debug)]
pub struct Built {
    /// The parameters.
    pub params: Params,
    /// The pilots' bytes (u16 LE each).
    pub pilots: Vec<u8>,
    /// `slots[i]`: the slot of `keys[i]`.
    pub slots: Vec<u32>,
}

/// Why a build failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BuildError {
    /// More keys than [`MAX_KEYS`].
    TooMany(usize),
    /// No seed of [`MAX_SEEDS`] worked (in practice: duplicate keys).
    NoSeed,
}

impl std::fmt::Display for BuildError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BuildError::TooMany(n) => write!(f, "{n} ids: more than a manifest holds"),
            BuildError::NoSeed => write!(
                f,
                "no perfect hash function found under {MAX_SEEDS} seeds (duplicate ids?)"
            ),
        }
    }
}

/// Builds a function over `keys` (distinct). O(n) expected.
pub fn build<K: AsRef<[u8]>>(keys: &[K]) -> Result<Built, BuildError> {
    let n = keys.len() as u64;
    if n > MAX_KEYS {
        return Err(BuildError::TooMany(keys.len()));
    }
    let m = slots_for(n) as u32;
    let buckets = buckets_for(n) as u32;
    'seed: for seed in 0..MAX_SEEDS {
        let params = Params {
            n: n as u32,
            m,
            buckets,
            seed,
        };
        let hashes: Vec<u64> = keys.iter().map(|k| key_hash(seed, k.as_ref())).collect();
        // Keys by bucket; equal hashes can never be separated: next seed.
        let mut order: Vec<u32> = (0..n as u32).collect();
        order.sort_unstable_by_key(|&i| (bucket(hashes[i as usize], buckets), hashes[i as usize]));
        if order
            .windows(2)
            .any(|w| hashes[w[0] as usize] == hashes[w[1] as usize])
        {
            continue;
        }
        let mut groups: Vec<&[u32]> = order
            .chunk_by(|&a, &b| {
                bucket(hashes[a as usize], buckets) == bucket(hashes[b as usize], buckets)
            })
            .collect();
        // Largest first; ties by bucket number, so the build is deterministic.
        groups.sort_by_key(|g| {
            (
                std::cmp::Reverse(g.len()),
                bucket(hashes[g[0] as usize], buckets),
            )
        });
        let mut taken = vec![false; m as usize];
        let mut pilots = vec![0u16; buckets as usize];
        let mut slots = vec![0u32; n as usize];
        let mut cand: Vec<usize> = Vec::new();
        for g in groups {
            let b = bucket(hashes[g[0] as usize], buckets);
            let mut found = None;
            'pilot: for p in 0..=u16::MAX {
                cand.clear();
                for &k in g {
                    let s = slot(hashes[k as usize], p, m);
                    if taken[s] || cand.contains(&s) {
                        continue 'pilot;
                    }
                    cand.push(s);
                }
                found = Some(p);
                break;
            }
            let Some(p) = found else { continue 'seed };
            pilots[b] = p;
            for (&k, &s) in g.iter().zip(&cand) {
                taken[s] = true;
                slots[k as usize] = s as u32;
            }
        }
        let pilots = pilots.iter().flat_map(|p| p.to_le_bytes()).collect();
        return Ok(Built {
            params,
            pilots,
            slots,
        });
    }
    Err(BuildError::NoSeed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn check(keys: &[String]) {
        let b = build(keys).unwrap();
        let f = Mphf::new(Params::parse(&b.params.to_bytes()).unwrap(), &b.pilots).unwrap();
        let mut seen = vec![false; b.params.m as usize];
        for (k, &s) in keys.iter().zip(&b.slots) {
            assert_eq!(f.slot(k.as_bytes()), Some(s as usize));
            assert!(
                !std::mem::replace(&mut seen[s as usize], true),
                "slot {s} twice"
            );
        }
    }

    #[test]
    fn every_key_gets_its_own_slot() {
        for n in [0, 1, 2, 3, 7, 100, 1000, 30_000] {
            let keys: Vec<String> = (0..n).map(|i| format!("video:{i:x}")).collect();
            check(&keys);
        }
    }

    #[test]
    fn empty_function_maps_nothing() {
        let b = build::<&str>(&[]).unwrap();
        let f = Mphf::new(b.params, &b.pilots).unwrap();
        assert_eq!(f.slot(b"x"), None);
    }

    #[test]
    fn duplicate_keys_are_an_error() {
        assert_eq!(build(&["a", "a"]).unwrap_err(), BuildError::NoSeed);
    }

    #[test]
    fn bad_params_are_refused() {
        let b = build(&["a", "b", "c"]).unwrap();
        let mut p = b.params.to_bytes();
        p[4] ^= 1; // m
        assert_eq!(Params::parse(&p), None);
        assert_eq!(Params::parse(&p[..15]), None);
        assert!(Mphf::new(b.params, &b.pilots[1..]).is_none());
    }

    proptest! {
        #[test]
        fn distinct_keys_get_distinct_slots(keys in proptest::collection::hash_set(".{0,12}", 0..400)) {
            let keys: Vec<String> = keys.into_iter().collect();
            check(&keys);
        }

        #[test]
        fn any_bytes_read_without_panic(params in proptest::collection::vec(any::<u8>(), 16), pilots in proptest::collection::vec(any::<u8>(), 0..64), id in ".{0,8}") {
            if let Some(p) = Params::parse(&params) {
                if let Some(f) = Mphf::new(p, &pilots) {
                    if let Some(s) = f.slot(id.as_bytes()) {
                        prop_assert!(s < p.m as usize);
                    }
                }
            }
        }
    }
}
