//! A software eUICC: the ISD-R's ES10b functions (SGP.22 §5.7) over DER, as an LPA reaches
//! them, with the checks a real eUICC makes of the SM-DP+ (§3.1.2, §3.1.3, §5.7.13, §5.7.5,
//! §5.7.6): the SM-DP+'s certificates chained to the CI it trusts, every signature verified
//! over the bytes as received, the Bound Profile Package's MACs verified and its segments
//! decrypted.
//!
//! [`Euicc::transmit`] takes one ES10b command (the DER of a request, or one piece of a Bound
//! Profile Package as the LPA cuts it, §2.5.5) and answers its DER. The [`crate::lpa`] drives
//! it; `smdpp-mock euicc` will put it behind lpac.
//!
//! State kept: installed profiles (their package and metadata), the pending notifications and
//! the RSP session in progress. Errors of the card are answers, never panics.

pub mod apdu;
mod load;
mod state;

use crate::cert::{verify_server, Certificate, Role, ServerCertError};
use crate::crypto::{self, OneTimeKey, SigningKey};
use crate::es10b::{
    iccid_bytes, iccid_from_bytes, AuthenticateServerRequest, AuthenticateServerResponse,
    CancelSessionResponse, CtxParams1, EuiccInfo1, EuiccInfo2, EuiccSigned1, NotificationMetadata,
    OtherSignedNotification, PrepareDownloadRequest, PrepareDownloadResponse, ProfileMetadata, SVN,
};
use crate::ids::Iccid;
use crate::pki::EuiccCredentials;
use crate::tlv::{self, Tlv};

pub use load::InstallError;
pub use state::StateError;

/// `NotificationEvent` bits (§5.7.9).
pub mod event {
    /// `notificationInstall`.
    pub const INSTALL: u8 = 0;
    /// `notificationEnable`.
    pub const ENABLE: u8 = 1;
    /// `notificationDisable`.
    pub const DISABLE: u8 = 2;
    /// `notificationDelete`.
    pub const DELETE: u8 = 3;
}

/// The root SM-DS address (§5.7.3), the GSMA's.
const ROOT_SMDS: &str = "lpa.ds.gsma.com";
/// Free non-volatile memory the eUICC reports by default (EUICCInfo2 `extCardResource`).
pub const DEFAULT_FREE_NVM: u32 = 1024 * 1024;
/// Pending notifications kept; the oldest go first beyond this (a card's list is small).
const MAX_NOTIFICATIONS: usize = 64;
/// Profiles a card holds.
const MAX_PROFILES: usize = 32;
/// The largest ISD-P AID counter (three bytes of the AID).
const MAX_AID: u32 = 0xFF_FFFF;

/// A profile installed on the card.
#[derive(Debug, Clone)]
pub struct InstalledProfile {
    /// Its ICCID.
    pub iccid: Iccid,
    /// The ISD-P's AID.
    pub aid: [u8; 16],
    /// Enabled or disabled.
    pub enabled: bool,
    /// The Profile Metadata it was installed with.
    pub metadata: ProfileMetadata,
    /// The unprotected profile package, as decrypted from the Bound Profile Package.
    pub package: Vec<u8>,
    /// The end user's name for it (SetNickname).
    pub nickname: Option<String>,
}

/// A notification waiting to be sent: its metadata and the `PendingNotification` DER.
#[derive(Debug, Clone)]
pub struct Notification {
    /// seqNumber, event, address, ICCID.
    pub metadata: NotificationMetadata,
    /// `ProfileInstallationResult` (`BF37`) or `OtherSignedNotification` (`30`).
    pub der: Vec<u8>,
}

/// The RSP session between AuthenticateServer and the end of the package.
struct Session {
    transaction_id: Vec<u8>,
    server_address: String,
    /// The SM-DP+ OID of CERT.DPauth.
    smdp_oid: Vec<u8>,
    /// euiccSignature1, which smdpSignature2 covers.
    signature1: [u8; 64],
    /// Set by PrepareDownload.
    prepared: Option<Prepared>,
    /// Set by the first piece of the Bound Profile Package.
    loading: Option<load::Loading>,
}

