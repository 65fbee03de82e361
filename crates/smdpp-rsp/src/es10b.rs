//! The RSPDefinitions types (SGP.22 Annex H) that the SM-DP+ and the eUICC exchange, in the
//! order of a download: each with its tags worked out (the module is `AUTOMATIC TAGS`), a
//! reader that keeps the raw bytes of the signed parts, and a writer. Readers take what the
//! other side sent and fail with a [`TlvError`] that says what is wrong; they ignore
//! components they do not know (the module is `EXTENSIBILITY IMPLIED`).

use super::tlv::{self, Tlv, TlvError};
use crate::ids::{Eid, Iccid};

/// The ISD-R's `VersionType` this crate speaks: SGP.22 v2.2.0.
pub const SVN: [u8; 3] = [2, 2, 0];

fn invalid(text: impl Into<String>) -> TlvError {
    TlvError::Invalid(text.into())
}

/// A signed data object and its signature (`5F37`) among the children of `parent`, as SGP.22
/// pairs them (serverSigned1, euiccSigned1, smdpSigned2, euiccSigned2, euiccCancelSessionSigned,
/// an installation result's data, a notification's tbs): the signed part as received, which
/// the signature covers, and the signature's value.
fn signed_part<'a>(parent: &Tlv<'a>, signed_tag: u32) -> Result<(Tlv<'a>, &'a [u8]), TlvError> {
    Ok((parent.required(signed_tag)?, parent.required(0x5F37)?.value))
}

/// The certificates (`30` SEQUENCEs) among the children of `parent`, other than `signed`.
fn certificates<'a>(parent: &Tlv<'a>, signed: &Tlv<'a>) -> Result<Vec<Tlv<'a>>, TlvError> {
    Ok(parent
        .children()?
        .into_iter()
        .filter(|c| c.tag == 0x30 && !std::ptr::eq(c.raw, signed.raw))
        .collect())
}

/// The eUICC's and the EUM's certificates, the two that follow a signed part from the eUICC.
fn euicc_and_eum<'a>(
    parent: &Tlv<'a>,
    signed: &Tlv<'a>,
    what: &str,
) -> Result<(&'a [u8], &'a [u8]), TlvError> {
    match certificates(parent, signed)?[..] {
        [euicc, eum] => Ok((euicc.raw, eum.raw)),
        _ => Err(invalid(format!(
            "{what} needs the eUICC and EUM certificates"
        ))),
    }
}

/// The one certificate that follows a signed part from the SM-DP+.
fn server_certificate<'a>(parent: &Tlv<'a>, signed: &Tlv<'a>) -> Result<&'a [u8], TlvError> {
    certificates(parent, signed)?
        .first()
        .map(|c| c.raw)
        .ok_or(TlvError::Missing {
            parent: parent.tag,
            missing: 0x30,
        })
}

/// An ICCID as the 10 bytes of `Iccid ::= [APPLICATION 26] OCTET STRING`: BCD with the nibbles
/// of each byte swapped, padded with `F` (EF-ICCID coding).
pub fn iccid_bytes(iccid: &Iccid) -> [u8; 10] {
    let digits = iccid.digits();
    let mut nibbles: Vec<u8> = digits.bytes().map(|b| b - b'0').collect();
    while nibbles.len() < 20 {
        nibbles.push(0xF);
    }
    let mut out = [0u8; 10];
    for (i, pair) in nibbles.chunks(2).enumerate() {
        out[i] = (pair[1] << 4) | pair[0];
    }
    out
}

/// The ICCID of 10 EF-ICCID bytes.
pub fn iccid_from_bytes(bytes: &[u8]) -> Result<Iccid, TlvError> {
    if bytes.len() != 10 {
        return Err(invalid(format!(
            "an ICCID is 10 bytes, not {}",
            bytes.len()
        )));
    }
    let mut digits = String::with_capacity(20);
    for b in bytes {
        for nibble in [b & 0x0F, b >> 4] {
            match nibble {
                0..=9 => digits.push((b'0' + nibble) as char),
                0xF => {}
                _ => return Err(invalid("an ICCID digit that is not BCD")),
            }
        }
    }
    digits
        .parse()
        .map_err(|e: crate::ids::FormatError| invalid(e.to_string()))
}

/// An EID as the 16 bytes of its `5A` data object (BCD, not swapped).
pub fn eid_bytes(eid: &Eid) -> [u8; 16] {
    let text = eid.to_string();
    let mut out = [0u8; 16];
    for (i, pair) in text.as_bytes().chunks(2).enumerate() {
        out[i] = ((pair[0] - b'0') << 4) | (pair[1] - b'0');
    }
    out
}

/// The EID of its 16 bytes.
pub fn eid_from_bytes(bytes: &[u8; 16]) -> Option<Eid> {
    super::crypto::hex_upper(bytes).parse().ok()
}

// ---- InitiateAuthentication ------------------------------------------------------------------

/// `EUICCInfo1 ::= [32] SEQUENCE` (`BF20`): the SVN and the CIs the eUICC trusts.
#[derive(Debug, Clone)]
pub struct EuiccInfo1<'a> {
    /// `svn [2]`.
    pub svn: [u8; 3],
    /// `euiccCiPKIdListForVerification [9]`: SubjectKeyIdentifiers, in the eUICC's order.
    pub ci_for_verification: Vec<&'a [u8]>,
    /// `euiccCiPKIdListForSigning [10]`.
    pub ci_for_signing: Vec<&'a [u8]>,
}

