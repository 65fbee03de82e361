//! Measures how long a scenario takes to load into a ready store, and the memory it takes.
//!
//! ```sh
//! cargo run --release --example scenario_load -- scenarios/million.yaml
//! ```

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use smdpp_mock::internal::app::World;
use smdpp_mock::Scenario;

fn rss_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let paths: Vec<PathBuf> = std::env::args().skip(1).map(PathBuf::from).collect();
    if paths.is_empty() {
        return Err("usage: scenario_load SCENARIO.yaml...".into());
    }
    let before = rss_kib("VmRSS:");
    let started = Instant::now();
    let scenario = Arc::new(Scenario::load_all(&paths)?);
    let checked = started.elapsed();
    let world = World::new(scenario.clone());
    let loaded = started.elapsed();
    println!(
        "profiles: {}\nchecked in: {:.3} s\nloaded (checked + store built) in: {:.3} s\nRSS: {} MiB (before load {} MiB, peak {} MiB)\nbytes per profile: {}",
        world.store.len(),
        checked.as_secs_f64(),
        loaded.as_secs_f64(),
        rss_kib("VmRSS:") / 1024,
        before / 1024,
        rss_kib("VmHWM:") / 1024,
        (rss_kib("VmRSS:") - before) * 1024 / world.store.len().max(1) as u64,
    );
    Ok(())
}
