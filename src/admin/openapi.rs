//! The OpenAPI 3.1 document of all three APIs: ES2+ and the platform API (port 6443, mutual
//! TLS) and the admin API (port 8080).
//!
//! What is written by hand (the platform, admin and dashboard routes, the error and ES2+
//! envelope schemas, servers and security) is the JSON file `openapi.json` beside this module,
//! read with `include_str!`: a route is documented by editing that file. The rest is computed
//! here: the version, the ES2+ paths (one per [`Function`]) and the response schemas generated
//! from the Rust types, so they cannot drift from the code. The `security` list of that file
//! makes the admin token optional: no token is needed unless the instance was started with one.
//!
//! `tests/in_process/openapi.rs` checks that the routes built from `platform::routes`,
//! `admin::routes` and the ES2+ functions are exactly the paths documented, and that
//! `docs/openapi.json` (the whole document, written by `cargo run --example openapi`) is current;
//! the tests below check that the file leaves the computed parts to this module.

use schemars::generate::SchemaSettings;
use serde_json::{json, Map, Value};

use crate::journal::JournalEntry;
use crate::notify::DeliveryRecord;
use crate::platform::view::{ProfilePage, ProfileTypeView, ProfileView};
use crate::sgp22::Function;

/// The hand-written part of the document (see the module documentation).
const WRITTEN: &str = include_str!("openapi.json");

fn reference(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn ok(description: &str, schema: Value) -> Value {
    json!({ "description": description, "content": { "application/json": { "schema": schema } } })
}

fn error_response(description: &str) -> Value {
    ok(description, reference("Error"))
}

/// The document: the written part with the computed parts added.
pub fn document() -> Value {
    // The file is part of the build and checked by the tests below; an unreadable one would
    // serve an empty document rather than stop the admin API.
    let mut doc: Value = serde_json::from_str(WRITTEN).unwrap_or_default();
    doc["info"]["version"] = json!(env!("CARGO_PKG_VERSION"));
    if let Some(paths) = doc["paths"].as_object_mut() {
        for f in Function::ALL {
            paths.insert(f.path(), json!({ "post": es2_operation(f) }));
        }
    }
    if let Some(schemas) = doc["components"]["schemas"].as_object_mut() {
        schemas.extend(generated_schemas());
    }
    doc
}

/// The response schemas generated from the Rust types the APIs serialize, and the types they
/// refer to, keyed by name as `#/components/schemas/…` references them.
fn generated_schemas() -> Map<String, Value> {
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
    generator.take_definitions(true)
}

/// The operation of one ES2+ function (SGP.22 §5.3): all of them take and answer the same
/// envelope, so one description serves every path.
fn es2_operation(f: Function) -> Value {
    json!({
        "tags": ["ES2+"],
        "summary": format!("ES2+.{} (SGP.22 §5.3)", f.name()),
        "parameters": [{ "name": "X-Admin-Protocol", "in": "header", "description": "gsma/rsp/vX.Y.Z",
                         "required": true, "schema": { "type": "string" } }],
        "requestBody": { "required": true,
                         "content": { "application/json": { "schema": reference("Es2Request") } } },
        "responses": {
            "200": ok("The function's outcome, success or business failure.", reference("Es2Response")),
            "400": error_response("Body not JSON, or X-Admin-Protocol missing."),
            "403": error_response("The operator may not connect from this address."),
            "405": error_response("Not POST."),
            "413": error_response("Body too large."),
            "415": error_response("Content-Type not application/json."),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written() -> Value {
        serde_json::from_str(WRITTEN).unwrap()
    }

    #[test]
    fn the_written_part_is_json_with_what_the_code_fills_in() {
        let doc = written();
        assert!(doc["paths"].is_object());
        assert!(doc["components"]["schemas"].is_object());
        assert!(doc["info"].is_object());
    }

    /// Nothing is both written and computed: a computed part would silently replace what the
    /// file says.
    #[test]
    fn the_written_part_leaves_the_computed_parts_out() {
        let doc = written();
        assert!(doc["info"].get("version").is_none());
        for f in Function::ALL {
            assert!(
                doc["paths"].get(f.path()).is_none(),
                "{} is written",
                f.path()
            );
        }
        for name in generated_schemas().keys() {
            assert!(
                doc["components"]["schemas"].get(name).is_none(),
                "the schema {name} is generated from the Rust type, yet written"
            );
        }
    }
}
