//! The conformance report: every check of the catalog with its counts and kept failures, as
//! JSON (the type itself), JUnit XML for CI, or text for people.

use serde::Serialize;

use super::catalog::{Check, Severity};
use super::Failure;

/// The conformance report.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// Totals.
    pub summary: Summary,
    /// One entry per check of the catalog.
    pub checks: Vec<CheckResult>,
}

/// Totals of a report.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    /// Checks in the catalog.
    pub checks: usize,
    /// Checks exercised without failure.
    pub passed: usize,
    /// Checks with at least one failure.
    pub failed: usize,
    /// Checks nothing exercised yet.
    pub not_exercised: usize,
    /// Failed checks of error severity.
    pub failed_errors: usize,
}

/// One check in a report.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckResult {
    /// The check.
    #[serde(flatten)]
    pub check: Check,
    /// `passed`, `failed` or `not-exercised`.
    pub result: &'static str,
    /// Times it passed.
    pub passed: u64,
    /// Times it failed.
    pub failed: u64,
    /// The last failures.
    pub failures: Vec<Failure>,
    /// For a check nothing exercised yet: what exercises it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<&'static str>,
}

impl Report {
    /// The report for people: totals, then the failed checks by severity, each failure with
    /// what was wrong, its operator, journal entry and an excerpt; then what is not exercised
    /// yet and how to exercise it.
    pub fn text(&self) -> String {
        use std::fmt::Write;
        let s = &self.summary;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "Conformance of operator clients: {} checks, {} passed, {} failed ({} of error severity), {} not exercised",
            s.checks, s.passed, s.failed, s.failed_errors, s.not_exercised
        );
        for (severity, heading) in [(Severity::Error, "Errors"), (Severity::Warning, "Warnings")] {
            let failed: Vec<&CheckResult> = self
                .checks
                .iter()
                .filter(|c| c.result == "failed" && c.check.severity == severity)
                .collect();
            if failed.is_empty() {
                continue;
            }
            let _ = writeln!(out, "\n{heading} ({}):", failed.len());
            for c in failed {
                let _ = writeln!(
                    out,
                    "\n  {} {} — failed {} of {} ({})",
                    c.check.id,
                    c.check.title,
                    c.failed,
                    c.failed + c.passed,
                    c.check.reference
                );
                for f in c.failures.iter().rev().take(3) {
                    let mut place = f.time.clone();
                    if let Some(op) = &f.operator {
                        let _ = write!(place, ", operator {op}");
                    }
                    if let Some(seq) = f.journal_seq {
                        let _ = write!(place, ", journal #{seq}");
                    }
                    let _ = writeln!(out, "    - {} [{place}]", f.message);
                    if !f.excerpt.is_empty() {
                        let excerpt: String = f.excerpt.chars().take(120).collect();
                        let _ = writeln!(out, "      {excerpt}");
                    }
                }
                if c.failures.len() > 3 {
                    let _ = writeln!(out, "    … {} more kept", c.failures.len() - 3);
                }
            }
        }
        let idle: Vec<&CheckResult> = self
            .checks
            .iter()
            .filter(|c| c.result == "not-exercised")
            .collect();
        if !idle.is_empty() {
            let _ = writeln!(out, "\nNot exercised yet ({}):", idle.len());
            for c in idle {
                let note = c.note.map(|n| format!(" — {n}")).unwrap_or_default();
                let _ = writeln!(out, "  {} {}{note}", c.check.id, c.check.title);
            }
        }
        if s.failed == 0 {
            let _ = writeln!(out, "\nNo check failed.");
        }
        out
    }

    /// The report as JUnit XML: one testsuite, one testcase per check; a failed check has a
    /// `<failure>`, an unexercised one is `<skipped>`.
    pub fn junit(&self) -> String {
        let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        out.push_str(&format!(
            "<testsuites name=\"smdpp-mock conformance\" tests=\"{}\" failures=\"{}\" errors=\"0\" skipped=\"{}\">\n",
            self.summary.checks, self.summary.failed, self.summary.not_exercised
        ));
        out.push_str(&format!(
            "  <testsuite name=\"operator client conformance\" tests=\"{}\" failures=\"{}\" errors=\"0\" skipped=\"{}\">\n",
            self.summary.checks, self.summary.failed, self.summary.not_exercised
        ));
        for c in &self.checks {
            let group = c.check.id.as_str().split('-').next().unwrap_or("");
            out.push_str(&format!(
                "    <testcase classname=\"{}\" name=\"{}\">\n",
                xml(group),
                xml(&format!("{} {}", c.check.id, c.check.title))
            ));
            out.push_str(&format!(
                "      <properties>\n        <property name=\"reference\" value=\"{}\"/>\n        <property name=\"severity\" value=\"{}\"/>\n      </properties>\n",
                xml(c.check.reference),
                c.check.severity.as_str()
            ));
            match c.result {
                "failed" => {
                    let first = c.failures.first().map_or("", |f| f.message.as_str());
                    out.push_str(&format!(
                        "      <failure message=\"{}\" type=\"{:?}\">",
                        xml(first),
                        c.check.severity
                    ));
                    for f in &c.failures {
                        out.push_str(&xml(&format!(
                            "{} {} {}: {} | {}\n",
                            f.time,
                            f.operator.as_deref().unwrap_or("-"),
                            f.journal_seq
                                .map_or(String::new(), |s| format!("journal #{s}")),
                            f.message,
                            f.excerpt
                        )));
                    }
                    out.push_str("</failure>\n");
                }
                "not-exercised" => out.push_str(&format!(
                    "      <skipped message=\"{}\"/>\n",
                    xml(&match c.note {
                        Some(note) => format!("not exercised: {note}"),
                        None => "not exercised".into(),
                    })
                )),
                _ => {}
            }
            out.push_str("    </testcase>\n");
        }
        out.push_str("  </testsuite>\n</testsuites>\n");
        out
    }
}

