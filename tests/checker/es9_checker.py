#!/usr/bin/env python3
"""An independent eUICC + LPA for SGP.22 v2.2's ES9+ download, written from the specification
and sharing no code with smdpp-mock: it downloads an order from a running SM-DP+ and checks
every step the way a card and an LPA would.

The messages are encoded and decoded by asn1tools from the ASN.1 of the specification itself:
Annex H (RSPDefinitions.asn, extracted from the specification's text by extract_annex_h.py)
and the TCA's profile package module (PE_Definitions-3.3.1.asn). The crypto is pyca's
`cryptography`. Certificates, signatures, the key agreement, SCP03t and the package are all
checked here from what the specification says, not from what the mock does.

    python3 tests/checker/es9_checker.py --gsma-dir CERTS/gsma --eid EID \\
        --activation-code '1$localhost:6444$MATCHINGID' [--confirmation-code CODE] \\
        [--expect-iccid ICCID] [--outcome installed|cancelled:REASON|failed:CMD:REASON] \\
        [--retry lost|interrupted] [--binding json|asn1]

The eUICC's certificate is issued here, for --eid, with the EUM key in --gsma-dir (SGP.26
file names); the CI certificate there is the trust anchor for the SM-DP+'s certificates and
for its TLS certificate (SGP.22 §2.6.6: CERT.DP.TLS chains to a GSMA CI).

Outcomes, after the Bound Profile Package has been received and checked in full:
  installed            HandleNotification with a successful ProfileInstallationResult
  cancelled:REASON     CancelSession (§5.6.5, §3.1.3.1) with CancelSessionReason REASON,
                       e.g. cancelled:5 (loadBppExecutionError) after a simulated load failure
  failed:CMD:REASON    HandleNotification with a ProfileInstallationResult errorResult
                       (BppCommandId CMD, ErrorReason REASON), e.g. failed:5:13

With --retry, a first attempt comes before: its Bound Profile Package is taken as lost (the
one-time key pair stays unused and is kept for the SM-DP+, §5.7.7) or its load as broken off
(the key was used); the retry must name the earlier key as bppEuiccOtpk (§3.1.3 step 5), and
gets the same package back if the eUICC answered with that key, else one bound anew (§5.6.2).

With --binding asn1 every ES9+ call goes over the ASN.1 binding (§6.6): asn1tools encodes the
RemoteProfileProvisioningRequest alternative from RSPDefinitions, POSTed to /gsma/rsp2/asn1 as
application/x-gsma-rsp-asn1, and decodes the response's alternative with its own type.

Prints one line per check and, last, a JSON summary; exits 1 on the first check that fails.
Needs `python3 -m pip install cryptography asn1tools`.
"""
import argparse
import base64
import datetime
import hashlib
import http.client
import json
import os
import ssl
import sys

import asn1tools
from cryptography import x509
from cryptography.hazmat.primitives import cmac, hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.x963kdf import X963KDF
from cryptography.x509.oid import NameOID

HERE = os.path.dirname(os.path.abspath(__file__))
RSP = asn1tools.compile_files(os.path.join(HERE, "RSPDefinitions.asn"), "der")
PE = asn1tools.compile_files(os.path.join(HERE, "PE_Definitions-3.3.1.asn"), "der")

# SGP.22 §4.5.2.1.0.1 (Annex H id-rspRole): certificate policies of each role.
ID_RSP_ROLE = "2.23.146.1.2.1."
ROLE = {"ci": "0", "euicc": "1", "eum": "2", "dp-tls": "3", "dp-auth": "4", "dp-pb": "5"}
ADMIN_PROTOCOL = "gsma/rsp/v2.2.0"
ISD_P_AID = bytes.fromhex("A0000005591010FFFFFFFF8900001100")


class CheckFailed(Exception):
    pass


def check(condition, what, detail=None):
    """Prints `what` when it holds; otherwise stops with it (and `detail`, what was found)."""
    if not condition:
        raise CheckFailed(f"{what}: {detail}" if detail is not None else what)
    print(f"ok   {what}")


# --- BER-TLV, only to find the bytes as received (signatures and MACs cover them) ---------


def tlv_split(data):
    """The TLVs one after the other in `data`: (tag bytes, value, whole TLV)."""
    out, i = [], 0
    while i < len(data):
        start = i
        i += 1
        if data[start] & 0x1F == 0x1F:
            while data[i] & 0x80:
                i += 1
            i += 1
        tag = data[start:i]
        first = data[i]
        i += 1
        if first < 0x80:
            length = first
        else:
            n = first & 0x7F
            length = int.from_bytes(data[i : i + n], "big")
            i += n
        value = data[i : i + length]
        if len(value) != length:
            raise CheckFailed(f"TLV {tag.hex()} is cut short")
        i += length
        out.append((tag, value, data[start:i]))
    return out


