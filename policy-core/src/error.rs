//! Input errors with stable machine codes.
//!
//! Every way an input can be refused is one variant of [`InputError`]. Callers and tests match on
//! [`InputError::code`], never on the text. The text follows one style: a lowercase one-line `message` that quotes
//! user input in backticks, the object and field `path` it concerns, and a `help` line that says how to fix it.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Identifies the Kubernetes object a problem or decision concerns.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ObjectRef {
    /// `FoundryLicense`, `FoundryInstance`, or another kind.
    pub kind: String,
    /// The object's namespace.
    pub namespace: String,
    /// The object's name (empty when the object has none).
    pub name: String,
}

impl ObjectRef {
    /// Builds a reference.
    pub fn new(kind: &str, namespace: &str, name: &str) -> Self {
        Self { kind: kind.to_owned(), namespace: namespace.to_owned(), name: name.to_owned() }
    }
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}/{}", self.kind, self.namespace, self.name)
    }
}

/// Why an input was refused. Each variant has a stable code (see [`InputError::code`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    /// The call itself is not valid JSON of the expected shape.
    #[error("the input is not valid: {detail}")]
    InvalidJson {
        /// Field path inside the call, when known.
        path: String,
        /// What the parser said.
        detail: String,
    },
    /// The call names an operation the policy does not have.
    #[error("unknown operation `{name}`")]
    UnknownOperation {
        /// The name asked for (shortened).
        name: String,
        /// The operations there are, comma-separated.
        known: String,
    },
    /// The call has no input at all.
    #[error("no input was given")]
    MissingInput,
    /// A required field is absent.
    #[error("{object}: {detail}")]
    MissingField {
        /// The object.
        object: ObjectRef,
        /// Field path.
        path: String,
        /// What is missing.
        detail: String,
    },
    /// A field that the API does not have.
    #[error("{object}: {detail}")]
    UnknownField {
        /// The object.
        object: ObjectRef,
        /// Field path.
        path: String,
        /// The unknown field and the expected ones.
        detail: String,
    },
    /// A field has the wrong type or value.
    #[error("{object}: {detail}")]
    InvalidField {
        /// The object.
        object: ObjectRef,
        /// Field path.
        path: String,
        /// What is wrong.
        detail: String,
    },
    /// An instance name cannot produce valid Kubernetes names and hostnames.
    #[error("{object}: the instance name `{name}` is not usable: {detail}")]
    InvalidInstanceName {
        /// The instance.
        object: ObjectRef,
        /// The name as given (shortened).
        name: String,
        /// Which limit it breaks.
        detail: String,
    },
    /// The license has no base domain, so hostnames cannot be built.
    #[error("{object}: no base domain is set, so instance hostnames cannot be built")]
    MissingBaseDomain {
        /// The license.
        object: ObjectRef,
    },
    /// A domain or hostname is not valid.
    #[error("{object}: {detail}")]
    InvalidDomain {
        /// The object.
        object: ObjectRef,
        /// Field path.
        path: String,
        /// The value and the rule it breaks.
        detail: String,
    },
    /// DNS targets mix kinds or name more than one hostname.
    #[error("{object}: {detail}")]
    InvalidDnsTargets {
        /// The license.
        object: ObjectRef,
        /// Field path.
        path: String,
        /// What is wrong.
        detail: String,
    },
    /// Two objects of the same kind share a namespace and name.
    #[error("{object} is given more than once")]
    DuplicateObject {
        /// The duplicated object.
        object: ObjectRef,
    },
    /// More instances than the policy evaluates in one decision.
    #[error("{count} instances were given; at most {limit} are evaluated in one decision")]
    TooManyInstances {
        /// How many were given.
        count: usize,
        /// The limit.
        limit: usize,
    },
    /// More objects than one preview evaluates.
    #[error("{count} objects were given; at most {limit} are evaluated in one preview")]
    TooManyObjects {
        /// How many were given.
        count: usize,
        /// The limit.
        limit: usize,
    },
    /// A preview found no license to decide for.
    #[error("the input has no FoundryLicense, so there is nothing to route")]
    NoLicense,
    /// A rule of the platform refuses the spec (a version, a storage setting, a volume transition).
    #[error("{object}: {detail}")]
    Refused {
        /// The object.
        object: ObjectRef,
        /// Field path.
        path: String,
        /// Which rule.
        rule: Rule,
        /// What the rule says about this input.
        detail: String,
    },
    /// The call's `now` is missing or not an RFC 3339 time.
    #[error("{detail}")]
    InvalidNow {
        /// What is wrong.
        detail: String,
    },
    /// An entry of the observations is not valid.
    #[error("observations: {detail}")]
    InvalidObservation {
        /// Field path inside the observations.
        path: String,
        /// What is wrong.
        detail: String,
    },
    /// The policy `data` (the related objects an admission engine passes) is not in the expected layout.
    #[error("data: {detail}")]
    InvalidData {
        /// Path inside `data`.
        path: String,
        /// What is wrong.
        detail: String,
    },
}

