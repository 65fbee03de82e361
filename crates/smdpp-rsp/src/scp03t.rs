//! SCP03t, the protection of the Bound Profile Package's TLVs (SGP.22 §2.5.3-2.5.5): AES-128
//! CBC encryption with an ICV made from a block counter, and AES-CMAC over a chaining value.
//!
//! SGP.22 v2.2 fixes AES-128 CBC with C-MAC, the `80 00…` padding (always added), the counter
//! starting at `00…01` and advancing with every `86`, `87` or `88` TLV (also the MAC-only `88`,
//! §2.5.5), and segments of at most 1020 bytes; it refers to SGP.02 §4.1.3.3 for the rest,
//! which is GlobalPlatform SCP03: ICV = AES(S-ENC, counter as a 16-byte block); C-MAC =
//! AES-CMAC(S-MAC, MAC chaining value ‖ tag ‖ length ‖ data), the length counting the 8-byte
//! MAC, of which the TLV carries the first 8 bytes while the next chaining value is all 16.
//! Both ends of this crate use this module; the vectors in the tests were computed with Python's
//! `cryptography` (`tests/vectors/scp03t.py`).

use aes::cipher::{
    block_padding::Iso7816, BlockCipherEncrypt, BlockModeDecrypt, BlockModeEncrypt, InnerIvInit,
    KeyInit,
};
use aes::Aes128;
use cmac::{Cmac, Mac};

use super::crypto::{same, SessionKeys};
use super::tlv;

/// The largest segment SGP.22 allows, tag, length and MAC included (§2.5.5).
pub const MAX_SEGMENT: usize = 1020;
/// The most plaintext one `86` segment holds: 1020 − 4 (tag, 3-byte length) − 8 (MAC) = 1008
/// bytes of ciphertext, of which padding takes at least one.
pub const MAX_SEGMENT_PLAINTEXT: usize = 1007;
/// The most clear data one MAC-only `88` TLV holds.
pub const MAX_MAC_ONLY: usize = 1008;

/// Why a protected TLV was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Scp03tError {
    /// The MAC does not verify (`scp03tSecurityError`).
    #[error("the MAC does not verify")]
    Mac,
    /// Wrong length or padding (`scp03tStructureError`).
    #[error("the protected data is malformed")]
    Structure,
}

/// One direction of an SCP03t session: keys (expanded once), the block counter and the MAC
/// chaining value.
pub struct Scp03t {
    enc: Aes128,
    mac: Cmac<Aes128>,
    counter: u128,
    chaining: [u8; 16],
}

impl std::fmt::Debug for Scp03t {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scp03t")
            .field("counter", &self.counter)
            .finish_non_exhaustive()
    }
}

impl Scp03t {
    /// A session starting with `keys`, counter 1.
    pub fn new(keys: &SessionKeys) -> Self {
        Scp03t {
            enc: Aes128::new(&keys.enc.into()),
            mac: <Cmac<Aes128> as KeyInit>::new(&keys.mac.into()),
            counter: 1,
            chaining: keys.mac_chaining,
        }
    }

    /// Switches to Profile Protection Keys (§2.5.3, ReplaceSessionKeys): new keys and chaining
    /// value, and the counter back at 1.
    pub fn replace_keys(&mut self, enc: [u8; 16], mac: [u8; 16], chaining: [u8; 16]) {
        self.enc = Aes128::new(&enc.into());
        self.mac = <Cmac<Aes128> as KeyInit>::new(&mac.into());
        self.chaining = chaining;
        self.counter = 1;
    }

    fn icv(&self) -> [u8; 16] {
        let mut block = self.counter.to_be_bytes().into();
        self.enc.encrypt_block(&mut block);
        block.into()
    }

    /// The full CMAC over the chaining value, `header` and `body`; it becomes the next chaining
    /// value.
    fn cmac(&self, header: &[u8], body: &[u8]) -> [u8; 16] {
        let mut mac = self.mac.clone();
        mac.update(&self.chaining);
        mac.update(header);
        mac.update(body);
        mac.finalize().into_bytes().into()
    }

    /// `plaintext` encrypted and MACed as one `tag` TLV (`86`, `87`).
    pub fn encrypt(&mut self, tag: u8, plaintext: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(plaintext.len() + 32);
        self.encrypt_into(&mut out, tag, plaintext);
        out
    }

    /// [`Scp03t::encrypt`], appended to `out` (no copy of the data on the way).
    pub fn encrypt_into(&mut self, out: &mut Vec<u8>, tag: u8, plaintext: &[u8]) {
        let padded_len = (plaintext.len() / 16 + 1) * 16;
        let start = out.len();
        tlv::push_tag(out, u32::from(tag));
        tlv::push_length(out, padded_len + 8);
        let body = out.len();
        out.extend_from_slice(plaintext);
        out.resize(body + padded_len, 0);
        let icv = self.icv();
        let encryptor = cbc::Encryptor::<Aes128>::inner_iv_init(self.enc.clone(), &icv.into());
        // The buffer has room for the padding: encryption cannot fail.
        let _ = encryptor.encrypt_padded::<Iso7816>(&mut out[body..], plaintext.len());
        self.counter += 1;
        let full = self.cmac(&out[start..body], &out[body..]);
        self.chaining = full;
        out.extend_from_slice(&full[..8]);
    }

    /// `data` MACed (not encrypted) as one `tag` TLV (`88`); the counter advances all the same.
    pub fn mac_only(&mut self, tag: u8, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(data.len() + 16);
        self.mac_only_into(&mut out, tag, data);
        out
    }

