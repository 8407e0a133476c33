//! Admission review: should the cluster accept a change to a `FoundryLicense` or `FoundryInstance`?
//!
//! An admission engine (OPA, Kubewarden's `opa` mode, a webhook) hands over the AdmissionReview request as the
//! input and the related objects as `data`, in the layout kube-mgmt and Kubewarden use:
//! `data.kubernetes.foundrylicenses.<namespace>.<name>` and `data.kubernetes.foundryinstances.<namespace>.<name>`.
//! The answer (`api::admission`) is an AdmissionReview `response` (`uid`, `allowed`, `status{code, reason,
//! message, details}`).
//!
//! This module has no rules of its own about what a valid license or instance is. It builds the namespace as it
//! would be after the change and asks `rules::routing` what the pipeline would refuse; a problem the change
//! introduces denies it, a problem that was already there is only a warning (so fixing one thing is never
//! blocked by another). On top of that come the referential rules that only a change can break: an instance
//! needs its license, a license with instances cannot be deleted, and the instance a license routes to now
//! cannot be taken away from it (that would drop its players without the switch gate; schedule its deletion or
//! switch away first).

use crate::error::{Diagnostic, InputError, ObjectRef};
use crate::input::object_ref;
use crate::model::{DEFAULT_NAMESPACE, INSTANCE_KIND, LICENSE_KIND, SCHEDULED_DELETE_ANNOTATION};
use crate::rules::instance::{self, CallParts, Peers};
use crate::rules::routing::{claimed_hostnames, object_problems, routed_instance};
use crate::rules::versions::Catalog;
use crate::text::shorten;
use serde_json::Value;
use std::collections::BTreeSet;

/// Key of `data` holding the replicated objects (kube-mgmt's and Kubewarden's default).
pub const DATA_ROOT: &str = "kubernetes";
/// Resource name of licenses under [`DATA_ROOT`].
pub const LICENSE_RESOURCE: &str = "foundrylicenses";
/// Resource name of instances under [`DATA_ROOT`].
pub const INSTANCE_RESOURCE: &str = "foundryinstances";
/// Key of `data` holding an operator's release catalog (the shipped one when absent).
pub const CATALOG_KEY: &str = "foundryReleaseCatalog";

/// Why a change is refused although every object in it is valid: the cluster's state forbids it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum Refusal {
    #[error("{object} names license `{license}`, which does not exist in namespace `{}`", object.namespace)]
    LicenseNotFound { object: ObjectRef, license: String },
    #[error("{object} still has {count} instance{} ({names})", if *count == 1 { "" } else { "s" })]
    LicenseHasInstances { object: ObjectRef, count: usize, names: String },
    #[error(
        "{object} is the instance license `{license}` routes to now; removing it would drop its players without the switch gate"
    )]
    ActiveInstanceRemoved { object: ObjectRef, license: String },
    #[error("{object}: hostname `{hostname}` is already published by an older license")]
    HostnameClaimed { object: ObjectRef, hostname: String },
}

impl Refusal {
    fn to_diagnostic(&self) -> Diagnostic {
        let (code, object, path, help) = match self {
            Self::LicenseNotFound { object, .. } => (
                "LicenseNotFound",
                object,
                "spec.licenseRef.name",
                "create the FoundryLicense first, or name an existing one in `spec.licenseRef.name`".to_owned(),
            ),
            Self::LicenseHasInstances { object, .. } => (
                "LicenseHasInstances",
                object,
                "",
                "delete the license's FoundryInstances first, or move them to another license".to_owned(),
            ),
            Self::HostnameClaimed { object, .. } => (
                "HostnameClaimed",
                object,
                "metadata.name",
                "rename the instance, or give the license another base domain: one hostname is published by one \
                 license only"
                    .to_owned(),
            ),
            Self::ActiveInstanceRemoved { object, .. } => (
                "ActiveInstanceRemoved",
                object,
                "metadata.name",
                format!(
                    "switch the license to another instance (or none) first, or schedule the deletion with the \
                     annotation `{SCHEDULED_DELETE_ANNOTATION}`"
                ),
            ),
        };
        Diagnostic {
            code: code.to_owned(),
            message: self.to_string(),
            object: Some(object.clone()),
            path: path.to_owned(),
            help,
        }
    }
}

