//! The active probe of an operator's notification endpoint: a battery of valid and quirky
//! HandleDownloadProgressInfo requests, each graded (checks CB-001 to CB-008).

use std::time::{Duration, Instant};

use bytes::Bytes;
use serde::Serialize;
use serde_json::Value;

use crate::app::App;
use crate::clock::es2_timestamp_shared;
use crate::conformance::catalog::{CheckId, CALLBACK_ANSWER_WITHIN};
use crate::conformance::grade::Grade;
use crate::conformance::Context;
use crate::notify::compose;
use crate::notify::transport::HttpTransport;
use crate::profile::machine::NotificationPoint;
use crate::profile::ProfileState;
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
    // A 19-digit ICCID without pad if there is one, so CB-005 has something to pad.
    let owned = || world.scenario.profiles().filter(|p| &*p.owner == operator);
    let mut profile = owned()
        .find(|p| p.iccid.digits().len() == 19 && !p.iccid.is_padded())
        .or_else(|| owned().next())
        .ok_or_else(|| format!("operator {operator:?} has no profile to name in the probe"))?;
    let can_pad = profile.iccid.digits().len() == 19 && !profile.iccid.is_padded();
    profile.state = ProfileState::Downloaded;
    profile.eid = Some(DEFAULT_DEVICE_EID);
    let admin_protocol = world.scenario.admin_protocol().to_owned();
    let call_id = format!("PROBE-{}", app.notifier.next_id());
    let body = compose::body(
        &compose::Content {
            profile: &profile,
            eid: profile.eid,
            point: NotificationPoint::BppDownload,
            outcome: Ok(()),
            at: app.clock.now(),
            requester: &world.scenario.settings().requester_identifier,
            call_id: &call_id,
            device_result: None,
        },
        &Default::default(),
    );
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

    let mut steps = Vec::new();
    let mut outcomes = Vec::new();
    let ok2xx = |s: Option<u16>| s.is_some_and(|s| (200..300).contains(&s));

    for (step, value) in [
        ("valid notification", &body),
        ("unknown fields tac, imei, vendorExtension", &unknown),
        ("timeStamp instead of timestamp", &time_stamp),
        ("ICCID with F pad", &padded),
        ("the valid notification again", &body),
    ] {
        let (status, error, body_bytes, latency) =
            send(transport, &callback, value, &admin_protocol).await;
        let check = match step {
            "valid notification" => {
                outcomes.push(outcome(CheckId::Cb001, status == Some(204), || {
                    format!("answered {status:?} {error:?}")
                }));
                outcomes.push(outcome(
                    CheckId::Cb002,
                    status.is_some() && body_bytes == 0,
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
            outcomes.push(outcome(check, ok2xx(status), || {
                format!("{step}: answered {status:?} {error:?}")
            }));
        }
        outcomes.push(outcome(
            CheckId::Cb007,
            status.is_some() && latency <= CALLBACK_ANSWER_WITHIN,
            || format!("{step}: {latency:?}"),
        ));
        steps.push(ProbeStep {
            step,
            status,
            error,
            body_bytes,
            latency_ms: latency.as_millis() as u64,
        });
    }

    if callback.client_certificate && callback.url.starts_with("https://") {
        let mut anonymous = (*callback).clone();
        anonymous.client_certificate = false;
        let (status, error, body_bytes, latency) =
            send(transport, &anonymous, &body, &admin_protocol).await;
        outcomes.push(outcome(CheckId::Cb008, !ok2xx(status), || {
            format!("accepted a client without certificate (answered {status:?})")
        }));
        steps.push(ProbeStep {
            step: "valid notification without client certificate",
            status,
            error,
            body_bytes,
            latency_ms: latency.as_millis() as u64,
        });
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

/// One request: status, error, body length and latency.
async fn send(
    transport: &HttpTransport,
    callback: &crate::scenario::Callback,
    value: &Value,
    admin_protocol: &str,
) -> (Option<u16>, Option<String>, usize, Duration) {
    let started = Instant::now();
    let future = transport.post_full(callback, Bytes::from(value.to_string()), admin_protocol);
    let result = tokio::time::timeout(CALLBACK_ANSWER_WITHIN.max(callback.timeout), future).await;
    let latency = started.elapsed();
    match result {
        Ok(Ok((status, bytes))) => (Some(status), None, bytes.len(), latency),
        Ok(Err(e)) => (None, Some(e), 0, latency),
        Err(_) => (None, Some("no answer".to_string()), 0, latency),
    }
}
