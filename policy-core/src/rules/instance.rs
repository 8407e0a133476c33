//! The instance workflows: what configuring or deleting a `FoundryInstance` decides.
//!
//! Configuring an instance decides, in order: its license (it must exist), admission (the license's
//! `restrictions.maxInstances`), its Foundry version (catalog, allowed versions, upgrade rules), its storage and
//! volume modes, and its resources; `render::workload` then renders its workload. Settings the instance does
//! not give come from the license's `spec.defaults`. Every run also asks the license to re-route (Kratix re-runs a
//! license only when its spec or a reconciliation label changes, so the host labels it): that is how a new
//! instance gets its route at once and a deleted one loses it.
//!
//! Deleting an instance only re-routes its license; its data stays (a PVC with `deletePolicy: delete` is removed
//! by the GitOps agent with the rest of the instance's objects). The delete workflow reads as little of the
//! instance as it can, so that an instance with a broken spec can always be deleted.

use crate::error::{InputError, ObjectRef, Rule};
use crate::input::{check_identity, from_value, object_ref, parse_now};
use crate::model::{AdminKeyRef, FoundryInstance, FoundryLicense, INSTANCE_KIND, LICENSE_KIND, Resources, Warning};
use crate::names;
use crate::rules::limits;
use crate::rules::versions::{self, Catalog, Release, VersionRequest};
use crate::rules::volumes::{self, StoragePlan, StorageRequest};
use crate::text::shorten;
use crate::time::Timestamp;
use serde::Deserialize;
use serde_json::Value;
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

/// The parts of an instance workflow's call one instance's decision reads, borrowed (a preview decides many
/// instances against the same license without copying them).
#[derive(Clone, Copy)]
pub(crate) struct CallParts<'a> {
    /// The `FoundryInstance` object.
    pub(crate) instance: &'a Value,
    /// The license it names, or `null` when that license does not exist.
    pub(crate) license: &'a Value,
    /// The time of the decision.
    pub(crate) now: Option<&'a str>,
    /// The instance's running Deployment (`null`: none known).
    pub(crate) workload: &'a Value,
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

/// The image of `host-runner`: the Promises' pipeline image and each instance's player monitor sidecar.
pub const RUNNER_IMAGE: &str = "foundry-kratix/host-runner:0.1.0";

/// The command that creates an admin key Secret with a strong random key (the key itself is never shown).
pub(crate) fn admin_secret_command(namespace: &str, secret: &str) -> String {
    format!(
        "kubectl create secret generic {secret} -n {namespace} --from-literal=adminPassword=\"$(openssl rand -base64 32)\""
    )
}

