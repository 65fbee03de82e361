//! # smdpp-mock
//!
//! A mock GSMA SGP.22 SM-DP+ that speaks ES2+ (DownloadOrder, ConfirmOrder, CancelOrder,
//! ReleaseProfile) over mutual TLS, driven by YAML scenarios, sends HandleDownloadProgressInfo
//! notifications, and grades the operator's client for conformance; and ES9+ with SGP.22's
//! crypto, so an LPA downloads the very order placed through ES2+ (the crate `smdpp-rsp`, which
//! this one is built on, has one in Rust: [`smdpp_rsp::lpa`] and [`smdpp_rsp::euicc`]); and an
//! SM-DS (ES11, ES12), so a device finds an order confirmed with an `smdsAddress` by itself.
//!
//! ## In your tests
//!
//! [`MockSmdp`] runs the whole server in-process on free loopback ports with its own test PKI,
//! in the manner of wiremock-rs. Add the crate without its command-line shell:
//!
//! ```toml
//! [dev-dependencies]
//! smdpp-mock = { version = "0.1", default-features = false }
//! ```
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> anyhow::Result<()> {
//! use serde_json::json;
//! use smdpp_mock::profile::{DeviceEvent, InstallResult};
//! use smdpp_mock::{es2::Function, MockSmdp};
//!
//! let mock = MockSmdp::builder()
//!     .scenario_yaml(r#"
//! operators:
//!   - id: my-mno
//! profileTypes:
//!   - id: CONSUMER
//!     owner: my-mno
//!     profiles:
//!       - range: { start: "894450010000000000", count: 10 }
//! "#)
//!     .start()
//!     .await?;
//! // Checked when `mock` is dropped: the test fails listing what the mock received.
//! mock.expect_call(Function::ConfirmOrder).succeeded().times(2);
//!
//! // Your back-end needs the URL, the CA and the operator's certificate: `mock.es2_url()`,
//! // `mock.ca_pem()`, `mock.operator_tls_config("my-mno")` (a rustls config), or this client:
//! let client = mock.client("my-mno")?;
//! let order = client
//!     .call(Function::DownloadOrder, json!({ "profileType": "CONSUMER" }))
//!     .await?;
//! let iccid = order.body["iccid"].as_str().unwrap();
//! let confirm = client
//!     .call(Function::ConfirmOrder, json!({ "iccid": iccid, "releaseFlag": true }))
//!     .await?;
//! // 1$<where ES9+ listens>$<MatchingID> (SGP.22 §4.1).
//! let activation_code = mock.activation_code(confirm.body["matchingId"].as_str().unwrap());
//! assert!(activation_code.starts_with("1$localhost:"));
//!
//! // The device's part, for real: an LPA with a software eUICC downloads and installs the order
//! // over ES9+ (mutual authentication, the Bound Profile Package, the installation result).
//! let mut lpa = mock.lpa("89049032123451234512345678901235")?;
//! lpa.download(&activation_code, None).await?;
//! assert_eq!(mock.profile(iccid).unwrap().state.to_string(), "Installed");
//!
//! // Or simulate it, without the protocol, on another order.
//! let other = client
//!     .call(Function::DownloadOrder, json!({ "profileType": "CONSUMER" }))
//!     .await?;
//! let other = other.body["iccid"].as_str().unwrap();
//! client
//!     .call(Function::ConfirmOrder, json!({ "iccid": other, "releaseFlag": true }))
//!     .await?;
//! mock.device(other, DeviceEvent::Download)?;
//! let profile = mock.device(other, DeviceEvent::InstallResult(InstallResult::Success))?;
//! assert_eq!(profile.state.to_string(), "Installed");
//! # Ok(()) }
//! ```
//!
//! The server alone, with every setting of the command line, is [`Server`]:
//!
//! ```no_run
//! # async fn run() -> anyhow::Result<()> {
//! use smdpp_mock::{Scenario, Server, ServerConfig};
//!
//! // Every listener on a free port; `ServerConfig::new` has the command line's defaults.
//! let config = ServerConfig::ephemeral(Scenario::default_scenario()?);
//! let server = Server::start(config).await?;
//! println!("ES2+ on https://{}", server.es2_addr());
//! server.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! ## The public interface
//!
//! - [`MockSmdp`] and [`MockSmdpBuilder`], with [`OperatorClient`], [`Reply`] and
//!   [`Expectation`]: the mock as a test fixture.
//! - [`Server`] and [`ServerConfig`] (with [`Limits`]): the mock as a server, as the binary
//!   runs it.
//! - [`Scenario`] (with [`ScenarioErrors`] and [`Diagnostic`]): the YAML test world.
//! - [`es2::Function`], [`profile`] (profiles, states, device events), [`ids`] (ICCID, EID,
//!   MatchingID) and [`pki`] (the test CA, certificates, CSR signing).
//! - What the accessors return: [`JournalEntry`], [`DeliveryRecord`], [`SimulateError`].
//! - [`Error`]: what every fallible function returns, by category (a port in use, the PKI, the
//!   scenario, the state file, a call).
//! - The device side and the wire (SGP.22's messages, crypto, the GSMA-style PKI, the software
//!   eUICC and the LPA) are the crate [`smdpp_rsp`], usable without the server.
//!
//! Everything else is private; the binary, the examples, the fuzz targets and the tests reach
//! it through a hidden `internal` module that changes whenever the inside does (and through
//! two hidden items of public modules: `profile::machine` and `pki::provider`).
//!
//! ## Layout
//!
//! The modules, the ES2+ request path, the device and notification paths and where a new
//! protocol plugs in are described in `docs/architecture.md`. In short, imports point one way
//! (`tests/in_process/architecture.rs` checks it):
//!
//! - entry: `server` (start and stop), `mock` (the fixture);
//! - transport: `http` (accept loops, TLS, the generic router, body and time limits);
//! - APIs: `es2`, `es9`, `smds` (the transport-free engines), `platform`, `admin`, `api`;
//! - contract: `pipeline` (the call pipeline of every protocol), `exchange`, `caller`;
//! - application: `app` (state, the one commit path, simulated devices), `state` (the file);
//! - services: `notify`, `es12_client`, `conformance`, `fault`, `journal`, `metrics`;
//! - domain: `scenario`, `store`, `profile` (the pure state machine), `pki`, `error`;
//! - leaves: `ids`, `sgp22`, `json`, `clock`, `rng`, `ipnet`, `change_signal`, `atomic_file`.

#![warn(missing_docs)]
// Network input must never panic the server: no unwrap/expect outside tests.
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

mod admin;
mod api;
mod app;
mod atomic_file;
mod caller;
mod change_signal;
mod clock;
mod conformance;
mod error;
mod es12_client;
pub mod es2;
mod es9;
mod exchange;
mod fault;
mod http;
pub mod ids;
#[doc(hidden)]
pub mod internal;
mod ipnet;
mod journal;
mod json;
mod metrics;
mod mock;
mod notify;
mod pipeline;
pub mod pki;
mod platform;
pub mod profile;
mod rng;
mod scenario;
mod server;
mod sgp22;
mod smds;
mod state;
mod store;
mod striped;

// The public interface: the test fixture and its client, the server with its configuration,
// scenarios, and the types their methods take and return.
pub use app::simulator::SimulateError;
pub use error::{Error, Result};
pub use http::Limits;
pub use journal::{BodyText, Disconnect, JournalEntry, Protocol};
pub use mock::{Expectation, MockSmdp, MockSmdpBuilder, OperatorClient, Reply};
pub use notify::{Attempt, DeliveryRecord, DeliveryState};
pub use scenario::{Diagnostic, Scenario, ScenarioErrors};
pub use server::{Server, ServerConfig};
/// The device-side crate this one is built on (the LPA, the software eUICC, the GSMA-style
/// PKI), re-exported so that the types [`MockSmdp::lpa`] and [`MockSmdp::gsma_pki`] return are
/// nameable without a second dependency of a matching version.
pub use smdpp_rsp;
pub use store::UpdateError;

/// The README's Rust examples compile (`cargo test --doc`).
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
