//! The SGP.22 §3.1.6 transition table, row by row, and a property test over random event
//! sequences.

use super::*;
use crate::ids::Iccid;
use crate::profile::OnDevice;
use proptest::prelude::*;
use time::macros::datetime;

const NOW: OffsetDateTime = datetime!(2026-11-27 10:00:00 UTC);

fn eid(n: u8) -> Eid {
    format!(
        "{:032}",
        89049032000000000000000000000000u128 + u128::from(n)
    )
    .parse()
    .unwrap()
}

fn mid(s: &str) -> OrderMatchingId {
    OrderMatchingId::Id(s.parse().unwrap())
}

fn fresh() -> Profile {
    Profile::available(
        "8944500102198304826".parse::<Iccid>().unwrap(),
        "test-mno".into(),
        "PT-A".into(),
    )
}

fn confirm(eid: Option<Eid>, m: OrderMatchingId, release: bool) -> Event {
    Event::ConfirmOrder(Confirmation {
        eid,
        matching_id: m,
        confirmation_code_hash: None,
        smds_address: None,
        release,
    })
}

fn cancel(eid: Option<Eid>, m: Option<OrderMatchingId>, to: FinalProfileStatus) -> Event {
    Event::CancelOrder {
        eid,
        matching_id: m,
        final_status: to,
    }
}

fn run(p: &Profile, e: Event) -> Result<Step, Refusal> {
    transition(p, &e, &Rules::default(), NOW)
}

fn in_state(state: ProfileState) -> Profile {
    let mut p = fresh();
    p.state = state;
    if !matches!(state, ProfileState::Available | ProfileState::Allocated) {
        p.eid = Some(eid(1));
    }
    if !matches!(
        state,
        ProfileState::Available | ProfileState::Allocated | ProfileState::Linked
    ) {
        p.matching_id = Some(mid("ABC-1"));
    }
    p
}

#[test]
fn download_order_allocates_or_links() {
    let s = run(&fresh(), Event::DownloadOrder { eid: None }).unwrap();
    assert_eq!(s.next.state, ProfileState::Allocated);
    assert_eq!(s.next.entered.get(ProfileState::Allocated), Some(NOW));
    let s = run(&fresh(), Event::DownloadOrder { eid: Some(eid(1)) }).unwrap();
    assert_eq!(s.next.state, ProfileState::Linked);
    assert_eq!(s.next.eid, Some(eid(1)));
}

#[test]
fn download_order_needs_available() {
    for state in ProfileState::ALL.into_iter().skip(1) {
        assert_eq!(
            run(&in_state(state), Event::DownloadOrder { eid: None }),
            Err(Refusal::NotAvailable { state })
        );
    }
}

#[test]
fn confirm_order_confirms_or_releases() {
    for from in [ProfileState::Allocated, ProfileState::Linked] {
        let p = in_state(from);
        let c = run(&p, confirm(Some(eid(1)), mid("M-1"), false)).unwrap();
        assert_eq!(c.next.state, ProfileState::Confirmed);
        assert_eq!(c.next.eid, Some(eid(1)));
        assert_eq!(c.next.matching_id, Some(mid("M-1")));
        let r = run(&p, confirm(None, mid("M-1"), true)).unwrap();
        assert_eq!(r.next.state, ProfileState::Released);
    }
}

