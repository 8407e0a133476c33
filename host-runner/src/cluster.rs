//! What the workflows need from a cluster, and the offline stand-in for it.
//!
//! The workflows talk to a [`Cluster`]: list the instances of a namespace, get a license, ask a license to
//! re-route, and publish a status at once. Live runs use the Kubernetes API ([`crate::kube::LiveCluster`]); offline runs
//! use a [`Snapshot`] of objects read from a file, which records the changes a live run would have made instead
//! of making them. The workflows cannot tell the difference, so the same code decides in both modes.

use crate::load::{self, Loaded};
use serde_json::Value;
use std::borrow::Cow;
use std::cell::RefCell;
use std::path::Path;

/// Label that makes Kratix re-run a resource's configure workflow; Kratix removes it again.
pub const RECONCILE_LABEL: &str = "kratix.io/manual-reconciliation";

/// Which object's status to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusTarget {
    /// API group.
    pub group: String,
    /// API version.
    pub version: String,
    /// Plural resource name (`KRATIX_CRD_PLURAL`).
    pub plural: String,
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
}

/// Where a call looked: `in namespace `x``, or `in any namespace` for a list across all of them (empty).
fn scope(namespace: &str) -> String {
    if namespace.is_empty() { "in any namespace".to_owned() } else { format!("in namespace `{namespace}`") }
}

/// Why a cluster call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClusterError {
    /// No cluster configuration was found.
    #[error("no Kubernetes configuration: {0}")]
    Config(String),
    /// The service account lacks a permission.
    #[error(
        "the pipeline's service account may not {verb} {resource} {} (HTTP 403: {detail}); \
         grant it in the Promise's `rbac.permissions` of this workflow",
        scope(namespace)
    )]
    Forbidden {
        /// `list`, `get`, `patch`.
        verb: String,
        /// e.g. `foundryinstances.foundry.platform`.
        resource: String,
        /// The namespace.
        namespace: String,
        /// The API server's message.
        detail: String,
    },
    /// The API refused the request (other 4xx).
    #[error("{verb} {resource} {} was refused (HTTP {code}): {detail}", scope(namespace))]
    Refused {
        /// The verb.
        verb: String,
        /// The resource.
        resource: String,
        /// The namespace.
        namespace: String,
        /// HTTP status.
        code: u16,
        /// The API server's message.
        detail: String,
    },
    /// The API did not answer, or kept failing, after retries.
    #[error("{verb} {resource} {} failed after {attempts} attempts: {detail}", scope(namespace))]
    Unavailable {
        /// The verb.
        verb: String,
        /// The resource.
        resource: String,
        /// The namespace.
        namespace: String,
        /// Attempts made.
        attempts: u32,
        /// The last failure.
        detail: String,
    },
    /// The API answered with something that is not the expected JSON.
    #[error("{verb} {resource} {} returned a malformed answer: {detail}", scope(namespace))]
    Malformed {
        /// The verb.
        verb: String,
        /// The resource.
        resource: String,
        /// The namespace.
        namespace: String,
        /// What was wrong.
        detail: String,
    },
    /// A list holds more objects than the host reads.
    #[error("more than {limit} {resource} {}; at most {limit} are read", scope(namespace))]
    TooMany {
        /// The resource.
        resource: String,
        /// The namespace.
        namespace: String,
        /// The limit.
        limit: usize,
    },
    /// The offline snapshot could not be read.
    #[error("the snapshot cannot be used: {0}")]
    Snapshot(String),
}

impl ClusterError {
    /// Stable machine code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Config(_) => "ClusterConfig",
            Self::Forbidden { .. } => "ClusterForbidden",
            Self::Refused { .. } => "ClusterRefused",
            Self::Unavailable { .. } => "ClusterUnavailable",
            Self::Malformed { .. } => "ClusterMalformedAnswer",
            Self::TooMany { .. } => "ClusterListTooLarge",
            Self::Snapshot(_) => "SnapshotUnusable",
        }
    }

    /// What an operator should do about it.
    pub fn help(&self) -> &'static str {
        match self {
            Self::Config(_) => "run inside the cluster (a Kratix pipeline pod) or pass --kubeconfig",
            Self::Forbidden { .. } => "reinstall the Promise from promises/ (it grants exactly these permissions)",
            Self::Refused { .. } => "check that the Promises are installed (the CRDs exist) and the object is valid",
            Self::Unavailable { .. } => "the API server is unreachable or failing; Kratix retries the workflow",
            Self::Malformed { .. } => "check the API server and any proxy in between; Kratix retries the workflow",
            Self::TooMany { .. } => {
                "one license routes at most 10000 instances: move instances to another namespace or license, or \
                 delete the ones no longer used"
            }
            Self::Snapshot(_) => "fix the snapshot file given with --snapshot",
        }
    }
}

