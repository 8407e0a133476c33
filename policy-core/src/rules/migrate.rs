//! Moving over from the existing platform: its `FoundryLicense`, `FoundryInstance` and `FoundryPassword` objects
//! (same group and version, other fields and other defaults) rewritten in this platform's format, field by field,
//! each change explained.
//!
//! The rules, which never move data:
//! - An instance's data stays where the existing platform put it. Its storage default was NFS at
//!   `<NFS_BASE_PATH>/instances/<name>` on `NFS_SERVER_HOST` (settings of its pipeline, hence of the call), with
//!   `nfsBasePath` as a verbatim override; `storageBackend: pvc` used the claim `foundry-<name>-data`, which is this
//!   platform's claim name too. Every migrated instance gets an explicit `spec.storage` naming the same place; one
//!   whose data lies where this layout cannot name it (a free `nfsBasePath`) is not written at all, and the report
//!   says how to move it.
//! - Every default the existing platform applied is made explicit where this platform's default differs: the
//!   Foundry release (`13.347.0`), the admin key Secret (`foundry-credentials-<name>`), the license Secret the
//!   Deployment really read (`foundry-license`, key `license-key`), the foundryvtt.com account Secret
//!   (`foundry-credentials`) and the base domain (`k8s.orb.local`).
//! - Fields of the existing platform's examples that its CRD never had (`requestActive`, `subdomain`, ...) and
//!   fields neither platform knows are dropped, each reported.
//! - An object already in this platform's format comes out unchanged, so migrating twice changes nothing.

use crate::error::{InputError, ObjectRef, Rule};
use crate::input::namespace_of;
use crate::model::{INSTANCE_KIND, LICENSE_KIND};
use crate::text::shorten;
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// The kind of the existing platform's password objects.
pub const PASSWORD_KIND: &str = "FoundryPassword";
/// The release the existing platform ran when an instance named none.
pub const LEGACY_VERSION: &str = "13.347.0";
/// The base domain the existing platform used when a license named none.
pub const LEGACY_BASE_DOMAIN: &str = "k8s.orb.local";
/// The Secret and key the existing platform's Deployments read the license key from, whatever the license said.
pub(crate) const LEGACY_LICENSE_SECRET: (&str, &str) = ("foundry-license", "license-key");
/// The Secret the existing platform's Deployments read the foundryvtt.com account from (keys `username`,
/// `password`).
pub(crate) const LEGACY_CREDENTIALS_SECRET: &str = "foundry-credentials";
/// The annotation of a scheduled deletion.
const SCHEDULED_DELETE: &str = "foundry.platform/scheduled-delete-at";
/// Metadata the API server sets; a file to apply must not carry it.
const SERVER_METADATA: [&str; 5] = ["uid", "resourceVersion", "generation", "managedFields", "selfLink"];
/// Instance fields of the existing platform's examples and documents that its CRD never had.
const NEVER_IN_CRD: [&str; 6] = ["requestActive", "switchoverMode", "subdomain", "plugins", "worlds", "gateway"];
/// Instance fields this platform reads as they are.
const INSTANCE_FIELDS: [&str; 9] = [
    "licenseRef",
    "foundryVersion",
    "resources",
    "proxySSL",
    "proxyPort",
    "adminPasswordSecretRef",
    "storage",
    "allowGenerationUpgrade",
    "updatePolicy",
];
/// License fields this platform reads as they are.
const LICENSE_FIELDS: [&str; 12] = [
    "licenseSecretRef",
    "activeInstanceName",
    "switchMode",
    "switchGracePeriod",
    "gateway",
    "standby",
    "baseDomain",
    "defaults",
    "restrictions",
    "sharedNfsRoot",
    "credentialsSecretRef",
    "activation",
];
const GATEWAY_FIELDS: [&str; 3] = ["parentRef", "baseDomain", "dnsTargets"];

/// The existing platform's pipeline settings a migration needs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LegacySettings {
    /// Its `NFS_SERVER_HOST`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nfs_server: Option<String>,
    /// Its `NFS_BASE_PATH`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nfs_base: Option<String>,
}

