//! The objects a license's routing decision becomes.
//!
//! One `HTTPRoute` (gateway.networking.k8s.io/v1) per instance, one `DNSEndpoint` (externaldns.k8s.io/v1alpha1)
//! per instance when DNS targets are set, and the `ReferenceGrant` (gateway.networking.k8s.io/v1beta1, served by
//! every Gateway API release since v1.0) that lets routes reach a standby Service in another namespace. This module
//! only renders: every choice was made in `rules::routing`.

use super::labels::object_labels;
use crate::names;
use crate::rules::routing::{InstanceRoute, RouteState, Routing};
use serde_json::{Map, Value, json};

/// TTL of published DNS records, in seconds.
pub const DNS_TTL: u32 = 300;

/// Renders the routing manifests, in a fixed order: per instance (name order) its route then its DNS record, then
/// the grant.
pub(crate) fn route_manifests(r: &Routing, mut out: impl FnMut(String, Value)) {
    // An instance whose hostname an older license publishes gets no route and no DNS record at all.
    for inst in r.instances.iter().filter(|i| !i.unrouted) {
        out(format!("httproute-{}.yaml", inst.name), http_route(r, inst));
        if !r.gateway.dns.is_empty() {
            out(format!("dnsendpoint-{}.yaml", inst.name), dns_endpoint(r, inst));
        }
    }
    let standby_elsewhere = r.gateway.standby.namespace != r.namespace;
    if standby_elsewhere && r.instances.iter().any(|i| i.state == RouteState::Standby && !i.unrouted) {
        out("referencegrant-standby.yaml".to_owned(), reference_grant(r));
    }
}

fn labels(r: &Routing, inst: Option<&InstanceRoute>) -> Value {
    object_labels(&r.license_ref.name, inst.map(|i| (i.name.as_str(), i.state.as_str())))
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

/// The name of the grant a license writes in the standby namespace: one per license, and no two licenses can
/// produce the same name (namespaces and license names are DNS labels, which hold no dot).
pub(crate) fn reference_grant_name(namespace: &str, license: &str) -> String {
    format!("foundry-standby.{namespace}.{license}")
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