/// A one-time key pair of a session that ended before it was used, kept for a retry with the
/// same SM-DP+ (§5.7.7, §5.7.14, §3.1.5: an eUICC MAY keep it; this one does, in memory only:
/// the private key cannot be saved in the state file).
struct KeptKey {
    /// The SM-DP+ OID of the session that made it.
    smdp_oid: Vec<u8>,
    one_time: OneTimeKey,
}

/// What PrepareDownload left for LoadBoundProfilePackage.
struct Prepared {
    one_time: OneTimeKey,
    euicc_otpk_tlv: Vec<u8>,
    dp_pb_key: Vec<u8>,
}

/// A software eUICC.
pub struct Euicc {
    certificate: Vec<u8>,
    key: SigningKey,
    eum: Vec<u8>,
    ci: Certificate,
    eid: [u8; 16],
    free_nvm: u32,
    /// Check validity periods against this time (seconds since 1970); `None` skips them.
    now: Option<fn() -> i64>,
    challenge: Option<[u8; 16]>,
    session: Option<Session>,
    /// The unused one-time key of an unfinished session, for a download retry.
    kept_key: Option<KeptKey>,
    /// Counts the changes to what [`Euicc::save_state`] keeps.
    changes: u64,
    profiles: Vec<InstalledProfile>,
    notifications: Vec<Notification>,
    next_seq: u64,
    next_aid: u32,
    /// The default SM-DP+ address (SetDefaultDpAddress, GetEuiccConfiguredAddresses).
    default_dp: Option<String>,
    /// Tamper switches for tests of the SM-DP+ (a card that signs badly).
    pub faults: Faults,
}

/// Ways to make this eUICC misbehave, to test what the SM-DP+ does about it.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    /// Flip a bit of euiccSignature1.
    pub bad_signature1: bool,
    /// Flip a bit of euiccSignature2.
    pub bad_signature2: bool,
    /// Flip a bit of euiccSignPIR.
    pub bad_pir_signature: bool,
    /// Report this much free memory instead.
    pub free_nvm: Option<u32>,
    /// Fail the next installation with this `(bppCommandId, errorReason)`.
    pub install_failure: Option<(u8, u8)>,
    /// Leave `smdpOid` out of ProfileInstallationResults, as eUICCs of SGP.22 versions after
    /// v2.2 (where it is OPTIONAL) may.
    pub omit_pir_smdp_oid: bool,
    /// Behind the APDU interface ([`apdu::ApduCard`]): answer the next Bound Profile Package's first
    /// profile element segment (`86`) with status word `6F00` and keep the session, as a load
    /// that breaks off; the LPA may then cancel the session.
    pub interrupt_load: bool,
}

impl std::fmt::Debug for Euicc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Euicc")
            .field("eid", &crypto::hex_upper(&self.eid))
            .field("profiles", &self.profiles.len())
            .field("notifications", &self.notifications.len())
            .finish_non_exhaustive()
    }
}

/// Why an eUICC could not be made from its credentials.
#[derive(Debug, thiserror::Error)]
pub enum EuiccError {
    /// A certificate could not be read.
    #[error("{0}: {1}")]
    Certificate(&'static str, crate::cert::CertError),
    /// The eUICC certificate names no EID.
    #[error("the eUICC certificate has no EID in its serialNumber")]
    NoEid,
    /// The key is not the certificate's.
    #[error("the key is not the one of the eUICC certificate")]
    KeyMismatch,
}

fn now_seconds() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

impl Euicc {
    /// A card with `credentials` (its certificate and key, its EUM's certificate, the CI it
    /// trusts), empty.
    pub fn new(credentials: EuiccCredentials) -> Result<Self, EuiccError> {
        let parsed = Certificate::parse(&credentials.certificate)
            .map_err(|e| EuiccError::Certificate("eUICC", e))?;
        let eid = parsed.eid().ok_or(EuiccError::NoEid)?;
        if parsed.public_key != credentials.key.public_key() {
            return Err(EuiccError::KeyMismatch);
        }
        let ci =
            Certificate::parse(&credentials.ci).map_err(|e| EuiccError::Certificate("CI", e))?;
        Ok(Euicc {
            certificate: credentials.certificate,
            key: credentials.key,
            eum: credentials.eum,
            ci,
            eid,
            free_nvm: DEFAULT_FREE_NVM,
            now: Some(now_seconds),
            challenge: None,
            session: None,
            profiles: Vec::new(),
            notifications: Vec::new(),
            next_seq: 1,
            next_aid: 0x10,
            kept_key: None,
            changes: 0,
            default_dp: None,
            faults: Faults::default(),
        })
    }

