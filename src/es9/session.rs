//! RSP sessions, keyed by transactionId (SGP.22 §3.1.1.4): created by InitiateAuthentication,
//! extended by AuthenticateClient and GetBoundProfilePackage, ended by CancelSession or the
//! installation result.
//!
//! Bounded in number (and so in bytes: a session holds a few hundred bytes plus its profile
//! metadata) and in time: a session untouched for its time to live ([`SESSION_TTL`] by default) is forgotten, and past
//! [`MAX_SESSIONS`] the oldest goes first. A session whose Bound Profile Package was delivered
//! waits for its installation result much longer (an LPA such as lpac sends it only when asked
//! to process notifications), in a second table of its own bound.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::app::World;
use crate::clock::{Clock, ClockMark};
use crate::ids::{Eid, Iccid, IccidKey};

/// Sessions in progress kept at most.
pub(crate) const MAX_SESSIONS: usize = 10_000;
/// A session in progress untouched this long is forgotten, by default.
pub(crate) const SESSION_TTL: Duration = Duration::from_secs(600);
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

/// How far a session has come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stage {
    /// InitiateAuthentication answered.
    Initiated,
    /// AuthenticateClient succeeded: GetBoundProfilePackage may follow.
    Authenticated,
    /// A call is working on the session: a second call with the same transactionId meanwhile
    /// finds it taken.
    Busy,
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

/// One RSP session in progress.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    /// The world it started in: a reset or a new scenario ends it.
    pub(crate) world: Arc<World>,
    pub(crate) stage: Stage,
    /// When a call last used it, on the mock's clock: advancing the clock ages sessions too.
    pub(crate) touched: ClockMark,
    /// The SM-DP+ address as the LPA sent it, echoed in `serverSigned1`.
    pub(crate) smdp_address: String,
    pub(crate) server_challenge: [u8; 16],
    /// The SVN the eUICC declared in `euiccInfo1`.
    pub(crate) svn: [u8; 3],
    /// `euiccCiPKIdToBeUsed`: the CI the eUICC must sign under.
    pub(crate) ci: Vec<u8>,
    pub(crate) euicc: Option<EuiccIdentity>,
    pub(crate) order: Option<OrderRef>,
    /// `smdpSignature2`, which `euiccSignature2` covers.
    pub(crate) smdp_signature2: Option<[u8; 64]>,
    /// The StoreMetadataRequest sent as `profileMetadata`, bound into the package as well.
    pub(crate) metadata: Vec<u8>,
}

/// What an installation result is checked against, after the package was delivered.
#[derive(Debug, Clone)]
pub(crate) struct Delivered {
    pub(crate) world: Arc<World>,
    pub(crate) euicc: EuiccIdentity,
    pub(crate) order: OrderRef,
}