#[test]
fn confirm_order_refusals() {
    let linked = in_state(ProfileState::Linked);
    assert!(matches!(
        run(&linked, confirm(Some(eid(2)), mid("M"), false)),
        Err(Refusal::EidMismatch { .. })
    ));
    let allocated = in_state(ProfileState::Allocated);
    assert!(matches!(
        run(&allocated, confirm(None, OrderMatchingId::Empty, true)),
        Err(Refusal::EidRequired { .. })
    ));
    // The Default SM-DP+ case works once an EID is known.
    let ok = run(
        &allocated,
        confirm(Some(eid(3)), OrderMatchingId::Empty, true),
    )
    .unwrap();
    assert_eq!(ok.next.matching_id, Some(OrderMatchingId::Empty));
    let smds = Event::ConfirmOrder(Confirmation {
        eid: None,
        matching_id: mid("EVT-1"),
        confirmation_code_hash: None,
        smds_address: Some("lpa.ds.gsma.com".into()),
        release: true,
    });
    assert!(matches!(
        run(&allocated, smds),
        Err(Refusal::EidRequired { .. })
    ));
    let smds_empty = Event::ConfirmOrder(Confirmation {
        eid: Some(eid(1)),
        matching_id: OrderMatchingId::Empty,
        confirmation_code_hash: None,
        smds_address: Some("lpa.ds.gsma.com".into()),
        release: true,
    });
    assert_eq!(
        run(&linked, smds_empty),
        Err(Refusal::EmptyMatchingIdWithSmds)
    );
    // ConfirmOrder applies to Allocated and Linked orders only.
    let others = ProfileState::ALL
        .into_iter()
        .filter(|s| !matches!(s, ProfileState::Allocated | ProfileState::Linked));
    for state in others {
        assert!(matches!(
            run(&in_state(state), confirm(Some(eid(1)), mid("X"), false)),
            Err(Refusal::InvalidTransition { from, .. }) if from == state
        ));
    }
}

#[test]
fn smds_registration_happens_once_at_release() {
    let linked = in_state(ProfileState::Linked);
    let with_smds = |release| {
        Event::ConfirmOrder(Confirmation {
            eid: None,
            matching_id: mid("EVT-1"),
            confirmation_code_hash: None,
            smds_address: Some("lpa.ds.gsma.com".into()),
            release,
        })
    };
    let now = run(&linked, with_smds(true)).unwrap();
    assert!(matches!(
        now.effects.as_slice(),
        [Effect::SmdsRegisterEvent { .. }, Effect::Released]
    ));
    assert!(now.next.smds_event_registered);

    let later = run(&linked, with_smds(false)).unwrap();
    assert!(later.effects.is_empty());
    let released = run(&later.next, Event::ReleaseProfile).unwrap();
    assert!(matches!(
        released.effects.as_slice(),
        [Effect::SmdsRegisterEvent { .. }, Effect::Released]
    ));
    let again = run(&released.next, Event::ReleaseProfile).unwrap();
    assert!(again.effects.is_empty());
    assert_eq!(again.next, released.next);

    let cancelled = run(
        &released.next,
        cancel(
            Some(eid(1)),
            Some(mid("EVT-1")),
            FinalProfileStatus::Available,
        ),
    )
    .unwrap();
    assert!(matches!(
        cancelled.effects.as_slice(),
        [Effect::SmdsDeleteEvent { .. }]
    ));
}

#[test]
fn release_profile_needs_confirmation() {
    let ok = run(&in_state(ProfileState::Confirmed), Event::ReleaseProfile).unwrap();
    assert_eq!(ok.next.state, ProfileState::Released);
    for state in [
        ProfileState::Available,
        ProfileState::Allocated,
        ProfileState::Linked,
        ProfileState::Unavailable,
    ] {
        assert!(matches!(
            run(&in_state(state), Event::ReleaseProfile),
            Err(Refusal::InvalidTransition { .. })
        ));
    }
    // Already released, whatever happened since: success, no change (§5.3.4 NOTE).
    for state in [
        ProfileState::Released,
        ProfileState::Downloaded,
        ProfileState::Installed,
        ProfileState::Error,
    ] {
        let p = in_state(state);
        let s = run(&p, Event::ReleaseProfile).unwrap();
        assert_eq!(s.next, p);
        assert!(s.effects.is_empty());
    }
}

