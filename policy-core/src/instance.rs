//! The instance workflows: what configuring or deleting a `FoundryInstance` decides.
//!
//! An instance belongs to the license its `spec.licenseRef.name` names, in its namespace. Every configure and
//! delete run of an instance asks that license to re-route (Kratix re-runs a license only when its spec or a
//! reconciliation label changes, so the host labels it), which is how a new instance gets its route at once and a
//! deleted one loses it. The instance's status says which license it runs under and how the license routes it.

use crate::error::{InputError, ObjectRef, from_value};
use crate::manifests::OutputFile;
use crate::model::{FoundryInstance, INSTANCE_KIND, LICENSE_KIND};
use crate::routing::{Warning, check_identity, object_ref, parse_observations};
use crate::time::{Timestamp, shorten};
use crate::{names, yaml};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The input of the instance workflows.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InstanceCall {
    /// The `FoundryInstance` object, as the API server returns it.
    #[serde(default)]
    pub instance: Value,
    /// The license it names, or `null` when that license does not exist.
    #[serde(default)]
    pub license: Value,
    /// The time of the decision (`now`).
    #[serde(default)]
    pub observations: Value,
}

/// The answer of an instance workflow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceDecision {
    /// The instance decided for.
    pub instance: ObjectRef,
    /// The license the host must ask to re-route, when it exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reroute: Option<ObjectRef>,
    /// What the owner should know.
    pub warnings: Vec<Warning>,
    /// The instance status to write (every owned key).
    pub status: Value,
    /// The manifests to write, in file order.
    pub manifests: Vec<Value>,
    /// The exact files of the Kratix output directory.
    pub files: Vec<OutputFile>,
    /// The exact content of `status.yaml`.
    pub status_yaml: String,
}

/// Everything both workflows check first.
struct Parsed {
    instance: FoundryInstance,
    object: ObjectRef,
    license: Option<ObjectRef>,
    license_status: Option<Value>,
    now: Timestamp,
}

fn parse(call: &InstanceCall) -> Result<Parsed, Vec<InputError>> {
    let object = object_ref(&call.instance, INSTANCE_KIND);
    if call.instance.is_null() {
        return Err(vec![InputError::MissingField {
            object,
            path: String::new(),
            detail: "missing field `instance`".into(),
        }]);
    }
    let mut errors = Vec::new();
    let instance: FoundryInstance = from_value(&call.instance, &object).map_err(|e| vec![e])?;
    check_identity(&instance.kind, &instance.api_version, &instance.metadata, &object, INSTANCE_KIND)
        .map_err(|e| vec![e])?;
    if let Some(detail) = names::instance_name_problem(&instance.metadata.name) {
        errors.push(InputError::InvalidInstanceName {
            object: object.clone(),
            name: shorten(&instance.metadata.name),
            detail,
        });
    }
    if instance.spec.license_ref.name.is_empty() {
        errors.push(InputError::MissingField {
            object: object.clone(),
            path: "spec.licenseRef.name".into(),
            detail: "the license reference has no name".into(),
        });
    }
    let now = parse_observations(&call.observations).and_then(|o| {
        let text = o.now.ok_or_else(|| InputError::InvalidObservation {
            path: "now".into(),
            detail: "missing field `now`: the policy has no clock, so the caller must give the time".into(),
        })?;
        Timestamp::parse(&text)
            .map_err(|e| InputError::InvalidObservation { path: "now".into(), detail: e.to_string() })
    });
    let now = match now {
        Ok(now) => Some(now),
        Err(e) => {
            errors.push(e);
            None
        }
    };

    let (license, license_status) = match &call.license {
        Value::Null => (None, None),
        license => {
            let r = object_ref(license, LICENSE_KIND);
            if r.name != instance.spec.license_ref.name || r.namespace != object.namespace {
                errors.push(InputError::InvalidField {
                    object: object.clone(),
                    path: "license".into(),
                    detail: format!(
                        "the call carries license `{}`, but the instance names `{}` in `{}`",
                        r, instance.spec.license_ref.name, object.namespace
                    ),
                });
            }
            (Some(r), license.get("status").cloned())
        }
    };
    match (now, errors.is_empty()) {
        (Some(now), true) => Ok(Parsed { instance, object, license, license_status, now }),
        _ => Err(errors),
    }
}

/// How the license currently routes the instance, from the license's status.
fn route_state(name: &str, license_status: Option<&Value>) -> &'static str {
    let Some(status) = license_status else { return "unknown" };
    let registered = status.get("registeredInstances").and_then(Value::as_array);
    match registered.and_then(|r| r.iter().find(|i| i.get("name").and_then(Value::as_str) == Some(name))) {
        Some(entry) => match entry.get("state").and_then(Value::as_str) {
            Some("active") => "active",
            Some("standby") => "standby",
            _ => "unknown",
        },
        None => "unknown",
    }
}

fn finish(p: &Parsed, warnings: Vec<Warning>, manifests: Vec<(String, Value)>) -> InstanceDecision {
    let license_name = &p.instance.spec.license_ref.name;
    let state = route_state(&p.instance.metadata.name, p.license_status.as_ref());
    let (ready, reason, message) = match (&p.license, warnings.first()) {
        (None, _) => (false, "LicenseNotFound", format!("license `{license_name}` does not exist in this namespace")),
        (Some(_), Some(w)) => (false, "Warning", w.message.clone()),
        (Some(_), None) => (true, "Configured", format!("runs under license `{license_name}`; route: {state}")),
    };
    let previous = p.instance.metadata.generation;
    let mut condition = json!({
        "type": "Ready",
        "status": if ready { "True" } else { "False" },
        "reason": reason,
        "message": message,
        "lastTransitionTime": p.now.to_string(),
    });
    if let (Some(g), Some(c)) = (previous, condition.as_object_mut()) {
        c.insert("observedGeneration".into(), json!(g));
    }
    let status = json!({
        "license": license_name,
        "routeState": state,
        "warnings": warnings.iter().map(|w| json!({"code": w.code, "message": w.message})).collect::<Vec<_>>(),
        "conditions": [condition],
        "message": format!("license: {license_name}; route: {state}"),
        // A failed run publishes why here; a good run clears it.
        "inputErrors": [],
    });
    let files = manifests
        .iter()
        .map(|(path, object)| OutputFile { path: path.clone(), content: yaml::to_yaml(object) })
        .collect();
    InstanceDecision {
        instance: p.object.clone(),
        reroute: p.license.clone(),
        warnings,
        status_yaml: yaml::to_yaml(&status),
        status,
        manifests: manifests.into_iter().map(|(_, m)| m).collect(),
        files,
    }
}

fn license_warnings(p: &Parsed) -> Vec<Warning> {
    match &p.license {
        Some(_) => Vec::new(),
        None => vec![Warning {
            code: "LicenseNotFound".into(),
            message: format!(
                "license `{}` does not exist in namespace `{}`; the instance is not routed until it does",
                shorten(&p.instance.spec.license_ref.name),
                p.object.namespace
            ),
        }],
    }
}

/// Decides the configure workflow of an instance.
pub fn configure(call: &InstanceCall) -> Result<InstanceDecision, Vec<InputError>> {
    let p = parse(call)?;
    let warnings = license_warnings(&p);
    Ok(finish(&p, warnings, Vec::new()))
}

/// Decides the delete workflow of an instance: its license re-routes without it. Its data is kept.
pub fn delete(call: &InstanceCall) -> Result<InstanceDecision, Vec<InputError>> {
    let p = parse(call)?;
    Ok(finish(&p, Vec::new(), Vec::new()))
}
