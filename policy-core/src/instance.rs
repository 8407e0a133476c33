//! The instance workflows: what configuring or deleting a `FoundryInstance` decides.
//!
//! Configuring an instance decides, in order: its license (it must exist), admission (the license's
//! `restrictions.maxInstances`), its Foundry version (catalog, allowed versions, upgrade rules), its storage and
//! volume modes, its resources, and then renders its workload ([`crate::workload`]). Settings the instance does
//! not give come from the license's `spec.defaults`. Every run also asks the license to re-route (Kratix re-runs a
//! license only when its spec or a reconciliation label changes, so the host labels it): that is how a new
//! instance gets its route at once and a deleted one loses it.
//!
//! Deleting an instance only re-routes its license; its data stays (a PVC with `deletePolicy: delete` is removed
//! by the GitOps agent with the rest of the instance's objects). The delete workflow reads as little of the
//! instance as it can, so that an instance with a broken spec can always be deleted.

use crate::controls;
use crate::error::{InputError, ObjectRef, Rule, from_value};
use crate::manifests::OutputFile;
use crate::model::{FoundryInstance, FoundryLicense, INSTANCE_KIND, LICENSE_KIND, Resources};
use crate::routing::{Warning, check_identity, object_ref, parse_observations};
use crate::time::{Timestamp, shorten};
use crate::versions::{self, Catalog, VersionRequest};
use crate::volumes::{self, StorageRequest};
use crate::workload::{self, ComputeResources, WorkloadPlan};
use crate::{names, yaml};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

/// The input of the instance workflows.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InstanceCall {
    /// The `FoundryInstance` object, as the API server returns it (status included).
    #[serde(default)]
    pub instance: Value,
    /// The license it names, or `null` when that license does not exist.
    #[serde(default)]
    pub license: Value,
    /// The `FoundryInstance`s of the namespace (this one may be among them); used for admission, copies and
    /// shares.
    #[serde(default)]
    pub instances: Vec<Value>,
    /// The time of the decision (`now`).
    #[serde(default)]
    pub observations: Value,
    /// An operator's release catalog, replacing or extending the shipped one (`null`: the shipped one).
    #[serde(default)]
    pub catalog: Value,
    /// The image of the player monitor sidecar (default [`workload::RUNNER_IMAGE`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runner_image: Option<String>,
}

/// The parts of an [`InstanceCall`] one instance's decision reads, borrowed (a preview decides many instances
/// against the same license and observations without copying them).
#[derive(Clone, Copy)]
pub(crate) struct CallParts<'a> {
    pub(crate) instance: &'a Value,
    pub(crate) license: &'a Value,
    pub(crate) observations: &'a Value,
    pub(crate) runner_image: Option<&'a str>,
}

impl InstanceCall {
    fn parts(&self) -> CallParts<'_> {
        CallParts {
            instance: &self.instance,
            license: &self.license,
            observations: &self.observations,
            runner_image: self.runner_image.as_deref(),
        }
    }
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

fn parse_now(observations: &Value) -> Result<Timestamp, InputError> {
    let o = parse_observations(observations)?;
    let text = o.now.ok_or_else(|| InputError::InvalidObservation {
        path: "now".into(),
        detail: "missing field `now`: the policy has no clock, so the caller must give the time".into(),
    })?;
    Timestamp::parse(&text).map_err(|e| InputError::InvalidObservation { path: "now".into(), detail: e.to_string() })
}

/// The license of a call, checked against the instance's reference.
fn license_of(
    call: CallParts<'_>,
    object: &ObjectRef,
    wanted: &str,
) -> Result<Option<(ObjectRef, FoundryLicense)>, InputError> {
    if call.license.is_null() {
        return Ok(None);
    }
    let r = object_ref(call.license, LICENSE_KIND);
    if r.name != wanted || r.namespace != object.namespace {
        return Err(InputError::InvalidField {
            object: object.clone(),
            path: "license".into(),
            detail: format!(
                "the call carries license `{r}`, but the instance names `{wanted}` in `{}`",
                object.namespace
            ),
        });
    }
    let license: FoundryLicense = from_value(call.license, &r)?;
    check_identity(&license.kind, &license.api_version, &license.metadata, &r, LICENSE_KIND)?;
    Ok(Some((r, license)))
}

/// A license's name and its `restrictions.maxInstances`.
type AdmissionKey = (String, Option<u32>);

