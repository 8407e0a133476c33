//! Invariants of the routing decision over random valid inputs.

#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use proptest::prelude::*;
use serde_json::Value;

fn decide(call: &Value) -> (String, Value) {
    let answer = policy_core::call("foundry/license/route", &serde_json::to_vec(call).unwrap());
    let value: Value = serde_json::from_str(&answer).unwrap();
    (answer, value)
}

/// The license's instances: name, scheduled deletion time (if any), workload configured for its generation.
fn own_instances(call: &Value) -> Vec<(String, Option<String>, bool)> {
    call["instances"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["spec"]["licenseRef"]["name"] == "guild")
        .map(|i| {
            let scheduled =
                i["metadata"]["annotations"]["foundry.platform/scheduled-delete-at"].as_str().map(str::to_owned);
            let ready = i["status"]["configuredGeneration"] == i["metadata"]["generation"]
                && i["status"]["conditions"].as_array().is_some_and(|c| c.iter().any(|c| c["status"] == "True"));
            (i["metadata"]["name"].as_str().unwrap().to_owned(), scheduled, ready)
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn routing_invariants(call in corpus::generate::route_call()) {
        let (answer, value) = decide(&call);
        prop_assert_eq!(&value["outcome"], "success", "{}", answer);
        let d = &value["decision"];
        let own = own_instances(&call);
        let routes: Vec<&Value> = d["manifests"].as_array().unwrap().iter().filter(|m| m["kind"] == "HTTPRoute").collect();

        // Every instance of the license has exactly one route, and nothing else has one.
        prop_assert_eq!(routes.len(), own.len());
        for (name, _, _) in &own {
            let n = routes.iter().filter(|r| r["metadata"]["name"] == format!("foundry-id-{name}")).count();
            prop_assert_eq!(n, 1, "instance {} has {} routes", name, n);
        }

        // At most one route reaches an instance Service, and it is the reported active instance's.
        let active_routes: Vec<&&Value> = routes
            .iter()
            .filter(|r| r["spec"]["rules"][0]["backendRefs"][0]["name"].as_str().unwrap().starts_with("foundry-") &&
                        r["spec"]["rules"][0]["backendRefs"][0]["name"] != "foundry-standby-page")
            .collect();
        prop_assert!(active_routes.len() <= 1);
        let active = d["activeInstance"].as_str().unwrap();
        match active_routes.first() {
            Some(r) => {
                prop_assert_eq!(&r["spec"]["rules"][0]["backendRefs"][0]["name"], &format!("foundry-{active}"));
                prop_assert_eq!(&r["metadata"]["labels"]["foundry.platform/route-state"], "active");
            }
            None => prop_assert_eq!(active, ""),
        }
        prop_assert_eq!(&d["status"]["activeInstance"], active);

        // The active instance exists and is never past its scheduled deletion. One that may not become active
        // (scheduled for deletion, or its workload not configured for its spec) is only ever the current instance
        // kept for its players: never newly activated, and held back by the gate in block mode.
        if !active.is_empty() {
            let now = call["now"].as_str().unwrap();
            let me = own.iter().find(|(n, _, _)| n == active);
            prop_assert!(me.is_some(), "the active instance is one of the license's");
            let (_, scheduled, ready) = me.unwrap();
            prop_assert!(scheduled.as_deref().is_none_or(|at| at > now), "active past its scheduled deletion");
            if scheduled.is_some() || !ready {
                prop_assert_eq!(&call["license"]["status"]["activeInstance"], active, "newly activated though ineligible");
                if call["license"]["spec"]["switchMode"] != "force" {
                    prop_assert!(!d["status"]["pendingSince"].is_null(), "kept without the gate holding it");
                }
            }
        }

        // In force mode nothing is ever held back.
        if call["license"]["spec"]["switchMode"] == "force" {
            prop_assert!(d["status"]["pendingSince"].is_null());
        }

        // A second run gives identical bytes.
        prop_assert_eq!(answer, decide(&call).0);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// The preview decides each instance exactly as that instance's own workflow does, though it reads the
    /// namespace's instances, the catalog and the instance limit once for all of them.
    #[test]
    fn preview_configures_every_instance_like_its_workflow(
        call in corpus::generate::route_call(),
        max in prop::option::of(0u32..5),
        created in prop::collection::vec(prop::option::of(0u32..4), 8),
    ) {
        let mut call = call;
        if let Some(m) = max {
            call["license"]["spec"]["restrictions"] = serde_json::json!({"maxInstances": m});
        }
        for (i, inst) in call["instances"].as_array_mut().unwrap().iter_mut().enumerate() {
            if let Some(Some(day)) = created.get(i) {
                inst["metadata"]["creationTimestamp"] = serde_json::json!(format!("2026-0{}-01T00:00:00Z", day + 1));
            }
        }
        let mut objects = vec![call["license"].clone()];
        objects.extend(call["instances"].as_array().unwrap().iter().cloned());
        let preview =
            serde_json::json!({"objects": objects, "observations": call["observations"], "now": call["now"]});
        let answer = policy_core::call("foundry/platform/preview", &serde_json::to_vec(&preview).unwrap());
        let answer: Value = serde_json::from_str(&answer).unwrap();
        prop_assert_eq!(&answer["outcome"], "success", "{}", answer);
        let decided = answer["decision"]["instances"].as_array().unwrap();
        let mut own: Vec<&Value> = call["instances"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|i| i["spec"]["licenseRef"]["name"] == "guild")
            .collect();
        own.sort_by_key(|i| i["metadata"]["name"].as_str().unwrap_or_default().to_owned());
        prop_assert_eq!(decided.len(), own.len());
        for (instance, from_preview) in own.iter().zip(decided) {
            let single = serde_json::json!({
                "instance": instance,
                "license": call["license"],
                "instances": call["instances"],
                "now": call["now"],
            });
            let alone = policy_core::call("foundry/instance/configure", &serde_json::to_vec(&single).unwrap());
            let alone: Value = serde_json::from_str(&alone).unwrap();
            prop_assert_eq!(&alone["decision"], from_preview, "{}", instance["metadata"]["name"]);
        }
    }
}
