//! The software eUICC's own checks, each reached with one tampered SM-DP+ message: the real
//! ES9+ listener answers, the test changes one thing on the way to the card, and the card must
//! answer the exact error of §5.7.13 (AuthenticateServer), §5.7.5 (PrepareDownload) or §5.7.6
//! (LoadBoundProfilePackage: `bppCommandId`, `errorReason`). Everything else in the flow is what
//! an LPA sends, so removing any one check of the card makes its test fail.

use serde_json::{json, Value};
use smdpp_rsp::crypto::{self, SigningKey};
use smdpp_rsp::es10b::{
    AuthenticateServerRequest, AuthenticateServerResponse, CtxParams1, FinalResult,
    PendingNotification, PrepareDownloadRequest, PrepareDownloadResponse,
};
use smdpp_rsp::lpa::Lpa;
use smdpp_rsp::{bpp, tlv};

use crate::common::*;

const TAC: [u8; 4] = [0x35, 0x29, 0x06, 0x11];

/// A download driven step by step, so that any message can be changed before the card sees it.
struct Flow {
    t: TestServer,
    lpa: Lpa,
    address: String,
    matching_id: String,
    _receiver: crate::common::receiver::Receiver,
}

/// The parts of an InitiateAuthentication answer the card is given.
struct Initiated {
    tid_hex: String,
    signed1: Vec<u8>,
    signature1: Vec<u8>,
    ci: Vec<u8>,
    certificate: Vec<u8>,
}

fn b64(json: &Value, name: &str) -> Vec<u8> {
    crypto::base64_decode(json[name].as_str().unwrap()).unwrap_or_else(|| panic!("{name}"))
}

fn signature_value(tlv5f37: &[u8]) -> Vec<u8> {
    tlv::read_tagged(tlv5f37, 0x5F37).unwrap().value.to_vec()
}

impl Flow {
    async fn start() -> Flow {
        let (t, receiver) = es9_started("").await;
        let (_iccid, matching_id) = release_standard(&t, None, json!({})).await;
        let lpa = t.mock.lpa(EID1).unwrap();
        let address = t.mock.smdp_address();
        Flow {
            t,
            lpa,
            address,
            matching_id,
            _receiver: receiver,
        }
    }

    fn card(&mut self, command: &[u8]) -> Vec<u8> {
        self.lpa.euicc_mut().transmit(command)
    }

    fn pem(&self, name: &str) -> String {
        std::fs::read_to_string(self.t.certs().join("gsma").join(name)).unwrap()
    }