/// The `FoundryInstance`s of one namespace, read once for every instance decided against them: those that parse
/// and are not being deleted, by license, then by name (the first of a duplicated name). A broken one fails its
/// own workflow, not its neighbours'.
pub(crate) struct Peers {
    by_license: BTreeMap<String, Vec<FoundryInstance>>,
    /// The admitted names per license and limit, computed once (a preview decides every instance of a license).
    admitted: RefCell<BTreeMap<AdmissionKey, Rc<BTreeSet<String>>>>,
}

impl Peers {
    pub(crate) fn read(instances: &[Value], namespace: &str) -> Self {
        let mut by_license: BTreeMap<String, Vec<FoundryInstance>> = BTreeMap::new();
        for value in instances {
            let Ok(i) = FoundryInstance::deserialize(value) else { continue };
            if i.metadata.namespace() == namespace && i.metadata.deletion_timestamp.is_none() {
                by_license.entry(i.spec.license_ref.name.clone()).or_default().push(i);
            }
        }
        for list in by_license.values_mut() {
            list.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
            list.dedup_by(|a, b| a.metadata.name == b.metadata.name);
        }
        Self { by_license, admitted: RefCell::default() }
    }

    /// The instances of `license` (`me` may be among them, perhaps as an older copy).
    fn of(&self, license: &str) -> &[FoundryInstance] {
        self.by_license.get(license).map_or(&[], Vec::as_slice)
    }

    /// Whether the license's `restrictions.maxInstances` admits `me` among its instances.
    fn admits(&self, me: &FoundryInstance, max: Option<u32>) -> bool {
        let license = &me.spec.license_ref.name;
        let members = self.of(license);
        let name = &me.metadata.name;
        // The cached set holds when `me` is already among the members as they are (the usual case).
        let known = members
            .binary_search_by(|m| m.metadata.name.as_str().cmp(name))
            .ok()
            .and_then(|i| members.get(i))
            .is_some_and(|m| m.metadata.creation_timestamp == me.metadata.creation_timestamp);
        if !known {
            let others = members.iter().filter(|m| &m.metadata.name != name).chain(std::iter::once(me));
            return controls::admitted(
                others.map(|i| (i.metadata.name.as_str(), i.metadata.creation_timestamp.as_deref())),
                max,
            )
            .contains(name);
        }
        let key = (license.clone(), max);
        let cached = self.admitted.borrow().get(&key).cloned();
        let set = cached.unwrap_or_else(|| {
            let set = Rc::new(controls::admitted(
                members.iter().map(|i| (i.metadata.name.as_str(), i.metadata.creation_timestamp.as_deref())),
                max,
            ));
            self.admitted.borrow_mut().insert(key, Rc::clone(&set));
            set
        });
        set.contains(name)
    }
}

/// How the license currently routes the instance, from the license's status.
fn route_state(name: &str, license: Option<&Value>) -> &'static str {
    let entry = license
        .and_then(|l| l.get("status"))
        .and_then(|s| s.get("registeredInstances"))
        .and_then(Value::as_array)
        .and_then(|r| r.iter().find(|i| i.get("name").and_then(Value::as_str) == Some(name)));
    match entry.and_then(|e| e.get("state")).and_then(Value::as_str) {
        Some("active") => "active",
        Some("standby") => "standby",
        _ => "unknown",
    }
}

fn resources(
    instance: &FoundryInstance,
    license: &FoundryLicense,
    object: &ObjectRef,
) -> Result<ComputeResources, InputError> {
    let own = instance.spec.resources.clone().unwrap_or_default();
    let inherited: Resources = license.spec.defaults.as_ref().and_then(|d| d.resources.clone()).unwrap_or_default();
    let base = ComputeResources::default();
    let pick = |mine: &Option<String>, theirs: &Option<String>, fallback: &String, field: &str| {
        let value = mine.clone().or_else(|| theirs.clone()).unwrap_or_else(|| fallback.clone());
        if names::is_quantity(&value) {
            Ok(value)
        } else {
            Err(InputError::Refused {
                object: object.clone(),
                path: format!("spec.resources.{field}"),
                rule: Rule::InvalidQuantity,
                detail: format!("`{}` is not a resource quantity", shorten(&value)),
            })
        }
    };
    Ok(ComputeResources {
        cpu: pick(&own.cpu, &inherited.cpu, &base.cpu, "cpu")?,
        memory: pick(&own.memory, &inherited.memory, &base.memory, "memory")?,
        cpu_limit: pick(&own.cpu_limit, &inherited.cpu_limit, &base.cpu_limit, "cpuLimit")?,
        memory_limit: pick(&own.memory_limit, &inherited.memory_limit, &base.memory_limit, "memoryLimit")?,
    })
}

