//! LoadBoundProfilePackage (SGP.22 §5.7.6, §2.5.5) on the card: the pieces of a Bound Profile
//! Package in the order the LPA sends them, each checked as it arrives, and the Profile
//! Installation Result at the end or at the first error.
//!
//! ```text
//! BF36 header + BF23   InitialiseSecureChannel: smdpSign verified, ECDH, session keys
//! A0 {87}              ConfigureISDP, MAC verified and decrypted
//! A1 header, 88 …      StoreMetadata, each MAC verified
//! [A2 {87}]            ReplaceSessionKeys (the Profile Protection Keys)
//! A3 header, 86 …      the profile's elements, each MAC verified and decrypted
//! ```

use super::{event, Euicc, InstalledProfile, Notification, MAX_PROFILES};
use crate::crypto::{self, derive_session_keys, KEY_LENGTH, KEY_TYPE_AES};
use crate::es10b::{FinalResult, NotificationMetadata, ProfileInstallationResult, ProfileMetadata};
use crate::ids::Iccid;
use crate::profile_package::{check_structure, iccids_in};
use crate::scp03t::{Scp03t, Scp03tError};
use crate::tlv;

/// `bppCommandId` (§5.7.6).
mod command {
    pub(super) const INITIALISE_SECURE_CHANNEL: u8 = 0;
    pub(super) const CONFIGURE_ISDP: u8 = 1;
    pub(super) const STORE_METADATA: u8 = 2;
    pub(super) const REPLACE_SESSION_KEYS: u8 = 4;
    pub(super) const LOAD_PROFILE_ELEMENTS: u8 = 5;
}

/// Why an installation failed: `bppCommandId` and `errorReason` of the result (§5.7.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InstallError {
    /// `bppCommandId`.
    pub bpp_command_id: u8,
    /// `errorReason`.
    pub error_reason: u8,
}

/// `errorReason` values (§5.7.6).
mod reason {
    pub(super) const INCORRECT_INPUT_VALUES: u8 = 1;
    pub(super) const INVALID_SIGNATURE: u8 = 2;
    pub(super) const INVALID_TRANSACTION_ID: u8 = 3;
    pub(super) const UNSUPPORTED_CRT_VALUES: u8 = 4;
    pub(super) const UNSUPPORTED_REMOTE_OPERATION_TYPE: u8 = 5;
    pub(super) const SCP03T_STRUCTURE_ERROR: u8 = 7;
    pub(super) const SCP03T_SECURITY_ERROR: u8 = 8;
    pub(super) const ICCID_ALREADY_EXISTS: u8 = 9;
    pub(super) const INSUFFICIENT_MEMORY: u8 = 10;
    pub(super) const PE_PROCESSING_ERROR: u8 = 12;
    pub(super) const DATA_MISMATCH: u8 = 13;
    pub(super) const UNKNOWN_ERROR: u8 = 127;
}

/// Where a Bound Profile Package being loaded is.
pub(super) struct Loading {
    scp: Scp03t,
    expect: Expect,
    metadata: Vec<u8>,
    parsed: Option<ProfileMetadata>,
    package: Vec<u8>,
    /// Bytes of the current `A1` or `A3` still to come.
    left: usize,
    /// Bytes of the whole Bound Profile Package still to come, as its `BF36` header declared:
    /// the envelope no signature or MAC covers must agree with what arrives.
    bpp_left: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    ConfigureIsdp,
    StoreMetadataHeader,
    StoreMetadata,
    KeysOrElementsHeader,
    Elements,
}

fn fail(bpp_command_id: u8, error_reason: u8) -> InstallError {
    InstallError {
        bpp_command_id,
        error_reason,
    }
}

fn scp_error(bpp_command_id: u8) -> impl Fn(Scp03tError) -> InstallError {
    move |e| {
        fail(
            bpp_command_id,
            match e {
                Scp03tError::Mac => reason::SCP03T_SECURITY_ERROR,
                Scp03tError::Structure => reason::SCP03T_STRUCTURE_ERROR,
            },
        )
    }
}

