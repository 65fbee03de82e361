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

    /// Requests close to real ones (the default scenario's operators, types and ICCIDs), so
    /// that calls succeed and change state, and the "refusals change nothing" half is tested
    /// against real changes.
    #[test]
    fn es2_request_on_realistic_bodies(
        path in 0u8..4,
        flags in any::<u8>(),
        requester in prop::sample::select(vec!["test-mno", "other-mno", "x"]),
        fields in proptest::collection::vec(
            prop::sample::select(vec![
                r#""profileType":"STANDARD""#,
                r#""profileType":"NOPE""#,
                r#""iccid":"8944500100000000004""#,
                r#""iccid":"8944500100000000012""#,
                r#""eid":"89049032123451234512345678901235""#,
                r#""releaseFlag":true"#,
                r#""releaseFlag":false"#,
                r#""matchingId":"ABC-123""#,
                r#""finalProfileStatusIndicator":"Available""#,
            ]),
            0..5,
        ),
    ) {
        let mut body = format!(
            r#"{{"header":{{"functionRequesterIdentifier":"{requester}","functionCallIdentifier":"c"}}"#
        );
        for field in fields {
            body.push(',');
            body.push_str(field);
        }
        body.push('}');
        // Mostly well-formed heads: JSON, X-Admin-Protocol, a known certificate.
        let mut data = vec![path, flags & 0b0100_0001];
        data.extend_from_slice(body.as_bytes());
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

    #[test]
    fn es9_request_on_random_bytes(data in proptest::collection::vec(any::<u8>(), 0..600)) {
        fuzz::es9_request(&data);
    }

    /// ES9+ bodies with the functions' field names and base64 values that start like the
    /// data objects they should hold, so the BER-TLV readers and the message types get input
    /// that goes past the first byte.
    #[test]
    fn es9_request_on_realistic_bodies(
        path in 0u8..6,
        flags in 0u8..2,
        fields in proptest::collection::vec(
            (
                prop::sample::select(vec![
                    "smdpAddress", "euiccChallenge", "euiccInfo1", "transactionId",
                    "authenticateServerResponse", "prepareDownloadResponse",
                    "pendingNotification", "cancelSessionResponse",
                ]),
                der_like(),
            ),
            0..5,
        ),
        tid in prop::sample::select(vec!["SESSION", "SESSION", "00112233", "", "ZZ", "00112233445566778899AABBCCDDEEFF00"]),
    ) {
        // "SESSION" becomes the transactionId of a session the harness starts.
        let mut body = serde_json::Map::new();
        body.insert("transactionId".into(), serde_json::json!(tid));
        for (name, value) in fields {
            let value = match name {
                "smdpAddress" => serde_json::json!("localhost:6444"),
                "transactionId" => continue,
                _ => serde_json::json!(smdpp_mock::rsp::crypto::base64_encode(&value)),
            };
            body.insert(name.into(), value);
        }
        let mut data = vec![path, flags & 1];
        data.extend_from_slice(serde_json::Value::Object(body).to_string().as_bytes());
        fuzz::es9_request(&data);
    }
}

/// Bytes that begin with a tag of an RSP data object and a length that may or may not fit.
fn der_like() -> impl Strategy<Value = Vec<u8>> {
    (
        prop::sample::select(vec![
            vec![0xBF, 0x38],
            vec![0xBF, 0x21],
            vec![0xBF, 0x37],
            vec![0xBF, 0x41],
            vec![0xBF, 0x20],
            vec![0x30],
            vec![0xA0],
            vec![0x5F, 0x37],
        ]),
        proptest::collection::vec(any::<u8>(), 0..300),
        any::<bool>(),
    )
        .prop_map(|(tag, content, honest)| {
            let mut out = tag;
            if honest && content.len() < 128 {
                out.push(content.len() as u8);
            } else if honest {
                out.extend_from_slice(&[0x82, (content.len() >> 8) as u8, content.len() as u8]);
            }
            out.extend_from_slice(&content);
            out
        })
}
