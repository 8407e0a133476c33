//! Every Kubernetes object and status the policy writes, rendered from decisions the rules already made.
//!
//! One file per kind of output: [`routes`] (HTTPRoute, DNSEndpoint, ReferenceGrant of a license), [`workload`]
//! (an instance's Deployment, Service, PVC and copy Jobs), [`sidecar`] (the player monitor container) and [`rbac`]
//! (its ServiceAccount, Role and RoleBinding), [`status`] (the typed license and instance status), [`labels`], and
//! [`yaml`] (the one YAML writer, so the same decision always gives the same bytes). Nothing here decides
//! anything: every choice was made in `rules`.

pub(crate) mod labels;
pub(crate) mod rbac;
pub(crate) mod requests;
pub(crate) mod routes;
pub(crate) mod sidecar;
pub(crate) mod status;
pub(crate) mod workload;
pub(crate) mod yaml;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;

/// Where a workflow writes its status (relative to the Kratix metadata directory).
pub const STATUS_FILE: &str = "status.yaml";

/// A file the pipeline writes under `/kratix/output`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputFile {
    /// Path relative to the output directory.
    pub path: String,
    /// File content (YAML).
    pub content: String,
}

/// One manifest as compact JSON text, serialised as the object itself. A `Value` tree of an HTTPRoute takes
/// several KiB of heap; its text takes about a tenth of that, which is what lets a decision over ten thousand
/// instances stay small. Keys are in the order of the `Value` it was made from (sorted), so output is unchanged.
#[derive(Debug, Clone, Serialize)]
#[serde(transparent)]
pub struct Manifest(Box<RawValue>);

// Read through a `Value` (one manifest at a time), so a decision can be read from any deserializer, including the
// buffered one of a tagged answer, which cannot hand out raw JSON text.
impl<'de> Deserialize<'de> for Manifest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Value::deserialize(d).map(|v| Self::new(&v))
    }
}

impl Manifest {
    /// The manifest of `object`.
    pub fn new(object: &Value) -> Self {
        // Serialising a `Value` cannot fail: its keys are strings.
        Self(serde_json::value::to_raw_value(object).unwrap_or_else(|_| RawValue::NULL.to_owned()))
    }

    /// Its JSON text.
    pub fn json(&self) -> &str {
        self.0.get()
    }

    /// Its JSON as a `Value`.
    pub fn to_value(&self) -> Value {
        serde_json::from_str(self.0.get()).unwrap_or(Value::Null)
    }
}

impl PartialEq for Manifest {
    fn eq(&self, other: &Self) -> bool {
        self.0.get() == other.0.get()
    }
}
