//! The card's APDU interface (SGP.22 §5.7.1-5.7.2, ISO/IEC 7816-4, GlobalPlatform): what an LPA
//! sends through a modem or a card reader, or through lpac's `stdio` driver. Every ES10
//! function is one DER object carried in STORE DATA blocks (`INS E2`, `P1` `11` for more blocks,
//! `91` for the last); an answer longer than 256 bytes is fetched with GET RESPONSE (`61 xx`);
//! function errors are answers, not status words.

use super::Euicc;
use crate::tlv;

/// The ISD-R's AID, which the LPA selects (lpac's default, as on every eUICC; SGP.22 §5.7.1 refers to it).
pub const ISD_R_AID: [u8; 16] = [
    0xA0, 0x00, 0x00, 0x05, 0x59, 0x10, 0x10, 0xFF, 0xFF, 0xFF, 0xFF, 0x89, 0x00, 0x00, 0x01, 0x00,
];

/// Largest ES10 request assembled from STORE DATA blocks (a Bound Profile Package piece is at
/// most a little over 1020 bytes; metadata with icons can be bigger).
const MAX_REQUEST: usize = 64 * 1024;

/// Status words.
mod sw {
    pub(super) const OK: [u8; 2] = [0x90, 0x00];
    pub(super) const WRONG_DATA: [u8; 2] = [0x6A, 0x80];
    pub(super) const NOT_FOUND: [u8; 2] = [0x6A, 0x82];
    pub(super) const REFERENCED_DATA_NOT_FOUND: [u8; 2] = [0x6A, 0x88];
    pub(super) const WRONG_LENGTH: [u8; 2] = [0x67, 0x00];
    pub(super) const CONDITIONS: [u8; 2] = [0x69, 0x85];
    pub(super) const INS_NOT_SUPPORTED: [u8; 2] = [0x6D, 0x00];
    pub(super) const CLA_NOT_SUPPORTED: [u8; 2] = [0x6E, 0x00];
    pub(super) const WRONG_P1P2: [u8; 2] = [0x6B, 0x00];
    pub(super) const TECHNICAL_PROBLEM: [u8; 2] = [0x6F, 0x00];
}

/// A software eUICC behind an APDU interface: logical channels 0-3, the ISD-R selected, STORE
/// DATA assembly and GET RESPONSE chaining.
#[derive(Debug)]
pub struct ApduCard {
    euicc: Euicc,
    /// Channels open (0 is always).
    open: [bool; 4],
    /// STORE DATA blocks received so far, and the next block number.
    request: Vec<u8>,
    next_block: u8,
    /// What GET RESPONSE has yet to deliver.
    pending: Vec<u8>,
}

impl ApduCard {
    /// The card `euicc`, with only the basic channel open.
    pub fn new(euicc: Euicc) -> Self {
        ApduCard {
            euicc,
            open: [true, false, false, false],
            request: Vec::new(),
            next_block: 0,
            pending: Vec::new(),
        }
    }

    /// The eUICC.
    pub fn euicc(&self) -> &Euicc {
        &self.euicc
    }

    /// The eUICC, to change.
    pub fn euicc_mut(&mut self) -> &mut Euicc {
        &mut self.euicc
    }

    /// Gives the eUICC back.
    pub fn into_euicc(self) -> Euicc {
        self.euicc
    }

    /// Opens a logical channel to the ISD-R (what lpac's `logic_channel_open` asks of a
    /// driver): its number, or `None` when `aid` is not the ISD-R's or no channel is free.
    pub fn open_channel(&mut self, aid: &[u8]) -> Option<u8> {
        if aid != ISD_R_AID {
            return None;
        }
        let free = (1..4).find(|&c| !self.open[c])?;
        self.open[free] = true;
        Some(free as u8)
    }

    /// Closes a logical channel.
    pub fn close_channel(&mut self, channel: u8) {
        if let Some(open) = self
            .open
            .get_mut(usize::from(channel))
            .filter(|_| channel > 0)
        {
            *open = false;
        }
    }