#[test]
fn cancel_order_table() {
    for from in [
        ProfileState::Allocated,
        ProfileState::Linked,
        ProfileState::Confirmed,
        ProfileState::Released,
        ProfileState::Error,
    ] {
        let p = in_state(from);
        let ids = (p.eid, p.matching_id.clone());
        for (to, want) in [
            (FinalProfileStatus::Available, ProfileState::Available),
            (FinalProfileStatus::Unavailable, ProfileState::Unavailable),
        ] {
            let s = run(&p, cancel(ids.0, ids.1.clone(), to)).unwrap();
            assert_eq!(s.next.state, want, "from {from}");
            assert_eq!(s.next.eid, None);
            assert_eq!(s.next.matching_id, None);
        }
    }
    for state in [ProfileState::Downloaded, ProfileState::Installed] {
        let p = in_state(state);
        assert_eq!(
            run(
                &p,
                cancel(p.eid, p.matching_id.clone(), FinalProfileStatus::Available)
            ),
            Err(Refusal::AlreadyDownloaded { state })
        );
    }
    for state in [ProfileState::Available, ProfileState::Unavailable] {
        assert!(matches!(
            run(
                &in_state(state),
                cancel(None, None, FinalProfileStatus::Available)
            ),
            Err(Refusal::InvalidTransition { .. })
        ));
    }
}

#[test]
fn cancel_order_checks_associations() {
    let p = in_state(ProfileState::Confirmed);
    let to = FinalProfileStatus::Available;
    assert!(matches!(
        run(&p, cancel(Some(eid(9)), Some(mid("ABC-1")), to)),
        Err(Refusal::EidMismatch { .. })
    ));
    assert!(matches!(
        run(&p, cancel(Some(eid(1)), Some(mid("OTHER")), to)),
        Err(Refusal::MatchingIdMismatch { .. })
    ));
    assert_eq!(
        run(&p, cancel(None, Some(mid("ABC-1")), to)),
        Err(Refusal::AssociatedIdMissing { field: "eid" })
    );
    assert_eq!(
        run(&p, cancel(Some(eid(1)), None, to)),
        Err(Refusal::AssociatedIdMissing {
            field: "matchingId"
        })
    );
    let lenient = Rules {
        cancel_requires_associated_ids: false,
        ..Rules::default()
    };
    assert!(transition(&p, &cancel(None, None, to), &lenient, NOW).is_ok());
    // SGP.22 §5.3.3 checks the EID and MatchingID only "if there is" one associated: an order
    // with none is cancelled whatever the request names.
    let allocated = in_state(ProfileState::Allocated);
    let cancelled = run(&allocated, cancel(Some(eid(1)), Some(mid("ANY-1")), to)).unwrap();
    assert_eq!(cancelled.next.state, ProfileState::Available);
}

fn device(e: DeviceEvent) -> Event {
    Event::Device {
        eid: eid(1),
        event: e,
    }
}

fn released() -> Profile {
    in_state(ProfileState::Released)
}

fn notified(step: &Step) -> Vec<(NotificationPoint, Result<(), DownloadFailure>)> {
    step.effects
        .iter()
        .filter_map(|e| match e {
            Effect::Notify { point, outcome, .. } => Some((*point, *outcome)),
            _ => None,
        })
        .collect()
}

#[test]
fn download_install_and_local_operations() {
    use NotificationPoint::*;
    let d = run(&released(), device(DeviceEvent::Download)).unwrap();
    assert_eq!(d.next.state, ProfileState::Downloaded);
    assert_eq!(d.next.download_attempts, 1);
    // Point 1 (eligibility passed) then point 3; the callback format decides whether the
    // optional successes are sent.
    assert_eq!(
        notified(&d),
        vec![(EligibilityAndRetryLimit, Ok(())), (BppDownload, Ok(()))]
    );
    assert_eq!(
        d.next.eid,
        Some(eid(1)),
        "bound at the BPP (§3.1.3.2 step 9)"
    );
    // A retry from Downloaded rebinds and stays Downloaded.
    let retry = run(&d.next, device(DeviceEvent::Download)).unwrap();
    assert_eq!(retry.next.state, ProfileState::Downloaded);
    let i = run(
        &d.next,
        device(DeviceEvent::InstallResult(InstallResult::Success)),
    )
    .unwrap();
    assert_eq!(i.next.state, ProfileState::Installed);
    assert_eq!(i.next.on_device, Some(OnDevice::Disabled));
    assert_eq!(notified(&i), vec![(BppInstallation, Ok(()))]);

    let on = run(&i.next, device(DeviceEvent::Local(LocalOperation::Enable))).unwrap();
    assert_eq!(notified(&on), vec![(LocalEnable, Ok(()))]);
    assert!(run(&on.next, device(DeviceEvent::Local(LocalOperation::Enable))).is_err());
    let off = run(
        &on.next,
        device(DeviceEvent::Local(LocalOperation::Disable)),
    )
    .unwrap();
    let del = run(
        &off.next,
        device(DeviceEvent::Local(LocalOperation::Delete)),
    )
    .unwrap();
    assert_eq!(del.next.state, ProfileState::Installed);
    assert_eq!(del.next.on_device, Some(OnDevice::Deleted));
    assert_eq!(notified(&del), vec![(LocalDelete, Ok(()))]);
    assert!(run(
        &del.next,
        device(DeviceEvent::Local(LocalOperation::Enable))
    )
    .is_err());
}