    fn der(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.t.certs().join("gsma").join(name)).unwrap()
    }

    /// GetEuiccChallenge, then InitiateAuthentication with `challenge` (the card's when `None`).
    async fn initiate(&mut self, challenge: Option<[u8; 16]>) -> Initiated {
        let card_challenge = self.card(&[0xBF, 0x2E, 0x00]);
        let info1 = self.card(&[0xBF, 0x20, 0x00]);
        let challenge = challenge.map_or_else(|| card_challenge[5..21].to_vec(), |c| c.to_vec());
        let answer = self
            .lpa
            .call(
                &self.address,
                "initiateAuthentication",
                json!({ "smdpAddress": self.address,
                        "euiccChallenge": crypto::base64_encode(&challenge),
                        "euiccInfo1": crypto::base64_encode(&info1) }),
            )
            .await
            .unwrap();
        Initiated {
            tid_hex: answer["transactionId"].as_str().unwrap().to_owned(),
            signed1: b64(&answer, "serverSigned1"),
            signature1: signature_value(&b64(&answer, "serverSignature1")),
            ci: b64(&answer, "euiccCiPKIdToBeUsed"),
            certificate: b64(&answer, "serverCertificate"),
        }
    }

    fn authenticate_server(&mut self, i: &Initiated) -> Vec<u8> {
        let ctx = CtxParams1::encode(Some(&self.matching_id), TAC);
        let request = AuthenticateServerRequest::encode(
            &i.signed1,
            &i.signature1,
            &i.ci,
            &i.certificate,
            &ctx,
        );
        self.card(&request)
    }

    /// Through AuthenticateServer and AuthenticateClient: the SM-DP+'s answer.
    async fn authenticated(&mut self) -> (String, Value) {
        let (tid_hex, client, _) = self.authenticated_with_signature1().await;
        (tid_hex, client)
    }

    /// [`Flow::authenticated`], with the card's euiccSignature1 (what smdpSignature2 covers).
    async fn authenticated_with_signature1(&mut self) -> (String, Value, Vec<u8>) {
        let i = self.initiate(None).await;
        let response = self.authenticate_server(&i);
        let signature1 = match AuthenticateServerResponse::parse(&response).unwrap() {
            AuthenticateServerResponse::Ok { signature, .. } => signature.to_vec(),
            AuthenticateServerResponse::Error { code, .. } => panic!("AuthenticateServer {code}"),
        };
        let client = self
            .lpa
            .call(
                &self.address,
                "authenticateClient",
                json!({ "transactionId": i.tid_hex,
                        "authenticateServerResponse": crypto::base64_encode(&response) }),
            )
            .await
            .unwrap();
        (i.tid_hex, client, signature1)
    }

    fn prepare_download(
        &mut self,
        signed2: &[u8],
        signature2: &[u8],
        certificate: &[u8],
    ) -> Vec<u8> {
        let request = PrepareDownloadRequest::encode(signed2, signature2, None, certificate);
        self.card(&request)
    }

    /// Through PrepareDownload and GetBoundProfilePackage: the ES10b commands of the package,
    /// and the card's one-time public key data object (`5F49`).
    async fn bound(&mut self) -> (Vec<Vec<u8>>, Vec<u8>) {
        let (tid_hex, client) = self.authenticated().await;
        let prepared = self.prepare_download(
            &b64(&client, "smdpSigned2"),
            &signature_value(&b64(&client, "smdpSignature2")),
            &b64(&client, "smdpCertificate"),
        );
        let otpk = match PrepareDownloadResponse::parse(&prepared).unwrap() {
            PrepareDownloadResponse::Ok { euicc_signed2, .. } => {
                euicc_signed2.euicc_otpk.raw.to_vec()
            }
            PrepareDownloadResponse::Error { code, .. } => panic!("PrepareDownload error {code}"),
        };
        let bound = self
            .lpa
            .call(
                &self.address,
                "getBoundProfilePackage",
                json!({ "transactionId": tid_hex,
                        "prepareDownloadResponse": crypto::base64_encode(&prepared) }),
            )
            .await
            .unwrap();
        let commands = bpp::es10_commands(&b64(&bound, "boundProfilePackage")).unwrap();
        (commands, otpk)
    }

    /// Loads `commands`: the card's `(bppCommandId, errorReason)`, or `None` for an installation.
    fn load(&mut self, commands: &[Vec<u8>]) -> Option<(u8, u8)> {
        self.load_counting(commands).1
    }

    /// [`Flow::load`], with the number of commands the card took before it answered.
    fn load_counting(&mut self, commands: &[Vec<u8>]) -> (usize, Option<(u8, u8)>) {
        for (n, command) in commands.iter().enumerate() {
            let answer = self.card(command);
            if answer.is_empty() {
                continue;
            }
            let Ok(PendingNotification::InstallationResult(pir)) =
                PendingNotification::parse(&answer)
            else {
                panic!("not an installation result: {}", crypto::hex_upper(&answer));
            };
            return (
                n + 1,
                match pir.result {
                    FinalResult::Success { .. } => None,
                    FinalResult::Error {
                        bpp_command_id,
                        error_reason,
                    } => Some((bpp_command_id, error_reason)),
                },
            );
        }
        panic!("the card never answered the package");
    }
}

fn authenticate_server_error(answer: &[u8]) -> u64 {
    match AuthenticateServerResponse::parse(answer).unwrap() {
        AuthenticateServerResponse::Error { code, .. } => code,
        AuthenticateServerResponse::Ok { .. } => panic!("the card accepted it"),
    }
}

fn prepare_download_error(answer: &[u8]) -> u64 {
    match PrepareDownloadResponse::parse(answer).unwrap() {
        PrepareDownloadResponse::Error { code, .. } => code,
        PrepareDownloadResponse::Ok { .. } => panic!("the card accepted it"),
    }
}

