//! Reading scenario files: directories, `include`s (relative to the including file, each file
//! read once, cycles refused) and YAML parsing.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use super::error::{Collector, ScenarioErrors, Source};
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
        let file: ScenarioFile = serde_saphyr::from_str(&source.text)
            .map_err(|e| ScenarioErrors::from_parse(&source, &e))?;
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