fn key_ids(list: Option<Tlv<'_>>) -> Result<Vec<&[u8]>, TlvError> {
    let Some(list) = list else {
        return Ok(Vec::new());
    };
    Ok(list
        .children()?
        .into_iter()
        .filter(|c| c.tag == 0x04)
        .map(|c| c.value)
        .collect())
}

impl<'a> EuiccInfo1<'a> {
    /// Reads a `BF20`.
    pub fn parse(raw: &'a [u8]) -> Result<Self, TlvError> {
        let info = tlv::read_tagged(raw, 0xBF20)?;
        Ok(EuiccInfo1 {
            svn: info.required(0x82)?.fixed()?,
            ci_for_verification: key_ids(info.child(0xA9)?)?,
            ci_for_signing: key_ids(info.child(0xAA)?)?,
        })
    }

    /// Writes a `BF20`.
    pub fn encode(svn: [u8; 3], verification: &[&[u8]], signing: &[&[u8]]) -> Vec<u8> {
        let list = |tag: u32, ids: &[&[u8]]| {
            let items: Vec<Vec<u8>> = ids.iter().map(|id| tlv::encode(0x04, id)).collect();
            let refs: Vec<&[u8]> = items.iter().map(Vec::as_slice).collect();
            tlv::constructed(tag, &refs)
        };
        tlv::constructed(
            0xBF20,
            &[
                &tlv::encode(0x82, &svn),
                &list(0xA9, verification),
                &list(0xAA, signing),
            ],
        )
    }
}

/// `ServerSigned1` (`30 {80 tid, 81 euiccChallenge, 83 serverAddress, 84 serverChallenge}`).
#[derive(Debug, Clone)]
pub struct ServerSigned1<'a> {
    /// The data object as received.
    pub raw: &'a [u8],
    /// `transactionId [0]`.
    pub transaction_id: &'a [u8],
    /// `euiccChallenge [1]`.
    pub euicc_challenge: &'a [u8],
    /// `serverAddress [3]`.
    pub server_address: &'a [u8],
    /// `serverChallenge [4]`.
    pub server_challenge: &'a [u8],
}

impl<'a> ServerSigned1<'a> {
    /// Writes one.
    pub fn encode(
        tid: &[u8],
        euicc_challenge: &[u8],
        address: &str,
        server_challenge: &[u8],
    ) -> Vec<u8> {
        tlv::constructed(
            0x30,
            &[
                &tlv::encode(0x80, tid),
                &tlv::encode(0x81, euicc_challenge),
                &tlv::encode(0x83, address.as_bytes()),
                &tlv::encode(0x84, server_challenge),
            ],
        )
    }

    /// Reads one.
    pub fn parse(t: Tlv<'a>) -> Result<Self, TlvError> {
        let t = t.expect(0x30)?;
        Ok(ServerSigned1 {
            raw: t.raw,
            transaction_id: t.required(0x80)?.value,
            euicc_challenge: t.required(0x81)?.value,
            server_address: t.required(0x83)?.value,
            server_challenge: t.required(0x84)?.value,
        })
    }
}

// ---- AuthenticateServer / AuthenticateClient --------------------------------------------------

/// `AuthenticateServerRequest ::= [56] SEQUENCE` (`BF38`), what the eUICC receives.
#[derive(Debug, Clone)]
pub struct AuthenticateServerRequest<'a> {
    /// `serverSigned1`.
    pub server_signed1: ServerSigned1<'a>,
    /// `serverSignature1 [APPLICATION 55]`.
    pub server_signature1: &'a [u8],
    /// `euiccCiPKIdToBeUsed`.
    pub ci_to_be_used: &'a [u8],
    /// `serverCertificate` (CERT.DPauth.ECDSA).
    pub server_certificate: &'a [u8],
    /// `ctxParams1` (`A0 …`), the whole data object.
    pub ctx_params1: &'a [u8],
}

impl<'a> AuthenticateServerRequest<'a> {
    /// Reads a `BF38` request.
    pub fn parse(raw: &'a [u8]) -> Result<Self, TlvError> {
        let t = tlv::read_tagged(raw, 0xBF38)?;
        let (signed, signature) = signed_part(&t, 0x30)?;
        Ok(AuthenticateServerRequest {
            server_signed1: ServerSigned1::parse(signed)?,
            server_signature1: signature,
            ci_to_be_used: t.required(0x04)?.value,
            server_certificate: server_certificate(&t, &signed)?,
            ctx_params1: t.required(0xA0)?.raw,
        })
    }

    /// Writes one (what the LPA builds from InitiateAuthentication's answer).
    pub fn encode(
        server_signed1: &[u8],
        signature: &[u8],
        ci_to_be_used_tlv: &[u8],
        certificate: &[u8],
        ctx_params1: &[u8],
    ) -> Vec<u8> {
        tlv::constructed(
            0xBF38,
            &[
                server_signed1,
                &tlv::encode(0x5F37, signature),
                ci_to_be_used_tlv,
                certificate,
                ctx_params1,
            ],
        )
    }
}

/// `CtxParams1`, `[0] CtxParamsForCommonAuthentication` (`A0 {[80 matchingId], A1 deviceInfo}`).
#[derive(Debug, Clone)]
pub struct CtxParams1<'a> {
    /// `matchingId [0]`, when present (an empty one is present).
    pub matching_id: Option<&'a [u8]>,
    /// `deviceInfo [1]`, the whole data object.
    pub device_info: &'a [u8],
}

