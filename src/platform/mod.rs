//! The platform management API (the vendor-style inventory API beside ES2+): on the ES2+ port, over the same mutual TLS, and
//! scoped to the operator the client certificate identifies. Another operator's data is never
//! visible: it is answered like data that does not exist.

// Helpers return the finished HTTP answer as their error, which handlers pass straight on; it
// is large, but it is also the last thing a request allocates.
#![allow(clippy::result_large_err)]

pub(crate) mod view;

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use axum::routing::{get, MethodRouter};
use axum::{Extension, Router};

use crate::api::{bad_parameter, cursor, error, json_response, parse_cursor, parse_limit, Segment};
use crate::app::App;
use crate::caller::{Caller, Peer};
use crate::ids::{Eid, Iccid};
use crate::profile::ProfileState;
use crate::scenario::Operator;
use view::{ProfilePage, ProfileTypeView, ProfileView};

/// Every route of the platform API: method, path (axum syntax), handler.
pub fn routes() -> Vec<(Method, &'static str, MethodRouter<App>)> {
    vec![
        (Method::GET, "/profile_types", get(list_types)),
        (Method::GET, "/profile_types/{id}", get(one_type)),
        (Method::GET, "/profiles", get(list_profiles)),
        (Method::GET, "/profiles/{iccid}", get(one_profile)),
    ]
}

/// The router built from [`routes`] (merged into the ES2+ router, which answers wrong methods).
pub(crate) fn router() -> Router<App> {
    routes()
        .into_iter()
        .fold(Router::new(), |r, (_, path, handler)| {
            r.route(path, handler)
        })
}

/// The calling operator, or the answer for a certificate that identifies none.
fn caller(app: &App, peer: &Peer) -> Result<Operator, Response> {
    let world = app.world();
    let caller = Caller::identify(&world.scenario, peer);
    caller.allowed().cloned().ok_or_else(|| {
        let message = if caller.ambiguous.is_empty() {
            "the client certificate does not identify an operator allowed from this address".into()
        } else {
            caller.unidentified()
        };
        error(StatusCode::FORBIDDEN, message)
    })
}

async fn list_types(State(app): State<App>, Extension(peer): Extension<Arc<Peer>>) -> Response {
    let op = match caller(&app, &peer) {
        Ok(op) => op,
        Err(r) => return r,
    };
    let world = app.world();
    let counts = world.store.counts_by_type();
    let types: Vec<ProfileTypeView> = world
        .scenario
        .profile_types()
        .filter(|t| t.owner == op.id)
        .map(|t| {
            ProfileTypeView::of(
                &t.id,
                &t.owner,
                counts.get(&t.id).copied().unwrap_or_default(),
                false,
            )
        })
        .collect();
    json_response(
        StatusCode::OK,
        &serde_json::json!({ "profileTypes": types }),
    )
}

async fn one_type(
    State(app): State<App>,
    Extension(peer): Extension<Arc<Peer>>,
    Segment(id): Segment,
) -> Response {
    let op = match caller(&app, &peer) {
        Ok(op) => op,
        Err(r) => return r,
    };
    let world = app.world();
    match world
        .scenario
        .profile_type(&id)
        .filter(|t| t.owner == op.id)
    {
        Some(t) => {
            let counts = world.store.counts_by_type();
            json_response(
                StatusCode::OK,
                &ProfileTypeView::of(
                    &t.id,
                    &t.owner,
                    counts.get(&t.id).copied().unwrap_or_default(),
                    false,
                ),
            )
        }
        None => error(StatusCode::NOT_FOUND, format!("no profile type {id:?}")),
    }
}

/// Filters shared by the platform and admin profile lists.
pub(crate) struct ProfileFilter {
    pub(crate) state: Option<ProfileState>,
    pub(crate) profile_type: Option<String>,
    pub(crate) eid: Option<Eid>,
    pub(crate) operator: Option<String>,
    pub(crate) limit: usize,
    pub(crate) start: usize,
}

impl ProfileFilter {
    /// Reads `state`, `profileType`, `eid`, `limit`, `cursor` (and `operator` when allowed).
    pub(crate) fn parse(
        q: &HashMap<String, String>,
        allow_operator: bool,
    ) -> Result<Self, Response> {
        let mut known = vec!["state", "profileType", "eid", "limit", "cursor"];
        if allow_operator {
            known.push("operator");
        }
        if let Some(unknown) = q.keys().find(|k| !known.contains(&k.as_str())) {
            return Err(bad_parameter(
                unknown,
                format!("unknown parameter; known: {}", known.join(", ")),
            ));
        }
        let state = q
            .get("state")
            .map(|s| s.parse::<ProfileState>())
            .transpose()
            .map_err(|e| bad_parameter("state", e))?;
        let eid = match q.get("eid") {
            None => None,
            Some(e) => Some(e.parse::<Eid>().map_err(|err| bad_parameter("eid", err))?),
        };
        Ok(ProfileFilter {
            state,
            profile_type: q.get("profileType").cloned(),
            eid,
            operator: q.get("operator").cloned(),
            limit: parse_limit(q.get("limit").map(String::as_str))?,
            start: parse_cursor(q.get("cursor").map(String::as_str))?,
        })
    }

    /// One page, as JSON.
    pub(crate) fn page(&self, app: &App, with_operator: bool) -> Response {
        let world = app.world();
        let (profiles, next) = world.store.page(self.start, self.limit, |p| {
            self.state.is_none_or(|s| s == p.state)
                && self
                    .profile_type
                    .as_deref()
                    .is_none_or(|t| t == &*p.profile_type)
                && self.eid.is_none_or(|e| Some(e) == p.eid)
                && self.operator.as_deref().is_none_or(|o| o == &*p.owner)
        });
        let address = &app.activation_address(&world);
        json_response(
            StatusCode::OK,
            &ProfilePage {
                profiles: profiles
                    .iter()
                    .map(|p| ProfileView::of(p, address, with_operator))
                    .collect(),
                next_cursor: next.map(cursor),
            },
        )
    }
}

async fn list_profiles(
    State(app): State<App>,
    Extension(peer): Extension<Arc<Peer>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let op = match caller(&app, &peer) {
        Ok(op) => op,
        Err(r) => return r,
    };
    let mut filter = match ProfileFilter::parse(&q, false) {
        Ok(f) => f,
        Err(r) => return r,
    };
    if let Some(t) = &filter.profile_type {
        let world = app.world();
        if world
            .scenario
            .profile_type(t)
            .is_none_or(|t| t.owner != op.id)
        {
            return bad_parameter(
                "profileType",
                format!("{t:?} is not one of your profile types"),
            );
        }
    }
    filter.operator = Some(op.id.to_string());
    filter.page(&app, false)
}

async fn one_profile(
    State(app): State<App>,
    Extension(peer): Extension<Arc<Peer>>,
    Segment(iccid): Segment,
) -> Response {
    let op = match caller(&app, &peer) {
        Ok(op) => op,
        Err(r) => return r,
    };
    let parsed: Iccid = match iccid.parse() {
        Ok(i) => i,
        Err(e) => return bad_parameter("iccid", e),
    };
    let world = app.world();
    match world.store.get(parsed.key()).filter(|p| p.owner == op.id) {
        Some(p) => json_response(
            StatusCode::OK,
            &ProfileView::of(&p, &app.activation_address(&world), false)
                .with_subscription(world.scenario.subscription_of(&p)),
        ),
        None => error(StatusCode::NOT_FOUND, format!("no profile {iccid}")),
    }
}
