//! The browser preview's API (feature `bindgen`): thin wasm-bindgen exports over `policy-core`.
//!
//! Everything is text in, JSON text out, so the page holds no domain logic and the answers are the very bytes
//! the OPA build and `host-runner` produce. `preview_yaml` reads YAML with the same reader as `host-runner
//! preview` (`policy_core::documents`), so the page shows what the CLI writes, byte for byte. The functions are
//! plain Rust on other targets too, which is how the tests call them natively.
//!
//! It must not: decide anything, read a clock (the page passes `now`), or reach the network.

use policy_core::api::Answer;
use policy_core::documents::{self, DocumentError};
use policy_core::{Diagnostic, Operation};
use serde_json::Value;
use wasm_bindgen::prelude::wasm_bindgen;

/// Runs an operation on a JSON call; the same answer as `policy_core::call`.
#[wasm_bindgen]
pub fn call(operation: &str, input: &str) -> String {
    policy_core::call(operation, input.as_bytes())
}

/// Like [`call`], with OPA's `data` document as JSON text (empty text: undefined).
#[wasm_bindgen(js_name = callWithData)]
pub fn call_with_data(operation: &str, input: &str, data: &str) -> String {
    if data.trim().is_empty() {
        return policy_core::api::call_with_data(operation, input.as_bytes(), None);
    }
    match serde_json::from_str::<Value>(data) {
        Ok(data) => policy_core::api::call_with_data(operation, input.as_bytes(), Some(&data)),
        Err(e) => failure(Diagnostic {
            code: "InvalidData".into(),
            message: format!("data: the data document is not JSON: {e}"),
            object: None,
            path: "data".into(),
            help: "pass the data document as JSON text".into(),
        }),
    }
}

/// The operations, as OPA's `entrypoints()` lists them: `{"<name>": <id>}`.
#[wasm_bindgen]
pub fn entrypoints() -> String {
    crate::entrypoints_json().to_string()
}

/// Previews every license in `objects_yaml` (licenses and instances, several documents) with the observations
/// in `observations_yaml` (blank: none); `now` stands in when the observations give no time, as the CLI's clock
/// does. Returns the `foundry/platform/preview` answer; unreadable YAML is a failure answer naming the text area.
#[wasm_bindgen(js_name = previewYaml)]
pub fn preview_yaml(objects_yaml: &str, observations_yaml: &str, now: &str) -> String {
    let objects = match documents::read_objects(objects_yaml) {
        Ok(objects) => objects,
        Err(e) => return failure(read_error("objects", &e)),
    };
    let observations = if observations_yaml.trim().is_empty() {
        Value::Object(Default::default())
    } else {
        match documents::read_observations(observations_yaml) {
            Ok(o) => o,
            Err(e) => return failure(read_error("observations", &e)),
        }
    };
    let (observations, now) = documents::split_observations(observations, now);
    let call = serde_json::json!({"objects": objects, "observations": observations, "now": now});
    policy_core::api::call_op(Operation::PlatformPreview, call.to_string().as_bytes())
}

fn read_error(area: &str, e: &DocumentError) -> Diagnostic {
    Diagnostic {
        code: e.code().into(),
        message: format!("{area}: {e}"),
        object: None,
        path: area.into(),
        help: "each document must be a YAML mapping; separate documents with `---`".into(),
    }
}

fn failure(diagnostic: Diagnostic) -> String {
    serde_json::to_string(&Answer::<()>::Failure { errors: vec![diagnostic] }).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;

    #[test]
    fn preview_reads_yaml_like_the_cli() {
        let objects = "kind: FoundryLicense\napiVersion: foundry.platform/v1alpha1\nmetadata: {name: guild}\nspec:\n  \
                       licenseSecretRef: {name: s, key: k}\n  gateway: {baseDomain: dnd.example.com}\n";
        let answer: Value = serde_json::from_str(&preview_yaml(objects, "", "2026-11-22T18:30:00Z")).unwrap();
        assert_eq!(answer["outcome"], "success");
        assert_eq!(answer["decision"]["licenses"][0]["license"]["namespace"], "default");
        let bad: Value = serde_json::from_str(&preview_yaml("- 1\n", "", "x")).unwrap();
        assert_eq!(bad["errors"][0]["code"], "InputNotAnObject");
        assert_eq!(bad["errors"][0]["path"], "objects");
        let bad: Value = serde_json::from_str(&call_with_data("foundry/admission/review", "{}", "{")).unwrap();
        assert_eq!(bad["errors"][0]["code"], "InvalidData");
        assert_eq!(serde_json::from_str::<Value>(&entrypoints()).unwrap()["foundry/license/route"], 0);
    }
}
