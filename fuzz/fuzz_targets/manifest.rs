//! Record manifests of the memcached tier (`fms::remote::manifest`): any bytes as a
//! manifest, bytes XORed into fixed valid ones (checksums fixed), and the perfect hash
//! function's build → lookup property. Must never panic. See `fms::check::manifest`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| fms::check::manifest(data));