def only_tlv(data):
    tlvs = tlv_split(data)
    if len(tlvs) != 1:
        raise CheckFailed(f"expected one TLV, found {len(tlvs)}")
    return tlvs[0]


# --- ECDSA as SGP.22 §2.6.7.2 codes it: r and s, 32 bytes each -----------------------------


def sign(key, data):
    r, s = decode_dss_signature(key.sign(data, ec.ECDSA(hashes.SHA256())))
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def verifies(public_key, signature, data):
    if len(signature) != 64:
        return False
    der = encode_dss_signature(
        int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    )
    try:
        public_key.verify(der, data, ec.ECDSA(hashes.SHA256()))
        return True
    except Exception:
        return False


def signature_value(tlv, what):
    """The value of a `5F37` data object (a whole TLV, as the JSON carries it)."""
    tag, value, _ = only_tlv(tlv)
    check(tag == b"\x5f\x37" and len(value) == 64, f"{what} is a 5F37 data object of 64 bytes")
    return value


def point(public_key):
    return public_key.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )


# --- Certificates (§4.5) -----------------------------------------------------------------


def load_der(path):
    with open(path, "rb") as f:
        return x509.load_der_x509_certificate(f.read())


def policies(cert):
    ext = cert.extensions.get_extension_for_class(x509.CertificatePolicies).value
    return [p.policy_identifier.dotted_string for p in ext]


def ski(cert):
    return cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest


def registered_id(cert):
    """The SM-DP+ OID: the registeredID in subjectAltName (§4.5.2.1.0.3 / .4)."""
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    ids = san.get_values_for_type(x509.RegisteredID)
    return ids[0].dotted_string if ids else None


def check_issued(cert, issuer, role, what):
    try:
        cert.verify_directly_issued_by(issuer)
        signed = True
    except Exception:
        signed = False
    check(signed, f"{what} is signed by {issuer.subject.rfc4514_string()}")
    check(
        policies(cert) == [ID_RSP_ROLE + ROLE[role]],
        f"{what} has the certificate policy of id-rspRole-{role}",
    )
    aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    check(aki.key_identifier == ski(issuer), f"{what}'s authorityKeyIdentifier is its CI's key")
    now = datetime.datetime.now(datetime.timezone.utc)
    check(
        cert.not_valid_before_utc <= now <= cert.not_valid_after_utc,
        f"{what} is valid now",
    )
    check(isinstance(cert.public_key(), ec.EllipticCurvePublicKey)
          and cert.public_key().curve.name == "secp256r1", f"{what} has a NIST P-256 key")


def issue_euicc(eum, eum_key, eid):
    """CERT.EUICC.ECDSA for `eid` (§4.5.2.1.0.2), signed by the EUM."""
    key = ec.generate_private_key(ec.SECP256R1())
    org = eum.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    subject = x509.Name(
        list(org)
        + [
            x509.NameAttribute(NameOID.SERIAL_NUMBER, eid),
            x509.NameAttribute(NameOID.COMMON_NAME, "es9_checker eUICC"),
        ]
    )
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(eum.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=365))
        .add_extension(
            x509.AuthorityKeyIdentifier(ski(eum), None, None), critical=False
        )
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, False, False, False, False),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
        )
        .add_extension(
            x509.CertificatePolicies(
                [x509.PolicyInformation(x509.ObjectIdentifier(ID_RSP_ROLE + ROLE["euicc"]), None)]
            ),
            critical=True,
        )
        .sign(eum_key, hashes.SHA256())
    )
    return cert, key


# --- ICCIDs: EF.ICCID / SGP.22 Iccid (digits swapped in each byte) and the header's plain BCD


def swapped_digits(raw):
    digits = "".join(f"{b & 0xF:X}{b >> 4:X}" for b in raw)
    return digits.rstrip("F")


def plain_digits(raw):
    return raw.hex().upper().rstrip("F")


def swapped_bytes(iccid):
    digits = iccid + "F" * (20 - len(iccid))
    return bytes(int(digits[i + 1] + digits[i], 16) for i in range(0, 20, 2))


# --- SCP03t (§2.5.3-2.5.5, SGP.02 §4.1.3.3) and the key derivation (Annex G) -----------------


def derive(shs, key_type, key_len, host_id, eid):
    shared_info = bytes([key_type[0], key_len[0], len(host_id)]) + host_id
    shared_info += bytes([len(eid)]) + eid
    data = X963KDF(algorithm=hashes.SHA256(), length=48, sharedinfo=shared_info).derive(shs)
    return data[:16], data[16:32], data[32:48]


