//! The process-level tests, one binary: the `smdpp-mock` binary run as users run it (CLI,
//! container command line, state file across restarts, SIGTERM, dashboard in a browser).

#[path = "../common/mod.rs"]
mod common;

mod cli;
mod container;
mod csr;
mod dashboard;
mod docs;
mod loadgen;
mod lpac;
mod onboarding;
mod readme;
mod shutdown;
mod state;
