//! The built policy module in the wasmtime host, on arbitrary bytes for every entrypoint it exports: the answer must
//! equal native `policy-core` byte for byte, and nothing the input does may crash the host or escape its limits.

#![no_main]

use host_runner::engine::{Limits, PolicyEngine};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn engine() -> &'static PolicyEngine {
    static ENGINE: OnceLock<PolicyEngine> = OnceLock::new();
    ENGINE.get_or_init(|| PolicyEngine::embedded(Limits::default()).expect("the embedded module loads"))
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, input)) = data.split_first() else { return };
    let names: Vec<&String> = engine().entrypoints().keys().collect();
    let name = names[usize::from(selector) % names.len()];
    let wasm = engine().evaluate(name, input).expect("the module answers every input");
    let native = policy_core::call(name, input);
    assert_eq!(String::from_utf8(wasm).expect("UTF-8 answer"), native, "wasm and native differ");
});
