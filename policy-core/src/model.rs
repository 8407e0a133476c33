//! The API types of group `foundry.platform`, version `v1alpha1`, and the observations a live run makes.
//!
//! Field names follow the existing platform where the meaning is the same, so its users can migrate. Specs deny
//! unknown fields (a typo is an error, not a silent default); metadata and status accept the extra fields the API
//! server and Kratix add. The Promise CRD schemas are generated from these types (feature `schema`).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// API group of the platform's resources.
pub const GROUP: &str = "foundry.platform";
/// API version of the platform's resources.
pub const VERSION: &str = "v1alpha1";
/// `apiVersion` of the platform's resources.
pub const API_VERSION: &str = "foundry.platform/v1alpha1";
/// Kind of the license resource.
pub const LICENSE_KIND: &str = "FoundryLicense";
/// Kind of the instance resource.
pub const INSTANCE_KIND: &str = "FoundryInstance";
/// Kind of the activation request resource (created by the standby page, approved by an operator).
pub const ACTIVATION_REQUEST_KIND: &str = "FoundryActivationRequest";
/// Annotation that marks an instance for deletion; its value is the RFC 3339 time of the deletion.
pub const SCHEDULED_DELETE_ANNOTATION: &str = "foundry.platform/scheduled-delete-at";
/// Namespace of objects given without one, as `kubectl` does.
pub const DEFAULT_NAMESPACE: &str = "default";

/// The part of Kubernetes object metadata the policy reads. Other fields are accepted and ignored.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectMeta {
    /// Object name.
    #[serde(default)]
    pub name: String,
    /// Namespace; absent means `default`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Labels.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Creation time (RFC 3339), set by the API server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creation_timestamp: Option<String>,
    /// Spec generation, set by the API server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<i64>,
    /// Set by the API server when the object is being deleted (its finalizers, such as Kratix's delete
    /// workflow, still run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_timestamp: Option<String>,
}

impl ObjectMeta {
    /// The namespace, defaulting to `default`.
    pub fn namespace(&self) -> &str {
        self.namespace.as_deref().filter(|ns| !ns.is_empty()).unwrap_or(DEFAULT_NAMESPACE)
    }
}

/// A `FoundryLicense`: one Foundry VTT license, the master of its instances' routing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FoundryLicense {
    /// `foundry.platform/v1alpha1`.
    #[serde(default)]
    pub api_version: String,
    /// `FoundryLicense`.
    #[serde(default)]
    pub kind: String,
    /// Metadata.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// Desired state.
    pub spec: LicenseSpec,
}

/// What a license's owner asks for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LicenseSpec {
    /// The Secret key that holds the Foundry license key. Only the reference is read; the value never leaves
    /// the Secret.
    pub license_secret_ref: SecretKeyRef,
    /// The instance that should be active. Empty or absent asks for no active instance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(regex(pattern = r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?)?$"), length(max = 55)))]
    pub active_instance_name: Option<String>,
    /// What a switch does when players are connected to the active instance: `block` (default) waits for them
    /// to leave; `force` switches at once.
    #[serde(default)]
    pub switch_mode: SwitchMode,
    /// With `block`, a switch that has waited this long proceeds anyway (Go duration such as `30m` or `2h`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(regex(pattern = r"^([0-9]+(h|m|s))+$"), length(max = 32)))]
    pub switch_grace_period: Option<String>,
    /// Where routes attach and how instances are named in DNS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<GatewaySpec>,
    /// The Service that answers for instances that are not active.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub standby: Option<StandbySpec>,
    /// Instances are reachable at `<instance>.<baseDomain>`; `gateway.baseDomain`, when set, overrides it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "schema",
        schemars(
            regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"),
            length(max = 197)
        )
    )]
    pub base_domain: Option<String>,
    /// Settings every instance of the license inherits unless it sets its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub defaults: Option<InstanceDefaults>,
    /// Limits on the license's instances.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restrictions: Option<Restrictions>,
    /// Directory on the license's NFS server that holds shared volumes (`<sharedNfsRoot>/<share>/worlds`,
    /// `.../modules`): worlds or modules used by several instances at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(length(max = 1024)))]
    pub shared_nfs_root: Option<String>,
    /// The Secret with the foundryvtt.com account Foundry downloads itself with (only the reference is read).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_secret_ref: Option<CredentialsRef>,
    /// Whether the standby page offers "Request activation", and how a click is handled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activation: Option<ActivationSpec>,
    /// Deprecated, the existing platform's field, which nothing ever read; kept so that the API server keeps it
    /// until `host-runner migrate` reports and drops it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
}