#[test]
fn install_failure_and_session_failures_end_in_error() {
    use NotificationPoint::*;
    let d = run(&released(), device(DeviceEvent::Download)).unwrap();
    let fail = InstallResult::Failure {
        bpp_command_id: 5,
        error_reason: 10,
    };
    let f = run(&d.next, device(DeviceEvent::InstallResult(fail))).unwrap();
    assert_eq!(f.next.state, ProfileState::Error);
    assert!(matches!(
        notified(&f)[..],
        [(
            BppInstallation,
            Err(DownloadFailure::InstallationFailed {
                error_reason: 10,
                ..
            })
        )]
    ));

    let e = run(&released(), device(DeviceEvent::EligibilityFailure)).unwrap();
    assert_eq!(e.next.state, ProfileState::Error);
    assert_eq!(
        notified(&e),
        vec![(EligibilityAndRetryLimit, Err(DownloadFailure::NotEligible))]
    );

    let rejection = DeviceEvent::CancelSession(CancelSessionReason::EndUserRejection);
    let r = run(&released(), device(rejection)).unwrap();
    assert_eq!(r.next.state, ProfileState::Error);
    assert_eq!(notified(&r)[0].0, EligibilityAndRetryLimit);
    let r = run(&d.next, device(rejection)).unwrap();
    assert_eq!(
        notified(&r)[0].0,
        BppDownload,
        "after BPP delivery the point is 3"
    );

    for reason in [CancelSessionReason::Postponed, CancelSessionReason::Timeout] {
        let p = run(&released(), device(DeviceEvent::CancelSession(reason))).unwrap();
        assert_eq!(p.next.state, ProfileState::Released);
        assert!(p.effects.is_empty(), "no notification for {reason:?}");
    }
    let rebind = run(&d.next, device(DeviceEvent::RebindFailure)).unwrap();
    assert_eq!(rebind.next.state, ProfileState::Error);
    assert!(run(&released(), device(DeviceEvent::RebindFailure)).is_err());
}

#[test]
fn attempt_limits() {
    use NotificationPoint::*;
    let rules = Rules {
        max_download_attempts: 2,
        max_confirmation_code_attempts: 2,
        ..Rules::default()
    };
    let go = |p: &Profile, e| transition(p, &device(e), &rules, NOW).unwrap();
    let postponed = DeviceEvent::CancelSession(CancelSessionReason::Postponed);
    let a = go(&released(), postponed);
    let b = go(&a.next, postponed);
    assert_eq!(b.next.state, ProfileState::Released);
    let c = go(&b.next, DeviceEvent::Download);
    assert_eq!(c.next.state, ProfileState::Error);
    assert_eq!(
        notified(&c),
        vec![(
            EligibilityAndRetryLimit,
            Err(DownloadFailure::DownloadAttemptsExceeded)
        )]
    );

    let mut with_cc = released();
    with_cc.confirmation_code_hash = Some(Box::new([1; 32]));
    let w1 = go(&with_cc, DeviceEvent::WrongConfirmationCode);
    assert_eq!(w1.next.state, ProfileState::Released);
    assert_eq!(
        notified(&w1),
        vec![(
            ConfirmationFailure,
            Err(DownloadFailure::ConfirmationCodeRefused)
        )]
    );
    let w2 = go(&w1.next, DeviceEvent::WrongConfirmationCode);
    assert_eq!(
        w2.next.state,
        ProfileState::Released,
        "two wrong codes are tolerated"
    );
    let mut w2 = w2.next;
    w2.download_attempts = 0; // keep the download limit out of the way
    let w3 = go(&w2, DeviceEvent::WrongConfirmationCode);
    assert_eq!(w3.next.state, ProfileState::Error);
    assert_eq!(
        notified(&w3),
        vec![(
            ConfirmationFailure,
            Err(DownloadFailure::ConfirmationCodeAttemptsExceeded)
        )]
    );
    assert_eq!(
        transition(
            &released(),
            &device(DeviceEvent::WrongConfirmationCode),
            &rules,
            NOW
        ),
        Err(Refusal::NoConfirmationCode)
    );
}

