//! What the `smdpp-mock` binary, the load generator, the examples, the fuzz targets and the
//! integration tests reach inside the crate. Not part of the public interface: it changes
//! whenever the inside does.

pub mod fuzz;

/// The application state behind a running server.
pub mod app {
    pub use crate::app::simulator;
    pub use crate::app::{App, World};

    /// The application of a running server.
    pub fn of(server: &crate::Server) -> &App {
        server.app()
    }

    /// The application of a running mock.
    pub fn of_mock(mock: &crate::MockSmdp) -> &App {
        mock.app()
    }
}

/// The admin API.
pub mod admin {
    pub use crate::admin::{openapi, router, routes, AdminState};
}

/// Files written whole or not at all.
pub mod atomic_file {
    pub use crate::atomic_file::{lock_beside, write, Lock};
}

/// The mock clock.
pub mod clock {
    pub use crate::clock::Clock;
}

/// The conformance catalog.
pub mod conformance {
    pub use crate::conformance::catalog;
}

/// TLS of the listeners.
pub mod http {
    pub use crate::http::tls;
}

/// The request journal.
pub mod journal {
    pub use crate::journal::DEFAULT_JOURNAL_CAPACITY;
}

/// Notifications.
pub mod notify {
    pub use crate::notify::{transport, DeliveryCounters, DeliveryLog, Notifier, Outgoing};
}

/// The platform API.
pub mod platform {
    pub use crate::platform::routes;
}

/// The profile state machine.
pub mod profile {
    pub use crate::profile::machine;
}

/// Scenario internals.
pub mod scenario {
    pub use crate::scenario::{
        json_schema, Callback, Operator, ProfileType, DEFAULT_DEVICE_EID, DEFAULT_SCENARIO_YAML,
    };
}

/// Server defaults.
pub mod server {
    pub use crate::server::{
        DEFAULT_ADMIN_ADDR, DEFAULT_ES2_ADDR, DEFAULT_ES9_ADDR, DEFAULT_SMDS_ADDR,
    };
}

/// Names SGP.22 defines.
pub mod sgp22 {
    pub use crate::sgp22::{ADMIN_PROTOCOL, ADMIN_PROTOCOL_HEADER};
}

/// The test PKI's TLS provider.
pub mod pki {
    pub use crate::pki::provider;
}

/// The state file.
pub mod state {
    pub use crate::state::check;
}