/// The `SuccessResult`'s `simaResponse`: one profile element status, ok.
const SIMA_OK: [u8; 9] = [0x30, 0x07, 0xA0, 0x05, 0x30, 0x03, 0x80, 0x01, 0x00];

/// What a piece of the package brings when it is the last: the profile package and its
/// metadata, to be installed.
type Loaded = (Vec<u8>, ProfileMetadata);

/// The outcome of one piece: `None` while more are to come, the loaded profile after the last,
/// or the error that ends the installation.
type Step = Result<Option<Loaded>, InstallError>;

/// One piece of a Bound Profile Package after its `BF36` header, as read.
struct Piece<'a> {
    /// The whole piece.
    command: &'a [u8],
    tag: u32,
    /// The piece is a header alone (the `A1` and `A3` that open a run of segments).
    header_only: bool,
    /// The length its header declares.
    len: usize,
}

impl Loading {
    /// A piece in the stage it arrived in (the table at the top of this file): counted against
    /// the length `BF36` declared, then handled by its stage's method; a piece the stage does not
    /// expect is refused with the stage's `bppCommandId`.
    fn accept(&mut self, piece: Piece<'_>, free: usize, installed: &[Iccid]) -> Step {
        // Every piece counts against the length `BF36` declared; the last must end it exactly.
        let step = match self.expect {
            Expect::ConfigureIsdp => command::CONFIGURE_ISDP,
            Expect::StoreMetadataHeader | Expect::StoreMetadata => command::STORE_METADATA,
            Expect::KeysOrElementsHeader | Expect::Elements => command::LOAD_PROFILE_ELEMENTS,
        };
        self.bpp_left = self
            .bpp_left
            .checked_sub(piece.command.len())
            .ok_or(fail(step, reason::INCORRECT_INPUT_VALUES))?;
        match (self.expect, piece.tag) {
            (Expect::ConfigureIsdp, 0xA0) => self.configure_isdp(piece.command),
            (Expect::StoreMetadataHeader, 0xA1) if piece.header_only => {
                Ok(self.open_segments(piece.len, Expect::StoreMetadata))
            }
            (Expect::StoreMetadata, 0x88) => self.store_metadata(piece.command, installed),
            (Expect::KeysOrElementsHeader, 0xA2) => self.replace_session_keys(piece.command),
            (Expect::KeysOrElementsHeader, 0xA3) if piece.header_only => {
                Ok(self.open_segments(piece.len, Expect::Elements))
            }
            (Expect::Elements, 0x86) => self.load_elements(piece.command, free),
            (_, _) => Err(fail(step, reason::INCORRECT_INPUT_VALUES)),
        }
    }

    /// `A0` ConfigureISDP: its content must decrypt to a `BF24` ConfigureISDPRequest.
    fn configure_isdp(&mut self, command: &[u8]) -> Step {
        let clear = self.decrypt_tagged(command, 0xA0, command::CONFIGURE_ISDP)?;
        if tlv::read_tagged(&clear, 0xBF24).is_err() {
            return Err(fail(
                command::CONFIGURE_ISDP,
                reason::INCORRECT_INPUT_VALUES,
            ));
        }
        self.expect = Expect::StoreMetadataHeader;
        Ok(None)
    }

    /// The `A1` or `A3` header that opens a run of segments of `len` bytes, and the stage
    /// that takes them.
    fn open_segments(&mut self, len: usize, next: Expect) -> Option<Loaded> {
        self.left = len;
        self.expect = next;
        None
    }

    /// An `88` segment of StoreMetadata, MAC verified. The last one completes the Profile
    /// Metadata, which must parse and name an ICCID not installed yet (`iccidAlreadyExists`).
    fn store_metadata(&mut self, command: &[u8], installed: &[Iccid]) -> Step {
        let piece = self
            .scp
            .verify(command)
            .map_err(scp_error(command::STORE_METADATA))?;
        self.metadata.extend_from_slice(&piece);
        self.count_segment(command, command::STORE_METADATA)?;
        if self.left == 0 {
            let metadata = ProfileMetadata::parse(&self.metadata)
                .map_err(|_| fail(command::STORE_METADATA, reason::INCORRECT_INPUT_VALUES))?;
            if installed.contains(&metadata.iccid) {
                return Err(fail(command::STORE_METADATA, reason::ICCID_ALREADY_EXISTS));
            }
            self.parsed = Some(metadata);
            self.expect = Expect::KeysOrElementsHeader;
        }
        Ok(None)
    }

