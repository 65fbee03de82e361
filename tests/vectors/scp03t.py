#!/usr/bin/env python3
"""Independent vectors for the key derivation (SGP.22 Annex G) and SCP03t (SGP.22 §2.5.3-2.5.5,
GlobalPlatform SCP03 as SGP.02 §4.1.3.3 profiles it), computed with pyca/cryptography's X963KDF,
AES and CMAC. `src/rsp/scp03t.rs` pins its output to what this prints.

    python3 -m pip install cryptography && python3 tests/vectors/scp03t.py

tests/external/vectors.rs runs it and compares every line with what the crate computes.
"""
from cryptography.hazmat.primitives import cmac, hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.x963kdf import X963KDF

shs = bytes(range(1, 33))
host_id = bytes.fromhex("0102030405060708")
eid = bytes.fromhex("89049032123451234512345678901235")
# SharedInfo: key type (88, AES), key length (16), LV(hostId), LV(EID).
shared_info = bytes([0x88, 0x10, len(host_id)]) + host_id + bytes([len(eid)]) + eid
key_data = X963KDF(algorithm=hashes.SHA256(), length=48, sharedinfo=shared_info).derive(shs)
mcv, s_enc, s_mac = key_data[:16], key_data[16:32], key_data[32:48]
print("MCV0  ", mcv.hex().upper())
print("S-ENC ", s_enc.hex().upper())
print("S-MAC ", s_mac.hex().upper())


def der_length(n):
    if n < 0x80:
        return bytes([n])
    b = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(b)]) + b


class Session:
    def __init__(self):
        self.counter = 1
        self.mcv = mcv

    def _mac(self, tag, body):
        header = bytes([tag]) + der_length(len(body) + 8)
        c = cmac.CMAC(algorithms.AES(s_mac))
        c.update(self.mcv + header + body)
        full = c.finalize()
        self.mcv = full
        return header + body + full[:8]

    def encrypt(self, tag, plaintext):
        padded = plaintext + b"\x80" + b"\x00" * ((16 - (len(plaintext) + 1) % 16) % 16)
        ecb = Cipher(algorithms.AES(s_enc), modes.ECB()).encryptor()
        icv = ecb.update(self.counter.to_bytes(16, "big")) + ecb.finalize()
        cbc = Cipher(algorithms.AES(s_enc), modes.CBC(icv)).encryptor()
        ciphertext = cbc.update(padded) + cbc.finalize()
        self.counter += 1
        return icv, self._mac(tag, ciphertext)

    def mac_only(self, tag, data):
        self.counter += 1
        return self._mac(tag, data)


s = Session()
icv, tlv87 = s.encrypt(0x87, bytes.fromhex("BF2400"))
print("87 ICV", icv.hex().upper(), "TLV", tlv87.hex().upper())
metadata = bytes.fromhex("BF251B5A0A9800103254769810321491044D6F636B920750726F66696C65")
print("88 TLV", s.mac_only(0x88, metadata).hex().upper())
icv, tlv86 = s.encrypt(0x86, bytes.fromhex("A003810101"))
print("86 ICV", icv.hex().upper(), "TLV", tlv86.hex().upper())
# A full segment: 1007 bytes of plaintext, padded to 1008, plus the MAC: value length 1016,
# so the long length form `86 82 03 F8`.
long_plaintext = bytes(i % 251 for i in range(1007))
icv, tlv86_long = s.encrypt(0x86, long_plaintext)
print("86L ICV", icv.hex().upper(), "TLV", tlv86_long.hex().upper())
