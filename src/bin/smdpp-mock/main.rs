//! The `smdpp-mock` command: a thin shell over the library.

#![warn(clippy::unwrap_used, clippy::expect_used)]

mod cli;
mod loadgen;

use std::process::ExitCode;

use clap::Parser;

/// How many tasks a worker thread runs between its looks for new I/O and timer events when it
/// has tasks queued (tokio's default is 61).
///
/// A worker steals from its sibling's queue only once its own queue is empty. With the default,
/// a server whose workers are busy all the time (a closed-loop load on a machine it shares with
/// the load generator) refills its queue from the I/O driver every 61 tasks, so its queue seldom
/// runs dry and it seldom steals; when the kernel preempts the other worker for a scheduler tick
/// (4 ms at HZ=250), the connections queued on that worker wait out the whole tick. That was the
/// p99 of about 4.4 ms against the baseline's 1.7-2 ms under `loadgen --compare` unpinned. A
/// worker that runs what it has before looking for more reaches an empty queue, takes half of a
/// preempted sibling's queue, and the tail is the baseline's (README, "The keep-alive tail").
/// 256 drains the queue of hundreds of keep-alive connections; the driver is still polled
/// whenever a worker runs out of tasks, so only a worker with 256 tasks queued waits longer
/// (about 3 ms at ES2+'s cost per request) before it sees new events.
const EVENT_INTERVAL: u32 = 256;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    cli::init_logging(cli.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .event_interval(EVENT_INTERVAL)
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cli::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