/// What happened to one field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ChangeAction {
    /// An old field became a new one with the same meaning.
    Mapped,
    /// A default of the existing platform was made explicit.
    Defaulted,
    /// A value was rewritten into its canonical form.
    Normalized,
    /// A field was removed.
    Dropped,
    /// Nothing changed, but something needs to be known.
    Note,
    /// An operator must act: the object was not written, or will be refused until they do.
    ActionRequired,
}

impl ChangeAction {
    /// The lowercase word the table shows.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Mapped => "mapped",
            Self::Defaulted => "defaulted",
            Self::Normalized => "normalized",
            Self::Dropped => "dropped",
            Self::Note => "note",
            Self::ActionRequired => "action required",
        }
    }
}

/// One change, on one field of one object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Change {
    /// The object.
    pub object: ObjectRef,
    /// The field (`spec.storageBackend`), empty for the whole object.
    pub path: String,
    /// What happened.
    pub action: ChangeAction,
    /// Why, and what it means for users.
    pub detail: String,
}

/// Where an instance's data lives before and after the migration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DataLocation {
    /// The instance.
    pub object: ObjectRef,
    /// Under the existing platform (`nfs://<server><path>` or `pvc/<claim>:/`).
    pub before: String,
    /// Under this platform, as the migrated spec names it; `null` when the instance was not written.
    pub after: Option<String>,
}

/// A migration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Migration {
    /// The objects in this platform's format: licenses, then instances, by namespace and name.
    pub objects: Vec<Value>,
    /// Every change, in the order of the objects.
    pub changes: Vec<Change>,
    /// Every instance's data location.
    pub locations: Vec<DataLocation>,
    /// How many changes need an operator's action (an object that cannot be migrated safely is not written).
    pub action_required: usize,
}

struct Report<'a> {
    object: ObjectRef,
    changes: &'a mut Vec<Change>,
}

impl Report<'_> {
    fn add(&mut self, path: &str, action: ChangeAction, detail: impl Into<String>) {
        self.changes.push(Change { object: self.object.clone(), path: path.into(), action, detail: detail.into() });
    }
}

fn kind_of(value: &Value) -> &str {
    value.get("kind").and_then(Value::as_str).unwrap_or_default()
}

fn name_of(value: &Value) -> &str {
    value.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default()
}

fn reference(value: &Value) -> ObjectRef {
    ObjectRef::new(kind_of(value), &shorten(namespace_of(value)), &shorten(name_of(value)))
}

/// Migrates a set of objects.
pub(crate) fn migrate(objects: &[Value], settings: &LegacySettings) -> Result<Migration, Vec<InputError>> {
    let mut sorted: Vec<&Value> = objects.iter().collect();
    let rank = |v: &Value| match kind_of(v) {
        LICENSE_KIND => 0,
        INSTANCE_KIND => 1,
        PASSWORD_KIND => 2,
        _ => 3,
    };
    sorted.sort_by(|a, b| {
        (rank(a), namespace_of(a), name_of(a), kind_of(a)).cmp(&(rank(b), namespace_of(b), name_of(b), kind_of(b)))
    });
    let mut out = Migration { objects: Vec::new(), changes: Vec::new(), locations: Vec::new(), action_required: 0 };
    let mut errors = Vec::new();
    // The admin key Secret of every written instance, for the password notes.
    let mut admin_secrets: Vec<(String, String, String)> = Vec::new();
    for value in sorted {
        let mut report = Report { object: reference(value), changes: &mut out.changes };
        if !value.is_object() || name_of(value).is_empty() {
            errors.push(InputError::InvalidField {
                object: report.object.clone(),
                path: "metadata.name".into(),
                detail: "every object needs a `metadata.name`".into(),
            });
            continue;
        }
        match kind_of(value) {
            LICENSE_KIND => out.objects.push(license(value, &mut report)),
            INSTANCE_KIND => match instance(value, settings, &mut report) {
                Ok((object, location)) => {
                    if let Some(object) = object {
                        let secret = object
                            .pointer("/spec/adminPasswordSecretRef/name")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_owned();
                        admin_secrets.push((namespace_of(&object).to_owned(), name_of(&object).to_owned(), secret));
                        out.objects.push(object);
                    } else {
                        out.action_required += 1;
                    }
                    out.locations.push(location);
                }
                Err(e) => errors.push(e),
            },
            PASSWORD_KIND => {}
            other => report.add(
                "",
                ChangeAction::Dropped,
                format!("a `{}` is not an object of either platform; it is left out", shorten(other)),
            ),
        }
    }
    allow_legacy_paths(&mut out);
    for value in objects.iter().filter(|v| kind_of(v) == PASSWORD_KIND) {
        let mut report = Report { object: reference(value), changes: &mut out.changes };
        password(value, &admin_secrets, &mut report);
    }
    if errors.is_empty() { Ok(out) } else { Err(errors) }
}