#[derive(Debug)]
struct Table<T> {
    map: HashMap<TransactionId, T>,
    /// Insertion order, oldest first; entries already removed from `map` are skipped.
    order: VecDeque<TransactionId>,
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
    fn insert(&mut self, tid: TransactionId, value: T, capacity: usize) -> usize {
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

/// The sessions of one ES9+ listener.
#[derive(Debug)]
pub(crate) struct Sessions {
    active: Mutex<Table<Session>>,
    delivered: Mutex<Table<Delivered>>,
    ttl: Duration,
    clock: Clock,
}

impl Sessions {
    /// Sessions forgotten when untouched for `ttl` on `clock`.
    pub(crate) fn new(ttl: Duration, clock: Clock) -> Self {
        Sessions {
            active: Mutex::default(),
            delivered: Mutex::default(),
            ttl,
            clock,
        }
    }

    /// Whether a session last touched at `touched` has outlived its time to live.
    fn expired(&self, touched: ClockMark) -> bool {
        self.clock.elapsed(touched) > self.ttl
    }

    fn active(&self) -> std::sync::MutexGuard<'_, Table<Session>> {
        self.active.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn delivered(&self) -> std::sync::MutexGuard<'_, Table<Delivered>> {
        self.delivered.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts a session.
    pub(crate) fn start(&self, tid: TransactionId, session: Session) {
        let mut table = self.active();
        // Expired sessions at the front go first.
        while let Some(oldest) = table.order.front().copied() {
            match table.map.get(&oldest) {
                Some(s) if self.expired(s.touched) => {
                    table.map.remove(&oldest);
                    table.order.pop_front();
                }
                Some(_) => break,
                None => {
                    table.order.pop_front();
                }
            }
        }
        table.insert(tid, session, MAX_SESSIONS);
    }

    /// A copy of the session `tid`, if it is known, not expired and of the current world.
    pub(crate) fn get(
        &self,
        tid: &TransactionId,
        current: impl Fn(&Arc<World>) -> bool,
    ) -> Option<Session> {
        let mut table = self.active();
        let session = table.map.get_mut(tid)?;
        if self.expired(session.touched) || !current(&session.world) {
            table.map.remove(tid);
            return None;
        }
        session.touched = self.clock.mark();
        Some(session.clone())
    }

    /// Takes the session `tid` for a call that may only follow `stage`: a copy, with the stored
    /// session marked [`Stage::Busy`] until [`Sessions::update`] or [`Sessions::end`], so two
    /// concurrent calls with the same transactionId cannot both proceed. `Err` with the stage
    /// it is in when it is known but not at `stage`.
    pub(crate) fn claim(
        &self,
        tid: &TransactionId,
        stage: Stage,
        current: impl Fn(&Arc<World>) -> bool,
    ) -> Option<Result<Session, Stage>> {
        let mut table = self.active();
        let session = table.map.get_mut(tid)?;
        if self.expired(session.touched) || !current(&session.world) {
            table.map.remove(tid);
            return None;
        }
        session.touched = self.clock.mark();
        if session.stage != stage {
            return Some(Err(session.stage));
        }
        let copy = session.clone();
        session.stage = Stage::Busy;
        Some(Ok(copy))
    }

    /// Stores the session's new state.
    pub(crate) fn update(&self, tid: TransactionId, session: Session) {
        let mut table = self.active();
        if let Some(slot) = table.map.get_mut(&tid) {
            *slot = session;
        }
    }

    /// Ends the session `tid`.
    pub(crate) fn end(&self, tid: &TransactionId) {
        self.active().map.remove(tid);
    }

    /// The package of session `tid` was delivered: the session ends, and its installation
    /// result is awaited.
    pub(crate) fn delivered_to(&self, tid: TransactionId, delivered: Delivered) {
        self.end(&tid);
        self.delivered().insert(tid, delivered, MAX_DELIVERED);
    }

    /// What the installation result of `tid` is checked against: taken, so a repeated result
    /// finds nothing.
    pub(crate) fn take_delivered(&self, tid: &TransactionId) -> Option<Delivered> {
        self.delivered().map.remove(tid)
    }

    /// A copy of what the installation result of `tid` is checked against, if its world is
    /// current (a reset or a new scenario forgets it).
    pub(crate) fn delivered_copy(
        &self,
        tid: &TransactionId,
        current: impl Fn(&Arc<World>) -> bool,
    ) -> Option<Delivered> {
        let mut table = self.delivered();
        let delivered = table.map.get(tid)?;
        if !current(&delivered.world) {
            table.map.remove(tid);
            return None;
        }
        Some(delivered.clone())
    }

    /// Puts back what [`Sessions::take_delivered`] took (the result did not verify).
    pub(crate) fn return_delivered(&self, tid: TransactionId, delivered: Delivered) {
        self.delivered().insert(tid, delivered, MAX_DELIVERED);
    }

    /// Sessions in progress and delivered packages awaiting their result.
    #[cfg(test)]
    pub(crate) fn counts(&self) -> (usize, usize) {
        (self.active().map.len(), self.delivered().map.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Scenario;

    fn session(world: &Arc<World>, clock: &Clock) -> Session {
        Session {
            world: world.clone(),
            stage: Stage::Initiated,
            touched: clock.mark(),
            smdp_address: "localhost:6444".into(),
            server_challenge: [0; 16],
            svn: [2, 2, 0],
            ci: Vec::new(),
            euicc: None,
            order: None,
            smdp_signature2: None,
            metadata: Vec::new(),
        }
    }

    // Paused tokio time: the clock moves only when the test moves it, so the bound is tested
    // apart from expiry however slowly the machine runs.
    #[tokio::test(start_paused = true)]
    async fn sessions_are_bounded_in_number_and_expire() {
        let world = Arc::new(World::new(Arc::new(Scenario::default_scenario().unwrap())));
        let clock = Clock::system();
        let sessions = Sessions::new(Duration::from_secs(50), clock.clone());
        let first = TransactionId::random();
        sessions.start(first, session(&world, &clock));
        for _ in 0..MAX_SESSIONS + 10 {
            sessions.start(TransactionId::random(), session(&world, &clock));
        }
        assert_eq!(sessions.counts().0, MAX_SESSIONS, "the oldest went first");
        assert!(sessions.get(&first, |_| true).is_none());
        let last = TransactionId::random();
        sessions.start(last, session(&world, &clock));
        // Alive for 50 s from its last use, not from its start.
        tokio::time::advance(Duration::from_secs(49)).await;
        assert!(sessions.get(&last, |_| true).is_some());
        tokio::time::advance(Duration::from_secs(49)).await;
        assert!(sessions.get(&last, |_| true).is_some(), "touched, so alive");
        // The mock's clock ages sessions too (the admin API's clock control).
        clock.advance(Duration::from_secs(51));
        assert!(sessions.get(&last, |_| true).is_none(), "expired");
        // A new session sweeps the expired ones at the front.
        sessions.start(TransactionId::random(), session(&world, &clock));
        assert_eq!(sessions.counts().0, 1);
        // A reset world ends its sessions.
        let tid = TransactionId::random();
        sessions.start(tid, session(&world, &clock));
        assert!(sessions.get(&tid, |_| false).is_none());
    }

    #[test]
    fn transaction_ids_are_1_to_16_bytes() {
        assert!(TransactionId::from_bytes(&[]).is_none());
        assert!(TransactionId::from_bytes(&[1; 17]).is_none());
        assert_eq!(
            TransactionId::from_bytes(&[1, 2]).unwrap().as_bytes(),
            [1, 2]
        );
    }
}
