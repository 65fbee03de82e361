//! The shape of the crate, checked over its sources: imports between the top-level modules of
//! `src/` point one way (down the layer table of `docs/architecture.md`, and no cycle), and the
//! HTTP layer knows no protocol.
//!
//! A test rather than a tool such as `cargo-modules --acyclic`: it needs nothing installed in
//! CI (that tool builds rust-analyzer's crates, minutes on two cores), and it checks exactly
//! this crate's rule, with a message that names the modules and the files that close the cycle.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every `.rs` file of the library (not the binary under `src/bin/`).
fn library_files() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                if path.file_name().is_some_and(|n| n != "bin") {
                    walk(&path, out);
                }
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    walk(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &mut out);
    out
}

/// The top-level module a file belongs to (`src/es2/engine.rs` → `es2`).
fn top_module(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap();
    let first = rel
        .components()
        .next()
        .unwrap()
        .as_os_str()
        .to_string_lossy();
    first.trim_end_matches(".rs").to_string()
}

/// The text without comments (doc comments name modules freely) and without the contents of
/// string literals (`"http://…"` is not a comment, `"crate::x"` not an import).
fn code(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    let mut in_string = false;
    while let Some(c) = chars.next() {
        if in_string {
            match c {
                '\\' => {
                    chars.next();
                }
                '"' => {
                    in_string = false;
                    out.push('"');
                }
                '\n' => out.push('\n'),
                _ => {}
            }
            continue;
        }
        match c {
            '"' => {
                in_string = true;
                out.push('"');
            }
            // A char literal such as '"' would otherwise open a string.
            '\'' if chars.peek() == Some(&'"') => {
                chars.next();
                out.push_str("'\"");
            }
            '/' if chars.peek() == Some(&'/') => {
                for skipped in chars.by_ref() {
                    if skipped == '\n' {
                        out.push('\n');
                        break;
                    }
                }
            }
            _ => out.push(c),
        }
    }
    // `crate :: x` and `crate::x` are the same path.
    out.replace("crate ::", "crate::").replace(":: ", "::")
}

/// The top-level modules a source text names through `crate::` (or `super::` in a file whose
/// parent is the crate root), including grouped imports such as
/// `use crate::{app::{App, World}, ids::Iccid};`.
fn crate_references(text: &str, super_is_root: bool) -> BTreeSet<String> {
    let mut text = text.to_string();
    if super_is_root {
        text = text.replace("super::", "crate::");
    }
    let mut out = BTreeSet::new();
    let mut rest = text.as_str();
    while let Some(i) = rest.find("crate::") {
        // `smdpp_mock::crate::` never occurs; `$crate::` (macros) is not ours to check.
        let before = rest[..i].chars().last();
        rest = &rest[i + "crate::".len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$') {
            continue;
        }
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 1;
            let mut end = group.len();
            for (j, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' => {
                        depth -= 1;
                        if depth == 0 {
                            end = j;
                            break;
                        }
                    }
                    _ => {}
                }
            }
            let mut depth = 0;
            let mut start = 0;
            let inner = &group[..end];
            for (j, c) in inner.char_indices().chain([(inner.len(), ',')]) {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        out.insert(first_segment(&inner[start..j]));
                        start = j + 1;
                    }
                    _ => {}
                }
            }
        } else {
            out.insert(first_segment(rest));
        }
    }
    out.retain(|m| !m.is_empty() && m != "self");
    out
}

/// The module behind each name the crate root re-exports (`pub use server::{Server, …}`), so
/// that `crate::Server` counts as an import of `server`.
fn root_reexports(lib: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for statement in code(lib).split(';') {
        let Some(path) = statement.trim().strip_prefix("pub use ") else {
            continue;
        };
        let module = first_segment(path);
        let names = match path.find('{') {
            Some(i) => path[i + 1..].trim_end_matches('}').to_string(),
            None => path.rsplit("::").next().unwrap_or("").to_string(),
        };
        for name in names.split(',') {
            let name = name
                .trim()
                .rsplit("::")
                .next()
                .unwrap_or("")
                .trim()
                .to_string();
            if !name.is_empty() {
                out.insert(name, module.clone());
            }
        }
    }
    out
}

