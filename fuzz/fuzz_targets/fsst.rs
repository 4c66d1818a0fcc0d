//! FSST tables and codes from any bytes: every decoding method agrees with the others and
//! never panics; tables trained on pieces of the input round-trip them. Must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| fms::check::fsst(data));