/// Secret names and keys must be valid before they go into a manifest.
fn check_secret_ref(object: &ObjectRef, path: &str, name: &str, key: &str) -> Result<(), InputError> {
    let key_ok = !key.is_empty()
        && key.len() <= 253
        && key.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if names::is_dns1123_subdomain(name) && key_ok {
        Ok(())
    } else {
        Err(InputError::InvalidField {
            object: object.clone(),
            path: path.into(),
            detail: format!("`{}`/`{}` is not a valid Secret name and key", shorten(name), shorten(key)),
        })
    }
}

/// The decision being built: the status keys the instance owns, with their values for this run, and what else the
/// run writes and asks for.
struct Outcome {
    reroute: Option<ObjectRef>,
    warnings: Vec<Warning>,
    manifests: Vec<(String, Value)>,
    admitted: Option<bool>,
    version: Value,
    version_spec: Value,
    image: Value,
    storage: Value,
    volumes: Value,
    ready: (bool, &'static str, String),
}

impl Outcome {
    fn empty(reroute: Option<ObjectRef>, reason: &'static str, message: String, admitted: Option<bool>) -> Self {
        Self {
            reroute,
            warnings: Vec::new(),
            manifests: Vec::new(),
            admitted,
            version: Value::Null,
            version_spec: Value::Null,
            image: Value::Null,
            storage: Value::Null,
            volumes: Value::Null,
            ready: (false, reason, message),
        }
    }
}

fn finish(
    object: &ObjectRef,
    instance: &FoundryInstance,
    call: CallParts<'_>,
    now: Timestamp,
    outcome: Outcome,
) -> InstanceDecision {
    let Outcome { reroute, warnings, manifests, admitted, version, version_spec, image, storage, volumes, ready } =
        outcome;
    let license_name = &instance.spec.license_ref.name;
    let state = route_state(&instance.metadata.name, (!call.license.is_null()).then_some(call.license));
    let (ready, reason, message) = ready;
    let mut condition = json!({
        "type": "Ready",
        "status": if ready { "True" } else { "False" },
        "reason": reason,
        "message": message,
        "lastTransitionTime": now.to_string(),
    });
    // Keep the transition time while the condition holds, so reruns write identical bytes.
    let previous = call
        .instance
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|c| c.iter().find(|c| c.get("type").and_then(Value::as_str) == Some("Ready")));
    if let (Some(prev), Some(c)) = (previous, condition.as_object_mut()) {
        let same = prev.get("status") == c.get("status");
        if let Some(t) = prev.get("lastTransitionTime").and_then(Value::as_str).and_then(|t| Timestamp::parse(t).ok())
            && same
        {
            c.insert("lastTransitionTime".into(), json!(t.to_string()));
        }
    }
    if let (Some(g), Some(c)) = (instance.metadata.generation, condition.as_object_mut()) {
        c.insert("observedGeneration".into(), json!(g));
    }
    let summary = match &version {
        Value::String(v) => format!("Foundry {v}; license {license_name}; route: {state}"),
        _ => format!("{message}; route: {state}"),
    };
    let status = json!({
        "license": license_name,
        "routeState": state,
        "admitted": admitted,
        "resolvedVersion": version,
        "resolvedFrom": version_spec,
        "image": image,
        "storage": storage,
        "volumes": volumes,
        "warnings": warnings.iter().map(|w| json!({"code": w.code, "message": w.message})).collect::<Vec<_>>(),
        "conditions": [condition],
        "message": summary,
        // A failed run publishes why here; a good run clears it.
        "inputErrors": [],
    });
    let files = manifests
        .iter()
        .map(|(path, object)| OutputFile { path: path.clone(), content: yaml::to_yaml(object) })
        .collect();
    InstanceDecision {
        instance: object.clone(),
        reroute,
        warnings,
        status_yaml: yaml::to_yaml(&status),
        status,
        manifests: manifests.into_iter().map(|(_, m)| m).collect(),
        files,
    }
}

/// Decides the configure workflow of an instance.
pub fn configure(call: &InstanceCall) -> Result<InstanceDecision, Vec<InputError>> {
    let namespace = object_ref(&call.instance, INSTANCE_KIND).namespace;
    configure_among(call.parts(), &Peers::read(&call.instances, &namespace), &Catalog::load(&call.catalog))
}

