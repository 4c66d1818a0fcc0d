//! Overlay bytes over a fixed valid base, and a damaged base under a fixed valid overlay
//! (the first byte picks which): open, read everything, verify. Must never panic; what
//! verifies must read without failure. See `fms::check::overlay`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| fms::check::overlay(data));
