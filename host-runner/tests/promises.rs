//! The Promises in `promises/` are valid Kratix Promises whose `spec.api` is a valid, structural CRD, their
//! workflows run `host-runner kratix` with least privilege, and the example objects validate against them.
//! (That the files match the Rust types is checked by `cargo xtask promises --check`.)

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn promise(name: &str) -> Value {
    let text = std::fs::read_to_string(root().join("promises").join(name).join("promise.yaml")).unwrap();
    serde_saphyr::from_str(&text).unwrap()
}

fn schema(promise: &Value) -> &Value {
    &promise["spec"]["api"]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
}

/// Checks the rules of a structural schema that a hand-written or generated schema most easily breaks.
fn assert_structural(node: &Value, at: &str) {
    let map = node.as_object().unwrap_or_else(|| panic!("{at}: not an object"));
    let preserve = map.get("x-kubernetes-preserve-unknown-fields") == Some(&json!(true));
    assert!(map.contains_key("type") || preserve, "{at}: no type");
    assert!(map.get("additionalProperties") != Some(&json!(false)), "{at}: additionalProperties: false");
    for key in ["oneOf", "anyOf", "allOf", "$ref", "definitions", "$schema"] {
        assert!(!map.contains_key(key), "{at}: `{key}` is not structural here");
    }
    if let Some(props) = map.get("properties").and_then(Value::as_object) {
        for (name, child) in props {
            assert_structural(child, &format!("{at}.{name}"));
        }
    }
    if let Some(items) = map.get("items") {
        assert_structural(items, &format!("{at}[]"));
    }
}

/// Validates `value` against a schema node (types, required, enums, bounds, unknown fields).
fn validate(schema: &Value, value: &Value, at: &str, problems: &mut Vec<String>) {
    if value.is_null() {
        if schema.get("nullable") != Some(&json!(true)) {
            problems.push(format!("{at}: null is not allowed"));
        }
        return;
    }
    if schema.get("x-kubernetes-preserve-unknown-fields") == Some(&json!(true)) {
        return;
    }
    let ok = match schema["type"].as_str().unwrap_or("") {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "integer" => value.is_i64() || value.is_u64(),
        "boolean" => value.is_boolean(),
        "number" => value.is_number(),
        _ => true,
    };
    if !ok {
        problems.push(format!("{at}: expected {}, found {value}", schema["type"]));
        return;
    }
    if let Some(values) = schema.get("enum").and_then(Value::as_array)
        && !values.contains(value)
    {
        problems.push(format!("{at}: {value} is not one of {values:?}"));
    }
    if let (Some(min), Some(n)) = (schema.get("minimum").and_then(Value::as_i64), value.as_i64())
        && n < min
    {
        problems.push(format!("{at}: {n} < {min}"));
    }
    if let (Some(max), Some(n)) = (schema.get("maximum").and_then(Value::as_i64), value.as_i64())
        && n > max
    {
        problems.push(format!("{at}: {n} > {max}"));
    }
    if let (Some(max), Some(s)) = (schema.get("maxLength").and_then(Value::as_u64), value.as_str())
        && s.chars().count() as u64 > max
    {
        problems.push(format!("{at}: longer than {max}"));
    }
    if let Some(obj) = value.as_object() {
        let props = schema.get("properties").and_then(Value::as_object);
        for required in schema.get("required").and_then(Value::as_array).into_iter().flatten() {
            if !obj.contains_key(required.as_str().unwrap()) {
                problems.push(format!("{at}: missing `{}`", required.as_str().unwrap()));
            }
        }
        for (k, v) in obj {
            match props.and_then(|p| p.get(k)) {
                Some(child) => validate(child, v, &format!("{at}.{k}"), problems),
                None if props.is_some() => problems.push(format!("{at}.{k}: unknown field (the API server prunes it)")),
                None => {}
            }
        }
    }
    if let (Some(items), Some(arr)) = (schema.get("items"), value.as_array()) {
        for (i, v) in arr.iter().enumerate() {
            validate(items, v, &format!("{at}[{i}]"), problems);
        }
    }
}

const PIPELINE_KEYS: [&str; 8] =
    ["containers", "volumes", "imagePullSecrets", "nodeSelector", "tolerations", "restartPolicy", "jobOptions", "rbac"];
const CONTAINER_KEYS: [&str; 10] = [
    "name",
    "image",
    "command",
    "args",
    "env",
    "envFrom",
    "volumeMounts",
    "imagePullPolicy",
    "securityContext",
    "resources",
];