/// §5.7.13 invalidSignature(2): serverSignature1 with one bit flipped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_server_signature1_is_invalid_signature() {
    let mut f = Flow::start().await;
    let mut i = f.initiate(None).await;
    i.signature1[10] ^= 1;
    assert_eq!(authenticate_server_error(&f.authenticate_server(&i)), 2);
}

/// §5.7.13 euiccChallengeMismatch(6): serverSigned1 validly signed by the SM-DP+, for another
/// challenge than the card gave.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_challenge_is_a_challenge_mismatch() {
    let mut f = Flow::start().await;
    let i = f.initiate(Some([0x42; 16])).await;
    assert_eq!(authenticate_server_error(&f.authenticate_server(&i)), 6);
}

/// §5.7.13 noSessionContext(4): the same (valid) request again, its challenge used up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_used_challenge_is_no_session_context() {
    let mut f = Flow::start().await;
    let i = f.initiate(None).await;
    let first = f.authenticate_server(&i);
    assert!(matches!(
        AuthenticateServerResponse::parse(&first),
        Ok(AuthenticateServerResponse::Ok { .. })
    ));
    assert_eq!(authenticate_server_error(&f.authenticate_server(&i)), 4);
}

/// §5.7.13 ciPKUnknown(7): euiccCiPKIdToBeUsed names a CI the card does not have.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_ci_to_be_used_is_ci_pk_unknown() {
    let mut f = Flow::start().await;
    let mut i = f.initiate(None).await;
    let last = i.ci.len() - 1;
    i.ci[last] ^= 1;
    assert_eq!(authenticate_server_error(&f.authenticate_server(&i)), 7);
}

/// §5.7.13 invalidCertificate(1): CERT.DPpb where CERT.DPauth belongs (a valid certificate of the
/// same CI, for the wrong role).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_of_another_role_is_refused() {
    let mut f = Flow::start().await;
    let mut i = f.initiate(None).await;
    i.certificate = f.der("CERT_S_SM_DPpb_ECDSA_NIST.der");
    let code = authenticate_server_error(&f.authenticate_server(&i));
    assert!(
        code == 1 || code == 5,
        "invalidCertificate or invalidOid, not {code}"
    );
}

/// §5.7.5 invalidSignature(2): smdpSignature2 with one bit flipped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_smdp_signature2_is_invalid_signature() {
    let mut f = Flow::start().await;
    let (_, client) = f.authenticated().await;
    let mut signature2 = signature_value(&b64(&client, "smdpSignature2"));
    signature2[20] ^= 1;
    let answer = f.prepare_download(
        &b64(&client, "smdpSigned2"),
        &signature2,
        &b64(&client, "smdpCertificate"),
    );
    assert_eq!(prepare_download_error(&answer), 2);
}

/// §5.7.5 invalidCertificate(1): CERT.DPauth where CERT.DPpb belongs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dp_auth_certificate_in_prepare_download_is_invalid() {
    let mut f = Flow::start().await;
    let (_, client) = f.authenticated().await;
    let answer = f.prepare_download(
        &b64(&client, "smdpSigned2"),
        &signature_value(&b64(&client, "smdpSignature2")),
        &f.der("CERT_S_SM_DPauth_ECDSA_NIST.der"),
    );
    assert_eq!(prepare_download_error(&answer), 1);
}

/// smdpSigned2 with `tid` as its transactionId (and the rest as sent), signed with `key` over
/// it and the card's euiccSignature1 as §5.7.5 asks: a signature the card's check accepts.
fn signed2_for(
    signed2: &[u8],
    tid: Option<&[u8]>,
    key: &SigningKey,
    signature1: &[u8],
) -> (Vec<u8>, Vec<u8>) {
    let seq = tlv::read_tagged(signed2, 0x30).unwrap();
    let parts: Vec<Vec<u8>> = seq
        .children()
        .unwrap()
        .iter()
        .map(|p| match (p.tag, tid) {
            (0x80, Some(tid)) => tlv::encode(0x80, tid),
            _ => p.raw.to_vec(),
        })
        .collect();
    let signed2 = tlv::encode(0x30, &parts.concat());
    let signature = key.sign_parts(&[&signed2, &tlv::encode(0x5F37, signature1)]);
    (signed2, signature.to_vec())
}

