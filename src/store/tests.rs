//! The store's indexes stay exact under random operations, and allocation never hands out a
//! profile twice, even from many threads.

use super::*;
use crate::ids::{Eid, Iccid};
use crate::profile::machine::{transition, Confirmation, Event, FinalProfileStatus, Rules};
use proptest::prelude::*;
use std::collections::HashSet;
use time::macros::datetime;

fn inventory(per_type: u64) -> Vec<Profile> {
    let mut out = Vec::new();
    for (t, ty) in ["A", "B"].iter().enumerate() {
        for i in 0..per_type {
            let prefix = format!("8944{t}{i:013}");
            let iccid = Iccid::with_check_digit(&prefix, false).unwrap();
            out.push(Profile::available(iccid, "op".into(), (*ty).into()));
        }
    }
    out
}

fn apply(p: &Profile, e: &Event) -> Result<Step, crate::profile::machine::Refusal> {
    transition(p, e, &Rules::default(), datetime!(2026-01-01 0:00 UTC))
}

fn check_indexes(store: &Store) -> Result<(), TestCaseError> {
    let all = store.snapshot();
    let mut bound = 0;
    for p in &all {
        if let Some(id) = p.matching_id.as_ref().and_then(OrderMatchingId::id) {
            bound += 1;
            prop_assert_eq!(store.find_by_matching_id(id), Some(p.iccid.key()));
        }
    }
    prop_assert_eq!(
        store.inner.matching_ids.len(),
        bound,
        "no orphan MatchingIDs"
    );
    // The EID index lists exactly the profiles linked to each EID, in inventory order.
    let mut linked: std::collections::BTreeMap<Eid, Vec<IccidKey>> = Default::default();
    for p in &all {
        if let Some(eid) = p.eid {
            linked.entry(eid).or_default().push(p.iccid.key());
        }
    }
    prop_assert_eq!(store.inner.eids.len(), linked.len(), "no orphan EIDs");
    for (eid, keys) in &linked {
        let found: Vec<IccidKey> = store
            .linked_to(*eid, |_| true)
            .iter()
            .map(|p| p.iccid.key())
            .collect();
        prop_assert_eq!(&found, keys);
    }
    for ty in ["A", "B"] {
        let available: HashSet<IccidKey> = all
            .iter()
            .filter(|p| &*p.profile_type == ty && p.state == ProfileState::Available)
            .map(|p| p.iccid.key())
            .collect();
        let pool = lock(&store.inner.pools[ty]);
        let members: HashSet<IccidKey> = pool
            .members
            .keys()
            .map(|slot| lock(&store.inner.slots[*slot as usize]).iccid.key())
            .collect();
        prop_assert_eq!(&members, &available);
        prop_assert!(pool
            .members
            .iter()
            .all(|(k, seq)| pool.queue.contains(&(*k, *seq))));
    }
    Ok(())
}

#[derive(Debug, Clone)]
enum Op {
    ByType(bool),
    Event(usize, Event),
}

fn arb_op(n: usize) -> impl Strategy<Value = Op> {
    let eid: Eid = "89049032000000000000000000000001".parse().unwrap();
    let mids = ["M-1", "M-2", "M-3"];
    prop_oneof![
        any::<bool>().prop_map(Op::ByType),
        (0..n, 0..3usize, any::<bool>(), any::<bool>()).prop_map(move |(i, m, release, smds)| {
            Op::Event(
                i,
                Event::ConfirmOrder(Confirmation {
                    eid: Some(eid),
                    matching_id: OrderMatchingId::Id(mids[m].parse().unwrap()),
                    confirmation_code_hash: None,
                    smds_address: smds.then(|| "smds.example".into()),
                    release,
                }),
            )
        }),
        (0..n).prop_map(|i| Op::Event(i, Event::DownloadOrder { eid: None })),
        (0..n).prop_map(|i| Op::Event(i, Event::ReleaseProfile)),
        (0..n, any::<bool>()).prop_map(|(i, a)| Op::Event(
            i,
            Event::CancelOrder {
                eid: None,
                matching_id: None,
                final_status: if a {
                    FinalProfileStatus::Available
                } else {
                    FinalProfileStatus::Unavailable
                },
            }
        )),
    ]
}

proptest! {
    #[test]
    fn indexes_stay_exact(ops in proptest::collection::vec(arb_op(8), 1..60)) {
        let profiles = inventory(4);
        let keys: Vec<IccidKey> = profiles.iter().map(|p| p.iccid.key()).collect();
        let store = Store::new(profiles);
        let lenient = Rules { cancel_requires_associated_ids: false, ..Rules::default() };
        // MatchingIDs that served as SM-DS EventIDs and were given up: never bound again
        // (SGP.22 §3.6.1.1).
        let mut retired: HashSet<String> = HashSet::new();
        for op in ops {
            match op {
                Op::ByType(a) => {
                    let _ = store.allocate(if a { "A" } else { "B" }, |p| {
                        apply(p, &Event::DownloadOrder { eid: None })
                    });
                }
                Op::Event(i, e) => {
                    let before = store.get(keys[i]).unwrap();
                    let res = store.update(keys[i], |p| {
                        transition(p, &e, &lenient, datetime!(2026-01-01 0:00 UTC))
                    });
                    if res.is_err() {
                        prop_assert_eq!(&store.get(keys[i]).unwrap(), &before, "refusal changes nothing");
                    }
                    let after = store.get(keys[i]).unwrap();
                    let id = |p: &Profile| p.matching_id.as_ref().and_then(OrderMatchingId::id).map(|m| m.as_str().to_string());
                    if let (Some(old), true) = (id(&before), before.smds_address.is_some()) {
                        if id(&after).as_ref() != Some(&old) {
                            retired.insert(old);
                        }
                    }
                }
            }
            check_indexes(&store)?;
            for p in store.snapshot() {
                if let Some(m) = p.matching_id.as_ref().and_then(OrderMatchingId::id) {
                    prop_assert!(!retired.contains(m.as_str()) , "EventID {} used again", m.as_str());
                }
            }
        }
    }
}

