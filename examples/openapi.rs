//! Prints the OpenAPI document (the committed copy is `docs/openapi.json`).
//!
//! ```sh
//! cargo run --example openapi > docs/openapi.json
//! ```

fn main() {
    let doc = smdpp_mock::internal::admin::openapi::document();
    println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
}
