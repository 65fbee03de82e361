//! The crate's crypto against an implementation it shares no code with: Python's `cryptography`
//! (pyca, OpenSSL underneath), run by the scripts in `tests/vectors/`. Each test computes the
//! same thing on both sides and compares: the Annex G key derivation and SCP03t (short and
//! long-form segments), ECDSA in SGP.22's r‖s form both ways, and ECDH key agreement.
//!
//! Needs `python3` with `cryptography` (`python3 -m pip install cryptography`). Without it these
//! tests are reported ignored (`[needs python3 cryptography]`), unless
//! `SMDPP_REQUIRE_VECTORS=1` (set by `.ci/run`) makes that a failure.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use libtest_mimic::Trial;
use smdpp_rsp::cert::{Certificate, Role};
use smdpp_rsp::crypto::{self, derive_session_keys, Curve, OneTimeKey, SigningKey};
use smdpp_rsp::scp03t::{Scp03t, MAX_SEGMENT, MAX_SEGMENT_PLAINTEXT};

use crate::{find_python, Needed};

fn vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors")
}

/// The vector tests, ignored without Python's `cryptography`.
pub(crate) fn tests() -> (Needed, Vec<Trial>) {
    let needed = Needed::new(
        "needs python3 cryptography",
        find_python(
            "cryptography",
            "the crate's crypto against an independent implementation",
        ),
        "SMDPP_REQUIRE_VECTORS",
    );
    let trials = vec![
        needed.trial(
            "vectors::key_derivation_and_scp03t_match_python",
            key_derivation_and_scp03t_match_python,
        ),
        needed.trial(
            "vectors::ecdsa_signatures_verify_both_ways",
            ecdsa_signatures_verify_both_ways,
        ),
        needed.trial("vectors::ecdh_agrees_with_python", ecdh_agrees_with_python),
        needed.trial(
            "vectors::brainpool_ecdsa_signatures_verify_both_ways",
            brainpool_ecdsa_signatures_verify_both_ways,
        ),
        needed.trial(
            "vectors::brainpool_pkcs8_keys_load_both_ways",
            brainpool_pkcs8_keys_load_both_ways,
        ),
        needed.trial(
            "vectors::brainpool_ecdh_agrees_with_python",
            brainpool_ecdh_agrees_with_python,
        ),
        needed.trial(
            "vectors::the_mocks_brainpool_hierarchy_verifies_in_python",
            the_mocks_brainpool_hierarchy_verifies_in_python,
        ),
        needed.trial(
            "vectors::brainpool_certificate_of_python_verifies",
            brainpool_certificate_of_python_verifies,
        ),
    ];
    (needed, trials)
}

