//! Bound Profile Packages delivered whose installation result is awaited (SGP.22 §3.1.3.3): the
//! ES9+ session ends with GetBoundProfilePackage, the result may come much later (an LPA sends
//! it when it has connectivity, §3.5). Part of the [`World`](super::World), so a reset or a new
//! scenario drops them, and saved in the state file, so a restart keeps them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::transaction::{EuiccIdentity, OrderRef, Table, TransactionId};
use crate::ids::IccidKey;
use smdpp_rsp::crypto::SessionKeys;

/// Delivered packages whose installation result is awaited, kept at most.
pub(crate) const MAX_DELIVERED: usize = 50_000;

/// What an installation result is checked against, after the package was delivered: the eUICC
/// the package was bound to, and the order; and what it was bound with, for a retry.
#[derive(Debug, Clone)]
pub(crate) struct Delivered {
    pub(crate) euicc: EuiccIdentity,
    pub(crate) order: OrderRef,
    /// `None` after a restart: keys are never saved, so a retry is bound anew.
    pub(crate) binding: Option<Arc<BindingKeys>>,
}

/// What a delivered package was bound with, kept so that a download retry can use it again
/// (§3.1.3 step 5: `bppEuiccOtpk`; §3.1.3.2 step 9 and §5.6.2: the same otPK.EUICC.ECKA back
/// means the package is reused and only InitialiseSecureChannel signed anew). In memory only,
/// never in the state file: after a restart the next retry is bound anew, which §5.6.2 allows.
#[derive(Debug)]
pub(crate) struct BindingKeys {
    /// otPK.EUICC.ECKA the package was bound to: the retry's `bppEuiccOtpk`.
    pub(crate) euicc_otpk: [u8; 65],
    /// otPK.DP.ECKA (its private half was dropped once the keys were derived, §5.6.2).
    pub(crate) smdp_otpk: [u8; 65],
    /// The session keys derived from the two (Annex G).
    pub(crate) keys: SessionKeys,
    /// The Profile Protection Keys, if the profile type's packages are protected with them
    /// (§2.5.3): the same for every binding of the order, so that a rebinding leaves the
    /// protected package (`A3`) as it was.
    pub(crate) ppk: Option<SessionKeys>,
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

    /// What the latest package delivered for the order `key` awaits, if it still does.
    pub(crate) fn latest_for(&self, key: IccidKey) -> Option<Delivered> {
        let inner = self.inner();
        let tid = inner.by_order.get(&key)?;
        inner.table.map.get(tid).cloned()
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
