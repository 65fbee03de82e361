//! The README's first screen stays true: its curl example works against a live server, and
//! `.ci/run` calls the test command the README gives.

use std::process::Command;

use crate::common::*;

fn readme() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap()
}

/// The first ```sh block after `marker`.
fn block_after(text: &str, marker: &str) -> String {
    let after = &text[text.find(marker).expect("marker in README")..];
    let start = after.find("```sh\n").unwrap() + "```sh\n".len();
    let end = after[start..].find("```").unwrap();
    after[start..start + end].to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_example_reserves_and_confirms() {
    let t = TestServer::start().await;
    let script = block_after(&readme(), "<!-- readme-curl-example").replace(
        "localhost:6443",
        &format!("localhost:{}", t.es2_addr().port()),
    );
    let out = tokio::task::spawn_blocking({
        let dir = t.dir.path().to_path_buf();
        move || {
            Command::new("bash")
                .args(["-euo", "pipefail", "-c", &script])
                .current_dir(dir)
                .output()
                .expect("bash and curl must be installed")
        }
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("reserved 8944500100000000004"), "{stdout}");
    let last = stdout.lines().last().unwrap();
    let reply: serde_json::Value = serde_json::from_str(last).unwrap();
    assert_eq!(
        reply["header"]["functionExecutionStatus"]["status"],
        "Executed-Success"
    );
    assert!(!reply["matchingId"].as_str().unwrap().is_empty());
    assert_eq!(
        t.state("8944500100000000004"),
        smdpp_mock::profile::ProfileState::Released
    );
}

/// The ES9+ section's commands, after the first screen's: the order is downloaded by the
/// command-line LPA and ends Installed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn es9_example_downloads_the_order() {
    let t = TestServer::start().await;
    let script = format!(
        "{}\n{}",
        block_after(&readme(), "<!-- readme-curl-example"),
        block_after(&readme(), "<!-- readme-es9-example")
    )
    .replace(
        "localhost:6443",
        &format!("localhost:{}", t.es2_addr().port()),
    )
    .replace("127.0.0.1:8080", &t.admin_addr().to_string());
    let bin_dir = std::path::Path::new(env!("CARGO_BIN_EXE_smdpp-mock"))
        .parent()
        .unwrap()
        .to_path_buf();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = tokio::task::spawn_blocking({
        let dir = t.dir.path().to_path_buf();
        move || {
            Command::new("bash")
                .args(["-euo", "pipefail", "-c", &script])
                .current_dir(dir)
                .env("PATH", path)
                .output()
                .expect("bash and curl must be installed")
        }
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("installed 8944500100000000004 on eUICC 89049032000000000000000000000163"),
        "{stdout}"
    );
    assert_eq!(
        stdout.lines().last(),
        Some("\"state\":\"Installed\""),
        "{stdout}"
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
    assert!(early.contains("cargo install --path ."), "{early}");
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