/// Every `storage.legacyNfsPath` of a migrated instance is listed in its license's `restrictions.legacyNfsPaths`
/// (when the license is among the objects; otherwise the operator is told to add it).
fn allow_legacy_paths(out: &mut Migration) {
    let mut wanted: Vec<(String, String, String, ObjectRef)> = Vec::new();
    for object in out.objects.iter().filter(|o| kind_of(o) == INSTANCE_KIND) {
        if let Some(dir) = object.pointer("/spec/storage/legacyNfsPath").and_then(Value::as_str) {
            let license = object.pointer("/spec/licenseRef/name").and_then(Value::as_str).unwrap_or_default();
            wanted.push((namespace_of(object).to_owned(), license.to_owned(), dir.to_owned(), reference(object)));
        }
    }
    for (namespace, license, dir, instance) in wanted {
        let found = out
            .objects
            .iter_mut()
            .find(|o| kind_of(o) == LICENSE_KIND && namespace_of(o) == namespace && name_of(o) == license);
        let Some(object) = found else {
            out.action_required += 1;
            out.changes.push(Change {
                object: instance,
                path: "spec.storage.legacyNfsPath".into(),
                action: ChangeAction::ActionRequired,
                detail: format!(
                    "license `{}` is not among the objects: add `{}` to its `spec.restrictions.legacyNfsPaths`, or \
                     the instance is refused",
                    shorten(&license),
                    shorten(&dir)
                ),
            });
            continue;
        };
        let license_ref = reference(object);
        let Some(spec) = object.get_mut("spec").and_then(Value::as_object_mut) else { continue };
        let restrictions = spec.entry("restrictions").or_insert_with(|| json!({}));
        let Some(restrictions) = restrictions.as_object_mut() else { continue };
        let paths = restrictions.entry("legacyNfsPaths").or_insert_with(|| json!([]));
        let Some(paths) = paths.as_array_mut() else { continue };
        if !paths.iter().any(|p| p.as_str().map(|p| p.trim_end_matches('/')) == Some(dir.as_str())) {
            paths.push(json!(dir));
            paths.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
            out.changes.push(Change {
                object: license_ref,
                path: "spec.restrictions.legacyNfsPaths".into(),
                action: ChangeAction::Mapped,
                detail: format!(
                    "allows `{}`, where instance `{}` keeps its data (the existing platform's `nfsBasePath`)",
                    shorten(&dir),
                    instance.name
                ),
            });
        }
    }
}

/// The object with server-set metadata removed and the spec replaced.
fn rebuilt(value: &Value, spec: Map<String, Value>, report: &mut Report<'_>) -> Value {
    let mut object = value.clone();
    if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        let removed: Vec<&str> = SERVER_METADATA.into_iter().filter(|k| meta.remove(*k).is_some()).collect();
        if !removed.is_empty() {
            report.add(
                "metadata",
                ChangeAction::Dropped,
                format!("`{}` removed: the API server sets them, and a file to apply must not", removed.join("`, `")),
            );
        }
    }
    if let Some(obj) = object.as_object_mut() {
        obj.insert("spec".into(), Value::Object(spec));
    }
    object
}