/// §5.7.5 invalidTransactionId(5): smdpSigned2 for another transactionId, validly signed with
/// SK.DPpb (from the mock's PKI) as an SM-DP+ with its sessions mixed up would.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smdp_signed2_for_another_transaction_is_invalid_transaction_id() {
    let mut f = Flow::start().await;
    let (_, client, signature1) = f.authenticated_with_signature1().await;
    let key = SigningKey::from_pem(&f.pem("SK_S_SM_DPpb_ECDSA_NIST.pem")).unwrap();
    let certificate = b64(&client, "smdpCertificate");
    let (signed2, signature2) = signed2_for(
        &b64(&client, "smdpSigned2"),
        Some(&[0x77; 16]),
        &key,
        &signature1,
    );
    let answer = f.prepare_download(&signed2, &signature2, &certificate);
    assert_eq!(prepare_download_error(&answer), 5);
}

/// §5.7.5 invalidCertificate(1): a valid CERT.DPpb of the same CI, of another SM-DP+ (its OID
/// is not the one of the CERT.DPauth that authenticated), with smdpSignature2 made by its key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dp_pb_of_another_smdp_is_invalid_certificate() {
    let mut f = Flow::start().await;
    let (_, client, signature1) = f.authenticated_with_signature1().await;
    let other =
        f.t.mock
            .gsma_pki()
            .issue_dp_pb_of_another_smdp(&[2, 999, 11])
            .unwrap();
    let (signed2, signature2) =
        signed2_for(&b64(&client, "smdpSigned2"), None, &other.key, &signature1);
    let answer = f.prepare_download(&signed2, &signature2, &other.der);
    assert_eq!(prepare_download_error(&answer), 1);
    // The mock's own CERT.DPpb with a signature of its own key, the same way, is accepted:
    // the refusal was the other SM-DP+'s.
    let mut f = Flow::start().await;
    let (_, client, signature1) = f.authenticated_with_signature1().await;
    let key = SigningKey::from_pem(&f.pem("SK_S_SM_DPpb_ECDSA_NIST.pem")).unwrap();
    let (signed2, signature2) = signed2_for(&b64(&client, "smdpSigned2"), None, &key, &signature1);
    let answer = f.prepare_download(&signed2, &signature2, &b64(&client, "smdpCertificate"));
    assert!(matches!(
        PrepareDownloadResponse::parse(&answer),
        Ok(PrepareDownloadResponse::Ok { .. })
    ));
}

/// The `BF23` InitialiseSecureChannelRequest, its parts, re-signed with SK.DPpb (from the
/// mock's PKI) after `change`, as an SM-DP+ that meant it would send it.
fn resigned_bf23(
    f: &Flow,
    command: &[u8],
    otpk: &[u8],
    change: impl Fn(u32, Vec<u8>) -> Vec<u8>,
) -> Vec<u8> {
    let outer = tlv::read_header(command).unwrap().1;
    let bf23 = tlv::read_tagged(&command[outer..], 0xBF23).unwrap();
    let part = |tag| change(tag, bf23.required(tag).unwrap().raw.to_vec());
    let (op, tid, crt, dp_otpk) = (part(0x82), part(0x80), part(0xA6), part(0x5F49));
    let key = SigningKey::from_pem(&f.pem("SK_S_SM_DPpb_ECDSA_NIST.pem")).unwrap();
    let signature = key.sign_parts(&[&op, &tid, &crt, &dp_otpk, otpk]);
    let body = [op, tid, crt, dp_otpk, tlv::encode(0x5F37, &signature)].concat();
    let bf23 = tlv::encode(0xBF23, &body);
    // BF36's length still names the whole package: only BF23's own length may have changed.
    [&command[..outer], &bf23[..]].concat()
}