/// [`configure`] with the namespace's instances already read and the catalog already loaded (the call's
/// `instances` and `catalog` are not read again), so that deciding many instances costs each one only its own work.
pub(crate) fn configure_among(
    call: CallParts<'_>,
    peers: &Peers,
    catalog: &Result<Catalog, InputError>,
) -> Result<InstanceDecision, Vec<InputError>> {
    let object = object_ref(call.instance, INSTANCE_KIND);
    if call.instance.is_null() {
        return Err(vec![InputError::MissingField {
            object,
            path: String::new(),
            detail: "missing field `instance`".into(),
        }]);
    }
    let instance: FoundryInstance = from_value(call.instance, &object).map_err(|e| vec![e])?;
    check_identity(&instance.kind, &instance.api_version, &instance.metadata, &object, INSTANCE_KIND)
        .map_err(|e| vec![e])?;
    let mut errors = Vec::new();
    if let Some(detail) = names::instance_name_problem(&instance.metadata.name) {
        errors.push(InputError::InvalidInstanceName {
            object: object.clone(),
            name: shorten(&instance.metadata.name),
            detail,
        });
    }
    let license_name = instance.spec.license_ref.name.clone();
    if license_name.is_empty() {
        errors.push(InputError::MissingField {
            object: object.clone(),
            path: "spec.licenseRef.name".into(),
            detail: "the license reference has no name".into(),
        });
    }
    let now = parse_now(call.observations).map_err(|e| errors.push(e)).ok();
    let license = license_of(call, &object, &license_name).map_err(|e| errors.push(e)).ok().flatten();
    let (Some(now), true) = (now, errors.is_empty()) else { return Err(errors) };
    let namespace = object.namespace.clone();

    let Some((license_ref, license)) = license else {
        let warning = Warning {
            code: "LicenseNotFound".into(),
            message: format!(
                "license `{}` does not exist in namespace `{namespace}`; the instance gets no workload until it does",
                shorten(&license_name)
            ),
        };
        let mut outcome = Outcome::empty(None, "LicenseNotFound", warning.message.clone(), None);
        outcome.warnings.push(warning);
        return Ok(finish(&object, &instance, call, now, outcome));
    };

    let max = license.spec.restrictions.as_ref().and_then(|r| r.max_instances);
    if !peers.admits(&instance, max) {
        let warning = Warning {
            code: "RefusedInstanceLimit".into(),
            message: format!(
                "license `{}` admits at most {} instances (the oldest first); this one gets no workload and cannot be \
                 active",
                license_ref.name,
                max.unwrap_or(0)
            ),
        };
        let mut outcome =
            Outcome::empty(Some(license_ref), "RefusedInstanceLimit", warning.message.clone(), Some(false));
        outcome.warnings.push(warning);
        return Ok(finish(&object, &instance, call, now, outcome));
    }

    let defaults = license.spec.defaults.clone().unwrap_or_default();
    let (version_spec, version_path) = match (&instance.spec.foundry_version, &defaults.foundry_version) {
        (Some(v), _) => (v.clone(), "spec.foundryVersion"),
        (None, Some(v)) => (v.clone(), "license spec.defaults.foundryVersion"),
        (None, None) => ("latest".to_owned(), "spec.foundryVersion"),
    };
    let status = call.instance.get("status");
    let resolved = catalog.as_ref().map_err(Clone::clone).and_then(|catalog| {
        let allowed = license.spec.restrictions.as_ref().map(|r| r.allowed_versions.clone()).unwrap_or_default();
        let request = VersionRequest {
            object: &object,
            path: version_path,
            spec: &version_spec,
            allowed: &allowed,
            previous: versions::previous_version(status),
            policy: instance.spec.update_policy.unwrap_or_default(),
            allow_generation_upgrade: instance.spec.allow_generation_upgrade,
        };
        versions::resolve(&request, catalog)
    });
    let active = call.license.pointer("/status/activeInstance").and_then(Value::as_str).filter(|a| !a.is_empty());
    let storage = volumes::plan(&StorageRequest {
        instance: &instance,
        object: &object,
        license: Some(&license.spec),
        members: peers.of(&license_ref.name),
        active,
        previous: status.and_then(|s| s.get("volumes")),
    });
    let compute = resources(&instance, &license, &object);
    let mut secret_checks = vec![check_secret_ref(
        &object,
        "license spec.licenseSecretRef",
        &license.spec.license_secret_ref.name,
        &license.spec.license_secret_ref.key,
    )];
    if let Some(c) = &license.spec.credentials_secret_ref {
        secret_checks.push(check_secret_ref(&object, "license spec.credentialsSecretRef", &c.name, &c.username_key));
        secret_checks.push(check_secret_ref(&object, "license spec.credentialsSecretRef", &c.name, &c.password_key));
    }
    if let Some(a) = &instance.spec.admin_password_secret_ref {
        secret_checks.push(check_secret_ref(&object, "spec.adminPasswordSecretRef", &a.name, &a.key));
    }
    let (resolved, storage, compute) = match (resolved, storage, compute) {
        (Ok(r), Ok(s), Ok(c)) if secret_checks.iter().all(Result::is_ok) => (r, s, c),
        (r, s, c) => {
            let mut errors: Vec<InputError> = [r.err(), s.err(), c.err()].into_iter().flatten().collect();
            errors.extend(secret_checks.into_iter().filter_map(Result::err));
            return Err(errors);
        }
    };

    let base_domain = license
        .spec
        .gateway
        .as_ref()
        .and_then(|g| g.base_domain.clone())
        .or_else(|| license.spec.base_domain.clone())
        .filter(|d| names::base_domain_problem(d).is_none());
    let plan = WorkloadPlan {
        namespace: &namespace,
        instance: &instance.metadata.name,
        license: &license_ref.name,
        image: &resolved.image,
        release: resolved.release,
        hostname: base_domain.map(|d| format!("{}.{d}", instance.metadata.name)),
        proxy_ssl: instance.spec.proxy_ssl.or(defaults.proxy_ssl).unwrap_or(true),
        proxy_port: instance.spec.proxy_port.or(defaults.proxy_port).unwrap_or(443),
        resources: &compute,
        license_secret: &license.spec.license_secret_ref,
        credentials: license.spec.credentials_secret_ref.as_ref(),
        admin_key: instance.spec.admin_password_secret_ref.as_ref(),
        storage: &storage,
        runner_image: call.runner_image.unwrap_or(workload::RUNNER_IMAGE),
    };
    let manifests = workload::manifests(&plan);
    let mut warnings = resolved.warnings.clone();
    warnings.extend(storage.warnings.iter().cloned());
    let outcome = Outcome {
        reroute: Some(license_ref.clone()),
        warnings,
        manifests,
        admitted: Some(true),
        version: json!(resolved.release.to_string()),
        version_spec: json!(version_spec),
        image: json!(resolved.image),
        storage: storage.status(),
        volumes: storage.volumes_status(),
        ready: (true, "Configured", format!("Foundry {} runs under license `{}`", resolved.release, license_ref.name)),
    };
    Ok(finish(&object, &instance, call, now, outcome))
}

