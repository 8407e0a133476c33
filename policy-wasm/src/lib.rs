//! The policy as one wasm32 module that speaks the Open Policy Agent wasm ABI (version 1.3).
//!
//! This crate is thin on purpose: every decision comes from `policy-core`'s call/answer layer. On wasm32 with the
//! default feature `opa-abi` it exports the OPA ABI (see [`opa_abi`](self) on that target): entrypoints named after
//! [`policy_core::Operation`], results in OPA's result-set form `[{"result": <answer>}]`, and one bump allocator
//! that is both Rust's global allocator and the OPA heap, so host heap resets reclaim everything. The two ABI
//! version globals cannot be written in Rust; the post-link step (`cargo xtask build-wasm`) adds them.
//!
//! With `--no-default-features --features bindgen` it is instead the browser preview's module: a wasm-bindgen
//! API over the same call/answer layer (see `bindgen`), with Rust's own allocator and memory. The two builds
//! never mix: their link settings, allocators and exports conflict.
//!
//! It must not: keep state that allocates between evaluations, import anything but `env.memory` and
//! `env.opa_abort` (OPA build), or decide anything itself.

use policy_core::Operation;

#[cfg(all(target_arch = "wasm32", feature = "opa-abi", feature = "bindgen"))]
compile_error!(
    "features `opa-abi` and `bindgen` are two different wasm modules; build the browser one with \
     `--no-default-features --features bindgen` (cargo xtask build-web does)"
);

#[cfg(all(target_arch = "wasm32", feature = "opa-abi"))]
mod opa_abi;

#[cfg(feature = "bindgen")]
pub mod bindgen;

/// The OPA ABI version this module implements (major, minor).
pub const ABI_VERSION: (i32, i32) = (1, 3);

/// `{"<entrypoint name>": <id>, ...}`, as `entrypoints()` returns it.
pub fn entrypoints_json() -> serde_json::Value {
    Operation::ALL
        .iter()
        .enumerate()
        .map(|(id, op)| (op.name().to_owned(), serde_json::Value::from(id)))
        .collect::<serde_json::Map<_, _>>()
        .into()
}

/// The entrypoint id is not one of [`entrypoints_json`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnknownEntrypoint;

/// Evaluates entrypoint `id` on the raw JSON `input` with OPA's `data` document (`None` when undefined) and
/// appends the OPA result set `[{"result": <answer>}]`.
pub fn evaluate_into(
    id: i32,
    input: &[u8],
    data: Option<&serde_json::Value>,
    out: &mut Vec<u8>,
) -> Result<(), UnknownEntrypoint> {
    let op = usize::try_from(id).ok().and_then(Operation::from_id).ok_or(UnknownEntrypoint)?;
    out.extend_from_slice(br#"[{"result":"#);
    policy_core::api::call_op_with_data_into(op, input, data, out);
    out.extend_from_slice(b"}]");
    Ok(())
}

/// `opa_eval`'s `format` for Rego's value text (0 is JSON). OPA's own Go runtime asks for it and reads the result
/// set as a Rego set.
pub const FORMAT_REGO_VALUE: i32 = 1;

/// Rewrites a result set that [`evaluate_into`] wrote as JSON (an array) into Rego's value text, where a result
/// set is a set: `{{"result": ...}}`, or `set()` when empty. Its elements (JSON objects with string keys) are the
/// same text in both forms. Anything that is not an array is left as it is.
pub fn result_set_as_rego_set(text: &mut Vec<u8>) {
    if text.as_slice() == b"[]" {
        *text = b"set()".to_vec();
    } else if text.first() == Some(&b'[') && text.last() == Some(&b']') {
        if let Some(first) = text.first_mut() {
            *first = b'{';
        }
        if let Some(last) = text.last_mut() {
            *last = b'}';
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn result_set_wraps_the_core_answer() {
        let mut out = Vec::new();
        evaluate_into(0, b"", None, &mut out).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v[0]["result"]["outcome"], "failure");
        assert_eq!(v[0]["result"]["errors"][0]["code"], "MissingInput");
        assert_eq!(evaluate_into(99, b"{}", None, &mut Vec::new()), Err(UnknownEntrypoint));
        assert_eq!(evaluate_into(-1, b"{}", None, &mut Vec::new()), Err(UnknownEntrypoint));
        assert_eq!(entrypoints_json()["foundry/license/route"], 0);
    }

    #[test]
    fn rego_value_text_makes_the_result_set_a_set() {
        let mut out = Vec::new();
        evaluate_into(0, b"", None, &mut out).unwrap();
        let json = out.clone();
        result_set_as_rego_set(&mut out);
        assert_eq!(out.first(), Some(&b'{'));
        assert_eq!(out.get(1..out.len() - 1), json.get(1..json.len() - 1), "the element is unchanged");
        assert_eq!(out.last(), Some(&b'}'));
        let mut empty = b"[]".to_vec();
        result_set_as_rego_set(&mut empty);
        assert_eq!(empty, b"set()");
    }
}