impl<'a> CtxParams1<'a> {
    /// Reads one (`A0`; any other CHOICE alternative is refused).
    pub fn parse(raw: &'a [u8]) -> Result<Self, TlvError> {
        let t = tlv::read_tagged(raw, 0xA0)?;
        Ok(CtxParams1 {
            matching_id: t.child(0x80)?.map(|m| m.value),
            device_info: t.required(0xA1)?.raw,
        })
    }

    /// Writes one; `tac` and an empty `deviceCapabilities` as a minimal LPA sends.
    pub fn encode(matching_id: Option<&str>, tac: [u8; 4]) -> Vec<u8> {
        let device_info =
            tlv::constructed(0xA1, &[&tlv::encode(0x80, &tac), &tlv::encode(0xA1, &[])]);
        let mut parts: Vec<Vec<u8>> = Vec::new();
        if let Some(m) = matching_id {
            parts.push(tlv::encode(0x80, m.as_bytes()));
        }
        parts.push(device_info);
        let refs: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
        tlv::constructed(0xA0, &refs)
    }
}

/// `EuiccSigned1` (`30 {80 tid, 83 serverAddress, 84 serverChallenge, BF22 euiccInfo2, A0 ctxParams1}`).
#[derive(Debug, Clone)]
pub struct EuiccSigned1<'a> {
    /// As received: what `euiccSignature1` covers.
    pub raw: &'a [u8],
    /// `transactionId [0]`.
    pub transaction_id: &'a [u8],
    /// `serverAddress [3]`.
    pub server_address: &'a [u8],
    /// `serverChallenge [4]`.
    pub server_challenge: &'a [u8],
    /// `euiccInfo2 [34]` (`BF22`).
    pub euicc_info2: Tlv<'a>,
    /// `ctxParams1` (`A0`).
    pub ctx_params1: &'a [u8],
}

impl<'a> EuiccSigned1<'a> {
    fn parse(t: Tlv<'a>) -> Result<Self, TlvError> {
        let t = t.expect(0x30)?;
        Ok(EuiccSigned1 {
            raw: t.raw,
            transaction_id: t.required(0x80)?.value,
            server_address: t.required(0x83)?.value,
            server_challenge: t.required(0x84)?.value,
            euicc_info2: t.required(0xBF22)?,
            ctx_params1: t.required(0xA0)?.raw,
        })
    }

    /// Writes one from the parts the eUICC copies (§5.7.13).
    pub fn encode(
        tid: &[u8],
        server_address: &[u8],
        server_challenge: &[u8],
        euicc_info2: &[u8],
        ctx_params1: &[u8],
    ) -> Vec<u8> {
        tlv::constructed(
            0x30,
            &[
                &tlv::encode(0x80, tid),
                &tlv::encode(0x83, server_address),
                &tlv::encode(0x84, server_challenge),
                euicc_info2,
                ctx_params1,
            ],
        )
    }
}

/// `AuthenticateServerResponse ::= [56] CHOICE` (`BF38`), what the SM-DP+ receives.
#[derive(Debug, Clone)]
pub enum AuthenticateServerResponse<'a> {
    /// `authenticateResponseOk [0]`.
    Ok {
        /// `euiccSigned1`.
        euicc_signed1: EuiccSigned1<'a>,
        /// `euiccSignature1`, 64 bytes `r ‖ s`.
        signature: &'a [u8],
        /// `euiccCertificate`.
        euicc_certificate: &'a [u8],
        /// `eumCertificate`.
        eum_certificate: &'a [u8],
    },
    /// `authenticateResponseError [1]`.
    Error {
        /// Its transactionId.
        transaction_id: &'a [u8],
        /// `authenticateErrorCode`.
        code: u64,
    },
}

impl<'a> AuthenticateServerResponse<'a> {
    /// Reads a `BF38` response.
    pub fn parse(raw: &'a [u8]) -> Result<Self, TlvError> {
        let t = tlv::read_tagged(raw, 0xBF38)?;
        let inner = tlv::read_exact(t.value)?;
        match inner.tag {
            0xA0 => {
                let (signed, signature) = signed_part(&inner, 0x30)?;
                let (euicc, eum) = euicc_and_eum(&inner, &signed, "AuthenticateResponseOk")?;
                Ok(AuthenticateServerResponse::Ok {
                    euicc_signed1: EuiccSigned1::parse(signed)?,
                    signature,
                    euicc_certificate: euicc,
                    eum_certificate: eum,
                })
            }
            0xA1 => Ok(AuthenticateServerResponse::Error {
                transaction_id: inner.required(0x80)?.value,
                code: inner.required(0x02)?.uint()?,
            }),
            other => Err(TlvError::UnexpectedTag {
                expected: 0xA0,
                found: other,
            }),
        }
    }

    /// Writes the OK form.
    pub fn encode_ok(
        euicc_signed1: &[u8],
        signature: &[u8],
        euicc_certificate: &[u8],
        eum_certificate: &[u8],
    ) -> Vec<u8> {
        let ok = tlv::constructed(
            0xA0,
            &[
                euicc_signed1,
                &tlv::encode(0x5F37, signature),
                euicc_certificate,
                eum_certificate,
            ],
        );
        tlv::encode(0xBF38, &ok)
    }

    /// Writes the error form.
    pub fn encode_error(tid: &[u8], code: u8) -> Vec<u8> {
        let error = tlv::constructed(
            0xA1,
            &[&tlv::encode(0x80, tid), &tlv::encode(0x02, &[code])],
        );
        tlv::encode(0xBF38, &error)
    }
}

