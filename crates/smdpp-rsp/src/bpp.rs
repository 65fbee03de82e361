//! The Bound Profile Package (SGP.22 §2.5.4), built by the SM-DP+ at GetBoundProfilePackage
//! and cut by the LPA into the ES10b LoadBoundProfilePackage commands the eUICC receives
//! (§2.5.5):
//!
//! ```text
//! BF36  BoundProfilePackage
//!   BF23  InitialiseSecureChannelRequest (clear, signed with SK.DPpb)
//!     82 01 01   remoteOpId installBoundProfilePackage
//!     80 tid     transactionId
//!     A6 { 80 01 88, 81 01 10, 84 hostId }   controlRefTemplate
//!     5F49 otPK.DP.ECKA
//!     5F37 smdpSign
//!   A0 { 87 … }  ConfigureISDP, encrypted and MACed
//!   A1 { 88 … }  StoreMetadata, MACed, in pieces of at most 1008 bytes
//!   A2 { 87 }    ReplaceSessionKeys (BF26), encrypted and MACed: only with Profile
//!                Protection Keys
//!   A3 { 86 … }  the profile package, encrypted and MACed, 1007 bytes a segment (1020 with
//!                tag, length and MAC)
//! ```
//!
//! §2.5.3 leaves the package's protection to the SM-DP+: the session keys, or random keys of
//! the profile (PPK-ENC, PPK-MAC and an initial MAC chaining value) that `A2` hands to the
//! eUICC under the session keys, after which the counter starts again at `00…01` (§2.5.3,
//! §5.5.4). With the second, the `A3` part depends on the profile's keys only, not on the eUICC.

use super::crypto::{SessionKeys, SigningKey, KEY_LENGTH, KEY_TYPE_AES};
use super::scp03t::{Scp03t, MAX_MAC_ONLY, MAX_SEGMENT_PLAINTEXT};
use super::tlv;

/// `remoteOpId installBoundProfilePackage(1)`.
pub const REMOTE_OP_INSTALL: u8 = 1;

/// What binds a package to one eUICC and session.
pub struct Binding<'a> {
    /// The transactionId.
    pub transaction_id: &'a [u8],
    /// The SM-DP+'s hostId (1 to 16 bytes).
    pub host_id: &'a [u8],
    /// otPK.DP.ECKA, uncompressed.
    pub smdp_otpk: &'a [u8; 65],
    /// The eUICC's `euiccOtpk` data object (`5F49 41 …`) as received in `euiccSigned2`.
    pub euicc_otpk_tlv: &'a [u8],
    /// The session keys (Annex G).
    pub keys: &'a SessionKeys,
    /// SK.DPpb.ECDSA.
    pub signer: &'a SigningKey,
}

/// The control reference template (`A6`).
pub fn control_reference_template(host_id: &[u8]) -> Vec<u8> {
    tlv::constructed(
        0xA6,
        &[
            &tlv::encode(0x80, &[KEY_TYPE_AES]),
            &tlv::encode(0x81, &[KEY_LENGTH]),
            &tlv::encode(0x84, host_id),
        ],
    )
}

/// What `smdpSign` covers (§5.5.1 / §2.5.4): remoteOpId, transactionId, controlRefTemplate,
/// smdpOtpk as they appear in `BF23`, then the eUICC's `euiccOtpk` data object.
pub fn smdp_sign_input(
    remote_op: &[u8],
    tid: &[u8],
    crt: &[u8],
    smdp_otpk: &[u8],
    euicc_otpk: &[u8],
) -> Vec<u8> {
    [remote_op, tid, crt, smdp_otpk, euicc_otpk].concat()
}

/// `BF23 InitialiseSecureChannelRequest`.
fn initialise_secure_channel(binding: &Binding<'_>) -> Vec<u8> {
    let remote_op = tlv::encode(0x82, &[REMOTE_OP_INSTALL]);
    let tid = tlv::encode(0x80, binding.transaction_id);
    let crt = control_reference_template(binding.host_id);
    let otpk = tlv::encode(0x5F49, binding.smdp_otpk);
    let signature = binding.signer.sign(&smdp_sign_input(
        &remote_op,
        &tid,
        &crt,
        &otpk,
        binding.euicc_otpk_tlv,
    ));
    tlv::constructed(
        0xBF23,
        &[
            &remote_op,
            &tid,
            &crt,
            &otpk,
            &tlv::encode(0x5F37, &signature),
        ],
    )
}

