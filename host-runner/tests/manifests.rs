//! Every workload manifest the policy writes is a valid Kubernetes object: it deserialises into the
//! `k8s-openapi` type of its kind and serialises back to the same JSON, so no field is misspelt, mistyped or
//! unknown (an unknown field would be dropped on the way and show up as a difference).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Service, ServiceAccount};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::path::Path;

fn round_trip<T: DeserializeOwned + Serialize>(manifest: &Value) -> Result<(), String> {
    let typed: T = serde_json::from_value(manifest.clone()).map_err(|e| e.to_string())?;
    let back = serde_json::to_value(&typed).map_err(|e| e.to_string())?;
    if back == *manifest { Ok(()) } else { Err(format!("changed on a round trip:\n  in:  {manifest}\n  out: {back}")) }
}

fn check(manifest: &Value) -> Result<&'static str, String> {
    match (manifest["apiVersion"].as_str(), manifest["kind"].as_str()) {
        (Some("apps/v1"), Some("Deployment")) => round_trip::<Deployment>(manifest).map(|_| "Deployment"),
        (Some("v1"), Some("Service")) => round_trip::<Service>(manifest).map(|_| "Service"),
        (Some("v1"), Some("PersistentVolumeClaim")) => round_trip::<PersistentVolumeClaim>(manifest).map(|_| "PVC"),
        (Some("batch/v1"), Some("Job")) => round_trip::<Job>(manifest).map(|_| "Job"),
        (Some("v1"), Some("ServiceAccount")) => round_trip::<ServiceAccount>(manifest).map(|_| "ServiceAccount"),
        (Some("rbac.authorization.k8s.io/v1"), Some("Role")) => round_trip::<Role>(manifest).map(|_| "Role"),
        (Some("rbac.authorization.k8s.io/v1"), Some("RoleBinding")) => {
            round_trip::<RoleBinding>(manifest).map(|_| "RoleBinding")
        }
        other => Err(format!("unexpected workload manifest {other:?}")),
    }
}

#[test]
fn workload_manifests_are_valid_kubernetes_objects() {
    let mut seen = std::collections::BTreeSet::new();
    let mut checked = 0;
    // The example platform, as `preview` decides it.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let objects = host_runner::load::load_paths(&[root.join("examples/platform")]).unwrap();
    let call = serde_json::json!({
        "objects": objects.iter().map(|o| &o.value).collect::<Vec<_>>(),
        "now": "2026-11-22T18:30:00Z",
    });
    let answer: Value =
        serde_json::from_str(&policy_core::call("foundry/platform/preview", &serde_json::to_vec(&call).unwrap()))
            .unwrap();
    let mut decisions: Vec<Value> = answer["decision"]["instances"].as_array().unwrap().clone();
    // And every successful instance case of the corpus.
    for case in corpus::load_cases().iter().filter(|c| c.operation == "foundry/instance/configure") {
        let answer: Value =
            serde_json::from_str(&policy_core::call(&case.operation, &corpus::call_bytes(case))).unwrap();
        if answer["outcome"] == "success" {
            decisions.push(answer["decision"].clone());
        }
    }
    for decision in &decisions {
        for manifest in decision["manifests"].as_array().unwrap() {
            match check(manifest) {
                Ok(kind) => {
                    seen.insert(kind);
                    checked += 1;
                }
                Err(e) => panic!("{}: {e}", decision["instance"]),
            }
        }
    }
    assert_eq!(
        seen.into_iter().collect::<Vec<_>>(),
        ["Deployment", "Job", "PVC", "Role", "RoleBinding", "Service", "ServiceAccount"]
    );
    assert!(checked > 50, "only {checked} manifests checked");
}

#[test]
fn a_misspelt_field_is_caught() {
    let bad =
        serde_json::json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "x"}, "spec": {"prots": []}});
    assert!(check(&bad).is_err());
}
