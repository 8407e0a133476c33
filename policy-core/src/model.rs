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
    /// Whether the standby page offers "Request activation", and how a click is handled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activation: Option<ActivationSpec>,
}

impl LicenseSpec {
    /// The domain instances are published under (`<instance>.<baseDomain>`). Every reader of the base domain goes
    /// through here, so a new place to set it (e.g. a license-level field that the gateway's overrides) is one
    /// change.
    pub fn base_domain(&self) -> Option<&str> {
        self.gateway.as_ref().and_then(|g| g.base_domain.as_deref()).filter(|d| !d.is_empty())
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
    /// The Secret that holds the Foundry admin key (key `adminPassword`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_password_secret_ref: Option<LocalRef>,
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
}

/// What a live run measured, or what a dry run supposes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Observations {
    /// The time of the decision (RFC 3339). Required: the policy has no clock.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub now: Option<String>,
    /// Connected players per instance. An instance without an entry has an unknown count.
    #[serde(default)]
    pub players: Vec<PlayerObservation>,
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