/// A license's name, its `restrictions.maxInstances` and its active instance.
type AdmissionKey = (String, Option<u32>, Option<String>);

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
    pub(crate) fn of(&self, license: &str) -> &[FoundryInstance] {
        self.by_license.get(license).map_or(&[], Vec::as_slice)
    }

    /// Whether the license's `restrictions.maxInstances` admits `me` among its instances.
    fn admits(&self, me: &FoundryInstance, max: Option<u32>, active: Option<&str>) -> bool {
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
            return limits::admitted(
                others.map(|i| (i.metadata.name.as_str(), i.metadata.creation_timestamp.as_deref())),
                max,
                active,
            )
            .contains(name);
        }
        let key = (license.clone(), max, active.map(str::to_owned));
        let cached = self.admitted.borrow().get(&key).cloned();
        let set = cached.unwrap_or_else(|| {
            let set = Rc::new(limits::admitted(
                members.iter().map(|i| (i.metadata.name.as_str(), i.metadata.creation_timestamp.as_deref())),
                max,
                active,
            ));
            self.admitted.borrow_mut().insert(key, Rc::clone(&set));
            set
        });
        set.contains(name)
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
pub(crate) struct Outcome {
    /// The license the host must ask to re-route, when it exists.
    pub(crate) reroute: Option<ObjectRef>,
    /// What the owner should know.
    pub(crate) warnings: Vec<Warning>,
    /// Within the license's `restrictions.maxInstances` (`None` when no license was found).
    pub(crate) admitted: Option<bool>,
    /// The resolved Foundry release.
    pub(crate) version: Option<String>,
    /// What `spec.foundryVersion` (or the license default) asked for.
    pub(crate) version_spec: Option<String>,
    /// The image.
    pub(crate) image: Option<String>,
    /// Where the data lives.
    pub(crate) storage: Option<StoragePlan>,
    /// The `Ready` condition: status, reason, message.
    pub(crate) ready: (bool, &'static str, String),
    /// The license's `metadata.generation` this outcome was decided against.
    pub(crate) license_generation: Option<i64>,
    /// What the workload renders from, when the instance gets one.
    pub(crate) workload: Option<Workload>,
}

/// Everything decided about an instance's workload, owned; `render::workload` renders it.
#[derive(Debug, Clone)]
pub(crate) struct Workload {
    /// The license (its secret references).
    pub(crate) license: FoundryLicense,
    /// The resolved release and image.
    pub(crate) release: Release,
    /// The image reference.
    pub(crate) image: String,
    /// Public hostname, when the license has a base domain.
    pub(crate) hostname: Option<String>,
    /// TLS terminates at the Gateway.
    pub(crate) proxy_ssl: bool,
    /// The port players connect to.
    pub(crate) proxy_port: u16,
    /// Compute resources.
    pub(crate) resources: ComputeResources,
    /// The image of the player monitor sidecar.
    pub(crate) runner_image: String,
    /// The Secret key of Foundry's admin key: the instance's `adminPasswordSecretRef`, or the default Secret.
    pub(crate) admin_key: AdminKeyRef,
    /// The instance names no admin key Secret: the default one is used, and Foundry waits until it exists.
    pub(crate) admin_key_defaulted: bool,
}

/// The Secret an instance without `adminPasswordSecretRef` reads its admin key from (the existing platform's
/// default name, so instances moved over keep their key).
pub fn default_admin_secret(instance: &str) -> String {
    format!("foundry-credentials-{instance}")
}

/// Compute resources after defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ComputeResources {
    /// CPU request.
    pub cpu: String,
    /// Memory request.
    pub memory: String,
    /// CPU limit.
    pub cpu_limit: String,
    /// Memory limit.
    pub memory_limit: String,
}

impl Default for ComputeResources {
    fn default() -> Self {
        Self { cpu: "500m".into(), memory: "1Gi".into(), cpu_limit: "2".into(), memory_limit: "2Gi".into() }
    }
}

/// An instance's decided workflow: the instance as read, the time, and the outcome.
pub(crate) struct Configured {
    /// The instance's reference.
    pub(crate) object: ObjectRef,
    /// The instance (for a deletion, only its identity).
    pub(crate) instance: FoundryInstance,
    /// The time of the decision.
    pub(crate) now: Timestamp,
    /// What was decided.
    pub(crate) outcome: Outcome,
}

impl Outcome {
    fn empty(
        reroute: Option<ObjectRef>,
        reason: &'static str,
        message: String,
        admitted: Option<bool>,
        license_generation: Option<i64>,
    ) -> Self {
        Self {
            reroute,
            warnings: Vec::new(),
            admitted,
            version: None,
            version_spec: None,
            image: None,
            storage: None,
            ready: (false, reason, message),
            license_generation,
            workload: None,
        }
    }
}