    /// Answers one command APDU with its response APDU (data ‖ SW1 SW2).
    pub fn transmit(&mut self, apdu: &[u8]) -> Vec<u8> {
        let [cla, ins, p1, p2, rest @ ..] = apdu else {
            return sw::WRONG_LENGTH.to_vec();
        };
        // Lc and data (case 3 or 4; lpac sends no Le), or nothing (case 1), or Le only (case 2).
        let data: &[u8] = match rest {
            [] | [_] => &[],
            [lc, tail @ ..] if usize::from(*lc) <= tail.len() => &tail[..usize::from(*lc)],
            _ => return sw::WRONG_LENGTH.to_vec(),
        };
        let channel = match cla {
            0x00..=0x03 | 0x80..=0x83 => cla & 0x03,
            0x40..=0x4F | 0xC0..=0xCF => 4 + (cla & 0x0F),
            _ => return sw::CLA_NOT_SUPPORTED.to_vec(),
        };
        if channel >= 4 || !self.open[usize::from(channel)] {
            return sw::CLA_NOT_SUPPORTED.to_vec();
        }
        match ins {
            0xE2 => self.store_data(*p1, *p2, data),
            0xC0 => self.get_response(rest.last().copied().unwrap_or(0)),
            0x70 => self.manage_channel(*p1, *p2),
            0xA4 => self.select(data),
            _ => sw::INS_NOT_SUPPORTED.to_vec(),
        }
    }

    fn manage_channel(&mut self, p1: u8, p2: u8) -> Vec<u8> {
        match p1 {
            // Open: the card chooses.
            0x00 => match (1..4).find(|&c| !self.open[c]) {
                Some(c) => {
                    self.open[c] = true;
                    [&[c as u8][..], &sw::OK].concat()
                }
                None => sw::CONDITIONS.to_vec(),
            },
            0x80 => {
                self.close_channel(p2);
                sw::OK.to_vec()
            }
            _ => sw::WRONG_P1P2.to_vec(),
        }
    }

    fn select(&mut self, aid: &[u8]) -> Vec<u8> {
        if aid != ISD_R_AID {
            return sw::NOT_FOUND.to_vec();
        }
        // FCI with the ISDRProprietaryApplicationTemplate (§5.7.1): the SVN.
        let proprietary = tlv::encode(0xE0, &tlv::encode(0x82, &crate::es10b::SVN));
        let fci = tlv::constructed(
            0x6F,
            &[
                &tlv::encode(0x84, &ISD_R_AID),
                &tlv::encode(0xA5, &proprietary),
            ],
        );
        [fci, sw::OK.to_vec()].concat()
    }

    /// One STORE DATA block; the last one runs the ES10 function.
    fn store_data(&mut self, p1: u8, p2: u8, data: &[u8]) -> Vec<u8> {
        if p2 == 0 {
            // Block 0 starts a new command, whatever was left of another.
            self.request.clear();
            self.next_block = 0;
        }
        if p2 != self.next_block {
            self.request.clear();
            self.next_block = 0;
            return sw::WRONG_P1P2.to_vec();
        }
        if self.request.len() + data.len() > MAX_REQUEST {
            self.request.clear();
            self.next_block = 0;
            return sw::WRONG_LENGTH.to_vec();
        }
        self.request.extend_from_slice(data);
        self.next_block = self.next_block.wrapping_add(1);
        if p1 & 0x80 == 0 {
            return sw::OK.to_vec();
        }
        let request = std::mem::take(&mut self.request);
        self.next_block = 0;
        if tlv::read_exact(&request).is_err() && !is_bpp_piece(&request) {
            return sw::WRONG_DATA.to_vec();
        }
        if tlv::read_header(&request).is_ok_and(|(tag, _, _)| tag == 0x86)
            && std::mem::take(&mut self.euicc.faults.interrupt_load)
        {
            // The load breaks off at its first profile element segment, the session kept, as
            // when the link to a card fails mid-load: the LPA then cancels (§3.1.3.1).
            return sw::TECHNICAL_PROBLEM.to_vec();
        }
        if !self.euicc.expects(&request) {
            // A piece of a Bound Profile Package without the session it belongs to (§5.7.6).
            return sw::REFERENCED_DATA_NOT_FOUND.to_vec();
        }
        let answer = self.euicc.transmit(&request);
        if answer.is_empty() && !self.euicc.takes(&request) {
            return sw::REFERENCED_DATA_NOT_FOUND.to_vec();
        }
        self.respond(answer)
    }