/// Each module's row in the layer table of `docs/architecture.md` (0 = the top row).
fn layers() -> BTreeMap<String, usize> {
    let doc =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/architecture.md"))
            .unwrap();
    let mut out = BTreeMap::new();
    let rows = doc
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| layer") && !l.starts_with("|---"));
    for (row, line) in rows.enumerate() {
        let modules = line.split('|').nth(2).unwrap_or("");
        for module in modules.split(',') {
            out.insert(module.trim().trim_matches('`').to_string(), row);
        }
    }
    out
}

/// The imports each top-level module may make, written down once: a new arrow between modules
/// is a decision made here, on top of the layer table of `docs/architecture.md` that they must
/// also follow.
///
/// The transport (`http`) knows sockets, TLS, HTTP, limits and the engine contract: what a
/// refused handshake means is its owner's (`server/hooks.rs`), through `http::Hooks`.
const ALLOWED: &[(&str, &str)] = &[
    ("admin", "api app clock conformance exchange ids journal metrics notify pki platform profile scenario sgp22 store"),
    ("api", "exchange"),
    ("app", "clock conformance es12_client fault ids journal metrics notify profile scenario sgp22 store"),
    ("caller", "scenario"),
    ("conformance", "ids journal json profile scenario sgp22 striped"),
    ("error", "scenario"),
    ("es12_client", "ids journal notify pki sgp22"),
    ("es2", "app caller conformance es12_client exchange fault ids journal json metrics pipeline profile scenario sgp22 store"),
    ("es9", "app caller clock exchange fault ids journal metrics notify pipeline pki profile scenario sgp22 store"),
    ("exchange", "caller"),
    ("fault", "ids profile rng scenario sgp22"),
    ("http", "caller error exchange pki sgp22"),
    ("ids", "rng"),
    ("internal", "admin app atomic_file caller clock conformance es2 es9 exchange http ids journal mock notify pki platform profile scenario server sgp22 state"),
    ("journal", "change_signal"),
    ("metrics", "journal sgp22 striped"),
    ("mock", "app error ids journal notify pki profile scenario server sgp22 store"),
    ("notify", "change_signal clock conformance ids pki profile rng scenario sgp22"),
    ("pipeline", "app caller clock conformance exchange fault journal metrics sgp22"),
    ("pki", "atomic_file error ids"),
    ("platform", "api app caller clock ids profile scenario"),
    ("profile", "ids"),
    ("scenario", "ids ipnet profile sgp22 store"),
    ("server", "admin api app atomic_file clock conformance error es12_client es2 es9 exchange http ids journal metrics notify pki platform scenario sgp22 smds state"),
    ("smds", "api app caller es12_client es9 exchange ids journal metrics pipeline sgp22 store"),
    ("state", "app atomic_file clock error ids notify profile scenario store"),
    ("store", "change_signal ids profile sgp22"),
];

fn first_segment(path: &str) -> String {
    path.trim()
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect()
}

