//! `docs/scenarios.md` stays true: every YAML example in it loads, and every key of the
//! scenario format (from the JSON Schema generated from the Rust types) is documented.

use std::path::Path;

use smdpp_mock::Scenario;

fn doc() -> String {
    std::fs::read_to_string("docs/scenarios.md").unwrap()
}

fn yaml_blocks(text: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("```yaml\n") {
        let body = &rest[start + 8..];
        let end = body.find("```").unwrap();
        blocks.push(body[..end].to_string());
        rest = &body[end + 3..];
    }
    blocks
}

#[test]
fn every_yaml_example_loads() {
    let blocks = yaml_blocks(&doc());
    assert!(blocks.len() >= 4);
    for (i, block) in blocks.iter().enumerate() {
        // Includes in the examples are relative to scenarios/, where default.yaml lives.
        Scenario::from_yaml_named(&format!("docs example {i}"), block, Path::new("scenarios"))
            .unwrap_or_else(|e| panic!("example {i}:\n{block}\n{e}"));
    }
}

#[test]
fn every_key_is_documented() {
    let doc = doc();
    let schema = smdpp_mock::internal::scenario::json_schema();
    let mut keys = Vec::new();
    let mut collect = |props: &serde_json::Value| {
        if let Some(map) = props.as_object() {
            keys.extend(map.keys().cloned());
        }
    };
    collect(&schema["properties"]);
    for def in schema["$defs"].as_object().unwrap().values() {
        collect(&def["properties"]);
    }
    let missing: Vec<&String> = keys
        .iter()
        .filter(|k| {
            // `key`, or part of a dotted path: `parent.key`, `key.child`, `a.key.b`.
            !["`{k}`", ".{k}`", "`{k}.", ".{k}."]
                .iter()
                .any(|pattern| doc.contains(&pattern.replace("{k}", k)))
        })
        .collect();
    assert!(
        missing.is_empty(),
        "undocumented scenario keys: {missing:?}"
    );
}

#[test]
fn readme_yaml_examples_load() {
    let readme = std::fs::read_to_string("README.md").unwrap();
    let blocks = yaml_blocks(&readme);
    assert!(!blocks.is_empty());
    for (i, block) in blocks.iter().enumerate() {
        Scenario::from_yaml_named(
            &format!("README example {i}"),
            block,
            Path::new("scenarios"),
        )
        .unwrap_or_else(|e| panic!("README example {i}:\n{block}\n{e}"));
    }
}

/// The `--help` text of `smdpp-mock <path…>`.
fn help(path: &[&str]) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_smdpp-mock"))
        .args(path)
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success(), "{path:?} --help");
    String::from_utf8(out.stdout).unwrap()
}

/// Every subcommand path (hidden ones are not listed by `--help`, and so not documented).
fn subcommands(path: Vec<&'static str>, out: &mut Vec<Vec<&'static str>>) {
    let text = help(&path);
    out.push(path.clone());
    let Some(list) = text.split("Commands:\n").nth(1) else {
        return;
    };
    for line in list.lines().take_while(|l| !l.trim().is_empty()) {
        let name = line.split_whitespace().next().unwrap();
        if name != "help" {
            let mut sub = path.clone();
            sub.push(String::leak(name.to_owned()));
            subcommands(sub, out);
        }
    }
}

#[test]
fn the_configuration_reference_lists_every_flag_and_variable() {
    let section = std::fs::read_to_string("docs/configuration.md").unwrap();
    assert!(section.starts_with("# Configuration reference"));
    let mut paths = Vec::new();
    subcommands(Vec::new(), &mut paths);
    assert!(paths.len() >= 10, "{paths:?}");
    let mut missing = Vec::new();
    for path in &paths {
        let text = help(path);
        for word in text.split(|c: char| c.is_whitespace() || c == ',' || c == '[' || c == '=') {
            let word = word.trim_end_matches(|c: char| !c.is_ascii_alphanumeric());
            let documented = if let Some(flag) = word.strip_prefix("--") {
                flag == "help" || section.contains(&format!("--{flag}"))
            } else if word.starts_with("SMDPP_") {
                section.contains(&format!("`{word}`"))
            } else {
                continue;
            };
            if !documented {
                missing.push(format!("{} {word}", path.join(" ")));
            }
        }
        if !path.is_empty() {
            assert!(
                section.contains(&format!("smdpp-mock {}", path.join(" "))),
                "subcommand {path:?} not in the configuration reference"
            );
        }
    }
    missing.sort();
    missing.dedup();
    assert!(
        missing.is_empty(),
        "not in docs/configuration.md: {missing:?}"
    );
}