class Scp03t:
    def __init__(self, mcv, s_enc, s_mac):
        self.mcv, self.s_enc, self.s_mac = mcv, s_enc, s_mac
        self.counter = 1

    def receive(self, raw, encrypted):
        """One `86`/`87`/`88` TLV as received: its MAC checked (over the MAC chaining value, the
        tag, the length as sent and the data), then decrypted if it is `86`/`87`."""
        tag, value, _ = only_tlv(raw)
        if len(value) < 8:
            raise CheckFailed(f"segment {tag.hex()} is shorter than its MAC")
        body, mac = value[:-8], value[-8:]
        c = cmac.CMAC(algorithms.AES(self.s_mac))
        c.update(self.mcv + raw[: len(raw) - len(value)] + body)
        full = c.finalize()
        if full[:8] != mac:
            raise CheckFailed(f"segment {tag.hex()}: C-MAC does not verify")
        self.mcv = full
        counter = self.counter
        self.counter += 1  # §2.5.4: for every '86', '87' and '88' received
        if not encrypted:
            return body
        if len(body) % 16:
            raise CheckFailed(f"segment {tag.hex()}: ciphertext not a whole number of blocks")
        ecb = Cipher(algorithms.AES(self.s_enc), modes.ECB()).encryptor()
        icv = ecb.update(counter.to_bytes(16, "big")) + ecb.finalize()
        dec = Cipher(algorithms.AES(self.s_enc), modes.CBC(icv)).decryptor()
        plain = dec.update(body) + dec.finalize()
        end = plain.rstrip(b"\x00")
        if not end.endswith(b"\x80") or len(plain) - len(end) >= 16:
            raise CheckFailed(f"segment {tag.hex()}: padding is not '80 00 ..'")
        return end[:-1]


# --- ES9+ over HTTPS (§6.1-6.5) ----------------------------------------------------------


class Es9:
    def __init__(self, address, ci):
        host, _, port = address.rpartition(":")
        self.host, self.port = (host, int(port)) if port.isdigit() else (address, 443)
        self.ctx = ssl.create_default_context(
            cadata=ci.public_bytes(serialization.Encoding.PEM).decode()
        )
        self.ctx.check_hostname = True

    def call(self, function, body, expect_body=True):
        conn = http.client.HTTPSConnection(self.host, self.port, context=self.ctx, timeout=60)
        conn.request(
            "POST",
            f"/gsma/rsp2/es9plus/{function}",
            body=json.dumps(body).encode(),
            headers={
                "User-Agent": "gsma-rsp-lpad",
                "X-Admin-Protocol": ADMIN_PROTOCOL,
                "Content-Type": "application/json;charset=UTF-8",
            },
        )
        resp = conn.getresponse()
        raw = resp.read()
        conn.close()
        check(
            resp.getheader("X-Admin-Protocol") == ADMIN_PROTOCOL,
            f"{function}: answer carries X-Admin-Protocol {ADMIN_PROTOCOL}",
        )
        if not expect_body:
            check(resp.status == 204 and raw == b"", f"{function}: 204 No Content",
                  f"{resp.status} {raw[:300]!r}")
            check(resp.getheader("Content-Type") is None, f"{function}: 204 has no Content-Type")
            return None
        check(resp.status == 200, f"{function}: HTTP 200", f"{resp.status} {raw[:300]!r}")
        check(
            (resp.getheader("Content-Type") or "").startswith("application/json"),
            f"{function}: JSON answer",
        )
        answer = json.loads(raw)
        status = answer.get("header", {}).get("functionExecutionStatus", {})
        check(status.get("status") == "Executed-Success", f"{function}: Executed-Success",
              json.dumps(status))
        return answer