    /// The EID, 32 digits.
    pub fn eid(&self) -> String {
        crypto::hex_upper(&self.eid)
    }

    /// Does not check certificate validity periods (for a mock clock far from now).
    pub fn ignore_validity(&mut self) {
        self.now = None;
    }

    /// The installed profiles.
    pub fn profiles(&self) -> &[InstalledProfile] {
        &self.profiles
    }

    /// The pending notifications.
    pub fn notifications(&self) -> &[Notification] {
        &self.notifications
    }

    fn ci_ski(&self) -> Vec<u8> {
        self.ci.subject_key_id.clone().unwrap_or_default()
    }

    /// Answers one ES10b command: a request's DER, or a piece of a Bound Profile Package.
    pub fn transmit(&mut self, command: &[u8]) -> Vec<u8> {
        let tag = match tlv::read_header(command) {
            Ok((tag, _, _)) => tag,
            Err(_) => return Vec::new(),
        };
        match tag {
            0xBF2E => self.challenge(),
            0xBF20 => EuiccInfo1::encode(SVN, &[&self.ci_ski()], &[&self.ci_ski()]),
            0xBF22 => self.info2(),
            0xBF3E => tlv::encode(0xBF3E, &tlv::encode(0x5A, &self.eid)),
            0xBF38 => self.authenticate_server(command),
            0xBF21 => self.prepare_download(command),
            0xBF36 | 0xA0 | 0xA1 | 0xA2 | 0xA3 | 0x86 | 0x88 => self.load(command),
            0xBF41 => self.cancel_session(command),
            0xBF28 => self.list_notifications(),
            0xBF2B => self.retrieve_notifications(command),
            0xBF30 => self.remove_notification(command),
            0xBF31 => self.set_enabled(command, true),
            0xBF32 => self.set_enabled(command, false),
            0xBF33 => self.delete_profile(command),
            0xBF2D => self.profile_info_list(),
            0xBF3C => self.configured_addresses(),
            0xBF3F => self.set_default_dp(command),
            // GetRatResponse: an empty RulesAuthorisationTable (no Profile Policy Rules allowed).
            0xBF43 => tlv::encode(0xBF43, &tlv::encode(0xA0, &[])),
            0xBF29 => self.set_nickname(command),
            0xBF34 => self.memory_reset(command),
            // Not an ES10 function this card knows.
            _ => Vec::new(),
        }
    }

    /// Whether `command` is an ES10 function this card runs (the pieces of a Bound Profile
    /// Package answer nothing while all is well).
    pub fn takes(&self, command: &[u8]) -> bool {
        tlv::read_header(command).is_ok_and(|(tag, _, _)| {
            matches!(
                tag,
                0xBF2E
                    | 0xBF20
                    | 0xBF22
                    | 0xBF3E
                    | 0xBF38
                    | 0xBF21
                    | 0xBF36
                    | 0xA0
                    | 0xA1
                    | 0xA2
                    | 0xA3
                    | 0x86
                    | 0x88
                    | 0xBF41
                    | 0xBF28
                    | 0xBF2B
                    | 0xBF30
                    | 0xBF31
                    | 0xBF32
                    | 0xBF33
                    | 0xBF2D
                    | 0xBF3C
                    | 0xBF3F
                    | 0xBF43
                    | 0xBF29
                    | 0xBF34
            )
        })
    }