#[test]
fn imports_between_top_level_modules_point_one_way() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let reexports = root_reexports(&std::fs::read_to_string(src.join("lib.rs")).unwrap());
    // module → (module it imports → a file that imports it)
    let mut edges: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for file in library_files() {
        let from = top_module(&src, &file);
        if from == "lib" {
            continue;
        }
        // In `src/x.rs` and `src/x/mod.rs`, `super` is the crate root.
        let depth = file.strip_prefix(&src).unwrap().components().count();
        let is_mod = file.file_name().is_some_and(|n| n == "mod.rs");
        let super_is_root = depth == 1 || (depth == 2 && is_mod);
        let text = code(&std::fs::read_to_string(&file).unwrap());
        for name in crate_references(&text, super_is_root) {
            let to = reexports.get(&name).cloned().unwrap_or(name);
            if to != from {
                let shown = file.strip_prefix(&src).unwrap().display().to_string();
                edges
                    .entry(from.clone())
                    .or_default()
                    .entry(to)
                    .or_insert(shown);
            }
        }
    }
    assert!(
        edges.get("es2").is_some_and(|e| e.contains_key("app")),
        "the source scan found no es2 -> app import: the scanner is broken"
    );
    // Every arrow is a decision: written down in ALLOWED, or the test fails naming it.
    let allowed: BTreeMap<&str, BTreeSet<&str>> = ALLOWED
        .iter()
        .map(|(from, to)| (*from, to.split_whitespace().collect()))
        .collect();
    let unlisted: Vec<String> = edges
        .iter()
        .flat_map(|(from, targets)| {
            targets
                .iter()
                .filter(|(to, _)| {
                    !allowed
                        .get(from.as_str())
                        .is_some_and(|set| set.contains(to.as_str()))
                })
                .map(move |(to, file)| format!("{from} -> {to} (in src/{file})"))
        })
        .collect();
    assert!(
        unlisted.is_empty(),
        "imports between top-level modules that ALLOWED (tests/in_process/architecture.rs) does not list; add them there if they are meant:\n  {}\nall imports now:\n{}",
        unlisted.join("\n  "),
        edges
            .iter()
            .map(|(from, to)| format!("    (\"{from}\", \"{}\"),", to.keys().cloned().collect::<Vec<_>>().join(" ")))
            .collect::<Vec<_>>()
            .join("\n")
    );
    // Down the layer table: no import runs up a row.
    let layers = layers();
    let mut upward = Vec::new();
    for (from, targets) in &edges {
        let Some(&own) = layers.get(from) else {
            panic!("src/{from} is not in the layer table of docs/architecture.md");
        };
        for (to, file) in targets {
            let Some(&theirs) = layers.get(to) else {
                panic!("src/{to} (imported in src/{file}) is not in the layer table of docs/architecture.md");
            };
            if theirs < own {
                upward.push(format!("{from} -> {to} (in src/{file})"));
            }
        }
    }
    assert!(
        upward.is_empty(),
        "imports that run up the layer table of docs/architecture.md:\n  {}",
        upward.join("\n  ")
    );
    // Depth-first search for a cycle (within a row), reporting its path.
    fn visit(
        node: &str,
        edges: &BTreeMap<String, BTreeMap<String, String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = path.iter().position(|n| n == node) {
            let mut cycle = path[i..].to_vec();
            cycle.push(node.to_string());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_string());
        for next in edges.get(node).into_iter().flat_map(BTreeMap::keys) {
            if let Some(cycle) = visit(next, edges, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    for node in edges.keys() {
        if let Some(cycle) = visit(node, &edges, &mut Vec::new(), &mut done) {
            let steps: Vec<String> = cycle
                .windows(2)
                .map(|w| format!("{} -> {} (in src/{})", w[0], w[1], edges[&w[0]][&w[1]]))
                .collect();
            panic!(
                "an import cycle between top-level modules:\n  {}",
                steps.join("\n  ")
            );
        }
    }
}

#[test]
fn the_http_layer_knows_no_protocol() {
    // The HTTP layer may use the engine contract and the shared pieces below (the PKI it loads
    // TLS from, SGP.22's header names); never the application, a protocol, an API, the
    // journal, the metrics, conformance or the scenario's meaning.
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let forbidden = [
        "es2",
        "es9",
        "pipeline",
        "platform",
        "admin",
        "api",
        "app",
        "conformance",
        "metrics",
        "journal",
        "server",
        "mock",
        "scenario",
        "store",
        "profile",
        "fault",
    ];
    for file in library_files() {
        if top_module(&src, &file) != "http" {
            continue;
        }
        let text = code(&std::fs::read_to_string(&file).unwrap());
        for module in crate_references(&text, false) {
            assert!(
                !forbidden.contains(&module.as_str()),
                "src/{} imports {module}: protocol semantics belong to the engine",
                file.strip_prefix(&src).unwrap().display()
            );
        }
    }
    let router = code(&std::fs::read_to_string(src.join("http/router.rs")).unwrap());
    for word in ["Es2", "es2plus", "Operator", "Function::"] {
        assert!(
            !router.contains(word),
            "src/http/router.rs mentions {word:?}: protocol semantics belong to the engine"
        );
    }
}

#[test]
fn the_scanner_reads_grouped_imports() {
    let text = code(
        "use crate::{app::{App, World}, ids::Iccid};\nlet x = crate :: store::Store::new();\nuse smdpp_crate::x;\nlet u = \"http://crate::json\"; use super::clock; // crate::rng",
    );
    assert_eq!(
        crate_references(&text, true)
            .into_iter()
            .collect::<Vec<_>>(),
        ["app", "clock", "ids", "store"]
    );
    assert_eq!(
        root_reexports("pub use server::{Server, ServerConfig};\npub use http::Limits;")
            .into_iter()
            .collect::<Vec<_>>(),
        [
            ("Limits".to_string(), "http".to_string()),
            ("Server".to_string(), "server".to_string()),
            ("ServerConfig".to_string(), "server".to_string())
        ]
    );
}

/// Every `.rs` file of both crates' sources: the server library and binary (`src/`) and the
/// device-side crate (`crates/smdpp-rsp/src/`).
fn workspace_sources() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut out = Vec::new();
    walk(&root.join("src"), &mut out);
    walk(&root.join("crates/smdpp-rsp/src"), &mut out);
    assert!(out.len() > 100, "the source walk found too few files");
    out
}

/// The functions of a rustfmt'd source text: `(name, first line, signature, length in lines)`,
/// a function running from its `fn` line to the closing brace at the same indentation.
fn functions(text: &str) -> Vec<(String, usize, String, usize)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let trimmed = line.trim_start();
        let indent = &line[..line.len() - trimmed.len()];
        let mut rest = trimmed;
        for prefix in [
            "pub(crate) ",
            "pub(super) ",
            "pub ",
            "const ",
            "async ",
            "unsafe ",
        ] {
            rest = rest.strip_prefix(prefix).unwrap_or(rest);
        }
        let Some(after) = rest.strip_prefix("fn ") else {
            continue;
        };
        let name: String = after
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        // The signature runs to the line that opens the body (or ends a declaration).
        let Some(open) = (i..lines.len()).find(|&j| {
            let l = lines[j].trim_end();
            l.ends_with('{') || l.ends_with(';') || l.ends_with('}')
        }) else {
            continue;
        };
        let signature = lines[i..=open].join("\n");
        if !lines[open].trim_end().ends_with('{') {
            continue; // a declaration, or a body on one line
        }
        let close = format!("{indent}}}");
        if let Some(end) = (open + 1..lines.len()).find(|&j| lines[j] == close) {
            out.push((name, i + 1, signature, end - i + 1));
        }
    }
    out
}

