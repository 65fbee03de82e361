//! The OpenAPI 3.1 document of all three APIs: ES2+ and the platform API (port 6443, mutual
//! TLS) and the admin API (port 8080). Response schemas are generated from the Rust types;
//! `tests/in_process/openapi.rs` checks that the routes built from `platform::routes`,
//! `admin::routes` and the ES2+ functions are exactly the paths documented here.

use schemars::generate::SchemaSettings;
use serde_json::{json, Map, Value};

use crate::journal::JournalEntry;
use crate::notify::DeliveryRecord;
use crate::platform::view::{ProfilePage, ProfileTypeView, ProfileView};
use crate::sgp22::Function;

fn reference(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn ok(description: &str, schema: Value) -> Value {
    json!({ "description": description, "content": { "application/json": { "schema": schema } } })
}

fn error_response(description: &str) -> Value {
    ok(description, reference("Error"))
}

fn parameter(name: &str, location: &str, description: &str, required: bool) -> Value {
    json!({ "name": name, "in": location, "description": description, "required": required,
            "schema": { "type": "string" } })
}

fn operation(
    tag: &str,
    summary: &str,
    parameters: Vec<Value>,
    body: Option<Value>,
    responses: Value,
) -> Value {
    let mut op = json!({ "tags": [tag], "summary": summary, "responses": responses });
    if !parameters.is_empty() {
        op["parameters"] = Value::Array(parameters);
    }
    if let Some(b) = body {
        op["requestBody"] = b;
    }
    op
}

fn json_body(schema: Value) -> Value {
    json!({ "required": true, "content": { "application/json": { "schema": schema } } })
}

/// The document.
pub fn document() -> Value {
    let mut generator = SchemaSettings::draft2020_12()
        .with(|s| s.definitions_path = "/components/schemas/".into())
        .into_generator();
    for schema in [
        generator.subschema_for::<ProfileView>(),
        generator.subschema_for::<ProfileTypeView>(),
        generator.subschema_for::<ProfilePage>(),
        generator.subschema_for::<JournalEntry>(),
        generator.subschema_for::<DeliveryRecord>(),
        generator.subschema_for::<super::dashboard::Summary>(),
    ] {
        let _ = schema;
    }
    let mut schemas: Map<String, Value> = generator.take_definitions(true);
    schemas.insert(
        "Error".into(),
        json!({ "type": "object", "required": ["error", "status", "message"], "properties": {
            "error": { "type": "string" }, "status": { "type": "integer" }, "message": { "type": "string" },
            "parameter": { "type": "string", "description": "The query parameter that is wrong." } } }),
    );
    schemas.insert(
        "Es2Request".into(),
        json!({ "type": "object", "required": ["header"], "description": "An ES2+ request (SGP.22 §6.5.1.1): the header plus the function's input data.",
            "properties": { "header": { "type": "object", "required": ["functionRequesterIdentifier", "functionCallIdentifier"],
                "properties": { "functionRequesterIdentifier": { "type": "string" }, "functionCallIdentifier": { "type": "string" } } } },
            "additionalProperties": true }),
    );
    schemas.insert(
        "Es2Response".into(),
        json!({ "type": "object", "required": ["header"], "description": "An ES2+ response (SGP.22 §6.5.1.2): HTTP 200 for every function outcome.",
            "properties": { "header": { "type": "object", "properties": { "functionExecutionStatus": { "type": "object", "required": ["status"], "properties": {
                "status": { "enum": ["Executed-Success", "Executed-WithWarning", "Failed", "Expired"] },
                "statusCodeData": { "type": "object", "required": ["subjectCode", "reasonCode"], "properties": {
                    "subjectCode": { "type": "string" }, "reasonCode": { "type": "string" },
                    "subjectIdentifier": { "type": "string" }, "message": { "type": "string" } } } } } } } },
            "additionalProperties": true }),
    );

    let mut paths = Map::new();
    let mut add = |path: &str, method: &str, op: Value| {
        let entry = paths.entry(path.to_owned()).or_insert_with(|| json!({}));
        entry[method] = op;
    };

    for f in Function::ALL {
        add(
            &f.path(),
            "post",
            operation(
                "ES2+",
                &format!("ES2+.{} (SGP.22 §5.3)", f.name()),
                vec![parameter(
                    "X-Admin-Protocol",
                    "header",
                    "gsma/rsp/vX.Y.Z",
                    true,
                )],
                Some(json_body(reference("Es2Request"))),
                json!({
                    "200": ok("The function's outcome, success or business failure.", reference("Es2Response")),
                    "400": error_response("Body not JSON, or X-Admin-Protocol missing."),
                    "403": error_response("The operator may not connect from this address."),
                    "405": error_response("Not POST."),
                    "413": error_response("Body too large."),
                    "415": error_response("Content-Type not application/json."),
                }),
            ),
        );
    }

    let state_parameters = || {
        vec![
            parameter("state", "query", "Only profiles in this state.", false),
            parameter("profileType", "query", "Only this profile type.", false),
            parameter("eid", "query", "Only orders linked to this EID.", false),
            parameter(
                "limit",
                "query",
                "Page size, 1 to 1000 (default 100).",
                false,
            ),
            parameter(
                "cursor",
                "query",
                "nextCursor of the previous page. One call looks at no more than 20,000 profiles: a page can be short, even empty, and still have a nextCursor.",
                false,
            ),
        ]
    };
    add(
        "/profile_types",
        "get",
        operation(
            "Platform",
            "The caller's profile types with counts per state.",
            vec![],
            None,
            json!({ "200": ok("Profile types.", json!({ "type": "object", "properties": { "profileTypes": { "type": "array", "items": reference("ProfileTypeView") } } })),
                "403": error_response("The certificate identifies no operator.") }),
        ),
    );
    add(
        "/profile_types/{id}",
        "get",
        operation(
            "Platform",
            "One of the caller's profile types.",
            vec![parameter("id", "path", "Profile type.", true)],
            None,
            json!({ "200": ok("The profile type.", reference("ProfileTypeView")), "403": error_response("The certificate identifies no operator."), "404": error_response("Unknown, or another operator's.") }),
        ),
    );
    add(
        "/profiles",
        "get",
        operation(
            "Platform",
            "The caller's profiles, paginated in inventory order.",
            state_parameters(),
            None,
            json!({ "200": ok("A page.", reference("ProfilePage")), "400": error_response("A query parameter is invalid.") }),
        ),
    );
    add(
        "/profiles/{iccid}",
        "get",
        operation(
            "Platform",
            "One of the caller's profiles (ICCID with or without F pad).",
            vec![parameter("iccid", "path", "ICCID.", true)],
            None,
            json!({ "200": ok("The profile.", reference("ProfileView")), "400": error_response("Not an ICCID."), "403": error_response("The certificate identifies no operator."), "404": error_response("Unknown, or another operator's.") }),
        ),
    );

    let any = || json!({ "type": "object" });
    add(
        "/health",
        "get",
        operation(
            "Admin",
            "Liveness.",
            vec![],
            None,
            json!({ "200": ok("Alive.", any()) }),
        ),
    );
    add(
        "/ready",
        "get",
        operation(
            "Admin",
            "Readiness: scenario loaded, listeners up.",
            vec![],
            None,
            json!({ "200": ok("Ready.", any()) }),
        ),
    );
    add(
        "/metrics",
        "get",
        operation(
            "Admin",
            "Prometheus metrics.",
            vec![],
            None,
            json!({ "200": { "description": "Prometheus text format.", "content": { "text/plain": { "schema": { "type": "string" } } } } }),
        ),
    );
    add(
        "/openapi.json",
        "get",
        operation(
            "Admin",
            "This document.",
            vec![],
            None,
            json!({ "200": ok("OpenAPI 3.1.", any()) }),
        ),
    );
    add(
        "/admin/reset",
        "post",
        operation(
            "Admin",
            "Back to the scenario's initial state (journal cleared).",
            vec![],
            None,
            json!({ "200": ok("Reset.", any()) }),
        ),
    );
    add(
        "/admin/scenario",
        "put",
        operation(
            "Admin",
            "Load a scenario (YAML body); an invalid one changes nothing.",
            vec![],
            Some(
                json!({ "required": true, "content": { "application/yaml": { "schema": { "type": "string" } } } }),
            ),
            json!({ "200": ok("Loaded.", any()), "400": ok("Invalid: every problem with file, line and column.", any()) }),
        ),
    );
    let mut admin_list = state_parameters();
    admin_list.push(parameter(
        "operator",
        "query",
        "Only this operator's profiles.",
        false,
    ));
    add(
        "/admin/profiles",
        "get",
        operation(
            "Admin",
            "All operators' profiles, paginated.",
            admin_list,
            None,
            json!({ "200": ok("A page.", reference("ProfilePage")), "400": error_response("A query parameter is invalid.") }),
        ),
    );
    add(
        "/admin/profiles/{iccid}",
        "get",
        operation(
            "Admin",
            "One profile, with its Activation Code.",
            vec![parameter("iccid", "path", "ICCID.", true)],
            None,
            json!({ "200": ok("The profile.", reference("ProfileView")), "404": error_response("Unknown ICCID.") }),
        ),
    );
    add(
        "/admin/profiles/{iccid}",
        "put",
        operation(
            "Admin",
            "Force a state, for test set-up: {state, eid?, matchingId?}.",
            vec![parameter("iccid", "path", "ICCID.", true)],
            Some(json_body(
                json!({ "type": "object", "required": ["state"], "properties": { "state": { "type": "string" }, "eid": { "type": "string" }, "matchingId": { "type": "string" } } }),
            )),
            json!({ "200": ok("The profile.", reference("ProfileView")), "400": error_response("Impossible state."), "404": error_response("Unknown ICCID.") }),
        ),
    );
    let event_body = || {
        Some(json_body(
            json!({ "type": "object", "required": ["event"], "properties": {
        "event": { "type": "string" }, "eid": { "type": "string" }, "errorReason": { "type": "integer" }, "bppCommandId": { "type": "integer" } } }),
        ))
    };
    let event_responses = || {
        json!({ "200": ok("The profile after the event.", reference("ProfileView")),
        "404": error_response("No such order."), "409": ok("Refused; es9StatusCode says what the device would be told.", any()) })
    };
    add(
        "/admin/profiles/{iccid}/events",
        "post",
        operation(
            "Admin",
            "Simulate a device event on the order of an ICCID.",
            vec![parameter("iccid", "path", "ICCID.", true)],
            event_body(),
            event_responses(),
        ),
    );
    add(
        "/admin/devices/{matchingId}/events",
        "post",
        operation(
            "Admin",
            "Simulate a device event on the order a device finds by MatchingID.",
            vec![parameter("matchingId", "path", "MatchingID.", true)],
            event_body(),
            event_responses(),
        ),
    );
    add(
        "/admin/journal",
        "get",
        operation(
            "Admin",
            "The bounded journal of ES2+ and ES9+ calls (each protocol its own capacity, one sequence).",
            vec![
                parameter("function", "query", "Function name.", false),
                parameter("iccid", "query", "ICCID.", false),
                parameter("since", "query", "Only entries after this seq (the first `limit` of them; without it, the newest `limit`).", false),
                parameter("operator", "query", "Operator.", false),
                parameter("status", "query", "Executed-Success or Failed.", false),
                parameter("limit", "query", "1 to 1000 (default 100).", false),
                parameter("order", "query", "oldest (default) or newest first.", false),
            ],
            None,
            json!({ "200": ok("Entries, oldest first.", json!({ "type": "object", "properties": {
                "entries": { "type": "array", "items": reference("JournalEntry") },
                "capacity": { "type": "integer", "description": "ES2+ calls kept at most." },
                "es9Capacity": { "type": "integer", "description": "ES9+ calls kept at most." },
                "lastSeq": { "type": "integer", "description": "The newest sequence number handed out." } } })),
                "400": error_response("A query parameter is invalid.") }),
        ),
    );
    add(
        "/admin/notifications",
        "get",
        operation(
            "Admin",
            "The notification delivery log.",
            vec![
                parameter("iccid", "query", "ICCID.", false),
                parameter(
                    "state",
                    "query",
                    "pending, delivered, failed, dropped.",
                    false,
                ),
                parameter(
                    "limit",
                    "query",
                    "1 to 1000 (default 100); without `since`, the newest.",
                    false,
                ),
                parameter("order", "query", "oldest (default) or newest first.", false),
            ],
            None,
            json!({ "200": ok("Deliveries.", json!({ "type": "object", "properties": { "notifications": { "type": "array", "items": reference("DeliveryRecord") } } })),
                "400": error_response("A query parameter is invalid.") }),
        ),
    );
    add(
        "/admin/operators/{id}/callback",
        "put",
        operation(
            "Admin",
            "Register an operator's notification callback at run time.",
            vec![parameter("id", "path", "Operator id.", true)],
            Some(json_body(
                json!({ "type": "object", "required": ["url"], "properties": { "url": { "type": "string" }, "timeout": { "type": "string" },
            "maxAttempts": { "type": "integer" }, "initialBackoff": { "type": "string" }, "maxBackoff": { "type": "string" }, "clientCertificate": { "type": "boolean" } } }),
            )),
            json!({ "200": ok("Registered.", any()), "400": error_response("Invalid callback."), "404": error_response("Unknown operator.") }),
        ),
    );
    add(
        "/admin/clock",
        "post",
        operation(
            "Admin",
            "Advance the mock clock (order expiry, timestamps): {\"advance\": \"1h\"}.",
            vec![],
            Some(json_body(
                json!({ "type": "object", "required": ["advance"], "properties": { "advance": { "type": "string" } } }),
            )),
            json!({ "200": ok("The new time.", any()), "400": error_response("Invalid duration.") }),
        ),
    );
    add("/admin/wait", "get", operation("Admin", "Long-poll until a journal entry, profile state or notification matching the filter exists.",
        vec![parameter("for", "query", "journal, profile or notification.", true), parameter("timeout", "query", "Up to 120s (default 10s).", false),
             parameter("iccid", "query", "ICCID.", false), parameter("function", "query", "for=journal.", false), parameter("since", "query", "for=journal: after this seq; for=notification: after this delivery id.", false),
             parameter("operator", "query", "for=journal.", false), parameter("status", "query", "for=journal.", false),
             parameter("state", "query", "for=profile: profile state; for=notification: delivery state.", false),
             parameter("point", "query", "for=notification: notificationPointId.", false)], None,
        json!({ "200": ok("What matched.", any()), "400": error_response("Invalid filter."), "404": error_response("Unknown ICCID."), "408": error_response("Nothing matched in time.") })));

    add(
        "/admin/conformance",
        "get",
        operation(
            "Admin",
            "The conformance report of the operator clients seen so far.",
            vec![parameter(
                "format",
                "query",
                "json (default) or junit.",
                false,
            )],
            None,
            json!({ "200": { "description": "The report.", "content": {
                    "application/json": { "schema": any() }, "application/xml": { "schema": { "type": "string" } } } },
                "400": error_response("Unknown format.") }),
        ),
    );
    add(
        "/admin/summary",
        "get",
        operation(
            "Admin",
            "Profile counts by operator, type and state; journal extent; notification totals; conformance summary (what the dashboard shows).",
            vec![],
            None,
            json!({ "200": ok("The summary.", reference("Summary")) }),
        ),
    );
    let html = |description: &str, media: &str| json!({ "200": { "description": description, "content": { media: { "schema": { "type": "string" } } } } });
    for (path, summary, media) in [
        ("/", "The dashboard (the same page as /admin/dashboard).", "text/html"),
        ("/admin/dashboard", "The dashboard: profiles by state, live journal, notification deliveries, conformance; refreshes itself.", "text/html"),
        ("/admin/dashboard/app.js", "The dashboard's script.", "text/javascript"),
        ("/admin/dashboard/style.css", "The dashboard's style sheet.", "text/css"),
    ] {
        add(path, "get", operation("Dashboard", summary, vec![], None, html("The file.", media)));
    }
    add(
        "/admin/conformance/reset",
        "post",
        operation(
            "Admin",
            "Forget every conformance result.",
            vec![],
            None,
            json!({ "200": ok("Reset.", any()) }),
        ),
    );
    add("/admin/conformance/probe", "post", operation("Admin", "Probe an operator's notification endpoint with valid and quirky notifications: {\"operator\": \"test-mno\"}.", vec![],
        Some(json_body(json!({ "type": "object", "required": ["operator"], "properties": { "operator": { "type": "string" } } }))),
        json!({ "200": ok("The steps and the report.", any()), "404": error_response("Unknown operator, or no callback.") })));

    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "smdpp-mock",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "A mock GSMA SGP.22 SM-DP+: ES2+ and the platform API on port 6443 (mutual TLS), the admin / test-control API on port 8080 (plain HTTP).",
        },
        "servers": [
            { "url": "https://localhost:6443", "description": "ES2+ and platform API (mutual TLS)" },
            { "url": "http://127.0.0.1:8080", "description": "Admin API" },
        ],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": { "adminToken": {
                "type": "http", "scheme": "bearer",
                "description": "When the instance runs with --admin-token / SMDPP_ADMIN_TOKEN, or its admin API listens beyond loopback (a token is then made and kept in <certs-dir>/admin-token): every admin route but /health, /ready, /openapi.json and the dashboard's files then needs it (401 otherwise). The platform API uses mutual TLS instead."
            } }
        },
        // Optional: no token is needed unless the instance was started with one.
        "security": [{}, { "adminToken": [] }],
    })
}