    /// `A2` ReplaceSessionKeys (§2.5.3): a `BF26` with the Profile Protection Keys (chaining
    /// value, S-ENC, S-MAC), which protect the elements from here on.
    fn replace_session_keys(&mut self, command: &[u8]) -> Step {
        let clear = self.decrypt_tagged(command, 0xA2, command::REPLACE_SESSION_KEYS)?;
        let keys = tlv::read_tagged(&clear, 0xBF26).and_then(|t| {
            Ok((
                t.required(0x80)?.fixed::<16>()?,
                t.required(0x81)?.fixed::<16>()?,
                t.required(0x82)?.fixed::<16>()?,
            ))
        });
        let (chaining, enc, mac) = keys.map_err(|_| {
            fail(
                command::REPLACE_SESSION_KEYS,
                reason::INCORRECT_INPUT_VALUES,
            )
        })?;
        self.scp.replace_keys(enc, mac, chaining);
        Ok(None)
    }

    /// An `86` segment of the profile's elements, MAC verified and decrypted. The last one must
    /// also end the package `BF36` declared, and yields the profile to install.
    fn load_elements(&mut self, command: &[u8], free: usize) -> Step {
        let clear = self
            .scp
            .decrypt(command)
            .map_err(scp_error(command::LOAD_PROFILE_ELEMENTS))?;
        // The profile must fit (installFailedDueToInsufficientMemoryForProfile): checked
        // as the elements arrive, so no more than the free memory is ever held, whatever
        // length the A3 header declared (segments may be of any size up to 1020 bytes,
        // so that length says little about the profile's).
        if self.package.len() + clear.len() > free {
            return Err(fail(
                command::LOAD_PROFILE_ELEMENTS,
                reason::INSUFFICIENT_MEMORY,
            ));
        }
        self.package.extend_from_slice(&clear);
        self.count_segment(command, command::LOAD_PROFILE_ELEMENTS)?;
        if self.left > 0 {
            return Ok(None);
        }
        if self.bpp_left != 0 {
            return Err(fail(
                command::LOAD_PROFILE_ELEMENTS,
                reason::INCORRECT_INPUT_VALUES,
            ));
        }
        let metadata = self
            .parsed
            .clone()
            .ok_or_else(|| fail(command::LOAD_PROFILE_ELEMENTS, reason::UNKNOWN_ERROR))?;
        Ok(Some((std::mem::take(&mut self.package), metadata)))
    }

    /// The clear content of a `tag` data object encrypted under the session keys (`A0`, `A2`):
    /// a structure error of `bpp_command_id` when it is no such object, a security error when
    /// its MAC does not verify.
    fn decrypt_tagged(
        &mut self,
        command: &[u8],
        tag: u32,
        bpp_command_id: u8,
    ) -> Result<Vec<u8>, InstallError> {
        let inner = tlv::read_tagged(command, tag)
            .map_err(|_| fail(bpp_command_id, reason::SCP03T_STRUCTURE_ERROR))?;
        self.scp
            .decrypt(inner.value)
            .map_err(scp_error(bpp_command_id))
    }

    /// Counts a segment against the bytes its `A1` or `A3` header declared: one that runs past
    /// them is a structure error of `bpp_command_id`.
    fn count_segment(&mut self, command: &[u8], bpp_command_id: u8) -> Result<(), InstallError> {
        self.left = self
            .left
            .checked_sub(command.len())
            .ok_or_else(|| fail(bpp_command_id, reason::SCP03T_STRUCTURE_ERROR))?;
        Ok(())
    }
}

