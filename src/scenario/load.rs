//! Reading scenario files: directories, `include`s (relative to the including file, each file
//! read once, cycles refused) and YAML parsing.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use super::error::{Collector, Diagnostic, ScenarioErrors, Source};
use super::file::ScenarioFile;

/// The include name of the built-in default scenario (`scenarios/default.yaml`, embedded).
pub(crate) const BUILTIN_DEFAULT: &str = "builtin:default";

/// Parsed files in load order (includes before the files that include them).
#[derive(Debug, Default)]
pub(crate) struct Loaded {
    pub(crate) sources: Vec<Source>,
    /// `(index into sources, parsed file, directory for relative paths)`.
    pub(crate) files: Vec<(usize, ScenarioFile, PathBuf)>,
}

impl Loaded {
    /// Loads files and directories (every `*.yaml`/`*.yml` inside, by name) in order.
    pub(crate) fn from_paths(paths: &[PathBuf]) -> Result<Self, ScenarioErrors> {
        let mut loaded = Loaded::default();
        let mut seen = HashSet::new();
        for path in paths {
            if path.is_dir() {
                let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
                    .map_err(|e| {
                        ScenarioErrors::single(
                            &path.display().to_string(),
                            format!("cannot read the directory: {e}"),
                        )
                    })?
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
                    .collect();
                entries.sort();
                if entries.is_empty() {
                    return Err(ScenarioErrors::single(
                        &path.display().to_string(),
                        "the directory holds no *.yaml or *.yml file",
                    ));
                }
                for entry in entries {
                    loaded.file(&entry, &mut seen, &mut Vec::new())?;
                }
            } else {
                loaded.file(path, &mut seen, &mut Vec::new())?;
            }
        }
        Ok(loaded)
    }

    /// Loads scenario text; its includes are relative to `base_dir`.
    pub(crate) fn from_text(
        name: &str,
        text: &str,
        base_dir: &Path,
    ) -> Result<Self, ScenarioErrors> {
        let mut loaded = Loaded::default();
        loaded.parsed(
            name.to_owned(),
            text.to_owned(),
            base_dir,
            &mut HashSet::new(),
            &mut Vec::new(),
        )?;
        Ok(loaded)
    }

    fn file(
        &mut self,
        path: &Path,
        seen: &mut HashSet<PathBuf>,
        stack: &mut Vec<PathBuf>,
    ) -> Result<(), ScenarioErrors> {
        let name = path.display().to_string();
        let canonical = path.canonicalize().map_err(|e| {
            let message = if e.kind() == std::io::ErrorKind::NotFound {
                let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
                format!("not found (no file at {})", absolute.display())
            } else {
                format!("cannot read the file: {e}")
            };
            ScenarioErrors::single(&name, message)
        })?;
        if !seen.insert(canonical.clone()) {
            return Ok(()); // already loaded through another include
        }
        let text = std::fs::read_to_string(path)
            .map_err(|e| ScenarioErrors::single(&name, format!("cannot read the file: {e}")))?;
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        stack.push(canonical);
        let result = self.parsed(name, text, &dir, seen, stack);
        stack.pop();
        result
    }

    fn parsed(
        &mut self,
        name: String,
        text: String,
        dir: &Path,
        seen: &mut HashSet<PathBuf>,
        stack: &mut Vec<PathBuf>,
    ) -> Result<(), ScenarioErrors> {
        let source = Source { name, text };
        let file = parse(&source)?;
        for include in &file.include {
            if include.value == BUILTIN_DEFAULT {
                // The built-in default, by name: an include that works wherever the file is.
                if seen.insert(PathBuf::from(BUILTIN_DEFAULT)) {
                    self.parsed(
                        super::DEFAULT_SCENARIO_NAME.to_owned(),
                        super::DEFAULT_SCENARIO_YAML.to_owned(),
                        dir,
                        seen,
                        stack,
                    )?;
                }
                continue;
            }
            let path = dir.join(&include.value);
            let cycle = path.canonicalize().ok().filter(|c| stack.contains(c));
            if cycle.is_some() {
                let mut errors = Collector::default();
                errors.at(
                    &source,
                    &include.referenced,
                    format!("include {:?} forms a cycle", include.value),
                );
                errors.finish()?;
            }
            if !path.is_file() {
                let mut errors = Collector::default();
                errors.at(
                    &source,
                    &include.referenced,
                    format!(
                        "include {:?}: no such file ({}); the built-in default scenario is \
                         included as \"{BUILTIN_DEFAULT}\"",
                        include.value,
                        path.display()
                    ),
                );
                errors.finish()?;
            }
            self.file(&path, seen, stack)?;
        }
        self.sources.push(source);
        self.files
            .push((self.sources.len() - 1, file, dir.to_path_buf()));
        Ok(())
    }
}

