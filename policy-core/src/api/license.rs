//! `foundry/license/route`: the routing decision of one license, as the license's Kratix workflow and every other
//! front end receive it. The rules are in `rules::routing`; the manifests and the status are rendered by `render`.

use crate::error::{InputError, ObjectRef};
use crate::input::bounded_list;
use crate::model::Warning;
use crate::render::status::license_status;
use crate::render::{Manifest, OutputFile, routes, yaml};
use crate::rules::limits::MAX_INSTANCES;
use crate::rules::routing::{self, Others, RouteInput};
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use crate::render::routes::DNS_TTL;
pub use crate::render::status::{
    ActiveInstanceStatus, Condition, LicenseStatus, READY, RegisteredInstance, SWITCH_BLOCKED,
};
pub use crate::rules::routing::{
    Backend, ClaimCheck, DEFAULT_GATEWAY, InstanceRoute, PlayerCheck, RouteState, RouteStatus, RouteStatusUpdate,
};

/// The input of the routing decision.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RouteCall {
    /// The `FoundryLicense` object, as the API server returns it (status included).
    #[serde(default)]
    pub license: Value,
    /// `FoundryInstance` objects: at least those of the license's namespace; others are ignored. When more than
    /// [`MAX_INSTANCES`] are given, the call is refused and the ones past the limit are read but not kept (they
    /// are `null` here), so an oversized call costs the time of reading it, not the memory of holding it.
    #[serde(default, deserialize_with = "instances_bounded")]
    pub instances: Vec<Value>,
    /// The measured player counts (`{"players": [...]}`, see `model::Observations`).
    #[serde(default)]
    pub observations: Value,
    /// The time of the decision (RFC 3339).
    #[serde(default)]
    pub now: Option<String>,
    /// The other `FoundryLicense`s of the cluster, to find hostnames an older license already publishes (absent:
    /// not checked). Past [`MAX_INSTANCES`] the call is refused.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "optional_bounded")]
    pub other_licenses: Option<Vec<Value>>,
    /// The `FoundryInstance`s of the namespaces a previous answer's `claimCheck` named.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "optional_bounded")]
    pub other_instances: Option<Vec<Value>>,
}

/// A [`RouteCall`] whose parts the caller already holds, borrowed: it serialises to the same JSON, so a host with
/// thousands of instances sends them without copying them first.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RouteCallRef<'a, I: Serialize> {
    /// The license object.
    pub license: &'a Value,
    /// The instances.
    pub instances: &'a [I],
    /// The measured player counts.
    pub observations: &'a Value,
    /// The time of the decision (RFC 3339).
    pub now: &'a str,
    /// The other licenses of the cluster.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub other_licenses: Option<&'a [I]>,
    /// The instances of the namespaces a previous answer's `claimCheck` named.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub other_instances: Option<&'a [I]>,
}

fn instances_bounded<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<Value>, D::Error> {
    bounded_list(d, MAX_INSTANCES)
}

fn optional_bounded<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Vec<Value>>, D::Error> {
    bounded_list(d, MAX_INSTANCES).map(Some)
}

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
    /// The instances the hostname claims depend on; a live host reads them and decides again when they were not
    /// given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claim_check: Option<ClaimCheck>,
    /// Instances whose workflow must run again because the license changed what they were configured against (a
    /// live host labels them for Kratix to re-run).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reconfigure: Vec<String>,
    /// The `isActive` / `routeState` status patches of the instances whose status shows another route state.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub route_statuses: Vec<RouteStatusUpdate>,
    /// The license status to write (every owned key).
    pub status: LicenseStatus,
    /// The manifests to write, in file order.
    pub manifests: Vec<Manifest>,
    /// The exact files of the Kratix output directory.
    pub files: Vec<OutputFile>,
    /// The exact content of `status.yaml`.
    pub status_yaml: String,
}

/// Decides the routing of one license (typed form).
pub fn route(call: &RouteCall) -> Result<RouteDecision, Vec<InputError>> {
    let others =
        call.other_licenses.as_deref().map(|licenses| Others { licenses, instances: call.other_instances.as_deref() });
    route_parts(RouteInput {
        license: &call.license,
        instances: &call.instances,
        observations: &call.observations,
        now: call.now.as_deref(),
        others,
    })
}

/// [`route`] on borrowed parts (a preview routes many licenses against the same objects without copying them).
pub(crate) fn route_parts(input: RouteInput<'_>) -> Result<RouteDecision, Vec<InputError>> {
    let r = routing::decide(input)?;
    let status = license_status(&r);
    // Each manifest is rendered as YAML and kept as compact JSON as soon as it is built, so a license with
    // thousands of instances never holds all its manifests as `Value` trees at once.
    let mut files = Vec::new();
    let mut compact = Vec::new();
    routes::route_manifests(&r, |path, object| {
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
        claim_check: r.claim_check.clone(),
        reconfigure: r.reconfigure.clone(),
        route_statuses: r.route_statuses.clone(),
        status_yaml: yaml::to_yaml(&serde_json::to_value(&status).unwrap_or(Value::Null)),
        status,
        manifests: compact,
        files,
    })
}
