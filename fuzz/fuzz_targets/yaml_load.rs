//! The host's YAML reading (`host_runner::load`) on arbitrary bytes, then the preview of whatever it read, as
//! `host-runner preview` does: a clear error or a decision, never a panic, a stack overflow or runaway memory.
//!
//! `load.rs` is compiled here from the host's own source file rather than through the `host-runner` crate, so this
//! target's sanitizer build does not have to build wasmtime.

#![no_main]

#[path = "../../host-runner/src/load.rs"]
#[allow(dead_code, unreachable_pub)]
mod load;

use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Ok(objects) = load::objects_from_bytes(Path::new("fuzz.yaml"), data) else { return };
    let values: Vec<&Value> = objects.iter().map(|o| &o.value).collect();
    let call = json!({"objects": values, "now": "2026-11-22T18:30:00Z"});
    let input = serde_json::to_vec(&call).expect("a parsed document serialises");
    let answer = policy_core::call("foundry/platform/preview", &input);
    let answer: Value = serde_json::from_str(&answer).expect("answers are JSON");
    assert!(answer["outcome"] == "success" || answer["outcome"] == "failure");
});