fn spec_of(value: &Value) -> Map<String, Value> {
    value.get("spec").and_then(Value::as_object).cloned().unwrap_or_default()
}

fn license(value: &Value, report: &mut Report<'_>) -> Value {
    let old = spec_of(value);
    let mut spec = Map::new();
    let mut gateway = Map::new();
    for (key, v) in &old {
        match key.as_str() {
            "owner" => report.add(
                "spec.owner",
                ChangeAction::Dropped,
                format!(
                    "the existing platform never read it, and no Discord user id can be derived from `{}`: grant \
                     ownership again when Discord operations are set up",
                    shorten(&v.as_str().map_or_else(|| v.to_string(), str::to_owned))
                ),
            ),
            "gateway" => {
                for (gkey, gv) in v.as_object().cloned().unwrap_or_default() {
                    match gkey.as_str() {
                        "dnsTarget" | "publicIP" => {}
                        k if GATEWAY_FIELDS.contains(&k) => {
                            gateway.insert(gkey, gv);
                        }
                        _ => report.add(
                            &format!("spec.gateway.{}", shorten(&gkey)),
                            ChangeAction::Dropped,
                            "not a field of either platform",
                        ),
                    }
                }
            }
            k if LICENSE_FIELDS.contains(&k) => {
                spec.insert(key.clone(), v.clone());
            }
            _ => report.add(&format!("spec.{}", shorten(key)), ChangeAction::Dropped, "not a field of either platform"),
        }
    }
    // DNS: `publicIP` was the one target the existing platform published; `dnsTarget` was read and ignored.
    let text = |key: &str| old.get("gateway").and_then(|g| g.get(key)).and_then(Value::as_str).map(str::to_owned);
    let (public_ip, dns_target) = (text("publicIP"), text("dnsTarget"));
    let has_targets = gateway.get("dnsTargets").and_then(Value::as_array).is_some_and(|a| !a.is_empty());
    match (&public_ip, &dns_target) {
        (Some(ip), _) if !has_targets => {
            gateway.insert("dnsTargets".into(), json!([ip]));
            report.add(
                "spec.gateway.publicIP",
                ChangeAction::Mapped,
                format!("to `spec.gateway.dnsTargets: [{}]`: the same DNSEndpoint per instance", shorten(ip)),
            );
        }
        (Some(ip), _) => report.add(
            "spec.gateway.publicIP",
            ChangeAction::Dropped,
            format!("`spec.gateway.dnsTargets` is set and takes its place (was `{}`)", shorten(ip)),
        ),
        (None, Some(target)) if !has_targets => {
            gateway.insert("dnsTargets".into(), json!([target]));
            report.add(
                "spec.gateway.dnsTarget",
                ChangeAction::Mapped,
                format!(
                    "to `spec.gateway.dnsTargets: [{}]`; the existing platform ignored this field, so DNS records for \
                     every instance hostname are published from now on (remove `dnsTargets` to keep none)",
                    shorten(target)
                ),
            );
        }
        _ => {}
    }
    if public_ip.is_some() && dns_target.is_some() {
        report.add(
            "spec.gateway.dnsTarget",
            ChangeAction::Dropped,
            "the existing platform ignored it and published `publicIP`; so does the migrated license",
        );
    } else if dns_target.is_some() && has_targets {
        report.add(
            "spec.gateway.dnsTarget",
            ChangeAction::Dropped,
            "`spec.gateway.dnsTargets` is set and takes its place",
        );
    }
    if !spec.contains_key("baseDomain") && !gateway.contains_key("baseDomain") {
        gateway.insert("baseDomain".into(), json!(LEGACY_BASE_DOMAIN));
        report.add(
            "spec.gateway.baseDomain",
            ChangeAction::Defaulted,
            format!("`{LEGACY_BASE_DOMAIN}`, the existing platform's default: hostnames stay as they were"),
        );
    }
    if !gateway.is_empty() {
        spec.insert("gateway".into(), Value::Object(gateway));
    }
    let (secret, key) = LEGACY_LICENSE_SECRET;
    let wanted = json!({"name": secret, "key": key});
    match spec.get("licenseSecretRef") {
        Some(v) if *v == wanted => {}
        Some(v) => {
            report.add(
                "spec.licenseSecretRef",
                ChangeAction::Mapped,
                format!(
                    "was `{}`, which the existing platform never read: its Deployments always took the key from \
                     Secret `{secret}` key `{key}`, and so do the migrated ones",
                    shorten(&v.to_string())
                ),
            );
            spec.insert("licenseSecretRef".into(), wanted);
        }
        None => {
            report.add(
                "spec.licenseSecretRef",
                ChangeAction::Defaulted,
                format!("Secret `{secret}` key `{key}`, the one the existing platform's Deployments read"),
            );
            spec.insert("licenseSecretRef".into(), wanted);
        }
    }
    if !spec.contains_key("credentialsSecretRef") {
        spec.insert("credentialsSecretRef".into(), json!({"name": LEGACY_CREDENTIALS_SECRET}));
        report.add(
            "spec.credentialsSecretRef",
            ChangeAction::Defaulted,
            format!(
                "Secret `{LEGACY_CREDENTIALS_SECRET}` (keys `username`, `password`): the foundryvtt.com account the \
                 existing platform's Deployments read"
            ),
        );
    }
    rebuilt(value, spec, report)
}

