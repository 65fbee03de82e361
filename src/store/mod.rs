//! The in-memory profile store: profiles by ICCID, plus the indexes that make ES2+ fast and safe
//! under concurrency.
//!
//! - `slots`: every profile, each behind its own lock. The inventory is fixed when the store is
//!   built (profiles change state, they are never added or removed), so
//! - `index`: ICCID → slot is read-only and needs no lock at all.
//! - `matching_ids`: MatchingID → ICCID (a DashMap), so a MatchingID is bound to at most one order.
//! - `pools`: per profile type, the Available slots, so DownloadOrder by profileType takes one
//!   in O(1) instead of scanning the inventory.
//!
//! All mutation goes through [`Store::update_then`] (or [`Store::allocate_then`]; the
//! application calls them through `App::commit`), which runs the caller's check-and-transition
//! closure, the index updates and the caller's `then` under the profile's slot lock. Lock order
//! is always slot → index (MatchingID entry or pool mutex); nothing takes a slot lock while
//! holding an index lock, so there is no deadlock and no profile can be handed out twice.

pub(crate) mod events;
mod retired;

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use dashmap::mapref::entry::Entry;
use dashmap::DashMap;

use crate::ids::{Eid, IccidKey, MatchingId};
use crate::profile::machine::{Effect, Step};
use crate::profile::{OrderMatchingId, Profile, ProfileState};

/// Most profiles one [`Store::page`] call looks at.
pub(crate) const PAGE_SCAN: usize = 20_000;

/// SM-DS EventIDs a store remembers by default (`smdp.limits.retiredEventIds`).
pub(crate) const RETIRED_EVENT_IDS: usize = retired::CAPACITY;

/// The profile store. Cheap to clone; clones share the same data.
#[derive(Debug, Clone, Default)]
pub struct Store {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    slots: Vec<Mutex<Profile>>,
    index: HashMap<IccidKey, u32>,
    matching_ids: DashMap<MatchingId, IccidKey>,
    /// The profiles linked to each EID, in inventory order: the ES9+ lookup by EID alone (the
    /// Default SM-DP+ flow) without a pass over the inventory.
    eids: DashMap<Eid, Vec<u32>>,
    /// MatchingIDs that served as SM-DS EventIDs: never to be used again (SGP.22 §3.6.1.1).
    retired_event_ids: retired::Retired,
    pools: HashMap<Arc<str>, Mutex<Pool>>,
    /// Profiles per type and state, kept as commits happen, so counting costs nothing however
    /// large the inventory.
    counts: HashMap<Arc<str>, [AtomicUsize; 9]>,
    /// Woken after every committed change, for long-polls.
    changed: crate::change_signal::ChangeSignal,
    /// Every commit holds it shared; [`Store::for_each_consistent`] holds it exclusively, so
    /// a state file sees one moment (a MatchingID can move between two profiles otherwise).
    commits: std::sync::RwLock<()>,
}

/// The result of a committed update.
#[derive(Debug, Clone)]
pub struct Updated {
    /// The profile after the update.
    pub profile: Profile,
    /// The effects of the transition.
    pub effects: Vec<Effect>,
}

/// Why a change to a profile was not committed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpdateError<E> {
    /// No profile has this ICCID.
    #[error("no profile has this ICCID")]
    UnknownIccid,
    /// The closure refused the update.
    #[error("{0}")]
    Refused(E),
    /// The MatchingID of the new state is bound to another profile's order.
    #[error("MatchingID {0} is bound to another profile's order")]
    MatchingIdInUse(MatchingId),
}

/// Why [`Store::allocate`] did not commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllocateError<E> {
    /// No Available profile of the type is left.
    Exhausted,
    /// The closure refused the update.
    Refused(E),
}

impl Store {
    /// A store holding `profiles`, each in its type's pool if Available. A repeated ICCID keeps
    /// its first profile (scenarios refuse repeats before this point).
    pub fn new(profiles: impl IntoIterator<Item = Profile>) -> Self {
        Self::with_capacity(profiles, 0)
    }

    /// Like [`Store::new`], with room for `expected` profiles reserved up front.
    pub fn with_capacity(profiles: impl IntoIterator<Item = Profile>, expected: usize) -> Self {
        Self::remembering(profiles, expected, RETIRED_EVENT_IDS)
    }

