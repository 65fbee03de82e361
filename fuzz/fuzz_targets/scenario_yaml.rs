//! Scenario parsing and checking never panics, whatever the text. The body of the target is
//! `smdpp_mock::internal::fuzz::scenario_yaml`, which `cargo test` also runs on random input.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| smdpp_mock::internal::fuzz::scenario_yaml(data));