/// §5.7.6: initialiseSecureChannel(0) with invalidSignature(2) for a flipped smdpSign, and
/// unsupportedCrtValues(4) for a CRT that asks for other keys, validly signed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_secure_channel_request_is_checked() {
    let mut f = Flow::start().await;
    let (mut commands, _) = f.bound().await;
    let last = commands[0].len() - 1;
    commands[0][last] ^= 1;
    assert_eq!(f.load(&commands), Some((0, 2)), "a flipped smdpSign");

    let mut f = Flow::start().await;
    let (mut commands, otpk) = f.bound().await;
    commands[0] = resigned_bf23(&f, &commands[0], &otpk, |tag, raw| {
        if tag != 0xA6 {
            return raw;
        }
        // keyLength 24 (AES-192) instead of 16.
        let crt = tlv::read_exact(&raw).unwrap();
        let parts: Vec<Vec<u8>> = crt
            .children()
            .unwrap()
            .iter()
            .map(|p| {
                if p.tag == 0x81 {
                    tlv::encode(0x81, &[0x18])
                } else {
                    p.raw.to_vec()
                }
            })
            .collect();
        tlv::encode(0xA6, &parts.concat())
    });
    assert_eq!(f.load(&commands), Some((0, 4)), "a CRT for AES-192");

    // Re-signed unchanged, the package installs: the refusal above was the CRT's.
    let mut f = Flow::start().await;
    let (mut commands, otpk) = f.bound().await;
    commands[0] = resigned_bf23(&f, &commands[0], &otpk, |_, raw| raw);
    assert_eq!(f.load(&commands), None);
}

/// §5.7.6 scp03tSecurityError(8): one bit of a profile element segment's MAC, of the MACed
/// StoreMetadata, or of the encrypted ConfigureISDP, each under its own bppCommandId.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_scp03t_mac_is_checked() {
    for (what, tag, command_id) in [
        ("ConfigureISDP (87)", 0xA0u8, 1u8),
        ("StoreMetadata (88)", 0x88, 2),
        ("a profile element segment (86)", 0x86, 5),
    ] {
        let mut f = Flow::start().await;
        let (mut commands, _) = f.bound().await;
        let at = commands
            .iter()
            .position(|c| c[0] == tag && c.len() > 12)
            .unwrap_or_else(|| panic!("{what}"));
        let last = commands[at].len() - 1;
        commands[at][last] ^= 1;
        assert_eq!(f.load(&commands), Some((command_id, 8)), "{what}");
    }
}

/// §5.7.6 installFailedDueToInsufficientMemoryForProfile(10) under loadProfileElements(5): a
/// card with less free memory than the profile (its memory shrank after it told the SM-DP+)
/// refuses as soon as the elements it holds would not fit, not after buffering all the package
/// declares: with 3000 bytes free, at the third segment of 1007 bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_profile_larger_than_the_free_memory_is_refused_as_it_arrives() {
    let mut f = Flow::start().await;
    let (commands, _) = f.bound().await;
    let first = commands.iter().position(|c| c[0] == 0x86).unwrap();
    assert!(commands.len() - first > 4, "a package of several segments");
    f.lpa.euicc_mut().faults.free_nvm = Some(3000);
    assert_eq!(f.load_counting(&commands), (first + 3, Some((5, 10))));
}

/// §5.7.6 installFailedDueToIccidAlreadyExistsOnEuicc(9) under storeMetadata(2): the order is
/// installed, then forced back to Released (admin API) and downloaded again to the same card.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_iccid_the_card_has_is_refused() {
    let mut f = Flow::start().await;
    let (commands, _) = f.bound().await;
    assert_eq!(f.load(&commands), None, "the first installation");
    let iccid =
        f.t.mock
            .profiles()
            .into_iter()
            .find(|p| p.matching_id.is_some() && p.eid.is_some())
            .unwrap()
            .iccid
            .to_string();
    let forced =
        f.t.admin()
            .put(
                &format!("/admin/profiles/{iccid}"),
                json!({ "state": "Released", "matchingId": f.matching_id }),
            )
            .await;
    assert_eq!(forced.status, 200, "{}", forced.body);
    let (commands, _) = f.bound().await;
    assert_eq!(f.load(&commands), Some((2, 9)));
}

