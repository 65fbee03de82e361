//! RSP sessions, keyed by transactionId (SGP.22 §3.1.1.4): created by InitiateAuthentication,
//! extended by AuthenticateClient, ended by CancelSession, a refusal that stops the procedure,
//! or GetBoundProfilePackage, after which the world awaits the installation result
//! ([`crate::app::awaiting`]).
//!
//! Two tables, because anyone who reaches the port can start a session while only an eUICC
//! with a certificate of a trusted CI can authenticate one: sessions after InitiateAuthentication
//! (anonymous) and after AuthenticateClient (authenticated). Anonymous sessions are bounded per
//! client address ([`Limits::anonymous_per_address`]: the next InitiateAuthentication is refused
//! with HTTP 503) and overall (the oldest anonymous one goes); they never push an authenticated
//! one out. Each table is bounded in number (and so in bytes: a session holds a few hundred
//! bytes plus its profile metadata) and in time: a session untouched for its time to live
//! ([`SESSION_TTL`] by default, on the mock's clock) is forgotten.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

pub(crate) use crate::app::awaiting::{BindingKeys, Delivered};
use crate::app::transaction::Table;
pub(crate) use crate::app::transaction::{EuiccIdentity, OrderRef, TransactionId};
use crate::app::World;
use crate::clock::{Clock, ClockMark};
use crate::metrics::Counters;

/// Sessions in progress kept at most, in each table.
pub(crate) const MAX_SESSIONS: usize = 10_000;
/// Anonymous sessions one client address may have in progress, by default.
pub(crate) const ANONYMOUS_PER_ADDRESS: usize = 1_000;
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
    /// The address of the client that started it.
    pub(crate) source: IpAddr,
    /// The SM-DP+ address as the LPA sent it, echoed in `serverSigned1`.
    pub(crate) smdp_address: String,
    pub(crate) server_challenge: [u8; 16],
    /// The SVN the eUICC declared in `euiccInfo1`.
    pub(crate) svn: [u8; 3],
    /// `euiccCiPKIdToBeUsed`: the CI the eUICC must sign under.
    pub(crate) ci: Vec<u8>,
    /// The SM-DP+'s DPauth/DPpb pair in use: the brainpoolP256r1 one (else NIST P-256).
    pub(crate) brainpool: bool,
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

impl Session {
    /// The session InitiateAuthentication starts in `world` (ES9+'s or ES11's: they are the
    /// same, §5.8.1): what was `negotiated`, and the serverChallenge signed.
    pub(crate) fn initiated(
        world: &Arc<World>,
        touched: ClockMark,
        source: IpAddr,
        negotiated: super::authentication::Negotiated,
        server_challenge: [u8; 16],
    ) -> Session {
        Session {
            world: Arc::downgrade(world),
            stage: Stage::Initiated,
            touched,
            source,
            smdp_address: negotiated.address,
            server_challenge,
            svn: negotiated.svn,
            ci: negotiated.ci,
            brainpool: negotiated.brainpool,
            euicc: None,
            order: None,
            smdp_signature2: None,
            metadata: Vec::new(),
            earlier: None,
        }
    }
}

/// The bounds of the session tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limits {
    /// A session untouched this long is forgotten.
    pub(crate) ttl: Duration,
    /// Sessions kept at most in each table.
    pub(crate) max_sessions: usize,
    /// Anonymous sessions one client address may have in progress.
    pub(crate) anonymous_per_address: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            ttl: SESSION_TTL,
            max_sessions: MAX_SESSIONS,
            anonymous_per_address: ANONYMOUS_PER_ADDRESS,
        }
    }
}

/// Why a session was not started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TooManyFromAddress {
    /// The sessions that address has in progress.
    pub(crate) in_progress: usize,
}

/// The sessions of one ES9+ listener.
#[derive(Debug)]
pub(crate) struct Sessions {
    tables: Mutex<Tables>,
    limits: Limits,
    clock: Clock,
    /// Where refusals and evictions are counted (`/metrics`).
    counters: Arc<Counters>,
}

#[derive(Debug, Default)]
struct Tables {
    /// The world the sessions were started in: when a reset or a new scenario replaces it, the
    /// next session started drops them all (a reset means a clean instance).
    world: Weak<World>,
    anonymous: Table<Session>,
    authenticated: Table<Session>,
    /// Anonymous sessions in progress per client address (no entry for none).
    per_address: HashMap<IpAddr, usize>,
}

impl Tables {
    fn forget_address(&mut self, source: IpAddr) {
        if let Some(n) = self.per_address.get_mut(&source) {
            *n -= 1;
            if *n == 0 {
                self.per_address.remove(&source);
            }
        }
    }

