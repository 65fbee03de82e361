//! The application: the state every request touches, as one cheap-to-clone handle ([`App`]),
//! the running scenario's live state ([`World`]), the one path by which a transition is
//! committed and its effects carried out ([`effects`]), and the simulated devices that play the
//! eUICC's part ([`simulator`]).

pub(crate) mod awaiting;
mod effects;
mod es9_device;
pub mod simulator;
pub(crate) mod smds_events;
pub(crate) mod transaction;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use crate::clock::Clock;
use crate::fault::Faults;
use crate::ids::MatchingIdGenerator;
use crate::journal::Journal;
use crate::metrics::{Counters, Metrics};
use crate::notify::Notifier;
use crate::scenario::{Callback, Scenario};
use crate::store::Store;

/// A running scenario: its definition and the live state built from it.
#[derive(Debug)]
pub struct World {
    /// The scenario.
    pub scenario: Arc<Scenario>,
    /// Profiles and orders.
    pub store: Store,
    /// Source of generated MatchingIDs.
    pub matching_ids: MatchingIdGenerator,
    /// Fault rules with their counters.
    pub faults: Faults,
    /// Callbacks registered at run time, replacing the scenario's, until the next reset.
    callbacks: RwLock<HashMap<Arc<str>, Arc<Callback>>>,
    /// ES9+ packages delivered whose installation result is awaited.
    pub(crate) awaiting: awaiting::Awaiting,
    /// The SM-DS's Event Records.
    pub(crate) events: crate::store::events::EventRecords,
}

impl World {
    /// A fresh world in the scenario's initial state.
    pub fn new(scenario: Arc<Scenario>) -> Self {
        World {
            store: Store::remembering(
                scenario.profiles(),
                scenario.profile_count(),
                scenario.retired_event_ids(),
            ),
            matching_ids: MatchingIdGenerator::new(scenario.matching_id_seed()),
            faults: Faults::new(scenario.faults()),
            callbacks: RwLock::default(),
            awaiting: awaiting::Awaiting::default(),
            events: crate::store::events::EventRecords::new(crate::store::events::Limits::default()),
            scenario,
        }
    }

    /// The callback notifications for `operator` go to: registered at run time, else the
    /// scenario's.
    pub fn callback(&self, operator: &str) -> Option<Arc<Callback>> {
        let registered = self
            .callbacks
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(operator)
            .cloned();
        registered.or_else(|| self.scenario.operator(operator)?.callback.clone())
    }

    /// Registers (or replaces) the callback of `operator`, as an operator does at onboarding.
    pub fn register_callback(&self, operator: &str, callback: Callback) -> Result<(), String> {
        let op = self
            .scenario
            .operator(operator)
            .ok_or_else(|| format!("operator {operator:?} is not in the scenario"))?;
        self.callbacks
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(op.id.clone(), Arc::new(callback));
        Ok(())
    }
}

/// The application handle shared by all connections: one `Arc`, so a clone (axum clones the
/// router state for every request) is one reference count, not one per part.
#[derive(Debug, Clone)]
pub struct App(Arc<AppState>);

impl std::ops::Deref for App {
    type Target = AppState;

    fn deref(&self) -> &AppState {
        &self.0
    }
}

/// What an [`App`] holds.
#[derive(Debug)]
pub struct AppState {
    world: RwLock<Arc<World>>,
    /// The mock clock.
    pub clock: Clock,
    /// Refusal counters.
    pub counters: Arc<Counters>,
    /// The notification dispatcher (it outlives scenario reloads).
    pub notifier: Notifier,
    /// The bounded journal of ES2+ and ES9+ calls.
    pub journal: Arc<Journal>,
    /// Labelled counters for `/metrics`.
    pub metrics: Arc<Metrics>,
    /// Grading of operator clients.
    pub conformance: Arc<crate::conformance::Conformance>,
    /// Distinguishes this process's functionCallIdentifiers from an earlier run's.
    run_id: u32,
    /// Woken when the world is replaced (reset, scenario load).
    world_changed: tokio::sync::Notify,
    /// Where the ES9+ listener is reached, once it runs.
    es9_address: std::sync::OnceLock<Es9Address>,
    /// What devices that play their timelines over ES9+ need, once ES9+ runs.
    device_kit: std::sync::OnceLock<DeviceKit>,
    /// The mock's own SM-DS, once it runs.
    smds: std::sync::OnceLock<SmdsEndpoint>,
    /// The SM-DP+'s ES12 client (its DPtls), once ES9+ runs: for SM-DSs of behaviour `es12`.
    es12: std::sync::OnceLock<crate::es12_client::LazyClient>,
    /// Event Registrations being made over the network ahead of their order's commit, by EID
    /// and EventID: one call at a time per event (see `app/smds_events.rs`).
    registering: std::sync::Mutex<HashMap<(crate::ids::Eid, String), smds_events::Claim>>,
    /// Draws the tokens of those claims.
    claim_tokens: std::sync::atomic::AtomicU64,
}