fn pipelines(promise: &Value) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for action in ["configure", "delete"] {
        for p in promise["spec"]["workflows"]["resource"][action].as_array().into_iter().flatten() {
            out.push((action.to_owned(), p.clone()));
        }
    }
    assert!(promise["spec"]["workflows"].get("promise").is_none(), "no promise workflows are declared");
    out
}

#[test]
fn promises_are_valid_kratix_promises_with_structural_crds() {
    for (name, kind, plural) in [
        ("foundry-license", "FoundryLicense", "foundrylicenses"),
        ("foundry-instance", "FoundryInstance", "foundryinstances"),
    ] {
        let p = promise(name);
        assert_eq!(p["apiVersion"], "platform.kratix.io/v1alpha1");
        assert_eq!(p["kind"], "Promise");
        assert_eq!(p["metadata"]["name"], name);
        let crd: CustomResourceDefinition = serde_json::from_value(p["spec"]["api"].clone()).expect("a valid CRD");
        assert_eq!(crd.metadata.name.as_deref(), Some(format!("{plural}.foundry.platform").as_str()));
        assert_eq!(crd.spec.group, "foundry.platform");
        assert_eq!(crd.spec.scope, "Namespaced", "Kratix requires namespaced resources");
        assert_eq!(crd.spec.names.kind, kind);
        assert_eq!(crd.spec.names.plural, plural);
        assert_eq!(crd.spec.versions.len(), 1);
        let v = &crd.spec.versions[0];
        assert!(v.served && v.storage);
        assert_eq!(v.name, "v1alpha1");
        assert_structural(schema(&p), "openAPIV3Schema");
        assert_eq!(schema(&p)["required"], json!(["spec"]));

        for (action, pipeline) in pipelines(&p) {
            let at = format!("{name} {action}");
            assert_eq!(pipeline["apiVersion"], "platform.kratix.io/v1alpha1", "{at}");
            assert_eq!(pipeline["kind"], "Pipeline", "{at}");
            assert!(pipeline["metadata"]["name"].as_str().is_some_and(|n| !n.is_empty()), "{at}");
            for key in pipeline["spec"].as_object().unwrap().keys() {
                assert!(PIPELINE_KEYS.contains(&key.as_str()), "{at}: Kratix rejects pipeline field `{key}`");
            }
            let containers = pipeline["spec"]["containers"].as_array().unwrap();
            assert_eq!(containers.len(), 1, "{at}");
            for volume in pipeline["spec"]["volumes"].as_array().into_iter().flatten() {
                assert_eq!(volume["configMap"]["optional"], true, "{at}: a missing ConfigMap must not stop the pod");
            }
            let c = &containers[0];
            for key in c.as_object().unwrap().keys() {
                assert!(CONTAINER_KEYS.contains(&key.as_str()), "{at}: Kratix rejects container field `{key}`");
            }
            assert_eq!(c["args"], json!(["kratix"]), "{at}: runs host-runner kratix");
            let image = c["image"].as_str().unwrap();
            assert!(image.contains(':') && !image.ends_with(":latest"), "{at}: a pinned image tag");
            assert_eq!(c["securityContext"]["runAsNonRoot"], true, "{at}");
            assert_eq!(c["securityContext"]["allowPrivilegeEscalation"], false, "{at}");
            for rule in pipeline["spec"]["rbac"]["permissions"].as_array().unwrap() {
                let resources = rule["resources"].as_array().unwrap();
                assert!(!resources.contains(&json!("secrets")), "{at}: no workflow reads Secrets");
                assert!(!rule["verbs"].as_array().unwrap().contains(&json!("*")), "{at}: no wildcard verbs");
                // Cluster-wide rules only ever list (the license reads other licenses for hostname claims).
                if rule.get("resourceNamespace").is_some() {
                    assert_eq!(rule["resourceNamespace"], "*", "{at}");
                    assert_eq!(rule["verbs"], json!(["list"]), "{at}: cluster-wide, a workflow only lists");
                }
            }
            // A refusal is deterministic: the Job is not retried (Kratix re-runs on the reconciliation interval).
            assert_eq!(pipeline["spec"]["jobOptions"]["backoffLimit"], 0, "{at}");
        }
        // Every output goes to the platform cluster's Destination, never to a random one.
        assert_eq!(
            p["spec"]["destinationSelectors"],
            json!([{"matchLabels": {"foundry.platform/destination": "platform"}}]),
            "{name}"
        );
        // `kubectl get` shows the status message the README promises.
        let columns = &p["spec"]["api"]["spec"]["versions"][0]["additionalPrinterColumns"];
        assert!(
            columns.as_array().unwrap().iter().any(|c| c["jsonPath"] == ".status.message"),
            "{name}: a Message column"
        );
        // Both workflows re-run on their own.
        assert!(p["spec"]["workflows"]["config"]["reconciliationInterval"].is_string(), "{name}");
    }
}

