//! `smdpp-mock device` and `smdpp-mock euicc`: the library's software eUICC, kept in a state
//! file so that successive runs see the same card, driven either by the library's LPA over ES9+
//! (`device`) or by lpac through its `stdio` APDU driver (`euicc`).

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use serde_json::{json, Value};
use smdpp_mock::ids::Iccid;
use smdpp_mock::internal::atomic_file::Lock;
use smdpp_rsp::crypto::Curve;
use smdpp_rsp::euicc::apdu::ApduCard;
use smdpp_rsp::euicc::Euicc;
use smdpp_rsp::lpa::Lpa;
use smdpp_rsp::pki::{GsmaPki, SAMPLE_EID};

use super::PkiArgs;

/// Which card, and where its state is kept.
#[derive(Debug, Args)]
pub(super) struct CardArgs {
    /// The eUICC's EID: the sample eUICC of <certs-dir>/gsma by default, else one issued by the
    /// mock's EUM on first use (32 digits starting with 89049032) and kept in
    /// <certs-dir>/gsma/euicc-<EID>/.
    #[arg(long)]
    eid: Option<String>,
    /// The card's state (installed profiles, pending notifications): read at start, written
    /// whole (a temporary file renamed over it) after every change. One process at a time uses
    /// a card: <state>.lock is held meanwhile. Default: <certs-dir>/gsma/euicc-<EID>.json.
    #[arg(long)]
    state: Option<PathBuf>,
    /// Start from an empty card, ignoring a state file that exists (it is overwritten).
    #[arg(long)]
    fresh: bool,
    /// The curves of the card's certificate chains, and so the CIs it trusts (SGP.22 §2.6.7.1):
    /// `nist` (its NIST chain, kept in files as above), `brainpool` or `both` (NIST named
    /// first). A brainpool chain is issued by the mock's brainpool EUM at each run.
    #[arg(long, value_enum, default_value = "nist")]
    curves: Curves,
    /// The card's root SM-DS address (its rootDsAddress, SGP.22 §5.7.3): where `device
    /// discover` and `device download` without an Activation Code look for events. A real
    /// card names the GSMA's; this test card names the mock's SM-DS at its default address.
    #[arg(long, default_value = DEFAULT_ROOT_DS)]
    root_ds: String,
    #[command(flatten)]
    pki: PkiArgs,
}

/// The test card's root SM-DS: the mock's SM-DS at its default listen address.
const DEFAULT_ROOT_DS: &str = "localhost:6445";

/// `--curves`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Curves {
    Nist,
    Brainpool,
    Both,
}

/// A card loaded from its PKI and state file.
struct Card {
    euicc: Euicc,
    ci: Vec<u8>,
    state: PathBuf,
    /// Held (an advisory lock on `<state>.lock`) while this process uses the card.
    _lock: std::fs::File,
}

impl Card {
    /// An LPA driving the card and trusting its CI for TLS, with the card's state file and
    /// lock (held as long as the caller keeps it).
    fn lpa(self) -> Result<(Lpa, PathBuf, std::fs::File)> {
        let lpa = Lpa::new(self.euicc, &[self.ci])?;
        Ok((lpa, self.state, self._lock))
    }
}

/// Takes the card's lock, `<state>.lock`: a second process on the same card is refused instead
/// of both writing its state.
fn lock_card(state: &Path) -> Result<std::fs::File> {
    if let Some(parent) = state.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    match smdpp_mock::internal::atomic_file::lock_beside(state)? {
        Lock::Held(file) => Ok(file),
        Lock::Busy(path) => bail!(
            "another smdpp-mock process is using this card ({} is locked): wait for it to finish, or give this one another --state",
            path.display()
        ),
    }
}