    /// [`Scp03t::mac_only`], appended to `out`.
    pub fn mac_only_into(&mut self, out: &mut Vec<u8>, tag: u8, data: &[u8]) {
        self.counter += 1;
        let start = out.len();
        tlv::push_tag(out, u32::from(tag));
        tlv::push_length(out, data.len() + 8);
        let body = out.len();
        out.extend_from_slice(data);
        let full = self.cmac(&out[start..body], &out[body..]);
        self.chaining = full;
        out.extend_from_slice(&full[..8]);
    }

    /// Checks the MAC of a received TLV (`raw`: tag, length and value as received) and returns
    /// its data without the MAC.
    fn open<'a>(&mut self, raw: &'a [u8]) -> Result<&'a [u8], Scp03tError> {
        let (_, header_len, len) = tlv::read_header(raw).map_err(|_| Scp03tError::Structure)?;
        if len < 8 || header_len + len != raw.len() {
            return Err(Scp03tError::Structure);
        }
        let (header, value) = raw.split_at(header_len);
        let (body, mac) = value.split_at(len - 8);
        let full = self.cmac(header, body);
        if !same(&full[..8], mac) {
            return Err(Scp03tError::Mac);
        }
        self.chaining = full;
        Ok(body)
    }

    /// A received encrypted TLV (`86`, `87`): MAC checked, decrypted, padding removed.
    pub fn decrypt(&mut self, raw: &[u8]) -> Result<Vec<u8>, Scp03tError> {
        let body = self.open(raw)?;
        if body.is_empty() || body.len() % 16 != 0 {
            self.counter += 1;
            return Err(Scp03tError::Structure);
        }
        let icv = self.icv();
        self.counter += 1;
        let mut buf = body.to_vec();
        let decryptor = cbc::Decryptor::<Aes128>::inner_iv_init(self.enc.clone(), &icv.into());
        decryptor
            .decrypt_padded::<Iso7816>(&mut buf)
            .map(<[u8]>::to_vec)
            .map_err(|_| Scp03tError::Structure)
    }

    /// A received MAC-only TLV (`88`): MAC checked; its data.
    pub fn verify(&mut self, raw: &[u8]) -> Result<Vec<u8>, Scp03tError> {
        let body = self.open(raw)?.to_vec();
        self.counter += 1;
        Ok(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::{derive_session_keys, hex_decode};

    fn h(text: &str) -> Vec<u8> {
        hex_decode(&text.replace(' ', "")).unwrap()
    }

    /// Pinned to `tests/vectors/scp03t.py` (Python `cryptography`'s X963KDF, AES and CMAC).
    #[test]
    fn matches_the_independent_vectors() {
        let shs: [u8; 32] = h("0102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F20")
            .try_into()
            .unwrap();
        let eid: [u8; 16] = h("89049032123451234512345678901235").try_into().unwrap();
        let keys = derive_session_keys(&shs, &h("0102030405060708"), &eid);
        assert_eq!(
            keys.mac_chaining.to_vec(),
            h("7A3E200563EE4DB4EBB35BD3A61FE9D5")
        );
        assert_eq!(keys.enc.to_vec(), h("C286D7587D1994E1BEFAAC0B41B97072"));
        assert_eq!(keys.mac.to_vec(), h("2CBB032C8D22FF88735FD1D62CB16CE2"));

        let mut sender = Scp03t::new(&keys);
        let tlv87 = sender.encrypt(0x87, &h("BF2400"));
        assert_eq!(
            tlv87,
            h("87 18 6C5EC9E878991AFA621E580C84BF9743 F988347332B0963B")
        );
        let metadata = h("BF251B5A0A9800103254769810321491044D6F636B920750726F66696C65");
        let tlv88 = sender.mac_only(0x88, &metadata);
        assert_eq!(
            tlv88,
            [h("88 26"), metadata.clone(), h("9D6C5853919E0C35")].concat()
        );
        let tlv86 = sender.encrypt(0x86, &h("A003810101"));
        assert_eq!(
            tlv86,
            h("86 18 8FFE6DB8325E0649496B57321402AF55 FFA1CE588FD72B15")
        );

        let mut receiver = Scp03t::new(&keys);
        assert_eq!(receiver.decrypt(&tlv87).unwrap(), h("BF2400"));
        assert_eq!(receiver.verify(&tlv88).unwrap(), metadata);
        assert_eq!(receiver.decrypt(&tlv86).unwrap(), h("A003810101"));
    }

    #[test]
    fn a_full_segment_is_1020_bytes_and_tampering_is_caught() {
        let keys = derive_session_keys(&[7; 32], b"host", &[0x89; 16]);
        let mut sender = Scp03t::new(&keys);
        let segment = sender.encrypt(0x86, &[0xAA; MAX_SEGMENT_PLAINTEXT]);
        assert_eq!(segment.len(), MAX_SEGMENT);
        let mut tampered = segment.clone();
        tampered[100] ^= 1;
        let mut receiver = Scp03t::new(&keys);
        assert_eq!(receiver.decrypt(&tampered), Err(Scp03tError::Mac));
        let mut receiver = Scp03t::new(&keys);
        assert_eq!(
            receiver.decrypt(&segment).unwrap(),
            vec![0xAA; MAX_SEGMENT_PLAINTEXT]
        );
        assert_eq!(
            receiver.decrypt(&segment),
            Err(Scp03tError::Mac),
            "the chaining moved on"
        );
    }
}