impl LicenseSpec {
    /// The domain instances are published under (`<instance>.<baseDomain>`): `spec.gateway.baseDomain` when set,
    /// else `spec.baseDomain`. Every reader of the base domain goes through here.
    pub fn base_domain(&self) -> Option<&str> {
        self.gateway
            .as_ref()
            .and_then(|g| g.base_domain.as_deref())
            .filter(|d| !d.is_empty())
            .or(self.base_domain.as_deref().filter(|d| !d.is_empty()))
    }

    /// The field the base domain comes from, for messages.
    pub fn base_domain_path(&self) -> &'static str {
        match self.gateway.as_ref().and_then(|g| g.base_domain.as_deref()).filter(|d| !d.is_empty()) {
            Some(_) => "spec.gateway.baseDomain",
            None => "spec.baseDomain",
        }
    }

    /// The activation settings, defaults filled in.
    pub fn activation(&self) -> ActivationSpec {
        self.activation.clone().unwrap_or_default()
    }
}

/// How the standby page's "Request activation" button behaves for a license's instances.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ActivationSpec {
    /// `disabled` (default): no button. `request`: a click records a `FoundryActivationRequest` that an operator
    /// approves. `auto-when-idle`: a click switches at once when the active instance has had no players for
    /// `idleMinutes`, and otherwise records a request.
    #[serde(default)]
    pub mode: ActivationMode,
    /// How long a request waits for approval before it expires (Go duration, default `24h`).
    #[serde(default, rename = "requestTTL", skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(regex(pattern = r"^([0-9]+(h|m|s))+$"), length(max = 32)))]
    pub request_ttl: Option<String>,
    /// With `auto-when-idle`: minutes without players after which the active instance may be switched away from
    /// by a click (default 30).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(range(min = 1, max = 10080)))]
    pub idle_minutes: Option<u32>,
}

/// The activation modes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "kebab-case")]
pub enum ActivationMode {
    /// No button.
    #[default]
    Disabled,
    /// A click records a request for an operator to approve.
    Request,
    /// A click switches at once when the active instance is idle, else records a request.
    AutoWhenIdle,
}

impl ActivationMode {
    /// The mode as written in the spec.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Disabled => "disabled",
            Self::Request => "request",
            Self::AutoWhenIdle => "auto-when-idle",
        }
    }
}

/// A `FoundryActivationRequest`: someone on the standby page asked for an instance to become active.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FoundryActivationRequest {
    /// `foundry.platform/v1alpha1`.
    #[serde(default)]
    pub api_version: String,
    /// `FoundryActivationRequest`.
    #[serde(default)]
    pub kind: String,
    /// Metadata.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// What is asked for.
    pub spec: ActivationRequestSpec,
}

/// What an activation request asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ActivationRequestSpec {
    /// The license whose active instance should change (same namespace).
    pub license_ref: LocalRef,
    /// The instance that should become active.
    #[cfg_attr(feature = "schema", schemars(regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"), length(max = 55)))]
    pub instance_name: String,
    /// Set to `true` by an operator to approve; the standby page service then switches the license.
    #[serde(default)]
    pub approved: bool,
    /// When the request was made (RFC 3339), as the standby page recorded it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_at: Option<String>,
}

/// Reference to the Secret holding a foundryvtt.com account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CredentialsRef {
    /// Secret name.
    pub name: String,
    /// Key of the account's user name.
    #[serde(default = "default_username_key")]
    pub username_key: String,
    /// Key of the account's password.
    #[serde(default = "default_password_key")]
    pub password_key: String,
}

fn default_username_key() -> String {
    "username".into()
}
fn default_password_key() -> String {
    "password".into()
}

/// Settings instances inherit from their license.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InstanceDefaults {
    /// Foundry version of instances that name none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(length(max = 32)))]
    pub foundry_version: Option<String>,
    /// TLS terminates in front of Foundry (default `true`).
    #[serde(default, rename = "proxySSL", skip_serializing_if = "Option::is_none")]
    pub proxy_ssl: Option<bool>,
    /// The port players connect to (default 443).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(range(min = 1)))]
    pub proxy_port: Option<u16>,
    /// Compute resources.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<Resources>,
    /// Storage: backend, size, class, and the NFS server and root directory instances live under.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<StorageSpec>,
}

/// Limits on a license's instances.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Restrictions {
    /// Most instances; the oldest (by creation time, then name) are admitted, the rest refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_instances: Option<u32>,
    /// Versions instances may resolve to: generations (`13.x`) or releases (`13.351`). Empty allows all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_versions: Vec<String>,
    /// NFS data directories of the existing platform that instances may keep using verbatim
    /// (`storage.legacyNfsPath`); no other free path is accepted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub legacy_nfs_paths: Vec<String>,
}