fn instance(
    value: &Value,
    settings: &LegacySettings,
    report: &mut Report<'_>,
) -> Result<(Option<Value>, DataLocation), InputError> {
    let name = name_of(value).to_owned();
    let old = spec_of(value);
    let mut spec = Map::new();
    for (key, v) in &old {
        match key.as_str() {
            "storageBackend" | "nfsBasePath" => {}
            k if NEVER_IN_CRD.contains(&k) => {
                let hint = match k {
                    "requestActive" => "; to make an instance active, set the license's `spec.activeInstanceName`",
                    "plugins" | "worlds" => "; shared or copied data is `spec.storage.modules` / `spec.storage.worlds`",
                    "gateway" => "; the gateway is the license's",
                    _ => "",
                };
                report.add(
                    &format!("spec.{k}"),
                    ChangeAction::Dropped,
                    format!("never a field of the existing platform's CRD (the API server pruned it){hint}"),
                );
            }
            k if INSTANCE_FIELDS.contains(&k) => {
                spec.insert(key.clone(), v.clone());
            }
            _ => report.add(&format!("spec.{}", shorten(key)), ChangeAction::Dropped, "not a field of either platform"),
        }
    }
    if !spec.contains_key("foundryVersion") {
        spec.insert("foundryVersion".into(), json!(LEGACY_VERSION));
        report.add(
            "spec.foundryVersion",
            ChangeAction::Defaulted,
            format!("`{LEGACY_VERSION}`, the release the existing platform ran: nothing is upgraded by the move"),
        );
    }
    match spec.get("adminPasswordSecretRef") {
        Some(r) if r.get("name").and_then(Value::as_str).is_some() => {}
        _ => {
            let secret = format!("foundry-credentials-{name}");
            report.add(
                "spec.adminPasswordSecretRef",
                ChangeAction::Defaulted,
                format!("Secret `{}` key `adminPassword`, the existing platform's default", shorten(&secret)),
            );
            spec.insert("adminPasswordSecretRef".into(), json!({"name": secret, "key": "adminPassword"}));
        }
    }
    let (location, storage) = storage(value, &old, &spec, settings, report)?;
    if let Some(storage) = storage {
        spec.insert("storage".into(), storage);
    }
    let mut object = rebuilt(value, spec, report);
    annotations(&mut object, report);
    if location.after.is_none() {
        return Ok((None, location));
    }
    Ok((Some(object), location))
}