#[test]
fn concurrent_allocation_hands_out_each_profile_once() {
    let store = Store::new(inventory(50));
    let handles: Vec<_> = (0..64)
        .map(|_| {
            let store = store.clone();
            std::thread::spawn(move || {
                store
                    .allocate("A", |p| apply(p, &Event::DownloadOrder { eid: None }))
                    .ok()
                    .map(|u| u.profile.iccid.key())
            })
        })
        .collect();
    let won: Vec<IccidKey> = handles
        .into_iter()
        .filter_map(|h| h.join().unwrap())
        .collect();
    let distinct: HashSet<_> = won.iter().collect();
    assert_eq!(won.len(), 50);
    assert_eq!(distinct.len(), 50);
    assert_eq!(store.available_count("A"), 0);
    assert_eq!(store.available_count("B"), 50);
}

#[test]
fn matching_id_conflict_is_refused_without_change() {
    let profiles = inventory(2);
    let (a, b) = (profiles[0].iccid.key(), profiles[1].iccid.key());
    let store = Store::new(profiles);
    let order = Event::DownloadOrder { eid: None };
    let confirm = Event::ConfirmOrder(Confirmation {
        eid: None,
        matching_id: OrderMatchingId::Id("SAME".parse().unwrap()),
        confirmation_code_hash: None,
        smds_address: None,
        release: false,
    });
    for k in [a, b] {
        store.update(k, |p| apply(p, &order)).unwrap();
    }
    store.update(a, |p| apply(p, &confirm)).unwrap();
    let before = store.get(b).unwrap();
    assert!(matches!(
        store.update(b, |p| apply(p, &confirm)),
        Err(UpdateError::MatchingIdInUse(_))
    ));
    assert_eq!(store.get(b).unwrap(), before);
}

#[test]
fn a_profile_returned_to_the_pool_goes_to_the_back() {
    let profiles = inventory(3);
    let keys: Vec<IccidKey> = profiles.iter().take(3).map(|p| p.iccid.key()).collect();
    let store = Store::new(profiles);
    let order = Event::DownloadOrder { eid: None };
    let cancel = Event::CancelOrder {
        eid: None,
        matching_id: None,
        final_status: FinalProfileStatus::Available,
    };
    // Reserve the first by ICCID and cancel it: it is Available again, behind the others.
    store.update(keys[0], |p| apply(p, &order)).unwrap();
    store.update(keys[0], |p| apply(p, &cancel)).unwrap();
    let taken: Vec<IccidKey> = (0..3)
        .map(|_| {
            store
                .allocate("A", |p| apply(p, &order))
                .unwrap()
                .profile
                .iccid
                .key()
        })
        .collect();
    assert_eq!(taken, vec![keys[1], keys[2], keys[0]]);
}

/// An order giving up a MatchingID that served as an SM-DS EventID (CancelOrder) races a
/// ConfirmOrder of another order with the same MatchingID: the second must lose every time,
/// before the first (in use) or after it (retired), never in between (SGP.22 §3.6.1.1).
#[test]
fn an_event_id_given_up_is_never_taken_by_a_concurrent_order() {
    let eid: Eid = "89049032000000000000000000000001".parse().unwrap();
    let order = Event::DownloadOrder { eid: Some(eid) };
    let cancel = Event::CancelOrder {
        eid: None,
        matching_id: None,
        final_status: FinalProfileStatus::Unavailable,
    };
    let lenient = Rules {
        cancel_requires_associated_ids: false,
        ..Rules::default()
    };
    for round in 0..300 {
        let confirm = Event::ConfirmOrder(Confirmation {
            eid: Some(eid),
            matching_id: OrderMatchingId::Id(format!("EVT-{round}").parse().unwrap()),
            confirmation_code_hash: None,
            smds_address: Some("smds.example".into()),
            release: false,
        });
        let profiles = inventory(2);
        let (a, b) = (profiles[0].iccid.key(), profiles[1].iccid.key());
        let store = Store::new(profiles);
        store.update(a, |p| apply(p, &order)).unwrap();
        store.update(b, |p| apply(p, &order)).unwrap();
        store.update(a, |p| apply(p, &confirm)).unwrap();
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(2));
        let canceller = {
            let (store, barrier, cancel, lenient) = (
                store.clone(),
                barrier.clone(),
                cancel.clone(),
                lenient.clone(),
            );
            std::thread::spawn(move || {
                barrier.wait();
                store
                    .update(a, |p| {
                        transition(p, &cancel, &lenient, datetime!(2026-01-01 0:00 UTC))
                    })
                    .unwrap();
            })
        };
        barrier.wait();
        // Keep trying while the cancel runs: a window between leaving the index and being
        // retired would be found.
        let mut taken = false;
        for _ in 0..200 {
            taken |= store.update(b, |p| apply(p, &confirm)).is_ok();
        }
        canceller.join().unwrap();
        taken |= store.update(b, |p| apply(p, &confirm)).is_ok();
        assert!(
            !taken,
            "round {round}: the EventID was bound to a second order"
        );
    }
}
