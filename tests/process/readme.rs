//! The README stays true: its curl and ES9+ examples print what it shows against a live server,
//! and `.ci/run` calls the test command the README gives. (Its lpac block runs in
//! tests/external/lpac.rs.)

use crate::common::readme::*;
use crate::common::*;

/// The first screen's example, run twice in a row as a user might: the output the README shows,
/// then the next ICCID, and no conformance failure (each run makes new functionCallIdentifiers).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_example_reserves_and_confirms() {
    let t = TestServer::start().await;
    let readme = readme();
    let script = block_after(&readme, "<!-- readme-curl-example").replace(
        "localhost:6443",
        &format!("localhost:{}", t.es2_addr().port()),
    );
    let printed = run_script(script.clone(), t.dir.path()).await;
    assert_prints(&printed, &shown_after(&readme, "<!-- readme-curl-example"));
    assert_eq!(
        t.state("8944500100000000004"),
        smdpp_mock::profile::ProfileState::Released
    );
    let again = run_script(script, t.dir.path()).await;
    assert!(
        again.starts_with("reserved 8944500100000000012\n"),
        "{again}"
    );
    // ENV-004: a functionCallIdentifier used again for a different request.
    let report = t.admin().get("/admin/conformance").await.body;
    let reuse = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "ENV-004")
        .unwrap();
    assert_eq!(reuse["failed"], 0, "{reuse}");
    assert!(reuse["passed"].as_u64() > Some(0), "{reuse}");
}

/// The ES9+ section's commands, after the first screen's: the order is downloaded by the
/// command-line LPA and ends Installed, and the receiver the block starts gets points 3 and 4.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn es9_example_downloads_the_order() {
    let t = TestServer::start().await;
    let readme = readme();
    let receiver_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // The block runs where the README says, the repository root: its `examples/` beside the
    // `certs/` of the mock under test.
    std::os::unix::fs::symlink(
        concat!(env!("CARGO_MANIFEST_DIR"), "/examples"),
        t.dir.path().join("examples"),
    )
    .unwrap();
    let script = format!(
        "{}\n{}",
        block_after(&readme, "<!-- readme-curl-example"),
        block_after(&readme, "<!-- readme-es9-example")
    )
    .replace(
        "localhost:6443",
        &format!("localhost:{}", t.es2_addr().port()),
    )
    .replace("127.0.0.1:8080", &t.admin_addr().to_string())
    .replace(
        "RECEIVER_PORT=9090",
        &format!("RECEIVER_PORT={receiver_port}"),
    )
    .replace("127.0.0.1:9090", &format!("127.0.0.1:{receiver_port}"));
    let printed = run_script(script, t.dir.path()).await;
    let shown = format!(
        "{}{}",
        shown_after(&readme, "<!-- readme-curl-example"),
        shown_after(&readme, "<!-- readme-es9-example")
    )
    .replace("127.0.0.1:9090", &format!("127.0.0.1:{receiver_port}"));
    assert_prints(&printed, &shown);
}

/// The SM-DS section's commands, after the first screen's: an order for the card's EID
/// confirmed with the mock's SM-DS is found there and installed by `device discover`, and a
/// second discovery finds nothing left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smds_example_discovers_and_installs_the_order() {
    let t = TestServer::start().await;
    let readme = readme();
    let smds = t.mock.smds_address().expect("the SM-DS runs");
    let script = format!(
        "{}\n{}",
        block_after(&readme, "<!-- readme-curl-example"),
        block_after(&readme, "<!-- readme-smds-example")
    )
    .replace(
        "localhost:6443",
        &format!("localhost:{}", t.es2_addr().port()),
    )
    .replace("localhost:6445", &smds);
    let printed = run_script(script, t.dir.path()).await;
    let shown = format!(
        "{}{}",
        shown_after(&readme, "<!-- readme-curl-example"),
        shown_after(&readme, "<!-- readme-smds-example")
    )
    .replace("localhost:6445", &smds)
    .replace("localhost:6444", &t.mock.smdp_address());
    assert_prints(&printed, &shown);
    assert_eq!(
        t.state("8944500100000000012"),
        smdpp_mock::profile::ProfileState::Installed
    );
}

#[test]
fn first_screen_commands_and_ci() {
    let readme = readme();
    let first_screen: String = readme.lines().take(15).collect::<Vec<_>>().join("\n");
    assert!(
        first_screen.contains("cargo run --release"),
        "{first_screen}"
    );
    assert!(first_screen.contains("cargo test "), "{first_screen}");
    let ci = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/.ci/run")).unwrap();
    assert!(ci.lines().any(|l| l.trim() == "cargo test"), "{ci}");
}

/// A newcomer learns early how to get `smdpp-mock` on the PATH, and the library example's
/// dependencies are all listed.
#[test]
fn onboarding_facts_are_in_the_readme() {
    let readme = readme();
    let early: String = readme.lines().take(25).collect::<Vec<_>>().join("\n");
    assert!(early.contains("cargo install --locked --path ."), "{early}");
    let start = readme
        .find("[dev-dependencies]")
        .expect("a [dev-dependencies] block");
    let library = &readme[start..start + readme[start..].find("```").unwrap()];
    for dependency in [
        "smdpp-mock",
        r#"tokio = { version = "1", features = ["macros", "rt-multi-thread"] }"#,
        "serde_json",
        "anyhow",
    ] {
        assert!(library.contains(dependency), "{dependency:?} in {library}");
    }
}