/// The instance's storage: where the existing platform kept its data, and the `spec.storage` that names the same
/// place.
fn storage(
    value: &Value,
    old: &Map<String, Value>,
    spec: &Map<String, Value>,
    settings: &LegacySettings,
    report: &mut Report<'_>,
) -> Result<(DataLocation, Option<Value>), InputError> {
    let name = name_of(value);
    let object = report.object.clone();
    let backend = old.get("storageBackend");
    let base_path = old.get("nfsBasePath").and_then(Value::as_str);
    if spec.contains_key("storage") {
        // Already in this platform's format: its location is what its spec says.
        for key in ["storageBackend", "nfsBasePath"].into_iter().filter(|k| old.contains_key(*k)) {
            report.add(
                &format!("spec.{key}"),
                ChangeAction::Dropped,
                "`spec.storage` is set and says where the data lives; check it names the same place",
            );
        }
        let place = current_place(name, spec.get("storage"));
        return Ok((DataLocation { object, before: place.clone(), after: Some(place) }, None));
    }
    let claim = crate::rules::volumes::pvc_name(name);
    match backend.map(|b| b.as_str()) {
        Some(Some("pvc")) => {
            report.add(
                "spec.storageBackend",
                ChangeAction::Mapped,
                format!("to `spec.storage.backend: pvc`: the same claim `{claim}`"),
            );
            if base_path.is_some() {
                report.add(
                    "spec.nfsBasePath",
                    ChangeAction::Dropped,
                    "the existing platform ignored it for PVC storage",
                );
            }
            let place = format!("pvc/{claim}:/");
            Ok((DataLocation { object, before: place.clone(), after: Some(place) }, Some(json!({"backend": "pvc"}))))
        }
        None | Some(Some("nfs")) => {
            let missing = |setting: &str, flag: &str, env: &str| InputError::Refused {
                object: object.clone(),
                path: if backend.is_some() { "spec.storageBackend".into() } else { "spec".into() },
                rule: Rule::MigrationSettingMissing,
                detail: format!(
                    "the instance keeps its data on NFS (the existing platform's {}), so the migration needs the \
                     NFS {setting}: pass `{flag}` (the existing platform's `{env}`)",
                    if backend.is_some() { "`storageBackend: nfs`" } else { "default storage" }
                ),
            };
            let server =
                settings.nfs_server.clone().ok_or_else(|| missing("server", "--nfs-server", "NFS_SERVER_HOST"))?;
            let data_path = match base_path {
                Some(p) => p.to_owned(),
                None => {
                    let base =
                        settings.nfs_base.clone().ok_or_else(|| missing("base path", "--nfs-base", "NFS_BASE_PATH"))?;
                    format!("{}/instances/{name}", base.trim_end_matches('/'))
                }
            };
            let before = format!("nfs://{server}{}", data_path.trim_end_matches('/'));
            let how =
                if backend.is_some() { "`storageBackend: nfs`" } else { "no `storageBackend` (NFS, its default)" };
            let suffix = format!("/instances/{name}");
            let root = data_path
                .trim_end_matches('/')
                .strip_suffix(&suffix)
                .filter(|r| r.len() > 1 && crate::rules::volumes::is_clean_abs_path(r));
            match root {
                Some(root) => {
                    let path = if base_path.is_some() { "spec.nfsBasePath" } else { "spec.storageBackend" };
                    report.add(
                        path,
                        ChangeAction::Mapped,
                        format!(
                            "{how}{} to `spec.storage: {{backend: nfs, nfs: {{server: {}, path: {}}}}}`: the same \
                             directory `{}`",
                            base_path.map(|p| format!(" and `nfsBasePath: {}`", shorten(p))).unwrap_or_default(),
                            shorten(&server),
                            shorten(root),
                            shorten(&data_path)
                        ),
                    );
                    let storage = json!({"backend": "nfs", "nfs": {"server": server, "path": root}});
                    let after = format!("nfs://{server}{root}{suffix}");
                    Ok((DataLocation { object, before, after: Some(after) }, Some(storage)))
                }
                None if crate::rules::volumes::is_clean_abs_path(data_path.trim_end_matches('/'))
                    && data_path.trim_end_matches('/').len() > 1 =>
                {
                    let dir = data_path.trim_end_matches('/').to_owned();
                    let standard = settings
                        .nfs_base
                        .as_deref()
                        .map_or_else(|| format!("<base>{suffix}"), |b| format!("{}{suffix}", b.trim_end_matches('/')));
                    report.add(
                        "spec.nfsBasePath",
                        ChangeAction::Mapped,
                        format!(
                            "the data stays in `{}` on `{}`, which is not an `<root>/instances/<name>` directory: \
                             kept verbatim as `spec.storage.legacyNfsPath`, which the license must list in \
                             `restrictions.legacyNfsPaths`; to use this platform's layout later, move the directory \
                             (with the instance stopped) to `{}` and confirm the new place",
                            shorten(&dir),
                            shorten(&server),
                            shorten(&standard)
                        ),
                    );
                    let storage = json!({"backend": "nfs", "nfs": {"server": server}, "legacyNfsPath": dir});
                    Ok((DataLocation { object, before: before.clone(), after: Some(before) }, Some(storage)))
                }
                None => {
                    report.add(
                        "spec.nfsBasePath",
                        ChangeAction::ActionRequired,
                        format!(
                            "`{}` is not an absolute, normalised directory; the instance is not written, so nothing \
                             points anywhere else: correct `nfsBasePath` to the directory its data is in",
                            shorten(&data_path)
                        ),
                    );
                    Ok((DataLocation { object, before, after: None }, None))
                }
            }
        }
        Some(_) => Err(InputError::InvalidField {
            object,
            path: "spec.storageBackend".into(),
            detail: format!(
                "`{}` is neither `nfs` nor `pvc`",
                shorten(&backend.map(ToString::to_string).unwrap_or_default())
            ),
        }),
    }
}

