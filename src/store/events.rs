//! The SM-DS's Event Records (SGP.22 §3.6, §5.9): what ES12 RegisterEvent stored and ES11
//! AuthenticateClient answers. A record is the EID, the RSP Server address and the EventID,
//! kept with the identity of the caller that registered it (the OID of its TLS certificate,
//! §5.9.1), so that only that caller can delete it (§5.9.2).
//!
//! Everything here is fed by clients (ES12 callers, ConfirmOrder's `smdsAddress`), so every
//! part is bounded in bytes ([`Limits`]); the bounds are in the README and docs/smds.md.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::ids::Eid;

/// Longest EventID, in bytes. SGP.22 sets none (`UTF8String`); an EventID an SM-DP+ makes is a
/// MatchingID (§3.6.1.1), and an Activation Code, which holds one, has at most 255 characters
/// (§4.1).
pub(crate) const MAX_EVENT_ID: usize = 255;
/// Longest RSP Server address.
pub(crate) use crate::sgp22::MAX_ADDRESS;
/// Longest caller identity (an OID's dotted text) kept with a record.
pub(crate) const MAX_OWNER: usize = 128;

/// How many records the SM-DS keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limits {
    /// Records of one EID: a device polls for a handful, and one caller cannot fill a card's
    /// list for others beyond this.
    pub(crate) per_eid: usize,
    /// Records in all (about 600 bytes each at the longest).
    pub(crate) total: usize,
}

/// Records per EID by default.
pub(crate) const DEFAULT_PER_EID: usize = 32;
/// Records in all by default (60 MB at the longest fields, 20 MB typically).
pub(crate) const DEFAULT_TOTAL: usize = 100_000;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            per_eid: DEFAULT_PER_EID,
            total: DEFAULT_TOTAL,
        }
    }
}

/// One Event Record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EventRecord {
    /// The eUICC it is for.
    pub(crate) eid: Eid,
    /// The EventID, unique per caller (§5.9.1).
    pub(crate) event_id: Arc<str>,
    /// Where the device goes with it (an SM-DP+, or an Alternative SM-DS).
    pub(crate) rsp_server_address: Arc<str>,
    /// Who registered it: the SM-DP+ or SM-DS OID of its TLS certificate.
    pub(crate) owner: Arc<str>,
    /// The registration's place in the order of registrations (ES11 answers in that order,
    /// §3.6.2 step 3).
    pub(crate) seq: u64,
    /// Where the registration was cascaded (§3.6.1.2), to delete it there as well.
    pub(crate) forwarded: Option<Forwarded>,
}

/// A registration an Alternative SM-DS cascaded to the root SM-DS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Forwarded {
    /// The root SM-DS's address.
    pub(crate) root: Arc<str>,
    /// The EventID registered there (EventID2, §3.6.1.2).
    pub(crate) event_id: Arc<str>,
}

/// Why a record cannot be stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum RegisterError {
    /// The caller already has a record with this EventID (`8.9.5 / 3.3`).
    #[error(
        "the Event Record already exists in the SM-DS (EventID {0:?} duplicated for this caller)"
    )]
    Duplicate(String),
    /// The EID has as many records as it may.
    #[error("the SM-DS holds {0} Event Records for this EID, the most it keeps for one eUICC")]
    EidFull(usize),
    /// The SM-DS has as many records as it may.
    #[error("the SM-DS holds {0} Event Records, the most it keeps")]
    Full(usize),
    /// A field is empty or too long.
    #[error("{field} must have 1 to {max} bytes")]
    Length {
        /// The field.
        field: &'static str,
        /// Its bound.
        max: usize,
    },
}

#[derive(Debug, Default)]
struct Inner {
    by_eid: HashMap<Eid, Vec<EventRecord>>,
    /// `(owner, EventID)` → EID: EventIDs are unique per caller.
    by_owner: HashMap<(Arc<str>, Arc<str>), Eid>,
    total: usize,
    next_seq: u64,
}

/// The records, bounded by [`Limits`].
#[derive(Debug, Default)]
pub(crate) struct EventRecords {
    inner: Mutex<Inner>,
    limits: Limits,
}

/// Checks the length of a field a client gave.
pub(crate) fn check_length(
    field: &'static str,
    value: &str,
    max: usize,
) -> Result<(), RegisterError> {
    if value.is_empty() || value.len() > max {
        return Err(RegisterError::Length { field, max });
    }
    Ok(())
}