#[test]
fn no_function_is_longer_than_120_lines() {
    const LIMIT: usize = 120;
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut all = Vec::new();
    for file in workspace_sources() {
        let text = std::fs::read_to_string(&file).unwrap();
        let shown = file.strip_prefix(root).unwrap().display().to_string();
        for (name, line, _, length) in functions(&text) {
            all.push((length, format!("{shown}:{line} {name}")));
        }
    }
    all.sort_by(|a, b| b.cmp(a));
    assert!(all.len() > 500, "the scanner found too few functions");
    let long: Vec<String> = all
        .iter()
        .filter(|(n, _)| *n > LIMIT)
        .map(|(n, f)| format!("{f}: {n} lines"))
        .collect();
    assert!(
        long.is_empty(),
        "functions over {LIMIT} lines (split them where a reader would want a name):\n  {}",
        long.join("\n  ")
    );
    println!("longest function: {} ({} lines)", all[0].1, all[0].0);
}

#[test]
fn no_public_function_returns_anyhow() {
    // The binary may use anyhow freely: it is no one's API.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut found = Vec::new();
    for file in workspace_sources() {
        let shown = file.strip_prefix(root).unwrap().display().to_string();
        if shown.starts_with("src/bin") {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        // `use anyhow::{…, Result}` makes a bare `Result<T>` anyhow's in this file.
        let anyhow_result = text.lines().any(|l| {
            let l = l.trim();
            l.starts_with("use anyhow::")
                && (l.contains("Result}") || l.contains("Result,") || l.ends_with("Result;"))
        });
        for (name, line, signature, _) in functions(&text) {
            let public = signature.trim_start().starts_with("pub fn")
                || signature.trim_start().starts_with("pub async fn");
            let Some((_, returns)) = signature.split_once("->") else {
                continue;
            };
            let bare_result = returns.trim_start().starts_with("Result<") && !returns.contains(',');
            if public && (returns.contains("anyhow") || (anyhow_result && bare_result)) {
                found.push(format!("{shown}:{line} {name}"));
            }
        }
    }
    assert!(
        found.is_empty(),
        "public functions returning anyhow (give them the module's error type):\n  {}",
        found.join("\n  ")
    );
}

#[test]
fn the_function_scanner_measures_what_rustfmt_writes() {
    let text = "pub fn a() -> Result<()> {\n    one();\n}\n\nimpl X {\n    pub(crate) async fn b(\n        x: u8,\n    ) -> u8 {\n        x\n    }\n    fn c();\n}\n";
    let found: Vec<(String, usize, usize)> = functions(text)
        .into_iter()
        .map(|(name, line, _, length)| (name, line, length))
        .collect();
    assert_eq!(found, [("a".to_string(), 1, 3), ("b".to_string(), 6, 5)]);
}
