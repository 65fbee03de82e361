#!/usr/bin/env python3
"""An independent SM-DP+ (ES12 client) and eUICC + LPA (ES11 client) for SGP.22 v2.2's SM-DS,
written from the specification and sharing no code with smdpp-mock: it registers and deletes
an event of its own over ES12 (§5.9, §6.5.2.13-14), retrieves the eUICC's events over ES11
(§5.8, §3.6.2, §6.5.2.11-12) checking CERT.DSauth and serverSignature1 as a card would, then
downloads the event an operator's order registered (with es9_checker's eUICC, §3.1.3 option
b: the EventID is the MatchingID) and checks that the SM-DP+ deleted it afterwards.

    python3 tests/checker/smds_checker.py --gsma-dir CERTS/gsma --eid EID \\
        --smds localhost:6445 --event-id MATCHINGID --smdp localhost:6444 \\
        --caller-cert CALLER.pem --caller-key CALLER.key

--caller-cert/--caller-key: the TLS client certificate (with its chain) of this ES12 caller,
whose subjectAltName registeredID is its identity at the SM-DS (§5.9.1). The CI certificate of
--gsma-dir is the TLS anchor of both the SM-DS and the SM-DP+ (SGP.22 §2.6.6).

Prints one line per check and, last, a JSON summary; exits 1 on the first check that fails.
Needs `python3 -m pip install cryptography asn1tools`.
"""
import argparse
import http.client
import json
import os
import ssl
import sys
from types import SimpleNamespace

from cryptography import x509
from cryptography.hazmat.primitives import serialization

import es9_checker as card_side
from es9_checker import RSP, CheckFailed, b64, check, unb64

# Annex H: id-rspRole-ds-auth (§4.5.2.1.0.6).
ID_RSP_ROLE_DS_AUTH = "2.23.146.1.2.1.7"
ADMIN_PROTOCOL = "gsma/rsp/v2.2.0"


class Server:
    """JSON over HTTPS to one server, the CI as the TLS anchor; a client certificate when given
    (ES12 is mutual TLS, §5.9; ES11 is server authentication only, §5.8)."""

    def __init__(self, address, ci, client=None):
        host, _, port = address.rpartition(":")
        self.host, self.port = (host, int(port)) if port.isdigit() else (address, 443)
        self.ctx = ssl.create_default_context(
            cadata=ci.public_bytes(serialization.Encoding.PEM).decode()
        )
        self.ctx.check_hostname = True
        if client:
            self.ctx.load_cert_chain(*client)

    def post(self, path, body):
        """POSTs `body`; the answer's JSON after the transport's checks (§6.2, §6.3)."""
        conn = http.client.HTTPSConnection(self.host, self.port, context=self.ctx, timeout=60)
        conn.request("POST", path, body=json.dumps(body).encode(), headers={
            "User-Agent": "gsma-rsp-lpad",
            "X-Admin-Protocol": ADMIN_PROTOCOL,
            "Content-Type": "application/json",
        })
        resp = conn.getresponse()
        raw = resp.read()
        conn.close()
        check(resp.status == 200, f"{path}: HTTP 200 whatever the outcome (§6.3)",
              f"{resp.status} {raw[:300]!r}")
        check((resp.getheader("X-Admin-Protocol") or "").startswith("gsma/rsp/v"),
              f"{path}: the answer carries X-Admin-Protocol")
        check((resp.getheader("Content-Type") or "").startswith("application/json"),
              f"{path}: a JSON answer")
        return json.loads(raw)


def status_of(answer):
    """`Executed-Success`, or the subject / reason code of a `Failed` (§6.5.1.4)."""
    status = answer.get("header", {}).get("functionExecutionStatus", {})
    if status.get("status") == "Executed-Success":
        return "Executed-Success"
    data = status.get("statusCodeData", {})
    return f"{data.get('subjectCode')} / {data.get('reasonCode')}"


def es12(smds, function, body, requester):
    body = dict(body, header={"functionRequesterIdentifier": requester,
                              "functionCallIdentifier": os.urandom(8).hex()})
    return smds.post(f"/gsma/rsp2/es12/{function}", body)