/// [`configure`] with the namespace's instances already read and the catalog already loaded (the call's
/// `instances` and `catalog` are not read again), so that deciding many instances costs each one only its own work.
pub(crate) fn configure_among(
    call: CallParts<'_>,
    peers: &Peers,
    catalog: &Result<Catalog, InputError>,
    runner_image: Option<&str>,
) -> Result<Configured, Vec<InputError>> {
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
    let now = parse_now(call.now).map_err(|e| errors.push(e)).ok();
    let license = license_of(call, &object, &license_name).map_err(|e| errors.push(e)).ok().flatten();
    let (Some(now), true) = (now, errors.is_empty()) else { return Err(errors) };
    // The existing platform's storage fields, read as `host-runner migrate` reads them.
    let mut instance = instance;
    let mut legacy_warning = None;
    if instance.spec.storage.is_none()
        && (instance.spec.storage_backend.is_some() || instance.spec.nfs_base_path.is_some())
    {
        let license_nfs = license
            .as_ref()
            .and_then(|(_, l)| l.spec.defaults.as_ref())
            .and_then(|d| d.storage.as_ref())
            .and_then(|s| s.nfs.as_ref());
        let (storage, warning) =
            crate::rules::migrate::legacy_storage(call.instance, call.workload, license_nfs, &object)
                .map_err(|e| vec![e])?;
        instance.spec.storage = Some(storage);
        legacy_warning = Some(warning);
    }
    let namespace = object.namespace.clone();
    let done = |outcome: Outcome| Configured { object: object.clone(), instance: instance.clone(), now, outcome };

    let Some((license_ref, license)) = license else {
        let warning = Warning {
            code: "LicenseNotFound".into(),
            message: format!(
                "license `{}` does not exist in namespace `{namespace}`; the instance gets no workload until it does",
                shorten(&license_name)
            ),
        };
        let mut outcome = Outcome::empty(None, "LicenseNotFound", warning.message.clone(), None, None);
        outcome.warnings.push(warning);
        return Ok(done(outcome));
    };

    let max = license.spec.restrictions.as_ref().and_then(|r| r.max_instances);
    let license_active =
        call.license.pointer("/status/activeInstance").and_then(Value::as_str).filter(|a| !a.is_empty());
    if !peers.admits(&instance, max, license_active) {
        let warning = Warning {
            code: "RefusedInstanceLimit".into(),
            message: format!(
                "license `{}` admits at most {} instances (its active instance, then the oldest); this one gets no workload and cannot be \
                 active",
                license_ref.name,
                max.unwrap_or(0)
            ),
        };
        let mut outcome = Outcome::empty(
            Some(license_ref),
            "RefusedInstanceLimit",
            warning.message.clone(),
            Some(false),
            license.metadata.generation,
        );
        outcome.warnings.push(warning);
        return Ok(done(outcome));
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
    let storage = storage
        .and_then(|plan| volumes::guard_data_location(&plan, &instance, &object, status, call.workload).map(|()| plan));
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
    let mut warnings = resolved.warnings.clone();
    warnings.extend(legacy_warning);
    warnings.extend(storage.warnings.iter().cloned());
    let (admin_key, admin_key_defaulted) = match &instance.spec.admin_password_secret_ref {
        Some(a) => (a.clone(), false),
        None => {
            (AdminKeyRef { name: default_admin_secret(&instance.metadata.name), key: "adminPassword".into() }, true)
        }
    };
    if admin_key_defaulted {
        warnings.push(Warning::new(
            "AdminKeyFromDefaultSecret",
            format!(
                "no `spec.adminPasswordSecretRef`: Foundry reads its admin key from Secret `{}` (key `adminPassword`) \
                 and waits until it exists; create it with `{}`",
                admin_key.name,
                admin_secret_command(&namespace, &admin_key.name)
            ),
        ));
    }
    let license_generation = license.metadata.generation;
    let ready = (true, "Configured", format!("Foundry {} runs under license `{}`", resolved.release, license_ref.name));
    let workload = Workload {
        release: resolved.release,
        image: resolved.image.clone(),
        hostname: base_domain.map(|d| format!("{}.{d}", instance.metadata.name)),
        proxy_ssl: instance.spec.proxy_ssl.or(defaults.proxy_ssl).unwrap_or(true),
        proxy_port: instance.spec.proxy_port.or(defaults.proxy_port).unwrap_or(443),
        resources: compute,
        runner_image: runner_image.unwrap_or(RUNNER_IMAGE).to_owned(),
        admin_key,
        admin_key_defaulted,
        license,
    };
    let outcome = Outcome {
        reroute: Some(license_ref),
        warnings,
        admitted: Some(true),
        version: Some(resolved.release.to_string()),
        version_spec: Some(version_spec),
        image: Some(resolved.image),
        storage: Some(storage),
        ready,
        license_generation,
        workload: Some(workload),
    };
    Ok(done(outcome))
}

/// Decides the delete workflow of an instance: its license re-routes without it; its data is kept.
pub(crate) fn delete(call: CallParts<'_>) -> Result<Configured, Vec<InputError>> {
    let object = object_ref(call.instance, INSTANCE_KIND);
    if !call.instance.is_object() {
        return Err(vec![InputError::MissingField {
            object,
            path: String::new(),
            detail: "missing field `instance`".into(),
        }]);
    }
    let now = parse_now(call.now).map_err(|e| vec![e])?;
    let license_name = call.instance.pointer("/spec/licenseRef/name").and_then(Value::as_str).unwrap_or_default();
    let reroute = match call.license {
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
            storage_backend: None,
            nfs_base_path: None,
        },
    };
    let outcome =
        Outcome::empty(reroute, "Deleting", "the instance is being deleted; its data is kept".into(), None, None);
    Ok(Configured { object, instance, now, outcome })
}
