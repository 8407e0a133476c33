//! The routing decision of a license, as every front end receives it.

use crate::error::{InputError, ObjectRef};
use crate::manifests::{self, Manifest, OutputFile};
use crate::routing::{self, InstanceRoute, PlayerCheck, RouteCall, Warning};
use crate::{status, yaml};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Where the pipeline writes the status (relative to the metadata directory).
pub const STATUS_FILE: &str = "status.yaml";

/// The answer to a [`RouteCall`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RouteDecision {
    /// The license decided for.
    pub license: ObjectRef,
    /// The effective active instance; empty when none.
    pub active_instance: String,
    /// What `spec.activeInstanceName` asks for; empty when nothing.
    pub desired_instance: String,
    /// One entry per instance of the license, in name order.
    pub instances: Vec<InstanceRoute>,
    /// What the owner should know.
    pub warnings: Vec<Warning>,
    /// The player count the decision depended on; a live host probes it when it was not observed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub player_check: Option<PlayerCheck>,
    /// The license status to write (every owned key).
    pub status: Value,
    /// The manifests to write, in file order.
    pub manifests: Vec<Manifest>,
    /// The exact files of the Kratix output directory.
    pub files: Vec<OutputFile>,
    /// The exact content of `status.yaml`.
    pub status_yaml: String,
}

/// Decides the routing of one license.
pub fn route(call: &RouteCall) -> Result<RouteDecision, Vec<InputError>> {
    let r = routing::decide(call)?;
    let status = status::license_status(&r);
    // Each manifest is rendered as YAML and kept as compact JSON as soon as it is built, so a license with
    // thousands of instances never holds all its manifests as `Value` trees at once.
    let mut files = Vec::new();
    let mut compact = Vec::new();
    manifests::route_manifests(&r, |path, object| {
        files.push(OutputFile { path, content: yaml::to_yaml(&object) });
        compact.push(Manifest::new(&object));
    });
    Ok(RouteDecision {
        license: r.license_ref.clone(),
        active_instance: r.active.clone().unwrap_or_default(),
        desired_instance: r.desired.clone().unwrap_or_default(),
        instances: r.instances,
        warnings: r.warnings.clone(),
        player_check: r.player_check.clone(),
        status_yaml: yaml::to_yaml(&status),
        status,
        manifests: compact,
        files,
    })
}