/// Reference to one key of a Secret in the same namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecretKeyRef {
    /// Secret name.
    pub name: String,
    /// Key inside the Secret.
    pub key: String,
}

/// How a switch away from an instance with connected players behaves.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum SwitchMode {
    /// Keep the current instance while players are connected or their count is unknown.
    #[default]
    Block,
    /// Switch at once.
    Force,
}

/// Gateway attachment and DNS.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GatewaySpec {
    /// The Gateway (and listener) every route attaches to. Default: Gateway `default-gateway` in the license's
    /// namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_ref: Option<ParentRef>,
    /// Instances are reachable at `<instance>.<baseDomain>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "schema",
        schemars(
            regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"),
            length(max = 197)
        )
    )]
    pub base_domain: Option<String>,
    /// DNS targets for every instance hostname: IP addresses (A/AAAA records) or one hostname (CNAME). Empty
    /// means no DNSEndpoint is written.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns_targets: Vec<String>,
    /// A single IPv4 target; the existing platform's field, kept for migration. Same as one `dnsTargets` entry.
    #[serde(default, rename = "publicIP", skip_serializing_if = "Option::is_none")]
    pub public_ip: Option<String>,
    /// Deprecated, the existing platform's field, which it read and ignored. Read as `host-runner migrate` reads
    /// it: one `dnsTargets` entry when neither `dnsTargets` nor `publicIP` is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns_target: Option<String>,
}

/// A Gateway reference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ParentRef {
    /// Gateway name.
    pub name: String,
    /// Gateway namespace (default: the license's namespace).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Listener name on the Gateway (default: every listener).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub section_name: Option<String>,
}

/// The standby page Service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StandbySpec {
    /// Service name.
    #[serde(default = "default_standby_service")]
    pub service_name: String,
    /// Service namespace. When it differs from the license's, a ReferenceGrant is written there.
    #[serde(default = "default_standby_namespace")]
    pub namespace: String,
    /// Service port.
    #[serde(default = "default_standby_port")]
    #[cfg_attr(feature = "schema", schemars(range(min = 1)))]
    pub port: u16,
}

impl Default for StandbySpec {
    fn default() -> Self {
        Self {
            service_name: default_standby_service(),
            namespace: default_standby_namespace(),
            port: default_standby_port(),
        }
    }
}

fn default_standby_service() -> String {
    "foundry-standby-page".into()
}
fn default_standby_namespace() -> String {
    "foundry-vtt".into()
}
fn default_standby_port() -> u16 {
    80
}

/// A `FoundryInstance`: one Foundry VTT server that belongs to a license.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FoundryInstance {
    /// `foundry.platform/v1alpha1`.
    #[serde(default)]
    pub api_version: String,
    /// `FoundryInstance`.
    #[serde(default)]
    pub kind: String,
    /// Metadata.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// Desired state.
    pub spec: InstanceSpec,
}

/// What an instance's owner asks for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InstanceSpec {
    /// The license this instance runs under (same namespace).
    pub license_ref: LocalRef,
    /// Foundry version: exact (`13.348`), `latest`, or a generation channel (`13.x`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub foundry_version: Option<String>,
    /// CPU and memory for the Foundry container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<Resources>,
    /// TLS terminates in front of Foundry (at the Gateway).
    #[serde(default, rename = "proxySSL", skip_serializing_if = "Option::is_none")]
    pub proxy_ssl: Option<bool>,
    /// The port players connect to through the Gateway.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(range(min = 1)))]
    pub proxy_port: Option<u16>,
    /// The Secret key that holds the Foundry admin key (default key `adminPassword`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_password_secret_ref: Option<AdminKeyRef>,
    /// Where the instance keeps its data, and how its worlds and modules are provided.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<StorageSpec>,
    /// Allows moving to a newer Foundry generation (e.g. 13 → 14). Foundry migrates world data one way, so this
    /// must be asked for explicitly; moving to an older generation is always refused.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_generation_upgrade: bool,
    /// For `latest` and `<generation>.x`: `pinned` (default) keeps the release first resolved; `follow` moves to
    /// newer releases of the catalog as they appear.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_policy: Option<UpdatePolicy>,
    /// Deprecated, the existing platform's field: `nfs` (its default) or `pvc`. Read as `host-runner migrate`
    /// reads it while `storage` is not set; `migrate` rewrites it as `storage`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_backend: Option<StorageBackend>,
    /// Deprecated, the existing platform's field: the instance's NFS data directory, verbatim. Read as
    /// `host-runner migrate` reads it while `storage` is not set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(length(max = 1024)))]
    pub nfs_base_path: Option<String>,
}