#[test]
fn expired_orders_end_in_error() {
    let rules = Rules {
        order_expiry: Some(std::time::Duration::from_secs(3600)),
        ..Rules::default()
    };
    let mut p = released();
    p.entered.record(ProfileState::Linked, NOW);
    let within = transition(
        &p,
        &device(DeviceEvent::Download),
        &rules,
        NOW + time::Duration::minutes(59),
    )
    .unwrap();
    assert_eq!(within.next.state, ProfileState::Downloaded);
    let late = transition(
        &p,
        &device(DeviceEvent::Download),
        &rules,
        NOW + time::Duration::minutes(61),
    )
    .unwrap();
    assert_eq!(late.next.state, ProfileState::Error);
    assert_eq!(
        notified(&late),
        vec![(
            NotificationPoint::EligibilityAndRetryLimit,
            Err(DownloadFailure::OrderExpired)
        )]
    );
}

#[test]
fn device_refusals() {
    for state in [
        ProfileState::Available,
        ProfileState::Allocated,
        ProfileState::Linked,
        ProfileState::Confirmed,
    ] {
        assert_eq!(
            run(&in_state(state), device(DeviceEvent::Download)),
            Err(Refusal::NotReleased { state })
        );
    }
    for state in [
        ProfileState::Installed,
        ProfileState::Error,
        ProfileState::Unavailable,
    ] {
        assert!(matches!(
            run(&in_state(state), device(DeviceEvent::Download)),
            Err(Refusal::InvalidTransition { .. })
        ));
    }
    let wrong_eid = Event::Device {
        eid: eid(2),
        event: DeviceEvent::Download,
    };
    assert!(matches!(
        run(&released(), wrong_eid),
        Err(Refusal::EidMismatch { .. })
    ));
    assert!(run(
        &released(),
        device(DeviceEvent::InstallResult(InstallResult::Success))
    )
    .is_err());
}

// ---- property test: random event sequences keep the invariants ----

fn arb_eid() -> impl Strategy<Value = Option<Eid>> {
    prop_oneof![Just(None), (1u8..4).prop_map(|n| Some(eid(n)))]
}

fn arb_matching_id() -> impl Strategy<Value = OrderMatchingId> {
    prop_oneof![
        Just(OrderMatchingId::Empty),
        Just(mid("ABC-1")),
        Just(mid("ABC-2"))
    ]
}

fn arb_device_event() -> impl Strategy<Value = DeviceEvent> {
    prop_oneof![
        Just(DeviceEvent::Download),
        Just(DeviceEvent::WrongConfirmationCode),
        Just(DeviceEvent::EligibilityFailure),
        Just(DeviceEvent::RebindFailure),
        Just(DeviceEvent::CancelSession(
            CancelSessionReason::EndUserRejection
        )),
        Just(DeviceEvent::CancelSession(CancelSessionReason::Postponed)),
        Just(DeviceEvent::InstallResult(InstallResult::Success)),
        Just(DeviceEvent::InstallResult(InstallResult::Failure {
            bpp_command_id: 5,
            error_reason: 9
        })),
        Just(DeviceEvent::Local(LocalOperation::Enable)),
        Just(DeviceEvent::Local(LocalOperation::Disable)),
        Just(DeviceEvent::Local(LocalOperation::Delete)),
    ]
}