class Es9Asn1:
    """ES9+ over the ASN.1 binding (§6.6), with the JSON binding's fields in and out (so the
    rest of the checker is the same): each request is decoded into asn1tools values and encoded
    as the alternative of RemoteProfileProvisioningRequest; each answer must be the
    RemoteProfileProvisioningResponse alternative of the function, and decode as its type.

    asn1tools tags a component whose type is a *tagged* CHOICE (authenticateServerResponse
    [56] AuthenticateServerResponse, …) explicitly, doubling the tag, where X.680 §31.2.7 makes
    it implicit; so the envelope A2 of the response is taken apart here and the alternative
    decoded as its own type (InitiateAuthenticationResponse, …), which asn1tools codes as the
    specification's comments say (tag BF39, …)."""

    CONTENT_TYPE = "application/x-gsma-rsp-asn1"
    # function: (request alternative, request type, response type, the Ok SEQUENCE's fields)
    FUNCTIONS = {
        "initiateAuthentication": (
            "initiateAuthenticationRequest", "InitiateAuthenticationRequest",
            "InitiateAuthenticationResponse",
            ["transactionId", "serverSigned1", "serverSignature1", "euiccCiPKIdToBeUsed",
             "serverCertificate"]),
        "authenticateClient": (
            "authenticateClientRequest", "AuthenticateClientRequest",
            "AuthenticateClientResponseEs9",
            ["transactionId", "profileMetadata", "smdpSigned2", "smdpSignature2",
             "smdpCertificate"]),
        "getBoundProfilePackage": (
            "getBoundProfilePackageRequest", "GetBoundProfilePackageRequest",
            "GetBoundProfilePackageResponse", ["transactionId", "boundProfilePackage"]),
        "cancelSession": (
            "cancelSessionRequestEs9", "CancelSessionRequestEs9", "CancelSessionResponseEs9", []),
        "handleNotification": ("handleNotification", "HandleNotification", None, []),
    }
    # The JSON fields that carry a whole data object, and its ASN.1 type.
    OBJECTS = {
        "euiccInfo1": "EUICCInfo1",
        "authenticateServerResponse": "AuthenticateServerResponse",
        "prepareDownloadResponse": "PrepareDownloadResponse",
        "cancelSessionResponse": "CancelSessionResponse",
        "pendingNotification": "PendingNotification",
    }

    def __init__(self, address, ci):
        self.json = Es9(address, ci)

    def request(self, function, body):
        alternative, _, _, _ = self.FUNCTIONS[function]
        value = {}
        for name, field in body.items():
            if name == "transactionId":
                value[name] = bytes.fromhex(field)
            elif name == "euiccChallenge":
                value[name] = unb64(field)
            elif name == "smdpAddress":
                value[name] = field
            else:
                value[name] = RSP.decode(self.OBJECTS[name], unb64(field))
        return RSP.encode("RemoteProfileProvisioningRequest", (alternative, value))

    def call(self, function, body, expect_body=True):
        alternative, request_type, response_type, fields = self.FUNCTIONS[function]
        der = self.request(function, body)
        chosen = RSP.decode("RemoteProfileProvisioningRequest", der)
        check(chosen[0] == alternative, f"{function}: asn1tools encodes {alternative}")
        conn = http.client.HTTPSConnection(
            self.json.host, self.json.port, context=self.json.ctx, timeout=60)
        conn.request("POST", "/gsma/rsp2/asn1", body=der, headers={
            "User-Agent": "gsma-rsp-lpae",
            "X-Admin-Protocol": ADMIN_PROTOCOL,
            "Content-Type": self.CONTENT_TYPE,
        })
        resp = conn.getresponse()
        raw = resp.read()
        conn.close()
        check(resp.getheader("X-Admin-Protocol") == ADMIN_PROTOCOL,
              f"{function} (ASN.1): answer carries X-Admin-Protocol {ADMIN_PROTOCOL}")
        if not expect_body:
            check(resp.status == 204 and raw == b"", f"{function} (ASN.1): 204 No Content",
                  f"{resp.status} {raw[:300]!r}")
            return None
        check(resp.status == 200, f"{function} (ASN.1): HTTP 200", f"{resp.status} {raw[:300]!r}")
        check(resp.getheader("Content-Type") == self.CONTENT_TYPE,
              f"{function} (ASN.1): answer is {self.CONTENT_TYPE}", resp.getheader("Content-Type"))
        tag, envelope, _ = only_tlv(raw)
        check(tag == b"\xa2", f"{function} (ASN.1): RemoteProfileProvisioningResponse (A2)",
              tag.hex())
        _, inner, whole = only_tlv(envelope)
        decoded = RSP.decode(response_type, whole)
        check(decoded[0].endswith("Ok"), f"{function} (ASN.1): {response_type} is the Ok",
              repr(decoded)[:300])
        check(RSP.encode(response_type, decoded) == whole,
              f"{function} (ASN.1): the answer is DER as asn1tools codes {response_type}")
        _, ok, _ = only_tlv(inner)
        components = tlv_split(ok)
        answer = {}
        for name, (_, value, tlv) in zip(fields, components):
            answer[name] = value.hex().upper() if name == "transactionId" else b64(tlv)
        check(len(components) == len(fields),
              f"{function} (ASN.1): the Ok has its {len(fields)} components")
        return answer


def b64(data):
    return base64.b64encode(data).decode()


def unb64(text):
    return base64.b64decode(text, validate=True)


def bits(*set_bits, length):
    """A BIT STRING for asn1tools: bit 0 is the first byte's most significant bit."""
    size = (length + 7) // 8
    value = 0
    for b in set_bits:
        value |= 1 << (size * 8 - 1 - b)
    return (value.to_bytes(size, "big"), length)


# --- The download (§3.1.3) ---------------------------------------------------------------


class Card:
    """The eUICC: its certificate (issued here by the EUM), the CI it trusts, and a one-time key
    pair of an unfinished session kept for a retry (§5.7.7: "MAY store the unused
    otPK.eUICC.ECKA and otSK.eUICC.ECKA, together with the SM-DP+ OID, for future retry")."""

    def __init__(self, args):
        gsma = args.gsma_dir
        self.ci = load_der(os.path.join(gsma, "CERT_CI_ECDSA_NIST.der"))
        self.eum = load_der(os.path.join(gsma, "CERT_EUM_ECDSA_NIST.der"))
        with open(os.path.join(gsma, "SK_EUM_ECDSA_NIST.pem"), "rb") as f:
            eum_key = serialization.load_pem_private_key(f.read(), None)
        self.cert, self.key = issue_euicc(self.eum, eum_key, args.eid)
        self.eid = bytes.fromhex(args.eid)
        self.kept = None  # (SM-DP+ OID, one-time private key)