/// Decides the delete workflow of an instance: its license re-routes without it; its data is kept.
pub fn delete(call: &InstanceCall) -> Result<InstanceDecision, Vec<InputError>> {
    let object = object_ref(&call.instance, INSTANCE_KIND);
    if !call.instance.is_object() {
        return Err(vec![InputError::MissingField {
            object,
            path: String::new(),
            detail: "missing field `instance`".into(),
        }]);
    }
    let now = parse_now(&call.observations).map_err(|e| vec![e])?;
    let license_name = call.instance.pointer("/spec/licenseRef/name").and_then(Value::as_str).unwrap_or_default();
    let reroute = match &call.license {
        Value::Null => None,
        license => {
            let r = object_ref(license, LICENSE_KIND);
            (r.name == license_name && r.namespace == object.namespace).then_some(r)
        }
    };
    // Only the identity is read, so a broken spec never blocks a deletion.
    let instance = FoundryInstance {
        api_version: String::new(),
        kind: String::new(),
        metadata: crate::model::ObjectMeta { name: object.name.clone(), ..Default::default() },
        spec: crate::model::InstanceSpec {
            license_ref: crate::model::LocalRef { name: license_name.to_owned() },
            foundry_version: None,
            resources: None,
            proxy_ssl: None,
            proxy_port: None,
            admin_password_secret_ref: None,
            storage: None,
            allow_generation_upgrade: false,
            update_policy: None,
        },
    };
    let outcome = Outcome::empty(reroute, "Deleting", "the instance is being deleted; its data is kept".into(), None);
    Ok(finish(&object, &instance, call.parts(), now, outcome))
}