impl Euicc {
    /// One piece of a Bound Profile Package: nothing while all is well, the signed Profile
    /// Installation Result (`BF37`) at the end or at the first error.
    pub(super) fn load(&mut self, command: &[u8]) -> Vec<u8> {
        match self.load_step(command) {
            Ok(None) => Vec::new(),
            Ok(Some(package)) => self.finish(Ok(package)),
            Err(error) => self.finish(Err(error)),
        }
    }

    /// One piece of the package: the `BF36` header with InitialiseSecureChannel opens the load,
    /// any other piece goes to the stage the load is in ([`Loading::accept`]).
    fn load_step(&mut self, command: &[u8]) -> Step {
        let Ok((tag, header_len, len)) = tlv::read_header(command) else {
            return Err(fail(
                command::INITIALISE_SECURE_CHANNEL,
                reason::INCORRECT_INPUT_VALUES,
            ));
        };
        if tag == 0xBF36 {
            let first = command.len() - header_len;
            let bpp_left = len.checked_sub(first).ok_or(fail(
                command::INITIALISE_SECURE_CHANNEL,
                reason::INCORRECT_INPUT_VALUES,
            ))?;
            self.initialise(&command[header_len..])?;
            if let Some(loading) = self.session.as_mut().and_then(|s| s.loading.as_mut()) {
                loading.bpp_left = bpp_left;
            }
            return Ok(None);
        }
        let free = usize::try_from(self.faults.free_nvm.unwrap_or(self.free_nvm)).unwrap_or(0);
        let installed: Vec<_> = self.profiles.iter().map(|p| p.iccid).collect();
        let Some(loading) = self.session.as_mut().and_then(|s| s.loading.as_mut()) else {
            return Err(fail(
                command::INITIALISE_SECURE_CHANNEL,
                reason::INCORRECT_INPUT_VALUES,
            ));
        };
        let piece = Piece {
            command,
            tag,
            header_only: command.len() == header_len,
            len,
        };
        loading.accept(piece, free, &installed)
    }

    /// `BF23` InitialiseSecureChannelRequest: the SM-DP+'s signature over what binds the
    /// package to this session, then the session keys.
    fn initialise(&mut self, raw: &[u8]) -> Result<(), InstallError> {
        let bad = |r| fail(command::INITIALISE_SECURE_CHANNEL, r);
        let eid = self.eid;
        let session = self
            .session
            .as_mut()
            .ok_or(bad(reason::INVALID_TRANSACTION_ID))?;
        let prepared = session
            .prepared
            .take()
            .ok_or(bad(reason::INVALID_TRANSACTION_ID))?;
        let request =
            tlv::read_tagged(raw, 0xBF23).map_err(|_| bad(reason::INCORRECT_INPUT_VALUES))?;
        let field = |tag| {
            request
                .required(tag)
                .map_err(|_| bad(reason::INCORRECT_INPUT_VALUES))
        };
        let (remote_op, tid, crt, otpk, signature) = (
            field(0x82)?,
            field(0x80)?,
            field(0xA6)?,
            field(0x5F49)?,
            field(0x5F37)?,
        );
        if !crypto::verify_parts_on(
            prepared.dp_pb_curve,
            &prepared.dp_pb_key,
            &[
                remote_op.raw,
                tid.raw,
                crt.raw,
                otpk.raw,
                &prepared.euicc_otpk_tlv,
            ],
            signature.value,
        ) {
            return Err(bad(reason::INVALID_SIGNATURE));
        }
        if remote_op.value != [crate::bpp::REMOTE_OP_INSTALL] {
            return Err(bad(reason::UNSUPPORTED_REMOTE_OPERATION_TYPE));
        }
        if tid.value != session.transaction_id {
            return Err(bad(reason::INVALID_TRANSACTION_ID));
        }
        let crt_field = |tag| {
            crt.required(tag)
                .map(|t| t.value)
                .map_err(|_| bad(reason::UNSUPPORTED_CRT_VALUES))
        };
        let host_id = crt_field(0x84)?;
        if crt_field(0x80)? != [KEY_TYPE_AES]
            || crt_field(0x81)? != [KEY_LENGTH]
            || host_id.is_empty()
            || host_id.len() > 16
        {
            return Err(bad(reason::UNSUPPORTED_CRT_VALUES));
        }
        let shs = prepared
            .one_time
            .agree(otpk.value)
            .ok_or(bad(reason::INCORRECT_INPUT_VALUES))?;
        let keys = derive_session_keys(&shs, host_id, &eid);
        session.loading = Some(Loading {
            scp: Scp03t::new(&keys),
            expect: Expect::ConfigureIsdp,
            metadata: Vec::new(),
            parsed: None,
            package: Vec::new(),
            left: 0,
            bpp_left: 0,
        });
        Ok(())
    }