    /// Like [`Store::with_capacity`], remembering at most `retired` SM-DS EventIDs.
    pub fn remembering(
        profiles: impl IntoIterator<Item = Profile>,
        expected: usize,
        retired: usize,
    ) -> Self {
        let mut slots = Vec::with_capacity(expected);
        let mut index = HashMap::with_capacity(expected);
        let mut pools: HashMap<Arc<str>, Pool> = HashMap::new();
        let matching_ids = DashMap::new();
        let eids: DashMap<Eid, Vec<u32>> = DashMap::new();
        let mut counts: HashMap<Arc<str>, [AtomicUsize; 9]> = HashMap::new();
        for p in profiles {
            let key = p.iccid.key();
            let Ok(slot) = u32::try_from(slots.len()) else {
                break; // more than 4 billion profiles: not a test inventory
            };
            if index.insert(key, slot).is_some() {
                debug_assert!(false, "ICCID {} given twice", p.iccid);
                continue;
            }
            counts.entry(p.profile_type.clone()).or_default()[p.state.index()]
                .fetch_add(1, Ordering::Relaxed);
            let pool = pools.entry(p.profile_type.clone()).or_default();
            if p.state == ProfileState::Available {
                pool.insert(slot);
            }
            if let Some(id) = p.matching_id.as_ref().and_then(OrderMatchingId::id) {
                matching_ids.insert(id.clone(), key);
            }
            if let Some(eid) = p.eid {
                eids.entry(eid).or_default().push(slot);
            }
            slots.push(Mutex::new(p));
        }
        slots.shrink_to_fit();
        Store {
            inner: Arc::new(Inner {
                slots,
                index,
                matching_ids,
                eids,
                retired_event_ids: retired::Retired::with_capacity(retired),
                counts,
                commits: std::sync::RwLock::new(()),
                changed: crate::change_signal::ChangeSignal::new(),
                pools: pools
                    .into_iter()
                    .map(|(ty, pool)| (ty, Mutex::new(pool)))
                    .collect(),
            }),
        }
    }

    fn slot(&self, key: IccidKey) -> Option<(u32, &Mutex<Profile>)> {
        let slot = *self.inner.index.get(&key)?;
        self.inner.slots.get(slot as usize).map(|m| (slot, m))
    }

    /// A copy of the profile with this ICCID.
    pub fn get(&self, key: IccidKey) -> Option<Profile> {
        self.slot(key).map(|(_, m)| lock(m).clone())
    }

    /// The ICCID whose order holds this MatchingID.
    pub fn find_by_matching_id(&self, id: &MatchingId) -> Option<IccidKey> {
        self.inner.matching_ids.get(id).map(|k| *k)
    }

    /// Copies of the profiles linked to `eid` that pass `keep`, in inventory order.
    pub fn linked_to(&self, eid: Eid, keep: impl Fn(&Profile) -> bool) -> Vec<Profile> {
        // The slots are copied out first: a slot's lock is never taken under the index's.
        let slots = self
            .inner
            .eids
            .get(&eid)
            .map(|s| s.clone())
            .unwrap_or_default();
        slots
            .into_iter()
            .filter_map(|slot| self.inner.slots.get(slot as usize))
            .map(|m| lock(m).clone())
            .filter(|p| p.eid == Some(eid) && keep(p))
            .collect()
    }

    /// How many profiles the store holds.
    pub fn len(&self) -> usize {
        self.inner.slots.len()
    }

    /// Whether the store is empty.
    pub fn is_empty(&self) -> bool {
        self.inner.slots.is_empty()
    }

    /// How many Available profiles of this type are left.
    pub fn available_count(&self, profile_type: &str) -> usize {
        self.inner
            .pools
            .get(profile_type)
            .map_or(0, |p| lock(p).members.len())
    }

    /// Runs `f` on every profile, in inventory order, each under its own lock (not one
    /// consistent cut across profiles).
    pub fn for_each(&self, mut f: impl FnMut(&Profile)) {
        for slot in &self.inner.slots {
            f(&lock(slot));
        }
    }

    /// Like [`Store::for_each`], with every commit held off meanwhile: one consistent moment,
    /// with the digests of the retired EventIDs of that moment. Keep `f` short.
    pub fn for_each_consistent(&self, f: impl FnMut(&Profile)) -> Vec<u64> {
        self.for_each_consistent_with(f, || ()).0
    }