def retrieve(card, smds, smds_address, matching_id):
    """Event Retrieval (§3.6.2): the common mutual authentication with the SM-DS (§3.1.2 with
    CERT.DSauth.ECDSA), `matching_id` in ctxParams1 (absent when None). AuthenticateClient's
    answer."""
    ci_pkid = card_side.ski(card.ci)
    euicc_challenge = os.urandom(16)
    info1 = RSP.encode("EUICCInfo1", {
        "svn": bytes([2, 2, 0]),
        "euiccCiPKIdListForVerification": [ci_pkid],
        "euiccCiPKIdListForSigning": [ci_pkid],
    })
    # ES11.InitiateAuthentication (§5.8.1): ES9+'s path and request, the SM-DS address in
    # smdpAddress (its NOTE).
    ia = smds.post("/gsma/rsp2/es9plus/initiateAuthentication", {
        "euiccChallenge": b64(euicc_challenge), "euiccInfo1": b64(info1),
        "smdpAddress": smds_address,
    })
    check(status_of(ia) == "Executed-Success", "ES11 InitiateAuthentication: Executed-Success",
          json.dumps(ia.get("header")))
    transaction_id = bytes.fromhex(ia["transactionId"])
    server_signed1 = unb64(ia["serverSigned1"])
    server_signature1 = card_side.signature_value(unb64(ia["serverSignature1"]), "serverSignature1")
    ds_auth = x509.load_der_x509_certificate(unb64(ia["serverCertificate"]))
    # ES10b.AuthenticateServer: "the RSP Server Certificate is either CERT.DPauth.ECDSA or
    # CERT.DSauth.ECDSA" (§5.7.13): here it must be the SM-DS's.
    ds_auth.verify_directly_issued_by(card.ci)
    check(card_side.policies(ds_auth) == [ID_RSP_ROLE_DS_AUTH],
          "the SM-DS authenticates with CERT.DSauth.ECDSA (id-rspRole-ds-auth)")
    check(card_side.registered_id(ds_auth) is not None,
          f"CERT.DSauth.ECDSA names the SM-DS OID ({card_side.registered_id(ds_auth)})")
    check(card_side.verifies(ds_auth.public_key(), server_signature1, server_signed1),
          "serverSignature1 (SK.DSauth.ECDSA) verifies over serverSigned1 as received")
    signed1 = RSP.decode("ServerSigned1", server_signed1)
    check(signed1["transactionId"] == transaction_id, "serverSigned1 carries the transactionId")
    check(signed1["euiccChallenge"] == euicc_challenge, "serverSigned1 carries the eUICC's challenge")
    check(signed1["serverAddress"] == smds_address,
          "serverSigned1 carries the SM-DS address the LPA used (§3.1.2 step 10)")
    ctx = {"deviceInfo": {"tac": bytes.fromhex("35290611"), "deviceCapabilities": {}}}
    if matching_id is not None:
        ctx["matchingId"] = matching_id
    info2 = {
        "profileVersion": bytes([2, 3, 1]), "svn": bytes([2, 2, 0]),
        "euiccFirmwareVer": bytes([1, 0, 0]),
        "extCardResource": bytes.fromhex("810100820400100000830200F0"),
        "uiccCapability": card_side.bits(1, 2, 4, 14, length=19),
        "rspCapability": card_side.bits(0, 3, length=4),
        "euiccCiPKIdListForVerification": [ci_pkid], "euiccCiPKIdListForSigning": [ci_pkid],
        "ppVersion": bytes([0, 1, 0]), "sasAcreditationNumber": "SMDS-CHECKER-01",
    }
    signed = {
        "transactionId": transaction_id, "serverAddress": smds_address,
        "serverChallenge": signed1["serverChallenge"], "euiccInfo2": info2,
        "ctxParams1": ("ctxParamsForCommonAuthentication", ctx),
    }
    euicc_signed1 = RSP.encode("EuiccSigned1", signed)
    response = RSP.encode("AuthenticateServerResponse", ("authenticateResponseOk", {
        "euiccSigned1": signed,
        "euiccSignature1": card_side.sign(card.key, euicc_signed1),
        "euiccCertificate": card.cert.public_bytes(serialization.Encoding.DER),
        "eumCertificate": card.eum.public_bytes(serialization.Encoding.DER),
    }))
    check(euicc_signed1 in response, "AuthenticateServerResponse carries euiccSigned1 as signed")
    # ES11.AuthenticateClient (§5.8.2)
    answer = smds.post("/gsma/rsp2/es9plus/authenticateClient", {
        "transactionId": ia["transactionId"], "authenticateServerResponse": b64(response),
    })
    if status_of(answer) == "Executed-Success":
        check(bytes.fromhex(answer["transactionId"]) == transaction_id,
              "ES11 AuthenticateClient: same transactionId")
        check(isinstance(answer.get("eventEntries"), list), "eventEntries is a list (§6.5.2.12)")
    return answer