/// §5.7.6 installFailedDueToDataMismatch(13) under loadProfileElements(5): a package whose
/// header names another ICCID than the metadata, bound to the card's session by the test acting
/// as the SM-DP+ (SK.DPpb from the mock's PKI, a one-time key of its own, the metadata the
/// mock sent); installFailedDueToPEProcessingError(12) for a package without its USIM (a card
/// builds the profile from its elements); the same binding of the right package installs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_package_for_another_iccid_is_a_data_mismatch() {
    use crate::common::package::{swapped, ts48_shaped};
    use smdpp_rsp::crypto::{derive_session_keys, OneTimeKey};
    use smdpp_rsp::es10b::ProfileMetadata;
    use smdpp_rsp::profile_package as package;
    // The package: generated (header only) for an ICCID, or TS.48-shaped with the ordered ICCID
    // in its header and another in EF.ICCID.
    for (iccid_in_package, ef_iccid_differs, without_usim, expected) in [
        ("8944500100000000012", false, false, Some((5, 13))),
        ("", true, false, Some((5, 13))),
        ("", false, true, Some((5, 12))),
        ("", false, false, None), // the ordered ICCID
    ] {
        let mut f = Flow::start().await;
        let (tid_hex, client) = f.authenticated().await;
        let prepared = f.prepare_download(
            &b64(&client, "smdpSigned2"),
            &signature_value(&b64(&client, "smdpSignature2")),
            &b64(&client, "smdpCertificate"),
        );
        let euicc_otpk = match PrepareDownloadResponse::parse(&prepared).unwrap() {
            PrepareDownloadResponse::Ok { euicc_signed2, .. } => euicc_signed2.euicc_otpk,
            PrepareDownloadResponse::Error { code, .. } => panic!("PrepareDownload {code}"),
        };
        let metadata = b64(&client, "profileMetadata");
        let ordered = ProfileMetadata::parse(&metadata).unwrap().iccid;
        let iccid = if iccid_in_package.is_empty() {
            ordered
        } else {
            iccid_in_package.parse().unwrap()
        };
        let package = if ef_iccid_differs {
            let ordered_digits = ordered.digits();
            let mut package = ts48_shaped(&ordered_digits);
            let at = package
                .windows(10)
                .position(|w| w == swapped(&ordered_digits))
                .unwrap();
            package[at..at + 10].copy_from_slice(&swapped("8944500100000000012"));
            package
        } else {
            let subscription = package::SubscriptionRule::default().for_iccid(&iccid);
            let generated = package::synthetic(&iccid, &subscription, 2000);
            if without_usim {
                tlv::read_all(&generated)
                    .unwrap()
                    .iter()
                    .filter(|e| e.tag != 0xB3)
                    .flat_map(|e| e.raw.to_vec())
                    .collect()
            } else {
                generated
            }
        };
        let one_time = OneTimeKey::generate();
        let smdp_otpk = *one_time.public_key();
        let shs = one_time.agree(euicc_otpk.value).unwrap();
        let eid: [u8; 16] = crypto::hex_decode(EID1).unwrap().try_into().unwrap();
        let keys = derive_session_keys(&shs, b"test-smdp", &eid);
        let signer = SigningKey::from_pem(&f.pem("SK_S_SM_DPpb_ECDSA_NIST.pem")).unwrap();
        let bound = bpp::build(
            &bpp::Binding {
                transaction_id: &crypto::hex_decode(&tid_hex).unwrap(),
                host_id: b"test-smdp",
                smdp_otpk: &smdp_otpk,
                euicc_otpk_tlv: euicc_otpk.raw,
                keys: &keys,
                signer: &signer,
            },
            &metadata,
            &package,
            None,
        );
        let commands = bpp::es10_commands(&bound).unwrap();
        assert_eq!(
            f.load(&commands),
            expected,
            "package for {iccid} (EF.ICCID differs: {ef_iccid_differs}, without USIM: {without_usim}), order {ordered}"
        );
    }
}

/// The `BF36` envelope, which no signature or MAC covers, must agree with what arrives: a
/// declared length one byte longer or shorter than the package is incorrectInputValues(1), and
/// the profile is not installed (found by the structure-aware fuzz target, which had a package
/// with a changed `BF36` length installed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_package_length_bf36_declares_is_checked() {
    for delta in [1i32, -1] {
        let mut f = Flow::start().await;
        let (mut commands, _) = f.bound().await;
        let first = &mut commands[0];
        assert_eq!(
            first[..3],
            [0xBF, 0x36, 0x82],
            "a package of more than 255 bytes"
        );
        let declared = i32::from(u16::from_be_bytes([first[3], first[4]])) + delta;
        first[3..5].copy_from_slice(&(declared as u16).to_be_bytes());
        assert_eq!(f.load(&commands), Some((5, 1)), "declared length {delta:+}");
    }
}
