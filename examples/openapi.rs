//! Prints the whole OpenAPI document: `src/admin/openapi.json` with the parts computed from the
//! code (the committed copy is `docs/openapi.json`, which a test keeps current).
//!
//! ```sh
//! cargo run --example openapi > docs/openapi.json
//! ```

fn main() {
    let doc = smdpp_mock::internal::admin::openapi::document();
    println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
}
