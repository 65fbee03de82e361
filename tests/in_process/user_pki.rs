//! The user's own SGP.26 material (issue 30): a throwaway "test CI" made here with rcgen, and
//! under it an EUM, an eUICC, DPauth, DPpb and DPtls with SGP.22's profiles (§4.5.2.1) and
//! SGP.26's file names, another SM-DP+ OID than the mock's, put into a certificates folder
//! WITHOUT the CI's key: the mock can issue nothing of its own there, so what it serves is the
//! user's. An LPA trusting only that CI connects (TLS with the user's DPtls), authenticates and
//! downloads. A DPtls that expired, or that does not name the host of the Activation Codes,
//! stops the start with a message saying what is wrong and how to issue a fresh one.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, DistinguishedName, DnType, DnValue,
    ExtendedKeyUsagePurpose, GeneralSubtree, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    NameConstraints,
};
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::json;
use smdpp_mock::{Error, MockSmdp, Scenario};
use smdpp_rsp::cert::{Certificate, Role};
use smdpp_rsp::pki::{self, oid_content};
use smdpp_rsp::{crypto, tlv, PkiError};
use time::{Duration, OffsetDateTime};

use crate::common::receiver::{points, Receiver};
use crate::common::*;

/// The SM-DP+ OID of the user's material: not the mock's (2.999.10).
const USER_SMDP_OID: [u64; 3] = [2, 999, 77];
/// The EUM's EID range, not the mock's (89049032).
const USER_IIN: &str = "89001012";
/// The eUICC's EID, in that range.
const USER_EID: &str = "89001012012341234012345678901224";
/// SGP.26's DPtls host name.
const SGP26_HOST: &str = "testsmdpplus1.example.com";

/// One of the user's certificates: its DER and its key.
struct Made {
    der: Vec<u8>,
    key: KeyPair,
}

impl Made {
    fn issuer(&self) -> Issuer<'static, KeyPair> {
        let key = KeyPair::try_from(self.key.serialize_der().as_slice()).unwrap();
        Issuer::from_ca_cert_der(&CertificateDer::from(self.der.clone()), key).unwrap()
    }

    fn write(&self, dir: &Path, cert: &str, key: &str) {
        std::fs::write(dir.join(cert), &self.der).unwrap();
        std::fs::write(dir.join(key), self.key.serialize_pem()).unwrap();
    }
}

/// certificatePolicies with the policy of `role`, critical but for DPtls (§4.5.2.1).
fn policy(role: Role) -> CustomExtension {
    let info = tlv::encode(0x30, &tlv::encode(0x06, &oid_content(&role.policy())));
    let mut ext = CustomExtension::from_oid_content(&[2, 5, 29, 32], tlv::encode(0x30, &info));
    ext.set_criticality(role != Role::DpTls);
    ext
}

/// subjectAltName: dNSNames (iPAddresses for addresses) and a registeredID.
fn alt_names(names: &[&str], registered: &[u64]) -> CustomExtension {
    let mut content = Vec::new();
    for name in names {
        match name.parse::<std::net::IpAddr>() {
            Ok(std::net::IpAddr::V4(ip)) => tlv::push(&mut content, 0x87, &ip.octets()),
            Ok(std::net::IpAddr::V6(ip)) => tlv::push(&mut content, 0x87, &ip.octets()),
            Err(_) => tlv::push(&mut content, 0x82, name.as_bytes()),
        }
    }
    tlv::push(&mut content, 0x88, &oid_content(registered));
    CustomExtension::from_oid_content(&[2, 5, 29, 17], tlv::encode(0x30, &content))
}

fn subject(entries: &[(DnType, &str)]) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    for (t, v) in entries {
        dn.push(t.clone(), DnValue::Utf8String((*v).into()));
    }
    dn
}

/// Parameters valid from `from` to `to` (days from now).
fn params(name: DistinguishedName, from: i64, to: i64) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = name;
    let now = OffsetDateTime::now_utc();
    params.not_before = now + Duration::days(from);
    params.not_after = now + Duration::days(to);
    params
}

fn key() -> KeyPair {
    KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap()
}

/// The throwaway test CI, self-signed.
fn test_ci() -> Made {
    let key = key();
    let mut p = params(
        subject(&[
            (DnType::CommonName, "Throwaway Test CI"),
            (DnType::OrganizationName, "User Test Lab"),
        ]),
        -1,
        3650,
    );
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    p.custom_extensions = vec![policy(Role::Ci), alt_names(&[], &[2, 999, 78])];
    let der = p.self_signed(&key).unwrap().der().to_vec();
    Made { der, key }
}

