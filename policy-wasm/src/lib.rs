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
}
