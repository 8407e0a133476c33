//! Manifest templates: the Kubernetes objects a routing decision becomes.
//!
//! One `HTTPRoute` (gateway.networking.k8s.io/v1) per instance, one `DNSEndpoint` (externaldns.k8s.io/v1alpha1)
//! per instance when DNS targets are set, and the `ReferenceGrant` (gateway.networking.k8s.io/v1beta1, served by
//! every Gateway API release since v1.0) that lets routes reach a standby Service in another namespace. This module
//! only renders: every choice was made in [`crate::routing`].

use crate::names;
use crate::routing::{InstanceRoute, RouteState, Routing};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};

/// Label naming the license an object belongs to.
pub const LICENSE_LABEL: &str = "foundry.platform/license";
/// Label naming the instance an object belongs to.
pub const INSTANCE_LABEL: &str = "foundry.platform/instance";
/// Label with the route state (`active` or `standby`), for `kubectl get -l`.
pub const STATE_LABEL: &str = "foundry.platform/route-state";
/// Label common to everything the platform generates.
pub const PART_OF_LABEL: &str = "app.kubernetes.io/part-of";

/// TTL of published DNS records, in seconds.
pub const DNS_TTL: u32 = 300;

/// A file the pipeline writes under `/kratix/output`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OutputFile {
    /// Path relative to the output directory.
    pub path: String,
    /// File content (YAML).
    pub content: String,
}

/// Renders the routing manifests, in a fixed order: per instance (name order) its route then its DNS record, then
/// the grant.
pub(crate) fn route_manifests(r: &Routing, mut out: impl FnMut(String, Value)) {
    for inst in &r.instances {
        out(format!("httproute-{}.yaml", inst.name), http_route(r, inst));
        if !r.gateway.dns.is_empty() {
            out(format!("dnsendpoint-{}.yaml", inst.name), dns_endpoint(r, inst));
        }
    }
    let standby_elsewhere = r.gateway.standby.namespace != r.namespace;
    if standby_elsewhere && r.instances.iter().any(|i| i.state == RouteState::Standby) {
        out("referencegrant-standby.yaml".to_owned(), reference_grant(r));
    }
}

/// One manifest as compact JSON text, serialised as the object itself. A `Value` tree of an HTTPRoute takes
/// several KiB of heap; its text takes about a tenth of that, which is what lets a decision over ten thousand
/// instances stay small. Keys are in the order of the `Value` it was made from (sorted), so output is unchanged.
#[derive(Debug, Clone, Serialize)]
#[serde(transparent)]
pub struct Manifest(Box<RawValue>);

// Read through a `Value` (one manifest at a time), so a decision can be read from any deserializer, including the
// buffered one of a tagged answer, which cannot hand out raw JSON text.
impl<'de> Deserialize<'de> for Manifest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Value::deserialize(d).map(|v| Self::new(&v))
    }
}

impl Manifest {
    /// The manifest of `object`.
    pub fn new(object: &Value) -> Self {
        // Serialising a `Value` cannot fail: its keys are strings.
        Self(serde_json::value::to_raw_value(object).unwrap_or_else(|_| RawValue::NULL.to_owned()))
    }

    /// Its JSON text.
    pub fn json(&self) -> &str {
        self.0.get()
    }

    /// Its JSON as a `Value`.
    pub fn to_value(&self) -> Value {
        serde_json::from_str(self.0.get()).unwrap_or(Value::Null)
    }
}

impl PartialEq for Manifest {
    fn eq(&self, other: &Self) -> bool {
        self.0.get() == other.0.get()
    }
}

fn labels(r: &Routing, inst: Option<&InstanceRoute>) -> Value {
    let mut labels = Map::new();
    labels.insert(PART_OF_LABEL.into(), json!("foundry-vtt"));
    labels.insert(LICENSE_LABEL.into(), json!(r.license_ref.name));
    if let Some(inst) = inst {
        labels.insert(INSTANCE_LABEL.into(), json!(inst.name));
        labels.insert(STATE_LABEL.into(), json!(inst.state.as_str()));
    }
    Value::Object(labels)
}

fn http_route(r: &Routing, inst: &InstanceRoute) -> Value {
    let mut parent = Map::new();
    parent.insert("name".into(), json!(r.gateway.parent_name));
    if let Some(ns) = &r.gateway.parent_namespace {
        parent.insert("namespace".into(), json!(ns));
    }
    if let Some(section) = &r.gateway.section_name {
        parent.insert("sectionName".into(), json!(section));
    }
    let mut backend = Map::new();
    backend.insert("name".into(), json!(inst.backend.name));
    if inst.backend.namespace != r.namespace {
        backend.insert("namespace".into(), json!(inst.backend.namespace));
    }
    backend.insert("port".into(), json!(inst.backend.port));
    json!({
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {
            "name": names::route_name(&inst.name),
            "namespace": r.namespace,
            "labels": labels(r, Some(inst)),
        },
        "spec": {
            "parentRefs": [Value::Object(parent)],
            "hostnames": [inst.hostname],
            "rules": [{"backendRefs": [Value::Object(backend)]}],
        }
    })
}

fn dns_endpoint(r: &Routing, inst: &InstanceRoute) -> Value {
    let dns = &r.gateway.dns;
    let endpoint = |record: &str, targets: &[String]| json!({"dnsName": inst.hostname, "recordType": record, "recordTTL": DNS_TTL, "targets": targets});
    let mut endpoints = Vec::new();
    if !dns.ipv4.is_empty() {
        endpoints.push(endpoint("A", &dns.ipv4));
    }
    if !dns.ipv6.is_empty() {
        endpoints.push(endpoint("AAAA", &dns.ipv6));
    }
    if let Some(host) = &dns.cname {
        endpoints.push(endpoint("CNAME", std::slice::from_ref(host)));
    }
    json!({
        "apiVersion": "externaldns.k8s.io/v1alpha1",
        "kind": "DNSEndpoint",
        "metadata": {
            "name": names::route_name(&inst.name),
            "namespace": r.namespace,
            "labels": labels(r, Some(inst)),
        },
        "spec": {"endpoints": endpoints}
    })
}

/// The name of the grant a license writes in the standby namespace (one per license, so licenses never fight
/// over one object).
pub fn reference_grant_name(namespace: &str, license: &str) -> String {
    format!("foundry-{namespace}-{license}")
}

fn reference_grant(r: &Routing) -> Value {
    json!({
        "apiVersion": "gateway.networking.k8s.io/v1beta1",
        "kind": "ReferenceGrant",
        "metadata": {
            "name": reference_grant_name(&r.namespace, &r.license_ref.name),
            "namespace": r.gateway.standby.namespace,
            "labels": labels(r, None),
        },
        "spec": {
            "from": [{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "namespace": r.namespace}],
            "to": [{"group": "", "kind": "Service", "name": r.gateway.standby.service_name}],
        }
    })
}
