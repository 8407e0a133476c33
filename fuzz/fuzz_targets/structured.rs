//! Structure-aware calls: licenses, instances and observations built from fuzzer bytes, mostly well formed and
//! close to the rules' edges (names near the length limits, ports and counts out of range, damaged timestamps,
//! duplicates, other licenses and namespaces), sent to every operation.
//!
//! Must hold: no panic; a tagged answer; on success at most one instance is active and it is eligible, every
//! instance of the license has exactly one HTTPRoute, and a second run gives the same bytes.

#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use policy_core::Operation;
use serde_json::{Value, json};

const NAMES: [&str; 6] = ["alpha", "beta", "gamma", "delta", "ghost", ""];

#[derive(Debug, Arbitrary)]
enum Text {
    Known(u8),
    Long(u16),
    Any(String),
}

impl Text {
    fn render(&self) -> String {
        match self {
            Text::Known(i) => NAMES[usize::from(*i) % NAMES.len()].to_owned(),
            Text::Long(n) => "a".repeat(usize::from(*n) % 300),
            Text::Any(s) => s.clone(),
        }
    }
}

#[derive(Debug, Arbitrary)]
enum Number {
    Small(u8),
    Big(i64),
    Float(f64),
    Text(String),
}

impl Number {
    fn render(&self) -> Value {
        match self {
            Number::Small(n) => json!(n),
            Number::Big(n) => json!(n),
            Number::Float(f) => json!(f),
            Number::Text(s) => json!(s),
        }
    }
}

#[derive(Debug, Arbitrary)]
struct License {
    name: Text,
    namespace: Option<Text>,
    desired: Option<Text>,
    current: Option<Text>,
    force: Option<bool>,
    switch_mode: Option<String>,
    grace: Option<String>,
    pending_since: Option<String>,
    base_domain: Option<Text>,
    dns_targets: Vec<String>,
    standby_port: Option<Number>,
    standby_namespace: Option<Text>,
    extra_field: Option<String>,
    generation: Option<Number>,
}

#[derive(Debug, Arbitrary)]
struct Instance {
    name: Text,
    namespace: Option<Text>,
    owner: Option<Text>,
    scheduled: Option<String>,
    proxy_port: Option<Number>,
    kind: Option<String>,
}

#[derive(Debug, Arbitrary)]
struct Player {
    instance: Text,
    namespace: Option<Text>,
    connected: Option<Number>,
    error: Option<String>,
}

#[derive(Debug, Arbitrary)]
struct Call {
    license: License,
    instances: Vec<Instance>,
    now: Option<String>,
    players: Vec<Player>,
    other_objects: Vec<String>,
}

fn license(l: &License) -> Value {
    let mut spec = json!({"licenseSecretRef": {"name": "license", "key": "key"}});
    let mut gateway = json!({"baseDomain": l.base_domain.as_ref().map_or("play.example.org".into(), Text::render)});
    if !l.dns_targets.is_empty() {
        gateway["dnsTargets"] = json!(l.dns_targets);
    }
    spec["gateway"] = gateway;
    if let Some(d) = &l.desired {
        spec["activeInstanceName"] = json!(d.render());
    }
    if let Some(force) = l.force {
        spec["switchMode"] = json!(if force { "force" } else { "block" });
    }
    if let Some(mode) = &l.switch_mode {
        spec["switchMode"] = json!(mode);
    }
    if let Some(g) = &l.grace {
        spec["switchGracePeriod"] = json!(g);
    }
    if l.standby_port.is_some() || l.standby_namespace.is_some() {
        let mut standby = json!({});
        if let Some(p) = &l.standby_port {
            standby["port"] = p.render();
        }
        if let Some(ns) = &l.standby_namespace {
            standby["namespace"] = json!(ns.render());
        }
        spec["standby"] = standby;
    }
    if let Some(extra) = &l.extra_field {
        spec[extra.as_str()] = json!(true);
    }
    let mut metadata = json!({"name": l.name.render()});
    if let Some(ns) = &l.namespace {
        metadata["namespace"] = json!(ns.render());
    }
    if let Some(g) = &l.generation {
        metadata["generation"] = g.render();
    }
    let mut status = json!({});
    if let Some(c) = &l.current {
        status["activeInstance"] = json!(c.render());
    }
    if let Some(p) = &l.pending_since {
        status["pendingSince"] = json!(p);
    }
    json!({
        "apiVersion": "foundry.platform/v1alpha1",
        "kind": "FoundryLicense",
        "metadata": metadata,
        "spec": spec,
        "status": status,
    })
}

fn instance(i: &Instance, license_name: &str) -> Value {
    let mut metadata = json!({"name": i.name.render()});
    if let Some(ns) = &i.namespace {
        metadata["namespace"] = json!(ns.render());
    }
    if let Some(at) = &i.scheduled {
        metadata["annotations"] = json!({"foundry.platform/scheduled-delete-at": at});
    }
    let mut spec = json!({"licenseRef": {"name": i.owner.as_ref().map_or(license_name.to_owned(), Text::render)}});
    if let Some(p) = &i.proxy_port {
        spec["proxyPort"] = p.render();
    }
    json!({
        "apiVersion": "foundry.platform/v1alpha1",
        "kind": i.kind.clone().unwrap_or_else(|| "FoundryInstance".into()),
        "metadata": metadata,
        "spec": spec,
    })
}

