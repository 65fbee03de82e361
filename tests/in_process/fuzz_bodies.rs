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
                _ => serde_json::json!(smdpp_rsp::crypto::base64_encode(&value)),
            };
            body.insert(name.into(), value);
        }
        let mut data = vec![path, flags & 1];
        data.extend_from_slice(serde_json::Value::Object(body).to_string().as_bytes());
        fuzz::es9_request(&data);
    }

    /// DER bodies on the ASN.1 binding's path (SGP.22 §6.6): the A2 envelope around one of the
    /// five request tags, with components that start like the data objects they should hold.
    #[test]
    fn es9_request_on_asn1_shaped_bodies(
        tag in prop::sample::select(vec![0xBF39u32, 0xBF3B, 0xBF3A, 0xBF41, 0xBF3D, 0xBF3F]),
        components in proptest::collection::vec(der_like(), 0..4),
        tid in proptest::collection::vec(any::<u8>(), 0..18),
    ) {
        let mut inner = smdpp_rsp::tlv::encode(0x80, &tid);
        for component in components {
            inner.extend_from_slice(&component);
        }
        let mut data = vec![6, 0];
        data.extend_from_slice(&smdpp_rsp::tlv::encode(0xA2, &smdpp_rsp::tlv::encode(tag, &inner)));
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

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// The structure-aware ES9+ target on random changes (each input drives a whole session).
    #[test]
    fn es9_session_on_random_changes(data in proptest::collection::vec(any::<u8>(), 2..40)) {
        fuzz::es9_session(&data);
    }

    /// Random APDU sequences to the software eUICC, many of them STORE DATA with ES10 tags.
    #[test]
    fn euicc_apdu_on_random_sequences(
        apdus in proptest::collection::vec(
            (any::<bool>(), der_like(), proptest::collection::vec(any::<u8>(), 0..12)),
            0..6,
        ),
    ) {
        let mut data = Vec::new();
        for (store_data, es10, raw) in apdus {
            let apdu = if store_data { [&[0xE2][..], &es10].concat() } else { raw };
            let apdu = &apdu[..apdu.len().min(255)];
            data.push(apdu.len() as u8);
            data.extend_from_slice(apdu);
        }
        fuzz::euicc_apdu(&data);
    }

    /// Random and near-valid state files for the software eUICC.
    #[test]
    fn euicc_state_on_random_files(
        next_seq in prop::sample::select(vec![0u64, 1, 7, u64::MAX - 1, u64::MAX]),
        next_aid in prop::sample::select(vec![0u32, 16, 0xFF_FFFF, 0x100_0000, u32::MAX]),
        profiles in 0usize..40,
        notifications in proptest::collection::vec("[0-9A-F]{0,40}", 0..70),
        default_dp in prop::option::of("[a-z.]{0,300}"),
        noise in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let profile = serde_json::json!({
            "iccid": "8944500400000000024", "aid": "A0000005591010FFFFFFFF8900001000",
            "enabled": false, "metadata": "BF25", "package": "AA==" });
        let state = serde_json::json!({
            "version": 1,
            "eid": "89049032000000000000000000000163",
            "nextSeq": next_seq,
            "nextAid": next_aid,
            "defaultDp": default_dp,
            "profiles": vec![profile; profiles],
            "notifications": notifications,
        });
        fuzz::euicc_state(state.to_string().as_bytes());
        fuzz::euicc_state(&noise);
    }
}

/// Which checks the structure-aware ES9+ target reaches: 300 inputs per function from a fixed
/// generator, each a valid session up to the function with one message changed (keys and
/// challenges are new in every run, so the counts move a little; every outcome asserted here
/// is reached by a dozen or more of the 300). Every function
/// must be refused with the codes of its deep checks (signatures verified over the changed
/// bytes), not only with the session lookup or a parse error: so the target, and the "a
/// refused request changes no profile" check with it, reaches the parsers and checks behind
/// the signatures. The counts are printed (`--nocapture`) as the coverage report.
#[test]
fn the_structure_aware_es9_target_reaches_every_check() {
    let mut reached: std::collections::BTreeMap<(&str, String), usize> = Default::default();
    let mut state = 0x5EED_u64;
    let mut next = || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)) as u8
    };
    for step in 0..fuzz::ES9_STEPS.len() as u8 {
        for _ in 0..300 {
            let len = 2 + (1 + usize::from(next() % 3)) * 3;
            let mut data = vec![step, next()];
            data.extend((2..len).map(|_| next()));
            if let Some(r) = fuzz::es9_session(&data) {
                *reached.entry(r).or_default() += 1;
            }
        }
    }
    for ((function, outcome), n) in &reached {
        println!("{function:24} {outcome:24} {n}");
    }
    let got = |function: &'static str, outcome: &str| {
        reached.contains_key(&(function, outcome.to_owned()))
    };
    let failed_codes = |function: &str| {
        reached
            .keys()
            .filter(|(f, o)| *f == function && o.starts_with("Failed"))
            .count()
    };
    // The eUICC's signatures, checked over the bytes as received (SGP.22 §5.6.3, §5.6.2, §5.6.5).
    assert!(got("authenticateClient", "Failed 8.1 / 6.1"), "{reached:?}");
    assert!(
        got("getBoundProfilePackage", "Failed 8.1 / 6.1"),
        "{reached:?}"
    );
    assert!(failed_codes("cancelSession") >= 1, "{reached:?}");
    assert!(failed_codes("authenticateClient") >= 3, "{reached:?}");
    // Installation results are acknowledged whatever they hold (§6.5.1.4): never applied when
    // changed (asserted inside the target).
    assert!(got("handleNotification", "204"), "{reached:?}");
    // The eUICC's side: the SM-DP+'s signature (§5.7.13 invalidSignature(2)), its certificate
    // (§5.7.5 invalidCertificate(1)) and the package's MACs (§5.7.6 scp03tSecurityError(8))
    // checked over the changed bytes; a changed package is never installed (asserted inside
    // the target).
    assert!(
        got("ES10b.AuthenticateServer", "authenticateErrorCode 2"),
        "{reached:?}"
    );
    assert!(
        got("ES10b.PrepareDownload", "downloadErrorCode 1"),
        "{reached:?}"
    );
    assert!(
        reached
            .keys()
            .any(|(f, o)| *f == "ES10b.LoadBoundProfilePackage" && o.ends_with("/8")),
        "{reached:?}"
    );
}