/// Runs `tests/vectors/SCRIPT ARGS` and returns its standard output.
fn python(python: &Path, script: &str, args: &[&str]) -> String {
    let out = Command::new(python)
        .arg(vectors_dir().join(script))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running {script}: {e}"));
    assert!(
        out.status.success(),
        "{script} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `NAME value` lines (the last word is the value).
fn lines(text: &str) -> HashMap<String, String> {
    text.lines()
        .filter_map(|l| {
            let (name, value) = l.rsplit_once(' ')?;
            Some((name.trim().to_owned(), value.to_owned()))
        })
        .collect()
}

fn h(text: &str) -> Vec<u8> {
    crypto::hex_decode(text).unwrap()
}

/// `tests/vectors/scp03t.py`: the session keys of Annex G, then an encrypted `87`, a MACed
/// `88`, an encrypted `86` and a full 1020-byte `86` segment (`86 82 03 F8`), in one chain.
async fn key_derivation_and_scp03t_match_python(python3: PathBuf) {
    let printed = python(&python3, "scp03t.py", &[]);
    let expected = lines(&printed);
    let shs: [u8; 32] = std::array::from_fn(|i| i as u8 + 1);
    let eid: [u8; 16] = h("89049032123451234512345678901235").try_into().unwrap();
    let keys = derive_session_keys(&shs, &h("0102030405060708"), &eid);
    assert_eq!(crypto::hex_upper(&keys.mac_chaining), expected["MCV0"]);
    assert_eq!(crypto::hex_upper(&keys.enc), expected["S-ENC"]);
    assert_eq!(crypto::hex_upper(&keys.mac), expected["S-MAC"]);

    let mut sender = Scp03t::new(&keys);
    let metadata = h("BF251B5A0A9800103254769810321491044D6F636B920750726F66696C65");
    let long: Vec<u8> = (0..MAX_SEGMENT_PLAINTEXT)
        .map(|i| (i % 251) as u8)
        .collect();
    let sent = [
        ("87 ICV", sender.encrypt(0x87, &h("BF2400"))),
        ("88", sender.mac_only(0x88, &metadata)),
        ("86 ICV", sender.encrypt(0x86, &h("A003810101"))),
        ("86L ICV", sender.encrypt(0x86, &long)),
    ];
    for (name, tlv) in &sent {
        let line = printed
            .lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("{name} in {printed}"));
        assert!(
            line.ends_with(&format!("TLV {}", crypto::hex_upper(tlv))),
            "{name}: {line}"
        );
    }
    let full = &sent[3].1;
    assert_eq!(full.len(), MAX_SEGMENT);
    assert_eq!(full[..4], [0x86, 0x82, 0x03, 0xF8]);
    let mut receiver = Scp03t::new(&keys);
    assert_eq!(receiver.decrypt(&sent[0].1).unwrap(), h("BF2400"));
    assert_eq!(receiver.verify(&sent[1].1).unwrap(), metadata);
    assert_eq!(receiver.decrypt(&sent[2].1).unwrap(), h("A003810101"));
    assert_eq!(receiver.decrypt(full).unwrap(), long);
}

/// ECDSA on P-256 in SGP.22's form (r‖s, 64 bytes, §2.6.7.2), with a fixed key: the crate
/// loads Python's PKCS#8 key to the same public key, Python verifies what the crate signs, the
/// crate verifies what Python signs, and neither accepts a signature with a bit flipped.
async fn ecdsa_signatures_verify_both_ways(python3: PathBuf) {
    let message = b"euiccSigned1 || serverChallenge, or any other signed data";
    let message_hex = crypto::hex_upper(message);
    let signed = lines(&python(&python3, "ecc.py", &["sign", &message_hex]));
    let public = h(&signed["PUB"]);
    let signature = h(&signed["SIG"]);
    assert_eq!(signature.len(), 64);
    assert!(crypto::verify(&public, message, &signature));
    let mut flipped = signature.clone();
    flipped[40] ^= 1;
    assert!(!crypto::verify(&public, message, &flipped));
    assert!(!crypto::verify(&public, b"another message", &signature));

    let key = SigningKey::from_pem(&python(&python3, "ecc.py", &["key"])).unwrap();
    assert_eq!(
        key.public_key(),
        &public[..],
        "the same key, the same public point"
    );
    // Python's verdict on a signature of the crate's.
    let verdict = |signature: &[u8]| {
        let hex = crypto::hex_upper(signature);
        let args = ["verify", signed["PUB"].as_str(), &message_hex, &hex];
        python(&python3, "ecc.py", &args).trim().to_owned()
    };
    let ours = key.sign(message);
    assert_eq!(verdict(&ours), "OK");
    let mut flipped = ours;
    flipped[3] ^= 1;
    assert_eq!(verdict(&flipped), "BAD");
}

/// ECKA-DH on P-256: a one-time key of the crate and Python's fixed key agree on the same
/// shared secret, computed on each side from the other's public point.
async fn ecdh_agrees_with_python(python3: PathBuf) {
    let ours = OneTimeKey::generate();
    let theirs = lines(&python(
        &python3,
        "ecc.py",
        &["ecdh", &crypto::hex_upper(ours.public_key())],
    ));
    let shared = ours
        .agree(&h(&theirs["PUB"]))
        .expect("agreement with a valid point");
    assert_eq!(crypto::hex_upper(&shared), theirs["SHARED"]);
    assert_ne!(shared, [0; 32]);
    // A point not on the curve agrees on nothing.
    let mut off_curve = h(&theirs["PUB"]);
    off_curve[64] ^= 1;
    assert!(OneTimeKey::generate().agree(&off_curve).is_none());
}

/// `ecc.py`'s arguments for brainpoolP256r1.
fn bp<'a>(args: &[&'a str]) -> Vec<&'a str> {
    let mut out = vec!["--curve", "brainpoolP256r1"];
    out.extend_from_slice(args);
    out
}