/// What the SM-DP+ reads of `EUICCInfo2` (`BF22`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EuiccInfo2 {
    /// `svn [2]`.
    pub svn: [u8; 3],
    /// Free non-volatile memory from `extCardResource [4]` (ETSI TS 102 226 tag `82`), if given.
    pub free_nvm: Option<u64>,
    /// `rspCapability [8]` has `additionalProfile(0)`.
    pub additional_profile: Option<bool>,
}

impl EuiccInfo2 {
    /// Reads the components the eligibility check uses.
    pub fn parse(t: Tlv<'_>) -> Result<Self, TlvError> {
        let t = t.expect(0xBF22)?;
        let free_nvm = match t.child(0x84)? {
            Some(ext) => tlv::read_all(ext.value)?
                .into_iter()
                .find(|c| c.tag == 0x82)
                .and_then(|c| {
                    (c.value.len() <= 8)
                        .then(|| c.value.iter().fold(0u64, |a, b| (a << 8) | u64::from(*b)))
                }),
            None => None,
        };
        // A BIT STRING without content bytes (`88 01 00`) has no bit set: no additional profile.
        let additional_profile = t
            .child(0x88)?
            .filter(|bits| !bits.value.is_empty())
            .map(|bits| bits.value.get(1).is_some_and(|b| b & 0x80 != 0));
        Ok(EuiccInfo2 {
            svn: t.required(0x82)?.fixed()?,
            free_nvm,
            additional_profile,
        })
    }

    /// Writes an `EUICCInfo2` for a software eUICC: SVN 2.2.0, `free` bytes of free memory,
    /// additionalProfile and testProfileSupport, the CIs it trusts.
    pub fn encode(free: u32, cis: &[&[u8]]) -> Vec<u8> {
        let ext = [
            tlv::encode(0x81, &[0]),
            tlv::encode(0x82, &free.to_be_bytes()),
            tlv::encode(0x83, &[0x00, 0x10, 0x00]),
        ]
        .concat();
        let ci_list: Vec<u8> = cis.iter().flat_map(|ci| tlv::encode(0x04, ci)).collect();
        tlv::constructed(
            0xBF22,
            &[
                &tlv::encode(0x81, &[2, 3, 0]),
                &tlv::encode(0x82, &SVN),
                &tlv::encode(0x83, &[1, 0, 0]),
                &tlv::encode(0x84, &ext),
                &tlv::encode(0x85, &[0x02, 0x00, 0x00]),
                &tlv::encode(0x88, &[0x04, 0x90]),
                &tlv::encode(0xA9, &ci_list),
                &tlv::encode(0xAA, &ci_list),
                &tlv::encode(0x04, &[2, 3, 0]),
                &tlv::encode(0x0C, b"smdpp-mock software eUICC"),
            ],
        )
    }
}

// ---- PrepareDownload / GetBoundProfilePackage -------------------------------------------------

/// `SmdpSigned2` (`30 {80 tid, 01 ccRequiredFlag, [5F49 bppEuiccOtpk]}`).
#[derive(Debug, Clone)]
pub struct SmdpSigned2<'a> {
    /// As received.
    pub raw: &'a [u8],
    /// `transactionId [0]`.
    pub transaction_id: &'a [u8],
    /// `ccRequiredFlag`.
    pub cc_required: bool,
    /// `bppEuiccOtpk`: the otPK.EUICC.ECKA a package of an earlier attempt was bound with
    /// (§3.1.3 step 5), for the eUICC to use again if it kept the pair.
    pub bpp_euicc_otpk: Option<&'a [u8]>,
}

impl<'a> SmdpSigned2<'a> {
    /// Writes one; `bpp_euicc_otpk` on a download retry whose package can be reused.
    pub fn encode(tid: &[u8], cc_required: bool, bpp_euicc_otpk: Option<&[u8]>) -> Vec<u8> {
        let otpk = bpp_euicc_otpk.map(|k| tlv::encode(0x5F49, k));
        let mut parts: Vec<&[u8]> = Vec::with_capacity(3);
        let tid = tlv::encode(0x80, tid);
        let flag = tlv::encode(0x01, &[if cc_required { 0xFF } else { 0 }]);
        parts.push(&tid);
        parts.push(&flag);
        if let Some(otpk) = &otpk {
            parts.push(otpk);
        }
        tlv::constructed(0x30, &parts)
    }

    /// Reads one from its DER (what the LPA gets in AuthenticateClient's answer).
    pub fn parse_raw(raw: &'a [u8]) -> Result<Self, TlvError> {
        Self::parse(tlv::read_exact(raw)?)
    }

    fn parse(t: Tlv<'a>) -> Result<Self, TlvError> {
        let t = t.expect(0x30)?;
        let flag = t.required(0x01)?;
        Ok(SmdpSigned2 {
            raw: t.raw,
            transaction_id: t.required(0x80)?.value,
            cc_required: flag.value.first().is_some_and(|b| *b != 0),
            bpp_euicc_otpk: t.child(0x5F49)?.map(|k| k.value),
        })
    }
}

/// `PrepareDownloadRequest ::= [33] SEQUENCE` (`BF21`), what the eUICC receives.
#[derive(Debug, Clone)]
pub struct PrepareDownloadRequest<'a> {
    /// `smdpSigned2`.
    pub smdp_signed2: SmdpSigned2<'a>,
    /// `smdpSignature2`.
    pub smdp_signature2: &'a [u8],
    /// `hashCc`.
    pub hash_cc: Option<&'a [u8]>,
    /// `smdpCertificate` (CERT.DPpb.ECDSA).
    pub smdp_certificate: &'a [u8],
}

