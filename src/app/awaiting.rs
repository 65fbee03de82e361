//! Bound Profile Packages delivered whose installation result is awaited (SGP.22 §3.1.3.3): the
//! ES9+ session ends with GetBoundProfilePackage, the result may come much later (an LPA sends
//! it when it has connectivity, §3.5). Part of the [`World`](super::World), so a reset or a new
//! scenario drops them, and saved in the state file, so a restart keeps them.

use std::collections::HashMap;
use std::sync::Mutex;

use super::transaction::{EuiccIdentity, OrderRef, Table, TransactionId};
use crate::ids::IccidKey;

/// Delivered packages whose installation result is awaited, kept at most.
pub(crate) const MAX_DELIVERED: usize = 50_000;

/// What an installation result is checked against, after the package was delivered: the eUICC
/// the package was bound to, and the order.
#[derive(Debug, Clone)]
pub(crate) struct Delivered {
    pub(crate) euicc: EuiccIdentity,
    pub(crate) order: OrderRef,
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