    /// Removes `tid` from the anonymous table.
    fn remove_anonymous(&mut self, tid: &TransactionId) -> Option<Session> {
        let session = self.anonymous.map.remove(tid)?;
        self.forget_address(session.source);
        Some(session)
    }

    /// Removes `tid` from whichever table holds it.
    fn remove(&mut self, tid: &TransactionId) -> Option<Session> {
        self.remove_anonymous(tid)
            .or_else(|| self.authenticated.map.remove(tid))
    }

    fn get_mut(&mut self, tid: &TransactionId) -> Option<&mut Session> {
        if self.anonymous.map.contains_key(tid) {
            self.anonymous.map.get_mut(tid)
        } else {
            self.authenticated.map.get_mut(tid)
        }
    }
}

impl Sessions {
    /// Session tables bounded by `limits`, aged on `clock`, counting into `counters`.
    pub(crate) fn new(limits: Limits, clock: Clock, counters: Arc<Counters>) -> Self {
        Sessions {
            tables: Mutex::default(),
            limits,
            clock,
            counters,
        }
    }

    /// Whether a session last touched at `touched` has outlived its time to live.
    fn expired(&self, touched: ClockMark) -> bool {
        self.clock.elapsed(touched) > self.limits.ttl
    }

    fn tables(&self) -> std::sync::MutexGuard<'_, Tables> {
        self.tables.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts an anonymous session, unless its client address has its share in progress.
    /// The first session of a new world (after a reset) drops every session of the old one;
    /// expired sessions at the front go first; past the table's bound, the oldest anonymous
    /// session goes (counted).
    pub(crate) fn start(
        &self,
        tid: TransactionId,
        session: Session,
        current: impl Fn(&Arc<World>) -> bool,
    ) -> Result<(), TooManyFromAddress> {
        let mut tables = self.tables();
        if !tables.world.upgrade().is_some_and(|w| current(&w)) {
            *tables = Tables {
                world: session.world.clone(),
                ..Tables::default()
            };
        }
        self.sweep(&mut tables);
        let source = session.source;
        let mut in_progress = tables.per_address.get(&source).copied().unwrap_or(0);
        if in_progress >= self.limits.anonymous_per_address {
            // Rare, so a look at every anonymous session is affordable: drop the dead ones.
            let dead: Vec<TransactionId> = tables
                .anonymous
                .map
                .iter()
                .filter(|(_, s)| {
                    self.expired(s.touched) || !s.world.upgrade().is_some_and(|w| current(&w))
                })
                .map(|(tid, _)| *tid)
                .collect();
            for tid in &dead {
                tables.remove_anonymous(tid);
            }
            compact(&mut tables.anonymous);
            in_progress = tables.per_address.get(&source).copied().unwrap_or(0);
        }
        if in_progress >= self.limits.anonymous_per_address {
            Counters::bump(&self.counters.es9_sessions_refused_per_address);
            return Err(TooManyFromAddress { in_progress });
        }
        if tables.anonymous.map.insert(tid, session).is_none() {
            tables.anonymous.order.push_back(tid);
            *tables.per_address.entry(source).or_insert(0) += 1;
        }
        while tables.anonymous.map.len() > self.limits.max_sessions {
            let Some(oldest) = tables.anonymous.order.pop_front() else {
                break;
            };
            if tables.remove_anonymous(&oldest).is_some() {
                Counters::bump(&self.counters.es9_sessions_evicted_anonymous);
            }
        }
        Ok(())
    }

    /// Drops the expired sessions at the front of each table.
    fn sweep(&self, tables: &mut Tables) {
        while let Some(oldest) = tables.anonymous.order.front().copied() {
            match tables.anonymous.map.get(&oldest) {
                Some(s) if !self.expired(s.touched) => break,
                Some(_) => {
                    tables.remove_anonymous(&oldest);
                }
                None => {}
            }
            tables.anonymous.order.pop_front();
        }
        while let Some(oldest) = tables.authenticated.order.front().copied() {
            match tables.authenticated.map.get(&oldest) {
                Some(s) if !self.expired(s.touched) => break,
                Some(_) => {
                    tables.authenticated.map.remove(&oldest);
                }
                None => {}
            }
            tables.authenticated.order.pop_front();
        }
    }