    /// [`Store::for_each_consistent`], and `beside` read in the same cut: what the effects
    /// of commits change beside the store (the SM-DS's Event Records) agrees with the profiles.
    pub(crate) fn for_each_consistent_with<T>(
        &self,
        mut f: impl FnMut(&Profile),
        beside: impl FnOnce() -> T,
    ) -> (Vec<u64>, T) {
        let _all = self
            .inner
            .commits
            .write()
            .unwrap_or_else(|e| e.into_inner());
        for slot in &self.inner.slots {
            f(&lock(slot));
        }
        (self.inner.retired_event_ids.digests(), beside())
    }

    fn commit_guard(&self) -> std::sync::RwLockReadGuard<'_, ()> {
        self.inner.commits.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Marks EventIDs, by their digests, as used (the state file keeps digests).
    pub(crate) fn retire_event_digests(&self, digests: impl IntoIterator<Item = u64>) {
        for d in digests {
            self.inner.retired_event_ids.retire_digest(d);
        }
    }

    /// The digest by which an EventID is remembered as used.
    pub(crate) fn event_digest(id: &MatchingId) -> u64 {
        retired::digest(id)
    }

    /// `(remembered, forgotten)`: EventIDs remembered as used, and how many were forgotten to
    /// keep within the bound (see `store/retired.rs`).
    pub fn retired_event_ids(&self) -> (usize, u64) {
        let r = &self.inner.retired_event_ids;
        (r.len(), r.evicted())
    }

    /// Puts back a profile saved earlier (state file), with its MatchingID and pool membership.
    pub fn restore(&self, profile: Profile) -> Result<(), UpdateError<()>> {
        let key = profile.iccid.key();
        self.update::<()>(key, |_| {
            Ok(Step {
                next: profile,
                effects: Vec::new(),
            })
        })
        .map(|_| ())
    }

    /// Copies of all profiles, in inventory order.
    pub fn snapshot(&self) -> Vec<Profile> {
        self.inner.slots.iter().map(|m| lock(m).clone()).collect()
    }

    /// Profiles counted by type and state (indexed like [`ProfileState::ALL`]), kept as
    /// commits happen: no pass over the inventory.
    pub fn counts_by_type(&self) -> HashMap<Arc<str>, [usize; 9]> {
        self.inner
            .counts
            .iter()
            .map(|(ty, states)| {
                let mut out = [0usize; 9];
                for (n, count) in out.iter_mut().zip(states) {
                    *n = count.load(Ordering::Relaxed);
                }
                (ty.clone(), out)
            })
            .collect()
    }