/// The minimal `ConfigureISDPRequest` (`BF24`, no DP proprietary data).
pub const CONFIGURE_ISDP: [u8; 3] = [0xBF, 0x24, 0x00];

/// `ReplaceSessionKeysRequest` (`BF26`, §5.5.4): `80` the initial MAC chaining value, `81`
/// PPK-ENC, `82` PPK-MAC (Annex H, automatic tags).
pub fn replace_session_keys(ppk: &SessionKeys) -> Vec<u8> {
    tlv::constructed(
        0xBF26,
        &[
            &tlv::encode(0x80, &ppk.mac_chaining),
            &tlv::encode(0x81, &ppk.enc),
            &tlv::encode(0x82, &ppk.mac),
        ],
    )
}

/// Builds the Bound Profile Package for `package` with `metadata` (`BF25`) under `binding`;
/// with `ppk`, the package is protected with those Profile Protection Keys, handed over by
/// ReplaceSessionKeys (`A2`), instead of the session keys.
pub fn build(
    binding: &Binding<'_>,
    metadata: &[u8],
    package: &[u8],
    ppk: Option<&SessionKeys>,
) -> Vec<u8> {
    let mut scp = Scp03t::new(binding.keys);
    let configure = scp.encrypt(0x87, &CONFIGURE_ISDP);
    let mut store = Vec::with_capacity(metadata.len() + metadata.len() / MAX_MAC_ONLY * 12 + 12);
    for piece in metadata.chunks(MAX_MAC_ONLY) {
        scp.mac_only_into(&mut store, 0x88, piece);
    }
    let replace = ppk.map(|ppk| {
        let request = scp.encrypt(0x87, &replace_session_keys(ppk));
        scp = Scp03t::new(ppk);
        tlv::encode(0xA2, &request)
    });
    let mut segments =
        Vec::with_capacity(package.len() + package.len() / MAX_SEGMENT_PLAINTEXT * 13 + 29);
    for piece in package.chunks(MAX_SEGMENT_PLAINTEXT) {
        scp.encrypt_into(&mut segments, 0x86, piece);
    }
    let head = initialise_secure_channel(binding);
    let configure = tlv::encode(0xA0, &configure);
    let store = tlv::encode(0xA1, &store);
    let segments = tlv::encode(0xA3, &segments);
    let mut parts: Vec<&[u8]> = vec![&head, &configure, &store];
    if let Some(replace) = &replace {
        parts.push(replace);
    }
    parts.push(&segments);
    tlv::constructed(0xBF36, &parts)
}