    /// GetEuiccConfiguredAddresses (§5.7.3): the default SM-DP+ when one is set, the root SM-DS.
    fn configured_addresses(&self) -> Vec<u8> {
        let mut parts = Vec::new();
        if let Some(dp) = &self.default_dp {
            parts.push(tlv::encode(0x80, dp.as_bytes()));
        }
        parts.push(tlv::encode(0x81, ROOT_SMDS.as_bytes()));
        let refs: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
        tlv::constructed(0xBF3C, &refs)
    }

    /// SetDefaultDpAddress (§5.7.4): an empty address removes it.
    fn set_default_dp(&mut self, command: &[u8]) -> Vec<u8> {
        let address = tlv::read_tagged(command, 0xBF3F)
            .and_then(|t| t.required(0x80))
            .ok()
            .and_then(|a| String::from_utf8(a.value.to_vec()).ok());
        let code = match address {
            Some(a) => {
                self.default_dp = (!a.is_empty()).then_some(a);
                self.changed();
                0
            }
            None => 127,
        };
        tlv::encode(0xBF3F, &tlv::encode(0x80, &[code]))
    }

    /// SetNickname (§5.7.21): ok(0), iccidNotFound(1).
    fn set_nickname(&mut self, command: &[u8]) -> Vec<u8> {
        let parsed = tlv::read_tagged(command, 0xBF29).ok().and_then(|t| {
            let iccid = iccid_from_bytes(t.required(0x5A).ok()?.value).ok()?;
            let name = String::from_utf8(t.required(0x90).ok()?.value.to_vec()).ok()?;
            Some((iccid, name))
        });
        let code = match parsed {
            Some((iccid, name)) => match self.profiles.iter_mut().find(|p| p.iccid == iccid) {
                Some(p) => {
                    p.nickname = (!name.is_empty()).then_some(name);
                    self.changed();
                    0
                }
                None => 1,
            },
            None => 127,
        };
        tlv::encode(0xBF29, &tlv::encode(0x80, &[code]))
    }

    /// eUICCMemoryReset (§5.7.19): `resetOptions` bit 0 deletes the operational profiles (each
    /// leaving its delete notification), bit 1 the test profiles, bit 2 resets the default
    /// SM-DP+ address; ok(0), or nothingToDelete(1). The RSP session ends.
    fn memory_reset(&mut self, command: &[u8]) -> Vec<u8> {
        let options = tlv::read_tagged(command, 0xBF34)
            .and_then(|t| t.required(0x82))
            .ok()
            .and_then(|bits| bits.value.get(1).copied())
            .unwrap_or(0);
        self.session = None;
        let (operational, test, default_dp) = (
            options & 0x80 != 0,
            options & 0x40 != 0,
            options & 0x20 != 0,
        );
        let mut deleted = false;
        let mut index = 0;
        while index < self.profiles.len() {
            let class = self.profiles[index].metadata.profile_class;
            // profileClass: test(0), provisioning(1), operational(2).
            if (operational && class == 2) || (test && class == 0) {
                self.notify(index, event::DELETE);
                self.profiles.remove(index);
                deleted = true;
            } else {
                index += 1;
            }
        }
        if default_dp && self.default_dp.take().is_some() {
            deleted = true;
            self.changed();
        }
        tlv::encode(0xBF34, &tlv::encode(0x80, &[if deleted { 0 } else { 1 }]))
    }

    /// Whether a piece of a Bound Profile Package has a session to go to: PrepareDownload done
    /// for the first piece, the first piece accepted for the others (§5.7.6: otherwise the card
    /// answers a status word, not an installation result).
    pub fn expects(&self, command: &[u8]) -> bool {
        let Ok((tag, _, _)) = tlv::read_header(command) else {
            return false;
        };
        match tag {
            0xBF36 => self.session.as_ref().is_some_and(|s| s.prepared.is_some()),
            0xA0 | 0xA1 | 0xA2 | 0xA3 | 0x86 | 0x88 => {
                self.session.as_ref().is_some_and(|s| s.loading.is_some())
            }
            _ => true,
        }
    }

