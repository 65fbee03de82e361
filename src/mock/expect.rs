//! Expectations on a [`super::MockSmdp`]: calls it should receive and notifications it should
//! deliver, checked against the journal and the delivery log.

use std::fmt::Write;
use std::sync::{Arc, Mutex};

use crate::journal::JournalEntry;
use crate::notify::{DeliveryRecord, DeliveryState};
use crate::sgp22::{ExecutionStatus, Function};

/// What an expectation counts.
#[derive(Debug, Clone)]
pub(super) enum Target {
    Call(Function),
    Notification(u32),
}

/// How many matches are right: from `lo` to `hi`, both included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Times {
    lo: u64,
    hi: u64,
}

impl Times {
    fn allows(self, n: u64) -> bool {
        (self.lo..=self.hi).contains(&n)
    }
}

impl std::fmt::Display for Times {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.lo, self.hi) {
            (lo, hi) if lo == hi => write!(f, "exactly {lo}"),
            (lo, u64::MAX) => write!(f, "at least {lo}"),
            (0, hi) => write!(f, "at most {hi}"),
            (lo, hi) => write!(f, "between {lo} and {hi}"),
        }
    }
}

/// One expectation.
#[derive(Debug)]
pub(super) struct Spec {
    target: Target,
    /// The journal sequence number and delivery id when it was registered: only later ones count.
    after: (u64, u64),
    times: Times,
    operator: Option<String>,
    iccid: Option<String>,
    status: Option<String>,
    status_code: Option<String>,
}

fn digits(iccid: &str) -> &str {
    iccid.trim_end_matches(['F', 'f'])
}

impl Spec {
    pub(super) fn new(target: Target, after: (u64, u64)) -> Self {
        Spec {
            target,
            after,
            times: Times {
                lo: 1,
                hi: u64::MAX,
            },
            operator: None,
            iccid: None,
            status: None,
            status_code: None,
        }
    }

    fn describe(&self) -> String {
        let mut what = match &self.target {
            Target::Call(f) => format!("{f} calls"),
            Target::Notification(p) => format!("delivered notifications of point {p}"),
        };
        if let Some(op) = &self.operator {
            let _ = write!(what, " by {op}");
        }
        if let Some(i) = &self.iccid {
            let _ = write!(what, " for ICCID {i}");
        }
        match (&self.status, &self.status_code) {
            (_, Some(code)) => {
                let _ = write!(what, " answered Failed {code}");
            }
            (Some(s), None) => {
                let _ = write!(what, " answered {s}");
            }
            (None, None) => {}
        }
        what
    }

    fn matches_call(&self, function: Function, e: &JournalEntry) -> bool {
        e.seq > self.after.0
            && e.function == function.name()
            && self
                .operator
                .as_ref()
                .is_none_or(|op| e.operator.as_deref() == Some(op.as_str()))
            && self.iccid.as_ref().is_none_or(|i| {
                e.iccid
                    .as_deref()
                    .is_some_and(|got| digits(got) == digits(i))
            })
            && self
                .status
                .as_ref()
                .is_none_or(|s| e.status == Some(s.as_str()))
            && self
                .status_code
                .as_ref()
                .is_none_or(|c| e.status_code.as_ref() == Some(c))
    }

    fn matches_notification(&self, point: u32, r: &DeliveryRecord) -> bool {
        r.id > self.after.1
            && r.notification_point_id == point
            && r.state == DeliveryState::Delivered
            && self.operator.as_ref().is_none_or(|op| &r.operator == op)
            && self
                .iccid
                .as_ref()
                .is_none_or(|i| digits(&r.iccid) == digits(i))
    }

    fn count(&self, journal: &[JournalEntry], notifications: &[DeliveryRecord]) -> u64 {
        (match &self.target {
            Target::Call(f) => journal.iter().filter(|e| self.matches_call(*f, e)).count(),
            Target::Notification(p) => notifications
                .iter()
                .filter(|r| self.matches_notification(*p, r))
                .count(),
        }) as u64
    }

    /// Whether more have come than allowed (which waiting cannot mend).
    pub(super) fn overshot(
        &self,
        journal: &[JournalEntry],
        notifications: &[DeliveryRecord],
    ) -> bool {
        self.count(journal, notifications) > self.times.hi
    }

    /// `None` when met; otherwise one line saying what was expected and what came.
    pub(super) fn check(
        &self,
        journal: &[JournalEntry],
        notifications: &[DeliveryRecord],
    ) -> Option<String> {
        let n = self.count(journal, notifications);
        (!self.times.allows(n))
            .then(|| format!("expected {} {}, got {n}", self.times, self.describe()))
    }
}

/// Entries of each kind the panic message lists (the newest).
const LISTED: usize = 50;

