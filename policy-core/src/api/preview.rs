//! The preview of a whole platform: every license in a set of objects, decided at once.
//!
//! This is what `host-runner preview` and the browser page call: they hand over the objects they read and the
//! observations, and get one routing decision per license, in (namespace, name) order, one configure decision
//! per instance, and notes on objects that play no part. Each license and instance is decided exactly as its Kratix
//! workflow decides it ([`super::license::route`], [`super::instance::configure`]).

use super::instance::{self, InstanceDecision};
use super::license::{RouteDecision, route_parts};
use crate::error::{InputError, ObjectRef};
use crate::input::{bounded_list, object_ref};
use crate::model::{INSTANCE_KIND, LICENSE_KIND};
use crate::rules::instance::{CallParts, Peers};
use crate::rules::routing::{Others, RouteInput};
use crate::rules::versions::Catalog;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

pub use crate::rules::limits::MAX_PREVIEW_OBJECTS as MAX_OBJECTS;

/// The input of a preview.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PreviewCall {
    /// Kubernetes objects of any kind; licenses and instances are used, others noted. Past [`MAX_OBJECTS`] the
    /// call is refused and the excess objects are read but not kept (they are `null` here).
    #[serde(default, deserialize_with = "objects_bounded")]
    pub objects: Vec<Value>,
    /// The measured player counts (`{"players": [...]}`).
    #[serde(default)]
    pub observations: Value,
    /// The time of the decision (RFC 3339).
    #[serde(default)]
    pub now: Option<String>,
    /// An operator's release catalog (`null`: the shipped one).
    #[serde(default)]
    pub catalog: Value,
}

fn objects_bounded<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<Value>, D::Error> {
    bounded_list(d, MAX_OBJECTS)
}

/// Something about the input that did not stop the preview.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Note {
    /// Stable machine code.
    pub code: String,
    /// One line.
    pub message: String,
    /// The object concerned.
    pub object: ObjectRef,
}

/// The answer to a [`PreviewCall`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PreviewDecision {
    /// One decision per license, in (namespace, name) order.
    pub licenses: Vec<RouteDecision>,
    /// One configure decision per instance, in (namespace, name) order.
    pub instances: Vec<InstanceDecision>,
    /// Objects that were skipped or refer to something missing.
    pub notes: Vec<Note>,
}

