//! `--state-file`: orders, counters and undelivered notifications survive a restart; a corrupt,
//! truncated or foreign file is refused whole; and `kill -9` at any moment leaves the file
//! either the old or the new complete state.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::receiver::Receiver;
use crate::common::*;
use serde_json::json;
use smdpp_mock::es2::Function;
use smdpp_mock::profile::ProfileState;
use smdpp_mock::Scenario;

const SCENARIO: &str = r#"
smdp: { matchingIdSeed: 7 }
operators: [{ id: test-mno }]
profileTypes:
  - id: STANDARD
    owner: test-mno
    profiles: [{ range: { start: "894450010000000000", count: 30 } }]
"#;

async fn start(dir: TempDir, yaml: &str) -> TestServer {
    let state = dir.path().join("state.json");
    TestServer::with_yaml_configured(dir, yaml, |c| {
        c.state_file = Some(state);
        c.notify_drain = Duration::from_millis(300);
    })
    .await
}

/// Stops the server gracefully (which saves) and hands back its directory.
async fn stop(t: TestServer) -> TempDir {
    t.shutdown().await
}

fn changed(t: &TestServer) -> Vec<smdpp_mock::profile::Profile> {
    t.snapshot()
        .into_iter()
        .filter(|p| !p.history.is_empty())
        .collect()
}

