//! Profiles: inspect, force into a state, and let a device act on them.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use serde_json::json;

use super::AdminState;
use crate::api::{bad_parameter, error, json_response, JsonBody, Segment, SegmentValue};
use crate::app::simulator as device;
use crate::app::App;
use crate::ids::{Eid, Iccid, MatchingId};
use crate::platform::view::ProfileView;
use crate::platform::ProfileFilter;
use crate::profile::machine::Step;
use crate::profile::{Order, OrderMatchingId, ProfileState};
use crate::scenario::file::DeviceEventName;

pub(super) async fn list(
    State(s): State<AdminState>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    match ProfileFilter::parse(&q, true) {
        Ok(filter) => filter.page(&s.app, true),
        Err(r) => r,
    }
}

pub(super) fn parse_iccid(text: &str) -> Result<Iccid, Response> {
    text.parse().map_err(|e| bad_parameter("iccid", e))
}

/// The `{iccid}` path segment: a malformed ICCID is refused (400, naming `iccid`) before the
/// handler runs.
impl SegmentValue for Iccid {
    const NAME: &'static str = "iccid";
    fn parse(text: String) -> Result<Self, String> {
        text.parse()
            .map_err(|e: crate::ids::FormatError| e.to_string())
    }
}

pub(super) async fn one(State(s): State<AdminState>, Segment(iccid): Segment<Iccid>) -> Response {
    let world = s.app.world();
    match world.store.get(iccid.key()) {
        Some(p) => json_response(
            StatusCode::OK,
            &ProfileView::of(&p, &s.app.activation_address(&world), true)
                .with_subscription(world.scenario.subscription_of(&p)),
        ),
        None => error(StatusCode::NOT_FOUND, format!("no profile {iccid}")),
    }
}

/// Body of `PUT /admin/profiles/{iccid}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct ForcedState {
    state: ProfileState,
    eid: Option<String>,
    matching_id: Option<String>,
}

pub(super) async fn force(
    State(s): State<AdminState>,
    Segment(iccid): Segment<Iccid>,
    JsonBody(wanted): JsonBody<ForcedState>,
) -> Response {
    let eid = match wanted.eid.as_deref().map(str::parse::<Eid>).transpose() {
        Ok(e) => e,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("eid: {e}")),
    };
    let matching_id = match wanted.matching_id.as_deref() {
        None => None,
        Some("") => Some(OrderMatchingId::Empty),
        Some(m) => match m.parse::<MatchingId>() {
            Ok(id) => Some(OrderMatchingId::Id(id)),
            Err(e) => return error(StatusCode::BAD_REQUEST, format!("matchingId: {e}")),
        },
    };
    let order = match Order::new(wanted.state, eid, matching_id, None) {
        Ok(order) => order,
        Err(errors) => {
            let reasons: Vec<String> = errors.iter().map(ToString::to_string).collect();
            return error(StatusCode::BAD_REQUEST, reasons.join("; "));
        }
    };
    let world = s.app.world();
    let now = s.app.clock.now();
    let result = s.app.commit::<()>(&world, iccid.key(), |p| {
        let mut next = p.with_order(&order, || world.matching_ids.next_id());
        next.order_seq = p.order_seq.wrapping_add(1);
        next.record_transition(order.state(), now);
        Ok(Step {
            next,
            effects: Vec::new(),
        })
    });
    match result {
        Ok(profile) => json_response(
            StatusCode::OK,
            &ProfileView::of(&profile, &s.app.activation_address(&world), true),
        ),
        Err(crate::store::UpdateError::UnknownIccid) => {
            error(StatusCode::NOT_FOUND, format!("no profile {iccid}"))
        }
        Err(crate::store::UpdateError::MatchingIdInUse(id)) => error(
            StatusCode::CONFLICT,
            format!("MatchingID {id} is bound to another order"),
        ),
        Err(crate::store::UpdateError::Refused(())) => error(StatusCode::CONFLICT, "refused"),
    }
}

/// Body of the device event endpoints.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct DeviceEventBody {
    event: DeviceEventName,
    eid: Option<String>,
    error_reason: Option<u8>,
    bpp_command_id: Option<u8>,
}

fn parse_event(
    body: &Bytes,
) -> Result<(crate::profile::machine::DeviceEvent, Option<Eid>), Response> {
    let b: DeviceEventBody = serde_json::from_slice(body).map_err(|e| {
        let text = e.to_string();
        // serde lists the events itself when the event is the problem.
        let message = if text.contains("unknown variant") {
            format!("body: {text}")
        } else {
            format!("body: {text}; events: download, wrong-confirmation-code, eligibility-failure, rebind-failure, end-user-rejection, postponed, timeout, ppr-not-allowed, metadata-mismatch, load-bpp-execution-error, undefined-reason, install-success, install-failure, enable, disable, delete")
        };
        error(StatusCode::BAD_REQUEST, message)
    })?;
    let eid = b
        .eid
        .as_deref()
        .map(str::parse::<Eid>)
        .transpose()
        .map_err(|e| error(StatusCode::BAD_REQUEST, format!("eid: {e}")))?;
    Ok((b.event.event(b.error_reason, b.bpp_command_id), eid))
}

fn event_answer(
    app: &App,
    result: Result<crate::profile::Profile, device::SimulateError>,
) -> Response {
    match result {
        Ok(p) => json_response(
            StatusCode::OK,
            &ProfileView::of(&p, &app.activation_address(&app.world()), true),
        ),
        Err(e) => {
            let code = device::es9_code(&e);
            let status = if matches!(e, crate::store::UpdateError::UnknownIccid) {
                StatusCode::NOT_FOUND
            } else {
                StatusCode::CONFLICT
            };
            json_response(
                status,
                &crate::exchange::error_body_with(
                    status.as_u16(),
                    &match &e {
                        crate::store::UpdateError::Refused(r) => r.to_string(),
                        crate::store::UpdateError::UnknownIccid => "no such order".into(),
                        crate::store::UpdateError::MatchingIdInUse(id) => {
                            format!("MatchingID {id} in use")
                        }
                    },
                    "es9StatusCode",
                    json!({ "subjectCode": code.subject, "reasonCode": code.reason }),
                ),
            )
        }
    }
}

pub(super) async fn device_event(
    State(s): State<AdminState>,
    Segment(iccid): Segment<Iccid>,
    body: Bytes,
) -> Response {
    let (event, eid) = match parse_event(&body) {
        Ok(x) => x,
        Err(r) => return r,
    };
    event_answer(&s.app, device::simulate(&s.app, iccid.key(), eid, event))
}

pub(super) async fn device_event_by_matching_id(
    State(s): State<AdminState>,
    Segment(matching_id): Segment,
    body: Bytes,
) -> Response {
    let id: MatchingId = match matching_id.parse() {
        Ok(id) => id,
        Err(e) => return bad_parameter("matchingId", e),
    };
    let (event, eid) = match parse_event(&body) {
        Ok(x) => x,
        Err(r) => return r,
    };
    event_answer(
        &s.app,
        device::simulate_by_matching_id(&s.app, &id, eid, event),
    )
}
