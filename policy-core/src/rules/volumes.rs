//! Where an instance keeps its data, and how its worlds and modules are provided.
//!
//! Storage is a PVC (`foundry-<instance>-data`) or a directory on NFS. NFS locations are never free paths: the
//! server and root come from the license (or, when the license sets none, from the instance), and an instance's
//! data is always `<root>/instances/<instance>`, so no crafted path can reach another instance's data. Worlds and
//! modules each have a mode: `new` (the instance's own data), `copied` (filled once from another instance of the
//! license by a one-shot Job, which never copies over existing data and only runs while the source is not
//! active, then the instance's own) or `shared` (a directory under the license's `sharedNfsRoot`).
//!
//! Mode changes follow the state diagram new→copied, new→shared, copied→new, shared→copied; shared→new only once
//! no other instance uses the share; everything else is refused. Nothing here ever deletes data: `copied→new`
//! keeps the copy, leaving a share keeps the share, and the platform never deletes NFS directories.

use crate::error::{InputError, ObjectRef, Rule};
use crate::model::Warning;
use crate::model::{
    DeletePolicy, FoundryInstance, LicenseSpec, NfsSpec, StorageBackend, StorageSpec, VolumeMode, VolumeSpec,
};
use crate::names;
use crate::text::shorten;
use serde_json::Value;

/// Default PVC size.
pub(crate) const DEFAULT_SIZE: &str = "10Gi";

/// Which data a volume holds (a directory under Foundry's `/data/Data`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DataKind {
    /// `Data/worlds`.
    Worlds,
    /// `Data/modules`.
    Modules,
}

impl DataKind {
    /// `worlds` or `modules`.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Worlds => "worlds",
            Self::Modules => "modules",
        }
    }
}

/// A place data lives, as a volume and a sub-path in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Place {
    /// In a PVC.
    Pvc {
        /// Claim name.
        claim: String,
        /// Path inside the volume.
        sub_path: String,
    },
    /// On NFS.
    Nfs {
        /// Server.
        server: String,
        /// Exported root directory.
        path: String,
        /// Path under the root.
        sub_path: String,
    },
}

impl Place {
    /// A readable location (`pvc/<claim>:/<sub>`, `nfs://<server><root>/<sub>`).
    pub(crate) fn describe(&self) -> String {
        match self {
            Self::Pvc { claim, sub_path } => format!("pvc/{claim}:/{sub_path}"),
            Self::Nfs { server, path, sub_path } if sub_path.is_empty() => {
                format!("nfs://{server}{}", path.trim_end_matches('/'))
            }
            Self::Nfs { server, path, sub_path } => {
                format!("nfs://{server}{}/{sub_path}", path.trim_end_matches('/'))
            }
        }
    }

    /// This place with `more` appended to its sub-path.
    pub(crate) fn join(&self, more: &str) -> Self {
        let add = |s: &str| if s.is_empty() { more.to_owned() } else { format!("{s}/{more}") };
        match self {
            Self::Pvc { claim, sub_path } => Self::Pvc { claim: claim.clone(), sub_path: add(sub_path) },
            Self::Nfs { server, path, sub_path } => {
                Self::Nfs { server: server.clone(), path: path.clone(), sub_path: add(sub_path) }
            }
        }
    }
}

/// A one-shot copy of a kind of data into the instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CopyPlan {
    /// Job name (stable for the same copy, so reruns do not start it again).
    pub job: String,
    /// Where the data comes from (mounted read-only).
    pub source: Place,
    /// Where it goes.
    pub target: Place,
    /// The instance whose data is copied (its pod holds the source volume), when it is an instance.
    pub from: Option<String>,
}

/// How one kind of data is provided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct VolumePlan {
    /// Worlds or modules.
    pub kind: DataKind,
    /// The mode.
    pub mode: VolumeMode,
    /// `copied`: the source instance.
    pub from: Option<String>,
    /// `shared`: the share; `copied` from a share: that share.
    pub share: Option<String>,
    /// Where the instance reads the data.
    pub place: Place,
    /// The copy to run now, if any.
    pub copy: Option<CopyPlan>,
}