/// The licenses and instances of one namespace.
#[derive(Debug, Clone, Default)]
struct Namespace {
    licenses: Vec<Value>,
    instances: Vec<Value>,
}

impl Namespace {
    fn list(&mut self, kind: &str) -> &mut Vec<Value> {
        if kind == LICENSE_KIND { &mut self.licenses } else { &mut self.instances }
    }

    fn of_kind(&self, kind: &str) -> &[Value] {
        if kind == LICENSE_KIND { &self.licenses } else { &self.instances }
    }

    fn find<'a>(list: &'a [Value], name: &str) -> Option<&'a Value> {
        list.iter().find(|o| name_of(o) == name)
    }

    fn license(&self, name: &str) -> Option<&Value> {
        Self::find(&self.licenses, name)
    }

    fn upsert(&mut self, kind: &str, object: Value) {
        let list = self.list(kind);
        let name = name_of(&object).to_owned();
        list.retain(|o| name_of(o) != name);
        list.push(object);
        list.sort_by(|a, b| name_of(a).cmp(name_of(b)));
    }

    fn remove(&mut self, kind: &str, name: &str) {
        self.list(kind).retain(|o| name_of(o) != name);
    }
}

fn name_of(object: &Value) -> &str {
    object.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default()
}

fn license_ref_of(instance: &Value) -> Option<&str> {
    instance.pointer("/spec/licenseRef/name").and_then(Value::as_str)
}

/// Reads the objects of one kind and namespace from `data`.
fn replicated(data: Option<&Value>, resource: &str, namespace: &str) -> Result<Vec<Value>, InputError> {
    let invalid = |path: String, detail: String| InputError::InvalidData { path, detail };
    let mut path = DATA_ROOT.to_owned();
    let mut node = match data {
        Some(d) if !d.is_null() => d,
        _ => return Ok(Vec::new()),
    };
    for key in [DATA_ROOT, resource, namespace] {
        let Some(map) = node.as_object() else {
            return Err(invalid(path, "expected an object".into()));
        };
        match map.get(key) {
            Some(next) => node = next,
            None => return Ok(Vec::new()),
        }
        if key != DATA_ROOT {
            path = format!("{path}.{}", shorten(key));
        }
    }
    let Some(objects) = node.as_object() else {
        return Err(invalid(path, "expected an object of objects by name".into()));
    };
    let mut out = Vec::with_capacity(objects.len());
    for (name, object) in objects {
        let Some(map) = object.as_object() else {
            return Err(invalid(format!("{path}.{}", shorten(name)), "expected a Kubernetes object".into()));
        };
        let mut object = Value::Object(map.clone());
        fill_namespace(&mut object, namespace);
        out.push(object);
    }
    Ok(out)
}

/// The objects of one kind in every namespace but `except` from `data`.
fn replicated_elsewhere(data: Option<&Value>, resource: &str, except: &str) -> Result<Vec<Value>, InputError> {
    let namespaces: Vec<String> = data
        .and_then(|d| d.get(DATA_ROOT))
        .and_then(|r| r.get(resource))
        .and_then(Value::as_object)
        .map(|m| m.keys().filter(|ns| ns.as_str() != except).cloned().collect())
        .unwrap_or_default();
    let mut out = Vec::new();
    for ns in namespaces {
        out.extend(replicated(data, resource, &ns)?);
    }
    Ok(out)
}