def entries(answer):
    return [(e["eventId"], e["rspServerAddress"]) for e in answer["eventEntries"]]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for name in ("--gsma-dir", "--eid", "--smds", "--event-id", "--smdp",
                 "--caller-cert", "--caller-key"):
        parser.add_argument(name, required=True)
    args = parser.parse_args()
    try:
        card = card_side.Card(SimpleNamespace(gsma_dir=args.gsma_dir, eid=args.eid))
        caller = x509.load_pem_x509_certificate(open(args.caller_cert, "rb").read())
        requester = card_side.registered_id(caller)
        check(requester is not None, f"the ES12 caller's certificate names its OID ({requester})")
        es12_smds = Server(args.smds, card.ci, (args.caller_cert, args.caller_key))
        lpa_smds = Server(args.smds, card.ci)

        # ES12.RegisterEvent (§5.9.1): stored; the same EventID again from this caller refused.
        mine = {"eid": args.eid, "rspServerAddress": "checker.example",
                "eventId": "CHECKER-EVENT-1", "forwardingIndicator": True}
        registered = es12(es12_smds, "registerEvent", mine, requester)
        check(status_of(registered) == "Executed-Success", "ES12 RegisterEvent: Executed-Success",
              json.dumps(registered))
        check(set(registered) == {"header"}, "RegisterEvent answers the header only (§6.5.2.13)")
        again = es12(es12_smds, "registerEvent", mine, requester)
        check(status_of(again) == "8.9.5 / 3.3",
              "the EventID again from the same caller: 8.9.5 / 3.3 (Table 54)", status_of(again))

        # ES11: every event of the EID, in the order registered; one by its EventID; none.
        everything = entries(retrieve(card, lpa_smds, args.smds, None))
        check(everything == [(args.event_id, args.smdp), ("CHECKER-EVENT-1", "checker.example")],
              "ES11 answers the EID's events in the order they were registered (§3.6.2 step 3)",
              everything)
        one = entries(retrieve(card, lpa_smds, args.smds, "CHECKER-EVENT-1"))
        check(one == [("CHECKER-EVENT-1", "checker.example")],
              "with an EventID in ctxParams1, that event only (§5.8.2)", one)
        unknown = retrieve(card, lpa_smds, args.smds, "NO-SUCH-EVENT")
        check(status_of(unknown) == "8.9.5 / 3.9",
              "an EventID the SM-DS has not for this EID: 8.9.5 / 3.9 (Table 52)", status_of(unknown))

        # ES12.DeleteEvent (§5.9.2): deleted once, unknown the second time.
        gone = es12(es12_smds, "deleteEvent", {"eid": args.eid, "eventId": "CHECKER-EVENT-1"}, requester)
        check(status_of(gone) == "Executed-Success", "ES12 DeleteEvent: Executed-Success")
        twice = es12(es12_smds, "deleteEvent", {"eid": args.eid, "eventId": "CHECKER-EVENT-1"}, requester)
        check(status_of(twice) == "8.9.5 / 3.9",
              "deleting it again: 8.9.5 / 3.9 (Table 56)", status_of(twice))

        # The operator's event: downloaded with its EventID as MatchingID (§3.1.3 option b),
        # installed; the SM-DP+ then deletes it at the SM-DS (§3.1.3.3 step 10).
        download = SimpleNamespace(activation_code=f"1${args.smdp}${args.event_id}",
                                   confirmation_code=None, expect_iccid=None,
                                   outcome="installed", binding="json")
        summary = card_side.attempt(card, download, "final")
        left = entries(retrieve(card, lpa_smds, args.smds, None))
        check(left == [], "the installed order's event is gone from the SM-DS", left)
        print(json.dumps({"iccid": summary["iccid"], "events": [list(e) for e in everything]}))
    except CheckFailed as e:
        print(f"FAIL {e}")
        sys.exit(1)


if __name__ == "__main__":
    main()
