//! The process-level tests, one binary: the `smdpp-mock` binary run as users run it (CLI,
//! container command line, state file across restarts, SIGTERM, the `device` command).

#[path = "../common/mod.rs"]
mod common;

mod cli;
mod container;
mod csr;
mod device;
mod docs;
mod loadgen;
mod onboarding;
mod readme;
mod shutdown;
mod smds;
mod state;