/// `text` as XML 1.0 character data: escaped, and every character XML 1.0 does not allow
/// (C0 controls but tab and newline, U+FFFE, U+FFFF; the C1 controls too, which it discourages)
/// shown as U+FFFD, so any string a client put into a graded excerpt keeps the report valid.
fn xml(text: &str) -> String {
    let allowed = |c: char| {
        matches!(c, '\t' | '\n')
            || ('\u{20}'..='\u{7E}').contains(&c)
            || ('\u{A0}'..='\u{D7FF}').contains(&c)
            || ('\u{E000}'..='\u{FFFD}').contains(&c)
            || c >= '\u{10000}'
    };
    text.chars()
        .map(|c| if allowed(c) { c } else { '\u{FFFD}' })
        .collect::<String>()
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

#[cfg(test)]
mod tests {
    use super::super::{CheckId, Conformance, Context, Grade};
    use proptest::prelude::*;

    /// Any character, the ones XML 1.0 forbids (controls, U+FFFE, U+FFFF) made likely.
    fn any_text() -> impl Strategy<Value = String> {
        let awkward = prop_oneof![
            Just('\u{0}'),
            Just('\u{8}'),
            Just('\u{B}'),
            Just('\u{1F}'),
            Just('\u{7F}'),
            Just('\u{85}'),
            Just('\u{FFFE}'),
            Just('\u{FFFF}'),
            Just('\u{D7FF}'),
            Just('\u{10FFFF}'),
            Just('<'),
            Just('&'),
            Just('"'),
            Just('\r'),
            Just(']'),
            Just('>'),
        ];
        proptest::collection::vec(prop_oneof![awkward, any::<char>()], 0..40)
            .prop_map(|chars| chars.into_iter().collect())
    }

    proptest! {
        /// Whatever a client puts in the fields a report quotes (the message quotes what it
        /// sent, the excerpt is its request, the operator and time come from it too), the
        /// JUnit report parses, and the excerpt's allowed characters survive.
        #[test]
        fn junit_is_well_formed_xml_for_any_graded_text(
            message in any_text(),
            excerpt in any_text(),
            operator in any_text(),
            time in any_text(),
        ) {
            let conformance = Conformance::default();
            let ctx = Context {
                time: time.as_str().into(),
                operator: Some(operator.as_str().into()),
                excerpt: excerpt.clone(),
                journal_seq: Some(7),
            };
            conformance.record(
                &[Grade { check: CheckId::Env004, passed: false, message: message.clone() }],
                &ctx,
            );
            let report = conformance.report();
            let xml = report.junit();
            let doc = roxmltree::Document::parse(&xml);
            prop_assert!(doc.is_ok(), "{:?} in\n{}", doc.err(), xml);
            let doc = doc.unwrap();
            let failure = doc
                .descendants()
                .find(|n| n.has_tag_name("failure"))
                .expect("the failed check has a <failure>");
            let text: String = failure.descendants().filter_map(|n| n.text()).collect();
            let kept: String = excerpt.chars().filter(|c| c.is_alphanumeric() && !c.is_control()).take(20).collect();
            let shown: String = text.chars().filter(|c| c.is_alphanumeric()).collect();
            prop_assert!(shown.contains(&kept) || kept.is_empty(), "{kept:?} not in {text:?}");
        }
    }
}