    /// GetEUICCChallenge (§5.7.7): a new RSP session; any previous one is discarded, its
    /// one-time key kept if it was never used.
    fn challenge(&mut self) -> Vec<u8> {
        self.end_session_keeping_key();
        let challenge: [u8; 16] = crypto::random();
        self.challenge = Some(challenge);
        tlv::encode(0xBF2E, &tlv::encode(0x80, &challenge))
    }

    /// Ends the RSP session; a one-time key it made and never used is kept "together with the
    /// SM-DP+ OID, for future retry" (§5.7.7, §5.7.14), replacing one kept before.
    fn end_session_keeping_key(&mut self) {
        if let Some(Session {
            smdp_oid,
            prepared: Some(prepared),
            ..
        }) = self.session.take()
        {
            self.kept_key = Some(KeptKey {
                smdp_oid,
                one_time: prepared.one_time,
            });
        }
    }

    fn info2(&self) -> Vec<u8> {
        EuiccInfo2::encode(
            self.faults.free_nvm.unwrap_or(self.free_nvm),
            &self.ci_ski(),
        )
    }

    /// AuthenticateServer (§5.7.13): the SM-DP+'s CERT.DPauth and serverSignature1 verified,
    /// the challenge checked; euiccSigned1 signed.
    fn authenticate_server(&mut self, command: &[u8]) -> Vec<u8> {
        let Ok(request) = AuthenticateServerRequest::parse(command) else {
            return AuthenticateServerResponse::encode_error(&[], 127);
        };
        let tid = request.server_signed1.transaction_id.to_vec();
        let error = |code: u8| AuthenticateServerResponse::encode_error(&tid, code);
        // §5.7.13: invalidCertificate(1), invalidSignature(2), unsupportedCurve(3),
        // noSessionContext(4), invalidOid(5), euiccChallengeMismatch(6), ciPKUnknown(7).
        let dp_auth = match verify_server(
            request.server_certificate,
            Role::DpAuth,
            std::slice::from_ref(&self.ci),
            self.now.map(|f| f()),
        ) {
            Ok((cert, _)) => cert,
            Err(ServerCertError::UnknownCi) => return error(7),
            Err(ServerCertError::Curve) => return error(3),
            Err(ServerCertError::Policy) => return error(5),
            Err(ServerCertError::Invalid(_)) => return error(1),
        };
        if Some(request.ci_to_be_used) != self.ci.subject_key_id.as_deref() {
            return error(7);
        }
        if !crypto::verify(
            &dp_auth.public_key,
            request.server_signed1.raw,
            request.server_signature1,
        ) {
            return error(2);
        }
        let Some(challenge) = self.challenge.take() else {
            return error(4);
        };
        if !crypto::same(request.server_signed1.euicc_challenge, &challenge) {
            return error(6);
        }
        let Ok(ctx_params) = CtxParams1::parse(request.ctx_params1) else {
            return error(127);
        };
        let _ = ctx_params;
        let signed1 = EuiccSigned1::encode(
            &tid,
            request.server_signed1.server_address,
            request.server_signed1.server_challenge,
            &self.info2(),
            request.ctx_params1,
        );
        let mut signature = self.key.sign(&signed1);
        self.session = Some(Session {
            transaction_id: tid,
            server_address: String::from_utf8_lossy(request.server_signed1.server_address)
                .into_owned(),
            smdp_oid: dp_auth.registered_id.clone().unwrap_or_default(),
            signature1: signature,
            prepared: None,
            loading: None,
        });
        if self.faults.bad_signature1 {
            signature[5] ^= 1;
        }
        AuthenticateServerResponse::encode_ok(&signed1, &signature, &self.certificate, &self.eum)
    }