def attempt(card, args, stage, earlier=None):
    """One download session (§3.1.3). `stage`: "lost" stops when the Bound Profile Package has
    arrived, as if the answer never reached the LPA (the one-time key stays unused, and kept);
    "interrupted" checks the whole package, as a load that broke off before its end; "final"
    checks it and ends as --outcome says. `earlier`: what the attempt before this one saw."""
    ci, eum, euicc_cert, euicc_key, eid = card.ci, card.eum, card.cert, card.key, card.eid
    fields = args.activation_code.split("$")
    check(fields[0] == "1" and len(fields) >= 3, "Activation Code has format 1 (SGP.22 §4.1)")
    smdp_address, matching_id = fields[1], fields[2]
    es9 = (Es9Asn1 if args.binding == "asn1" else Es9)(smdp_address, ci)
    ci_pkid = ski(ci)

    # ES10b.GetEUICCChallenge, ES10b.GetEUICCInfo (§5.7.7, §5.7.8)
    euicc_challenge = os.urandom(16)
    info1 = RSP.encode(
        "EUICCInfo1",
        {
            "svn": bytes([2, 2, 0]),
            "euiccCiPKIdListForVerification": [ci_pkid],
            "euiccCiPKIdListForSigning": [ci_pkid],
        },
    )
    # ES9+.InitiateAuthentication (§5.6.1)
    ia = es9.call(
        "initiateAuthentication",
        {"euiccChallenge": b64(euicc_challenge), "euiccInfo1": b64(info1), "smdpAddress": smdp_address},
    )
    transaction_id = bytes.fromhex(ia["transactionId"])
    server_signed1 = unb64(ia["serverSigned1"])
    # Each base64 value is a whole data object, tag included: the LPA puts them side by side
    # into ES10b.AuthenticateServer (§5.6.1, §5.7.13).
    server_signature1 = signature_value(unb64(ia["serverSignature1"]), "serverSignature1")
    dp_auth = x509.load_der_x509_certificate(unb64(ia["serverCertificate"]))
    check(unb64(ia["euiccCiPKIdToBeUsed"]) == RSP.encode("SubjectKeyIdentifier", ci_pkid),
          "euiccCiPKIdToBeUsed names the CI the eUICC offered")
    # ES10b.AuthenticateServer, the eUICC's checks (§5.7.13)
    check_issued(dp_auth, ci, "dp-auth", "CERT.DPauth.ECDSA")
    smdp_oid = registered_id(dp_auth)
    check(smdp_oid is not None, f"CERT.DPauth.ECDSA names the SM-DP+ OID ({smdp_oid})")
    check(verifies(dp_auth.public_key(), server_signature1, server_signed1),
          "serverSignature1 verifies over serverSigned1 as received")
    signed1 = RSP.decode("ServerSigned1", server_signed1)
    check(signed1["transactionId"] == transaction_id, "serverSigned1 carries the transactionId")
    check(signed1["euiccChallenge"] == euicc_challenge, "serverSigned1 carries the eUICC's challenge")
    check(signed1["serverAddress"] == smdp_address, "serverSigned1 carries the SM-DP+ address")

    info2 = {
        "profileVersion": bytes([2, 3, 1]),
        "svn": bytes([2, 2, 0]),
        "euiccFirmwareVer": bytes([1, 0, 0]),
        # ETSI TS 102 226: installed applications, free non-volatile and volatile memory.
        "extCardResource": bytes.fromhex("810100820400100000830200F0"),
        "uiccCapability": bits(1, 2, 4, 14, length=19),
        "rspCapability": bits(0, 3, length=4),  # additionalProfile, testProfileSupport
        "euiccCiPKIdListForVerification": [ci_pkid],
        "euiccCiPKIdListForSigning": [ci_pkid],
        "ppVersion": bytes([0, 1, 0]),
        "sasAcreditationNumber": "ES9-CHECKER-0001",
    }
    ctx = {
        "matchingId": matching_id,
        "deviceInfo": {"tac": bytes.fromhex("35290611"), "deviceCapabilities": {}},
    }
    euicc_signed1 = RSP.encode(
        "EuiccSigned1",
        {
            "transactionId": transaction_id,
            "serverAddress": smdp_address,
            "serverChallenge": signed1["serverChallenge"],
            "euiccInfo2": info2,
            "ctxParams1": ("ctxParamsForCommonAuthentication", ctx),
        },
    )
    euicc_signature1 = sign(euicc_key, euicc_signed1)
    auth_response = RSP.encode(
        "AuthenticateServerResponse",
        (
            "authenticateResponseOk",
            {
                "euiccSigned1": RSP.decode("EuiccSigned1", euicc_signed1),
                "euiccSignature1": euicc_signature1,
                "euiccCertificate": euicc_cert.public_bytes(serialization.Encoding.DER),
                "eumCertificate": eum.public_bytes(serialization.Encoding.DER),
            },
        ),
    )
    check(euicc_signed1 in auth_response, "AuthenticateServerResponse carries euiccSigned1 as signed")

    # ES9+.AuthenticateClient (§5.6.3)
    ac = es9.call(
        "authenticateClient",
        {"transactionId": ia["transactionId"], "authenticateServerResponse": b64(auth_response)},
    )
    check(bytes.fromhex(ac["transactionId"]) == transaction_id, "AuthenticateClient: same transactionId")
    metadata = unb64(ac["profileMetadata"])
    smdp_signed2 = unb64(ac["smdpSigned2"])
    smdp_signature2 = signature_value(unb64(ac["smdpSignature2"]), "smdpSignature2")
    dp_pb = x509.load_der_x509_certificate(unb64(ac["smdpCertificate"]))
    # ES10b.PrepareDownload, the eUICC's checks (§5.7.5)
    check_issued(dp_pb, ci, "dp-pb", "CERT.DPpb.ECDSA")
    check(registered_id(dp_pb) == smdp_oid, "CERT.DPpb.ECDSA names the SM-DP+ OID of CERT.DPauth")
    euicc_signature1_tlv = b"\x5f\x37\x40" + euicc_signature1
    check(verifies(dp_pb.public_key(), smdp_signature2, smdp_signed2 + euicc_signature1_tlv),
          "smdpSignature2 verifies over smdpSigned2 and euiccSignature1 (§5.7.5)")
    signed2 = RSP.decode("SmdpSigned2", smdp_signed2)
    check(signed2["transactionId"] == transaction_id, "smdpSigned2 carries the transactionId")
    check(signed2["ccRequiredFlag"] == (args.confirmation_code is not None),
          f"ccRequiredFlag is {signed2['ccRequiredFlag']} as the order says")
    named = signed2.get("bppEuiccOtpk")
    if earlier is not None:
        # A retry of an order bound to this eUICC (§3.1.3 step 5: the SM-DP+ MAY name the key).
        check(named == earlier["euiccOtpk"],
              "the retry's smdpSigned2 names the earlier otPK.EUICC.ECKA as bppEuiccOtpk")
    else:
        check(named is None, "no bppEuiccOtpk on a first download")
    meta = RSP.decode("StoreMetadataRequest", metadata)
    meta_iccid = swapped_digits(meta["iccid"])
    print(f"info metadata ICCID {meta_iccid}, profileName {meta['profileName']!r}")

    # §5.7.5: the stored pair if bppEuiccOtpk names it and it is for this SM-DP+, else new.
    kept, card.kept = card.kept, None
    if kept and kept[0] == smdp_oid and named == point(kept[1].public_key()):
        one_time = kept[1]
        print("info this eUICC uses the one-time key pair it kept (bppEuiccOtpk)")
    else:
        one_time = ec.generate_private_key(ec.SECP256R1())
    euicc_otpk = point(one_time.public_key())
    signed2_out = {"transactionId": transaction_id, "euiccOtpk": euicc_otpk}
    if args.confirmation_code is not None:
        signed2_out["hashCc"] = hashlib.sha256(
            hashlib.sha256(args.confirmation_code.encode()).digest() + transaction_id
        ).digest()
    euicc_signed2 = RSP.encode("EUICCSigned2", signed2_out)
    smdp_signature2_tlv = b"\x5f\x37\x40" + smdp_signature2
    euicc_signature2 = sign(euicc_key, euicc_signed2 + smdp_signature2_tlv)
    prepare = RSP.encode(
        "PrepareDownloadResponse",
        ("downloadResponseOk", {"euiccSigned2": signed2_out, "euiccSignature2": euicc_signature2}),
    )
    check(euicc_signed2 in prepare, "PrepareDownloadResponse carries euiccSigned2 as signed")

    # ES9+.GetBoundProfilePackage (§5.6.2)
    gb = es9.call(
        "getBoundProfilePackage",
        {"transactionId": ia["transactionId"], "prepareDownloadResponse": b64(prepare)},
    )
    check(bytes.fromhex(gb["transactionId"]) == transaction_id, "GetBoundProfilePackage: same transactionId")
    bpp = unb64(gb["boundProfilePackage"])
    tag, bpp_value, _ = only_tlv(bpp)
    check(tag == b"\xbf\x36", "the Bound Profile Package is BF36 (§2.5.4)")
    decoded = RSP.decode("BoundProfilePackage", bpp)  # the whole structure, as Annex H has it
    parts = tlv_split(bpp_value)
    tags = [t.hex().upper() for t, _, _ in parts]
    seen = {
        "euiccOtpk": euicc_otpk,
        "smdpOtpk": decoded["initialiseSecureChannelRequest"]["smdpOtpk"],
        "protected": [raw for _, _, raw in parts[1:]],  # A0 .. A3 as received
        "package": parts[-1][2],
    }
    if stage == "lost":
        card.kept = (smdp_oid, one_time)
        print("info the answer is taken as lost: the one-time key stays unused, and kept")
        return seen
    if earlier is not None and euicc_otpk == earlier["euiccOtpk"]:
        # §5.6.2: the same otPK.EUICC.ECKA back: "the BPP can be re-used: only the signature
        # for InitialiseSecureChannel needs to be recalculated".
        check(seen["smdpOtpk"] == earlier["smdpOtpk"] and seen["protected"] == earlier["protected"],
              "the SM-DP+ reused the earlier package: same otPK.DP.ECKA, A0 to A3 unchanged")
    elif earlier is not None:
        check(seen["smdpOtpk"] != earlier["smdpOtpk"],
              "a new otPK.EUICC.ECKA: the SM-DP+ bound the package anew (new otPK.DP.ECKA)")
    check(tags[:3] == ["BF23", "A0", "A1"] and tags[-1] == "A3" and tags[3:-1] in ([], ["A2"]),
          f"BPP parts in the order of §2.5.4 ({' '.join(tags)})")

    # ES8+.InitialiseSecureChannel (§5.5.1)
    isc = tlv_split(parts[0][1])
    isc_tags = [t.hex().upper() for t, _, _ in isc]
    check(isc_tags == ["82", "80", "A6", "5F49", "5F37"], f"InitialiseSecureChannel fields ({' '.join(isc_tags)})")
    isc_d = decoded["initialiseSecureChannelRequest"]
    check(isc_d["remoteOpId"] == 1, "remoteOpId is installBoundProfilePackage(1)")
    check(isc_d["transactionId"] == transaction_id, "InitialiseSecureChannel carries the transactionId")
    crt = isc_d["controlRefTemplate"]
    check(crt["keyType"] == b"\x88" and crt["keyLen"] == b"\x10", "CRT: AES-128 (key type 88, length 16)")
    euicc_otpk_tlv = b"\x5f\x49\x41" + euicc_otpk
    signed_part = b"".join(raw for _, _, raw in isc[:4]) + euicc_otpk_tlv
    check(verifies(dp_pb.public_key(), isc_d["smdpSign"], signed_part),
          "smdpSign verifies over remoteOpId..smdpOtpk and euiccOtpk (§5.5.1)")
    smdp_otpk = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), isc_d["smdpOtpk"])
    shs = one_time.exchange(ec.ECDH(), smdp_otpk)
    mcv, s_enc, s_mac = derive(shs, crt["keyType"], crt["keyLen"], crt["hostId"], eid)
    channel = Scp03t(mcv, s_enc, s_mac)

    # ES8+.ConfigureISDP, StoreMetadata, ReplaceSessionKeys, the profile elements (§5.5.2-5.5.4)
    configure = b"".join(channel.receive(raw, True) for _, _, raw in tlv_split(parts[1][1]))
    check(only_tlv(configure)[0] == b"\xbf\x24", "the '87' segments of A0 hold ConfigureISDPRequest (BF24)")
    RSP.decode("ConfigureISDPRequest", configure)
    stored = b"".join(channel.receive(raw, False) for _, _, raw in tlv_split(parts[2][1]))
    check(RSP.decode("StoreMetadataRequest", stored) == meta,
          "StoreMetadata in the BPP is the profileMetadata AuthenticateClient gave")
    if tags[3:-1] == ["A2"]:
        replace = b"".join(channel.receive(raw, True) for _, _, raw in tlv_split(parts[3][1]))
        keys = RSP.decode("ReplaceSessionKeysRequest", replace)
        for name in ("initialMacChainingValue", "ppkEnc", "ppkCmac"):
            check(len(keys[name]) == 16, f"ReplaceSessionKeys {name} is 16 bytes (§5.5.4)")
        channel = Scp03t(keys["initialMacChainingValue"], keys["ppkEnc"], keys["ppkCmac"])
        print("info the package is protected with Profile Protection Keys (ReplaceSessionKeys)")
    upp = b"".join(channel.receive(raw, True) for _, _, raw in tlv_split(parts[-1][1]))
    print(f"info profile package: {len(upp)} bytes")

    # The profile package (TCA Interoperable Format): ProfileElement after ProfileElement.
    elements, at = [], 0
    while at < len(upp):
        element, length = PE.decode_with_length("ProfileElement", upp[at:])
        elements.append(element)
        at += length
    kinds = [k for k, _ in elements]
    check(kinds[0] == "header" and kinds[-1] == "end", f"the package runs from header to end ({len(kinds)} elements)")
    header_iccid = plain_digits(elements[0][1]["iccid"])
    ef_iccid = None
    for kind, value in elements:
        if kind == "mf" and "ef-iccid" in value:
            contents = [v for k, v in value["ef-iccid"] if k == "fillFileContent"]
            if contents:
                ef_iccid = swapped_digits(contents[0])
    check(header_iccid == meta_iccid,
          f"ProfileHeader.iccid (plain BCD) {header_iccid} is the metadata's ICCID {meta_iccid}")
    if "mf" in kinds:
        check(ef_iccid == meta_iccid,
              f"EF.ICCID (digits swapped) {ef_iccid} is the metadata's ICCID {meta_iccid}")
    else:
        print("info the package has no MF element: no EF.ICCID to compare")
    if args.expect_iccid:
        check(meta_iccid == args.expect_iccid, f"the ICCID is the ordered one ({args.expect_iccid})")

    if stage == "interrupted":
        print("info the load is taken as broken off: no result is sent")
        return seen
    outcome = args.outcome
    summary = {"transactionId": ia["transactionId"], "iccid": meta_iccid, "outcome": outcome,
               "profileElements": len(elements), "packageBytes": len(upp),
               "withProfileProtectionKeys": tags[3:-1] == ["A2"]}
    if earlier is not None:
        summary["keptKeyUsed"] = euicc_otpk == earlier["euiccOtpk"]
        summary["protectedPackageUnchanged"] = seen["package"] == earlier["package"]
    if outcome.startswith("cancelled:"):
        # ES10b.CancelSession (§5.7.14), then ES9+.CancelSession (§5.6.5)
        reason = int(outcome.split(":")[1])
        signed = {"transactionId": transaction_id, "smdpOid": smdp_oid, "reason": reason}
        signed_der = RSP.encode("EuiccCancelSessionSigned", signed)
        response = RSP.encode(
            "CancelSessionResponse",
            ("cancelSessionResponseOk", {"euiccCancelSessionSigned": signed,
                                         "euiccCancelSessionSignature": sign(euicc_key, signed_der)}),
        )
        check(signed_der in response, "CancelSessionResponse carries euiccCancelSessionSigned as signed")
        es9.call("cancelSession", {"transactionId": ia["transactionId"], "cancelSessionResponse": b64(response)})
    else:
        if outcome == "installed":
            pe_status = [{"status": 0, "identification": i + 1} for i in range(len(elements))]
            sima = PE.encode("EUICCResponse", {"peStatus": pe_status})
            final = ("successResult", {"aid": ISD_P_AID, "simaResponse": sima})
        elif outcome.startswith("failed:"):
            _, command, reason = outcome.split(":")
            final = ("errorResult", {"bppCommandId": int(command), "errorReason": int(reason)})
        else:
            raise SystemExit(f"unknown outcome {outcome}")
        data = {
            "transactionId": transaction_id,
            "notificationMetadata": {
                "seqNumber": 1,
                "profileManagementOperation": bits(0, length=4),  # notificationInstall
                "notificationAddress": smdp_address,
                "iccid": meta["iccid"],
            },
            "smdpOid": smdp_oid,
            "finalResult": final,
        }
        data_der = RSP.encode("ProfileInstallationResultData", data)
        pir = RSP.encode(
            "PendingNotification",
            ("profileInstallationResult",
             {"profileInstallationResultData": data, "euiccSignPIR": sign(euicc_key, data_der)}),
        )
        check(data_der in pir, "ProfileInstallationResult carries its data as signed")
        # ES9+.HandleNotification (§5.6.4): 204, no body
        es9.call("handleNotification", {"pendingNotification": b64(pir)}, expect_body=False)
    return summary


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gsma-dir", required=True)
    parser.add_argument("--eid", required=True)
    parser.add_argument("--activation-code", required=True)
    parser.add_argument("--confirmation-code")
    parser.add_argument("--expect-iccid")
    parser.add_argument("--outcome", default="installed")
    parser.add_argument("--retry", choices=["lost", "interrupted"],
                        help="a first attempt whose package is lost or whose load breaks off, "
                             "then a retry that ends as --outcome says")
    parser.add_argument("--binding", choices=["json", "asn1"], default="json",
                        help="the ES9+ binding: JSON (§6.5) or ASN.1 (§6.6)")
    args = parser.parse_args()
    try:
        card = Card(args)
        earlier = attempt(card, args, args.retry) if args.retry else None
        if earlier is not None:
            print("info --- the retry: a new session for the same Activation Code ---")
        print(json.dumps(attempt(card, args, "final", earlier)))
    except CheckFailed as e:
        print(f"FAIL {e}")
        sys.exit(1)


if __name__ == "__main__":
    main()