/// The cluster operations the workflows use.
pub trait Cluster {
    /// Every `FoundryInstance` in `namespace`, as JSON objects.
    /// (Borrowed where the objects are already held, as in a snapshot: a license with thousands of instances is
    /// then not copied.)
    fn list_instances(&self, namespace: &str) -> Result<Vec<Cow<'_, Value>>, ClusterError>;
    /// Every `FoundryLicense` in every namespace.
    fn list_licenses(&self) -> Result<Vec<Cow<'_, Value>>, ClusterError>;
    /// The `FoundryLicense` `namespace/name`, or `None` when it does not exist.
    fn get_license(&self, namespace: &str, name: &str) -> Result<Option<Value>, ClusterError>;
    /// The Deployment `namespace/name` (an instance's running workload), or `None` when it does not exist.
    fn get_workload(&self, namespace: &str, name: &str) -> Result<Option<Value>, ClusterError>;
    /// Makes Kratix re-run the license's configure workflow (labels it with [`RECONCILE_LABEL`]).
    fn touch_license(&self, namespace: &str, name: &str) -> Result<(), ClusterError>;
    /// Makes Kratix re-run the instance's configure workflow (labels it with [`RECONCILE_LABEL`]).
    fn touch_instance(&self, namespace: &str, name: &str) -> Result<(), ClusterError>;
    /// Merges `status` into the status of the instance `namespace/name` (an instance gone meanwhile is skipped).
    fn patch_instance_status(&self, namespace: &str, name: &str, status: &Value) -> Result<(), ClusterError>;
    /// Merges `status` into the object's status at once (used when a run must fail, since Kratix then does not
    /// apply `status.yaml`).
    fn publish_status(&self, target: &StatusTarget, status: &Value) -> Result<(), ClusterError>;
}

/// A change an offline run would have made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    /// `touch_license`.
    Touch {
        /// Namespace.
        namespace: String,
        /// License name.
        name: String,
    },
    /// `touch_instance`.
    TouchInstance {
        /// Namespace.
        namespace: String,
        /// Instance name.
        name: String,
    },
    /// `patch_instance_status`.
    InstanceStatus {
        /// Namespace.
        namespace: String,
        /// Instance name.
        name: String,
        /// The status merged.
        status: Value,
    },
    /// `publish_status`.
    Status {
        /// The object.
        target: StatusTarget,
        /// The status merged.
        status: Value,
    },
}

/// Cluster objects read from a file, for offline runs and tests.
#[derive(Debug)]
pub struct Snapshot {
    objects: Vec<Loaded>,
    recorded: RefCell<Vec<Recorded>>,
}

impl Snapshot {
    /// Reads the objects of a snapshot file or directory (the same YAML formats as `preview`).
    pub fn from_path(path: &Path) -> Result<Self, ClusterError> {
        let objects = load::load_paths(&[path.to_path_buf()]).map_err(|e| ClusterError::Snapshot(e.to_string()))?;
        Ok(Self::from_objects(objects))
    }

    /// Builds a snapshot from loaded objects.
    pub fn from_objects(objects: Vec<Loaded>) -> Self {
        Self { objects, recorded: RefCell::new(Vec::new()) }
    }

    /// The changes recorded so far.
    pub fn recorded(&self) -> Vec<Recorded> {
        self.recorded.borrow().clone()
    }

    fn find<'a, 'q>(&'a self, kind: &'q str, namespace: Option<&'q str>) -> impl Iterator<Item = &'a Value> + 'q
    where
        'a: 'q,
    {
        self.objects
            .iter()
            .filter(move |o| {
                o.kind() == kind
                    && namespace
                        .is_none_or(|ns| o.value.pointer("/metadata/namespace").and_then(Value::as_str) == Some(ns))
            })
            .map(|o| &o.value)
    }
}

impl Cluster for Snapshot {
    fn list_instances(&self, namespace: &str) -> Result<Vec<Cow<'_, Value>>, ClusterError> {
        Ok(self.find(policy_core::model::INSTANCE_KIND, Some(namespace)).map(Cow::Borrowed).collect())
    }

    fn list_licenses(&self) -> Result<Vec<Cow<'_, Value>>, ClusterError> {
        Ok(self.find(policy_core::model::LICENSE_KIND, None).map(Cow::Borrowed).collect())
    }

    fn get_license(&self, namespace: &str, name: &str) -> Result<Option<Value>, ClusterError> {
        Ok(self
            .find(policy_core::model::LICENSE_KIND, Some(namespace))
            .find(|o| o.pointer("/metadata/name").and_then(Value::as_str) == Some(name))
            .cloned())
    }

    fn get_workload(&self, namespace: &str, name: &str) -> Result<Option<Value>, ClusterError> {
        Ok(self
            .find("Deployment", Some(namespace))
            .find(|o| o.pointer("/metadata/name").and_then(Value::as_str) == Some(name))
            .cloned())
    }

    fn touch_license(&self, namespace: &str, name: &str) -> Result<(), ClusterError> {
        self.recorded.borrow_mut().push(Recorded::Touch { namespace: namespace.into(), name: name.into() });
        Ok(())
    }

    fn publish_status(&self, target: &StatusTarget, status: &Value) -> Result<(), ClusterError> {
        self.recorded.borrow_mut().push(Recorded::Status { target: target.clone(), status: status.clone() });
        Ok(())
    }

    fn touch_instance(&self, namespace: &str, name: &str) -> Result<(), ClusterError> {
        self.recorded.borrow_mut().push(Recorded::TouchInstance { namespace: namespace.into(), name: name.into() });
        Ok(())
    }

    fn patch_instance_status(&self, namespace: &str, name: &str, status: &Value) -> Result<(), ClusterError> {
        self.recorded.borrow_mut().push(Recorded::InstanceStatus {
            namespace: namespace.into(),
            name: name.into(),
            status: status.clone(),
        });
        Ok(())
    }
}