/// The instance workflow's reading of the existing platform's storage fields (`storageBackend`, `nfsBasePath`)
/// while `spec.storage` is not set: the `spec.storage` that `migrate` would write, and a warning that says so.
/// The NFS server and base path come from the running Deployment (the existing platform's settings, as they took
/// effect), else from the license's `defaults.storage.nfs`.
pub(crate) fn legacy_storage(
    instance: &Value,
    workload: &Value,
    license_nfs: Option<&crate::model::NfsSpec>,
    object: &ObjectRef,
) -> Result<(crate::model::StorageSpec, crate::model::Warning), InputError> {
    let name = name_of(instance);
    let mut settings = LegacySettings::default();
    if let Some(rest) = crate::rules::volumes::deployment_data_location(workload)
        .and_then(|l| l.strip_prefix("nfs://").map(str::to_owned))
        && let Some(slash) = rest.find('/')
    {
        let (server, path) = rest.split_at(slash);
        settings.nfs_server = Some(server.to_owned());
        settings.nfs_base = path.trim_end_matches('/').strip_suffix(&format!("/instances/{name}")).map(str::to_owned);
    } else if let Some(nfs) = license_nfs {
        settings = LegacySettings { nfs_server: nfs.server.clone(), nfs_base: nfs.path.clone() };
    }
    let old = spec_of(instance);
    let mut changes = Vec::new();
    let mut report = Report { object: object.clone(), changes: &mut changes };
    let (location, storage) = storage(instance, &old, &Map::new(), &settings, &mut report)?;
    let not_expressible = || InputError::Refused {
        object: object.clone(),
        path: "spec.nfsBasePath".into(),
        rule: Rule::InvalidStorage,
        detail: format!(
            "the existing platform kept the data in `{}`, which this platform's layout (`<root>/instances/<name>`) \
             cannot name; move it (with the instance stopped) and set `spec.storage`, as `host-runner migrate` \
             explains",
            shorten(&location.before)
        ),
    };
    let storage = storage.filter(|_| location.after.is_some()).ok_or_else(not_expressible)?;
    let spec: crate::model::StorageSpec = serde_json::from_value(storage.clone()).map_err(|e| {
        InputError::InvalidField { object: object.clone(), path: "spec.storage".into(), detail: e.to_string() }
    })?;
    let warning = crate::model::Warning::new(
        "DeprecatedStorageFields",
        format!(
            "`storageBackend`/`nfsBasePath` are the existing platform's fields, read as `spec.storage: {}` (the same \
             place, `{}`); run `host-runner migrate` to write that",
            shorten(&storage.to_string()),
            shorten(&location.before)
        ),
    );
    Ok((spec, warning))
}

