//! The README's shell examples, run as a user runs them: each ```sh block after a marker, with
//! what the ```text block after it says it prints.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

pub fn readme() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap()
}

/// The first ```sh block after `marker`.
pub fn block_after(text: &str, marker: &str) -> String {
    fenced_after(text, marker, "```sh\n")
}

/// The first ```text block after `marker`'s ```sh block: what the README says it prints.
pub fn shown_after(text: &str, marker: &str) -> String {
    let after = &text[text.find(marker).expect("marker in README")..];
    let sh_end = after.find("```sh\n").unwrap() + "```sh\n".len();
    let sh_end = sh_end + after[sh_end..].find("```").unwrap() + 3;
    fenced_after(&after[sh_end..], "", "```text\n")
}

pub fn fenced_after(text: &str, marker: &str, fence: &str) -> String {
    let after = &text[text.find(marker).expect("marker in README")..];
    let start = after.find(fence).unwrap() + fence.len();
    let end = after[start..].find("```").unwrap();
    after[start..start + end].to_string()
}

/// `printed` is what `shown` says, line for line; a `…` in a shown line stands for any text
/// (a MatchingID, a transactionId).
pub fn assert_prints(printed: &str, shown: &str) {
    let printed: Vec<&str> = printed.lines().collect();
    let shown: Vec<&str> = shown.lines().collect();
    let matches = |line: &str, pattern: &str| {
        let parts: Vec<&str> = pattern.split('…').collect();
        let (first, last) = (parts[0], parts[parts.len() - 1]);
        if parts.len() == 1 {
            return line == pattern;
        }
        if !line.starts_with(first) || !line[first.len()..].ends_with(last) {
            return false;
        }
        let mut rest = &line[first.len()..line.len() - last.len()];
        for part in &parts[1..parts.len() - 1] {
            match rest.find(part) {
                Some(at) => rest = &rest[at + part.len()..],
                None => return false,
            }
        }
        true
    };
    assert!(
        printed.len() == shown.len() && printed.iter().zip(&shown).all(|(l, p)| matches(l, p)),
        "the README shows\n{}\nbut the commands printed\n{}",
        shown.join("\n"),
        printed.join("\n")
    );
}

/// Runs `script` with bash (`-euo pipefail`) in `dir`, with the built `smdpp-mock` first on the
/// PATH; its standard output, after checking that it succeeded.
pub async fn run_script(script: String, dir: &Path) -> String {
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_smdpp-mock"))
        .parent()
        .unwrap()
        .to_path_buf();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let dir = dir.to_path_buf();
    let out = tokio::task::spawn_blocking(move || {
        // In a process group of its own, killed afterwards: what the script started in the
        // background (a receiver) ends with it, whether it succeeded or not.
        let child = Command::new("bash")
            .args(["-euo", "pipefail", "-c", &script])
            .current_dir(dir)
            .env("PATH", path)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .expect("bash and curl must be installed");
        let group = format!("-{}", child.id());
        let out = child.wait_with_output().unwrap();
        let _ = Command::new("kill")
            .args(["-TERM", "--", &group])
            .stderr(Stdio::null())
            .status();
        out
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}
