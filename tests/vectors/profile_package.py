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
    # 3GPP TS 31.102 4.2.2: the number of bytes that follow, then the digits low nibble first;
    # the first nibble is the parity: 9 (odd number of digits, type IMSI), 1 (even).
    check(len(ef_imsi) == 9 and ef_imsi[0] == 8, "EF.IMSI is 9 bytes, its length byte 08")
    nibbles = []
    for b in ef_imsi[1 : 1 + ef_imsi[0]]:
        nibbles += [b & 0x0F, b >> 4]
    digits = [n for n in nibbles[1:] if n != 0xF]
    check(nibbles[0] == (9 if len(digits) % 2 else 1), "EF.IMSI's parity nibble")
    return "".join(str(n) for n in digits)


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

    last = int(got_imsi[-1])
    check(contents(usim["ef-acc"])[0] == (1 << last).to_bytes(2, "big"),
          f"EF.ACC sets access class {last}, the IMSI's last digit (TS 31.102 4.2.15)")
    # pinStatusTemplateDO: the key references protecting the DF (profile format 8.3.2):
    # PIN1 (01) and ADM1 (0A), not TS 102 221's PS_DO.
    mf_fcp = [value for kind, value in mf["mf"] if kind == "fileDescriptor"][0]
    check(mf_fcp["pinStatusTemplateDO"] == bytes([0x01, 0x0A]), "the MF names PIN1 and ADM1")
    check(fcp["pinStatusTemplateDO"] == bytes([0x01, 0x0A]), "ADF.USIM names PIN1 and ADM1")
    check(header["major-version"] == 2 and header["minor-version"] == 3, "ProfileHeader version 2.3")

    kind, algorithm = pe["akaParameter"]["algoConfiguration"]
    check(kind == "algoParameter" and algorithm["algorithmID"] == 1, "AKA: Milenage")
    check(algorithm["key"] == k, "K is the documented rule's")
    check(algorithm["opc"] == opc, "OPc is AES-128(K, OP) xor OP")

    pins = pe["pinCodes"]["pinCodes"]
    check(pins[0] == "pinconfig", "PIN codes as a pinconfig list")
    # asn1tools gives an INTEGER with named numbers as its number: pinAppl1(1), adm1(10).
    by_reference = {p["keyReference"]: p for p in pins[1]}
    # PINs are ASCII digits padded with FF to 8 bytes (TS 102 221 9.5.1).
    check(by_reference.get(1, {}).get("pinValue") == b"0000" + b"\xff" * 4,
          "PIN1 is 0000")
    check(by_reference.get(1, {}).get("unblockingPINReference") == 1,
          "PIN1 is unblocked by PUK1")
    check(by_reference.get(10, {}).get("pinValue") == b"12345678", "ADM1 is 12345678")
    puks = pe["pukCodes"]["pukCodes"]
    check([(p["keyReference"], p["pukValue"]) for p in puks] == [(1, b"12345678")],
          "PUK1 is 12345678")
    for kind, value in elements:
        if kind == "nonStandard":
            check("mandated" not in value["nonStandard-header"],
                  "the filler is not mandated (a card that does not know it skips it)")
        elif kind not in ("header",):
            head = value[next(k for k in value if k.lower().endswith("header"))]
            check("mandated" in head, f"the {kind} element is mandated")
    ids = [value[next(k for k in value if k.endswith("header") or k.endswith("Header"))]["identification"]
           for kind, value in elements if kind != "header"]
    check(ids == sorted(set(ids)), f"element identifications increase: {ids}")
    print(f"IMSI {got_imsi}")
    print(f"K {algorithm['key'].hex().upper()}")
    print(f"OPC {algorithm['opc'].hex().upper()}")


if __name__ == "__main__":
    main(*sys.argv[1:])