/// The place a spec already in this platform's format names (as far as the instance alone says).
fn current_place(name: &str, storage: Option<&Value>) -> String {
    let storage = storage.cloned().unwrap_or(Value::Null);
    let text = |p: &str| storage.pointer(p).and_then(Value::as_str).unwrap_or_default().to_owned();
    if text("/backend") == "nfs" {
        format!("nfs://{}{}/instances/{name}", text("/nfs/server"), text("/nfs/path").trim_end_matches('/'))
    } else {
        format!("pvc/{}:/", crate::rules::volumes::pvc_name(name))
    }
}

/// A scheduled deletion in RFC 3339, as this platform reads it. The existing platform wrote UTC times, with or
/// without a zone.
fn annotations(object: &mut Value, report: &mut Report<'_>) {
    let Some(text) = object.pointer(&format!("/metadata/annotations/{}", SCHEDULED_DELETE.replace('/', "~1"))) else {
        return;
    };
    let text = text.as_str().unwrap_or_default().to_owned();
    let path = format!("metadata.annotations[{SCHEDULED_DELETE}]");
    let parsed = Timestamp::parse(&text).or_else(|_| Timestamp::parse(&format!("{text}Z")));
    match parsed {
        Ok(at) if at.to_string() == text => {}
        Ok(at) => {
            report.add(&path, ChangeAction::Normalized, format!("`{}` is `{at}` (UTC)", shorten(&text)));
            if let Some(a) = object.pointer_mut("/metadata/annotations").and_then(Value::as_object_mut) {
                a.insert(SCHEDULED_DELETE.into(), json!(at.to_string()));
            }
        }
        Err(_) => report.add(
            &path,
            ChangeAction::Note,
            format!(
                "`{}` is not a time; this platform refuses the license's routing until it is an RFC 3339 time such \
                 as `2026-12-24T18:00:00Z` or removed",
                shorten(&text)
            ),
        ),
    }
}

/// A password object: no kind of this platform, but its Secret may be an instance's admin key.
fn password(value: &Value, admin_secrets: &[(String, String, String)], report: &mut Report<'_>) {
    let namespace = namespace_of(value);
    let name = name_of(value);
    let users: Vec<&str> =
        admin_secrets.iter().filter(|(ns, _, s)| ns == namespace && s == name).map(|(_, i, _)| i.as_str()).collect();
    let used = if users.is_empty() {
        "no migrated instance reads it".to_owned()
    } else {
        format!("it is the admin key of `{}` (`spec.adminPasswordSecretRef`)", users.join("`, `"))
    };
    report.add(
        "",
        ChangeAction::Note,
        format!(
            "not an object of this platform, so not written. Its Secret `{}` (key `adminPassword`) stays where it is: \
             {used}. Keep the existing `foundry-password` Promise installed, or copy the Secret first: removing that \
             Promise removes its ExternalSecret, and with it the Secret",
            shorten(name)
        ),
    );
    if let Some(target) = value.pointer("/spec/instanceRef/name").and_then(Value::as_str) {
        let reads = admin_secrets.iter().find(|(ns, i, _)| ns == namespace && i == target);
        if let Some((_, _, secret)) = reads.filter(|(_, _, s)| s != name) {
            report.add(
                "spec.instanceRef",
                ChangeAction::Note,
                format!(
                    "instance `{}` reads its admin key from Secret `{}`, not from this password's: as before",
                    shorten(target),
                    shorten(secret)
                ),
            );
        }
    }
}
