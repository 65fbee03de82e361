//! The active probe of an operator's notification endpoint: a battery of valid and quirky
//! HandleDownloadProgressInfo requests, each graded (checks CB-001 to CB-008).

use std::time::{Duration, Instant};

use bytes::Bytes;
use serde::Serialize;
use serde_json::Value;

use crate::app::{App, World};
use crate::clock::es2_timestamp_shared;
use crate::conformance::catalog::{CheckId, CALLBACK_ANSWER_WITHIN};
use crate::conformance::grade::Grade;
use crate::conformance::Context;
use crate::notify::compose;
use crate::notify::transport::HttpTransport;
use crate::profile::machine::NotificationPoint;
use crate::profile::{Profile, ProfileState};
use crate::scenario::DEFAULT_DEVICE_EID;

/// One request of the probe and how the endpoint answered.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ProbeStep {
    /// What was sent.
    pub step: &'static str,
    /// The HTTP status, when there was an answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Why there was none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Bytes in the answer's body.
    pub body_bytes: usize,
    /// Time to answer.
    pub latency_ms: u64,
}

fn outcome(check: CheckId, ok: bool, message: impl FnOnce() -> String) -> Grade {
    Grade {
        check,
        passed: ok,
        message: if ok { String::new() } else { message() },
    }
}

impl ProbeStep {
    fn new(step: &'static str, answer: Answer) -> ProbeStep {
        ProbeStep {
            step,
            status: answer.status,
            error: answer.error,
            body_bytes: answer.body_bytes,
            latency_ms: answer.latency.as_millis() as u64,
        }
    }
}

/// Probes the callback of `operator` and records the outcomes; returns the steps.
pub(super) async fn run(
    app: &App,
    transport: &HttpTransport,
    operator: &str,
) -> Result<Vec<ProbeStep>, String> {
    let world = app.world();
    let callback = world
        .callback(operator)
        .ok_or_else(|| format!("operator {operator:?} has no callback to probe"))?;
    let (profile, can_pad) = probe_profile(&world, operator)?;
    let admin_protocol = world.scenario.admin_protocol().to_owned();
    let body = valid_notification(app, &world, &profile);

    let mut steps = Vec::new();
    let mut outcomes = Vec::new();
    for (step, value) in requests(&body) {
        let answer = send(transport, &callback, &value, &admin_protocol).await;
        grade(&mut outcomes, step, &answer, can_pad);
        steps.push(ProbeStep::new(step, answer));
    }

    if callback.client_certificate && callback.url.starts_with("https://") {
        let mut anonymous = (*callback).clone();
        anonymous.client_certificate = false;
        let answer = send(transport, &anonymous, &body, &admin_protocol).await;
        let status = answer.status;
        outcomes.push(outcome(CheckId::Cb008, !answer.ok2xx(), || {
            format!("accepted a client without certificate (answered {status:?})")
        }));
        steps.push(ProbeStep::new(
            "valid notification without client certificate",
            answer,
        ));
    }

    app.conformance.record(
        &outcomes,
        &Context {
            time: es2_timestamp_shared(app.clock.now()),
            operator: Some(operator.into()),
            excerpt: format!("probe of {}", callback.url),
            journal_seq: None,
        },
    );
    Ok(steps)
}

/// The operator's profile the notifications name, as if downloaded to the default device, and
/// whether its ICCID can be padded: a 19-digit ICCID without pad if there is one, so CB-005
/// has something to pad.
fn probe_profile(world: &World, operator: &str) -> Result<(Profile, bool), String> {
    let owned = || world.scenario.profiles().filter(|p| &*p.owner == operator);
    let mut profile = owned()
        .find(|p| p.iccid.digits().len() == 19 && !p.iccid.is_padded())
        .or_else(|| owned().next())
        .ok_or_else(|| format!("operator {operator:?} has no profile to name in the probe"))?;
    let can_pad = profile.iccid.digits().len() == 19 && !profile.iccid.is_padded();
    profile.state = ProfileState::Downloaded;
    profile.eid = Some(DEFAULT_DEVICE_EID);
    Ok((profile, can_pad))
}