impl<'a> PrepareDownloadRequest<'a> {
    /// Reads one.
    pub fn parse(raw: &'a [u8]) -> Result<Self, TlvError> {
        let t = tlv::read_tagged(raw, 0xBF21)?;
        let (signed, signature) = signed_part(&t, 0x30)?;
        Ok(PrepareDownloadRequest {
            smdp_signed2: SmdpSigned2::parse(signed)?,
            smdp_signature2: signature,
            hash_cc: t.child(0x04)?.map(|h| h.value),
            smdp_certificate: server_certificate(&t, &signed)?,
        })
    }

    /// Writes one.
    pub fn encode(
        smdp_signed2: &[u8],
        signature: &[u8],
        hash_cc: Option<&[u8; 32]>,
        certificate: &[u8],
    ) -> Vec<u8> {
        let sig = tlv::encode(0x5F37, signature);
        let hash = hash_cc.map(|h| tlv::encode(0x04, h));
        let mut parts: Vec<&[u8]> = vec![smdp_signed2, &sig];
        if let Some(h) = &hash {
            parts.push(h);
        }
        parts.push(certificate);
        tlv::constructed(0xBF21, &parts)
    }
}

/// `EUICCSigned2` (`30 {80 tid, 5F49 euiccOtpk, [04 hashCc]}`).
#[derive(Debug, Clone)]
pub struct EuiccSigned2<'a> {
    /// As received: what `euiccSignature2` covers, with `smdpSignature2`.
    pub raw: &'a [u8],
    /// `transactionId [0]`.
    pub transaction_id: &'a [u8],
    /// `euiccOtpk [APPLICATION 73]`, the `5F49` data object whole.
    pub euicc_otpk: Tlv<'a>,
    /// `hashCc`.
    pub hash_cc: Option<&'a [u8]>,
}

/// `PrepareDownloadResponse ::= [33] CHOICE` (`BF21`), what the SM-DP+ receives.
#[derive(Debug, Clone)]
pub enum PrepareDownloadResponse<'a> {
    /// `downloadResponseOk [0]`.
    Ok {
        /// `euiccSigned2`.
        euicc_signed2: EuiccSigned2<'a>,
        /// `euiccSignature2`.
        signature: &'a [u8],
    },
    /// `downloadResponseError [1]`.
    Error {
        /// Its transactionId.
        transaction_id: &'a [u8],
        /// `downloadErrorCode`.
        code: u64,
    },
}

impl<'a> PrepareDownloadResponse<'a> {
    /// Reads a `BF21` response.
    pub fn parse(raw: &'a [u8]) -> Result<Self, TlvError> {
        let t = tlv::read_tagged(raw, 0xBF21)?;
        let inner = tlv::read_exact(t.value)?;
        match inner.tag {
            0xA0 => {
                let (signed, signature) = signed_part(&inner, 0x30)?;
                Ok(PrepareDownloadResponse::Ok {
                    euicc_signed2: EuiccSigned2 {
                        raw: signed.raw,
                        transaction_id: signed.required(0x80)?.value,
                        euicc_otpk: signed.required(0x5F49)?,
                        hash_cc: signed.child(0x04)?.map(|h| h.value),
                    },
                    signature,
                })
            }
            0xA1 => Ok(PrepareDownloadResponse::Error {
                transaction_id: inner.required(0x80)?.value,
                code: inner.required(0x02)?.uint()?,
            }),
            other => Err(TlvError::UnexpectedTag {
                expected: 0xA0,
                found: other,
            }),
        }
    }

    /// Writes `euiccSigned2` (§5.7.5).
    pub fn signed2(tid: &[u8], otpk: &[u8; 65], hash_cc: Option<&[u8; 32]>) -> Vec<u8> {
        let mut parts = vec![tlv::encode(0x80, tid), tlv::encode(0x5F49, otpk)];
        if let Some(h) = hash_cc {
            parts.push(tlv::encode(0x04, h));
        }
        let refs: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
        tlv::constructed(0x30, &refs)
    }

    /// Writes the OK form.
    pub fn encode_ok(euicc_signed2: &[u8], signature: &[u8]) -> Vec<u8> {
        tlv::encode(
            0xBF21,
            &tlv::constructed(0xA0, &[euicc_signed2, &tlv::encode(0x5F37, signature)]),
        )
    }

    /// Writes the error form.
    pub fn encode_error(tid: &[u8], code: u8) -> Vec<u8> {
        tlv::encode(
            0xBF21,
            &tlv::constructed(
                0xA1,
                &[&tlv::encode(0x80, tid), &tlv::encode(0x02, &[code])],
            ),
        )
    }
}

// ---- Profile metadata --------------------------------------------------------------------------

/// A notification the profile asks for (`NotificationConfigurationInformation`): the event
/// (`NotificationEvent` bit) and the address to send it to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotificationConfiguration {
    /// The `NotificationEvent` bit (0 install, 1 enable, 2 disable, 3 delete).
    pub event: u8,
    /// `notificationAddress`: the SM-DP+ as `host[:port]`.
    pub address: String,
}

/// The `NotificationEvent` BIT STRING with only bit `event` (0 to 7) set (DER: trailing zero
/// bits are dropped and counted as unused); a larger `event` sets no bit.
pub fn notification_event(event: u8) -> [u8; 2] {
    [
        7u8.saturating_sub(event),
        0x80u8.checked_shr(event.into()).unwrap_or(0),
    ]
}