    /// The live session `tid` (known, not expired, of the current world), touched now; a dead
    /// one is removed.
    fn live<'t>(
        &self,
        tables: &'t mut Tables,
        tid: &TransactionId,
        current: impl Fn(&Arc<World>) -> bool,
    ) -> Option<&'t mut Session> {
        let session = tables.get_mut(tid)?;
        if self.expired(session.touched) || !session.world.upgrade().is_some_and(|w| current(&w)) {
            tables.remove(tid);
            return None;
        }
        let session = tables.get_mut(tid)?;
        session.touched = self.clock.mark();
        Some(session)
    }

    /// A copy of the session `tid`, if it is known, not expired and of the current world.
    pub(crate) fn get(
        &self,
        tid: &TransactionId,
        current: impl Fn(&Arc<World>) -> bool,
    ) -> Option<Session> {
        let mut tables = self.tables();
        self.live(&mut tables, tid, current).map(|s| s.clone())
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
        let mut tables = self.tables();
        let session = self.live(&mut tables, tid, current)?;
        if session.stage != stage {
            return Some(Err(session.stage));
        }
        let copy = session.clone();
        session.stage = Stage::Busy;
        Some(Ok(copy))
    }

    /// Stores the session's new state. An anonymous session that is now authenticated moves
    /// to the authenticated table (past its bound, the oldest authenticated session goes,
    /// counted).
    pub(crate) fn update(&self, tid: TransactionId, session: Session) {
        let mut tables = self.tables();
        if session.stage == Stage::Authenticated && tables.remove_anonymous(&tid).is_some() {
            tables.authenticated.map.insert(tid, session);
            tables.authenticated.order.push_back(tid);
            while tables.authenticated.map.len() > self.limits.max_sessions {
                let Some(oldest) = tables.authenticated.order.pop_front() else {
                    break;
                };
                if tables.authenticated.map.remove(&oldest).is_some() {
                    Counters::bump(&self.counters.es9_sessions_evicted_authenticated);
                }
            }
            compact(&mut tables.anonymous);
            compact(&mut tables.authenticated);
        } else if let Some(slot) = tables.get_mut(&tid) {
            *slot = session;
        }
    }

    /// Ends the session `tid`.
    pub(crate) fn end(&self, tid: &TransactionId) {
        let mut tables = self.tables();
        tables.remove(tid);
        compact(&mut tables.anonymous);
        compact(&mut tables.authenticated);
    }

    /// Sessions in progress: anonymous, authenticated.
    #[cfg(test)]
    pub(crate) fn counts(&self) -> (usize, usize) {
        let tables = self.tables();
        (tables.anonymous.map.len(), tables.authenticated.map.len())
    }
}