impl EventRecords {
    /// An empty registry with `limits`.
    pub(crate) fn new(limits: Limits) -> Self {
        EventRecords {
            inner: Mutex::default(),
            limits,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether `owner` could register `event_id` for `eid` now (what [`EventRecords::register`]
    /// would refuse, without storing anything).
    pub(crate) fn check(&self, eid: Eid, owner: &str, event_id: &str) -> Result<(), RegisterError> {
        check_length("eventId", event_id, MAX_EVENT_ID)?;
        check_length("caller identity", owner, MAX_OWNER)?;
        let inner = self.lock();
        self.check_locked(&inner, eid, owner, event_id)
    }

    fn check_locked(
        &self,
        inner: &Inner,
        eid: Eid,
        owner: &str,
        event_id: &str,
    ) -> Result<(), RegisterError> {
        if inner
            .by_owner
            .contains_key(&(Arc::from(owner), Arc::from(event_id)))
        {
            return Err(RegisterError::Duplicate(event_id.to_owned()));
        }
        let of_eid = inner.by_eid.get(&eid).map_or(0, Vec::len);
        if of_eid >= self.limits.per_eid {
            return Err(RegisterError::EidFull(of_eid));
        }
        if inner.total >= self.limits.total {
            return Err(RegisterError::Full(inner.total));
        }
        Ok(())
    }

    /// Stores a record (ES12 RegisterEvent, §5.9.1): its `seq` is given here.
    pub(crate) fn register(&self, mut record: EventRecord) -> Result<EventRecord, RegisterError> {
        check_length("eventId", &record.event_id, MAX_EVENT_ID)?;
        check_length("rspServerAddress", &record.rsp_server_address, MAX_ADDRESS)?;
        check_length("caller identity", &record.owner, MAX_OWNER)?;
        let mut inner = self.lock();
        self.check_locked(&inner, record.eid, &record.owner, &record.event_id)?;
        inner.next_seq += 1;
        record.seq = inner.next_seq;
        inner
            .by_owner
            .insert((record.owner.clone(), record.event_id.clone()), record.eid);
        inner
            .by_eid
            .entry(record.eid)
            .or_default()
            .push(record.clone());
        inner.total += 1;
        Ok(record)
    }

    /// Deletes the record `owner` registered as `event_id` for `eid` (ES12 DeleteEvent,
    /// §5.9.2, §3.6.3.3: identified by the EID, the EventID and the caller); `None` when
    /// there is none (another caller's is none of this one's).
    pub(crate) fn delete(&self, eid: Eid, owner: &str, event_id: &str) -> Option<EventRecord> {
        let mut inner = self.lock();
        let key = (Arc::from(owner), Arc::from(event_id));
        if inner.by_owner.get(&key) != Some(&eid) {
            return None;
        }
        inner.by_owner.remove(&key);
        let list = inner.by_eid.get_mut(&eid)?;
        let at = list
            .iter()
            .position(|r| *r.owner == *owner && *r.event_id == *event_id)?;
        let removed = list.remove(at);
        if list.is_empty() {
            inner.by_eid.remove(&eid);
        }
        inner.total -= 1;
        Some(removed)
    }

    /// The record `owner` registered as `event_id` for `eid`, if any.
    pub(crate) fn find(&self, eid: Eid, owner: &str, event_id: &str) -> Option<EventRecord> {
        self.lock()
            .by_eid
            .get(&eid)?
            .iter()
            .find(|r| *r.owner == *owner && *r.event_id == *event_id)
            .cloned()
    }

    /// Deletes `record` itself: not one registered again under its key since it was read.
    pub(crate) fn delete_exact(&self, record: &EventRecord) -> bool {
        let mut inner = self.lock();
        let Some(list) = inner.by_eid.get_mut(&record.eid) else {
            return false;
        };
        let Some(at) = list.iter().position(|r| r.seq == record.seq) else {
            return false;
        };
        let removed = list.remove(at);
        if list.is_empty() {
            inner.by_eid.remove(&record.eid);
        }
        inner.by_owner.remove(&(removed.owner, removed.event_id));
        inner.total -= 1;
        true
    }

    /// The records of `eid`, in the order they were registered (§3.6.2 step 3).
    pub(crate) fn of_eid(&self, eid: Eid) -> Vec<EventRecord> {
        self.lock().by_eid.get(&eid).cloned().unwrap_or_default()
    }

    /// Every record, in the order they were registered (the state file).
    pub(crate) fn all(&self) -> Vec<EventRecord> {
        let inner = self.lock();
        let mut all: Vec<EventRecord> = inner.by_eid.values().flatten().cloned().collect();
        all.sort_by_key(|r| r.seq);
        all
    }

    /// How many records there are.
    pub(crate) fn len(&self) -> usize {
        self.lock().total
    }

    /// Puts back records saved by [`EventRecords::all`], in their order, after what is there;
    /// those the bounds no longer allow are left out (their number is returned).
    pub(crate) fn restore(&self, records: Vec<EventRecord>) -> usize {
        let mut left_out = 0;
        for record in records {
            if self.register(record).is_err() {
                left_out += 1;
            }
        }
        left_out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn eid(n: u8) -> Eid {
        Eid::from_value(89049032000000000000000000000000u128 + u128::from(n)).unwrap()
    }

    fn record(e: u8, owner: &str, id: &str) -> EventRecord {
        EventRecord {
            eid: eid(e),
            event_id: id.into(),
            rsp_server_address: "smdp.example:443".into(),
            owner: owner.into(),
            seq: 0,
            forwarded: None,
        }
    }

    #[test]
    fn events_are_unique_per_caller_and_only_their_caller_deletes_them() {
        let events = EventRecords::default();
        events.register(record(1, "2.999.10", "A")).unwrap();
        assert_eq!(
            events.register(record(2, "2.999.10", "A")),
            Err(RegisterError::Duplicate("A".into()))
        );
        // Another caller may use the same EventID.
        events.register(record(1, "2.999.20", "A")).unwrap();
        assert_eq!(events.delete(eid(1), "2.999.30", "A"), None);
        assert_eq!(events.delete(eid(2), "2.999.10", "A"), None);
        assert!(events.delete(eid(1), "2.999.10", "A").is_some());
        assert_eq!(events.len(), 1);
        assert_eq!(&*events.of_eid(eid(1))[0].owner, "2.999.20");
    }

    #[test]
    fn the_bounds_hold() {
        let events = EventRecords::new(Limits {
            per_eid: 2,
            total: 3,
        });
        events.register(record(1, "o", "A")).unwrap();
        events.register(record(1, "o", "B")).unwrap();
        assert_eq!(
            events.register(record(1, "o", "C")),
            Err(RegisterError::EidFull(2))
        );
        events.register(record(2, "o", "C")).unwrap();
        assert_eq!(
            events.register(record(3, "o", "D")),
            Err(RegisterError::Full(3))
        );
        let long = "X".repeat(MAX_EVENT_ID + 1);
        assert!(matches!(
            events.check(eid(4), "o", &long),
            Err(RegisterError::Length { .. })
        ));
        assert!(matches!(
            events.check(eid(4), "o", ""),
            Err(RegisterError::Length { .. })
        ));
    }

    proptest! {
        /// Whatever the registrations and deletions, the records of an EID keep the order they
        /// were registered in, the indexes agree with the lists, and the bounds hold.
        #[test]
        fn order_indexes_and_bounds(ops in proptest::collection::vec((0u8..4, 0u8..3, 0u8..6, any::<bool>()), 0..80)) {
            let limits = Limits { per_eid: 4, total: 9 };
            let events = EventRecords::new(limits);
            for (e, owner, id, register) in ops {
                let owner = format!("2.999.{owner}");
                let id = format!("E{id}");
                if register {
                    let _ = events.register(record(e, &owner, &id));
                } else {
                    let _ = events.delete(eid(e), &owner, &id);
                }
                let inner = events.lock();
                let mut total = 0;
                for (eid, list) in &inner.by_eid {
                    prop_assert!(!list.is_empty() && list.len() <= limits.per_eid);
                    prop_assert!(list.windows(2).all(|w| w[0].seq < w[1].seq));
                    for r in list {
                        prop_assert_eq!(inner.by_owner.get(&(r.owner.clone(), r.event_id.clone())), Some(eid));
                    }
                    total += list.len();
                }
                prop_assert_eq!(total, inner.total);
                prop_assert_eq!(inner.by_owner.len(), total);
                prop_assert!(total <= limits.total);
            }
        }
    }
}
