//! Native `policy-core` and the built `.wasm` in our host must give byte-identical answers on random inputs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use host_runner::engine::{Limits, PolicyEngine};
use proptest::prelude::*;
use std::sync::OnceLock;

fn engine() -> &'static PolicyEngine {
    static ENGINE: OnceLock<PolicyEngine> = OnceLock::new();
    ENGINE.get_or_init(|| PolicyEngine::embedded(Limits::default()).expect("the embedded module loads"))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn wasm_matches_native(call in corpus::generate::route_call()) {
        let input = serde_json::to_vec(&call).unwrap();
        let native = policy_core::call("foundry/license/route", &input);
        let wasm = engine().evaluate("foundry/license/route", &input).unwrap();
        prop_assert_eq!(String::from_utf8(wasm).unwrap(), native);
    }

    #[test]
    fn arbitrary_bytes_never_crash_the_module(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let native = policy_core::call("foundry/license/route", &bytes);
        let wasm = engine().evaluate("foundry/license/route", &bytes).unwrap();
        prop_assert_eq!(String::from_utf8(wasm).unwrap(), native);
    }
}
