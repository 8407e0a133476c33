//! Hostname claims: `<instance>.<baseDomain>` is published by one license only. When two licenses share a base
//! domain and both have an instance of the same name, the older license (by creation time, then namespace and
//! name) keeps the hostname, and the later one's instance gets no route at all (never two HTTPRoutes for one
//! hostname).
//!
//! A license's routing reads the other licenses first; only when an older one shares its base domain does it need
//! that license's instances, which it asks for with a [`ClaimCheck`] (as the player gate asks for a probe).

use super::Member;
use crate::input::{namespace_of, text};
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeSet;

/// The instances routing still needs to check hostname claims: those of these namespaces.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClaimCheck {
    /// Namespaces of older licenses that share the base domain, in name order.
    pub namespaces: Vec<String>,
    /// Whether the call carried their instances.
    pub observed: bool,
}

/// The base domain a license object publishes under, read leniently (a broken license claims nothing).
fn base_domain(license: &Value) -> Option<&str> {
    text(license, "/spec/gateway/baseDomain").or_else(|| text(license, "/spec/baseDomain"))
}

/// The order of precedence: creation time (unknown counts as newest), then namespace, then name.
fn rank(license: &Value) -> (bool, Option<Timestamp>, String, String) {
    let created = text(license, "/metadata/creationTimestamp").and_then(|t| Timestamp::parse(t).ok());
    let name = text(license, "/metadata/name").unwrap_or_default().to_owned();
    (created.is_none(), created, namespace_of(license).to_owned(), name)
}

/// The older licenses among `others` that share `base` with `license`: (namespace, name).
fn older<'a>(license: &Value, base: &str, others: &'a [Value]) -> Vec<(&'a str, &'a str)> {
    let me = rank(license);
    others
        .iter()
        .filter(|o| base_domain(o) == Some(base))
        .filter(|o| (namespace_of(o), text(o, "/metadata/name")) != (me.2.as_str(), Some(me.3.as_str())))
        .filter(|o| rank(o) < me)
        .filter_map(|o| Some((namespace_of(o), text(o, "/metadata/name")?)))
        .collect()
}

/// The instance names whose hostname under `base` an older license among `others` already publishes.
pub(super) fn taken(license: &Value, base: &str, others: &[Value], instances: &[Value]) -> BTreeSet<String> {
    let owners = older(license, base, others);
    instances
        .iter()
        .filter(|i| i.pointer("/metadata/deletionTimestamp").is_none_or(Value::is_null))
        .filter(|i| {
            let owner = text(i, "/spec/licenseRef/name").unwrap_or_default();
            owners.contains(&(namespace_of(i), owner))
        })
        .filter_map(|i| text(i, "/metadata/name").map(str::to_owned))
        .collect()
}

/// Marks the members whose hostname an older license publishes; asks for the instances it still needs.
pub(super) fn apply(
    license: &Value,
    base: &str,
    others: super::Others<'_>,
    members: &mut [Member],
) -> Option<ClaimCheck> {
    let owners = older(license, base, others.licenses);
    if owners.is_empty() {
        return None;
    }
    let mut namespaces: Vec<String> = owners.iter().map(|(ns, _)| (*ns).to_owned()).collect();
    namespaces.sort();
    namespaces.dedup();
    let Some(instances) = others.instances else {
        return Some(ClaimCheck { namespaces, observed: false });
    };
    let taken = taken(license, base, others.licenses, instances);
    for m in members.iter_mut() {
        m.claimed = taken.contains(&m.name);
    }
    Some(ClaimCheck { namespaces, observed: true })
}