#[test]
fn rbac_is_exactly_what_each_workflow_uses() {
    let license = promise("foundry-license");
    assert_eq!(
        pipelines(&license)[0].1["spec"]["rbac"]["permissions"],
        json!([
            {"apiGroups": ["foundry.platform"], "resources": ["foundrylicenses"], "verbs": ["list"],
             "resourceNamespace": "*"},
            {"apiGroups": ["foundry.platform"], "resources": ["foundryinstances"], "verbs": ["list"],
             "resourceNamespace": "*"},
            {"apiGroups": ["foundry.platform"], "resources": ["foundryinstances"], "verbs": ["patch"]},
            {"apiGroups": ["foundry.platform"], "resources": ["foundryinstances/status"], "verbs": ["patch"]},
        ])
    );
    let licenses =
        json!({"apiGroups": ["foundry.platform"], "resources": ["foundrylicenses"], "verbs": ["get", "patch"]});
    let instances =
        json!({"apiGroups": ["foundry.platform"], "resources": ["foundryinstances"], "verbs": ["get", "list"]});
    // Configuring reads the running Deployment (the place its data is in); nothing else outside our group.
    let deployments = json!({"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get"]});
    for (action, p) in pipelines(&promise("foundry-instance")) {
        let expected =
            if action == "configure" { json!([licenses, instances, deployments]) } else { json!([licenses]) };
        assert_eq!(p["spec"]["rbac"]["permissions"], expected, "{action}");
    }
}

#[test]
fn the_license_promise_reconciles_on_its_own() {
    let interval = promise("foundry-license")["spec"]["workflows"]["config"]["reconciliationInterval"].clone();
    let seconds = policy_core::api::Duration::parse(interval.as_str().unwrap()).unwrap().seconds();
    assert!(
        (60..=15 * 60).contains(&seconds),
        "Kratix needs at least 1m; a held switch should not wait long: {interval}"
    );
}

#[test]
fn names_are_checked_at_admission_with_the_policy_limits() {
    let instance = promise("foundry-instance");
    let rule = schema(&instance)["x-kubernetes-validations"][0]["rule"].as_str().unwrap();
    assert!(rule.contains("self.metadata.name"));
    assert!(rule.contains(&format!("<= {}", policy_core::names::MAX_INSTANCE_NAME)), "{rule}");
    let license = promise("foundry-license");
    let active = &schema(&license)["properties"]["spec"]["properties"]["activeInstanceName"];
    assert_eq!(active["maxLength"], json!(policy_core::names::MAX_INSTANCE_NAME));
}

#[test]
fn example_objects_validate_against_the_promise_schemas() {
    let objects = host_runner::load::load_paths(&[root().join("examples/platform")]).unwrap();
    assert!(objects.len() >= 4);
    for o in &objects {
        let promise = match o.kind() {
            "FoundryLicense" => promise("foundry-license"),
            "FoundryInstance" => promise("foundry-instance"),
            other => panic!("unexpected kind {other} in examples/platform"),
        };
        let mut problems = Vec::new();
        validate(&schema(&promise)["properties"]["spec"], &o.value["spec"], "spec", &mut problems);
        assert!(problems.is_empty(), "{} {}: {problems:?}", o.kind(), o.id());
    }
    // The validator is not blind: a bad license is caught.
    let mut problems = Vec::new();
    let bad = json!({"switchMode": "gentle", "standby": {"port": 0}, "licenseSecretRef": {"name": "x"}, "extra": 1});
    validate(&schema(&promise("foundry-license"))["properties"]["spec"], &bad, "spec", &mut problems);
    assert_eq!(problems.len(), 4, "{problems:?}");
}

fn documents(file: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(root().join("promises/standby-page").join(file)).unwrap();
    text.split("\n---\n").skip(1).map(|doc| serde_saphyr::from_str(doc).unwrap()).collect()
}

fn of_kind<'a>(docs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    docs.iter().filter(|d| d["kind"] == kind).collect()
}