/// `title (n):`, then the newest [`LISTED`] of `items` one per line (`line` of each), after a
/// line saying how many older `what` are not shown.
fn list_newest<T>(
    out: &mut String,
    title: &str,
    what: &str,
    items: &[T],
    line: impl Fn(&T) -> String,
) {
    let _ = writeln!(out, "{title} ({}):", items.len());
    if items.len() > LISTED {
        let _ = writeln!(out, "  … {} older {what} not shown", items.len() - LISTED);
    }
    for item in &items[items.len().saturating_sub(LISTED)..] {
        let _ = writeln!(out, "  {}", line(item));
    }
}

/// The panic message: each unmet expectation, then what was received (the newest [`LISTED`]).
pub(super) fn report(
    failures: &[String],
    journal: &[JournalEntry],
    notifications: &[DeliveryRecord],
    pending: usize,
) -> String {
    let mut out = String::from("smdpp-mock: expectations not met:\n");
    for f in failures {
        let _ = writeln!(out, "  - {f}");
    }
    list_newest(
        &mut out,
        "calls received, ES2+ and ES9+",
        "calls",
        journal,
        |e| {
            format!(
                "#{} {} by {} iccid={} -> {}{}",
                e.seq,
                e.function,
                e.operator.as_deref().unwrap_or("?"),
                e.iccid.as_deref().unwrap_or("-"),
                e.status
                    .map_or_else(|| format!("HTTP {}", e.http_status), str::to_owned),
                e.status_code
                    .as_deref()
                    .map(|c| format!(" {c}"))
                    .unwrap_or_default(),
            )
        },
    );
    list_newest(
        &mut out,
        "notifications",
        "notifications",
        notifications,
        |r| {
            format!(
                "#{} point {} iccid={} to {} -> {:?} after {} attempt(s)",
                r.id,
                r.notification_point_id,
                r.iccid,
                r.url,
                r.state,
                r.attempts.len()
            )
        },
    );
    if pending > 0 {
        let _ = writeln!(
            out,
            "{pending} notification(s) still queued: `mock.verify().await` waits for deliveries"
        );
    }
    out
}

/// A handle on an expectation registered with [`super::MockSmdp::expect_call`] or
/// [`super::MockSmdp::expect_notification`]; each method narrows or counts it and returns the
/// handle for chaining. The mock checks it when dropped (or on [`super::MockSmdp::verify`]).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> anyhow::Result<()> {
/// use serde_json::json;
/// use smdpp_mock::{es2::Function, MockSmdp};
///
/// let mock = MockSmdp::start().await;
/// mock.expect_call(Function::ConfirmOrder)
///     .operator("test-mno")
///     .failed_with("8.2.1", "3.9")
///     .times(1);
/// mock.expect_call(Function::CancelOrder).never();
///
/// let client = mock.client("test-mno")?;
/// let reply = client
///     .call(
///         Function::ConfirmOrder,
///         json!({ "iccid": "8944500100000009998", "releaseFlag": true }),
///     )
///     .await?;
/// assert_eq!(reply.status_code(), Some(("8.2.1".into(), "3.9".into())));
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Expectation {
    spec: Arc<Mutex<Spec>>,
}

impl Expectation {
    pub(super) fn new(spec: Arc<Mutex<Spec>>) -> Self {
        Expectation { spec }
    }

    fn edit(self, f: impl FnOnce(&mut Spec)) -> Self {
        f(&mut super::lock(&self.spec));
        self
    }

    /// Exactly `n` matches.
    pub fn times(self, n: u64) -> Self {
        self.edit(|s| s.times = Times { lo: n, hi: n })
    }

    /// At least `n` matches.
    pub fn at_least(self, n: u64) -> Self {
        self.edit(|s| {
            s.times = Times {
                lo: n,
                hi: u64::MAX,
            }
        })
    }

    /// At most `n` matches.
    pub fn at_most(self, n: u64) -> Self {
        self.edit(|s| s.times = Times { lo: 0, hi: n })
    }

    /// No match at all.
    pub fn never(self) -> Self {
        self.times(0)
    }

    /// Only calls by (or notifications for) this operator.
    pub fn operator(self, operator: impl Into<String>) -> Self {
        let operator = operator.into();
        self.edit(|s| s.operator = Some(operator))
    }

    /// Only calls or notifications about this ICCID (with or without the trailing F).
    pub fn iccid(self, iccid: impl Into<String>) -> Self {
        let iccid = iccid.into();
        self.edit(|s| s.iccid = Some(iccid))
    }

    /// Only calls answered `Executed-Success`.
    pub fn succeeded(self) -> Self {
        self.edit(|s| s.status = Some(ExecutionStatus::ExecutedSuccess.as_str().into()))
    }

    /// Only calls answered `Failed` with this subject and reason code (SGP.22 §5.2.6).
    pub fn failed_with(self, subject: &str, reason: &str) -> Self {
        let code = format!("{subject}/{reason}");
        self.edit(|s| {
            s.status = Some(ExecutionStatus::Failed.as_str().into());
            s.status_code = Some(code);
        })
    }
}
