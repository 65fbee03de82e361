//! A software eUICC: the ISD-R's ES10a, ES10b and ES10c functions (SGP.22 §5.7) over DER, as an
//! LPA reaches them, with the checks a real eUICC makes of the SM-DP+ (§3.1.2, §3.1.3, §5.7.13, §5.7.5,
//! §5.7.6): the SM-DP+'s certificates chained to the CI it trusts, every signature verified
//! over the bytes as received, the Bound Profile Package's MACs verified and its segments
//! decrypted.
//!
//! [`Euicc::transmit`] takes one ES10 command (the DER of a request, or one piece of a Bound
//! Profile Package as the LPA cuts it, §2.5.5) and answers its DER. The [`crate::lpa`] drives
//! it; `smdpp-mock euicc` puts it behind lpac ([`apdu`]: the APDU interface).
//!
//! The functions by interface: `es10a.rs` (configured addresses), `es10b.rs` (the RSP session:
//! challenge, EUICCInfo, AuthenticateServer, PrepareDownload, CancelSession, notifications),
//! `load.rs` (LoadBoundProfilePackage), `es10c.rs` (local profile management); `state.rs` is
//! what the card keeps between runs.
//!
//! State kept: installed profiles (their package and metadata), the pending notifications and
//! the RSP session in progress. Errors of the card are answers, never panics.

pub mod apdu;
mod es10a;
mod es10b;
mod es10c;
mod load;
mod state;

use crate::cert::{verify_server, verify_server_any, Certificate, Role, ServerCertError};
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

/// The root SM-DS address a card is made with (§5.7.3): the GSMA's.
pub const ROOT_SMDS: &str = "lpa.ds.gsma.com";
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
    /// The card's chain its download used (its notifications are signed with it).
    pub chain: usize,
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
    /// The SM-DP+ OID of CERT.DPauth; empty when an SM-DS authenticated (CERT.DSauth).
    smdp_oid: Vec<u8>,
    /// euiccSignature1, which smdpSignature2 covers.
    signature1: [u8; 64],
    /// The card's chain the session signs with (`euiccCiPKIdToBeUsed`'s).
    chain: usize,
    /// The CI of CERT.DPauth: CERT.DPpb must chain to the same (§5.7.5).
    dp_auth_ci: Option<Vec<u8>>,
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
    /// The curve of `dp_pb_key` (that of the DPpb certificate).
    dp_pb_curve: crypto::Curve,
}

/// One of the card's certificate chains: its certificate and key, its EUM's certificate, and
/// the CI it chains to, whose key the card also trusts for the SM-DP+'s certificates. A card
/// has one per CI (so per curve: NIST P-256, brainpoolP256r1, or both, SGP.22 §2.6.7.1).
struct Identity {
    certificate: Vec<u8>,
    key: SigningKey,
    eum: Vec<u8>,
    ci: Certificate,
}

/// A software eUICC.
pub struct Euicc {
    /// Its chains; a session signs with the one of the SM-DP+'s `euiccCiPKIdToBeUsed`, a
    /// profile's notifications with the one of the session that installed it.
    identities: Vec<Identity>,
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
    /// The root SM-DS address (GetEuiccConfiguredAddresses), [`ROOT_SMDS`] unless set.
    root_ds: String,
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
        Self::with_chains(vec![credentials])
    }

    /// A card with several chains, one per CI it trusts (a NIST and a brainpool one), all for
    /// one EID; its EUICCInfo1 names every CI, the first first.
    pub fn with_chains(chains: Vec<EuiccCredentials>) -> Result<Self, EuiccError> {
        let mut identities = Vec::with_capacity(chains.len());
        let mut eid = None;
        for credentials in chains {
            let parsed = Certificate::parse(&credentials.certificate)
                .map_err(|e| EuiccError::Certificate("eUICC", e))?;
            let this = parsed.eid().ok_or(EuiccError::NoEid)?;
            if *eid.get_or_insert(this) != this {
                return Err(EuiccError::NoEid);
            }
            if parsed.public_key != credentials.key.public_key() {
                return Err(EuiccError::KeyMismatch);
            }
            let ci = Certificate::parse(&credentials.ci)
                .map_err(|e| EuiccError::Certificate("CI", e))?;
            identities.push(Identity {
                certificate: credentials.certificate,
                key: credentials.key,
                eum: credentials.eum,
                ci,
            });
        }
        let eid = eid.ok_or(EuiccError::NoEid)?;
        Ok(Euicc {
            identities,
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
            root_ds: ROOT_SMDS.to_owned(),
            faults: Faults::default(),
        })
    }

    /// The CIs the card trusts, in the order of its chains.
    fn cis(&self) -> Vec<Certificate> {
        self.identities.iter().map(|i| i.ci.clone()).collect()
    }

    /// The chain of the CI with this key identifier, if the card has one.
    fn chain_of(&self, ski: &[u8]) -> Option<usize> {
        self.identities
            .iter()
            .position(|i| i.ci.subject_key_id.as_deref() == Some(ski))
    }

    /// Chain `index`, or the first when a restored state names one this card no longer has.
    fn chain(&self, index: usize) -> &Identity {
        self.identities.get(index).unwrap_or(&self.identities[0])
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

    /// The key identifiers of the CIs the card trusts (EUICCInfo1's lists).
    fn ci_skis(&self) -> Vec<Vec<u8>> {
        self.identities
            .iter()
            .map(|i| i.ci.subject_key_id.clone().unwrap_or_default())
            .collect()
    }

    /// Answers one ES10b command: a request's DER, or a piece of a Bound Profile Package.
    pub fn transmit(&mut self, command: &[u8]) -> Vec<u8> {
        let tag = match tlv::read_header(command) {
            Ok((tag, _, _)) => tag,
            Err(_) => return Vec::new(),
        };
        match tag {
            0xBF2E => self.challenge(),
            0xBF20 => {
                let skis = self.ci_skis();
                let ids: Vec<&[u8]> = skis.iter().map(Vec::as_slice).collect();
                EuiccInfo1::encode(SVN, &ids, &ids)
            }
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
        let chain = self.chain(self.profiles[index].chain);
        let signature = chain.key.sign(&tbs);
        let der = OtherSignedNotification::encode(&tbs, &signature, &chain.certificate, &chain.eum);
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