/// Reference to the Secret key holding the Foundry admin key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AdminKeyRef {
    /// Secret name.
    pub name: String,
    /// Key inside the Secret.
    #[serde(default = "default_admin_key")]
    pub key: String,
}

fn default_admin_key() -> String {
    "adminPassword".into()
}

/// Whether a channel-tracking instance follows new releases.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum UpdatePolicy {
    /// Keep the release first resolved until the spec changes.
    #[default]
    Pinned,
    /// Move to the newest release of the channel in the catalog.
    Follow,
}

/// Storage of an instance (or the defaults a license gives its instances).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StorageSpec {
    /// `pvc` (a PersistentVolumeClaim, the default) or `nfs` (a directory on an NFS server).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend: Option<StorageBackend>,
    /// PVC size (default `10Gi`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(length(max = 32)))]
    pub size: Option<String>,
    /// PVC storage class (default: the cluster's default class).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_class_name: Option<String>,
    /// NFS server and root directory. Instance data lives in `<path>/instances/<instance>`; an instance may set
    /// these only when its license sets none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nfs: Option<NfsSpec>,
    /// `retain` (default): deleting the instance keeps its data. `delete`: its PVC is deleted with it (PVC only;
    /// NFS data is never deleted by the platform).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delete_policy: Option<DeletePolicy>,
    /// How the instance's worlds are provided (default `new`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worlds: Option<VolumeSpec>,
    /// How the instance's modules are provided (default `new`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modules: Option<VolumeSpec>,
    /// Instances only: the data directory on the NFS server (`nfs.server`), used verbatim instead of
    /// `<path>/instances/<name>`, for data the existing platform kept at a free `nfsBasePath`. Only a directory the
    /// license lists in `restrictions.legacyNfsPaths` is accepted, with worlds and modules `new`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(length(max = 1024)))]
    pub legacy_nfs_path: Option<String>,
}

/// Where instance data is stored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum StorageBackend {
    /// A PersistentVolumeClaim `foundry-<instance>-data`.
    #[default]
    Pvc,
    /// A directory on an NFS server.
    Nfs,
}

/// What happens to an instance's data when it is deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum DeletePolicy {
    /// Keep the data.
    #[default]
    Retain,
    /// Delete the PVC with the instance.
    Delete,
}

/// An NFS location.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NfsSpec {
    /// NFS server address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    /// Absolute root directory on the server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(length(max = 1024)))]
    pub path: Option<String>,
}

/// How a kind of data (worlds or modules) is provided to an instance.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VolumeSpec {
    /// `new` (the instance's own, fresh), `copied` (cloned once from another instance of the license, then its
    /// own) or `shared` (one directory under the license's `sharedNfsRoot`, used by several instances).
    #[serde(default)]
    pub mode: VolumeMode,
    /// `copied`: the instance to copy from (same license).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// `shared`: the share's name (a directory under `sharedNfsRoot`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub share: Option<String>,
}

/// How a volume is provided.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum VolumeMode {
    /// The instance's own, fresh data.
    #[default]
    New,
    /// Cloned from another instance by a one-shot Job, then the instance's own.
    Copied,
    /// A directory under the license's `sharedNfsRoot`, used by several instances.
    Shared,
}

impl VolumeMode {
    /// `new`, `copied` or `shared`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::New => "new",
            Self::Copied => "copied",
            Self::Shared => "shared",
        }
    }
}

/// Reference to an object by name in the same namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LocalRef {
    /// Object name.
    pub name: String,
}

/// Compute resources.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Resources {
    /// CPU quantity, e.g. `500m`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<String>,
    /// Memory quantity, e.g. `1Gi`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<String>,
    /// CPU limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_limit: Option<String>,
    /// Memory limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_limit: Option<String>,
}

/// What a live run measured, or what a dry run supposes. (The time of the decision is the call's `now`.)
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Observations {
    /// Connected players per instance. An instance without an entry has an unknown count.
    #[serde(default)]
    pub players: Vec<PlayerObservation>,
}

/// Something the owner should know; the decision was still made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Warning {
    /// Stable machine code.
    pub code: String,
    /// One line, names in backticks.
    pub message: String,
}

impl Warning {
    /// A warning with `code` and `message`.
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        Self { code: code.to_owned(), message: message.into() }
    }
}

/// The player count of one instance, or why it could not be measured.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PlayerObservation {
    /// Instance name.
    pub instance: String,
    /// Instance namespace (default: any namespace).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Connected players.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connected: Option<u32>,
    /// Why the count is unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}