/// The bit of a `NotificationEvent` BIT STRING value, if exactly one is set.
pub fn notification_event_bit(value: &[u8]) -> Option<u8> {
    let byte = *value.get(1)?;
    (0..4).find(|bit| byte == 0x80 >> bit)
}

/// `StoreMetadataRequest ::= [37] SEQUENCE` (`BF25`), the Profile Metadata (§4.4, §5.5.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileMetadata {
    /// `iccid`.
    pub iccid: Iccid,
    /// `serviceProviderName [17]`.
    pub service_provider: String,
    /// `profileName [18]`.
    pub profile_name: String,
    /// `profileClass [21]`: 0 test, 1 provisioning, 2 operational (the DEFAULT, then absent).
    pub profile_class: u8,
    /// `notificationConfigurationInfo [22]`.
    pub notifications: Vec<NotificationConfiguration>,
}

impl ProfileMetadata {
    /// Writes the `BF25`.
    pub fn encode(&self) -> Vec<u8> {
        let mut parts = vec![
            tlv::encode(0x5A, &iccid_bytes(&self.iccid)),
            tlv::encode(0x91, self.service_provider.as_bytes()),
            tlv::encode(0x92, self.profile_name.as_bytes()),
        ];
        if self.profile_class != 2 {
            parts.push(tlv::encode(0x95, &[self.profile_class]));
        }
        if !self.notifications.is_empty() {
            let entries: Vec<Vec<u8>> = self
                .notifications
                .iter()
                .map(|n| {
                    tlv::constructed(
                        0x30,
                        &[
                            &tlv::encode(0x80, &notification_event(n.event)),
                            &tlv::encode(0x81, n.address.as_bytes()),
                        ],
                    )
                })
                .collect();
            let refs: Vec<&[u8]> = entries.iter().map(Vec::as_slice).collect();
            parts.push(tlv::constructed(0xB6, &refs));
        }
        let refs: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
        tlv::constructed(0xBF25, &refs)
    }

    /// Reads a `BF25`.
    pub fn parse(raw: &[u8]) -> Result<Self, TlvError> {
        let t = tlv::read_tagged(raw, 0xBF25)?;
        let text = |tag| -> Result<String, TlvError> {
            let v = t.required(tag)?.value;
            String::from_utf8(v.to_vec()).map_err(|_| invalid(format!("tag {tag:X}: not UTF-8")))
        };
        let mut notifications = Vec::new();
        if let Some(list) = t.child(0xB6)? {
            for entry in list.children()? {
                let event = notification_event_bit(entry.required(0x80)?.value)
                    .ok_or_else(|| invalid("a notification configuration without one event"))?;
                let address = String::from_utf8(entry.required(0x81)?.value.to_vec())
                    .map_err(|_| invalid("a notification address that is not UTF-8"))?;
                notifications.push(NotificationConfiguration { event, address });
            }
        }
        Ok(ProfileMetadata {
            iccid: iccid_from_bytes(t.required(0x5A)?.value)?,
            service_provider: text(0x91)?,
            profile_name: text(0x92)?,
            profile_class: match t.child(0x95)? {
                Some(c) => *c
                    .value
                    .first()
                    .ok_or_else(|| invalid("an empty profileClass"))?,
                None => 2,
            },
            notifications,
        })
    }
}

// ---- Notifications -----------------------------------------------------------------------------

/// `NotificationMetadata ::= [47] SEQUENCE` (`BF2F`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotificationMetadata {
    /// `seqNumber [0]`.
    pub seq: u64,
    /// The `profileManagementOperation [1]` event bit.
    pub event: u8,
    /// `notificationAddress`.
    pub address: String,
    /// `iccid`, when known.
    pub iccid: Option<Iccid>,
}

impl NotificationMetadata {
    /// Writes the `BF2F`.
    pub fn encode(&self) -> Vec<u8> {
        let mut parts = vec![
            tlv::encode(0x80, &tlv::uint_value(self.seq)),
            tlv::encode(0x81, &notification_event(self.event)),
            tlv::encode(0x0C, self.address.as_bytes()),
        ];
        if let Some(iccid) = &self.iccid {
            parts.push(tlv::encode(0x5A, &iccid_bytes(iccid)));
        }
        let refs: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
        tlv::constructed(0xBF2F, &refs)
    }

    /// Reads a `BF2F`.
    pub fn parse(t: Tlv<'_>) -> Result<Self, TlvError> {
        let t = t.expect(0xBF2F)?;
        Ok(NotificationMetadata {
            seq: t.required(0x80)?.uint()?,
            event: notification_event_bit(t.required(0x81)?.value)
                .ok_or_else(|| invalid("profileManagementOperation names no single event"))?,
            address: String::from_utf8(t.required(0x0C)?.value.to_vec())
                .map_err(|_| invalid("notificationAddress is not UTF-8"))?,
            iccid: t
                .child(0x5A)?
                .map(|i| iccid_from_bytes(i.value))
                .transpose()?,
        })
    }
}

/// The `finalResult` of a ProfileInstallationResult.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FinalResult {
    /// `successResult`: the ISD-P's AID and the SIMA response.
    Success {
        /// `aid`.
        aid: Vec<u8>,
        /// `simaResponse`.
        sima_response: Vec<u8>,
    },
    /// `errorResult`.
    Error {
        /// `bppCommandId`.
        bpp_command_id: u8,
        /// `errorReason`.
        error_reason: u8,
    },
}

