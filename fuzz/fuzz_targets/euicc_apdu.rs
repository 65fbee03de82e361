//! The body of this target is `smdpp_mock::internal::fuzz::euicc_apdu`, which `cargo test` also runs
//! (`tests/in_process/fuzz_bodies.rs`); see its documentation for the input and the properties.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = smdpp_mock::internal::fuzz::euicc_apdu(data);
});