impl CardArgs {
    fn load(&self) -> Result<Card> {
        let gsma = GsmaPki::new(&self.pki.certs_dir);
        let eid = self.eid.clone().unwrap_or_else(|| SAMPLE_EID.to_owned());
        let hint = || {
            format!(
                "the eUICC's credentials from {} (point --certs-dir at the mock's certificates; `smdpp-mock certs init` makes them)",
                gsma.dir().display()
            )
        };
        let nist = || -> Result<smdpp_rsp::pki::EuiccCredentials> {
            if eid == SAMPLE_EID {
                return gsma.sample_euicc().with_context(hint);
            }
            let dir = gsma.dir().join(format!("euicc-{eid}"));
            if !dir.join(smdpp_rsp::pki::EUICC_CERT).exists() {
                gsma.issue_euicc_files(&eid, &dir).with_context(hint)?;
            }
            smdpp_rsp::pki::EuiccCredentials::from_dir(&dir).with_context(hint)
        };
        let brainpool = || {
            gsma.issue_euicc_on(Curve::BrainpoolP256r1, &eid)
                .with_context(hint)
        };
        let chains = match self.curves {
            Curves::Nist => vec![nist()?],
            Curves::Brainpool => vec![brainpool()?],
            Curves::Both => vec![nist()?, brainpool()?],
        };
        // ES9+'s TLS is NIST P-256 whatever the card's curves: the NIST CI is the LPA's anchor.
        let ci_file = gsma.dir().join(smdpp_rsp::pki::CI_CERT);
        let ci = std::fs::read(&ci_file)
            .with_context(|| format!("reading {} (ES9+'s TLS anchor)", ci_file.display()))?;
        let mut euicc = Euicc::with_chains(chains)?;
        euicc.set_root_ds_address(&self.root_ds);
        let state = self
            .state
            .clone()
            .unwrap_or_else(|| gsma.dir().join(format!("euicc-{eid}.json")));
        let lock = lock_card(&state)?;
        if state.exists() && !self.fresh {
            let text = std::fs::read_to_string(&state)
                .with_context(|| format!("reading {}", state.display()))?;
            euicc.restore_state(&text).with_context(|| {
                format!(
                    "{} (remove it, or pass --fresh, to start from an empty card)",
                    state.display()
                )
            })?;
        }
        Ok(Card {
            euicc,
            ci,
            state,
            _lock: lock,
        })
    }
}

/// Writes the card's state whole: a temporary file of its own, fsynced, renamed over `path`
/// (a crash leaves the old state or the new, never half of one).
fn save(euicc: &Euicc, path: &Path) -> Result<()> {
    Ok(smdpp_mock::internal::atomic_file::write(
        path,
        euicc.save_state().as_bytes(),
        0o600,
    )?)
}

/// Saves the card when it changed since `saved` (its [`Euicc::changes`] then).
fn save_if_changed(card: &ApduCard, path: &Path, saved: &mut u64) -> Result<()> {
    let now = card.euicc().changes();
    if now != *saved {
        save(card.euicc(), path)?;
        *saved = now;
    }
    Ok(())
}

#[derive(Debug, Subcommand)]
pub(super) enum DeviceCommand {
    /// Download and install the profile of an Activation Code (SGP.22 §3.1: ES9+ over TLS
    /// trusting the CI of <certs-dir>/gsma, ES10b to the card, the Bound Profile Package
    /// decrypted and every MAC verified), then send the installation result. Without an
    /// Activation Code, the events the card's root SM-DS holds for it (`device discover`).
    Download {
        /// The Activation Code, `1$<address>$<MatchingID>` (with or without `LPA:`).
        #[arg(long, short = 'a')]
        activation_code: Option<String>,
        /// The Confirmation Code, when the order has one.
        #[arg(long)]
        confirmation_code: Option<String>,
        /// The ES9+ binding: json (SGP.22 §6.5, a path per function) or asn1 (§6.6, DER on
        /// POST /gsma/rsp2/asn1).
        #[arg(long, default_value = "json", value_parser = ["json", "asn1"])]
        binding: String,
        #[command(flatten)]
        card: CardArgs,
    },
    /// Event Retrieval (SGP.22 §3.6.2): ES11 at an SM-DS (mutual authentication with its
    /// CERT.DSauth, the card signing), the events it holds for the card in the order they were
    /// registered, then each downloaded from its SM-DP+ with the EventID as MatchingID
    /// (§3.1.3), its installation result sent. Prints a line per event.
    Discover {
        /// The SM-DS (`host[:port]`); the card's root SM-DS (--root-ds) by default.
        #[arg(long)]
        smds: Option<String>,
        /// Only this event (ctxParams1's MatchingID: the SM-DS answers 8.9.5 / 3.9 without it).
        #[arg(long)]
        event_id: Option<String>,
        /// List the events as JSON without downloading them.
        #[arg(long)]
        no_download: bool,
        /// The Confirmation Code, when the orders have one.
        #[arg(long)]
        confirmation_code: Option<String>,
        #[command(flatten)]
        card: CardArgs,
    },
    /// Enable an installed profile and send the notification it leaves.
    Enable {
        /// The profile's ICCID.
        iccid: String,
        #[command(flatten)]
        card: CardArgs,
    },
    /// Disable an enabled profile and send the notification it leaves.
    Disable {
        /// The profile's ICCID.
        iccid: String,
        #[command(flatten)]
        card: CardArgs,
    },
    /// Delete a disabled profile and send the notification it leaves.
    Delete {
        /// The profile's ICCID.
        iccid: String,
        #[command(flatten)]
        card: CardArgs,
    },
    /// The profiles on the card and its pending notifications, as JSON.
    List {
        #[command(flatten)]
        card: CardArgs,
    },
}