/// The API server and kube-mgmt always set the namespace; a hand-written review may not.
fn fill_namespace(object: &mut Value, namespace: &str) {
    if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut)
        && meta.get("namespace").and_then(Value::as_str).is_none_or(str::is_empty)
    {
        meta.insert("namespace".into(), Value::String(namespace.to_owned()));
    }
}

/// What a change does, as the admission rules read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Change<'a> {
    /// A new or changed object (CREATE, UPDATE).
    Write(&'a Value),
    /// A removed object (DELETE).
    Delete,
}

/// The request under review, as the rules need it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Request<'a> {
    /// The kind of the object (`FoundryLicense` or `FoundryInstance`).
    pub(crate) kind: &'a str,
    /// What is done to it.
    pub(crate) change: Change<'a>,
    /// The object before the change, when the review carries it.
    pub(crate) old_object: Option<&'a Value>,
    /// The request's namespace.
    pub(crate) namespace: Option<&'a str>,
    /// The request's name.
    pub(crate) name: Option<&'a str>,
}

/// Reviews one request against the related objects in `data`: the problems the change introduces (denials), and
/// those that were there before it (warnings).
pub(crate) fn review(request: Request<'_>, data: Option<&Value>) -> Result<(Vec<Diagnostic>, Vec<String>), InputError> {
    let kind = request.kind;
    let changed = match request.change {
        Change::Delete => None,
        Change::Write(object) => Some(object.clone()),
    };
    let old = request.old_object.filter(|o| o.is_object());
    let namespace = request
        .namespace
        .map(str::to_owned)
        .or_else(|| changed.as_ref().or(old).map(|o| object_ref(o, kind).namespace))
        .filter(|ns| !ns.is_empty())
        .unwrap_or_else(|| DEFAULT_NAMESPACE.to_owned());
    let name =
        changed.as_ref().or(old).map(name_of).filter(|n| !n.is_empty()).or(request.name).unwrap_or_default().to_owned();

    let before = Namespace {
        licenses: replicated(data, LICENSE_RESOURCE, &namespace)?,
        instances: replicated(data, INSTANCE_RESOURCE, &namespace)?,
    };
    // What the object was: the review's old object, else the replicated one.
    let old = old.cloned().or_else(|| Namespace::find(before.of_kind(kind), &name).cloned());
    let mut after = before.clone();
    match changed.clone() {
        Some(mut object) => {
            fill_namespace(&mut object, &namespace);
            after.upsert(kind, object);
        }
        None => after.remove(kind, &name),
    }
    let object = ObjectRef::new(kind, &namespace, &shorten(&name));

    // The licenses whose routing the change touches.
    let mut licenses = BTreeSet::new();
    let new_owner = changed.as_ref().and_then(license_ref_of).map(str::to_owned);
    if kind == LICENSE_KIND {
        licenses.insert(name.clone());
    } else {
        licenses.extend(old.as_ref().and_then(license_ref_of).map(str::to_owned));
        licenses.extend(new_owner.clone());
    }

    let mut denials = Vec::new();
    let mut warnings = Vec::new();
    // Hostname claims: what the change publishes that an older license already publishes.
    let other_licenses = replicated_elsewhere(data, LICENSE_RESOURCE, &namespace)?;
    let other_instances = replicated_elsewhere(data, INSTANCE_RESOURCE, &namespace)?;
    let claims = |ns: &Namespace, license: &Value| -> Vec<(String, String)> {
        let mut all_licenses = other_licenses.clone();
        all_licenses.extend(ns.licenses.iter().cloned());
        let mut all_instances = other_instances.clone();
        all_instances.extend(ns.instances.iter().cloned());
        claimed_hostnames(license, &ns.instances, &all_licenses, &all_instances)
    };
    for license in &licenses {
        if let Some(now) = after.license(license) {
            let was = before.license(license).map(|b| claims(&before, b)).unwrap_or_default();
            for (hostname, instance) in claims(&after, now) {
                let relevant = kind == LICENSE_KIND || instance == name;
                if relevant && !was.iter().any(|(h, _)| *h == hostname) {
                    let object = ObjectRef::new(INSTANCE_KIND, &namespace, &shorten(&instance));
                    denials.push(Refusal::HostnameClaimed { object, hostname: shorten(&hostname) }.to_diagnostic());
                }
            }
        }
        match (before.license(license), after.license(license)) {
            (_, Some(now)) => {
                let was = before.license(license).map(|b| object_problems(b, &before.instances)).unwrap_or_default();
                for problem in object_problems(now, &after.instances) {
                    if was.contains(&problem) {
                        warnings.push(format!("already refused by the pipeline: {}: {problem}", problem.code()));
                    } else {
                        denials.push(problem.to_diagnostic());
                    }
                }
            }
            (_, None) if kind == INSTANCE_KIND && new_owner.as_deref() == Some(license.as_str()) => {
                denials.push(
                    Refusal::LicenseNotFound { object: object.clone(), license: shorten(license) }.to_diagnostic(),
                );
            }
            (Some(_), None) => {
                let users: Vec<&str> = after
                    .instances
                    .iter()
                    .filter(|i| license_ref_of(i) == Some(license.as_str()))
                    .map(name_of)
                    .collect();
                if !users.is_empty() {
                    let mut names: Vec<String> = users.iter().take(5).map(|n| format!("`{}`", shorten(n))).collect();
                    if users.len() > 5 {
                        names.push("...".into());
                    }
                    denials.push(
                        Refusal::LicenseHasInstances {
                            object: object.clone(),
                            count: users.len(),
                            names: names.join(", "),
                        }
                        .to_diagnostic(),
                    );
                }
            }
            (None, None) => {}
        }
        if kind == INSTANCE_KIND
            && let Some(was) = before.license(license)
            && routed_instance(was, &before.instances).as_deref() == Some(name.as_str())
        {
            let still_there =
                Namespace::find(&after.instances, &name).is_some_and(|i| license_ref_of(i) == Some(license.as_str()));
            if !still_there {
                denials.push(
                    Refusal::ActiveInstanceRemoved { object: object.clone(), license: shorten(license) }
                        .to_diagnostic(),
                );
            }
        }
    }
    // The instance's own rules (version, storage, volume modes, resources): what its configure workflow would
    // refuse. As above, only what the change introduces is denied.
    if kind == INSTANCE_KIND
        && changed.is_some()
        && let Some(changed) = Namespace::find(&after.instances, &name).cloned()
    {
        let owner = license_ref_of(&changed).unwrap_or_default().to_owned();
        let catalog = data.and_then(|d| d.get(CATALOG_KEY)).cloned().unwrap_or(Value::Null);
        let workflow_problems = |instance: &Value, ns: &Namespace| -> Vec<InputError> {
            let Some(license) = ns.license(&owner) else { return Vec::new() };
            // The workflow's rules do not depend on the time; it only stamps conditions with it.
            let call = CallParts { instance, license, now: Some("1970-01-01T00:00:00Z"), workload: &Value::Null };
            let peers = Peers::read(&ns.instances, &namespace);
            instance::configure_among(call, &peers, &Catalog::load(&catalog), None).err().unwrap_or_default()
        };
        let was = old.as_ref().map(|o| workflow_problems(o, &before)).unwrap_or_default();
        for problem in workflow_problems(&changed, &after) {
            let already =
                was.contains(&problem) || denials.iter().any(|d| d.code == problem.code() && d.path == problem.path());
            if already {
                warnings.push(format!("already refused by the pipeline: {}: {problem}", problem.code()));
            } else {
                denials.push(problem.to_diagnostic());
            }
        }
    }
    Ok((denials, warnings))
}

/// The codes of refusals the cluster's state causes (every object in the change is valid).
pub(crate) const REFUSAL_CODES: [&str; 4] =
    ["LicenseNotFound", "LicenseHasInstances", "ActiveInstanceRemoved", "HostnameClaimed"];