    /// Moves a profile from one state's count to another's. Called under the slot's lock.
    fn recount(&self, before: &Profile, after: &Profile) {
        if before.state == after.state {
            return;
        }
        if let Some(states) = self.inner.counts.get(&after.profile_type) {
            states[before.state.index()].fetch_sub(1, Ordering::Relaxed);
            states[after.state.index()].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Up to `limit` profiles that pass `keep`, from inventory position `start` on, and the
    /// position to continue from. Positions never change, so pages stay stable while profiles
    /// change state. One call looks at most at [`PAGE_SCAN`] profiles: a filter that matches
    /// little gives a short (even empty) page with a position to continue from, rather than
    /// one request scanning a whole large inventory.
    pub fn page(
        &self,
        start: usize,
        limit: usize,
        keep: impl Fn(&Profile) -> bool,
    ) -> (Vec<Profile>, Option<usize>) {
        let mut out = Vec::new();
        for (i, slot) in self.inner.slots.iter().enumerate().skip(start) {
            if out.len() == limit || i - start == PAGE_SCAN {
                return (out, Some(i));
            }
            let p = lock(slot);
            if keep(&p) {
                out.push(p.clone());
            }
        }
        (out, None)
    }

    /// Waits until `done` holds for the profile with this ICCID, for at most `timeout`.
    pub async fn wait_for(
        &self,
        key: IccidKey,
        timeout: std::time::Duration,
        done: impl Fn(&Profile) -> bool,
    ) -> Option<Profile> {
        // The ICCID is checked once: the inventory never changes under a store.
        self.slot(key)?;
        let deadline = tokio::time::Instant::now() + timeout;
        self.inner
            .changed
            .wait_until(deadline, || self.get(key).filter(|p| done(p)))
            .await
    }

    /// Runs `check` on the profile with this ICCID and commits the step it returns.
    ///
    /// `check` runs under the profile's lock and must not touch the store. On any error nothing
    /// changes.
    pub fn update<E>(
        &self,
        key: IccidKey,
        check: impl FnOnce(&Profile) -> Result<Step, E>,
    ) -> Result<Updated, UpdateError<E>> {
        self.update_then(key, check, |updated| updated)
    }

    /// Like [`Store::update`], and runs `then` on the committed update while the profile is still
    /// locked, so whatever `then` starts (e.g. queuing notifications) happens in commit order.
    /// `then` must not touch the store.
    pub fn update_then<E, T>(
        &self,
        key: IccidKey,
        check: impl FnOnce(&Profile) -> Result<Step, E>,
        then: impl FnOnce(Updated) -> T,
    ) -> Result<T, UpdateError<E>> {
        let (slot, mutex) = self.slot(key).ok_or(UpdateError::UnknownIccid)?;
        let _commit = self.commit_guard();
        let profile = lock(mutex);
        let step = check(&profile).map_err(UpdateError::Refused)?;
        self.rebind_matching_id(key, &profile, &step.next)?;
        Ok(self.commit(slot, profile, step, then))
    }

    /// Takes an Available profile of `profile_type` and commits the step `check` returns for it.
    ///
    /// `check` sees only Available profiles. If it refuses, the profile stays Available and in
    /// the pool. Amortised O(1): no scan of the inventory.
    pub fn allocate<E>(
        &self,
        profile_type: &str,
        check: impl Fn(&Profile) -> Result<Step, E>,
    ) -> Result<Updated, AllocateError<E>> {
        self.allocate_then(profile_type, check, |updated| updated)
    }

    /// Like [`Store::allocate`], and runs `then` on the committed update while the profile is
    /// still locked (see [`Store::update_then`]).
    pub fn allocate_then<E, T>(
        &self,
        profile_type: &str,
        check: impl Fn(&Profile) -> Result<Step, E>,
        then: impl FnOnce(Updated) -> T,
    ) -> Result<T, AllocateError<E>> {
        let pool = self
            .inner
            .pools
            .get(profile_type)
            .ok_or(AllocateError::Exhausted)?;
        loop {
            // The pool lock is released before the slot lock is taken (lock order).
            let _commit = self.commit_guard();
            let candidate = lock(pool).pop();
            let slot = candidate.ok_or(AllocateError::Exhausted)?;
            let Some(mutex) = self.inner.slots.get(slot as usize) else {
                continue;
            };
            let profile = lock(mutex);
            if profile.state != ProfileState::Available {
                // Taken by ICCID since it was queued: a stale pool slot.
                self.sync_pool(slot, &profile);
                continue;
            }
            let step = match check(&profile) {
                Ok(step) => step,
                Err(e) => {
                    self.sync_pool(slot, &profile);
                    return Err(AllocateError::Refused(e));
                }
            };
            let key = profile.iccid.key();
            // A fresh DownloadOrder never carries a MatchingID, but keep the index honest.
            if self
                .rebind_matching_id::<()>(key, &profile, &step.next)
                .is_err()
            {
                self.sync_pool(slot, &profile);
                continue;
            }
            return Ok(self.commit(slot, profile, step, then));
        }
    }

    /// Makes `step` the profile's state (its counts, its pool membership), runs `then` on the
    /// update while the profile is still locked, and announces the change once it is unlocked.
    /// The caller holds the commit guard and has rebound the MatchingID.
    fn commit<T>(
        &self,
        slot: u32,
        mut profile: MutexGuard<'_, Profile>,
        mut step: Step,
        then: impl FnOnce(Updated) -> T,
    ) -> T {
        step.next.modified = true;
        self.recount(&profile, &step.next);
        self.relink_eid(slot, &profile, &step.next);
        *profile = step.next;
        self.sync_pool(slot, &profile);
        let result = then(Updated {
            profile: profile.clone(),
            effects: step.effects,
        });
        drop(profile);
        self.inner.changed.notify();
        result
    }

    /// Moves the MatchingID index of `key` from the profile `before` to `after`; fails if the
    /// new MatchingID is bound to another order or was an SM-DS EventID before.
    fn rebind_matching_id<E>(
        &self,
        key: IccidKey,
        before: &Profile,
        after: &Profile,
    ) -> Result<(), UpdateError<E>> {
        let old = before.matching_id.as_ref().and_then(OrderMatchingId::id);
        let new = after.matching_id.as_ref().and_then(OrderMatchingId::id);
        if old == new {
            return Ok(());
        }
        if let Some(new) = new {
            match self.inner.matching_ids.entry(new.clone()) {
                Entry::Occupied(o) if *o.get() != key => {
                    return Err(UpdateError::MatchingIdInUse(new.clone()))
                }
                Entry::Occupied(_) => {}
                // Asked while the entry is held: an order giving this MatchingID up retires it
                // before it leaves the index, so it is either still in the index (occupied)
                // or already retired here, never neither.
                Entry::Vacant(_) if self.inner.retired_event_ids.contains(new) => {
                    return Err(UpdateError::MatchingIdInUse(new.clone()))
                }
                Entry::Vacant(v) => {
                    v.insert(key);
                }
            }
        }
        if let Some(old) = old {
            // Retired before it leaves the index: in between, a concurrent ConfirmOrder could
            // otherwise take an EventID that must never be used again.
            if before.smds_address.is_some() {
                self.inner.retired_event_ids.retire(old);
            }
            self.inner.matching_ids.remove_if(old, |_, k| *k == key);
        }
        Ok(())
    }

    /// Moves the EID index of the profile in `slot` from `before` to `after`. Called under the
    /// slot's lock.
    fn relink_eid(&self, slot: u32, before: &Profile, after: &Profile) {
        if before.eid == after.eid {
            return;
        }
        if let Some(old) = before.eid {
            if let Entry::Occupied(mut o) = self.inner.eids.entry(old) {
                o.get_mut().retain(|s| *s != slot);
                if o.get().is_empty() {
                    o.remove();
                }
            }
        }
        if let Some(new) = after.eid {
            let mut linked = self.inner.eids.entry(new).or_default();
            if let Err(at) = linked.binary_search(&slot) {
                linked.insert(at, slot);
            }
        }
    }

    /// Makes the pool membership of the profile in `slot` match its state. Called under the
    /// slot's lock.
    fn sync_pool(&self, slot: u32, profile: &Profile) {
        if let Some(pool) = self.inner.pools.get(&profile.profile_type) {
            let mut pool = lock(pool);
            if profile.state == ProfileState::Available {
                pool.insert(slot);
            } else {
                pool.remove(slot);
            }
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Updates replace a profile whole and pool membership is re-synchronised on every update,
    // so a lock poisoned by a panic elsewhere still guards consistent data.
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// The Available profiles of one type, in FIFO order.
///
/// `members` is exact and maps each key to the sequence number of its current slot; `queue` may
/// hold stale slots (a key removed, or removed and inserted again), which `pop` skips by
/// comparing sequence numbers. The queue is compacted when stale slots outnumber live ones.
#[derive(Debug, Default)]
struct Pool {
    queue: VecDeque<(u32, u64)>,
    members: HashMap<u32, u64>,
    next_seq: u64,
}

impl Pool {
    fn insert(&mut self, key: u32) {
        if let std::collections::hash_map::Entry::Vacant(slot) = self.members.entry(key) {
            slot.insert(self.next_seq);
            self.queue.push_back((key, self.next_seq));
            self.next_seq += 1;
        }
    }

    fn remove(&mut self, key: u32) {
        if self.members.remove(&key).is_some() && self.queue.len() > 2 * self.members.len() + 64 {
            self.compact();
        }
    }

    fn pop(&mut self) -> Option<u32> {
        while let Some((key, seq)) = self.queue.pop_front() {
            if self.members.get(&key) == Some(&seq) {
                self.members.remove(&key);
                return Some(key);
            }
        }
        None
    }

    fn compact(&mut self) {
        let members = &self.members;
        self.queue
            .retain(|(key, seq)| members.get(key) == Some(seq));
    }
}

#[cfg(test)]
mod tests;