/// The whole storage of an instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StoragePlan {
    /// PVC or NFS.
    pub backend: StorageBackend,
    /// The instance's own data (mounted at `/data`).
    pub data: Place,
    /// PVC size and class (PVC backend).
    pub size: String,
    /// Storage class (PVC backend).
    pub storage_class: Option<String>,
    /// Retain or delete with the instance.
    pub delete_policy: DeletePolicy,
    /// Worlds, then modules.
    pub volumes: Vec<VolumePlan>,
    /// Notes for the owner.
    pub warnings: Vec<Warning>,
}

impl StoragePlan {
    /// `pvc` or `nfs`.
    pub(crate) fn backend_name(&self) -> &'static str {
        match self.backend {
            StorageBackend::Pvc => "pvc",
            StorageBackend::Nfs => "nfs",
        }
    }

    /// `retain` or `delete`.
    pub(crate) fn delete_policy_name(&self) -> &'static str {
        match self.delete_policy {
            DeletePolicy::Retain => "retain",
            DeletePolicy::Delete => "delete",
        }
    }
}

/// Everything storage planning looks at.
#[derive(Debug, Clone)]
pub(crate) struct StorageRequest<'a> {
    /// The instance.
    pub instance: &'a FoundryInstance,
    /// Its reference, for errors.
    pub object: &'a ObjectRef,
    /// Its license's spec, when the license exists.
    pub license: Option<&'a LicenseSpec>,
    /// The license's instances, by name (this one may be among them).
    pub members: &'a [FoundryInstance],
    /// The license's effective active instance (from its status).
    pub active: Option<&'a str>,
    /// The instance's previous `status.volumes`.
    pub previous: Option<&'a Value>,
}

fn invalid(object: &ObjectRef, path: &str, detail: String) -> InputError {
    InputError::Refused { object: object.clone(), path: path.into(), rule: Rule::InvalidStorage, detail }
}

/// Whether `path` is an absolute, normalised directory path of safe characters.
pub(crate) fn is_clean_abs_path(path: &str) -> bool {
    path.len() <= 1024
        && path.starts_with('/')
        && (path == "/"
            || path.trim_start_matches('/').split('/').all(|seg| {
                !seg.is_empty()
                    && seg != "."
                    && seg != ".."
                    && seg.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
            }))
}

fn is_server(server: &str) -> bool {
    names::is_ipv4(server) || names::is_ipv6(server) || names::is_dns1123_subdomain(server)
}

/// The license's storage defaults.
fn defaults(license: Option<&LicenseSpec>) -> StorageSpec {
    license.and_then(|l| l.defaults.as_ref()).and_then(|d| d.storage.clone()).unwrap_or_default()
}

/// The NFS server and root an instance uses: the license's when it sets one (the instance may not differ).
fn nfs_for(
    spec: &StorageSpec,
    defaults: &StorageSpec,
    object: &ObjectRef,
) -> Result<Option<(String, String)>, InputError> {
    let license_nfs = defaults.nfs.clone().filter(|n| n.server.is_some() || n.path.is_some());
    let chosen: Option<NfsSpec> = match (&license_nfs, &spec.nfs) {
        (Some(l), Some(i)) if l != i => {
            return Err(invalid(
                object,
                "spec.storage.nfs",
                "the license fixes the NFS server and root for its instances; remove `spec.storage.nfs`".into(),
            ));
        }
        (Some(l), _) => Some(l.clone()),
        (None, i) => i.clone(),
    };
    let Some(nfs) = chosen else { return Ok(None) };
    let path_of = if license_nfs.is_some() { "license spec.defaults.storage.nfs" } else { "spec.storage.nfs" };
    let server = nfs.server.unwrap_or_default();
    let root = nfs.path.unwrap_or_default();
    if !is_server(&server) {
        return Err(invalid(object, path_of, format!("`{}` is not an NFS server address", shorten(&server))));
    }
    if !is_clean_abs_path(&root) {
        return Err(invalid(
            object,
            path_of,
            format!("`{}` is not an absolute, normalised directory (no `..`, no empty parts)", shorten(&root)),
        ));
    }
    Ok(Some((server, root)))
}