/// An end-entity certificate of `ci` for `role`, valid from `validity.0` to `validity.1` days
/// from now.
fn end_entity(
    ci: &Made,
    role: Role,
    name: DistinguishedName,
    custom: Vec<CustomExtension>,
    validity: (i64, i64),
) -> Made {
    let key = key();
    let mut p = params(name, validity.0, validity.1);
    // ExplicitNoCa: basicConstraints CA false and a subjectKeyIdentifier.
    p.is_ca = IsCa::ExplicitNoCa;
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.use_authority_key_identifier_extension = true;
    p.custom_extensions = custom;
    p.custom_extensions.insert(0, policy(role));
    if role == Role::DpTls {
        p.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
    }
    let der = p.signed_by(&key, &ci.issuer()).unwrap().der().to_vec();
    Made { der, key }
}

/// A DPtls of `ci` naming `names`, valid from `from` to `to` days from now.
fn dp_tls(ci: &Made, names: &[&str], validity: (i64, i64)) -> Made {
    let name = subject(&[
        (
            DnType::CommonName,
            names.first().copied().unwrap_or("dptls"),
        ),
        (DnType::OrganizationName, "User Test Lab"),
    ]);
    end_entity(
        ci,
        Role::DpTls,
        name,
        vec![alt_names(names, &USER_SMDP_OID)],
        validity,
    )
}

/// The user's folder: `certs/gsma` of `dir`, with SGP.26's file names, the CI's key left out.
struct UserPki {
    ci: Made,
    dp_auth: Made,
    gsma: PathBuf,
}

impl UserPki {
    /// The CI (without its key), an EUM and an eUICC under it, DPauth and DPpb in
    /// `dir/certs/gsma`; each test adds its DPtls.
    fn write(dir: &Path) -> Self {
        let gsma = dir.join("certs").join(pki::GSMA_DIR);
        std::fs::create_dir_all(&gsma).unwrap();
        let ci = test_ci();
        std::fs::write(gsma.join(pki::CI_CERT), &ci.der).unwrap();
        let eum = {
            let key = key();
            let mut p = params(
                subject(&[
                    (DnType::CommonName, "User Test EUM"),
                    (DnType::OrganizationName, "User EUM"),
                ]),
                -1,
                3650,
            );
            p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
            p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
            p.use_authority_key_identifier_extension = true;
            p.name_constraints = Some(NameConstraints {
                permitted_subtrees: vec![GeneralSubtree::DirectoryName(subject(&[
                    (DnType::OrganizationName, "User EUM"),
                    (DnType::CustomDnType(vec![2, 5, 4, 5]), USER_IIN),
                ]))],
                excluded_subtrees: Vec::new(),
            });
            p.custom_extensions = vec![policy(Role::Eum), alt_names(&[], &[2, 999, 79])];
            let der = p.signed_by(&key, &ci.issuer()).unwrap().der().to_vec();
            Made { der, key }
        };
        eum.write(&gsma, pki::EUM_CERT, pki::EUM_KEY);
        let euicc = end_entity(
            &eum,
            Role::Euicc,
            subject(&[
                (DnType::OrganizationName, "User EUM"),
                (DnType::CustomDnType(vec![2, 5, 4, 5]), USER_EID),
                (DnType::CommonName, "User eUICC"),
            ]),
            Vec::new(),
            (-1, 3650),
        );
        euicc.write(&gsma, pki::EUICC_CERT, pki::EUICC_KEY);
        let dp = |role| {
            end_entity(
                &ci,
                role,
                subject(&[
                    (DnType::CommonName, "User SM-DP+"),
                    (DnType::OrganizationName, "User Test Lab"),
                ]),
                vec![alt_names(&[], &USER_SMDP_OID)],
                (-1, 3650),
            )
        };
        let dp_auth = dp(Role::DpAuth);
        dp_auth.write(&gsma, pki::DPAUTH_CERT, pki::DPAUTH_KEY);
        dp(Role::DpPb).write(&gsma, pki::DPPB_CERT, pki::DPPB_KEY);
        UserPki { ci, dp_auth, gsma }
    }

    /// The folder's file names, sorted.
    fn files(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&self.gsma)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    /// An LPA with the user's eUICC (read from the folder as SGP.26 names its files), trusting
    /// only the user's CI for TLS.
    fn lpa(&self) -> smdpp_rsp::Lpa {
        let credentials = smdpp_rsp::EuiccCredentials::from_dir(&self.gsma).unwrap();
        let euicc = smdpp_rsp::Euicc::new(credentials).unwrap();
        smdpp_rsp::Lpa::new(euicc, std::slice::from_ref(&self.ci.der)).unwrap()
    }
}

