//! MatchingIDs that served as SM-DS EventIDs, which SGP.22 §3.6.1.1 says are never used again,
//! remembered in bounded memory.
//!
//! A client can retire one EventID per DownloadOrder → ConfirmOrder(smdsAddress) → CancelOrder
//! cycle, each up to 128 characters, for as long as it likes. So the memory keeps an 8-byte
//! digest of each (SHA-256, truncated: a false "already used" between two different IDs has a
//! chance of about n²/2⁶⁵, one in 10¹⁶ at a million), and only the newest `smdp.limits.retiredEventIds` (default [`CAPACITY`]): the
//! oldest is forgotten first, counted in `/metrics`. Reusing an EventID older than that many
//! later retirements is the one case the guarantee does not cover.

use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use crate::ids::MatchingId;

/// EventIDs remembered by default (`smdp.limits.retiredEventIds`): about 26 MiB at most (an
/// 8-byte digest in a ring and a set each, with their tables' spare room).
pub(crate) const CAPACITY: usize = 1 << 20;

/// The digest an EventID is remembered by.
pub(crate) fn digest(id: &MatchingId) -> u64 {
    let full = crate::ids::sha256(id.as_str().as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&full[..8]);
    u64::from_le_bytes(first)
}

/// The retired EventIDs.
#[derive(Debug)]
pub(crate) struct Retired {
    inner: Mutex<Inner>,
    capacity: usize,
    evicted: AtomicU64,
}

#[derive(Debug, Default)]
struct Inner {
    set: HashSet<u64>,
    /// Oldest first.
    order: VecDeque<u64>,
}

impl Default for Retired {
    fn default() -> Self {
        Retired::with_capacity(CAPACITY)
    }
}

impl Retired {
    /// A memory of at most `capacity` EventIDs.
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        Retired {
            inner: Mutex::default(),
            capacity: capacity.max(1),
            evicted: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // Each change leaves the set and the ring in step.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether `id` was retired (and is still remembered).
    pub(crate) fn contains(&self, id: &MatchingId) -> bool {
        self.lock().set.contains(&digest(id))
    }

    /// Retires `id`.
    pub(crate) fn retire(&self, id: &MatchingId) {
        self.retire_digest(digest(id));
    }

    /// Retires an EventID known by its digest (the state file keeps digests).
    pub(crate) fn retire_digest(&self, d: u64) {
        let mut inner = self.lock();
        if !inner.set.insert(d) {
            return;
        }
        inner.order.push_back(d);
        if inner.order.len() > self.capacity {
            if let Some(oldest) = inner.order.pop_front() {
                inner.set.remove(&oldest);
                self.evicted.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// The digests, oldest first (for the state file).
    pub(crate) fn digests(&self) -> Vec<u64> {
        self.lock().order.iter().copied().collect()
    }

    /// How many are remembered.
    pub(crate) fn len(&self) -> usize {
        self.lock().order.len()
    }

    /// How many were forgotten to stay within the capacity.
    pub(crate) fn evicted(&self) -> u64 {
        self.evicted.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: usize) -> MatchingId {
        format!("EVT-{n}").parse().unwrap()
    }

    #[test]
    fn the_newest_are_remembered_within_the_capacity() {
        let retired = Retired::with_capacity(3);
        for n in 0..5 {
            retired.retire(&id(n));
        }
        assert_eq!(retired.len(), 3);
        assert_eq!(retired.evicted(), 2);
        assert!(!retired.contains(&id(0)) && !retired.contains(&id(1)));
        assert!((2..5).all(|n| retired.contains(&id(n))));
        // Retiring one already remembered changes nothing.
        retired.retire(&id(4));
        assert_eq!((retired.len(), retired.evicted()), (3, 2));
    }
}