/// The place of an instance's data kept verbatim at a directory of the existing platform: only one the license
/// lists in `restrictions.legacyNfsPaths`, on NFS, holding the instance's own worlds and modules.
fn legacy_data(
    dir: &str,
    backend: StorageBackend,
    spec: &StorageSpec,
    defaults: &StorageSpec,
    license: Option<&LicenseSpec>,
    object: &ObjectRef,
) -> Result<Place, InputError> {
    let path = "spec.storage.legacyNfsPath";
    let dir = dir.trim_end_matches('/');
    if backend != StorageBackend::Nfs {
        return Err(invalid(object, path, "a legacy NFS path needs `backend: nfs`".into()));
    }
    if dir.is_empty() || !is_clean_abs_path(dir) {
        return Err(invalid(
            object,
            path,
            format!("`{}` is not an absolute, normalised directory (no `..`, no empty parts)", shorten(dir)),
        ));
    }
    let allowed = license
        .and_then(|l| l.restrictions.as_ref())
        .is_some_and(|r| r.legacy_nfs_paths.iter().any(|p| p.trim_end_matches('/') == dir));
    if !allowed {
        return Err(invalid(
            object,
            path,
            format!(
                "`{}` is not in the license's `restrictions.legacyNfsPaths`: a free path is used only where the \
                 license allows it (`host-runner migrate` adds the existing platform's paths to it)",
                shorten(dir)
            ),
        ));
    }
    for kind in [DataKind::Worlds, DataKind::Modules] {
        if volume_spec(spec, defaults, kind).mode != VolumeMode::New {
            return Err(invalid(
                object,
                &format!("spec.storage.{}", kind.as_str()),
                "a legacy NFS path holds the instance's own data only: its worlds and modules stay `new`".into(),
            ));
        }
    }
    let server = spec
        .nfs
        .as_ref()
        .and_then(|n| n.server.clone())
        .or_else(|| defaults.nfs.as_ref().and_then(|n| n.server.clone()))
        .filter(|s| is_server(s))
        .ok_or_else(|| {
            invalid(object, "spec.storage.nfs.server", "a legacy NFS path needs the NFS server's address".into())
        })?;
    Ok(Place::Nfs { server, path: dir.to_owned(), sub_path: String::new() })
}

/// The place an instance's own data lives.
fn own_data(name: &str, backend: StorageBackend, nfs: Option<&(String, String)>) -> Option<Place> {
    match backend {
        StorageBackend::Pvc => Some(Place::Pvc { claim: pvc_name(name), sub_path: String::new() }),
        StorageBackend::Nfs => nfs.map(|(server, root)| Place::Nfs {
            server: server.clone(),
            path: root.clone(),
            sub_path: format!("instances/{name}"),
        }),
    }
}

/// The annotation that confirms moving an instance's data to the place its spec now names.
pub const CONFIRM_DATA_LOCATION: &str = "foundry.platform/confirm-data-location";

/// Where a Deployment mounts Foundry's `/data`, in the form of [`Place::describe`]; `None` when it mounts none.
pub(crate) fn deployment_data_location(deployment: &Value) -> Option<String> {
    let pod = deployment.pointer("/spec/template/spec")?;
    let mount = pod
        .get("containers")?
        .as_array()?
        .iter()
        .filter_map(|c| c.get("volumeMounts").and_then(Value::as_array))
        .flatten()
        .find(|m| m.get("mountPath").and_then(Value::as_str).map(|p| p.trim_end_matches('/')) == Some("/data"))?;
    let name = mount.get("name")?;
    let volume = pod.get("volumes")?.as_array()?.iter().find(|v| v.get("name") == Some(name))?;
    let sub = mount.get("subPath").and_then(Value::as_str).unwrap_or_default().to_owned();
    let text = |p: &str| volume.pointer(p).and_then(Value::as_str).map(str::to_owned);
    let place = if let Some(claim) = text("/persistentVolumeClaim/claimName") {
        Place::Pvc { claim, sub_path: sub }
    } else {
        Place::Nfs { server: text("/nfs/server")?, path: text("/nfs/path")?, sub_path: sub }
    };
    Some(place.describe())
}

/// Two locations name the same place (a trailing `/` aside).
fn same_place(a: &str, b: &str) -> bool {
    a.trim_end_matches('/') == b.trim_end_matches('/')
}

/// The `spec.storage` that names `location` for instance `name`, when this platform's layout can.
fn storage_naming(name: &str, location: &str) -> Option<String> {
    if same_place(location, &format!("pvc/{}:/", pvc_name(name))) {
        return Some("{backend: pvc}".into());
    }
    let rest = location.strip_prefix("nfs://")?;
    let slash = rest.find('/')?;
    let (server, path) = rest.split_at(slash);
    let root = path.trim_end_matches('/').strip_suffix(&format!("/instances/{name}"))?;
    (root.len() > 1 && is_clean_abs_path(root))
        .then(|| format!("{{backend: nfs, nfs: {{server: {server}, path: {root}}}}}"))
}

