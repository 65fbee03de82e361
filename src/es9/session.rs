//! RSP sessions, keyed by transactionId (SGP.22 §3.1.1.4): created by InitiateAuthentication,
//! extended by AuthenticateClient, ended by CancelSession, a refusal that stops the procedure,
//! or GetBoundProfilePackage, after which the world awaits the installation result
//! ([`crate::app::awaiting`]).
//!
//! Bounded in number (and so in bytes: a session holds a few hundred bytes plus its profile
//! metadata) and in time: a session untouched for its time to live ([`SESSION_TTL`] by default,
//! on the mock's clock) is forgotten, and past [`MAX_SESSIONS`] the oldest goes first.

use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

pub(crate) use crate::app::awaiting::{BindingKeys, Delivered};
use crate::app::transaction::Table;
pub(crate) use crate::app::transaction::{EuiccIdentity, OrderRef, TransactionId};
use crate::app::World;
use crate::clock::{Clock, ClockMark};

/// Sessions in progress kept at most.
pub(crate) const MAX_SESSIONS: usize = 10_000;
/// A session in progress untouched this long is forgotten, by default.
pub(crate) const SESSION_TTL: Duration = Duration::from_secs(600);

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

/// One RSP session in progress.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    /// The world it started in: a reset or a new scenario ends it. Weak, so that sessions left
    /// behind by a reset do not keep the old world's profiles in memory.
    pub(crate) world: Weak<World>,
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
    /// On a download retry: what the earlier package of the order was bound with, whose
    /// otPK.EUICC.ECKA went out as `bppEuiccOtpk` (§3.1.3 step 5).
    pub(crate) earlier: Option<Arc<BindingKeys>>,
}

/// The sessions of one ES9+ listener.
#[derive(Debug)]
pub(crate) struct Sessions {
    active: Mutex<Table<Session>>,
    ttl: Duration,
    clock: Clock,
}

impl Sessions {
    /// Sessions forgotten when untouched for `ttl` on `clock`.
    pub(crate) fn new(ttl: Duration, clock: Clock) -> Self {
        Sessions {
            active: Mutex::default(),
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
        if self.expired(session.touched) || !session.world.upgrade().is_some_and(|w| current(&w)) {
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
        if self.expired(session.touched) || !session.world.upgrade().is_some_and(|w| current(&w)) {
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

    /// Sessions in progress.
    #[cfg(test)]
    pub(crate) fn count(&self) -> usize {
        self.active().map.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Scenario;

    fn session(world: &Arc<World>, clock: &Clock) -> Session {
        Session {
            world: Arc::downgrade(world),
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
            earlier: None,
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
        assert_eq!(sessions.count(), MAX_SESSIONS, "the oldest went first");
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
        assert_eq!(sessions.count(), 1);
        // A reset world ends its sessions.
        let tid = TransactionId::random();
        sessions.start(tid, session(&world, &clock));
        assert!(sessions.get(&tid, |_| false).is_none());
    }

    /// Sessions do not keep their world alive: after a reset (the app drops the old world) its
    /// profiles are freed, and its sessions are gone.
    #[tokio::test(start_paused = true)]
    async fn sessions_do_not_keep_a_replaced_world() {
        let world = Arc::new(World::new(Arc::new(Scenario::default_scenario().unwrap())));
        let clock = Clock::system();
        let sessions = Sessions::new(Duration::from_secs(50), clock.clone());
        let tid = TransactionId::random();
        sessions.start(tid, session(&world, &clock));
        let weak = Arc::downgrade(&world);
        drop(world);
        assert!(weak.upgrade().is_none(), "the world was freed");
        assert!(sessions.get(&tid, |_| true).is_none());
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
