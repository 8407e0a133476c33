//! Every entry point of the policy module on arbitrary bytes: the first byte picks the entrypoint id (one past the
//! last is an unknown id), the rest is the input. Runs the module's own evaluation code natively
//! (`policy_wasm::evaluate_into`, which the OPA ABI exports wrap) and the call layer by operation name, so
//! operations added to `policy_core::Operation::ALL` are covered without changing this file.
//!
//! Must hold: no panic; a known id always gives one well-formed result set whose answer is a tagged success or
//! failure; an unknown id is refused; the same input gives the same bytes.

#![no_main]

use libfuzzer_sys::fuzz_target;
use policy_core::Operation;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, input)) = data.split_first() else { return };
    let id = usize::from(selector) % (Operation::ALL.len() + 1);
    let mut out = Vec::new();
    // Without OPA `data` (the admission entrypoint's related objects come from the `structured` target).
    let result = policy_wasm::evaluate_into(id as i32, input, None, &mut out);
    let Some(op) = Operation::from_id(id) else {
        assert!(result.is_err(), "unknown entrypoint {id} was accepted");
        assert!(policy_core::call("no/such/operation", input).contains("UnknownOperation"));
        return;
    };
    assert!(result.is_ok(), "entrypoint {id} refused");
    let set: Value = serde_json::from_slice(&out).expect("the result set is JSON");
    let answer = &set[0]["result"];
    assert!(set.as_array().is_some_and(|a| a.len() == 1), "one result: {set}");
    match answer["outcome"].as_str() {
        Some("success") => assert!(answer["decision"].is_object()),
        Some("failure") => {
            let errors = answer["errors"].as_array().expect("errors");
            assert!(!errors.is_empty());
            for e in errors {
                for key in ["code", "message", "path", "help"] {
                    assert!(e[key].is_string(), "error without `{key}`: {e}");
                }
            }
        }
        other => panic!("untagged answer {other:?}"),
    }
    let by_name = policy_core::call(op.name(), input);
    let inner = out.strip_prefix(br#"[{"result":"#).and_then(|rest| rest.strip_suffix(b"}]"));
    assert_eq!(inner, Some(by_name.as_bytes()), "the call layer and the entrypoint differ");
    assert_eq!(policy_core::call(op.name(), input), by_name, "not deterministic");
});
