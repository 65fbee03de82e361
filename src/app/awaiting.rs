//! Bound Profile Packages delivered whose installation result is awaited (SGP.22 §3.1.3.3): the
//! ES9+ session ends with GetBoundProfilePackage, the result may come much later (an LPA sends
//! it when it has connectivity, §3.5). Part of the [`World`](super::World), so a reset or a new
//! scenario drops them, and saved in the state file, so a restart keeps them.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use crate::ids::{Eid, Iccid, IccidKey};

/// Delivered packages whose installation result is awaited, kept at most.
pub(crate) const MAX_DELIVERED: usize = 50_000;

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
            bytes: crate::rsp::crypto::random(),
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

/// What an installation result is checked against, after the package was delivered: the eUICC
/// the package was bound to, and the order.
#[derive(Debug, Clone)]
pub(crate) struct Delivered {
    pub(crate) euicc: EuiccIdentity,
    pub(crate) order: OrderRef,
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

/// The packages of one world awaiting their installation result, by transactionId.
#[derive(Debug, Default)]
pub(crate) struct Awaiting {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    table: Table<Delivered>,
    /// The session each order's latest package was delivered in.
    by_order: HashMap<IccidKey, TransactionId>,
}

impl Awaiting {
    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The package of session `tid` was delivered: its result is awaited. A package of the
    /// same order delivered before (a download retry) no longer awaits one: its result, or a
    /// cancellation of its session, would not be about the package the eUICC has now.
    pub(crate) fn insert(&self, tid: TransactionId, delivered: Delivered) {
        let mut inner = self.inner();
        if let Some(earlier) = inner.by_order.insert(delivered.order.key, tid) {
            if earlier != tid {
                inner.table.map.remove(&earlier);
            }
        }
        inner.table.insert(tid, delivered, MAX_DELIVERED);
    }

    /// What the result of `tid` is checked against: taken, so a repeated result finds nothing.
    pub(crate) fn take(&self, tid: &TransactionId) -> Option<Delivered> {
        let mut inner = self.inner();
        let delivered = inner.table.map.remove(tid)?;
        if inner.by_order.get(&delivered.order.key) == Some(tid) {
            inner.by_order.remove(&delivered.order.key);
        }
        Some(delivered)
    }

    /// A copy of what awaits the result of `tid`.
    pub(crate) fn get(&self, tid: &TransactionId) -> Option<Delivered> {
        self.inner().table.map.get(tid).cloned()
    }

    /// Every entry, oldest first (the state file).
    pub(crate) fn entries(&self) -> Vec<(TransactionId, Delivered)> {
        let inner = self.inner();
        let table = &inner.table;
        let mut seen = std::collections::HashSet::new();
        table
            .order
            .iter()
            .filter(|tid| seen.insert(**tid))
            .filter_map(|tid| table.map.get(tid).map(|d| (*tid, d.clone())))
            .collect()
    }
}