#[test]
fn the_standby_page_manifests_grant_exactly_what_each_mode_needs() {
    for (file, activation) in [("read-only.yaml", false), ("with-activation.yaml", true)] {
        let docs = documents(file);
        // The Service every standby route points at by default.
        let service = of_kind(&docs, "Service")[0];
        let default = policy_core::model::StandbySpec::default();
        assert_eq!(service["metadata"]["name"], default.service_name.as_str(), "{file}");
        assert_eq!(service["metadata"]["namespace"], default.namespace.as_str(), "{file}");
        assert_eq!(service["spec"]["ports"][0]["port"], json!(default.port), "{file}");
        let deployment = of_kind(&docs, "Deployment")[0];
        let pod = &deployment["spec"]["template"]["spec"];
        assert_eq!(pod["serviceAccountName"], default.service_name.as_str());
        let container = &pod["containers"][0];
        assert_eq!(container["args"][0], "standby-page");
        assert_eq!(container["args"].as_array().unwrap().contains(&json!("--activation")), activation, "{file}");
        assert_eq!(container["securityContext"]["readOnlyRootFilesystem"], true);
        assert_eq!(container["securityContext"]["runAsNonRoot"], true);
        assert_eq!(container["securityContext"]["allowPrivilegeEscalation"], false);
        assert_eq!(deployment["spec"]["selector"]["matchLabels"], service["spec"]["selector"]);

        let mut rules: Vec<Value> = Vec::new();
        for role in of_kind(&docs, "ClusterRole") {
            rules.extend(role["rules"].as_array().unwrap().iter().cloned());
            let name = role["metadata"]["name"].as_str().unwrap();
            let binding =
                of_kind(&docs, "ClusterRoleBinding").into_iter().find(|b| b["metadata"]["name"] == name).unwrap();
            assert_eq!(binding["subjects"][0]["name"], default.service_name.as_str());
            assert_eq!(binding["subjects"][0]["namespace"], default.namespace.as_str());
        }
        let mut expected = vec![
            json!({"apiGroups": ["foundry.platform"], "resources": ["foundrylicenses", "foundryinstances"], "verbs": ["list", "watch"]}),
        ];
        if activation {
            expected.extend([
                json!({"apiGroups": ["foundry.platform"], "resources": ["foundryactivationrequests"], "verbs": ["list", "watch", "create", "delete"]}),
                json!({"apiGroups": ["foundry.platform"], "resources": ["foundryactivationrequests/status"], "verbs": ["patch"]}),
                json!({"apiGroups": ["foundry.platform"], "resources": ["foundrylicenses"], "verbs": ["patch"]}),
            ]);
        }
        assert_eq!(
            rules, expected,
            "{file}: exactly the permissions the mode uses, no Secrets, no update, delete only of finished requests"
        );
        // Behind the Gateway the service counts clients by the address the Gateway appends.
        assert!(container["args"].as_array().unwrap().contains(&json!("--trust-forwarded-for")), "{file}");
        assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz", "{file}");
        assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz", "{file}");

        let crds = of_kind(&docs, "CustomResourceDefinition");
        assert_eq!(crds.len(), usize::from(activation), "{file}");
        if let Some(crd) = crds.first() {
            let parsed: CustomResourceDefinition = serde_json::from_value((*crd).clone()).expect("a valid CRD");
            assert_eq!(parsed.spec.names.kind, "FoundryActivationRequest");
            assert_eq!(parsed.spec.scope, "Namespaced");
            let schema = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
            assert_structural(schema, "openAPIV3Schema");
            let spec = &schema["properties"]["spec"];
            assert_eq!(spec["required"], json!(["licenseRef", "instanceName"]));
            let mut problems = Vec::new();
            let good = json!({"licenseRef": {"name": "guild"}, "instanceName": "beta", "approved": true, "requestedAt": "2026-11-22T18:30:00Z"});
            validate(spec, &good, "spec", &mut problems);
            assert!(problems.is_empty(), "{problems:?}");
            validate(spec, &json!({"licenseRef": {"name": "guild"}, "approved": "yes"}), "spec", &mut problems);
            assert_eq!(problems.len(), 2, "{problems:?}");
        }
    }
}

#[test]
fn the_license_schema_has_the_activation_settings() {
    let license = promise("foundry-license");
    let activation = &schema(&license)["properties"]["spec"]["properties"]["activation"];
    assert_eq!(activation["properties"]["mode"]["enum"], json!(["disabled", "request", "auto-when-idle"]));
    assert_eq!(activation["properties"]["requestTTL"]["type"], "string");
    assert_eq!(activation["properties"]["idleMinutes"]["type"], "integer");
}
