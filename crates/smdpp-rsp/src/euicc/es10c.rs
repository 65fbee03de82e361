//! ES10c on the card (SGP.22 §5.7.15-5.7.21): the profiles it holds, enabling, disabling and
//! deleting them (each leaving its notification), nicknames, the memory reset.

use super::*;

impl Euicc {
    /// SetNickname (§5.7.21): ok(0), iccidNotFound(1).
    pub(super) fn set_nickname(&mut self, command: &[u8]) -> Vec<u8> {
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
    pub(super) fn memory_reset(&mut self, command: &[u8]) -> Vec<u8> {
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

    pub(super) fn profile_index(&self, identifier: Tlv<'_>) -> Option<usize> {
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
    pub(super) fn set_enabled(&mut self, command: &[u8], enable: bool) -> Vec<u8> {
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
    pub(super) fn delete_profile(&mut self, command: &[u8]) -> Vec<u8> {
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
    pub(super) fn profile_info_list(&self) -> Vec<u8> {
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
}