/// Refuses a plan that would start an existing workload on another place than the one its data is in: the place
/// the last run recorded (`status.storage.location`), else the one the running Deployment mounts (a workload of
/// the existing platform, or one configured before any status was kept). Confirmed by
/// [`CONFIRM_DATA_LOCATION`] naming the new place.
pub(crate) fn guard_data_location(
    plan: &StoragePlan,
    instance: &FoundryInstance,
    object: &ObjectRef,
    status: Option<&Value>,
    workload: &Value,
) -> Result<(), InputError> {
    let planned = plan.data.describe();
    let recorded = status.and_then(|s| s.pointer("/storage/location")).and_then(Value::as_str).map(str::to_owned);
    let Some(current) = recorded.or_else(|| deployment_data_location(workload)) else { return Ok(()) };
    let confirmed = instance.metadata.annotations.get(CONFIRM_DATA_LOCATION).is_some_and(|c| same_place(c, &planned));
    if same_place(&current, &planned) || confirmed {
        return Ok(());
    }
    let name = instance.metadata.name.as_str();
    let keep = storage_naming(name, &current).map_or_else(
        || "move the data there first, or run `host-runner migrate` on the instance".to_owned(),
        |s| format!("set `spec.storage: {s}`"),
    );
    Err(InputError::Refused {
        object: object.clone(),
        path: "spec.storage".into(),
        rule: Rule::DataLocationChange,
        detail: format!(
            "the workload keeps its data in `{}`, but this spec would start it on `{}`, where its worlds are not; to \
             keep the data, {keep}; to move on to the new place on purpose, annotate the instance \
             `{CONFIRM_DATA_LOCATION}: {}`",
            shorten(&current),
            shorten(&planned),
            shorten(&planned)
        ),
    })
}

/// The PVC of an instance.
pub(crate) fn pvc_name(instance: &str) -> String {
    format!("foundry-{instance}-data")
}

fn volume_spec(spec: &StorageSpec, defaults: &StorageSpec, kind: DataKind) -> VolumeSpec {
    let pick = |s: &StorageSpec| match kind {
        DataKind::Worlds => s.worlds.clone(),
        DataKind::Modules => s.modules.clone(),
    };
    pick(spec).or_else(|| pick(defaults)).unwrap_or_default()
}

fn previous_entry(previous: Option<&Value>, kind: DataKind) -> Option<&Value> {
    previous.and_then(|p| p.get(kind.as_str()))
}

fn previous_mode(previous: Option<&Value>, kind: DataKind) -> Option<VolumeMode> {
    match previous_entry(previous, kind)?.get("mode")?.as_str()? {
        "new" => Some(VolumeMode::New),
        "copied" => Some(VolumeMode::Copied),
        "shared" => Some(VolumeMode::Shared),
        _ => None,
    }
}