/// Where an order's SM-DS events go ([`App::smds_route`]).
#[derive(Debug, Clone, Copy)]
pub(crate) enum SmdsRoute<'a> {
    /// The mock's own SM-DS, in-process.
    Own(&'a SmdsEndpoint),
    /// An external SM-DS over real ES12.
    Es12,
    /// A simulated SM-DS with this behaviour (`register`, `inaccessible`, `fail`).
    Simulated(crate::scenario::SmdsBehaviour),
}

/// The mock's own SM-DS, as its SM-DP+ registers events there (in-process, §3.6.1).
#[derive(Debug, Clone)]
pub(crate) struct SmdsEndpoint {
    /// Its address (`host[:port]`).
    pub(crate) address: String,
    /// Every address ConfirmOrder's `smdsAddress` may name it by.
    pub(crate) accepted: Vec<String>,
    /// The SM-DP+'s identity at the SM-DS: the OID of its DPtls (what it would present as an
    /// ES12 client, §5.9.1).
    pub(crate) caller: std::sync::Arc<str>,
    /// `host:port` of the SM-DS listener from this process (loopback), for devices.
    pub(crate) route: String,
    /// ES15 to the root SM-DS (`smds.root`), presenting DStls.
    pub(crate) cascade: Arc<crate::es12_client::LazyClient>,
}

/// What a device playing its timeline over ES9+ needs: an EUM to issue its eUICC, where the
/// listener is reached from this process, and the CI to trust.
#[derive(Debug, Clone)]
pub(crate) struct DeviceKit {
    /// The GSMA-style PKI (its EUM issues the devices' eUICCs).
    pub(crate) pki: smdpp_rsp::pki::GsmaPki,
    /// `host:port` of the ES9+ listener from here (loopback).
    pub(crate) route: String,
    /// The CI certificate the devices trust.
    pub(crate) ci: Vec<u8>,
}

/// How Activation Codes name the ES9+ listener.
#[derive(Debug, Clone)]
pub(crate) enum Es9Address {
    /// The scenario's `smdp.address` with the listener's port (none for 443).
    Port(u16),
    /// Exactly this `host[:port]` (`--es9-address`, e.g. behind a proxy).
    Fixed(Arc<str>),
}

impl Es9Address {
    /// The `host[:port]` Activation Codes name when the scenario's `smdp.address` is `host`.
    pub(crate) fn with_host(&self, host: &str) -> String {
        match self {
            Es9Address::Fixed(address) => address.to_string(),
            Es9Address::Port(443) => host.to_owned(),
            Es9Address::Port(port) if host.contains(':') => format!("[{host}]:{port}"),
            Es9Address::Port(port) => format!("{host}:{port}"),
        }
    }
}

impl App {
    /// An application running `scenario`, notifying through `notifier`, journaling the last
    /// calls of each protocol, as many as `journal_capacity` says.
    pub fn new(
        scenario: Arc<Scenario>,
        clock: Clock,
        notifier: Notifier,
        journal_capacity: crate::journal::Capacity,
    ) -> Self {
        let conformance = Arc::new(crate::conformance::Conformance::default());
        // Real deliveries grade the operators' endpoints too.
        notifier.grade_into(conformance.clone());
        App(Arc::new(AppState {
            world: RwLock::new(Arc::new(World::new(scenario))),
            run_id: (clock.now().unix_timestamp() % 1_000_000_000) as u32,
            clock,
            counters: Arc::default(),
            notifier,
            journal: Arc::new(Journal::new(journal_capacity)),
            metrics: Arc::default(),
            conformance,
            world_changed: tokio::sync::Notify::new(),
            es9_address: std::sync::OnceLock::new(),
            device_kit: std::sync::OnceLock::new(),
            smds: std::sync::OnceLock::new(),
            es12: std::sync::OnceLock::new(),
            registering: std::sync::Mutex::default(),
            claim_tokens: std::sync::atomic::AtomicU64::new(1),
        }))
    }