fn arb_event() -> impl Strategy<Value = Event> {
    prop_oneof![
        arb_eid().prop_map(|eid| Event::DownloadOrder { eid }),
        (
            arb_eid(),
            arb_matching_id(),
            any::<bool>(),
            any::<bool>(),
            any::<bool>()
        )
            .prop_map(|(eid, matching_id, cc, smds, release)| {
                Event::ConfirmOrder(Confirmation {
                    eid,
                    matching_id,
                    confirmation_code_hash: cc.then_some([7; 32]),
                    smds_address: smds.then(|| "lpa.ds.gsma.com".into()),
                    release,
                })
            }),
        Just(Event::ReleaseProfile),
        ((1u8..3), arb_device_event()).prop_map(|(n, event)| Event::Device { eid: eid(n), event }),
        (
            arb_eid(),
            proptest::option::of(arb_matching_id()),
            any::<bool>()
        )
            .prop_map(|(eid, matching_id, avail)| Event::CancelOrder {
                eid,
                matching_id,
                final_status: if avail {
                    FinalProfileStatus::Available
                } else {
                    FinalProfileStatus::Unavailable
                },
            }),
    ]
}

/// Which fields a state allows or requires.
fn check_consistent(p: &Profile) -> Result<(), TestCaseError> {
    use ProfileState::*;
    match p.state {
        Available | Unavailable => {
            prop_assert!(p.eid.is_none() && p.matching_id.is_none());
            prop_assert!(p.confirmation_code_hash.is_none() && p.smds_address.is_none());
        }
        Allocated => prop_assert!(p.eid.is_none() && p.matching_id.is_none()),
        Linked => prop_assert!(p.eid.is_some() && p.matching_id.is_none()),
        Confirmed | Released => {
            prop_assert!(p.matching_id.is_some());
            if p.matching_id == Some(OrderMatchingId::Empty) || p.smds_address.is_some() {
                prop_assert!(p.eid.is_some());
            }
            prop_assert_eq!(
                p.smds_event_registered,
                p.state == Released && p.smds_address.is_some()
            );
        }
        Downloaded | Installed => prop_assert!(p.eid.is_some() && p.matching_id.is_some()),
        Error => prop_assert!(p.matching_id.is_some()),
    }
    prop_assert_eq!(
        p.on_device.is_some(),
        p.state == Installed,
        "only installed profiles are on a device"
    );
    Ok(())
}

proptest! {
    #[test]
    fn random_sequences_keep_invariants(
        events in proptest::collection::vec(arb_event(), 1..40),
        lenient in any::<bool>(),
    ) {
        let rules = Rules {
            cancel_requires_associated_ids: !lenient,
            max_download_attempts: 3,
            max_confirmation_code_attempts: 2,
            order_expiry: None,
        };
        let mut p = fresh();
        // The EID of the current order: once linked it stays until the order ends.
        for e in &events {
            let before = p.clone();
            match transition(&p, e, &rules, NOW) {
                Ok(step) => {
                    prop_assert!(before.state != ProfileState::Unavailable, "Unavailable is terminal");
                    let order_ended = matches!(e, Event::CancelOrder { .. });
                    if let (Some(old), false) = (before.eid, order_ended) {
                        prop_assert_eq!(step.next.eid, Some(old), "a linked EID never changes");
                    }
                    if order_ended {
                        prop_assert!(matches!(step.next.state, ProfileState::Available | ProfileState::Unavailable));
                    }
                    if step.next.state == ProfileState::Installed && before.state != ProfileState::Installed {
                        prop_assert_eq!(before.state, ProfileState::Downloaded, "installed only after download");
                    }
                    prop_assert!(step.next.download_attempts <= rules.max_download_attempts + 1);
                    p = step.next;
                }
                Err(_) => prop_assert_eq!(&p, &before, "a refusal changes nothing"),
            }
            check_consistent(&p)?;
        }
    }
}
