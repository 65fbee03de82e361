#!/usr/bin/env python3
"""Extracts SGP.22's Annex H ("ASN.1 Definitions (Normative)") from the specification's text
(as pdftotext gives it) into an ASN.1 module that asn1tools compiles: RSPDefinitions.asn.

    python3 tests/checker/extract_annex_h.py SGP.22_v2.2.txt > tests/checker/RSPDefinitions.asn

What it changes, and nothing else:
- the page furniture between pages (the "V2.2 ... Page n of 264" footer and the two header
  lines) is dropped;
- a comment the PDF wrapped onto the next line gets that line back (joined with a space);
- the IMPORTS of PKIX1Explicit88/PKIX1Implicit88 (RFC 5280) are replaced by local definitions:
  Certificate and CertificateList as ANY (the checker hands their DER to `cryptography`),
  Time as RFC 5280 defines it, SubjectKeyIdentifier as RFC 5280's KeyIdentifier.

The output is committed, so the checker needs nothing beside the repository.
"""
import re
import sys

FURNITURE = (
    re.compile(r"^V2\.2\s+Page \d+ of \d+\s*$"),
    re.compile(r"^GSM Association\s+Non-confidential\s*$"),
    re.compile(r"^Official Document SGP\.22 - RSP Technical Specification\s*$"),
)

PKIX = """\
-- From PKIX1Explicit88 / PKIX1Implicit88 (RFC 5280), replaced by local definitions: the
-- certificates and CRLs are carried as their DER and checked with `cryptography`.
Certificate ::= ANY
CertificateList ::= ANY
Time ::= CHOICE { utcTime UTCTime, generalTime GeneralizedTime }
SubjectKeyIdentifier ::= OCTET STRING
"""


def annex_h(lines):
    # The module right under the annex's title (the table of contents names the annex too).
    start = next(
        i
        for i, l in enumerate(lines)
        if l.startswith("RSPDefinitions {") and lines[i - 1].startswith("Annex H")
    )
    end = next(i for i in range(start, len(lines)) if lines[i].strip() == "END")
    return lines[start : end + 1]


def in_comment(line):
    """Whether the line ends inside a `--` comment (ASN.1 comments end at `--` or the line)."""
    parts = line.split("--")
    return len(parts) % 2 == 0


def looks_like_asn1(line):
    s = line.strip()
    if not s:
        return True
    if line[0].isspace():
        return True  # components are indented
    if "::=" in s or s in ("}", "END", "BEGIN", "DEFINITIONS", "AUTOMATIC TAGS", "EXTENSIBILITY IMPLIED ::="):
        return True
    if s.startswith("--") or s.startswith("}"):
        return True
    return False


def clean(text):
    lines = [l for l in text.splitlines() if not any(p.match(l) for p in FURNITURE)]
    lines = annex_h(lines)
    out = []
    for line in lines:
        if out and in_comment(out[-1]) and not looks_like_asn1(line):
            out[-1] = out[-1].rstrip() + " " + line.strip()
        else:
            out.append(line.rstrip())
    text = "\n".join(out) + "\n"
    # The module header wraps its OID; the IMPORTS name RFC 5280's modules.
    text = re.sub(r"^RSPDefinitions \{[^}]*\}", "RSPDefinitions {joint-iso-itu-t(2) international-organizations(23) gsma(146) rsp(1) spec-version(1) version-two(2)}", text, flags=re.S | re.M)
    text = re.sub(r"^IMPORTS .*?;\n", PKIX, text, flags=re.S | re.M)
    # Blank-line runs left where page furniture was.
    text = re.sub(r"\n{3,}", "\n\n", text)
    return (
        "-- GSMA SGP.22 v2.2 Annex H, as extracted from the specification's text by\n"
        "-- tests/checker/extract_annex_h.py (which says what it changes).\n" + text
    )


if __name__ == "__main__":
    with open(sys.argv[1], encoding="utf-8") as f:
        sys.stdout.write(clean(f.read()))
