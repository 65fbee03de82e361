//! # smdpp-mock
//!
//! A mock GSMA SGP.22 SM-DP+ that speaks ES2+ (DownloadOrder, ConfirmOrder, CancelOrder,
//! ReleaseProfile) over mutual TLS, driven by YAML scenarios, sends HandleDownloadProgressInfo
//! notifications, and grades the operator's client for conformance.
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
//! mock.expect_call(Function::ConfirmOrder).succeeded().times(1);
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
//! let address = mock.smdp_address();
//! let activation_code = format!("LPA:1${address}${}", confirm.body["matchingId"].as_str().unwrap());
//! assert!(activation_code.starts_with("LPA:1$localhost$"));
//!
//! // Play the device's part: download and install over ES9+.
//! mock.device(iccid, DeviceEvent::Download)?;
//! let profile = mock.device(iccid, DeviceEvent::InstallResult(InstallResult::Success))?;
//! assert_eq!(profile.state.to_string(), "Installed");
//! # Ok(()) }
//! ```
//!
//! The server alone, with every setting of the command line, is [`server::Server`]:
//!
//! ```no_run
//! # async fn run() -> anyhow::Result<()> {
//! use smdpp_mock::{Scenario, Server, ServerConfig};
//!
//! let mut config = ServerConfig::new(Scenario::default_scenario()?);
//! config.es2_addr = "127.0.0.1:0".parse()?;
//! let server = Server::start(config).await?;
//! println!("ES2+ on https://{}", server.es2_addr());
//! server.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! ## Layout
//!
//! Imports point one way: `server → http → es2 → store → profile → ids`.
//!
//! - [`ids`]: validated identifiers (ICCID, EID, MatchingID) and the Luhn digit.
//! - [`profile`]: the profile, its nine states and the pure lifecycle state machine.
//! - [`store`]: the concurrent in-memory store with its MatchingID and free-profile indexes.
//! - [`scenario`]: the YAML scenario format and its checks.
//! - [`es2`]: ES2+ function semantics and the wire format; knows JSON, not HTTP.
//! - [`http`]: the TLS accept loop and HTTP routing; the only server-side network code.
//! - [`pki`]: the test PKI: CA, server and client certificates, CSR signing.
//! - [`server`]: starting and stopping everything.
//! - [`mock`]: [`MockSmdp`], the server as a test fixture, with a client and expectations.

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
pub mod es2;
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
pub mod pki;
mod platform;
pub mod profile;
mod rng;
mod scenario;
mod server;
mod sgp22;
mod state;
mod store;

// The public interface: the test fixture and its client, the server with its configuration,
// scenarios, and the types their methods take and return.
pub use app::simulator::SimulateError;
pub use http::Limits;
pub use journal::{BodyText, Disconnect, JournalEntry};
pub use mock::{Expectation, MockSmdp, MockSmdpBuilder, OperatorClient, Reply};
pub use notify::{Attempt, DeliveryRecord, DeliveryState};
pub use scenario::{Diagnostic, Scenario, ScenarioErrors};
pub use server::{Server, ServerConfig};
pub use store::UpdateError;

/// The README's Rust examples compile (`cargo test --doc`).
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