#[tokio::test]
async fn orders_and_counters_survive_a_restart() {
    let t = start(TempDir::new("state"), SCENARIO).await;
    let client = t.client("test-mno");
    let confirmed = download_by_type(&client, "STANDARD", Some(EID1)).await;
    let matching_id = confirm(&client, &confirmed, json!({ "eid": EID1 })).await;
    let allocated = download_by_type(&client, "STANDARD", None).await;
    let before = changed(&t);
    assert_eq!(before.len(), 2);
    let last_seq = t.admin().get("/admin/journal").await.body["lastSeq"].clone();
    assert_eq!(last_seq, 3);

    let dir = stop(t).await;
    assert!(dir.path().join("state.json").exists());
    // It holds Confirmation Code hashes and MatchingIDs: for the owner only.
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("state.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let t = start(dir, SCENARIO).await;
    assert_eq!(
        changed(&t),
        before,
        "the same profiles, orders and histories"
    );
    assert_eq!(t.state(&confirmed), ProfileState::Confirmed);
    assert_eq!(t.state(&allocated), ProfileState::Allocated);

    // The orders go on: the MatchingID index is back, the next allocation skips both.
    let client = t.client("test-mno");
    client
        .call(Function::ReleaseProfile, json!({ "iccid": confirmed }))
        .await
        .assert_success();
    let third = download_by_type(&client, "STANDARD", None).await;
    assert!(third != confirmed && third != allocated, "{third}");
    let next = confirm(&client, &allocated, json!({})).await;
    assert_ne!(next, matching_id, "the seeded MatchingID sequence goes on");
    // Journal numbering goes on too.
    let journal = t.admin().get("/admin/journal").await.body;
    assert_eq!(journal["entries"][0]["seq"], 4, "{journal}");
}

#[tokio::test]
async fn undelivered_notifications_survive_a_restart() {
    let up = Arc::new(AtomicBool::new(false));
    let flag = up.clone();
    let receiver = Receiver::plain(Arc::new(move |_| {
        if flag.load(Ordering::SeqCst) {
            204
        } else {
            503
        }
    }))
    .await;
    let yaml = format!(
        r#"
operators:
  - id: test-mno
    callback: {{ url: "{}", maxAttempts: 1000, initialBackoff: 50ms, maxBackoff: 100ms }}
profileTypes:
  - id: STANDARD
    owner: test-mno
    profiles: [{{ range: {{ start: "894450010000000000", count: 5 }} }}]
"#,
        receiver.http_url()
    );
    let t = start(TempDir::new("state-notify"), &yaml).await;
    let client = t.client("test-mno");
    let iccid = download_by_type(&client, "STANDARD", Some(EID1)).await;
    confirm(&client, &iccid, json!({ "eid": EID1, "releaseFlag": true })).await;
    t.device(&iccid, smdpp_mock::profile::machine::DeviceEvent::Download)
        .unwrap();
    // Refused a few times while the receiver is down.
    let deadline = Instant::now() + Duration::from_secs(10);
    while receiver.requests.lock().unwrap().len() < 2 {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let dir = stop(t).await;
    let seen = receiver.requests.lock().unwrap().len();

    // Back up: the restarted mock delivers the saved notification.
    up.store(true, Ordering::SeqCst);
    let t = start(dir, &yaml).await;
    let got = receiver.wait_for(seen + 1).await;
    let last = &got[got.len() - 1].body;
    assert_eq!(last["notificationPointId"], 3, "{last}");
    assert_eq!(last["iccid"], iccid.as_str());
    assert_eq!(t.state(&iccid), ProfileState::Downloaded);
    // The delivery log shows it delivered, under its original id.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let log = t
            .admin()
            .get("/admin/notifications?state=delivered")
            .await
            .body;
        if log["notifications"]
            .as_array()
            .is_some_and(|a| a.len() == 1)
        {
            assert_eq!(log["notifications"][0]["id"], 1, "{log}");
            break;
        }
        assert!(Instant::now() < deadline, "{log}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// An installation result that arrives after a restart lands (§3.1.3.3 step 8, §3.5: the LPA
/// sends it when it can): which package awaits a result is in the state file. A reset drops it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_installation_result_after_a_restart_lands() {
    let receiver = Receiver::plain(Arc::new(|_| 204)).await;
    let yaml = es9_scenario(&receiver.http_url(), "");
    let t = start(TempDir::new("state-es9"), &yaml).await;
    let (iccid, code) = released(&t, json!({})).await;
    let mut lpa = t.mock.lpa(EID1).unwrap();
    lpa.send_result = false;
    assert!(lpa.download(&code, None).await.unwrap().installed);
    assert_eq!(t.state(&iccid), ProfileState::Downloaded);

    let dir = stop(t).await;
    let t = start(dir, &yaml).await;
    assert_eq!(t.state(&iccid), ProfileState::Downloaded);
    // The card's notification names the old address: the LPA reaches the new listener.
    lpa.route_to = Some(format!("localhost:{}", t.mock.es9_addr().unwrap().port()));
    assert_eq!(lpa.send_notifications().await.unwrap(), 1);
    t.wait_for(&iccid, |p| p.state == ProfileState::Installed)
        .await;
    let handled = t
        .mock
        .journal()
        .into_iter()
        .find(|e| e.function == "HandleNotification")
        .unwrap();
    assert_eq!(handled.response.as_str(), r#"{"note":"installed"}"#);
    let got = receiver.wait_for(2).await;
    assert_eq!(got.last().unwrap().body["notificationPointId"], 4);

    // Saved again, then a reset: nothing awaits a result any more.
    let (second, code) = released(&t, json!({})).await;
    let mut lpa = t.mock.lpa(EID2).unwrap();
    lpa.send_result = false;
    lpa.download(&code, None).await.unwrap();
    assert_eq!(t.state(&second), ProfileState::Downloaded);
    t.admin().post("/admin/reset", json!({})).await;
    assert_eq!(lpa.send_notifications().await.unwrap(), 1);
    let handled = last_call(&t, "HandleNotification");
    assert!(
        handled
            .response
            .as_str()
            .contains("no Bound Profile Package awaits"),
        "{}",
        handled.response.as_str()
    );
}

#[tokio::test]
async fn two_instances_cannot_share_a_state_file() {
    let t = start(TempDir::new("state-lock"), SCENARIO).await;
    let mut config = smdpp_mock::ServerConfig::ephemeral(Scenario::from_yaml(SCENARIO).unwrap());
    config.admin_addr = None;
    config.certs_dir = t.certs();
    config.state_file = Some(t.dir.path().join("state.json"));
    let err = smdpp_mock::Server::start(config).await.unwrap_err();
    assert!(
        format!("{err:#}").contains("another smdpp-mock is using the state file"),
        "{err:#}"
    );
}

#[tokio::test]
async fn a_bad_state_file_is_refused_whole_with_the_reason() {
    // A good file to damage.
    let t = start(TempDir::new("state-bad"), SCENARIO).await;
    download_by_type(&t.client("test-mno"), "STANDARD", None).await;
    let dir = stop(t).await;
    let path = dir.path().join("state.json");
    let good = std::fs::read(&path).unwrap();
    let scenario_file = dir.path().join("scenario.yaml");

    let attempt = |bytes: Vec<u8>, yaml: &'static str| {
        let path = path.clone();
        let scenario_file = scenario_file.clone();
        let dir = dir.path().to_owned();
        async move {
            std::fs::write(&path, bytes).unwrap();
            std::fs::write(&scenario_file, yaml).unwrap();
            let mut config =
                smdpp_mock::ServerConfig::ephemeral(Scenario::load(&scenario_file).unwrap());
            config.admin_addr = None;
            config.certs_dir = dir.join("certs");
            config.state_file = Some(path);
            match smdpp_mock::Server::start(config).await {
                Ok(_) => panic!("a bad state file was accepted"),
                Err(e) => format!("{e:#}"),
            }
        }
    };
    let garbage = attempt(b"not a state file".to_vec(), SCENARIO).await;
    assert!(
        garbage.contains("cannot be used") && garbage.contains("no header line"),
        "{garbage}"
    );
    let cut = attempt(good[..good.len() - 20].to_vec(), SCENARIO).await;
    assert!(cut.contains("corrupt or cut short"), "{cut}");
    let mut flipped = good.clone();
    let last = flipped.len() - 2;
    flipped[last] ^= 1;
    let corrupt = attempt(flipped, SCENARIO).await;
    assert!(corrupt.contains("corrupt or cut short"), "{corrupt}");
    let newer =
        String::from_utf8(good.clone())
            .unwrap()
            .replacen("\"version\":2", "\"version\":3", 1);
    let newer = attempt(newer.into_bytes(), SCENARIO).await;
    assert!(newer.contains("version 3"), "{newer}");
    let other = attempt(
        good.clone(),
        r#"
operators: [{ id: test-mno }]
profileTypes:
  - id: STANDARD
    owner: test-mno
    profiles: [{ range: { start: "894450010000000000", count: 31 } }]
"#,
    )
    .await;
    assert!(other.contains("another inventory"), "{other}");
}

/// The binary with `--state-file` saving every `interval_ms`.
fn spawn(dir: &Path, interval_ms: u32) -> crate::common::process::Process {
    let interval = interval_ms.to_string();
    let (certs, scenario, state) = (
        dir.join("certs"),
        dir.join("scenario.yaml"),
        dir.join("state.json"),
    );
    crate::common::process::serve(&[
        "--certs-dir".as_ref(),
        certs.as_os_str(),
        "--scenario".as_ref(),
        scenario.as_os_str(),
        "--state-file".as_ref(),
        state.as_os_str(),
        "--state-interval-ms".as_ref(),
        interval.as_ref(),
    ])
}

#[test]
fn kill_9_at_any_moment_leaves_a_complete_state_file() {
    let dir = TempDir::new("state-kill");
    std::fs::write(
        dir.path().join("scenario.yaml"),
        SCENARIO.replace("30", "2000"),
    )
    .unwrap();
    let scenario = Scenario::load(&dir.path().join("scenario.yaml")).unwrap();
    let state: PathBuf = dir.path().join("state.json");
    // Pseudo-random kill times, reproducible from the printed seed.
    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    eprintln!("kill-9 seed {seed}");
    let mut next = move || {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 33) % 250
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut saved_profiles = 0;
    // How many profiles the state file at `state` holds (it must be one complete state).
    let saved = |round: usize| -> usize {
        let report = smdpp_mock::internal::state::check(&state, &scenario)
            .unwrap_or_else(|e| panic!("round {round}: {e:#}"));
        report
            .split(", ")
            .nth(1)
            .and_then(|s| s.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap()
    };
    for round in 0..6 {
        // Saves every 5 ms while calls change state, so kills land mid-write.
        let process = spawn(dir.path(), 5);
        let client = Es2Client::from_dir(process.es2, &dir.path().join("certs"), "test-mno");
        let stop = Arc::new(AtomicBool::new(false));
        let answered = Arc::new(AtomicUsize::new(0));
        let busy = {
            let stop = stop.clone();
            let answered = answered.clone();
            let client = Arc::new(client);
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async {
                    while !stop.load(Ordering::SeqCst) {
                        let reply = client
                            .call_raw_result(
                                Function::DownloadOrder,
                                json!({
                                    "header": { "functionRequesterIdentifier": "test-mno", "functionCallIdentifier": "k" },
                                    "profileType": "STANDARD"
                                }),
                            )
                            .await;
                        if reply.is_ok() {
                            answered.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                });
            })
        };
        // The kill lands at a random moment once orders are being made, however long the
        // start took; in the first round, once one of them is in the file, so that the test
        // never depends on how fast this machine gets there.
        let deadline = Instant::now() + Duration::from_secs(30);
        while answered.load(Ordering::SeqCst) == 0
            || (round == 0 && (!state.exists() || saved(round) == 0))
        {
            assert!(
                Instant::now() < deadline,
                "round {round}: no order was saved"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(Duration::from_millis(next()));
        drop(process); // SIGKILL
        stop.store(true, Ordering::SeqCst);
        busy.join().unwrap();
        // Whatever moment it died at, the file is one complete state.
        if state.exists() {
            let profiles = saved(round);
            // Each restart starts from the previous file: the state only grows.
            assert!(
                profiles >= saved_profiles,
                "round {round}: {profiles} after {saved_profiles}"
            );
            saved_profiles = profiles;
        }
    }
    assert!(saved_profiles > 0, "nothing was ever saved");
    // And the last file starts a server that has those orders.
    let process = spawn(dir.path(), 5000);
    let client = Es2Client::from_dir(process.es2, &dir.path().join("certs"), "test-mno");
    let reply = rt.block_on(client.get("/profile_types/STANDARD"));
    drop(process);
    assert_eq!(
        reply.body["counts"]["Allocated"].as_u64(),
        Some(saved_profiles as u64),
        "{}",
        reply.body
    );
}

/// Changes that leave no transition are saved too: the attempt counters of a profile that
/// started Released, and a local disable of one that started Installed.
#[tokio::test]
async fn changes_without_a_transition_survive_a_restart() {
    const STAGED: &str = r#"
operators: [{ id: test-mno }]
profileTypes:
  - id: STANDARD
    owner: test-mno
    profiles:
      - iccid: "8944500400000000024"
        state: Released
        eid: "89049032123451234512345678901235"
        matchingId: STAGED-0001
        confirmationCode: "4711"
      - iccid: "8944500400000000040"
        state: Installed
        eid: "89049032123451234512345678901237"
        matchingId: STAGED-0002
"#;
    use smdpp_mock::profile::{DeviceEvent, LocalOperation};
    let (released, installed) = ("8944500400000000024", "8944500400000000040");
    let t = start(TempDir::new("state-counters"), STAGED).await;
    t.device(released, DeviceEvent::WrongConfirmationCode)
        .unwrap();
    t.device(installed, DeviceEvent::Local(LocalOperation::Disable))
        .unwrap();
    let before = (t.profile(released), t.profile(installed));
    assert_eq!(before.0.state, ProfileState::Released);
    assert_eq!(before.0.confirmation_code_attempts, 1);
    assert_eq!(before.0.download_attempts, 1);
    assert_eq!(before.1.state, ProfileState::Installed);
    assert!(
        before.0.history.is_empty() && before.1.history.is_empty(),
        "no transition: {before:?}"
    );
    let dir = stop(t).await;
    let t = start(dir, STAGED).await;
    assert_eq!((t.profile(released), t.profile(installed)), before);
}

/// A profile the scenario parks in Released without a `matchingId` gets one drawn at random
/// (no `matchingIdSeed`); the state file keeps it, so the Activation Code still works after a
/// restart.
#[tokio::test]
async fn a_random_matching_id_of_the_inventory_survives_a_restart() {
    const PARKED: &str = r#"
operators: [{ id: test-mno }]
profileTypes:
  - id: STANDARD
    owner: test-mno
    profiles: [{ iccid: "8944500400000000024", state: Released }]
"#;
    let matching_id = |t: &TestServer| {
        t.profile("8944500400000000024")
            .matching_id
            .and_then(|m| m.id().map(|id| id.as_str().to_owned()))
            .unwrap()
    };
    let t = start(TempDir::new("state-parked"), PARKED).await;
    let before = matching_id(&t);
    let dir = stop(t).await;
    let t = start(dir, PARKED).await;
    assert_eq!(matching_id(&t), before);
}

/// The SM-DS's Event Records survive a restart: an order registered at the mock's SM-DS is
/// still discovered after it, downloaded, and its event then deleted. The SM-DS and ES9+
/// addresses are fixed names (what a deployment has), the listeners on port 0 reached through
/// the LPA's route.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smds_events_survive_a_restart() {
    let receiver = Receiver::plain(Arc::new(|_| 204)).await;
    let yaml = es9_scenario(&receiver.http_url(), "");
    let pinned = |dir: TempDir| {
        let state = dir.path().join("state.json");
        TestServer::with_yaml_configured(dir, &yaml, |c| {
            c.state_file = Some(state);
            c.smds_address = Some("smds.test:6445".into());
            c.es9_address = Some("smdp.test:6444".into());
        })
    };
    let t = pinned(TempDir::new("state-smds")).await;
    let smds = t.mock.smds_address().unwrap();
    assert_eq!(smds, "smds.test:6445");
    let (iccid, event_id) = release_standard(&t, Some(EID1), json!({ "smdsAddress": smds })).await;

    let dir = stop(t).await;
    let t = pinned(dir).await;
    let route = |addr: std::net::SocketAddr| Some(format!("127.0.0.1:{}", addr.port()));
    let mut lpa = t.mock.lpa(EID1).unwrap();
    lpa.route_to = route(t.mock.smds_addr().unwrap());
    let events = lpa.discover(&smds, None).await.unwrap();
    assert_eq!(
        events,
        [smdpp_rsp::lpa::EventEntry {
            event_id,
            rsp_server_address: "smdp.test:6444".into()
        }]
    );
    lpa.route_to = route(t.mock.es9_addr().unwrap());
    assert!(
        lpa.download_event(&events[0], None)
            .await
            .unwrap()
            .installed
    );
    t.wait_for(&iccid, |p| p.state == ProfileState::Installed)
        .await;
    lpa.route_to = route(t.mock.smds_addr().unwrap());
    assert!(lpa.discover(&smds, None).await.unwrap().is_empty());
}
