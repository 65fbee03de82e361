#!/usr/bin/env python3
"""Independent ECDSA and ECDH on NIST P-256 and brainpoolP256r1 with pyca/cryptography, for
SGP.22's signatures (§2.6.7.2: r and s, 32 bytes each, concatenated) and key agreement
(ECKA-DH, Annex G). tests/external/vectors.rs runs it against the crate's crypto.

    python3 tests/vectors/ecc.py sign MESSAGE_HEX           -> PUB <65 bytes> / SIG <r||s>
    python3 tests/vectors/ecc.py verify PUB_HEX MESSAGE_HEX SIG_HEX   -> OK or BAD
    python3 tests/vectors/ecc.py ecdh PEER_PUB_HEX          -> PUB <65 bytes> / SHARED <32 bytes>
    python3 tests/vectors/ecc.py key                        -> the key as PKCS#8 PEM
    python3 tests/vectors/ecc.py load PKCS8_DER_HEX         -> CURVE <name> / PUB <65 bytes>
    python3 tests/vectors/ecc.py cert                       -> CA <DER> / LEAF <DER> / LEAFPUB
                                                              (a CA and a leaf it signed)
    python3 tests/vectors/ecc.py issued ISSUER_DER_HEX CERT_DER_HEX
                                                           -> CURVE <name> / OK or BAD
                                                              (CERT's signature by ISSUER's key)

Every command takes `--curve brainpoolP256r1` (or `--curve secp256r1`, the default) anywhere
among its arguments; without it the output is NIST P-256's, as before the option existed.

The signing and agreement key is fixed (d below), so its public key is a known answer too.
"""
import datetime
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from cryptography import x509
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
    load_der_private_key,
)
from cryptography.x509.oid import NameOID

D = 0x5A1E_C0DE_0000_0000_0000_0000_0000_0000_0000_0000_0000_0000_0000_0000_0000_0001
# The leaf key of `cert`.
D_LEAF = 0x1EAF_0000_0000_0000_0000_0000_0000_0000_0000_0000_0000_0000_0000_0000_0000_0002
CURVES = {"secp256r1": ec.SECP256R1(), "brainpoolP256r1": ec.BrainpoolP256R1()}
CURVE = ec.SECP256R1()
KEY = ec.derive_private_key(D, CURVE)


def choose_curve(args):
    """Takes `--curve NAME` out of `args` and sets CURVE and KEY to it."""
    global CURVE, KEY
    if "--curve" in args:
        at = args.index("--curve")
        CURVE = CURVES[args[at + 1]]
        del args[at : at + 2]
        KEY = ec.derive_private_key(D, CURVE)
    return args


def point(key):
    return key.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)


def certificate(subject, subject_key, issuer, issuer_key, ca):
    """A v3 certificate with SubjectKeyIdentifier and AuthorityKeyIdentifier, ecdsa-with-SHA256."""
    name = lambda o: x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, o)])
    public = subject_key.public_key()
    builder = (
        x509.CertificateBuilder()
        .subject_name(name(subject))
        .issuer_name(name(issuer))
        .public_key(public)
        .serial_number(0x1234 if ca else 0x5678)
        .not_valid_before(datetime.datetime(2025, 1, 1, tzinfo=datetime.timezone.utc))
        .not_valid_after(datetime.datetime(2049, 12, 31, tzinfo=datetime.timezone.utc))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    return builder.sign(issuer_key, hashes.SHA256()).public_bytes(Encoding.DER)


def main(args):
    args = choose_curve(list(args))
    command = args[0]
    if command == "sign":
        der = KEY.sign(bytes.fromhex(args[1]), ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        print("PUB", point(KEY).hex().upper())
        print("SIG", (r.to_bytes(32, "big") + s.to_bytes(32, "big")).hex().upper())
    elif command == "verify":
        public = ec.EllipticCurvePublicKey.from_encoded_point(CURVE, bytes.fromhex(args[1]))
        signature = bytes.fromhex(args[3])
        der = encode_dss_signature(
            int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
        )
        try:
            public.verify(der, bytes.fromhex(args[2]), ec.ECDSA(hashes.SHA256()))
            print("OK")
        except InvalidSignature:
            print("BAD")
    elif command == "ecdh":
        peer = ec.EllipticCurvePublicKey.from_encoded_point(CURVE, bytes.fromhex(args[1]))
        print("PUB", point(KEY).hex().upper())
        print("SHARED", KEY.exchange(ec.ECDH(), peer).hex().upper())
    elif command == "key":
        print(KEY.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()).decode(), end="")
    elif command == "load":
        key = load_der_private_key(bytes.fromhex(args[1]), password=None)
        print("CURVE", key.curve.name)
        print("PUB", point(key).hex().upper())
    elif command == "cert":
        leaf_key = ec.derive_private_key(D_LEAF, CURVE)
        print("CA", certificate("Test CI", KEY, "Test CI", KEY, True).hex().upper())
        print("LEAF", certificate("Test EUM", leaf_key, "Test CI", KEY, False).hex().upper())
        print("LEAFPUB", point(leaf_key).hex().upper())
    elif command == "issued":
        issuer = x509.load_der_x509_certificate(bytes.fromhex(args[1]))
        cert = x509.load_der_x509_certificate(bytes.fromhex(args[2]))
        print("CURVE", cert.public_key().curve.name)
        try:
            issuer.public_key().verify(
                cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(hashes.SHA256())
            )
            print("OK")
        except InvalidSignature:
            print("BAD")
    else:
        raise SystemExit(f"unknown command {command}")


if __name__ == "__main__":
    main(sys.argv[1:])
