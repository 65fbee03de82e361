#!/usr/bin/env python3
"""Independent ECDSA and ECDH on NIST P-256 with pyca/cryptography, for SGP.22's signatures
(§2.6.7.2: r and s, 32 bytes each, concatenated) and key agreement (ECKA-DH, Annex G).
tests/external/vectors.rs runs it against the crate's crypto.

    python3 tests/vectors/ecc.py sign MESSAGE_HEX           -> PUB <65 bytes> / SIG <r||s>
    python3 tests/vectors/ecc.py verify PUB_HEX MESSAGE_HEX SIG_HEX   -> OK or BAD
    python3 tests/vectors/ecc.py ecdh PEER_PUB_HEX          -> PUB <65 bytes> / SHARED <32 bytes>
    python3 tests/vectors/ecc.py key                        -> the key as PKCS#8 PEM

The signing and agreement key is fixed (d below), so its public key is a known answer too.
"""
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

D = 0x5A1E_C0DE_0000_0000_0000_0000_0000_0000_0000_0000_0000_0000_0000_0000_0000_0001
KEY = ec.derive_private_key(D, ec.SECP256R1())


def point(key):
    return key.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)


def main(args):
    command = args[0]
    if command == "sign":
        der = KEY.sign(bytes.fromhex(args[1]), ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        print("PUB", point(KEY).hex().upper())
        print("SIG", (r.to_bytes(32, "big") + s.to_bytes(32, "big")).hex().upper())
    elif command == "verify":
        public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), bytes.fromhex(args[1]))
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
        peer = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), bytes.fromhex(args[1]))
        print("PUB", point(KEY).hex().upper())
        print("SHARED", KEY.exchange(ec.ECDH(), peer).hex().upper())
    elif command == "key":
        print(KEY.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()).decode(), end="")
    else:
        raise SystemExit(f"unknown command {command}")


if __name__ == "__main__":
    main(sys.argv[1:])
