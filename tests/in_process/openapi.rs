//! The OpenAPI document: valid references, and exactly the routes the servers have.

use std::collections::BTreeSet;

use crate::common::*;
use hyper::StatusCode;
use serde_json::Value;
use smdpp_mock::es2::Function;
use smdpp_mock::internal::admin::{self, openapi};
use smdpp_mock::internal::platform;

fn refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                if k == "$ref" {
                    out.push(v.as_str().unwrap().to_string());
                } else {
                    refs(v, out);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|i| refs(i, out)),
        _ => {}
    }
}

#[test]
fn every_reference_resolves() {
    let doc = openapi::document();
    assert_eq!(doc["openapi"], "3.1.0");
    let mut found = Vec::new();
    refs(&doc, &mut found);
    assert!(found.len() > 20);
    for r in found {
        let pointer = r
            .strip_prefix('#')
            .unwrap_or_else(|| panic!("external ref {r}"));
        assert!(doc.pointer(pointer).is_some(), "{r} does not resolve");
    }
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            assert!(
                op["responses"].as_object().is_some_and(|r| !r.is_empty()),
                "{method} {path}"
            );
            assert!(op["summary"].is_string(), "{method} {path}");
        }
    }
}

#[test]
fn the_document_lists_exactly_the_routes() {
    let mut routes = BTreeSet::new();
    for f in Function::ALL {
        routes.insert(("post".to_string(), f.path()));
    }
    for (method, path, _) in platform::routes() {
        routes.insert((method.as_str().to_lowercase(), path.to_string()));
    }
    for (method, path, _) in admin::routes() {
        routes.insert((method.as_str().to_lowercase(), path.to_string()));
    }
    let doc = openapi::document();
    let documented: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .map(move |m| (m.clone(), path.clone()))
        })
        .collect();
    let undocumented: Vec<_> = routes.difference(&documented).collect();
    let unrouted: Vec<_> = documented.difference(&routes).collect();
    assert!(
        undocumented.is_empty(),
        "routes missing from the document: {undocumented:?}"
    );
    assert!(
        unrouted.is_empty(),
        "documented paths with no route: {unrouted:?}"
    );
}

#[test]
fn the_committed_copy_is_current() {
    let committed: Value =
        serde_json::from_str(&std::fs::read_to_string("docs/openapi.json").unwrap()).unwrap();
    assert!(
        committed == openapi::document(),
        "docs/openapi.json is stale: run cargo run --example openapi > docs/openapi.json"
    );
}

#[tokio::test]
async fn served_on_the_admin_port_and_every_plain_route_answers() {
    let t = TestServer::start().await;
    let a = t.admin();
    let served = a.get("/openapi.json").await;
    assert_eq!(served.status, StatusCode::OK);
    assert_eq!(served.body, openapi::document());
    for (method, path, _) in admin::routes() {
        if method == hyper::Method::GET && !path.contains('{') && path != "/admin/wait" {
            let r = a.get(path).await;
            assert_eq!(r.status, StatusCode::OK, "GET {path}: {}", r.body);
        }
    }
    let c = t.client("test-mno");
    for (_, path, _) in platform::routes() {
        if !path.contains('{') {
            assert_eq!(c.get(path).await.status, StatusCode::OK, "GET {path}");
        }
    }
}
