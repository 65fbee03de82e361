//! What a software eUICC keeps between runs (a card keeps its profiles when the phone is off):
//! installed profiles, pending notifications, counters, the default SM-DP+ address, as JSON.
//! Keys and certificates are not in it: they come from the PKI the card was made with.

use serde::{Deserialize, Serialize};

use super::{Euicc, InstalledProfile, Notification, MAX_AID, MAX_NOTIFICATIONS, MAX_PROFILES};
use crate::crypto;
use crate::es10b::{PendingNotification, ProfileMetadata};

/// The version of the state file's format.
const VERSION: u32 = 1;
/// The longest default SM-DP+ address kept (an FQDN with a port).
const MAX_ADDRESS: usize = 260;
/// The longest nickname (SGP.22 `profileNickname UTF8String (SIZE(0..64))`).
const MAX_NICKNAME: usize = 64;

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
    /// The card's chain its download used (0, the first, in files written before chains).
    #[serde(default, skip_serializing_if = "is_zero")]
    chain: usize,
    /// The Profile Metadata (`BF25`), hex.
    metadata: String,
    /// The profile package, base64.
    package: String,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
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
                    chain: p.chain,
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
        // What the card itself would never hold: refused, as a damaged or foreign file.
        let too = |what: String| StateError::Format(what);
        if saved.profiles.len() > MAX_PROFILES {
            return Err(too(format!(
                "{} profiles (a card holds {MAX_PROFILES})",
                saved.profiles.len()
            )));
        }
        if saved.notifications.len() > MAX_NOTIFICATIONS {
            return Err(too(format!(
                "{} pending notifications (a card keeps {MAX_NOTIFICATIONS})",
                saved.notifications.len()
            )));
        }
        if saved.next_seq == 0 || saved.next_seq == u64::MAX {
            return Err(too(format!("nextSeq {}", saved.next_seq)));
        }
        if saved.next_aid > MAX_AID {
            return Err(too(format!(
                "nextAid {} (at most {MAX_AID})",
                saved.next_aid
            )));
        }
        if saved
            .default_dp
            .as_ref()
            .is_some_and(|a| a.len() > MAX_ADDRESS)
        {
            return Err(bad("the default SM-DP+ address (longer than an FQDN)"));
        }
        // Each profile had to fit the card's free memory to be installed (load.rs).
        let free = self.free_nvm as usize;
        if let Some(p) = saved
            .profiles
            .iter()
            .find(|p| p.package.len() / 4 * 3 > free)
        {
            return Err(too(format!(
                "the package of profile {} is larger than the card's {free} bytes of free memory",
                p.iccid.chars().take(24).collect::<String>()
            )));
        }
        let mut profiles = Vec::new();
        for p in &saved.profiles {
            if p.nickname.as_ref().is_some_and(|n| n.len() > MAX_NICKNAME) {
                return Err(bad("a profile's nickname (longer than 64 bytes)"));
            }
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
                chain: p.chain,
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