    /// PrepareDownload (§5.7.5): CERT.DPpb (same SM-DP+ OID as DPauth) and smdpSignature2
    /// verified; a one-time key made; euiccSigned2 signed.
    fn prepare_download(&mut self, command: &[u8]) -> Vec<u8> {
        let Ok(request) = PrepareDownloadRequest::parse(command) else {
            return PrepareDownloadResponse::encode_error(&[], 127);
        };
        let tid = request.smdp_signed2.transaction_id.to_vec();
        let error = |code: u8| PrepareDownloadResponse::encode_error(&tid, code);
        // §5.7.5: invalidCertificate(1), invalidSignature(2), unsupportedCurve(3),
        // noSessionContext(4), invalidTransactionId(5), undefinedError(127).
        let now = self.now.map(|f| f());
        let Some(session) = self.session.as_mut() else {
            return error(4);
        };
        let dp_pb = match verify_server(
            request.smdp_certificate,
            Role::DpPb,
            std::slice::from_ref(&self.ci),
            now,
        ) {
            Ok((cert, _)) => cert,
            Err(ServerCertError::Curve) => return error(3),
            Err(_) => return error(1),
        };
        if dp_pb.registered_id.as_deref() != Some(&session.smdp_oid[..]) {
            return error(1);
        }
        if !crypto::verify_parts(
            &dp_pb.public_key,
            &[
                request.smdp_signed2.raw,
                &tlv::encode(0x5F37, &session.signature1),
            ],
            request.smdp_signature2,
        ) {
            return error(2);
        }
        if request.smdp_signed2.transaction_id != session.transaction_id {
            return error(5);
        }
        let hash_cc: Option<[u8; 32]> = match (request.smdp_signed2.cc_required, request.hash_cc) {
            (true, Some(h)) => match h.try_into() {
                Ok(h) => Some(h),
                Err(_) => return error(127),
            },
            (true, None) => return error(127),
            (false, _) => None,
        };
        // §5.7.5: "If bppEuiccOtpk is provided in smdpSigned2 and it corresponds to a stored
        // one-time key pair [...] for this SM-DP+: use this key pair"; otherwise a new one. A
        // kept pair of this SM-DP+ is used or replaced here either way.
        let kept = self
            .kept_key
            .take_if(|k| k.smdp_oid == session.smdp_oid)
            .map(|k| k.one_time);
        let one_time = match (kept, request.smdp_signed2.bpp_euicc_otpk) {
            (Some(kept), Some(named)) if kept.public_key()[..] == *named => kept,
            _ => OneTimeKey::generate(),
        };
        let signed2 =
            PrepareDownloadResponse::signed2(&tid, one_time.public_key(), hash_cc.as_ref());
        let smdp_signature2 = tlv::encode(0x5F37, request.smdp_signature2);
        let mut signature = self.key.sign_parts(&[&signed2, &smdp_signature2]);
        if self.faults.bad_signature2 {
            signature[7] ^= 1;
        }
        session.prepared = Some(Prepared {
            euicc_otpk_tlv: tlv::encode(0x5F49, one_time.public_key()),
            one_time,
            dp_pb_key: dp_pb.public_key.clone(),
        });
        PrepareDownloadResponse::encode_ok(&signed2, &signature)
    }

    /// CancelSession (§5.7.14): the session ended, signed for the SM-DP+.
    fn cancel_session(&mut self, command: &[u8]) -> Vec<u8> {
        let parsed = tlv::read_tagged(command, 0xBF41).and_then(|t| {
            let tid = t.required(0x80)?.value.to_vec();
            let reason = t.required(0x81)?.uint()?;
            Ok((tid, reason))
        });
        let Ok((tid, reason)) = parsed else {
            return CancelSessionResponse::encode_error(127);
        };
        // invalidTransactionId(5).
        let Some(session) = self.session.as_ref().filter(|s| s.transaction_id == tid) else {
            return CancelSessionResponse::encode_error(5);
        };
        let signed = CancelSessionResponse::signed(
            &tid,
            &session.smdp_oid,
            u8::try_from(reason).unwrap_or(127),
        );
        let signature = self.key.sign(&signed);
        if matches!(reason, 1 | 2) {
            // postponed(1), timeout(2): "the eUICC MAY store the unused otPK.eUICC.ECKA and
            // otSK.eUICC.ECKA, together with the SM-DP+ identity, for future retry" (§5.7.14).
            self.end_session_keeping_key();
        }
        self.session = None;
        CancelSessionResponse::encode_ok(&signed, &signature)
    }