/// `ProfileInstallationResult ::= [55] SEQUENCE` (`BF37`).
#[derive(Debug, Clone)]
pub struct ProfileInstallationResult<'a> {
    /// `profileInstallationResultData` (`BF27`) as received: what `euiccSignPIR` covers.
    pub data_raw: &'a [u8],
    /// `transactionId [0]`.
    pub transaction_id: &'a [u8],
    /// `notificationMetadata`.
    pub metadata: NotificationMetadata,
    /// `smdpOid`, the content bytes: mandatory in SGP.22 v2.2's Annex H, OPTIONAL in later
    /// versions, whose eUICCs may leave it out.
    pub smdp_oid: Option<&'a [u8]>,
    /// `finalResult [2]`.
    pub result: FinalResult,
    /// The `finalResult` data object (`A2`) as received.
    pub final_result_raw: &'a [u8],
    /// `euiccSignPIR`.
    pub signature: &'a [u8],
}

impl<'a> ProfileInstallationResult<'a> {
    /// Reads a `BF37`.
    pub fn parse(raw: &'a [u8]) -> Result<Self, TlvError> {
        Self::parse_tlv(tlv::read_tagged(raw, 0xBF37)?)
    }

    fn parse_tlv(t: Tlv<'a>) -> Result<Self, TlvError> {
        let (data, signature) = signed_part(&t, 0xBF27)?;
        let final_result = data.required(0xA2)?;
        let inner = tlv::read_exact(final_result.value)?;
        let result = match inner.tag {
            0xA0 => FinalResult::Success {
                aid: inner.required(0x4F)?.value.to_vec(),
                sima_response: inner.required(0x04)?.value.to_vec(),
            },
            0xA1 => FinalResult::Error {
                bpp_command_id: u8::try_from(inner.required(0x80)?.uint()?)
                    .map_err(|_| invalid("bppCommandId out of range"))?,
                error_reason: u8::try_from(inner.required(0x81)?.uint()?)
                    .map_err(|_| invalid("errorReason out of range"))?,
            },
            other => {
                return Err(TlvError::UnexpectedTag {
                    expected: 0xA0,
                    found: other,
                })
            }
        };
        Ok(ProfileInstallationResult {
            data_raw: data.raw,
            transaction_id: data.required(0x80)?.value,
            metadata: NotificationMetadata::parse(data.required(0xBF2F)?)?,
            smdp_oid: data.child(0x06)?.map(|oid| oid.value),
            result,
            final_result_raw: final_result.raw,
            signature,
        })
    }

    /// Writes the `BF27` data (to be signed); `smdp_oid` `None` leaves the field out.
    pub fn encode_data(
        tid: &[u8],
        metadata: &NotificationMetadata,
        smdp_oid: Option<&[u8]>,
        result: &FinalResult,
    ) -> Vec<u8> {
        let result = match result {
            FinalResult::Success { aid, sima_response } => tlv::constructed(
                0xA0,
                &[&tlv::encode(0x4F, aid), &tlv::encode(0x04, sima_response)],
            ),
            FinalResult::Error {
                bpp_command_id,
                error_reason,
            } => tlv::constructed(
                0xA1,
                &[
                    &tlv::encode(0x80, &tlv::uint_value(u64::from(*bpp_command_id))),
                    &tlv::encode(0x81, &tlv::uint_value(u64::from(*error_reason))),
                ],
            ),
        };
        let oid = smdp_oid
            .map(|oid| tlv::encode(0x06, oid))
            .unwrap_or_default();
        tlv::constructed(
            0xBF27,
            &[
                &tlv::encode(0x80, tid),
                &metadata.encode(),
                &oid,
                &tlv::encode(0xA2, &result),
            ],
        )
    }

    /// Writes the `BF37` from the data and its signature.
    pub fn encode(data: &[u8], signature: &[u8]) -> Vec<u8> {
        tlv::constructed(0xBF37, &[data, &tlv::encode(0x5F37, signature)])
    }
}

/// `OtherSignedNotification` (`30 {BF2F tbsOtherNotification, 5F37 sig, 30 eUICC cert, 30 EUM cert}`).
#[derive(Debug, Clone)]
pub struct OtherSignedNotification<'a> {
    /// `tbsOtherNotification` as received: what the signature covers.
    pub tbs_raw: &'a [u8],
    /// Its content.
    pub metadata: NotificationMetadata,
    /// `euiccNotificationSignature`.
    pub signature: &'a [u8],
    /// `euiccCertificate`.
    pub euicc_certificate: &'a [u8],
    /// `eumCertificate`.
    pub eum_certificate: &'a [u8],
}

impl<'a> OtherSignedNotification<'a> {
    fn parse_tlv(t: Tlv<'a>) -> Result<Self, TlvError> {
        let (tbs, signature) = signed_part(&t, 0xBF2F)?;
        let (euicc, eum) = euicc_and_eum(&t, &tbs, "OtherSignedNotification")?;
        Ok(OtherSignedNotification {
            tbs_raw: tbs.raw,
            metadata: NotificationMetadata::parse(tbs)?,
            signature,
            euicc_certificate: euicc,
            eum_certificate: eum,
        })
    }

    /// Writes one.
    pub fn encode(
        tbs: &[u8],
        signature: &[u8],
        euicc_certificate: &[u8],
        eum_certificate: &[u8],
    ) -> Vec<u8> {
        tlv::constructed(
            0x30,
            &[
                tbs,
                &tlv::encode(0x5F37, signature),
                euicc_certificate,
                eum_certificate,
            ],
        )
    }
}

