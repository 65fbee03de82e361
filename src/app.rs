//! The shared state every request touches, as one cheap-to-clone handle.

use std::sync::{Arc, RwLock};

use crate::clock::Clock;
use crate::es2::matching_id::MatchingIdGenerator;
use crate::scenario::Scenario;
use crate::store::Store;

/// A running scenario: its definition and the live store built from it.
#[derive(Debug)]
pub struct World {
    /// The scenario.
    pub scenario: Arc<Scenario>,
    /// Profiles and orders.
    pub store: Store,
    /// Source of generated MatchingIDs.
    pub matching_ids: MatchingIdGenerator,
}

impl World {
    /// A fresh world in the scenario's initial state.
    pub fn new(scenario: Arc<Scenario>) -> Self {
        World {
            store: Store::new(scenario.profiles()),
            matching_ids: MatchingIdGenerator::new(scenario.matching_id_seed()),
            scenario,
        }
    }
}

/// The application handle shared by all connections.
#[derive(Debug, Clone)]
pub struct App {
    world: Arc<RwLock<Arc<World>>>,
    /// The mock clock.
    pub clock: Clock,
}

impl App {
    /// An application running `scenario`.
    pub fn new(scenario: Arc<Scenario>, clock: Clock) -> Self {
        App {
            world: Arc::new(RwLock::new(Arc::new(World::new(scenario)))),
            clock,
        }
    }

    /// The current world. A request keeps the `Arc` it got, so a concurrent scenario reload
    /// never changes the world under a running request.
    pub fn world(&self) -> Arc<World> {
        match self.world.read() {
            Ok(w) => w.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Replaces the world, e.g. after loading a scenario or a reset.
    pub fn replace_world(&self, world: World) {
        let world = Arc::new(world);
        match self.world.write() {
            Ok(mut w) => *w = world,
            Err(poisoned) => *poisoned.into_inner() = world,
        }
    }
}
