//! What identifies an ES9+ download across its calls (SGP.22 §3.1.1.4): the transactionId, the
//! eUICC that authenticated, the order it downloads, and a bounded table by transactionId. The
//! ES9+ sessions and the packages awaiting their installation result ([`super::awaiting`]) are
//! both kept in such tables.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use crate::ids::{Eid, Iccid, IccidKey};
use smdpp_rsp::crypto::{self, Curve};

/// A transactionId: 1 to 16 bytes (Annex H `TransactionId`), kept in a fixed array.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct TransactionId {
    bytes: [u8; 16],
    len: u8,
}

impl TransactionId {
    /// A new random one, 16 bytes, never reused in practice (128 random bits).
    pub(crate) fn random() -> Self {
        TransactionId {
            bytes: smdpp_rsp::crypto::random(),
            len: 16,
        }
    }

    /// One received, if it has 1 to 16 bytes.
    pub(crate) fn from_bytes(bytes: &[u8]) -> Option<Self> {
        if bytes.is_empty() || bytes.len() > 16 {
            return None;
        }
        let mut out = [0u8; 16];
        out[..bytes.len()].copy_from_slice(bytes);
        Some(TransactionId {
            bytes: out,
            len: bytes.len() as u8,
        })
    }

    /// Its bytes.
    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

/// The eUICC, once its certificates and signature checked out.
#[derive(Debug, Clone)]
pub(crate) struct EuiccIdentity {
    pub(crate) eid: Eid,
    pub(crate) eid_bytes: [u8; 16],
    /// PK.EUICC.ECDSA, uncompressed.
    pub(crate) public_key: Vec<u8>,
    /// The curve of `public_key` (that of the eUICC certificate).
    pub(crate) curve: Curve,
}

impl EuiccIdentity {
    /// Whether `signature` (`r ‖ s`) is the eUICC's over `message`.
    pub(crate) fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        crypto::verify_on(self.curve, &self.public_key, message, signature)
    }

    /// [`EuiccIdentity::verifies`] over the concatenation of `parts`.
    pub(crate) fn verifies_parts(&self, parts: &[&[u8]], signature: &[u8]) -> bool {
        crypto::verify_parts_on(self.curve, &self.public_key, parts, signature)
    }
}

/// The order a session downloads.
#[derive(Debug, Clone)]
pub(crate) struct OrderRef {
    pub(crate) key: IccidKey,
    pub(crate) iccid: Iccid,
    /// The order's number: a CancelOrder and a new order meanwhile make it another.
    pub(crate) order_seq: u32,
    pub(crate) owner: Arc<str>,
    pub(crate) profile_type: Arc<str>,
}

/// Entries by transactionId, bounded, the oldest going first.
#[derive(Debug)]
pub(crate) struct Table<T> {
    pub(crate) map: HashMap<TransactionId, T>,
    /// Insertion order, oldest first; entries already removed from `map` are skipped.
    pub(crate) order: VecDeque<TransactionId>,
}

impl<T> Default for Table<T> {
    fn default() -> Self {
        Table {
            map: HashMap::new(),
            order: VecDeque::new(),
        }
    }
}

impl<T> Table<T> {
    /// Inserts `value`; past `capacity` the oldest go. How many went.
    pub(crate) fn insert(&mut self, tid: TransactionId, value: T, capacity: usize) -> usize {
        let mut evicted = 0;
        if self.map.insert(tid, value).is_none() {
            self.order.push_back(tid);
        }
        while self.map.len() > capacity {
            let Some(oldest) = self.order.pop_front() else {
                break;
            };
            if self.map.remove(&oldest).is_some() {
                evicted += 1;
            }
        }
        // Removed entries leave their ids behind; keep the ring no larger than twice the map.
        if self.order.len() > 2 * self.map.len() + 64 {
            let live = &self.map;
            self.order.retain(|t| live.contains_key(t));
        }
        evicted
    }
}