/// `PendingNotification ::= CHOICE` (§5.6.4): an installation result or another notification.
#[derive(Debug, Clone)]
pub enum PendingNotification<'a> {
    /// `profileInstallationResult` (`BF37`).
    InstallationResult(ProfileInstallationResult<'a>),
    /// `otherSignedNotification` (`30`).
    Other(OtherSignedNotification<'a>),
}

impl<'a> PendingNotification<'a> {
    /// Reads one.
    pub fn parse(raw: &'a [u8]) -> Result<Self, TlvError> {
        let t = tlv::read_exact(raw)?;
        match t.tag {
            0xBF37 => Ok(PendingNotification::InstallationResult(
                ProfileInstallationResult::parse_tlv(t)?,
            )),
            0x30 => Ok(PendingNotification::Other(
                OtherSignedNotification::parse_tlv(t)?,
            )),
            other => Err(TlvError::UnexpectedTag {
                expected: 0xBF37,
                found: other,
            }),
        }
    }
}

// ---- CancelSession -----------------------------------------------------------------------------

/// `CancelSessionResponse ::= [65] CHOICE` (`BF41`), what the SM-DP+ receives.
#[derive(Debug, Clone)]
pub enum CancelSessionResponse<'a> {
    /// `cancelSessionResponseOk [0]`.
    Ok {
        /// `euiccCancelSessionSigned` as received.
        signed_raw: &'a [u8],
        /// Its transactionId.
        transaction_id: &'a [u8],
        /// Its `smdpOid [1]`, content bytes.
        smdp_oid: &'a [u8],
        /// Its `reason [2]`.
        reason: u64,
        /// `euiccCancelSessionSignature`.
        signature: &'a [u8],
    },
    /// `cancelSessionResponseError [1]`.
    Error(u64),
}

impl<'a> CancelSessionResponse<'a> {
    /// Reads a `BF41` response.
    pub fn parse(raw: &'a [u8]) -> Result<Self, TlvError> {
        let t = tlv::read_tagged(raw, 0xBF41)?;
        let inner = tlv::read_exact(t.value)?;
        match inner.tag {
            0xA0 => {
                let (signed, signature) = signed_part(&inner, 0x30)?;
                Ok(CancelSessionResponse::Ok {
                    signed_raw: signed.raw,
                    transaction_id: signed.required(0x80)?.value,
                    smdp_oid: signed.required(0x81)?.value,
                    reason: signed.required(0x82)?.uint()?,
                    signature,
                })
            }
            0x81 => Ok(CancelSessionResponse::Error(inner.uint()?)),
            other => Err(TlvError::UnexpectedTag {
                expected: 0xA0,
                found: other,
            }),
        }
    }

    /// Writes `euiccCancelSessionSigned`.
    pub fn signed(tid: &[u8], smdp_oid: &[u8], reason: u8) -> Vec<u8> {
        tlv::constructed(
            0x30,
            &[
                &tlv::encode(0x80, tid),
                &tlv::encode(0x81, smdp_oid),
                &tlv::encode(0x82, &tlv::uint_value(u64::from(reason))),
            ],
        )
    }

    /// Writes the OK form.
    pub fn encode_ok(signed: &[u8], signature: &[u8]) -> Vec<u8> {
        tlv::encode(
            0xBF41,
            &tlv::constructed(0xA0, &[signed, &tlv::encode(0x5F37, signature)]),
        )
    }

    /// Writes the error form.
    pub fn encode_error(code: u8) -> Vec<u8> {
        tlv::encode(0xBF41, &tlv::encode(0x81, &[code]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers() {
        let iccid: Iccid = "89001012345678901234".parse().unwrap();
        assert_eq!(
            iccid_bytes(&iccid),
            [0x98, 0x00, 0x01, 0x21, 0x43, 0x65, 0x87, 0x09, 0x21, 0x43]
        );
        assert_eq!(iccid_from_bytes(&iccid_bytes(&iccid)).unwrap(), iccid);
        let nineteen = Iccid::with_check_digit("894450010000000000", false).unwrap();
        let bytes = iccid_bytes(&nineteen);
        assert_eq!(
            bytes[9] >> 4,
            0xF,
            "the pad goes into the high nibble of the last byte"
        );
        assert_eq!(
            iccid_from_bytes(&bytes).unwrap().digits(),
            nineteen.digits()
        );
        let eid: Eid = "89049032123451234512345678901235".parse().unwrap();
        assert_eq!(eid_bytes(&eid)[..4], [0x89, 0x04, 0x90, 0x32]);
        assert_eq!(eid_from_bytes(&eid_bytes(&eid)), Some(eid));
        assert_eq!(notification_event(0), [7, 0x80]);
        assert_eq!(notification_event(3), [4, 0x10]);
        assert_eq!(notification_event_bit(&[5, 0x20]), Some(2));
    }

    #[test]
    fn metadata_round_trips_and_omits_the_default_class() {
        let metadata = ProfileMetadata {
            iccid: "89001012345678901234".parse().unwrap(),
            service_provider: "Mock".into(),
            profile_name: "Profile".into(),
            profile_class: 2,
            notifications: vec![NotificationConfiguration {
                event: 1,
                address: "localhost:6444".into(),
            }],
        };
        let encoded = metadata.encode();
        assert!(!tlv::read_exact(&encoded)
            .unwrap()
            .children()
            .unwrap()
            .iter()
            .any(|c| c.tag == 0x95));
        assert_eq!(ProfileMetadata::parse(&encoded).unwrap(), metadata);
    }
}