/// A valid point-3 (BPP download) HandleDownloadProgressInfo for `profile`.
fn valid_notification(app: &App, world: &World, profile: &Profile) -> Value {
    let call_id = format!("PROBE-{}", app.notifier.next_id());
    compose::body(
        &compose::Content {
            profile,
            eid: profile.eid,
            point: NotificationPoint::BppDownload,
            outcome: Ok(()),
            at: app.clock.now(),
            requester: &world.scenario.settings().requester_identifier,
            call_id: &call_id,
            device_result: None,
        },
        &Default::default(),
    )
}

/// The requests of the probe, in order: the valid notification, quirky variants of it that a
/// tolerant endpoint accepts, and the valid one again.
fn requests(body: &Value) -> [(&'static str, Value); 5] {
    let variant = |f: &dyn Fn(&mut serde_json::Map<String, Value>)| {
        let mut v = body.clone();
        if let Some(m) = v.as_object_mut() {
            f(m);
        }
        v
    };
    let unknown = variant(&|m| {
        m.insert("tac".into(), "35209900".into());
        m.insert("imei".into(), "352099001761481".into());
        m.insert("vendorExtension".into(), serde_json::json!({ "any": true }));
    });
    let time_stamp = variant(&|m| {
        if let Some(t) = m.remove("timestamp") {
            m.insert("timeStamp".into(), t);
        }
    });
    let padded = variant(&|m| {
        if let Some(i) = m
            .get("iccid")
            .and_then(Value::as_str)
            .filter(|i| i.len() == 19)
        {
            let padded = format!("{i}F");
            m.insert("iccid".into(), padded.into());
        }
    });
    [
        ("valid notification", body.clone()),
        ("unknown fields tac, imei, vendorExtension", unknown),
        ("timeStamp instead of timestamp", time_stamp),
        ("ICCID with F pad", padded),
        ("the valid notification again", body.clone()),
    ]
}

/// The checks one answer of the loop decides: CB-001 and CB-002 for the valid notification,
/// the acceptance check of each variant (CB-005 only when the ICCID could be padded), and
/// CB-007 for every answer.
fn grade(outcomes: &mut Vec<Grade>, step: &str, answer: &Answer, can_pad: bool) {
    let Answer {
        status,
        error,
        body_bytes,
        latency,
    } = answer;
    let check = match step {
        "valid notification" => {
            outcomes.push(outcome(CheckId::Cb001, *status == Some(204), || {
                format!("answered {status:?} {error:?}")
            }));
            outcomes.push(outcome(
                CheckId::Cb002,
                status.is_some() && *body_bytes == 0,
                || format!("answered with a {body_bytes}-byte body"),
            ));
            None
        }
        "unknown fields tac, imei, vendorExtension" => Some(CheckId::Cb003),
        "timeStamp instead of timestamp" => Some(CheckId::Cb004),
        "ICCID with F pad" if can_pad => Some(CheckId::Cb005),
        "ICCID with F pad" => None,
        _ => Some(CheckId::Cb006),
    };
    if let Some(check) = check {
        outcomes.push(outcome(check, answer.ok2xx(), || {
            format!("{step}: answered {status:?} {error:?}")
        }));
    }
    outcomes.push(outcome(
        CheckId::Cb007,
        status.is_some() && *latency <= CALLBACK_ANSWER_WITHIN,
        || format!("{step}: {latency:?}"),
    ));
}

/// How the endpoint answered one request.
struct Answer {
    /// The HTTP status, when there was an answer.
    status: Option<u16>,
    /// Why there was none.
    error: Option<String>,
    /// Bytes in the answer's body.
    body_bytes: usize,
    /// Time to answer.
    latency: Duration,
}

impl Answer {
    /// Whether the endpoint accepted the request (any 2xx).
    fn ok2xx(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }
}

/// One request: status, error, body length and latency.
async fn send(
    transport: &HttpTransport,
    callback: &crate::scenario::Callback,
    value: &Value,
    admin_protocol: &str,
) -> Answer {
    let started = Instant::now();
    let future = transport.post_full(callback, Bytes::from(value.to_string()), admin_protocol);
    let result = tokio::time::timeout(CALLBACK_ANSWER_WITHIN.max(callback.timeout), future).await;
    let latency = started.elapsed();
    let (status, error, body_bytes) = match result {
        Ok(Ok((status, bytes))) => (Some(status), None, bytes.len()),
        Ok(Err(e)) => (None, Some(e), 0),
        Err(_) => (None, Some("no answer".to_string()), 0),
    };
    Answer {
        status,
        error,
        body_bytes,
        latency,
    }
}
