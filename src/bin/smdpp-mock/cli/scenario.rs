//! `smdpp-mock scenario`: check scenario files, print the schema.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Result;
use clap::Subcommand;
use smdpp_mock::Scenario;

#[derive(Debug, Subcommand)]
pub(super) enum ScenarioCommand {
    /// Check scenario files: exit 0 when all are valid, otherwise print every error as
    /// FILE:LINE:COLUMN: MESSAGE.
    Check {
        /// Scenario files or directories.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Check the files as one scenario, merged in order (as `serve` loads them), instead of
        /// each on its own.
        #[arg(long)]
        together: bool,
    },
    /// Print the JSON Schema of the scenario format (for editors with a YAML language server).
    Schema,
}

pub(super) fn scenario(cmd: ScenarioCommand) -> Result<()> {
    match cmd {
        ScenarioCommand::Schema => {
            let text =
                serde_json::to_string_pretty(&smdpp_mock::internal::scenario::json_schema())?;
            let mut stdout = std::io::stdout().lock();
            stdout.write_all(text.as_bytes())?;
            stdout.write_all(b"\n")?;
            Ok(())
        }
        ScenarioCommand::Check { files, together } => {
            let groups: Vec<Vec<PathBuf>> = if together {
                vec![files]
            } else {
                files.into_iter().map(|f| vec![f]).collect()
            };
            let mut failed = 0;
            for group in &groups {
                let names: Vec<String> = group.iter().map(|p| p.display().to_string()).collect();
                match Scenario::load_all(group) {
                    Ok(s) => println!(
                        "{}: ok ({}, {}, {})",
                        names.join(" + "),
                        super::count(s.operators().len(), "operator"),
                        super::count(s.profile_types().count(), "profile type"),
                        super::count(s.profile_count(), "profile")
                    ),
                    Err(errors) => {
                        failed += 1;
                        eprintln!("{errors}");
                    }
                }
            }
            if failed > 0 {
                anyhow::bail!("{failed} of {} scenario(s) are not valid", groups.len());
            }
            Ok(())
        }
    }
}
