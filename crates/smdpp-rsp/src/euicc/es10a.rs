//! ES10a on the card (SGP.22 §5.7.3, §5.7.4): the addresses it is configured with, the default
//! SM-DP+ an LPA may set.

use super::*;

impl Euicc {
    /// GetEuiccConfiguredAddresses (§5.7.3): the default SM-DP+ when one is set, the root SM-DS.
    pub(super) fn configured_addresses(&self) -> Vec<u8> {
        let mut parts = Vec::new();
        if let Some(dp) = &self.default_dp {
            parts.push(tlv::encode(0x80, dp.as_bytes()));
        }
        parts.push(tlv::encode(0x81, self.root_ds.as_bytes()));
        let refs: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
        tlv::constructed(0xBF3C, &refs)
    }

    /// Configures the root SM-DS address the card answers in GetEuiccConfiguredAddresses
    /// (a test card pointed at a local SM-DS; set at the factory on a real one).
    pub fn set_root_ds_address(&mut self, address: &str) {
        self.root_ds = address.to_owned();
    }

    /// The default SM-DP+ address an LPA set (SetDefaultDpAddress, §5.7.4), if any.
    pub fn default_dp_address(&self) -> Option<&str> {
        self.default_dp.as_deref()
    }

    /// The root SM-DS address the card is configured with.
    pub fn root_ds_address(&self) -> &str {
        &self.root_ds
    }

    /// SetDefaultDpAddress (§5.7.4): an empty address removes it.
    pub(super) fn set_default_dp(&mut self, command: &[u8]) -> Vec<u8> {
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
}