    /// Answers `data`: at once when it fits in a short APDU, else announced with `61 xx`.
    fn respond(&mut self, data: Vec<u8>) -> Vec<u8> {
        if data.len() <= 256 {
            self.pending.clear();
            return [data, sw::OK.to_vec()].concat();
        }
        self.pending = data;
        vec![0x61, (self.pending.len().min(256) % 256) as u8]
    }

    fn get_response(&mut self, le: u8) -> Vec<u8> {
        if self.pending.is_empty() {
            return sw::CONDITIONS.to_vec();
        }
        let want = if le == 0 { 256 } else { usize::from(le) };
        let n = want.min(self.pending.len());
        let slice: Vec<u8> = self.pending.drain(..n).collect();
        let status = if self.pending.is_empty() {
            sw::OK.to_vec()
        } else {
            vec![0x61, (self.pending.len().min(256) % 256) as u8]
        };
        [slice, status].concat()
    }
}

/// The pieces of a Bound Profile Package that are not complete data objects (§2.5.5): `BF36`'s
/// tag and the whole package's length followed by `BF23` only, and the tag and length of `A1`
/// and of `A3` alone.
fn is_bpp_piece(request: &[u8]) -> bool {
    tlv::read_header(request).is_ok_and(|(tag, header, _)| {
        tag == 0xBF36 || (matches!(tag, 0xA1 | 0xA3) && header == request.len())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sample eUICC of a PKI made once for the tests of this module.
    fn card() -> ApduCard {
        use crate::pki::{EuiccCredentials, GsmaPki, SAMPLE_EID};
        type Files = (Vec<u8>, String, Vec<u8>, Vec<u8>);
        static MADE: std::sync::OnceLock<Files> = std::sync::OnceLock::new();
        let (certificate, key, eum, ci) = MADE.get_or_init(|| {
            let dir = std::env::temp_dir().join(format!("smdpp-apdu-{}", std::process::id()));
            let pki = GsmaPki::new(&dir);
            pki.ensure(&[], SAMPLE_EID).unwrap();
            let c = pki.sample_euicc().unwrap();
            let _ = std::fs::remove_dir_all(&dir);
            (c.certificate, c.key.to_pem(), c.eum, c.ci)
        });
        ApduCard::new(
            Euicc::new(EuiccCredentials {
                certificate: certificate.clone(),
                key: crate::crypto::SigningKey::from_pem(key).unwrap(),
                eum: eum.clone(),
                ci: ci.clone(),
            })
            .unwrap(),
        )
    }

    /// An ES10 request as lpac sends it: STORE DATA blocks of at most `mss` bytes on `channel`,
    /// GET RESPONSE while the card says `61 xx`.
    fn es10(card: &mut ApduCard, channel: u8, request: &[u8], mss: usize) -> (Vec<u8>, [u8; 2]) {
        let blocks: Vec<&[u8]> = request.chunks(mss).collect();
        let mut answer = Vec::new();
        let mut last = [0, 0];
        for (i, block) in blocks.iter().enumerate() {
            let p1 = if i + 1 == blocks.len() { 0x91 } else { 0x11 };
            let apdu = [
                &[0x80 | channel, 0xE2, p1, i as u8, block.len() as u8][..],
                block,
            ]
            .concat();
            let r = card.transmit(&apdu);
            let (data, sw) = r.split_at(r.len() - 2);
            answer.extend_from_slice(data);
            last = [sw[0], sw[1]];
        }
        while last[0] == 0x61 {
            let r = card.transmit(&[0x80 | channel, 0xC0, 0x00, 0x00, last[1]]);
            let (data, sw) = r.split_at(r.len() - 2);
            answer.extend_from_slice(data);
            last = [sw[0], sw[1]];
        }
        (answer, last)
    }

    #[test]
    fn es10_over_store_data_and_get_response() {
        let mut card = card();
        assert_eq!(
            card.transmit(&[0x81, 0xE2, 0x91, 0x00, 0x03, 0xBF, 0x2E, 0x00]),
            sw::CLA_NOT_SUPPORTED
        );
        assert!(card.open_channel(&[1, 2, 3]).is_none());
        let channel = card.open_channel(&ISD_R_AID).unwrap();
        assert_eq!(channel, 1);
        let (eid, sw) = es10(
            &mut card,
            channel,
            &[0xBF, 0x3E, 0x03, 0x5C, 0x01, 0x5A],
            120,
        );
        assert_eq!(sw, sw::OK);
        assert_eq!(crate::crypto::hex_upper(&eid[5..]), crate::pki::SAMPLE_EID);
        // EUICCInfo2 is longer than a short answer with this MSS? Either way it arrives whole.
        let (info2, sw) = es10(&mut card, channel, &[0xBF, 0x22, 0x00], 6);
        assert_eq!(sw, sw::OK);
        assert!(tlv::read_tagged(&info2, 0xBF22).is_ok());
        // A long answer comes in 256-byte slices.
        card.respond(vec![7; 600]);
        let r = card.transmit(&[0x81, 0xC0, 0x00, 0x00, 0x00]);
        assert_eq!(r.len(), 258);
        assert_eq!(r[256..], [0x61, 0x00], "344 left: 256 more (00) to come");
        let r = card.transmit(&[0x81, 0xC0, 0x00, 0x00, 0x00]);
        assert_eq!(r[256..], [0x61, 88]);
        let r = card.transmit(&[0x81, 0xC0, 0x00, 0x00, 88]);
        assert_eq!(r.len(), 90);
        assert_eq!(r[88..], sw::OK);
        // A piece of a Bound Profile Package with no download going on.
        assert_eq!(
            es10(&mut card, channel, &[0xA0, 0x03, 0x87, 0x01, 0x00], 120).1,
            sw::REFERENCED_DATA_NOT_FOUND
        );
        assert_eq!(
            es10(&mut card, channel, &[0xA3, 0x82, 0x01, 0x00], 120).1,
            sw::REFERENCED_DATA_NOT_FOUND
        );
        // GetRAT: an empty RulesAuthorisationTable; a memory reset with nothing to delete.
        assert_eq!(
            es10(&mut card, channel, &[0xBF, 0x43, 0x00], 120).0,
            [0xBF, 0x43, 0x02, 0xA0, 0x00]
        );
        assert_eq!(
            es10(
                &mut card,
                channel,
                &[0xBF, 0x34, 0x04, 0x82, 0x02, 0x05, 0xE0],
                120
            )
            .0,
            [0xBF, 0x34, 0x03, 0x80, 0x01, 0x01]
        );
        // Garbage and unknown functions.
        assert_eq!(
            es10(&mut card, channel, &[0x30, 0x05, 0x01], 120).1,
            sw::WRONG_DATA
        );
        assert_eq!(
            es10(&mut card, channel, &[0xBF, 0x7F, 0x00], 120).1,
            sw::REFERENCED_DATA_NOT_FOUND
        );
        assert_eq!(card.transmit(&[0x81, 0x12, 0, 0]), sw::INS_NOT_SUPPORTED);
        assert_eq!(card.transmit(&[0x81]), sw::WRONG_LENGTH);
        card.close_channel(channel);
        assert_eq!(
            card.transmit(&[0x81, 0xE2, 0x91, 0x00, 0x03, 0xBF, 0x2E, 0x00]),
            sw::CLA_NOT_SUPPORTED
        );
    }

    proptest::proptest! {
        #[test]
        fn any_apdu_gets_a_status_word(apdu in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
            let mut card = card();
            let _ = card.open_channel(&ISD_R_AID);
            let r = card.transmit(&apdu);
            proptest::prop_assert!(r.len() >= 2);
        }
    }
}
