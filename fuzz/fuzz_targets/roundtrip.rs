//! Arbitrary value trees -> build -> open -> the same records, through every accessor;
//! and the same records as an overlay over a snapshot of half of them. See
//! `fms::check::roundtrip`.
#![no_main]

use libfuzzer_sys::fuzz_target;

mod roundtrip_input;

fuzz_target!(|data: &[u8]| {
    if let Some(input) = roundtrip_input::Input::decode(data) {
        fms::check::roundtrip(&input.records());
    }
});