    /// Records what devices playing over ES9+ need (once, at start).
    pub(crate) fn set_device_kit(&self, kit: DeviceKit) {
        let _ = self.device_kit.set(kit);
    }

    /// What devices playing over ES9+ need, when ES9+ runs.
    pub(crate) fn device_kit(&self) -> Option<&DeviceKit> {
        self.device_kit.get()
    }

    /// Records the mock's own SM-DS (once, at start).
    pub(crate) fn set_smds(&self, endpoint: SmdsEndpoint) {
        let _ = self.smds.set(endpoint);
    }

    /// Records the SM-DP+'s ES12 client (once, at start).
    pub(crate) fn set_es12_client(&self, client: crate::es12_client::LazyClient) {
        let _ = self.es12.set(client);
    }

    /// The mock's own SM-DS, when it runs.
    pub(crate) fn smds(&self) -> Option<&SmdsEndpoint> {
        self.smds.get()
    }

    /// Where the Event Registration and Deletion of an order with `smdsAddress` `address` go
    /// in `world`: the mock's own SM-DS when the address names it (unless the scenario lists
    /// it with another behaviour), an external SM-DS over ES12 (`es12`), or a simulated one.
    pub(crate) fn smds_route(&self, world: &World, address: &str) -> SmdsRoute<'_> {
        use crate::scenario::SmdsBehaviour;
        let scenario = &world.scenario;
        let own = self
            .smds
            .get()
            .filter(|s| crate::sgp22::address_accepted(address, &s.accepted));
        let listed = scenario.smds_listed(address);
        match (own, scenario.smds_behaviour(address)) {
            // `smds.default` is for the addresses that are neither listed nor the mock's own.
            (Some(own), _) if !listed => SmdsRoute::Own(own),
            (Some(own), SmdsBehaviour::Register) => SmdsRoute::Own(own),
            (_, SmdsBehaviour::Es12) => SmdsRoute::Es12,
            (_, behaviour) => SmdsRoute::Simulated(behaviour),
        }
    }

    /// Records where the ES9+ listener is reached (once, at start).
    pub(crate) fn set_es9_address(&self, address: Es9Address) {
        let _ = self.es9_address.set(address);
    }

    /// The SM-DP+ address Activation Codes name (`1$<address>$<MatchingID>`, SGP.22 §4.1):
    /// where the ES9+ listener is reached, `host[:port]`, or the scenario's `smdp.address`
    /// alone when no ES9+ listener runs.
    pub fn activation_address(&self, world: &World) -> String {
        let host = world.scenario.smdp_address();
        match self.es9_address.get() {
            Some(address) => address.with_host(host),
            None => host.to_owned(),
        }
    }

    /// Resolves when the world is next replaced; create it before checking the world.
    pub fn world_changed(&self) -> tokio::sync::futures::Notified<'_> {
        self.world_changed.notified()
    }

    /// The current world. A request keeps the `Arc` it got, so a concurrent scenario reload
    /// never changes the world under a running request.
    pub fn world(&self) -> Arc<World> {
        match self.world.read() {
            Ok(w) => w.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Whether `world` is still the current one (device timelines stop once it is replaced).
    pub fn is_current(&self, world: &Arc<World>) -> bool {
        Arc::ptr_eq(&self.world(), world)
    }

    /// Replaces the world, e.g. after loading a scenario or a reset.
    pub fn replace_world(&self, world: World) {
        self.register_preset_events(&world);
        let world = Arc::new(world);
        match self.world.write() {
            Ok(mut w) => *w = world,
            Err(poisoned) => *poisoned.into_inner() = world,
        }
        self.world_changed.notify_waiters();
    }
}
