//! The tests that need a program this project did not write: lpac, the open-source LPA, against
//! the mock's ES9+ (an outside implementation of the device side), the Python eUICC + LPA of
//! `tests/checker/` (a second implementation of SGP.22 that shares no code with the crate), the
//! crate's crypto against Python's `cryptography`, and the dashboard in a real Chromium.
//!
//! A harness of our own (libtest-mimic, `harness = false`), because libtest can only ignore a
//! test at compile time: here a test whose program is missing is reported `ignored` in the
//! normal `cargo test` output, under its reason (`[needs lpac]`), and a banner above the results
//! says which checks did not run and how to get the program. With `SMDPP_REQUIRE_LPAC=1`,
//! `SMDPP_REQUIRE_CHECKER=1`, `SMDPP_REQUIRE_BROWSER=1` or `SMDPP_REQUIRE_VECTORS=1` (all set by
//! `.ci/run`) a missing program fails those tests instead.

#[path = "../common/mod.rs"]
mod common;

mod checker;
mod dashboard;
mod lpac;
mod vectors;

use std::future::Future;
use std::path::PathBuf;
use std::process::ExitCode;

use libtest_mimic::{Arguments, Failed, Trial};

/// A program some tests need: where it was found, or why not.
pub(crate) struct Needed {
    /// What the tests are marked with when it is missing: `needs lpac`.
    kind: &'static str,
    found: Result<PathBuf, String>,
    /// The environment variable that makes its absence a failure.
    require: &'static str,
}

impl Needed {
    pub(crate) fn new(
        kind: &'static str,
        found: Result<PathBuf, String>,
        require: &'static str,
    ) -> Self {
        Needed {
            kind,
            found,
            require,
        }
    }

    fn required(&self) -> bool {
        std::env::var_os(self.require).is_some_and(|v| !v.is_empty() && v != "0")
    }

    /// The test `name`, running `body` with the program's path on a runtime of its own: ignored
    /// when the program is missing, failed when it is missing but required.
    pub(crate) fn trial<F, Fut>(&self, name: &str, body: F) -> Trial
    where
        F: FnOnce(PathBuf) -> Fut + Send + 'static,
        Fut: Future<Output = ()>,
    {
        match &self.found {
            Ok(path) => {
                let path = path.clone();
                Trial::test(name, move || {
                    run(body(path));
                    Ok(())
                })
            }
            Err(why) if self.required() => {
                let message = format!("{} is set but {why}", self.require);
                Trial::test(name, move || Err(Failed::from(message)))
            }
            // Run anyway (`--include-ignored`), it fails: nothing was checked.
            Err(why) => {
                let why = why.clone();
                Trial::test(name, move || Err(Failed::from(why)))
                    .with_ignored_flag(true)
                    .with_kind(self.kind)
            }
        }
    }

    /// The banner for `count` tests that will not run, if the program is missing.
    fn banner(&self, count: usize) -> Option<String> {
        match &self.found {
            Err(why) if !self.required() => Some(format!(
                "SKIPPED: {count} test(s) [{}] are IGNORED: {why}",
                self.kind
            )),
            _ => None,
        }
    }
}

/// `python3` (or `$PYTHON`) when it can import every one of `packages` (`"cryptography
/// asn1tools"`); otherwise why not, saying what was `not_checked` and how to install them.
pub(crate) fn find_python(packages: &str, not_checked: &str) -> Result<PathBuf, String> {
    let python = PathBuf::from(std::env::var_os("PYTHON").unwrap_or_else(|| "python3".into()));
    let imports = format!(
        "import {}",
        packages.split_whitespace().collect::<Vec<_>>().join(", ")
    );
    match std::process::Command::new(&python)
        .args(["-c", &imports])
        .output()
    {
        Ok(out) if out.status.success() => Ok(python),
        _ => Err(format!(
            "{} with the Python packages {packages} is missing, so {not_checked} was NOT \
             checked. Install them with `python3 -m pip install {packages}` ($PYTHON names \
             another interpreter)",
            python.display()
        )),
    }
}

/// Runs a test body on a two-worker runtime, as `#[tokio::test(flavor = "multi_thread")]` does.
fn run(body: impl Future<Output = ()>) {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
        .block_on(body);
}

fn main() -> ExitCode {
    let args = Arguments::from_args();
    let groups = [
        lpac::tests(),
        checker::tests(),
        dashboard::tests(),
        vectors::tests(),
    ];
    // Not while listing: test runners such as nextest read `--list`'s output.
    if !args.list {
        for (needed, trials) in &groups {
            if let Some(banner) = needed.banner(trials.len()) {
                eprintln!("\n{banner}\n");
            }
        }
    }
    let trials = groups.into_iter().flat_map(|(_, trials)| trials).collect();
    libtest_mimic::run(&args, trials).exit_code()
}