/// The ES10c result codes of Enable/Disable/Delete (§5.7.16-5.7.18).
fn result_name(code: u8) -> &'static str {
    match code {
        0 => "ok",
        1 => "iccidOrAidNotFound",
        2 => "profileNotInTheExpectedState",
        3 => "disallowedByPolicy",
        4 => "wrongProfileReenabling",
        5 => "catBusy",
        _ => "undefinedError",
    }
}

pub(super) async fn device(cmd: DeviceCommand) -> Result<()> {
    match cmd {
        DeviceCommand::Download {
            activation_code,
            confirmation_code,
            binding,
            card,
        } => {
            let (mut lpa, state, _lock) = card.load()?.lpa()?;
            lpa.binding = binding.parse()?;
            let Some(activation_code) = activation_code else {
                // §3.4.4: without an Activation Code, the Default SM-DP+ with an empty
                // MatchingID first, when the card has one, then the configured SM-DS.
                if let Some(dp) = lpa.euicc().default_dp_address().map(str::to_owned) {
                    let result = lpa
                        .download(&format!("1${dp}$"), confirmation_code.as_deref())
                        .await;
                    save(lpa.euicc(), &state)?;
                    match result {
                        Ok(downloaded) => return installed(&lpa, downloaded),
                        Err(e) => eprintln!(
                            "no profile from the Default SM-DP+ {dp} ({e}): trying the SM-DS"
                        ),
                    }
                }
                let smds = lpa.euicc().root_ds_address().to_owned();
                return discover(lpa, &state, &smds, None, confirmation_code.as_deref(), true)
                    .await;
            };
            let result = lpa
                .download(&activation_code, confirmation_code.as_deref())
                .await;
            save(lpa.euicc(), &state)?;
            installed(&lpa, result?)
        }
        DeviceCommand::Discover {
            smds,
            event_id,
            no_download,
            confirmation_code,
            card,
        } => {
            let (lpa, state, _lock) = card.load()?.lpa()?;
            let smds = smds.unwrap_or_else(|| lpa.euicc().root_ds_address().to_owned());
            discover(
                lpa,
                &state,
                &smds,
                event_id.as_deref(),
                confirmation_code.as_deref(),
                !no_download,
            )
            .await
        }
        DeviceCommand::Enable { iccid, card } => local(card, &iccid, "enabled", Lpa::enable).await,
        DeviceCommand::Disable { iccid, card } => {
            local(card, &iccid, "disabled", Lpa::disable).await
        }
        DeviceCommand::Delete { iccid, card } => local(card, &iccid, "deleted", Lpa::delete).await,
        DeviceCommand::List { card } => {
            let Card { euicc, .. } = card.load()?;
            let profiles: Vec<Value> = euicc
                .profiles()
                .iter()
                .map(|p| {
                    json!({
                        "iccid": p.iccid.to_string(),
                        "state": if p.enabled { "enabled" } else { "disabled" },
                        "serviceProvider": p.metadata.service_provider,
                        "profileName": p.metadata.profile_name,
                        "packageBytes": p.package.len(),
                    })
                })
                .collect();
            let notifications: Vec<Value> = euicc
                .notifications()
                .iter()
                .map(|n| {
                    let event = ["install", "enable", "disable", "delete"]
                        .get(usize::from(n.metadata.event))
                        .copied()
                        .unwrap_or("unknown");
                    json!({
                        "seqNumber": n.metadata.seq,
                        "event": event,
                        "address": n.metadata.address,
                        "iccid": n.metadata.iccid.map(|i| i.to_string()),
                    })
                })
                .collect();
            println!(
                "{}",
                serde_json::to_string_pretty(
                    &json!({ "eid": euicc.eid(), "profiles": profiles, "notifications": notifications })
                )?
            );
            Ok(())
        }
    }
}

