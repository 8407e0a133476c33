//! Runs the case corpus (`tests/corpus`) against native `policy-core`, through its JSON call/answer layer.

use serde_json::Value;

#[test]
fn corpus_passes_natively() {
    let cases = corpus::load_cases();
    assert!(cases.len() >= 25, "the corpus has only {} cases", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        let answer = policy_core::api::call_with_data(&case.operation, &corpus::call_bytes(case), case.data.as_ref());
        let value: Value = serde_json::from_str(&answer).expect("answers are JSON");
        if let Err(problems) = corpus::check(case, &value) {
            failures.push(format!("{}:\n  {}", case.name, problems.join("\n  ")));
        }
        // Determinism: the same call gives the same bytes.
        assert_eq!(
            answer,
            policy_core::api::call_with_data(&case.operation, &corpus::call_bytes(case), case.data.as_ref()),
            "{}",
            case.name
        );
    }
    assert!(failures.is_empty(), "{} of {} cases failed:\n{}", failures.len(), cases.len(), failures.join("\n"));
}

#[test]
fn every_divergence_names_a_real_case() {
    let names: Vec<String> = corpus::load_cases().into_iter().map(|c| c.name).collect();
    for d in corpus::divergences() {
        assert!(names.iter().any(|n| corpus::covers(&d.case, n)), "DIVERGENCES.yaml names unknown case {}", d.case);
        assert!(!d.reason.trim().is_empty(), "divergence of {} has no reason", d.case);
    }
}