/// Removed sessions leave their ids in the insertion order; keep it no larger than twice the
/// table.
fn compact(table: &mut Table<Session>) {
    if table.order.len() > 2 * table.map.len() + 64 {
        let live = &table.map;
        table.order.retain(|t| live.contains_key(t));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Scenario;
    use std::sync::atomic::Ordering;

    fn session(world: &Arc<World>, clock: &Clock) -> Session {
        Session {
            world: Arc::downgrade(world),
            stage: Stage::Initiated,
            touched: clock.mark(),
            smdp_address: "localhost:6444".into(),
            server_challenge: [0; 16],
            svn: [2, 2, 0],
            ci: Vec::new(),
            brainpool: false,
            euicc: None,
            order: None,
            smdp_signature2: None,
            metadata: Vec::new(),
            earlier: None,
            source: IpAddr::from([127, 0, 0, 1]),
        }
    }

    fn from(world: &Arc<World>, clock: &Clock, n: u32) -> Session {
        Session {
            source: IpAddr::from(n.to_be_bytes()),
            ..session(world, clock)
        }
    }

    const SMALL: Limits = Limits {
        ttl: Duration::from_secs(50),
        max_sessions: 100,
        anonymous_per_address: 10,
    };

    /// A world of the default scenario, the system clock and a table with [`SMALL`] bounds.
    fn small_table() -> (Arc<World>, Clock, Sessions) {
        let world = Arc::new(World::new(Arc::new(Scenario::default_scenario().unwrap())));
        let clock = Clock::system();
        let sessions = Sessions::new(SMALL, clock.clone(), Arc::default());
        (world, clock, sessions)
    }

    // Paused tokio time: the clock moves only when the test moves it, so the bound is tested
    // apart from expiry however slowly the machine runs.
    #[tokio::test(start_paused = true)]
    async fn sessions_are_bounded_in_number_and_expire() {
        let (world, clock, sessions) = small_table();
        let first = TransactionId::random();
        sessions
            .start(first, from(&world, &clock, 0), |_| true)
            .unwrap();
        for n in 1..=110 {
            sessions
                .start(TransactionId::random(), from(&world, &clock, n), |_| true)
                .unwrap();
        }
        assert_eq!(sessions.counts(), (100, 0), "the oldest went first");
        assert_eq!(
            sessions
                .counters
                .es9_sessions_evicted_anonymous
                .load(Ordering::Relaxed),
            11
        );
        assert!(sessions.get(&first, |_| true).is_none());
        let last = TransactionId::random();
        sessions
            .start(last, session(&world, &clock), |_| true)
            .unwrap();
        // Alive for 50 s from its last use, not from its start.
        tokio::time::advance(Duration::from_secs(49)).await;
        assert!(sessions.get(&last, |_| true).is_some());
        tokio::time::advance(Duration::from_secs(49)).await;
        assert!(sessions.get(&last, |_| true).is_some(), "touched, so alive");
        // The mock's clock ages sessions too (the admin API's clock control).
        clock.advance(Duration::from_secs(51));
        assert!(sessions.get(&last, |_| true).is_none(), "expired");
        // A new session sweeps the expired ones at the front.
        sessions
            .start(TransactionId::random(), session(&world, &clock), |_| true)
            .unwrap();
        assert_eq!(sessions.counts(), (1, 0));
        // A reset world ends its sessions.
        let tid = TransactionId::random();
        sessions
            .start(tid, session(&world, &clock), |_| true)
            .unwrap();
        assert!(sessions.get(&tid, |_| false).is_none());
    }

    /// One client address has at most its share of anonymous sessions; a session ended or
    /// authenticated gives its place back, and other addresses are not affected.
    #[test]
    fn anonymous_sessions_are_bounded_per_address() {
        let (world, clock, sessions) = small_table();
        let tids: Vec<TransactionId> = (0..10).map(|_| TransactionId::random()).collect();
        for tid in &tids {
            sessions
                .start(*tid, from(&world, &clock, 7), |_| true)
                .unwrap();
        }
        assert_eq!(
            sessions.start(TransactionId::random(), from(&world, &clock, 7), |_| true),
            Err(TooManyFromAddress { in_progress: 10 })
        );
        assert_eq!(
            sessions
                .counters
                .es9_sessions_refused_per_address
                .load(Ordering::Relaxed),
            1
        );
        sessions
            .start(TransactionId::random(), from(&world, &clock, 8), |_| true)
            .unwrap();
        sessions.end(&tids[0]);
        sessions
            .start(TransactionId::random(), from(&world, &clock, 7), |_| true)
            .unwrap();
        let Ok(mut claimed) = sessions
            .claim(&tids[1], Stage::Initiated, |_| true)
            .unwrap()
        else {
            panic!("not claimed")
        };
        claimed.stage = Stage::Authenticated;
        sessions.update(tids[1], claimed);
        assert_eq!(sessions.counts(), (10, 1));
        sessions
            .start(TransactionId::random(), from(&world, &clock, 7), |_| true)
            .unwrap();
        // The address is at its share again; after a reset (their world no longer current)
        // every session of the old world goes, authenticated ones too.
        assert!(sessions
            .start(TransactionId::random(), from(&world, &clock, 7), |_| true)
            .is_err());
        let new_world = Arc::new(World::new(Arc::new(Scenario::default_scenario().unwrap())));
        let current = |w: &Arc<World>| Arc::ptr_eq(w, &new_world);
        sessions
            .start(
                TransactionId::random(),
                from(&new_world, &clock, 7),
                current,
            )
            .unwrap();
        assert_eq!(sessions.counts(), (1, 0), "a clean instance");
    }

    /// A flood of anonymous sessions, from any number of addresses, never pushes out an
    /// authenticated one.
    #[test]
    fn anonymous_sessions_never_push_out_authenticated_ones() {
        let (world, clock, sessions) = small_table();
        let tid = TransactionId::random();
        sessions
            .start(tid, session(&world, &clock), |_| true)
            .unwrap();
        let mut claimed = sessions
            .claim(&tid, Stage::Initiated, |_| true)
            .unwrap()
            .unwrap();
        claimed.stage = Stage::Authenticated;
        sessions.update(tid, claimed);
        for n in 0..1_000 {
            sessions
                .start(TransactionId::random(), from(&world, &clock, n), |_| true)
                .unwrap();
        }
        assert_eq!(sessions.counts(), (100, 1));
        assert!(sessions
            .claim(&tid, Stage::Authenticated, |_| true)
            .is_some_and(|c| c.is_ok()));
    }

    /// Sessions do not keep their world alive: after a reset (the app drops the old world) its
    /// profiles are freed, and its sessions are gone.
    #[tokio::test(start_paused = true)]
    async fn sessions_do_not_keep_a_replaced_world() {
        let (world, clock, sessions) = small_table();
        let tid = TransactionId::random();
        sessions
            .start(tid, session(&world, &clock), |_| true)
            .unwrap();
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