/// The line a download prints, or why it did not install.
fn installed(lpa: &Lpa, downloaded: smdpp_rsp::lpa::Downloaded) -> Result<()> {
    let eid = lpa.euicc().eid();
    let size = lpa
        .euicc()
        .profiles()
        .iter()
        .find(|p| p.iccid == downloaded.iccid)
        .map_or(0, |p| p.package.len());
    if !downloaded.installed {
        bail!(
            "the eUICC did not install {} (transactionId {}); the failure was reported to the SM-DP+",
            downloaded.iccid,
            downloaded.transaction_id
        );
    }
    println!(
        "installed {} on eUICC {eid}: {size} bytes of profile package (transactionId {}); installation result sent",
        downloaded.iccid, downloaded.transaction_id
    );
    Ok(())
}

/// Event Retrieval at `smds` (§3.6.2), then, with `download`, each event downloaded in the
/// order received (step 4); every event is tried, and the first failure is the command's.
async fn discover(
    mut lpa: Lpa,
    state: &Path,
    smds: &str,
    event_id: Option<&str>,
    confirmation_code: Option<&str>,
    download: bool,
) -> Result<()> {
    let events = lpa.discover(smds, event_id).await;
    save(lpa.euicc(), state)?;
    let events = events.with_context(|| format!("Event Retrieval at the SM-DS {smds}"))?;
    if !download {
        let listed: Vec<Value> = events
            .iter()
            .map(|e| json!({ "eventId": e.event_id, "rspServerAddress": e.rsp_server_address }))
            .collect();
        println!("{}", serde_json::to_string_pretty(&listed)?);
        return Ok(());
    }
    if events.is_empty() {
        bail!(
            "the SM-DS {smds} holds no event for eUICC {}: nothing to download",
            lpa.euicc().eid()
        );
    }
    let mut first_failure = None;
    for event in &events {
        println!(
            "event {} at {} (SM-DS {smds})",
            event.event_id, event.rsp_server_address
        );
        let result = lpa.download_event(event, confirmation_code).await;
        save(lpa.euicc(), state)?;
        let outcome = result
            .map_err(anyhow::Error::from)
            .and_then(|downloaded| installed(&lpa, downloaded));
        if let Err(e) = outcome {
            eprintln!("event {}: {e:#}", event.event_id);
            first_failure.get_or_insert(e);
        }
    }
    match first_failure {
        Some(e) => Err(e.context("downloading the SM-DS's events")),
        None => Ok(()),
    }
}

/// A local operation (§3.2), then the notifications it leaves sent (§3.5).
async fn local(
    card: CardArgs,
    iccid: &str,
    done: &str,
    operation: fn(&mut Lpa, &Iccid) -> u8,
) -> Result<()> {
    let iccid: Iccid = iccid.parse().map_err(|e| anyhow::anyhow!("{e}"))?;
    let (mut lpa, state, _lock) = card.load()?.lpa()?;
    let code = operation(&mut lpa, &iccid);
    if code != 0 {
        save(lpa.euicc(), &state)?;
        bail!("the eUICC refused: {} ({code})", result_name(code));
    }
    let sent = lpa.send_notifications().await;
    save(lpa.euicc(), &state)?;
    let sent = sent.context(
        "the profile changed on the card, but sending its notification failed (it stays pending)",
    )?;
    println!("{done} {iccid}; {sent} notification(s) sent");
    Ok(())
}