    /// ListNotification (§5.7.9): the metadata of every pending notification.
    fn list_notifications(&self) -> Vec<u8> {
        let list: Vec<Vec<u8>> = self
            .notifications
            .iter()
            .map(|n| n.metadata.encode())
            .collect();
        let parts: Vec<&[u8]> = list.iter().map(Vec::as_slice).collect();
        tlv::encode(0xBF28, &tlv::constructed(0xA0, &parts))
    }

    /// RetrieveNotificationsList (§5.7.10): all, or the one with a seqNumber.
    fn retrieve_notifications(&self, command: &[u8]) -> Vec<u8> {
        let wanted = tlv::read_tagged(command, 0xBF2B)
            .ok()
            .and_then(|t| t.child(0xA0).ok().flatten())
            .and_then(|c| c.child(0x80).ok().flatten())
            .and_then(|s| s.uint().ok());
        let list: Vec<&[u8]> = self
            .notifications
            .iter()
            .filter(|n| wanted.is_none_or(|seq| n.metadata.seq == seq))
            .map(|n| n.der.as_slice())
            .collect();
        tlv::encode(0xBF2B, &tlv::constructed(0xA0, &list))
    }

    /// RemoveNotificationFromList (§5.7.11): ok(0) or nothingToDelete(1).
    fn remove_notification(&mut self, command: &[u8]) -> Vec<u8> {
        let seq = tlv::read_tagged(command, 0xBF30).and_then(|t| t.required(0x80)?.uint());
        let before = self.notifications.len();
        if let Ok(seq) = seq {
            self.notifications.retain(|n| n.metadata.seq != seq);
        }
        if self.notifications.len() < before {
            self.changed();
        }
        let status = if self.notifications.len() < before {
            0
        } else {
            1
        };
        tlv::encode(0xBF30, &tlv::encode(0x80, &[status]))
    }

    fn profile_index(&self, identifier: Tlv<'_>) -> Option<usize> {
        match identifier.tag {
            0x5A => {
                let iccid = iccid_from_bytes(identifier.value).ok()?;
                self.profiles.iter().position(|p| p.iccid == iccid)
            }
            0x4F => self
                .profiles
                .iter()
                .position(|p| p.aid[..] == *identifier.value),
            _ => None,
        }
    }

    /// EnableProfile / DisableProfile (§5.7.16, §5.7.17): ok(0), iccidOrAidNotFound(1),
    /// profileNotInDisabledState / profileNotInEnabledState(2).
    fn set_enabled(&mut self, command: &[u8], enable: bool) -> Vec<u8> {
        let tag = if enable { 0xBF31 } else { 0xBF32 };
        let answer = |code: u8| tlv::encode(tag, &tlv::encode(0x80, &[code]));
        let index = tlv::read_tagged(command, tag)
            .and_then(|t| t.required(0xA0))
            .and_then(|a| tlv::read_exact(a.value))
            .ok()
            .and_then(|id| self.profile_index(id));
        let Some(index) = index else { return answer(1) };
        if self.profiles[index].enabled == enable {
            return answer(2);
        }
        if enable {
            // One enabled profile at a time (§2.2): the one enabled before is disabled, and
            // says so only when its metadata asks (as a real eUICC would).
            if let Some(other) = self.profiles.iter().position(|p| p.enabled) {
                self.profiles[other].enabled = false;
                self.notify(other, event::DISABLE);
            }
        }
        self.profiles[index].enabled = enable;
        self.notify(
            index,
            if enable {
                event::ENABLE
            } else {
                event::DISABLE
            },
        );
        answer(0)
    }

