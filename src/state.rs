//! `--state-file`: what a restart must not forget — the profiles that changed (with their
//! orders), the SM-DS EventIDs never to reuse, the MatchingID, journal and delivery counters,
//! and the notifications not yet delivered.
//!
//! The file is a one-line JSON header followed by the JSON payload. The header names the format
//! and version, the inventory it belongs to ([`Scenario::inventory_fingerprint`]), and the
//! payload's length and SHA-256, so a truncated, corrupt or foreign file is refused whole rather
//! than half-loaded. It is written to a temporary file beside it, fsynced, renamed over the old
//! one and the directory fsynced: after a crash at any moment the file is the old state or the
//! new one, complete.

use std::fs;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};
use smdpp_rsp::crypto::Curve;

use crate::app::awaiting::Delivered;
use crate::app::transaction::{EuiccIdentity, OrderRef, TransactionId};
use crate::app::{App, World};
use crate::ids::{hex, Eid, Iccid, MatchingId};
use crate::notify::{DeliveryCounters, DeliveryState, Outgoing};
use crate::profile::{OnDevice, OrderMatchingId, Profile, ProfileState, StateTimes, Transition};
use crate::scenario::Scenario;
use crate::store::events::{EventRecord, Forwarded};

/// The `format` every state file names.
pub(crate) const FORMAT: &str = "smdpp-mock-state";
/// The version this build writes (it also reads version 1, which kept retired EventIDs whole).
pub(crate) const VERSION: u32 = 2;

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Header {
    format: String,
    version: u32,
    /// The inventory the state belongs to.
    inventory: String,
    saved_at: String,
    payload_bytes: usize,
    payload_sha256: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Payload {
    profiles: Vec<SavedProfile>,
    retired_event_ids: Vec<String>,
    matching_id_position: u64,
    journal_last_seq: u64,
    next_delivery_id: u64,
    counters: SavedCounters,
    notifications: Vec<SavedNotification>,
    /// ES9+ packages delivered whose installation result is awaited (absent in files of
    /// builds before it was kept).
    #[serde(default)]
    awaiting_results: Vec<SavedAwaiting>,
    /// The Event Records of the mock's SM-DS, in the order they were registered (absent in
    /// files of builds without an SM-DS).
    #[serde(default)]
    smds_events: Vec<SavedEvent>,
}

/// An Event Record of the mock's SM-DS (§5.9.1).
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SavedEvent {
    eid: String,
    event_id: String,
    rsp_server_address: String,
    /// The caller that registered it (the OID of its TLS certificate).
    owner: String,
    /// Where it was cascaded: the root SM-DS's address and the EventID there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    forwarded: Option<(String, String)>,
}

impl SavedEvent {
    fn of(r: &EventRecord) -> Self {
        SavedEvent {
            eid: r.eid.to_string(),
            event_id: r.event_id.to_string(),
            rsp_server_address: r.rsp_server_address.to_string(),
            owner: r.owner.to_string(),
            forwarded: r
                .forwarded
                .as_ref()
                .map(|f| (f.root.to_string(), f.event_id.to_string())),
        }
    }

    fn restore(&self) -> Result<EventRecord> {
        Ok(EventRecord {
            eid: self
                .eid
                .parse()
                .map_err(|e| anyhow!("SM-DS event {:?}: {e}", self.event_id))?,
            event_id: Arc::from(self.event_id.as_str()),
            rsp_server_address: Arc::from(self.rsp_server_address.as_str()),
            owner: Arc::from(self.owner.as_str()),
            seq: 0,
            forwarded: self.forwarded.as_ref().map(|(root, id)| Forwarded {
                root: Arc::from(root.as_str()),
                event_id: Arc::from(id.as_str()),
            }),
        })
    }
}

/// A Bound Profile Package delivered, awaiting its installation result (§3.1.3.3).
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SavedAwaiting {
    transaction_id: String,
    eid: String,
    /// PK.EUICC.ECDSA, uncompressed, hex.
    euicc_public_key: String,
    /// The namedCurve OID of that key when it is not NIST P-256 (absent: NIST P-256, as in
    /// every file written before brainpool keys were supported).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    euicc_curve: Option<String>,
    iccid: String,
    order_seq: u32,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SavedCounters {
    notifications_queued: u64,
    notifications_delivered: u64,
    notifications_failed: u64,
    notifications_dropped_queue_full: u64,
    notifications_dropped_by_fault: u64,
    notification_attempts: u64,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SavedProfile {
    iccid: String,
    state: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    eid: Option<String>,
    /// `""` for the empty MatchingID of the Default SM-DP+ case.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    matching_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    confirmation_code_sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    smds_address: Option<String>,
    smds_event_registered: bool,
    download_attempts: u32,
    confirmation_code_attempts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    on_device: Option<OnDevice>,
    order_seq: u32,
    entered: [u32; 9],
    history: Vec<(String, u32)>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SavedNotification {
    id: u64,
    operator: String,
    iccid: String,
    point_id: u32,
    url: String,
    call_id: String,
    body: serde_json::Value,
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

fn sha256(bytes: &[u8]) -> String {
    hex(&crate::ids::sha256(bytes))
}

impl SavedProfile {
    fn from_profile(p: &Profile) -> Self {
        SavedProfile {
            iccid: p.iccid.to_string(),
            state: p.state.to_string(),
            eid: p.eid.map(|e| e.to_string()),
            matching_id: p.matching_id.as_ref().map(|m| m.as_str().to_owned()),
            confirmation_code_sha256: p.confirmation_code_hash.as_deref().map(|h| hex(h)),
            smds_address: p.smds_address.as_deref().map(str::to_owned),
            smds_event_registered: p.smds_event_registered,
            download_attempts: p.download_attempts,
            confirmation_code_attempts: p.confirmation_code_attempts,
            on_device: p.on_device,
            order_seq: p.order_seq,
            entered: p.entered.raw(),
            history: p.history.iter().map(|t| (t.to.to_string(), t.at)).collect(),
        }
    }

    /// The saved profile on top of its inventory entry, which must exist.
    fn restore(self, world: &World) -> Result<Profile> {
        let iccid: Iccid = self
            .iccid
            .parse()
            .map_err(|e| anyhow!("profile {}: {e}", self.iccid))?;
        let base = world
            .store
            .get(iccid.key())
            .ok_or_else(|| anyhow!("profile {} is not in the inventory", self.iccid))?;
        self.apply(&base)
    }

    /// The profile, on top of the inventory's own (which gives owner and type).
    fn apply(self, base: &Profile) -> Result<Profile> {
        let state = |name: &str| {
            name.parse::<ProfileState>()
                .map_err(|_| anyhow!("profile {}: unknown state {name:?}", self.iccid))
        };
        let mut p = base.clone();
        p.state = state(&self.state)?;
        p.eid = self
            .eid
            .as_deref()
            .map(|e| e.parse::<Eid>())
            .transpose()
            .map_err(|e| anyhow!("profile {}: EID: {e}", self.iccid))?;
        p.matching_id = match self.matching_id.as_deref() {
            None => None,
            Some("") => Some(OrderMatchingId::Empty),
            Some(m) => Some(OrderMatchingId::Id(
                m.parse::<MatchingId>()
                    .map_err(|e| anyhow!("profile {}: MatchingID: {e}", self.iccid))?,
            )),
        };
        p.confirmation_code_hash = match self.confirmation_code_sha256.as_deref() {
            None => None,
            Some(h) => {
                let bytes: [u8; 32] = unhex(h)
                    .and_then(|b| b.try_into().ok())
                    .ok_or_else(|| anyhow!("profile {}: bad Confirmation Code hash", self.iccid))?;
                Some(Box::new(bytes))
            }
        };
        p.smds_address = self.smds_address.map(Arc::from);
        p.smds_event_registered = self.smds_event_registered;
        p.download_attempts = self.download_attempts;
        p.confirmation_code_attempts = self.confirmation_code_attempts;
        p.on_device = self.on_device;
        p.order_seq = self.order_seq;
        p.entered = StateTimes::from_raw(self.entered);
        p.history = self
            .history
            .iter()
            .map(|(to, at)| {
                Ok(Transition {
                    to: state(to)?,
                    at: *at,
                })
            })
            .collect::<Result<_>>()?;
        Ok(p)
    }
}

/// What [`save`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Saved {
    /// Profiles that differ from the inventory as loaded.
    pub profiles: usize,
    /// Notifications not yet delivered.
    pub notifications: usize,
    /// Bytes written.
    pub bytes: usize,
}

/// What [`load`] restored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Restored {
    /// Profiles put back.
    pub profiles: usize,
    /// Notifications queued again.
    pub notifications: usize,
}

/// Writes the state of `app` to `path`, atomically (see the module documentation).
pub(crate) fn save(app: &App, path: &Path) -> Result<Saved> {
    let world = app.world();
    let mut payload = Payload::default();
    // Only profiles something was committed on since the inventory was loaded (a counter
    // alone included), so an untouched million-profile inventory costs nothing.
    let mut changed = Vec::new();
    // The SM-DS's records in the same cut: an order's registration or deletion is committed
    // with the order (its effect runs under the commit), so the two never disagree in the file.
    let (retired, events) = world.store.for_each_consistent_with(
        |p| {
            if p.modified {
                changed.push(p.clone());
            }
        },
        || world.events.all(),
    );
    payload.profiles = changed.iter().map(SavedProfile::from_profile).collect();
    payload.retired_event_ids = retired.iter().map(|d| format!("{d:016x}")).collect();
    payload.matching_id_position = world.matching_ids.position();
    payload.awaiting_results = world
        .awaiting
        .entries()
        .into_iter()
        .map(|(tid, d)| SavedAwaiting {
            transaction_id: hex(tid.as_bytes()),
            eid: d.euicc.eid.to_string(),
            euicc_public_key: hex(&d.euicc.public_key),
            euicc_curve: (d.euicc.curve != Curve::NistP256).then(|| d.euicc.curve.oid().to_owned()),
            iccid: d.order.iccid.to_string(),
            order_seq: d.order.order_seq,
        })
        .collect();
    payload.smds_events = events.iter().map(SavedEvent::of).collect();
    payload.journal_last_seq = app.journal.last_seq();
    let c = &app.notifier.log().counters;
    payload.counters = SavedCounters {
        notifications_queued: c.queued.load(Ordering::Relaxed),
        notifications_delivered: c.delivered.load(Ordering::Relaxed),
        notifications_failed: c.failed.load(Ordering::Relaxed),
        notifications_dropped_queue_full: c.dropped_queue_full.load(Ordering::Relaxed),
        notifications_dropped_by_fault: c.dropped_by_fault.load(Ordering::Relaxed),
        notification_attempts: c.attempts.load(Ordering::Relaxed),
    };
    payload.notifications = app
        .notifier
        .log()
        .records()
        .into_iter()
        .filter(|r| r.state == DeliveryState::Pending)
        .map(|r| SavedNotification {
            id: r.id,
            operator: r.operator,
            iccid: r.iccid,
            point_id: r.notification_point_id,
            url: r.url,
            call_id: r.function_call_identifier,
            body: r.body,
        })
        .collect();
    // Read after the records, so no saved notification has an id at or past it.
    payload.next_delivery_id = app.notifier.peek_next_id().max(
        payload
            .notifications
            .iter()
            .map(|n| n.id + 1)
            .max()
            .unwrap_or(0),
    );
    let body = serde_json::to_vec(&payload).context("encoding the state")?;
    let header = Header {
        format: FORMAT.into(),
        version: VERSION,
        inventory: world.scenario.inventory_fingerprint(),
        saved_at: crate::clock::es2_timestamp(app.clock.now()),
        payload_bytes: body.len(),
        payload_sha256: sha256(&body),
    };
    let mut bytes = serde_json::to_vec(&header).context("encoding the state header")?;
    bytes.push(b'\n');
    bytes.extend_from_slice(&body);
    // Confirmation Code hashes and MatchingIDs: for the owner only.
    crate::atomic_file::write(path, &bytes, 0o600)?;
    Ok(Saved {
        profiles: payload.profiles.len(),
        notifications: payload.notifications.len(),
        bytes: bytes.len(),
    })
}

/// Reads and checks a state file without applying it: the header, the payload's length and
/// hash, and that it belongs to `scenario`'s inventory.
fn read(path: &Path, scenario: &Scenario) -> Result<(Header, Payload)> {
    let bytes = fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let newline = bytes
        .iter()
        .position(|&b| b == b'\n')
        .ok_or_else(|| anyhow!("no header line: not a smdpp-mock state file, or cut short"))?;
    let header: Header = serde_json::from_slice(&bytes[..newline])
        .map_err(|e| anyhow!("the header is not a smdpp-mock state header: {e}"))?;
    if header.format != FORMAT {
        bail!("format {:?} is not {FORMAT:?}", header.format);
    }
    if !(1..=VERSION).contains(&header.version) {
        bail!(
            "version {} was written by another smdpp-mock; this one reads versions 1 to {VERSION}",
            header.version
        );
    }
    let body = &bytes[newline + 1..];
    if body.len() != header.payload_bytes || sha256(body) != header.payload_sha256 {
        bail!(
            "the payload is corrupt or cut short ({} bytes, the header says {})",
            body.len(),
            header.payload_bytes
        );
    }
    let expected = scenario.inventory_fingerprint();
    if header.inventory != expected {
        bail!(
            "it was written for another inventory (fingerprint {}…, this scenario's is {}…): start with the scenario it was saved with, or delete the file",
            header.inventory.get(..12).unwrap_or(&header.inventory),
            expected.get(..12).unwrap_or(&expected)
        );
    }
    let payload: Payload =
        serde_json::from_slice(body).map_err(|e| anyhow!("the payload is not valid: {e}"))?;
    Ok((header, payload))
}

/// Checks the state file at `path` for `scenario` without applying it (`smdpp-mock state check`).
pub fn check(path: &Path, scenario: &Scenario) -> crate::Result<String> {
    crate::error::state(|| {
        let (header, payload) = read(path, scenario)
            .with_context(|| format!("the state file {} cannot be used", path.display()))?;
        Ok(format!(
            "{}: saved {}, {} changed profiles, {} undelivered notifications",
            path.display(),
            header.saved_at,
            payload.profiles.len(),
            payload.notifications.len()
        ))
    })
}

/// Restores the state in `path` into `app`, which must be freshly started on the same
/// scenario. Nothing is applied unless the whole file checks out.
pub(crate) fn load(app: &App, path: &Path) -> Result<Restored> {
    let world = app.world();
    let (header, payload) = read(path, &world.scenario)
        .with_context(|| format!("the state file {} cannot be used", path.display()))?;
    // Everything is converted first, so a bad entry refuses the file before anything changes.
    let profiles = payload
        .profiles
        .into_iter()
        .map(|saved| saved.restore(&world))
        .collect::<Result<Vec<_>>>()?;
    let retired = retired_digests(header.version, &payload.retired_event_ids)?;
    let awaiting = payload
        .awaiting_results
        .iter()
        .map(|saved| saved.restore(&world))
        .collect::<Result<Vec<_>>>()?;
    let events = payload
        .smds_events
        .iter()
        .map(SavedEvent::restore)
        .collect::<Result<Vec<_>>>()?;
    check_matching_ids_unique(&profiles)?;
    let restored = profiles.len();
    for p in profiles {
        let iccid = p.iccid;
        world
            .store
            .restore(p)
            .map_err(|e| anyhow!("profile {iccid}: {e:?}"))?;
    }
    world.store.retire_event_digests(retired);
    for (tid, delivered) in awaiting {
        world.awaiting.insert(tid, delivered);
    }
    let left_out = world.events.restore(events);
    if left_out > 0 {
        tracing::warn!(
            left_out,
            "SM-DS events of the state file beyond the SM-DS's bounds were left out"
        );
    }
    world.matching_ids.resume_at(payload.matching_id_position);
    app.journal.continue_after(payload.journal_last_seq);
    let last_id = payload
        .notifications
        .iter()
        .map(|n| n.id)
        .max()
        .unwrap_or(0)
        .max(payload.next_delivery_id.saturating_sub(1));
    app.notifier.continue_after(last_id);
    payload.counters.restore(&app.notifier.log().counters);
    Ok(Restored {
        profiles: restored,
        notifications: requeue(app, &world, payload.notifications),
    })
}

/// The retired SM-DS EventIDs as digests. Version 2 keeps the digests of retired EventIDs;
/// version 1 kept the IDs themselves.
fn retired_digests(version: u32, saved: &[String]) -> Result<Vec<u64>> {
    saved
        .iter()
        .map(|text| match version {
            1 => text
                .parse::<MatchingId>()
                .map(|id| crate::store::Store::event_digest(&id))
                .map_err(|e| anyhow!("retired EventID: {e}")),
            _ => u64::from_str_radix(text, 16)
                .map_err(|e| anyhow!("retired EventID digest {text:?}: {e}")),
        })
        .collect()
}

impl SavedAwaiting {
    /// The delivered package whose installation result is awaited, keyed by its transaction,
    /// with the order taken from the profile in the inventory.
    fn restore(&self, world: &World) -> Result<(TransactionId, Delivered)> {
        let bad = |what: &str| {
            anyhow!(
                "awaited installation result {}: {what}",
                self.transaction_id
            )
        };
        let tid = unhex(&self.transaction_id)
            .and_then(|b| TransactionId::from_bytes(&b))
            .ok_or_else(|| bad("not a transactionId"))?;
        let eid: Eid = self.eid.parse().map_err(|e| bad(&format!("{e}")))?;
        let eid_bytes: [u8; 16] = unhex(&self.eid)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| bad("the EID is not 16 bytes"))?;
        let public_key = unhex(&self.euicc_public_key).ok_or_else(|| bad("no public key"))?;
        let curve = match self.euicc_curve.as_deref() {
            None => Curve::NistP256,
            Some(oid) => Curve::ALL
                .into_iter()
                .find(|c| c.oid() == oid)
                .ok_or_else(|| bad(&format!("unknown curve {oid}")))?,
        };
        let iccid: Iccid = self.iccid.parse().map_err(|e| bad(&format!("{e}")))?;
        let base = world
            .store
            .get(iccid.key())
            .ok_or_else(|| bad("its profile is not in the inventory"))?;
        Ok((
            tid,
            Delivered {
                euicc: EuiccIdentity {
                    eid,
                    eid_bytes,
                    public_key,
                    curve,
                },
                order: OrderRef {
                    key: iccid.key(),
                    iccid,
                    order_seq: self.order_seq,
                    owner: base.owner.clone(),
                    profile_type: base.profile_type.clone(),
                },
                binding: None,
            },
        ))
    }
}

/// A MatchingID belongs to one order: checked before anything is applied.
fn check_matching_ids_unique(profiles: &[Profile]) -> Result<()> {
    let mut seen = std::collections::HashSet::new();
    for p in profiles {
        if let Some(id) = p.matching_id.as_ref().and_then(OrderMatchingId::id) {
            if !seen.insert(id.clone()) {
                bail!(
                    "MatchingID {id} is held by two orders (profile {})",
                    p.iccid
                );
            }
        }
    }
    Ok(())
}

impl SavedCounters {
    /// Puts the saved delivery counters back.
    fn restore(&self, c: &DeliveryCounters) {
        c.queued.store(self.notifications_queued, Ordering::Relaxed);
        c.delivered
            .store(self.notifications_delivered, Ordering::Relaxed);
        c.failed.store(self.notifications_failed, Ordering::Relaxed);
        c.dropped_queue_full
            .store(self.notifications_dropped_queue_full, Ordering::Relaxed);
        c.dropped_by_fault
            .store(self.notifications_dropped_by_fault, Ordering::Relaxed);
        c.attempts
            .store(self.notification_attempts, Ordering::Relaxed);
    }
}

/// Undelivered notifications go out again, to the operator's current callback (at the URL
/// they were addressed to), in their original order. Returns how many were queued.
fn requeue(app: &App, world: &World, notifications: Vec<SavedNotification>) -> usize {
    let c = &app.notifier.log().counters;
    let mut requeued = 0;
    let now = app.clock.now();
    for n in notifications {
        let Some(mut callback) = world.callback(&n.operator) else {
            tracing::warn!(id = n.id, operator = %n.operator, "no callback any more: saved notification dropped");
            continue;
        };
        if callback.url != n.url {
            let mut changed = (*callback).clone();
            changed.url = n.url.clone();
            callback = Arc::new(changed);
        }
        let Ok(iccid) = n.iccid.parse::<Iccid>() else {
            continue;
        };
        // Counted once already, before the restart.
        c.queued.fetch_sub(1, Ordering::Relaxed);
        app.notifier.enqueue(
            n.id,
            Outgoing {
                key: iccid.key(),
                iccid: n.iccid,
                operator: n.operator,
                point_id: n.point_id,
                callback,
                body: n.body,
                call_id: n.call_id,
                admin_protocol: world.scenario.admin_protocol().into(),
                drop: false,
                delay: None,
                duplicate: false,
            },
            now,
        );
        requeued += 1;
    }
    requeued
}