    /// Installs the profile (or not) and answers the signed Profile Installation Result, which
    /// also waits in the notification list until the LPA has sent it (§3.1.3.3).
    fn finish(&mut self, outcome: Result<Loaded, InstallError>) -> Vec<u8> {
        let Some(session) = self.session.take() else {
            // Nothing to report to: a piece with no session at all.
            return Vec::new();
        };
        let metadata = session.loading.as_ref().and_then(|l| l.parsed.clone());
        let injected = self.faults.install_failure.take();
        let outcome = outcome.and_then(|(package, metadata)| {
            if let Some((bpp_command_id, error_reason)) = injected {
                return Err(fail(bpp_command_id, error_reason));
            }
            let fits = u32::try_from(package.len())
                .is_ok_and(|n| n <= self.faults.free_nvm.unwrap_or(self.free_nvm));
            if !fits || self.profiles.len() >= MAX_PROFILES {
                return Err(fail(
                    command::LOAD_PROFILE_ELEMENTS,
                    reason::INSUFFICIENT_MEMORY,
                ));
            }
            // A card builds the profile from its elements: a package without the MF or a NAA
            // cannot be installed (installFailedDueToPEProcessingError).
            if check_structure(&package).is_err() {
                return Err(fail(
                    command::LOAD_PROFILE_ELEMENTS,
                    reason::PE_PROCESSING_ERROR,
                ));
            }
            if !names_only(&package, &metadata.iccid) {
                return Err(fail(command::LOAD_PROFILE_ELEMENTS, reason::DATA_MISMATCH));
            }
            Ok((package, metadata))
        });
        let result = match outcome {
            Ok((package, metadata)) => {
                let aid = self.next_aid();
                self.profiles.push(InstalledProfile {
                    iccid: metadata.iccid,
                    aid,
                    enabled: false,
                    metadata,
                    package,
                    nickname: None,
                    chain: session.chain,
                });
                FinalResult::Success {
                    aid: aid.to_vec(),
                    sima_response: SIMA_OK.to_vec(),
                }
            }
            Err(e) => FinalResult::Error {
                bpp_command_id: e.bpp_command_id,
                error_reason: e.error_reason,
            },
        };
        let notification = NotificationMetadata {
            seq: self.take_seq(),
            event: event::INSTALL,
            address: session.server_address.clone(),
            iccid: metadata.map(|m| m.iccid),
        };
        let data = ProfileInstallationResult::encode_data(
            &session.transaction_id,
            &notification,
            (!self.faults.omit_pir_smdp_oid).then_some(&session.smdp_oid[..]),
            &result,
        );
        let mut signature = self.chain(session.chain).key.sign(&data);
        if self.faults.bad_pir_signature {
            signature[9] ^= 1;
        }
        let der = ProfileInstallationResult::encode(&data, &signature);
        self.push_notification(Notification {
            metadata: notification,
            der: der.clone(),
        });
        der
    }
}

/// Whether the package names the metadata's ICCID wherever it names one: in its header (plain
/// digits) and, when it has an MF element, in EF.ICCID (swapped digits). Anything else is the
/// data mismatch of §5.7.6 (`installFailedDueToDataMismatch`).
fn names_only(package: &[u8], iccid: &Iccid) -> bool {
    match iccids_in(package) {
        Ok((Some(header), ef)) => {
            &header == iccid && ef.is_none_or(|ef| ef.as_ref() == Some(iccid))
        }
        _ => false,
    }
}
