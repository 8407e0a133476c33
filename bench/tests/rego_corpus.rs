//! The Rego version of the routing rules must decide like the policy, or the benchmark compares unlike things.
//!
//! Every routing case of the corpus runs through `bench/rego/route.rego` (in regorus) and through native
//! `policy-core`; their key facts (active instance, each instance's state, reason, backend and hostname, warning
//! codes) must be equal. Cases the Rego cannot express are listed for runner `rego` in
//! `tests/corpus/DIVERGENCES.yaml`, each with its reason; this test checks that list stays honest.

// Test code: a failed expectation should stop the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use bench::rego::RegoRouter;
use bench::{facts, workload};
use proptest::prelude::*;
use serde_json::Value;

fn native_facts(call: &[u8]) -> Value {
    let answer: Value = serde_json::from_str(&policy_core::call("foundry/license/route", call)).unwrap();
    assert_eq!(answer["outcome"], "success", "{answer}");
    facts::of(&answer["decision"])
}

fn rego_facts(rego: &mut RegoRouter, call: &[u8]) -> Result<Value, String> {
    let decision = rego.decide(std::str::from_utf8(call).unwrap())?;
    Ok(facts::of(&serde_json::from_str(&decision).unwrap()))
}

#[test]
fn rego_decides_every_expressible_routing_case_like_the_policy() {
    let mut rego = RegoRouter::new().unwrap();
    let mut failures = Vec::new();
    let mut compared = 0;
    for case in corpus::load_cases().iter().filter(|c| c.operation == "foundry/license/route") {
        if corpus::diverges(case, "rego") {
            // Only refusals are listed: a decision the Rego gets wrong must be fixed, not listed.
            assert_eq!(case.expect.outcome, "failure", "{}: only input errors may be listed for rego", case.name);
            continue;
        }
        if case.expect.outcome != "success" {
            failures.push(format!("{}: a refused call; list it for runner `rego` with the reason", case.name));
            continue;
        }
        let call = corpus::call_bytes(case);
        let native = native_facts(&call);
        match rego_facts(&mut rego, &call) {
            Ok(got) if got == native => compared += 1,
            Ok(got) => failures.push(format!("{}:\n  rego:   {got}\n  native: {native}", case.name)),
            Err(e) => failures.push(format!("{}: {e}", case.name)),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(compared >= 40, "only {compared} routing cases were compared");
}

#[test]
fn rego_decides_the_benchmark_workload_like_the_policy() {
    let mut rego = RegoRouter::new().unwrap();
    for n in [1, 2, 10, 100] {
        let call = serde_json::to_vec(&workload::route_call(n)).unwrap();
        assert_eq!(rego_facts(&mut rego, &call).unwrap(), native_facts(&call), "n = {n}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn rego_matches_native_on_random_calls(call in corpus::generate::route_call()) {
        let call = serde_json::to_vec(&call).unwrap();
        let mut rego = RegoRouter::new().unwrap();
        prop_assert_eq!(rego_facts(&mut rego, &call).unwrap(), native_facts(&call));
    }
}