/// `smdpp-mock euicc`.
#[derive(Debug, Args)]
pub(super) struct EuiccArgs {
    #[command(flatten)]
    card: CardArgs,
    /// The program to run with the card as its APDU driver, e.g. `lpac profile download -a
    /// '1$…'` (after `--`): its stdin and stdout carry lpac's stdio protocol, LPAC_APDU=stdio is
    /// set, its other output passes through. Without one, the protocol is served on this
    /// process's own stdin and stdout.
    #[arg(last = true)]
    command: Vec<String>,
    /// Break off the next profile download while its package is loaded: the card answers the
    /// first profile element segment with status word 6F00 and keeps the session, so the LPA
    /// cancels it (for testing what the SM-DP+ and the operator see then).
    #[arg(long)]
    interrupt_load: bool,
}

/// One answer of the stdio APDU protocol (lpac's `docs/backends/stdio-schema.json`).
fn apdu_answer(card: &mut ApduCard, request: &Value) -> Value {
    let func = request["payload"]["func"].as_str().unwrap_or_default();
    let param = request["payload"]["param"].as_str().unwrap_or_default();
    let bytes = smdpp_rsp::crypto::hex_decode(param);
    let (ecode, data): (i64, Option<String>) = match (func, bytes) {
        ("connect", _) | ("disconnect", _) => (0, None),
        ("logic_channel_open", Some(aid)) => (card.open_channel(&aid).map_or(-1, i64::from), None),
        ("logic_channel_close", Some(channel)) => {
            card.close_channel(channel.first().copied().unwrap_or(0));
            (0, None)
        }
        ("transmit", Some(apdu)) => {
            let response = card.transmit(&apdu);
            (0, Some(smdpp_rsp::crypto::hex_upper(&response)))
        }
        _ => (-1, None),
    };
    let mut payload = json!({ "ecode": ecode });
    if let Some(data) = data {
        payload["data"] = json!(data);
    }
    json!({ "type": "apdu", "payload": payload })
}

pub(super) fn euicc(args: EuiccArgs) -> Result<()> {
    let Card {
        mut euicc,
        state,
        _lock,
        ..
    } = args.card.load()?;
    euicc.faults.interrupt_load = args.interrupt_load;
    let mut saved = euicc.changes();
    let mut card = ApduCard::new(euicc);
    let Some((program, rest)) = args.command.split_first() else {
        // The protocol on our own stdin and stdout.
        let stdin = std::io::stdin();
        let mut stdout = std::io::stdout().lock();
        for line in stdin.lock().lines() {
            let line = line?;
            let Ok(request) = serde_json::from_str::<Value>(&line) else {
                continue;
            };
            if request["type"] == "apdu" {
                let answer = apdu_answer(&mut card, &request);
                // Saved before the answer goes out: what the LPA learns is on disk.
                save_if_changed(&card, &state, &mut saved)?;
                writeln!(stdout, "{answer}")?;
                stdout.flush()?;
            }
        }
        return save(card.euicc(), &state);
    };
    let mut child = Command::new(program)
        .args(rest)
        .env("LPAC_APDU", "stdio")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("starting {program}"))?;
    let mut to_child = child.stdin.take().context("the program's stdin")?;
    let from_child = std::io::BufReader::new(child.stdout.take().context("the program's stdout")?);
    let mut stdout = std::io::stdout().lock();
    for line in from_child.lines() {
        let line = line?;
        match serde_json::from_str::<Value>(&line) {
            Ok(request) if request["type"] == "apdu" => {
                let answer = apdu_answer(&mut card, &request);
                // Saved before the answer goes out: what the LPA learns is on disk.
                save_if_changed(&card, &state, &mut saved)?;
                // A program that stopped reading is finishing; its exit status says how.
                if writeln!(to_child, "{answer}").is_err() {
                    break;
                }
                let _ = to_child.flush();
            }
            _ => {
                writeln!(stdout, "{line}")?;
                stdout.flush()?;
            }
        }
    }
    drop(to_child);
    let status = child.wait()?;
    save(card.euicc(), &state)?;
    if !status.success() {
        std::process::exit(status.code().unwrap_or(1));
    }
    Ok(())
}
