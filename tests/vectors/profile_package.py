#!/usr/bin/env python3
"""An independent check of the profile packages the mock generates: the package is decoded with
the TCA "eUICC Profile Package: Interoperable Format" ASN.1 module (tests/checker/
PE_Definitions-3.3.1.asn) compiled by asn1tools, not with the crate's decoder, and its values
are compared with what the documented rule gives, computed here with hashlib and pyca
cryptography (docs/scenarios.md, profileTypes[].subscription):

    IMSI = MCC || MNC || the last 15 - len(MCC || MNC) digits of the ICCID without its check digit
    K    = SHA-256("smdpp-mock K" || key seed || ICCID digits)[:16]
    OPc  = AES-128(K, OP) xor OP                                  (3GPP TS 35.206)

    python3 tests/vectors/profile_package.py PACKAGE_FILE ICCID MCC MNC OP_HEX KEY_SEED

Prints one `ok …` line per check and `IMSI`, `K`, `OPC` lines; exits 1 at the first failure.
"""
import hashlib
import os
import sys

import asn1tools
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

HERE = os.path.dirname(os.path.abspath(__file__))
PE = asn1tools.compile_files(
    os.path.join(HERE, "..", "checker", "PE_Definitions-3.3.1.asn"), "der"
)
MF_TEMPLATE = "2.23.143.1.2.1"
USIM_TEMPLATE = "2.23.143.1.2.4"


def check(condition, what):
    if not condition:
        print(f"FAIL {what}")
        sys.exit(1)
    print(f"ok {what}")


def plain_digits(raw):
    return raw.hex().upper().rstrip("F")


def swapped_digits(raw):
    return "".join(f"{b & 0x0F:X}{b >> 4:X}" for b in raw).rstrip("F")


def imsi_of(ef_imsi):
    # 3GPP TS 31.102 4.2.2: length, then digits low nibble first, the first nibble the parity.
    nibbles = []
    for b in ef_imsi[1 : 1 + ef_imsi[0]]:
        nibbles += [b & 0x0F, b >> 4]
    return "".join(str(n) for n in nibbles[1:] if n != 0xF)


def rule(iccid, mcc, mnc, op, seed):
    account = iccid[:-1]
    prefix = mcc + mnc
    msin_len = 15 - len(prefix)
    imsi = prefix + account[-msin_len:].rjust(msin_len, "0")
    k = hashlib.sha256(b"smdpp-mock K" + seed.encode() + iccid.encode()).digest()[:16]
    encryptor = Cipher(algorithms.AES(k), modes.ECB()).encryptor()
    encrypted = encryptor.update(op) + encryptor.finalize()
    opc = bytes(a ^ b for a, b in zip(encrypted, op))
    return imsi, k, opc


def contents(file):
    return [value for kind, value in file if kind == "fillFileContent"]


def main(path, iccid, mcc, mnc, op_hex, seed):
    upp = open(path, "rb").read()
    elements, at = [], 0
    while at < len(upp):
        element, length = PE.decode_with_length("ProfileElement", upp[at:])
        elements.append(element)
        at += length
    kinds = [kind for kind, _ in elements]
    check(kinds[0] == "header" and kinds[-1] == "end", f"header first, end last: {kinds}")
    pe = {kind: value for kind, value in elements}
    for kind in ("mf", "pukCodes", "pinCodes", "usim", "akaParameter"):
        check(kinds.count(kind) == 1, f"one {kind} element")

    header = pe["header"]
    check(plain_digits(header["iccid"]) == iccid, f"ProfileHeader.iccid (plain BCD) is {iccid}")
    services = header["eUICC-Mandatory-services"]
    check("usim" in services and "milenage" in services, "mandatory services: usim, milenage")
    check(
        set(header["eUICC-Mandatory-GFSTEList"]) == {MF_TEMPLATE, USIM_TEMPLATE},
        "mandatory templates: MF, USIM",
    )

    mf = pe["mf"]
    check(mf["templateID"] == MF_TEMPLATE, "the MF element uses the MF template")
    check(swapped_digits(contents(mf["ef-iccid"])[0]) == iccid, f"EF.ICCID (swapped) is {iccid}")
    usim_aid = bytes.fromhex("A0000000871002FF33FFFF8901010100")
    check(usim_aid in contents(mf["ef-dir"])[0], "EF.DIR names the USIM application")

    usim = pe["usim"]
    check(usim["templateID"] == USIM_TEMPLATE, "the USIM element uses the USIM template")
    fcp = [value for kind, value in usim["adf-usim"] if kind == "fileDescriptor"][0]
    check(fcp["dfName"] == usim_aid, "ADF.USIM has the USIM AID")
    imsi, k, opc = rule(iccid, mcc, mnc, bytes.fromhex(op_hex), seed)
    got_imsi = imsi_of(contents(usim["ef-imsi"])[0])
    check(got_imsi == imsi, f"EF.IMSI is {imsi} (the documented rule)")
    check(contents(usim["ef-ad"])[0][3] == len(mnc), f"EF.AD gives an MNC of {len(mnc)} digits")

    kind, algorithm = pe["akaParameter"]["algoConfiguration"]
    check(kind == "algoParameter" and algorithm["algorithmID"] == 1, "AKA: Milenage")
    check(algorithm["key"] == k, "K is the documented rule's")
    check(algorithm["opc"] == opc, "OPc is AES-128(K, OP) xor OP")

    pins = pe["pinCodes"]["pinCodes"]
    check(pins[0] == "pinconfig" and len(pins[1]) == 2, "PIN1 and ADM1")
    check(len(pe["pukCodes"]["pukCodes"]) == 1, "PUK1")
    ids = [value[next(k for k in value if k.endswith("header") or k.endswith("Header"))]["identification"]
           for kind, value in elements if kind != "header"]
    check(ids == sorted(set(ids)), f"element identifications increase: {ids}")
    print(f"IMSI {got_imsi}")
    print(f"K {algorithm['key'].hex().upper()}")
    print(f"OPC {algorithm['opc'].hex().upper()}")


if __name__ == "__main__":
    main(*sys.argv[1:])
