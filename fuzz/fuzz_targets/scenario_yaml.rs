//! Scenario parsing and checking never panics, whatever the text: it loads or gives located
//! errors.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smdpp_mock::scenario::Scenario;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        match Scenario::from_yaml(text) {
            Ok(s) => {
                let _ = s.profile_count();
            }
            Err(e) => {
                // Every error renders, with a place.
                assert!(!e.to_string().is_empty());
            }
        }
    }
});