/// Cuts a Bound Profile Package into the ES10b commands of LoadBoundProfilePackage, as the LPA
/// does (§2.5.5): `BF36` with the whole length plus `BF23`; the whole `A0`; `A1`'s tag and
/// length, then each `88`; the whole `A2` if present; `A3`'s tag and length, then each `86`.
pub fn es10_commands(bpp: &[u8]) -> Result<Vec<Vec<u8>>, tlv::TlvError> {
    let outer = tlv::read_tagged(bpp, 0xBF36)?;
    let header_len = outer.raw.len() - outer.value.len();
    let parts = outer.children()?;
    let mut commands = Vec::new();
    let mut parts = parts.into_iter();
    let first = parts
        .next()
        .ok_or(tlv::TlvError::Missing {
            parent: 0xBF36,
            missing: 0xBF23,
        })?
        .expect(0xBF23)?;
    commands.push([&bpp[..header_len], first.raw].concat());
    for part in parts {
        match part.tag {
            0xA0 | 0xA2 => commands.push(part.raw.to_vec()),
            0xA1 | 0xA3 => {
                commands.push(part.raw[..part.raw.len() - part.value.len()].to_vec());
                for inner in part.children()? {
                    commands.push(inner.raw.to_vec());
                }
            }
            other => {
                return Err(tlv::TlvError::UnexpectedTag {
                    expected: 0xA3,
                    found: other,
                })
            }
        }
    }
    Ok(commands)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::{derive_session_keys, OneTimeKey};
    use crate::scp03t::MAX_SEGMENT;

    #[test]
    fn every_segment_is_at_most_1020_bytes_and_the_pieces_rebuild_the_package() {
        let keys = derive_session_keys(&[3; 32], b"smdpp", &[0x89; 16]);
        let signer = SigningKey::generate();
        let (dp, euicc) = (OneTimeKey::generate(), OneTimeKey::generate());
        let euicc_tlv = tlv::encode(0x5F49, euicc.public_key());
        let binding = Binding {
            transaction_id: &[1; 16],
            host_id: b"smdpp",
            smdp_otpk: dp.public_key(),
            euicc_otpk_tlv: &euicc_tlv,
            keys: &keys,
            signer: &signer,
        };
        let metadata = vec![0x42; 2500];
        let package = vec![0x17; 20_000];
        let bpp = build(&binding, &metadata, &package, None);
        let commands = es10_commands(&bpp).unwrap();
        let segments: Vec<&Vec<u8>> = commands.iter().filter(|c| c[0] == 0x86).collect();
        assert_eq!(segments.len(), 20_000usize.div_ceil(MAX_SEGMENT_PLAINTEXT));
        assert!(segments.iter().all(|s| s.len() <= MAX_SEGMENT));
        assert_eq!(
            segments[0].len(),
            MAX_SEGMENT,
            "full segments use the whole 1020 bytes"
        );
        assert_eq!(commands.iter().filter(|c| c[0] == 0x88).count(), 3);
        assert!(commands
            .iter()
            .filter(|c| c[0] == 0x88)
            .all(|c| c.len() <= MAX_SEGMENT));
        // The commands are the package's bytes in order, the first carrying BF36's header.
        assert_eq!(commands.concat(), bpp);
        // The eUICC side takes them apart with the same keys.
        let mut scp = Scp03t::new(&keys);
        assert_eq!(scp.decrypt(&commands[1][2..]).unwrap(), CONFIGURE_ISDP);
        let mut stored = Vec::new();
        let mut clear = Vec::new();
        for c in &commands[2..] {
            match c[0] {
                0x88 => stored.extend(scp.verify(c).unwrap()),
                0x86 => clear.extend(scp.decrypt(c).unwrap()),
                _ => {}
            }
        }
        assert_eq!(stored, metadata);
        assert_eq!(clear, package);
    }

    /// With Profile Protection Keys: `A2` carries ReplaceSessionKeys under the session keys,
    /// after which `A3` is protected with the PPKs, the counter back at 1 (§2.5.3, §5.5.4); so
    /// `A3` is the same whatever the session keys are, and differs with other PPKs.
    #[test]
    fn profile_protection_keys_protect_the_package_apart_from_the_session() {
        let signer = SigningKey::generate();
        let (dp, euicc) = (OneTimeKey::generate(), OneTimeKey::generate());
        let euicc_tlv = tlv::encode(0x5F49, euicc.public_key());
        let ppk = SessionKeys::random();
        let package = vec![0x17; 3000];
        let bpp_with = |keys: &SessionKeys, ppk: &SessionKeys| {
            let binding = Binding {
                transaction_id: &[1; 16],
                host_id: b"smdpp",
                smdp_otpk: dp.public_key(),
                euicc_otpk_tlv: &euicc_tlv,
                keys,
                signer: &signer,
            };
            build(&binding, &[0x42; 40], &package, Some(ppk))
        };
        let keys = derive_session_keys(&[3; 32], b"smdpp", &[0x89; 16]);
        let commands = es10_commands(&bpp_with(&keys, &ppk)).unwrap();
        let a2 = commands.iter().find(|c| c[0] == 0xA2).expect("an A2 part");
        let mut scp = Scp03t::new(&keys);
        scp.decrypt(&commands[1][2..]).unwrap();
        scp.verify(commands.iter().find(|c| c[0] == 0x88).unwrap())
            .unwrap();
        let request = scp.decrypt(&a2[2..]).unwrap();
        assert_eq!(request, replace_session_keys(&ppk));
        let mut scp = Scp03t::new(&ppk);
        let clear: Vec<u8> = commands
            .iter()
            .filter(|c| c[0] == 0x86)
            .flat_map(|c| scp.decrypt(c).unwrap())
            .collect();
        assert_eq!(clear, package);
        let a3 = |bpp: &[u8]| {
            let outer = tlv::read_tagged(bpp, 0xBF36).unwrap();
            outer.required(0xA3).unwrap().raw.to_vec()
        };
        let other_keys = derive_session_keys(&[4; 32], b"smdpp", &[0x89; 16]);
        assert_eq!(a3(&bpp_with(&keys, &ppk)), a3(&bpp_with(&other_keys, &ppk)));
        assert_ne!(
            a3(&bpp_with(&keys, &ppk)),
            a3(&bpp_with(&keys, &SessionKeys::random()))
        );
    }
}
