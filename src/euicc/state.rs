//! What a software eUICC keeps between runs (a card keeps its profiles when the phone is off):
//! installed profiles, pending notifications, counters, the default SM-DP+ address, as JSON.
//! Keys and certificates are not in it: they come from the PKI the card was made with.

use serde::{Deserialize, Serialize};

use super::{Euicc, InstalledProfile, Notification};
use crate::rsp::crypto;
use crate::rsp::message::{PendingNotification, ProfileMetadata};

/// The version of the state file's format.
const VERSION: u32 = 1;

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Saved {
    version: u32,
    eid: String,
    next_seq: u64,
    next_aid: u32,
    #[serde(default)]
    default_dp: Option<String>,
    profiles: Vec<SavedProfile>,
    /// The DER of each pending notification, hex.
    notifications: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SavedProfile {
    iccid: String,
    aid: String,
    enabled: bool,
    #[serde(default)]
    nickname: Option<String>,
    /// The Profile Metadata (`BF25`), hex.
    metadata: String,
    /// The profile package, base64.
    package: String,
}

/// Why a state file was refused.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// Not JSON of this format.
    #[error("not a software eUICC state: {0}")]
    Format(String),
    /// Of another card.
    #[error("the state is of eUICC {found}, not of {expected}")]
    OtherCard {
        /// The card's EID.
        expected: String,
        /// The state's.
        found: String,
    },
}

impl Euicc {
    /// The card's state as JSON.
    pub fn save_state(&self) -> String {
        let saved = Saved {
            version: VERSION,
            eid: self.eid(),
            next_seq: self.next_seq,
            next_aid: self.next_aid,
            default_dp: self.default_dp.clone(),
            profiles: self
                .profiles
                .iter()
                .map(|p| SavedProfile {
                    iccid: p.iccid.to_string(),
                    aid: crypto::hex_upper(&p.aid),
                    enabled: p.enabled,
                    nickname: p.nickname.clone(),
                    metadata: crypto::hex_upper(&p.metadata.encode()),
                    package: crypto::base64_encode(&p.package),
                })
                .collect(),
            notifications: self
                .notifications
                .iter()
                .map(|n| crypto::hex_upper(&n.der))
                .collect(),
        };
        serde_json::to_string_pretty(&saved).unwrap_or_default()
    }

    /// Restores a state [`Euicc::save_state`] wrote for this card; nothing changes when it is
    /// refused.
    pub fn restore_state(&mut self, json: &str) -> Result<(), StateError> {
        let bad = |what: &str| StateError::Format(what.to_owned());
        let saved: Saved =
            serde_json::from_str(json).map_err(|e| StateError::Format(e.to_string()))?;
        if saved.version != VERSION {
            return Err(StateError::Format(format!(
                "format version {} (this build reads {VERSION})",
                saved.version
            )));
        }
        if saved.eid != self.eid() {
            return Err(StateError::OtherCard {
                expected: self.eid(),
                found: saved.eid,
            });
        }
        let mut profiles = Vec::new();
        for p in &saved.profiles {
            let metadata = crypto::hex_decode(&p.metadata)
                .and_then(|der| ProfileMetadata::parse(&der).ok())
                .ok_or_else(|| bad("a profile's metadata"))?;
            let aid: [u8; 16] = crypto::hex_decode(&p.aid)
                .and_then(|a| a.try_into().ok())
                .ok_or_else(|| bad("a profile's AID"))?;
            profiles.push(InstalledProfile {
                iccid: p.iccid.parse().map_err(|_| bad("a profile's ICCID"))?,
                aid,
                enabled: p.enabled,
                metadata,
                package: crypto::base64_decode(&p.package)
                    .ok_or_else(|| bad("a profile's package"))?,
                nickname: p.nickname.clone(),
            });
        }
        let mut notifications = Vec::new();
        for hex in &saved.notifications {
            let der = crypto::hex_decode(hex).ok_or_else(|| bad("a notification"))?;
            let metadata = match PendingNotification::parse(&der) {
                Ok(PendingNotification::InstallationResult(r)) => r.metadata,
                Ok(PendingNotification::Other(o)) => o.metadata,
                Err(_) => return Err(bad("a notification")),
            };
            notifications.push(Notification { metadata, der });
        }
        self.profiles = profiles;
        self.notifications = notifications;
        self.next_seq = saved.next_seq;
        self.next_aid = saved.next_aid;
        self.default_dp = saved.default_dp;
        Ok(())
    }
}