/// [`ecdsa_signatures_verify_both_ways`] on brainpoolP256r1: Python signs and the crate
/// verifies, the crate signs and Python verifies, a flipped bit fails both ways, and the
/// signature is on its curve only.
async fn brainpool_ecdsa_signatures_verify_both_ways(python3: PathBuf) {
    let curve = Curve::BrainpoolP256r1;
    let message = b"serverSigned1 || serverCertificate, on brainpoolP256r1";
    let message_hex = crypto::hex_upper(message);
    let signed = lines(&python(&python3, "ecc.py", &bp(&["sign", &message_hex])));
    let public = h(&signed["PUB"]);
    let signature = h(&signed["SIG"]);
    assert_eq!(signature.len(), 64);
    assert!(crypto::verify_on(curve, &public, message, &signature));
    assert!(
        !crypto::verify(&public, message, &signature),
        "not a P-256 key"
    );
    let mut flipped = signature.clone();
    flipped[40] ^= 1;
    assert!(!crypto::verify_on(curve, &public, message, &flipped));
    assert!(!crypto::verify_on(
        curve,
        &public,
        b"another message",
        &signature
    ));

    let key = SigningKey::from_pem(&python(&python3, "ecc.py", &bp(&["key"]))).unwrap();
    assert_eq!(key.curve(), curve);
    assert_eq!(
        key.public_key(),
        &public[..],
        "the same key, the same public point"
    );
    let verdict = |signature: &[u8]| {
        let hex = crypto::hex_upper(signature);
        let args = bp(&["verify", signed["PUB"].as_str(), &message_hex, &hex]);
        python(&python3, "ecc.py", &args).trim().to_owned()
    };
    let ours = key.sign(message);
    assert_eq!(verdict(&ours), "OK");
    let mut flipped = ours;
    flipped[3] ^= 1;
    assert_eq!(verdict(&flipped), "BAD");
    let fresh = SigningKey::generate_on(curve);
    let args = [
        "verify",
        &crypto::hex_upper(fresh.public_key()),
        &message_hex,
        &crypto::hex_upper(&fresh.sign(message)),
    ];
    assert_eq!(python(&python3, "ecc.py", &bp(&args)).trim(), "OK");
}

/// PKCS#8 across implementations: the crate reads Python's brainpool key (above, and here as
/// DER), and Python reads the crate's, a freshly generated one, to the same public point.
async fn brainpool_pkcs8_keys_load_both_ways(python3: PathBuf) {
    let theirs = SigningKey::from_pem(&python(&python3, "ecc.py", &bp(&["key"]))).unwrap();
    let again = SigningKey::from_pkcs8(theirs.pkcs8_der()).unwrap();
    assert_eq!(again.public_key(), theirs.public_key());
    for key in [
        SigningKey::generate_on(Curve::BrainpoolP256r1),
        SigningKey::generate(),
    ] {
        let der = crypto::hex_upper(key.pkcs8_der());
        let loaded = lines(&python(&python3, "ecc.py", &["load", &der]));
        let name = match key.curve() {
            Curve::NistP256 => "secp256r1",
            Curve::BrainpoolP256r1 => "brainpoolP256r1",
        };
        assert_eq!(loaded["CURVE"], name);
        assert_eq!(h(&loaded["PUB"]), key.public_key());
    }
}

/// ECKA-DH on brainpoolP256r1 with Python's fixed key, both ways; an off-curve point, and a
/// P-256 point, agree on nothing.
async fn brainpool_ecdh_agrees_with_python(python3: PathBuf) {
    let ours = OneTimeKey::generate_on(Curve::BrainpoolP256r1);
    let ours_hex = crypto::hex_upper(ours.public_key());
    let theirs = lines(&python(&python3, "ecc.py", &bp(&["ecdh", &ours_hex])));
    let shared = ours
        .agree(&h(&theirs["PUB"]))
        .expect("agreement with a valid point");
    assert_eq!(crypto::hex_upper(&shared), theirs["SHARED"]);
    assert_ne!(shared, [0; 32]);
    let mut off_curve = h(&theirs["PUB"]);
    off_curve[64] ^= 1;
    let fresh = || OneTimeKey::generate_on(Curve::BrainpoolP256r1);
    assert!(fresh().agree(&off_curve).is_none());
    let nist = lines(&python(&python3, "ecc.py", &["sign", "00"]));
    assert!(fresh().agree(&h(&nist["PUB"])).is_none());
}

