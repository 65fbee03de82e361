//! The dispatcher against a scripted transport, on paused Tokio time: retries, order per
//! ICCID, failure marking, queue bound and draining happen without any real sleep.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex as StdMutex;

use super::transport::{AttemptResult, Transport};
use super::*;
use crate::ids::Iccid;

/// Answers from a script per ICCID (then 204), recording every body it was given.
#[derive(Default)]
struct Scripted {
    script: StdMutex<HashMap<String, VecDeque<Result<u16, String>>>>,
    seen: StdMutex<Vec<(String, u64)>>,
    hang: bool,
}

impl Transport for Scripted {
    fn post(
        &self,
        _callback: &Callback,
        body: Bytes,
        _admin_protocol: &str,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = AttemptResult> + Send>> {
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let iccid = v["iccid"].as_str().unwrap().to_string();
        let seq = v["seq"].as_u64().unwrap();
        self.seen.lock().unwrap().push((iccid.clone(), seq));
        let answer = self
            .script
            .lock()
            .unwrap()
            .get_mut(&iccid)
            .and_then(VecDeque::pop_front)
            .unwrap_or(Ok(204))
            .map(super::transport::Answered::empty);
        let hang = self.hang;
        Box::pin(async move {
            if hang {
                std::future::pending::<()>().await;
            }
            answer
        })
    }
}

fn callback(max_attempts: u32) -> Arc<Callback> {
    let defaults = Callback::with_defaults("http://receiver.test").unwrap();
    Arc::new(Callback {
        max_attempts,
        ..defaults
    })
}

fn outgoing(iccid: &str, seq: u64, cb: &Arc<Callback>) -> Outgoing {
    Outgoing {
        key: iccid.parse::<Iccid>().unwrap().key(),
        iccid: iccid.into(),
        operator: "op".into(),
        point_id: 3,
        callback: cb.clone(),
        body: serde_json::json!({ "iccid": iccid, "seq": seq }),
        call_id: format!("C-{seq}"),
        admin_protocol: "gsma/rsp/v2.5.0".into(),
        drop: false,
        delay: None,
        duplicate: false,
    }
}

const A: &str = "8944500100000000004";
const B: &str = "8944500100000000012";

fn send(n: &Notifier, iccid: &str, seq: u64, cb: &Arc<Callback>) {
    let id = n.next_id();
    n.enqueue(id, outgoing(iccid, seq, cb), OffsetDateTime::UNIX_EPOCH);
}

#[tokio::test(start_paused = true)]
async fn receiver_down_then_back_gets_everything_in_order() {
    let transport = Arc::new(Scripted::default());
    // A's receiver is "down" for three attempts (refused, 503, timeout-like error).
    transport.script.lock().unwrap().insert(
        A.into(),
        VecDeque::from([
            Err("connection refused".into()),
            Ok(503),
            Err("connection reset".into()),
        ]),
    );
    let n = Notifier::start(transport.clone(), 100, 100);
    let cb = callback(8);
    for seq in 1..=5 {
        send(&n, A, seq, &cb);
    }
    send(&n, B, 100, &cb);
    assert_eq!(n.drain(Duration::from_secs(600)).await, 0);

    let seen = transport.seen.lock().unwrap().clone();
    let a_order: Vec<u64> = seen
        .iter()
        .filter(|(i, _)| i == A)
        .map(|(_, s)| *s)
        .collect();
    // The first notification was tried four times; the rest follow it, in order.
    assert_eq!(a_order, vec![1, 1, 1, 1, 2, 3, 4, 5]);
    // B was not held up behind A's retries.
    let b_at = seen.iter().position(|(i, _)| i == B).unwrap();
    assert!(b_at < 3, "{seen:?}");

    let records = n.log().records();
    assert!(records.iter().all(|r| r.state == DeliveryState::Delivered));
    let first = records.iter().find(|r| r.body["seq"] == 1).unwrap();
    assert_eq!(first.attempts.len(), 4);
    assert_eq!(first.attempts[1].status, Some(503));
    assert!(first.attempts[0]
        .error
        .as_deref()
        .unwrap()
        .contains("refused"));
    assert_eq!(n.log().counters.delivered.load(Ordering::Relaxed), 6);
}

#[tokio::test(start_paused = true)]
async fn exhausted_retries_mark_failed_and_others_go_on() {
    let transport = Arc::new(Scripted::default());
    transport
        .script
        .lock()
        .unwrap()
        .insert(A.into(), VecDeque::from(vec![Ok(500); 3]));
    let n = Notifier::start(transport.clone(), 100, 100);
    let cb = callback(3);
    send(&n, A, 1, &cb);
    send(&n, A, 2, &cb);
    send(&n, B, 3, &cb);
    assert_eq!(n.drain(Duration::from_secs(600)).await, 0);
    let records = n.log().records();
    let state = |seq: u64| records.iter().find(|r| r.body["seq"] == seq).unwrap().state;
    assert_eq!(state(1), DeliveryState::Failed);
    assert_eq!(
        state(2),
        DeliveryState::Delivered,
        "the next one for A still goes"
    );
    assert_eq!(state(3), DeliveryState::Delivered);
    let failed = records.iter().find(|r| r.body["seq"] == 1).unwrap();
    assert_eq!(failed.attempts.len(), 3);
    assert!(failed.attempts.iter().all(|a| a.status == Some(500)));
    assert_eq!(n.log().counters.failed.load(Ordering::Relaxed), 1);
}

#[tokio::test(start_paused = true)]
async fn attempts_time_out_and_back_off() {
    let transport = Arc::new(Scripted {
        hang: true,
        ..Scripted::default()
    });
    let n = Notifier::start(transport.clone(), 100, 100);
    let cb = callback(4);
    let started = tokio::time::Instant::now();
    send(&n, A, 1, &cb);
    assert_eq!(n.drain(Duration::from_secs(600)).await, 0);
    let record = &n.log().records()[0];
    assert_eq!(record.state, DeliveryState::Failed);
    assert_eq!(record.attempts.len(), 4);
    assert!(record.attempts[0]
        .error
        .as_deref()
        .unwrap()
        .contains("no answer within"));
    // 4 timeouts of 5 s plus three backoffs of at least 100, 200 and 400 ms (jitter halves at most).
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(20_700) && took <= Duration::from_millis(21_400),
        "{took:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_full_queue_refuses_new_notifications_visibly() {
    let transport = Arc::new(Scripted {
        hang: true,
        ..Scripted::default()
    });
    let n = Notifier::start(transport, 2, 100);
    let cb = callback(1);
    for seq in 0..10 {
        send(&n, A, seq, &cb);
    }
    let records = n.log().records();
    let dropped = records
        .iter()
        .filter(|r| r.state == DeliveryState::Dropped)
        .count();
    assert!(dropped >= 7, "{dropped}");
    assert!(records
        .iter()
        .filter(|r| r.state == DeliveryState::Dropped)
        .all(|r| r.reason.as_deref() == Some("notification queue full")));
    assert_eq!(
        n.log().counters.dropped_queue_full.load(Ordering::Relaxed),
        dropped as u64
    );
}

#[tokio::test(start_paused = true)]
async fn fault_rules_drop_delay_and_duplicate() {
    let transport = Arc::new(Scripted::default());
    let n = Notifier::start(transport.clone(), 100, 100);
    let cb = callback(3);
    let mut dropped = outgoing(A, 1, &cb);
    dropped.drop = true;
    let mut twice = outgoing(A, 2, &cb);
    twice.duplicate = true;
    let mut late = outgoing(B, 3, &cb);
    late.delay = Some(Duration::from_secs(2));
    let started = tokio::time::Instant::now();
    for o in [dropped, twice, late] {
        n.enqueue(n.next_id(), o, OffsetDateTime::UNIX_EPOCH);
    }
    assert_eq!(n.drain(Duration::from_secs(60)).await, 0);
    assert!(started.elapsed() >= Duration::from_secs(2));
    let seen = transport.seen.lock().unwrap().clone();
    assert_eq!(seen.iter().filter(|(_, s)| *s == 1).count(), 0);
    assert_eq!(seen.iter().filter(|(_, s)| *s == 2).count(), 2);
    assert_eq!(seen.iter().filter(|(_, s)| *s == 3).count(), 1);
}

#[tokio::test(start_paused = true)]
async fn the_log_stays_bounded() {
    let transport = Arc::new(Scripted::default());
    let n = Notifier::start(transport, 1000, 50);
    let cb = callback(1);
    for seq in 0..200 {
        send(&n, B, seq, &cb);
    }
    assert_eq!(n.drain(Duration::from_secs(60)).await, 0);
    let records = n.log().records();
    assert_eq!(records.len(), 50);
    assert_eq!(records.last().unwrap().body["seq"], 199);
}