/// Decides every license in the objects.
pub fn preview(call: &PreviewCall) -> Result<PreviewDecision, Vec<InputError>> {
    if call.objects.len() > MAX_OBJECTS {
        return Err(vec![InputError::TooManyObjects { count: call.objects.len(), limit: MAX_OBJECTS }]);
    }
    let mut notes = Vec::new();
    let mut licenses: BTreeMap<(String, String), &Value> = BTreeMap::new();
    let mut instances: BTreeMap<(String, String), Vec<Value>> = BTreeMap::new();
    let mut errors = Vec::new();
    for object in &call.objects {
        let kind = object.get("kind").and_then(Value::as_str).unwrap_or_default();
        match kind {
            LICENSE_KIND => {
                let r = object_ref(object, LICENSE_KIND);
                if licenses.insert((r.namespace.clone(), r.name.clone()), object).is_some() {
                    errors.push(InputError::DuplicateObject { object: r });
                }
            }
            INSTANCE_KIND => {
                let r = object_ref(object, INSTANCE_KIND);
                let owner = object.pointer("/spec/licenseRef/name").and_then(Value::as_str).unwrap_or_default();
                instances.entry((r.namespace, owner.to_owned())).or_default().push(object.clone());
            }
            // A workload `foundry-<instance>`: read with its instance (the place its data is in).
            "Deployment"
                if object
                    .pointer("/metadata/name")
                    .and_then(Value::as_str)
                    .is_some_and(|n| n.starts_with("foundry-")) => {}
            other => {
                let r = object_ref(object, if other.is_empty() { "(no kind)" } else { other });
                notes.push(Note {
                    code: "SkippedObject".into(),
                    message: format!("{r} is not a {LICENSE_KIND} or {INSTANCE_KIND}; skipped"),
                    object: r,
                });
            }
        }
    }
    for ((namespace, owner), list) in &instances {
        if !licenses.contains_key(&(namespace.clone(), owner.clone())) {
            for object in list {
                let r = object_ref(object, INSTANCE_KIND);
                let message = if owner.is_empty() {
                    format!("{r} has no `spec.licenseRef.name`; it is not routed")
                } else {
                    format!("{r} names license `{owner}`, which is not in the input; it is not routed")
                };
                notes.push(Note { code: "OrphanInstance".into(), message, object: r });
            }
        }
    }
    if licenses.is_empty() && errors.is_empty() {
        errors.push(InputError::NoLicense);
    }

    // Each instance is configured as its own workflow would: with its license and the namespace's instances. The
    // namespace's instances are read, and the catalog loaded, once for all of them.
    let mut by_namespace: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for list in instances.values() {
        for object in list {
            by_namespace.entry(object_ref(object, INSTANCE_KIND).namespace).or_default().push(object.clone());
        }
    }
    let peers: BTreeMap<&str, Peers> =
        by_namespace.iter().map(|(ns, list)| (ns.as_str(), Peers::read(list, ns))).collect();
    let catalog = Catalog::load(&call.catalog);
    let mut instance_decisions = Vec::new();
    let mut ordered: Vec<(ObjectRef, &Value)> =
        instances.values().flatten().map(|o| (object_ref(o, INSTANCE_KIND), o)).collect();
    ordered.sort_by(|a, b| (&a.0.namespace, &a.0.name).cmp(&(&b.0.namespace, &b.0.name)));
    for (r, object) in ordered {
        let owner = object.pointer("/spec/licenseRef/name").and_then(Value::as_str).unwrap_or_default();
        // An instance whose license is not in the input is only noted (above), not configured.
        let (Some(license), Some(peers)) =
            (licenses.get(&(r.namespace.clone(), owner.to_owned())), peers.get(r.namespace.as_str()))
        else {
            continue;
        };
        // A running Deployment among the objects (as `kubectl get deployment -o yaml` gives it) is the workload
        // whose data place the instance must keep.
        let deployment = format!("foundry-{}", r.name);
        let workload = call
            .objects
            .iter()
            .find(|o| {
                o.get("kind").and_then(Value::as_str) == Some("Deployment")
                    && crate::input::namespace_of(o) == r.namespace
                    && o.pointer("/metadata/name").and_then(Value::as_str) == Some(deployment.as_str())
            })
            .unwrap_or(&Value::Null);
        let parts = CallParts { instance: object, license, now: call.now.as_deref(), workload };
        match instance::configure_among(parts, peers, &catalog, None) {
            Ok(d) => instance_decisions.push(d),
            Err(e) => push_unique(&mut errors, e),
        }
    }

    // Each license is routed as its workflow would route it once the instance workflows above have run: every
    // instance carries the status its own workflow writes (a workload that is configured, or why not).
    let decided: BTreeMap<(String, String), Value> = instance_decisions
        .iter()
        .map(|d| {
            let status = serde_json::to_value(&d.status).unwrap_or(Value::Null);
            ((d.instance.namespace.clone(), d.instance.name.clone()), status)
        })
        .collect();
    for list in instances.values_mut() {
        for object in list.iter_mut() {
            let r = object_ref(object, INSTANCE_KIND);
            if let (Some(Value::Object(written)), Some(map)) =
                (decided.get(&(r.namespace, r.name)), object.as_object_mut())
            {
                let status = map.entry("status").or_insert_with(|| Value::Object(Default::default()));
                if !status.is_object() {
                    *status = Value::Object(Default::default());
                }
                if let Some(status) = status.as_object_mut() {
                    for (k, v) in written {
                        status.insert(k.clone(), v.clone());
                    }
                }
            }
        }
    }
    let all_licenses: Vec<Value> = licenses.values().map(|l| (*l).clone()).collect();
    let all_instances: Vec<Value> = instances.values().flatten().cloned().collect();
    let mut decisions = Vec::new();
    for ((namespace, name), license) in &licenses {
        let input = RouteInput {
            license,
            instances: instances.get(&(namespace.clone(), name.clone())).map_or(&[], Vec::as_slice),
            observations: &call.observations,
            now: call.now.as_deref(),
            others: Some(Others { licenses: &all_licenses, instances: Some(&all_instances) }),
        };
        match route_parts(input) {
            Ok(d) => decisions.push(d),
            Err(e) => push_unique(&mut errors, e),
        }
    }
    if errors.is_empty() {
        Ok(PreviewDecision { licenses: decisions, instances: instance_decisions, notes })
    } else {
        Err(errors)
    }
}

/// Problems of the shared observations would repeat once per object: keep each once.
fn push_unique(errors: &mut Vec<InputError>, more: Vec<InputError>) {
    for err in more {
        if !errors.contains(&err) {
            errors.push(err);
        }
    }
}
