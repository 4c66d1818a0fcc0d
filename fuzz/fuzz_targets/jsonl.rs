//! Arbitrary text into the JSONL builder path: a clean error naming the line, or a valid
//! snapshot; either way what the builder kept verifies and reads back. See
//! `fms::check::jsonl`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| fms::check::jsonl(data));