/// The certificates the ES9+ listener at `port` presents to a client that trusts only `ci` and
/// asks for `host` (SNI and name check, as an LPA does).
async fn tls_chain(port: u16, host: &str, ci: &[u8]) -> Result<Vec<Vec<u8>>, std::io::Error> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from(ci.to_vec())).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(pki::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let stream = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from(host.to_owned()).unwrap(), tcp)
        .await?;
    Ok(stream
        .get_ref()
        .1
        .peer_certificates()
        .unwrap()
        .iter()
        .map(|c| c.to_vec())
        .collect())
}

/// The scenario of the ES9+ tests (`smdp.address: localhost`), notifying `receiver`.
fn scenario(receiver: &Receiver) -> Scenario {
    Scenario::from_yaml(&es9_scenario(&receiver.http_url(), "")).unwrap()
}

/// Starts the mock on the folder `dir/certs`, `--es9-address` set to `es9_address` if given.
async fn start(
    dir: &Path,
    receiver: &Receiver,
    es9_address: Option<&str>,
) -> Result<MockSmdp, Error> {
    let es9_address = es9_address.map(str::to_owned);
    MockSmdp::builder()
        .scenario(scenario(receiver))
        .certs_dir(dir.join("certs"))
        .configure(move |config| config.es9_address = es9_address)
        .start()
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_users_sgp26_set_serves_tls_authenticates_and_downloads() {
    let receiver = Receiver::plain(Arc::new(|_| 204)).await;
    let dir = TempDir::new("user-pki");
    // The DPtls under another SGP.26-style name than the mock's: the only one, so it is served.
    let user = UserPki::write(dir.path());
    let tls = dp_tls(&user.ci, &["localhost"], (-1, 365));
    tls.write(
        &user.gsma,
        "CERT_S_SM_DP_TLS_TEST.der",
        "SK_S_SM_DP_TLS_TEST.pem",
    );
    let before = user.files();
    assert!(!before.iter().any(|f| f == pki::CI_KEY));

    let t = TestServer::with_yaml_in(dir, &es9_scenario(&receiver.http_url(), "")).await;
    // Nothing of the mock's own was made: the folder holds the user's files only.
    assert_eq!(user.files(), before);
    let port = t.mock.es9_addr().unwrap().port();

    // TLS: the user's DPtls, then the user's CI, verified by a client trusting only that CI.
    let chain = tls_chain(port, "localhost", &user.ci.der).await.unwrap();
    assert_eq!(chain, [tls.der.clone(), user.ci.der.clone()]);
    // A client trusting the GSMA-style CI the mock would make (any other CI) is refused.
    let stranger = test_ci();
    assert!(tls_chain(port, "localhost", &stranger.der).await.is_err());

    // InitiateAuthentication answers with the user's DPauth, for the user's CI.
    let (iccid, code) = released(&t, json!({})).await;
    let address = format!("localhost:{port}");
    let mut lpa = user.lpa();
    let answer = initiate_authentication(&mut lpa, &address, &address)
        .await
        .unwrap();
    assert_eq!(
        answer["header"]["functionExecutionStatus"]["status"], "Executed-Success",
        "{answer}"
    );
    let served = crypto::base64_decode(answer["serverCertificate"].as_str().unwrap()).unwrap();
    assert_eq!(served, user.dp_auth.der);
    let ci = Certificate::parse(&user.ci.der).unwrap();
    let chosen = crypto::base64_decode(answer["euiccCiPKIdToBeUsed"].as_str().unwrap()).unwrap();
    assert!(chosen.ends_with(ci.subject_key_id.as_deref().unwrap()));

    // A whole download by the user's eUICC: the package, the result, the operator's points.
    let mut lpa = user.lpa();
    let downloaded = lpa.download(&code, None).await.unwrap();
    assert!(downloaded.installed);
    assert_eq!(downloaded.iccid.to_string(), iccid);
    let profile = t
        .wait_for(&iccid, |p| {
            p.state == smdpp_mock::profile::ProfileState::Installed
        })
        .await;
    assert_eq!(
        profile.eid.map(|e| e.to_string()).as_deref(),
        Some(USER_EID)
    );
    assert_eq!(points(&receiver.wait_for(2).await), [3, 4]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_dptls_stops_the_start_and_says_how_to_issue_a_fresh_one() {
    let receiver = Receiver::plain(Arc::new(|_| 204)).await;
    let dir = TempDir::new("user-pki-expired");
    let user = UserPki::write(dir.path());
    // Valid for a year, two years ago: as SGP.26's TLS certificates in circulation.
    let expired = dp_tls(&user.ci, &["localhost"], (-730, -365));
    expired.write(&user.gsma, pki::DPTLS_CERT, pki::DPTLS_KEY);
    let before = user.files();

    let e = start(dir.path(), &receiver, None).await.unwrap_err();
    assert!(
        matches!(&e, Error::GsmaPki(PkiError::TlsExpired { path, .. }) if path.ends_with(pki::DPTLS_CERT)),
        "{e:?}"
    );
    let message = e.to_string();
    let expired_on = (OffsetDateTime::now_utc() - Duration::days(365)).date();
    for words in [
        pki::DPTLS_CERT,
        "DPtls expired on",
        &expired_on.to_string(),
        "SGP.26 TLS certificates in circulation have often expired",
        "issue a fresh one from your own test CI",
        // Without the CI's key in the folder: sign one with the user's CI key.
        "openssl x509 -req -CA CERT_CI_ECDSA_NIST.der",
        "docs/es9plus.md#a-real-test-euicc",
        pki::CI_KEY,
    ] {
        assert!(message.contains(words), "{words:?} not in: {message}");
    }
    assert_eq!(user.files(), before, "a failed start changes no file");

    // With the CI's key beside it, the message says to remove the two files; done, the mock
    // issues a fresh DPtls from the user's CI and serves it.
    std::fs::write(user.gsma.join(pki::CI_KEY), user.ci.key.serialize_pem()).unwrap();
    let message = start(dir.path(), &receiver, None)
        .await
        .unwrap_err()
        .to_string();
    let remove = format!(
        "remove {} and {}, and the mock issues a new DPtls",
        user.gsma.join(pki::DPTLS_CERT).display(),
        user.gsma.join(pki::DPTLS_KEY).display()
    );
    assert!(message.contains(&remove), "{message}");
    std::fs::remove_file(user.gsma.join(pki::DPTLS_CERT)).unwrap();
    std::fs::remove_file(user.gsma.join(pki::DPTLS_KEY)).unwrap();
    let mock = start(dir.path(), &receiver, None).await.unwrap();
    let port = mock.es9_addr().unwrap().port();
    let chain = tls_chain(port, "localhost", &user.ci.der).await.unwrap();
    let fresh = Certificate::parse(&chain[0]).unwrap();
    let ci = Certificate::parse(&user.ci.der).unwrap();
    fresh.check_issued_by(&ci, Role::Ci).unwrap();
    fresh.check_profile(Role::DpTls).unwrap();
    // With the SM-DP+ OID of the user's DPauth.
    assert_eq!(
        fresh.registered_id.as_deref(),
        Some(&oid_content(&USER_SMDP_OID)[..])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dptls_naming_another_host_stops_the_start() {
    let receiver = Receiver::plain(Arc::new(|_| 204)).await;
    let dir = TempDir::new("user-pki-host");
    let user = UserPki::write(dir.path());
    // SGP.26's DPtls names its own test host (here with a wildcard), not localhost.
    let tls = dp_tls(&user.ci, &["*.example.com"], (-1, 365));
    tls.write(&user.gsma, pki::DPTLS_CERT, pki::DPTLS_KEY);

    let e = start(dir.path(), &receiver, None).await.unwrap_err();
    assert!(
        matches!(&e, Error::GsmaPki(PkiError::TlsName { path, .. }) if path.ends_with(pki::DPTLS_CERT)),
        "{e:?}"
    );
    let message = e.to_string();
    for words in [
        "DPtls names *.example.com, not localhost",
        "the Activation Codes name (localhost:",
        "LPAs that check TLS refuse the connection",
        "smdp.address",
        "--es9-address HOST[:PORT]",
        "or issue a DPtls naming localhost",
    ] {
        assert!(message.contains(words), "{words:?} not in: {message}");
    }

    // The Activation Codes naming a host it covers (a hosts-file entry pointing at the mock),
    // it starts, and a client asking for that name verifies it.
    let address = format!("{SGP26_HOST}:443");
    let mock = start(dir.path(), &receiver, Some(&address)).await.unwrap();
    assert_eq!(mock.smdp_address(), address);
    let port = mock.es9_addr().unwrap().port();
    let chain = tls_chain(port, SGP26_HOST, &user.ci.der).await.unwrap();
    assert_eq!(chain[0], tls.der);
    // A name one label deeper is not covered, by the mock's check as by rustls.
    assert!(tls_chain(port, "a.testsmdpplus1.example.com", &user.ci.der)
        .await
        .is_err());
    drop(mock);
    let deeper = "a.testsmdpplus1.example.com:443";
    let e = start(dir.path(), &receiver, Some(deeper))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::GsmaPki(PkiError::TlsName { .. })), "{e}");
}