    /// DeleteProfile (§5.7.18): ok(0), iccidOrAidNotFound(1), profileNotInDisabledState(2).
    fn delete_profile(&mut self, command: &[u8]) -> Vec<u8> {
        let answer = |code: u8| tlv::encode(0xBF33, &tlv::encode(0x80, &[code]));
        let index = tlv::read_tagged(command, 0xBF33)
            .and_then(|t| tlv::read_exact(t.value))
            .ok()
            .and_then(|id| self.profile_index(id));
        let Some(index) = index else { return answer(1) };
        if self.profiles[index].enabled {
            return answer(2);
        }
        self.notify(index, event::DELETE);
        self.profiles.remove(index);
        answer(0)
    }

    /// ProfileInfoListRequest (§5.7.15), the fields an LPA shows: ICCID, AID, state, name.
    fn profile_info_list(&self) -> Vec<u8> {
        let infos: Vec<Vec<u8>> = self
            .profiles
            .iter()
            .map(|p| {
                let mut fields = vec![
                    tlv::encode(0x5A, &iccid_bytes(&p.iccid)),
                    tlv::encode(0x4F, &p.aid),
                    tlv::encode(0x9F70, &[u8::from(p.enabled)]),
                ];
                if let Some(nickname) = &p.nickname {
                    fields.push(tlv::encode(0x90, nickname.as_bytes()));
                }
                fields.push(tlv::encode(0x91, p.metadata.service_provider.as_bytes()));
                fields.push(tlv::encode(0x92, p.metadata.profile_name.as_bytes()));
                fields.push(tlv::encode(0x95, &[p.metadata.profile_class]));
                let refs: Vec<&[u8]> = fields.iter().map(Vec::as_slice).collect();
                tlv::constructed(0xE3, &refs)
            })
            .collect();
        let parts: Vec<&[u8]> = infos.iter().map(Vec::as_slice).collect();
        tlv::encode(0xBF2D, &tlv::constructed(0xA0, &parts))
    }

    /// Adds the notification of `event` on profile `index` when its metadata asks for one.
    fn notify(&mut self, index: usize, event: u8) {
        let profile = &self.profiles[index];
        let Some(config) = profile
            .metadata
            .notifications
            .iter()
            .find(|n| n.event == event)
        else {
            return;
        };
        let (address, iccid) = (config.address.clone(), profile.iccid);
        let metadata = NotificationMetadata {
            seq: self.take_seq(),
            event,
            address,
            iccid: Some(iccid),
        };
        let tbs = metadata.encode();
        let signature = self.key.sign(&tbs);
        let der = OtherSignedNotification::encode(&tbs, &signature, &self.certificate, &self.eum);
        self.push_notification(Notification { metadata, der });
    }

    fn take_seq(&mut self) -> u64 {
        let seq = self.next_seq;
        // A restored state never starts at the end (state.rs refuses it).
        self.next_seq = self.next_seq.saturating_add(1);
        seq
    }

    /// Every change to the installed profiles leaves a notification (installation result,
    /// enable, disable, delete): counted here.
    fn push_notification(&mut self, notification: Notification) {
        if self.notifications.len() >= MAX_NOTIFICATIONS {
            self.notifications.remove(0);
        }
        self.notifications.push(notification);
        self.changed();
    }

    fn changed(&mut self) {
        self.changes = self.changes.wrapping_add(1);
    }

    /// Moves whenever what [`Euicc::save_state`] keeps changes: a caller that keeps the card
    /// in a file saves when it moved.
    pub fn changes(&self) -> u64 {
        self.changes
    }

    fn next_aid(&mut self) -> [u8; 16] {
        // A0000005591010FFFFFFFF8900 + a counter: the form of ISD-P AIDs real eUICCs report.
        let mut aid = [
            0xA0, 0x00, 0x00, 0x05, 0x59, 0x10, 0x10, 0xFF, 0xFF, 0xFF, 0xFF, 0x89, 0x00, 0x00,
            0x00, 0x00,
        ];
        aid[13..].copy_from_slice(&self.next_aid.to_be_bytes()[1..]);
        // Three bytes of the AID count: past them the counter starts again (state.rs refuses
        // a larger one; at most MAX_PROFILES AIDs are in use at a time).
        self.next_aid = if self.next_aid >= MAX_AID {
            0x10
        } else {
            self.next_aid + 1
        };
        aid
    }
}
