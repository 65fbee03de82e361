//! # smdpp-mock
//!
//! A mock GSMA SGP.22 SM-DP+ that speaks ES2+ (DownloadOrder, ConfirmOrder, CancelOrder,
//! ReleaseProfile) over mutual TLS, driven by YAML scenarios.
//!
//! ```no_run
//! # async fn run() -> anyhow::Result<()> {
//! use smdpp_mock::{scenario::Scenario, server::{Config, Server}};
//!
//! let mut config = Config::new(Scenario::default_scenario()?);
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

#![warn(missing_docs)]
// Network input must never panic the server: no unwrap/expect outside tests.
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

pub mod api;
pub mod app;
pub mod clock;
pub mod conformance;
pub mod device;
pub mod es2;
pub mod fault;
pub mod http;
pub mod ids;
pub mod ipnet;
pub mod journal;
pub mod metrics;
pub mod notify;
pub mod pki;
pub mod profile;
pub mod rng;
pub mod scenario;
pub mod server;
pub mod spec;
pub mod store;
