//! Helpers shared by the benchmark harnesses (`mod common;` in each).

use std::path::{Path, PathBuf};

/// `target/fms-bench`, next to the bench executable (`target/<profile>/deps/<bench>-*`).
pub fn cache_dir() -> PathBuf {
    let dir = std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.parent()?.to_path_buf()))
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"))
        .join("fms-bench");
    std::fs::create_dir_all(&dir).expect("create target/fms-bench");
    dir
}

/// A fixed shuffle (SplitMix64-driven Fisher–Yates), so every run reads in the same order.
pub fn shuffled(n: usize) -> Vec<usize> {
    let mut s = 0x5eed_u64;
    let mut next = || {
        s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = s;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    let mut v: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        let j = ((u128::from(next()) * (i as u128 + 1)) >> 64) as usize;
        v.swap(i, j);
    }
    v
}
