//! Scenario errors that point at `file:line:column`, with the offending line shown.

use std::fmt;

use serde::Serialize;
use serde_saphyr::Location;

/// One scenario file's name and text, kept so errors can quote the offending line.
#[derive(Debug, Clone)]
pub struct Source {
    /// The name shown in errors: the path as given, or e.g. `<built-in default>`.
    pub name: String,
    /// The file's text.
    pub text: String,
}

/// One problem in a scenario.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    /// The file.
    pub file: String,
    /// 1-based line, when the problem has a place.
    pub line: Option<u64>,
    /// 1-based column, when the problem has a place.
    pub column: Option<u64>,
    /// What is wrong and what was expected.
    pub message: String,
    /// The offending line with a caret under the column.
    #[serde(skip)]
    pub snippet: Option<String>,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.column) {
            (Some(l), Some(c)) => write!(f, "{}:{l}:{c}: {}", self.file, self.message),
            _ => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

impl Diagnostic {
    /// The diagnostic followed by its snippet, for people.
    pub fn render(&self) -> String {
        match &self.snippet {
            Some(s) => format!("{self}\n{s}"),
            None => self.to_string(),
        }
    }
}

/// Every problem found in a scenario; loading fails if there is at least one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
pub struct ScenarioErrors(pub Vec<Diagnostic>);

impl fmt::Display for ScenarioErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            f.write_str(&d.render())?;
        }
        Ok(())
    }
}

impl ScenarioErrors {
    /// A single error without a place.
    pub fn single(file: &str, message: impl Into<String>) -> Self {
        ScenarioErrors(vec![Diagnostic {
            file: file.to_owned(),
            line: None,
            column: None,
            message: message.into(),
            snippet: None,
        }])
    }

    /// The YAML parser's error for `source`.
    pub fn from_parse(source: &Source, error: &serde_saphyr::Error) -> Self {
        let location = error.location();
        // The parser's text starts with "error: line N column M: "; keep what follows.
        let text = error.without_snippet().to_string();
        let first = text.lines().next().unwrap_or_default();
        let message = first
            .strip_prefix("error: ")
            .unwrap_or(first)
            .split_once(": ")
            .filter(|(head, _)| head.starts_with("line "))
            .map_or(first, |(_, rest)| rest);
        // Some messages repeat the place at the end; it is already in front of the message.
        let message = match (location, message.rfind(" at line ")) {
            (Some(_), Some(at)) if message[at..].contains(", column ") => &message[..at],
            _ => message,
        }
        .to_owned();
        let (line, column) = match location {
            Some(l) if l.line() > 0 => (Some(l.line()), Some(l.column())),
            _ => (None, None),
        };
        let message = match line.zip(column) {
            Some((l, c)) => in_words(&message, &source.text, l, c),
            None => message,
        };
        ScenarioErrors(vec![Diagnostic {
            file: source.name.clone(),
            line,
            column,
            snippet: line
                .zip(column)
                .and_then(|(l, c)| snippet(&source.text, l, c)),
            message,
        }])
    }
}

/// The parser's terse type errors ("invalid u32") in words, naming the key and the value.
fn in_words(message: &str, text: &str, line: u64, column: u64) -> String {
    let kind = match message.strip_prefix("invalid ") {
        Some("u8" | "u16" | "u32" | "u64" | "usize") => "a whole number (0 or more)",
        Some("i8" | "i16" | "i32" | "i64" | "isize") => "a whole number",
        Some("f32" | "f64") => "a number",
        Some("bool") => "true or false",
        _ => return message.to_owned(),
    };
    let Some(content) = usize::try_from(line.saturating_sub(1))
        .ok()
        .and_then(|i| text.lines().nth(i))
    else {
        return message.to_owned();
    };
    let at = usize::try_from(column.saturating_sub(1))
        .unwrap_or(0)
        .min(content.len());
    let (before, after) = content.split_at(at);
    let key = before
        .trim_end()
        .strip_suffix(':')
        .map(|k| {
            k.rsplit(|c: char| c == '{' || c == ',' || c.is_whitespace())
                .next()
                .unwrap_or("")
                .trim_matches(|c| c == '"' || c == '\'')
        })
        .filter(|k| !k.is_empty());
    let value: String = after
        .chars()
        .take_while(|c| !matches!(c, ',' | '}' | ']' | '#'))
        .collect();
    match key {
        Some(key) => format!("`{key}` must be {kind}, not {:?}", value.trim()),
        None => format!("expected {kind}, not {:?}", value.trim()),
    }
}

/// Collects diagnostics while a scenario is checked.
#[derive(Debug, Default)]
pub(crate) struct Collector {
    found: Vec<Diagnostic>,
}

impl Collector {
    /// A problem at `location` in `source`.
    pub(crate) fn at(&mut self, source: &Source, location: &Location, message: impl Into<String>) {
        let (line, column) = (location.line(), location.column());
        let place = (line > 0).then_some((line, column));
        self.found.push(Diagnostic {
            file: source.name.clone(),
            line: place.map(|p| p.0),
            column: place.map(|p| p.1),
            message: message.into(),
            snippet: place.and_then(|(l, c)| snippet(&source.text, l, c)),
        });
    }

    /// A problem of `source` as a whole.
    pub(crate) fn file(&mut self, source: &Source, message: impl Into<String>) {
        self.found.push(Diagnostic {
            file: source.name.clone(),
            line: None,
            column: None,
            message: message.into(),
            snippet: None,
        });
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.found.is_empty()
    }

    pub(crate) fn finish(self) -> Result<(), ScenarioErrors> {
        if self.found.is_empty() {
            Ok(())
        } else {
            Err(ScenarioErrors(self.found))
        }
    }
}

/// The line `line` of `text` with a caret under `column`.
fn snippet(text: &str, line: u64, column: u64) -> Option<String> {
    let index = usize::try_from(line.checked_sub(1)?).ok()?;
    let content = text.lines().nth(index)?;
    let number = line.to_string();
    let pad = " ".repeat(number.len());
    let caret = " ".repeat(usize::try_from(column.saturating_sub(1)).ok()?);
    Some(format!("{pad} |\n{number} | {content}\n{pad} | {caret}^"))
}