/// A brainpool CA and a certificate it signed, made by Python's x509 builder: the crate reads
/// both as brainpoolP256r1 and verifies the issuer's signature; a changed byte under the
/// signature fails.
async fn brainpool_certificate_of_python_verifies(python3: PathBuf) {
    let made = lines(&python(&python3, "ecc.py", &bp(&["cert"])));
    let ca = Certificate::parse(&h(&made["CA"])).unwrap();
    let leaf = Certificate::parse(&h(&made["LEAF"])).unwrap();
    assert_eq!(
        (ca.curve, leaf.curve),
        (Curve::BrainpoolP256r1, Curve::BrainpoolP256r1)
    );
    assert_eq!(leaf.public_key, h(&made["LEAFPUB"]));
    assert_eq!(ca.check_issued_by(&ca, Role::Ci), Ok(()));
    assert_eq!(leaf.check_issued_by(&ca, Role::Ci), Ok(()));
    let mut changed = h(&made["LEAF"]);
    let serial = changed
        .windows(4)
        .position(|w| w == [0x02, 0x02, 0x56, 0x78])
        .unwrap();
    changed[serial + 3] ^= 1;
    let changed = Certificate::parse(&changed).unwrap();
    assert!(changed.check_issued_by(&ca, Role::Ci).is_err());
    let nist = lines(&python(&python3, "ecc.py", &["cert"]));
    let nist_ca = Certificate::parse(&h(&nist["CA"])).unwrap();
    assert_eq!(nist_ca.curve, Curve::NistP256);
    assert!(leaf.check_issued_by(&nist_ca, Role::Ci).is_err());
}

/// The brainpool hierarchy `certs init` makes (the crate's `tlv` X.509 writer, since rcgen
/// cannot sign with brainpool keys), verified by pyca cryptography: every certificate is on
/// brainpoolP256r1 and signed by its issuer's key; a changed byte of the signed part is not.
async fn the_mocks_brainpool_hierarchy_verifies_in_python(python3: PathBuf) {
    use smdpp_rsp::pki::{GsmaPki, CI_BRP_CERT, DPAUTH_BRP_CERT, DPPB_BRP_CERT, EUM_BRP_CERT};
    let dir = std::env::temp_dir().join(format!("smdpp-brp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let pki = GsmaPki::new(&dir);
    pki.ensure(&["localhost".into()], "89049032000000000000000000000163")
        .unwrap();
    let read = |file: &str| std::fs::read(pki.dir().join(file)).unwrap();
    let ci = read(CI_BRP_CERT);
    let eum = read(EUM_BRP_CERT);
    let euicc = pki
        .issue_euicc_on(Curve::BrainpoolP256r1, "89049032123451234512345678901235")
        .unwrap()
        .certificate;
    for (issuer, cert, what) in [
        (&ci, &ci, "CI"),
        (&ci, &eum, "EUM"),
        (&eum, &euicc, "eUICC"),
        (&ci, &read(DPAUTH_BRP_CERT), "DPauth"),
        (&ci, &read(DPPB_BRP_CERT), "DPpb"),
    ] {
        let args = [
            "issued",
            &crypto::hex_upper(issuer),
            &crypto::hex_upper(cert),
        ];
        let verdict = python(&python3, "ecc.py", &args);
        assert_eq!(
            verdict.lines().collect::<Vec<_>>(),
            ["CURVE brainpoolP256r1", "OK"],
            "{what}"
        );
    }
    // The signature's last byte changed (the DER stays well-formed): Python says BAD.
    let mut changed = eum.clone();
    let last = changed.len() - 1;
    changed[last] ^= 1;
    let args = [
        "issued",
        &crypto::hex_upper(&ci),
        &crypto::hex_upper(&changed),
    ];
    let verdict = python(&python3, "ecc.py", &args);
    assert_eq!(
        verdict.lines().collect::<Vec<_>>(),
        ["CURVE brainpoolP256r1", "BAD"],
        "a changed EUM certificate"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
