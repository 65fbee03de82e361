//! The in-process integration tests, one binary: each module starts the mock as a library
//! (real TLS on port 0, real YAML, real receivers) and talks to it over the network.

#[path = "../common/mod.rs"]
mod common;

mod admin;
mod admin_readability;
mod architecture;
mod asn1_binding;
mod bad_input;
mod client_bounds;
mod conformance;
mod conformance_report;
mod curves;
mod device;
mod download_order_rules;
mod early_answers;
mod es2_functions;
mod es9;
mod euicc_checks;
mod faults;
mod fuzz_bodies;
mod hostile_input;
mod library;
mod lifecycle;
mod limits;
mod mtls;
mod notifications;
mod openapi;
mod platform;
mod scenario_errors;
mod scenarios;
mod smds;
mod troubleshooting;
mod user_pki;
