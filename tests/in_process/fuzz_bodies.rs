//! The fuzz targets' bodies on random input under `cargo test`, so that what `fuzz/` runs
//! cannot rot unnoticed (the coverage-guided runs need nightly; these need nothing).

use proptest::prelude::*;
use smdpp_mock::internal::fuzz;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn es2_request_on_random_bytes(data in proptest::collection::vec(any::<u8>(), 0..600)) {
        fuzz::es2_request(&data);
    }

    #[test]
    fn es2_request_on_json_like_bodies(
        path in any::<u8>(),
        flags in any::<u8>(),
        body in r#"\{("(header|iccid|eid|profileType|matchingId|releaseFlag|finalProfileStatusIndicator)":("[0-9A-Za-z-]{0,40}"|true|false|\{"functionRequesterIdentifier":"test-mno","functionCallIdentifier":"[0-9]{1,3}"\}),?){0,6}\}"#,
    ) {
        let mut data = vec![path, flags];
        data.extend_from_slice(body.as_bytes());
        fuzz::es2_request(&data);
    }

    #[test]
    fn scenario_yaml_on_random_text(text in "\\PC{0,400}") {
        fuzz::scenario_yaml(text.as_bytes());
    }
}
