//! Any request into the ES9+ listener's request path (JSON, base64, BER-TLV, certificates,
//! signatures, the five functions) gets a well-formed answer, never a panic, and a request that
//! is not `Executed-Success` changes no profile. The body of the target is
//! `smdpp_mock::internal::fuzz::es9_request`, which `cargo test` also runs on random input.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| smdpp_mock::internal::fuzz::es9_request(data));