impl InputError {
    /// The stable machine code of this error.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidJson { .. } => "InvalidJson",
            Self::UnknownOperation { .. } => "UnknownOperation",
            Self::MissingInput => "MissingInput",
            Self::MissingField { .. } => "MissingField",
            Self::UnknownField { .. } => "UnknownField",
            Self::InvalidField { .. } => "InvalidField",
            Self::InvalidInstanceName { .. } => "InvalidInstanceName",
            Self::MissingBaseDomain { .. } => "MissingBaseDomain",
            Self::InvalidDomain { .. } => "InvalidDomain",
            Self::InvalidDnsTargets { .. } => "InvalidDnsTargets",
            Self::DuplicateObject { .. } => "DuplicateObject",
            Self::TooManyInstances { .. } => "TooManyInstances",
            Self::TooManyObjects { .. } => "TooManyObjects",
            Self::NoLicense => "NoLicense",
            // The time is what the host observed, so a bad one is an observation error (a stable code).
            Self::InvalidObservation { .. } | Self::InvalidNow { .. } => "InvalidObservation",
            Self::Refused { rule, .. } => rule.code(),
            Self::InvalidData { .. } => "InvalidData",
        }
    }

    /// The object the error concerns, if any.
    pub fn object(&self) -> Option<&ObjectRef> {
        match self {
            Self::MissingField { object, .. }
            | Self::UnknownField { object, .. }
            | Self::InvalidField { object, .. }
            | Self::InvalidInstanceName { object, .. }
            | Self::MissingBaseDomain { object }
            | Self::InvalidDomain { object, .. }
            | Self::InvalidDnsTargets { object, .. }
            | Self::DuplicateObject { object }
            | Self::Refused { object, .. } => Some(object),
            Self::InvalidJson { .. }
            | Self::UnknownOperation { .. }
            | Self::MissingInput
            | Self::TooManyInstances { .. }
            | Self::TooManyObjects { .. }
            | Self::NoLicense
            | Self::InvalidObservation { .. }
            | Self::InvalidNow { .. }
            | Self::InvalidData { .. } => None,
        }
    }

    /// The field path the error concerns (inside the object, or inside the call).
    pub fn path(&self) -> String {
        match self {
            Self::InvalidJson { path, .. }
            | Self::MissingField { path, .. }
            | Self::UnknownField { path, .. }
            | Self::InvalidField { path, .. }
            | Self::InvalidDomain { path, .. }
            | Self::InvalidDnsTargets { path, .. }
            | Self::Refused { path, .. } => path.clone(),
            Self::InvalidObservation { path, .. } => format!("observations.{path}"),
            Self::InvalidData { path, .. } => format!("data.{path}"),
            Self::InvalidInstanceName { .. } | Self::DuplicateObject { .. } => "metadata.name".into(),
            Self::MissingBaseDomain { .. } => "spec.baseDomain".into(),
            Self::TooManyInstances { .. } => "instances".into(),
            Self::TooManyObjects { .. } => "objects".into(),
            Self::NoLicense => "objects".into(),
            Self::InvalidNow { .. } => "now".into(),
            Self::UnknownOperation { .. } | Self::MissingInput => String::new(),
        }
    }

    /// One line on how to fix it.
    pub fn help(&self) -> String {
        match self {
            Self::InvalidJson { .. } => "send one JSON object of the documented call shape".into(),
            Self::UnknownOperation { known, .. } => format!("use one of: {known}"),
            Self::MissingInput => "pass the call as the input document".into(),
            Self::MissingField { .. } => "add the field; `kubectl explain` or the Promise schema lists it".into(),
            Self::UnknownField { .. } => "remove the field or fix its spelling".into(),
            Self::InvalidField { .. } => "correct the value to the type and values the schema allows".into(),
            Self::InvalidInstanceName { .. } => format!(
                "rename the instance: lowercase letters, digits and `-`, at most {} characters",
                crate::names::MAX_INSTANCE_NAME
            ),
            Self::MissingBaseDomain { .. } => {
                "set `spec.baseDomain` (or `spec.gateway.baseDomain`) on the license, e.g. `dungeons.example.com`"
                    .into()
            }
            Self::InvalidDomain { .. } => "use a lowercase DNS name such as `dungeons.example.com`".into(),
            Self::InvalidDnsTargets { .. } => {
                "list IP addresses (A/AAAA records) or exactly one hostname (a CNAME), not both".into()
            }
            Self::DuplicateObject { .. } => "keep one copy of the object".into(),
            Self::TooManyInstances { limit, .. } => {
                format!("split the instances over several licenses; one license routes at most {limit}")
            }
            Self::TooManyObjects { limit, .. } => format!("preview at most {limit} objects at a time"),
            Self::NoLicense => "include the FoundryLicense objects (kind `FoundryLicense`) in the input".into(),
            Self::Refused { rule, .. } => rule.help().into(),
            Self::InvalidNow { .. } => "give `now` as an RFC 3339 time, e.g. `2026-11-22T18:30:00Z`".into(),
            Self::InvalidObservation { .. } => {
                "each player entry needs `instance` and either `connected: <count>` or `error: <text>`".into()
            }
            Self::InvalidData { .. } => "replicate the objects as `kubernetes.<resource>.<namespace>.<name>` \
                                          (the kube-mgmt layout), e.g. `kubernetes.foundrylicenses.tabletop.guild`"
                .into(),
        }
    }

    /// The structured form written into answers.
    pub fn to_diagnostic(&self) -> Diagnostic {
        Diagnostic {
            code: self.code().to_owned(),
            message: self.to_string(),
            object: self.object().cloned(),
            path: self.path(),
            help: self.help(),
        }
    }
}

