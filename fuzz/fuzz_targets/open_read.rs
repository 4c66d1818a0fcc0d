//! Any bytes: open, read everything through every accessor, verify. Must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| fms::check::open_read(data));