/// Parses a scenario file; when it does not parse, finds every error, not only the first.
///
/// The YAML parser stops at its first error. So, when the text is valid YAML, each top-level
/// section is parsed again on its own, and each item of a failing list (operators, profile
/// types, devices, faults) on its own, at its place in the file (the lines above it blank), so
/// that the errors of independent parts are all reported with their own line and column.
fn parse(source: &Source) -> Result<ScenarioFile, ScenarioErrors> {
    let first = match serde_saphyr::from_str::<ScenarioFile>(&source.text) {
        Ok(file) => return Ok(file),
        Err(e) => ScenarioErrors::from_parse(source, &e),
    };
    // A syntax error leaves no parts to parse apart.
    if serde_saphyr::from_str::<serde::de::IgnoredAny>(&source.text).is_err() {
        return Err(first);
    }
    let mut found: Vec<Diagnostic> = Vec::new();
    let lines: Vec<&str> = source.text.lines().collect();
    for (start, end) in top_level_sections(&lines) {
        let section = errors_of(source, &lines, &[(start, end)]);
        if section.is_empty() {
            continue;
        }
        let items = list_items(&lines, start, end);
        let mut from_items = Vec::new();
        for (item_start, item_end) in &items {
            from_items.extend(errors_of(
                source,
                &lines,
                &[(start, start + 1), (*item_start, *item_end)],
            ));
        }
        // Items that each parse may still fail together (an anchor in one, used in another):
        // then the section's own error stands.
        found.extend(if from_items.is_empty() {
            section
        } else {
            from_items
        });
    }
    found.dedup_by(|a, b| a.line == b.line && a.column == b.column && a.message == b.message);
    if found.is_empty()
        || !found
            .iter()
            .any(|d| first.0.first().is_some_and(|f| f.line == d.line))
    {
        // Parsed apart, the parts said something else than the whole: trust the whole.
        return Err(first);
    }
    Err(ScenarioErrors(found))
}

/// The errors of the text made of `ranges` of `lines` (each `(first, past the last)`), every
/// line at its own number: the other lines are left blank.
fn errors_of(source: &Source, lines: &[&str], ranges: &[(usize, usize)]) -> Vec<Diagnostic> {
    let mut text = String::new();
    for (i, line) in lines.iter().enumerate() {
        if ranges.iter().any(|(a, b)| (*a..*b).contains(&i)) {
            text.push_str(line);
        }
        text.push('\n');
    }
    match serde_saphyr::from_str::<ScenarioFile>(&text) {
        Ok(_) => Vec::new(),
        Err(e) => {
            // Shown with the file's own text, so snippets are the user's lines.
            let part = Source {
                name: source.name.clone(),
                text: source.text.clone(),
            };
            ScenarioErrors::from_parse(&part, &e).0
        }
    }
}

/// The top-level sections of a block-style YAML mapping: lines from one `key:` at column 1 to
/// the next.
fn top_level_sections(lines: &[&str]) -> Vec<(usize, usize)> {
    let starts: Vec<usize> = lines
        .iter()
        .enumerate()
        .filter(|(_, l)| {
            l.chars()
                .next()
                .is_some_and(|c| c.is_alphabetic() || c == '"' || c == '\'')
                && l.contains(':')
        })
        .map(|(i, _)| i)
        .collect();
    starts
        .iter()
        .enumerate()
        .map(|(k, &s)| (s, starts.get(k + 1).copied().unwrap_or(lines.len())))
        .collect()
}

/// The items of a block list under the section `start..end`: from one `- ` at the list's
/// indentation to the next.
fn list_items(lines: &[&str], start: usize, end: usize) -> Vec<(usize, usize)> {
    let dash = |l: &str| {
        let trimmed = l.trim_start();
        (trimmed.starts_with("- ") || trimmed == "-").then(|| l.len() - trimmed.len())
    };
    let Some(indent) = (start + 1..end).filter_map(|i| dash(lines[i])).min() else {
        return Vec::new();
    };
    let starts: Vec<usize> = (start + 1..end)
        .filter(|&i| dash(lines[i]) == Some(indent))
        .collect();
    starts
        .iter()
        .enumerate()
        .map(|(k, &s)| (s, starts.get(k + 1).copied().unwrap_or(end)))
        .collect()
}
