//! `smdpp-mock lpa`: the library's LPA and software eUICC on the command line, to download a
//! released order over ES9+ as a phone would.

use anyhow::{Context, Result};
use clap::Subcommand;
use smdpp_mock::euicc::Euicc;
use smdpp_mock::lpa::Lpa;
use smdpp_mock::pki::gsma::{GsmaPki, SAMPLE_EID};

use super::PkiArgs;

#[derive(Debug, Subcommand)]
pub(super) enum LpaCommand {
    /// Download and install the profile of an Activation Code with a software eUICC (SGP.22
    /// §3.1: ES9+ over TLS trusting the CI of <certs-dir>/gsma, ES10b to the card, the Bound
    /// Profile Package decrypted and every MAC verified), then send the installation result.
    Download {
        /// The Activation Code, `1$<address>$<MatchingID>` (with or without `LPA:`).
        activation_code: String,
        /// The Confirmation Code, when the order has one.
        #[arg(long)]
        confirmation_code: Option<String>,
        /// The eUICC's EID: the sample eUICC of <certs-dir>/gsma by default, else one issued
        /// now by the mock's EUM (32 digits starting with 89049032).
        #[arg(long)]
        eid: Option<String>,
        #[command(flatten)]
        pki: PkiArgs,
    },
}

pub(super) async fn lpa(cmd: LpaCommand) -> Result<()> {
    match cmd {
        LpaCommand::Download {
            activation_code,
            confirmation_code,
            eid,
            pki,
        } => {
            let gsma = GsmaPki::new(&pki.certs_dir);
            let credentials = match eid.as_deref() {
                None | Some(SAMPLE_EID) => gsma.sample_euicc(),
                Some(eid) => gsma.issue_euicc(eid),
            }
            .with_context(|| {
                format!(
                    "the eUICC's credentials from {} (point --certs-dir at the mock's certificates; `smdpp-mock certs init` makes them)",
                    gsma.dir().display()
                )
            })?;
            let ci = credentials.ci.clone();
            let euicc = Euicc::new(credentials)?;
            let eid = euicc.eid();
            let mut lpa = Lpa::new(euicc, &[ci])?;
            let downloaded = lpa
                .download(&activation_code, confirmation_code.as_deref())
                .await?;
            let profile = lpa
                .euicc()
                .profiles()
                .iter()
                .find(|p| p.iccid == downloaded.iccid);
            if downloaded.installed {
                println!(
                    "installed {} on eUICC {eid}: {} bytes of profile package (transactionId {}); installation result sent",
                    downloaded.iccid,
                    profile.map_or(0, |p| p.package.len()),
                    downloaded.transaction_id
                );
                Ok(())
            } else {
                anyhow::bail!(
                    "the eUICC did not install {} (transactionId {}); the failure was reported to the SM-DP+",
                    downloaded.iccid,
                    downloaded.transaction_id
                )
            }
        }
    }
}