/// FNV-1a, for short stable names.
fn fnv(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

/// Plans the storage of an instance and checks every rule.
pub(crate) fn plan(req: &StorageRequest<'_>) -> Result<StoragePlan, InputError> {
    let name = req.instance.metadata.name.as_str();
    let object = req.object;
    let spec = req.instance.spec.storage.clone().unwrap_or_default();
    let defaults = defaults(req.license);
    let backend = spec.backend.or(defaults.backend).unwrap_or_default();
    let size = spec.size.clone().or_else(|| defaults.size.clone()).unwrap_or_else(|| DEFAULT_SIZE.into());
    if !names::is_quantity(&size) {
        return Err(InputError::Refused {
            object: object.clone(),
            path: "spec.storage.size".into(),
            rule: Rule::InvalidQuantity,
            detail: format!("`{}` is not a storage size", shorten(&size)),
        });
    }
    let storage_class = spec.storage_class_name.clone().or_else(|| defaults.storage_class_name.clone());
    if let Some(class) = storage_class.as_deref().filter(|c| !names::is_dns1123_subdomain(c)) {
        return Err(invalid(
            object,
            "spec.storage.storageClassName",
            format!("`{}` is not a storage class name", shorten(class)),
        ));
    }
    let delete_policy = spec.delete_policy.or(defaults.delete_policy).unwrap_or_default();
    let legacy = match spec.legacy_nfs_path.as_deref() {
        Some(dir) => Some(legacy_data(dir, backend, &spec, &defaults, req.license, object)?),
        None => None,
    };
    let nfs = if legacy.is_some() { None } else { nfs_for(&spec, &defaults, object)? };
    if backend == StorageBackend::Nfs && nfs.is_none() && legacy.is_none() {
        return Err(invalid(
            object,
            "spec.storage.nfs",
            "the `nfs` backend needs an NFS server and root directory (`nfs.server`, `nfs.path`) on the license or the \
             instance"
                .into(),
        ));
    }
    if backend == StorageBackend::Nfs && delete_policy == DeletePolicy::Delete {
        return Err(invalid(
            object,
            "spec.storage.deletePolicy",
            "NFS data is never deleted by the platform; use `retain` and remove the directory on the server".into(),
        ));
    }
    let data = match legacy {
        Some(place) => place,
        None => own_data(name, backend, nfs.as_ref())
            .ok_or_else(|| invalid(object, "spec.storage", "no place for the instance's data".into()))?,
    };

    let license = req.license;
    let shared_root = license.and_then(|l| l.shared_nfs_root.clone());
    let mut warnings = Vec::new();
    let mut volumes = Vec::new();
    for kind in [DataKind::Worlds, DataKind::Modules] {
        let v = volume_spec(&spec, &defaults, kind);
        let path = format!("spec.storage.{}", kind.as_str());
        let previous = previous_mode(req.previous, kind);
        let previous_share = previous_entry(req.previous, kind).and_then(|e| e.get("share")).and_then(Value::as_str);
        check_transition(req, kind, previous, previous_share, &v, &path)?;
        let own = data.join(&format!("Data/{}", kind.as_str()));

        let share_place = |share: &str| -> Result<Place, InputError> {
            let root = shared_root.as_deref().ok_or_else(|| {
                invalid(object, &path, "shared volumes need `spec.sharedNfsRoot` on the license".into())
            })?;
            if !is_clean_abs_path(root) {
                return Err(invalid(
                    object,
                    "license spec.sharedNfsRoot",
                    format!("`{}` is not an absolute, normalised directory", shorten(root)),
                ));
            }
            let (server, _) = nfs.clone().ok_or_else(|| {
                invalid(
                    object,
                    &path,
                    "shared volumes live on the license's NFS server; set `spec.defaults.storage.nfs`".into(),
                )
            })?;
            Ok(Place::Nfs { server, path: root.to_owned(), sub_path: format!("{share}/{}", kind.as_str()) })
        };

        let plan = match v.mode {
            VolumeMode::New => {
                if v.from.is_some() || v.share.is_some() {
                    return Err(invalid(object, &path, "`new` takes neither `from` nor `share`".into()));
                }
                VolumePlan { kind, mode: v.mode, from: None, share: None, place: own, copy: None }
            }
            VolumeMode::Shared => {
                let share = v
                    .share
                    .clone()
                    .ok_or_else(|| invalid(object, &path, "`shared` needs `share`: the share's name".into()))?;
                if !names::is_dns1123_label(&share) {
                    return Err(invalid(
                        object,
                        &format!("{path}.share"),
                        format!("`{}` is not a share name (a DNS label)", shorten(&share)),
                    ));
                }
                if v.from.is_some() {
                    return Err(invalid(object, &path, "`shared` takes `share`, not `from`".into()));
                }
                let place = share_place(&share)?;
                VolumePlan { kind, mode: v.mode, from: None, share: Some(share), place, copy: None }
            }
            VolumeMode::Copied => {
                if v.share.is_some() {
                    return Err(invalid(object, &path, "`copied` takes `from` (an instance), not `share`".into()));
                }
                let (source, from, share) = match (&v.from, previous, previous_share) {
                    (Some(from), _, _) => {
                        (copy_source(req, from, kind, nfs.as_ref(), &shared_root, &path)?, Some(from.clone()), None)
                    }
                    // shared→copied: snapshot the share the instance used.
                    (None, Some(VolumeMode::Shared), Some(share)) => {
                        (share_place(share)?, None, Some(share.to_owned()))
                    }
                    (None, _, _) => {
                        return Err(invalid(object, &path, "`copied` needs `from`: the instance to copy from".into()));
                    }
                };
                let waits = from.as_deref().is_some_and(|f| req.active == Some(f));
                let copy = if waits {
                    warnings.push(Warning {
                        code: "CopyWaitsForSource".into(),
                        message: format!(
                            "the {} are copied from `{}` once it is no longer the active instance",
                            kind.as_str(),
                            from.as_deref().unwrap_or_default()
                        ),
                    });
                    None
                } else {
                    let key = format!("{name}|{}|{}|{}", kind.as_str(), source.describe(), own.describe());
                    Some(CopyPlan {
                        job: format!("foundry-copy-{:012x}", fnv(&key) & 0xffff_ffff_ffff),
                        source,
                        target: own.clone(),
                        from: from.clone(),
                    })
                };
                VolumePlan { kind, mode: v.mode, from, share, place: own, copy }
            }
        };
        volumes.push(plan);
    }
    Ok(StoragePlan { backend, data, size, storage_class, delete_policy, volumes, warnings })
}

/// Where the data to copy from `from` lives.
fn copy_source(
    req: &StorageRequest<'_>,
    from: &str,
    kind: DataKind,
    nfs: Option<&(String, String)>,
    shared_root: &Option<String>,
    path: &str,
) -> Result<Place, InputError> {
    let object = req.object;
    if from == req.instance.metadata.name {
        return Err(invalid(object, &format!("{path}.from"), "an instance cannot copy from itself".into()));
    }
    let source = req.members.iter().find(|s| s.metadata.name == from).ok_or_else(|| {
        invalid(object, &format!("{path}.from"), format!("`{}` is not an instance of the same license", shorten(from)))
    })?;
    let defaults = defaults(req.license);
    let spec = source.spec.storage.clone().unwrap_or_default();
    let source_volume = volume_spec(&spec, &defaults, kind);
    // A source whose data of this kind is shared: copy the share.
    if let (VolumeMode::Shared, Some(share), Some(root), Some((server, _))) =
        (source_volume.mode, source_volume.share.as_deref(), shared_root.as_deref(), nfs)
    {
        return Ok(Place::Nfs {
            server: server.clone(),
            path: root.to_owned(),
            sub_path: format!("{share}/{}", kind.as_str()),
        });
    }
    let backend = spec.backend.or(defaults.backend).unwrap_or_default();
    let source_nfs = nfs_for(&spec, &defaults, object).ok().flatten();
    own_data(from, backend, source_nfs.as_ref())
        .map(|p| p.join(&format!("Data/{}", kind.as_str())))
        .ok_or_else(|| invalid(object, &format!("{path}.from"), format!("`{}` has no reachable data", shorten(from))))
}

/// Applies the state diagram of volume modes.
fn check_transition(
    req: &StorageRequest<'_>,
    kind: DataKind,
    previous: Option<VolumeMode>,
    previous_share: Option<&str>,
    next: &VolumeSpec,
    path: &str,
) -> Result<(), InputError> {
    use VolumeMode::{Copied, New, Shared};
    let Some(prev) = previous else { return Ok(()) };
    let refuse = |detail: String| InputError::Refused {
        object: req.object.clone(),
        path: format!("{path}.mode"),
        rule: Rule::VolumeTransitionRefused,
        detail,
    };
    match (prev, next.mode) {
        (a, b) if a == b => Ok(()),
        (New, Copied) | (New, Shared) | (Copied, New) | (Shared, Copied) => Ok(()),
        (Shared, New) => {
            let share = previous_share.unwrap_or_default();
            let users: Vec<&str> = req
                .members
                .iter()
                .filter(|s| s.metadata.name != req.instance.metadata.name)
                .filter(|s| {
                    let v = volume_spec(&s.spec.storage.clone().unwrap_or_default(), &defaults(req.license), kind);
                    v.mode == Shared && v.share.as_deref() == Some(share)
                })
                .map(|s| s.metadata.name.as_str())
                .collect();
            if users.is_empty() {
                Ok(())
            } else {
                Err(refuse(format!(
                    "the {} stay shared: share `{}` is still used by {}; take a copy instead (`copied`) or move the \
                     other instances off it first",
                    kind.as_str(),
                    shorten(share),
                    users.iter().map(|u| format!("`{u}`")).collect::<Vec<_>>().join(", ")
                )))
            }
        }
        (a, b) => Err(refuse(format!("the {} cannot go from `{}` to `{}`", kind.as_str(), a.as_str(), b.as_str()))),
    }
}