fn check_route_decision(call: &Value, d: &Value) {
    let instances = d["instances"].as_array().expect("instances");
    let active: Vec<&Value> = instances.iter().filter(|i| i["state"] == "active").collect();
    assert!(active.len() <= 1, "more than one active instance: {d}");
    match active.first() {
        Some(a) => assert_eq!(a["name"], d["activeInstance"]),
        None => assert_eq!(d["activeInstance"], ""),
    }
    let routes: Vec<&Value> =
        d["manifests"].as_array().expect("manifests").iter().filter(|m| m["kind"] == "HTTPRoute").collect();
    assert_eq!(routes.len(), instances.len(), "one route per instance");
    for i in instances {
        let name = format!("foundry-id-{}", i["name"].as_str().unwrap_or_default());
        assert_eq!(routes.iter().filter(|r| r["metadata"]["name"] == name.as_str()).count(), 1, "{name}");
        if i["state"] == "active" {
            assert!(i.get("scheduledDeleteAt").is_none(), "a scheduled instance is active: {call}");
        }
    }
}

fuzz_target!(|c: Call| {
    let lic = license(&c.license);
    let name = c.license.name.render();
    let instances: Vec<Value> = c.instances.iter().map(|i| instance(i, &name)).collect();
    let players: Vec<Value> = c
        .players
        .iter()
        .map(|p| {
            let mut v = json!({"instance": p.instance.render()});
            if let Some(ns) = &p.namespace {
                v["namespace"] = json!(ns.render());
            }
            if let Some(n) = &p.connected {
                v["connected"] = n.render();
            }
            if let Some(e) = &p.error {
                v["error"] = json!(e);
            }
            v
        })
        .collect();
    let now = json!(c.now.clone().unwrap_or_else(|| "2026-11-22T18:30:00Z".into()));
    let observations = json!({"players": players});
    let mut objects = vec![lic.clone()];
    objects.extend(instances.iter().cloned());
    objects.extend(c.other_objects.iter().map(|k| json!({"kind": k, "metadata": {"name": k}})));
    let first = instances.first().cloned().unwrap_or(Value::Null);
    // The related objects of an admission review, as OPA `data` (kube-mgmt layout).
    let mut related = json!({"foundrylicenses": {}, "foundryinstances": {}});
    for (kind, object) in
        std::iter::once(("foundrylicenses", &lic)).chain(instances.iter().map(|i| ("foundryinstances", i)))
    {
        let ns = object["metadata"]["namespace"].as_str().unwrap_or("default").to_owned();
        let name = object["metadata"]["name"].as_str().unwrap_or_default().to_owned();
        related[kind][ns][name] = object.clone();
    }
    let data = json!({"kubernetes": related});
    for op in Operation::ALL {
        let call = match op {
            Operation::LicenseRoute => {
                json!({"license": lic, "instances": instances, "observations": observations, "now": now})
            }
            Operation::PlatformPreview => json!({"objects": objects, "observations": observations, "now": now}),
            Operation::InstanceConfigure | Operation::InstanceDelete => json!({
                "instance": first, "license": lic, "instances": instances, "now": now,
            }),
            Operation::AdmissionReview => json!({"request": {
                "uid": "fuzz",
                "operation": "CREATE",
                "kind": {"group": "foundry.platform", "version": "v1alpha1", "kind": first["kind"]},
                "namespace": first["metadata"]["namespace"],
                "name": first["metadata"]["name"],
                "object": first,
            }}),
            // The other operations read other shapes; the same pieces still reach their readers and errors.
            _ => json!({
                "license": lic, "licenses": [lic], "instances": instances, "observations": observations, "now": now,
            }),
        };
        let bytes = serde_json::to_vec(&call).expect("serialises");
        let with_data = (op == Operation::AdmissionReview).then_some(&data);
        let run = || {
            let mut out = Vec::new();
            policy_core::api::call_op_with_data_into(op, &bytes, with_data, &mut out);
            String::from_utf8(out).expect("UTF-8 answer")
        };
        let answer = run();
        assert_eq!(answer, run(), "not deterministic");
        let answer: Value = serde_json::from_str(&answer).expect("JSON answer");
        match (answer["outcome"].as_str(), op) {
            (Some("success"), Operation::LicenseRoute) => check_route_decision(&call, &answer["decision"]),
            (Some("success"), Operation::PlatformPreview) => {
                for d in answer["decision"]["licenses"].as_array().expect("licenses") {
                    check_route_decision(&call, d);
                }
            }
            (Some("success"), _) => assert!(!answer["decision"].is_null(), "a success without a decision: {answer}"),
            (Some("failure"), _) => assert!(!answer["errors"].as_array().expect("errors").is_empty()),
            _ => panic!("untagged answer: {answer}"),
        }
    }
});
