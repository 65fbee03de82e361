//! The shape of the crate, checked over its sources: imports between the top-level modules of
//! `src/` point one way (no cycle), and the HTTP router knows no protocol.
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

/// The text without comments (doc comments name modules freely).
fn code(text: &str) -> String {
    text.lines()
        .map(|line| match line.find("//") {
            Some(i) => &line[..i],
            None => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The top-level modules a source text names through `crate::`, including grouped imports
/// such as `use crate::{app::{App, World}, ids::Iccid};`.
fn crate_references(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = text;
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

fn first_segment(path: &str) -> String {
    path.trim()
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect()
}

#[test]
fn imports_between_top_level_modules_point_one_way() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    // module → (module it imports → a file that imports it)
    let mut edges: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for file in library_files() {
        let from = top_module(&src, &file);
        if from == "lib" {
            continue;
        }
        let text = code(&std::fs::read_to_string(&file).unwrap());
        for to in crate_references(&text) {
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
    // Depth-first search for a cycle, reporting its path.
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
fn the_http_router_knows_no_protocol() {
    let router =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/http/router.rs"))
            .unwrap();
    let code = code(&router);
    for word in [
        "es2",
        "Es2",
        "sgp22::Function",
        "scenario",
        "operator",
        "Operator",
    ] {
        assert!(
            !code.contains(word),
            "src/http/router.rs mentions {word:?}: protocol semantics belong to the engine"
        );
    }
}

#[test]
fn the_scanner_reads_grouped_imports() {
    let found = crate_references(
        "use crate::{app::{App, World}, ids::Iccid};\nlet x = crate::store::Store::new();\nuse smdpp_crate::x;",
    );
    assert_eq!(
        found.into_iter().collect::<Vec<_>>(),
        ["app", "ids", "store"]
    );
}