/// The platform rules an input can break, each with a stable code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// The version is not in the release catalog.
    UnknownVersion,
    /// The license's `restrictions.allowedVersions` forbids the version.
    VersionNotAllowed,
    /// Moving to a newer generation without `allowGenerationUpgrade`.
    GenerationUpgradeNotAllowed,
    /// Moving to an older generation.
    GenerationDowngradeRefused,
    /// A volume mode change the state diagram does not allow.
    VolumeTransitionRefused,
    /// A storage setting cannot work or would escape its confinement.
    InvalidStorage,
    /// The release catalog given by the operator is not valid.
    InvalidCatalog,
    /// A resource quantity is not a Kubernetes quantity.
    InvalidQuantity,
    /// A migration needs a setting of the existing platform that the call does not give.
    MigrationSettingMissing,
    /// A spec would start an existing workload on another place than the one its data is in.
    DataLocationChange,
}

impl Rule {
    /// Stable machine code.
    pub fn code(self) -> &'static str {
        match self {
            Self::UnknownVersion => "UnknownVersion",
            Self::VersionNotAllowed => "VersionNotAllowed",
            Self::GenerationUpgradeNotAllowed => "GenerationUpgradeNotAllowed",
            Self::GenerationDowngradeRefused => "GenerationDowngradeRefused",
            Self::VolumeTransitionRefused => "VolumeTransitionRefused",
            Self::InvalidStorage => "InvalidStorage",
            Self::InvalidCatalog => "InvalidCatalog",
            Self::InvalidQuantity => "InvalidQuantity",
            Self::MigrationSettingMissing => "MigrationSettingMissing",
            Self::DataLocationChange => "DataLocationChange",
        }
    }

    /// How to fix it.
    pub fn help(self) -> &'static str {
        match self {
            Self::UnknownVersion => {
                "use a release of the catalog (`host-runner catalog` lists them), `latest`, or `<generation>.x`; \
                 operators add releases to the catalog file"
            }
            Self::VersionNotAllowed => "pick a version the license's `restrictions.allowedVersions` allows",
            Self::GenerationUpgradeNotAllowed => {
                "back up the worlds, then set `spec.allowGenerationUpgrade: true` (Foundry migrates world data one way)"
            }
            Self::GenerationDowngradeRefused => {
                "keep the current generation, or create a new instance for the older one (migrated worlds cannot go back)"
            }
            Self::VolumeTransitionRefused => {
                "allowed: new→copied, new→shared, copied→new, shared→copied, and shared→new once no other instance \
                 uses the share"
            }
            Self::InvalidStorage => {
                "correct `spec.storage` (or the license's `spec.defaults.storage`) as the message says"
            }
            Self::InvalidCatalog => "fix the release catalog file (see policy-core/data/foundry-releases.json)",
            Self::InvalidQuantity => "use a Kubernetes quantity such as `500m`, `2`, `512Mi` or `10Gi`",
            Self::MigrationSettingMissing => {
                "pass the existing platform's NFS settings: `host-runner migrate --nfs-server HOST --nfs-base PATH` \
                 (its instance pipeline's `NFS_SERVER_HOST` and `NFS_BASE_PATH`)"
            }
            Self::DataLocationChange => {
                "make `spec.storage` name the place the data is in (the message says how), or confirm the move with \
                 the annotation `foundry.platform/confirm-data-location`"
            }
        }
    }
}

/// The structured, serialisable form of an error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Diagnostic {
    /// Stable machine code.
    pub code: String,
    /// One lowercase line; user input in backticks.
    pub message: String,
    /// The object concerned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object: Option<ObjectRef>,
    /// Field path, e.g. `spec.switchMode`.
    pub path: String,
    /// How to fix it.
    pub help: String,
}
