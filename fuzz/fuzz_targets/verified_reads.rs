//! Bytes that pass `verify()`: no read may fail, and all ways of reading must agree.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| fms::check::verified_reads(data));
