//! The status a license or instance workflow writes, as types: [`LicenseStatus`] and [`InstanceStatus`] (the
//! Promises' status schemas are generated from them), and [`MonitorStatus`], the keys the player monitor writes.
//!
//! Kratix replaces each top-level status key a pipeline writes and keeps the others, so every key the platform
//! owns is written in full on every run, with explicit empty values (`""`, `[]`, `null`) rather than omissions
//! that would leave stale data. `conditions` is merged by Kratix per `type`; a condition keeps its
//! `lastTransitionTime` while its status does not change, so reruns give identical bytes.
//!
//! Fields are declared in the alphabetical order of their JSON names, so a status serialises with its keys in the
//! same order whether it is written from the type or from a JSON map.

use crate::error::Diagnostic;
use crate::model::Warning;
use crate::rules::instance::{Configured, admin_secret_command};
use crate::rules::monitor::read_activity;
use crate::rules::routing::{RouteState, Routing};
use crate::rules::volumes::StoragePlan;
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// Condition types this platform owns on a license.
pub const READY: &str = "Ready";
/// True while a switch is held back by the player gate.
pub const SWITCH_BLOCKED: &str = "SwitchBlocked";
/// On an instance: whether its admin key Secret is named (`True`) or the default one is awaited (`False`).
pub const ADMIN_KEY: &str = "AdminKeySecret";

/// A status condition, as Kubernetes writes them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// When the status last changed (RFC 3339).
    pub last_transition_time: String,
    /// The reason in words.
    pub message: String,
    /// The object's generation the condition was decided for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Machine reason.
    pub reason: String,
    /// `True` or `False`.
    pub status: String,
    /// The condition type (`Ready`, `SwitchBlocked`).
    #[serde(rename = "type")]
    pub kind: String,
}

/// The status of a `FoundryLicense`, written by its routing workflow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct LicenseStatus {
    /// The effective active instance; empty when none.
    pub active_instance: String,
    /// What the active instance's player monitor last reported; `null` without an active instance.
    pub active_instance_status: Option<ActiveInstanceStatus>,
    /// `Ready` and `SwitchBlocked`.
    pub conditions: Vec<Condition>,
    /// What `spec.activeInstanceName` asks for; empty when nothing.
    pub desired_instance: String,
    /// Why the last run refused the license (empty after a good run).
    pub input_errors: Vec<Diagnostic>,
    /// One line for `kubectl get`.
    pub message: String,
    /// Since when a switch has been held back by the player gate; `null` when none is.
    pub pending_since: Option<String>,
    /// Every instance of the license and its state.
    pub registered_instances: Vec<RegisteredInstance>,
    /// What the owner should know.
    pub warnings: Vec<Warning>,
}

/// One instance in a license's status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct RegisteredInstance {
    /// The reason in words.
    pub message: String,
    /// The instance.
    pub name: String,
    /// Machine reason.
    pub reason: String,
    /// `active` or `standby`.
    pub state: RouteState,
}

/// The active instance's players, as its monitor last reported them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct ActiveInstanceStatus {
    /// Connected players at the last reading; `null` when unknown.
    pub connected_players: Option<u32>,
    /// Since when nobody has been connected.
    pub idle_since: Option<String>,
    /// The last reading.
    pub last_checked_at: Option<String>,
    /// The last time players were seen.
    pub last_player_activity: Option<String>,
}

/// The status of a `FoundryInstance`, written by its configure and delete workflows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct InstanceStatus {
    /// Within the license's `restrictions.maxInstances`; `null` when the license was not found.
    pub admitted: Option<bool>,
    /// `Ready` and `AdminKeySecret`.
    pub conditions: Vec<Condition>,
    /// The `metadata.generation` of the spec this status was decided for (the license routes to an instance only
    /// when its workload is configured for its current generation).
    pub configured_generation: Option<i64>,
    /// The Foundry image.
    pub image: Option<String>,
    /// Why the last run refused the instance (empty after a good run).
    pub input_errors: Vec<Diagnostic>,
    /// The license it runs under.
    pub license: String,
    /// The license's `metadata.generation` the workflow configured it against (when the license changes, the
    /// license workflow has it configured again).
    pub license_generation: Option<i64>,
    /// One line for `kubectl get`.
    pub message: String,
    /// What `spec.foundryVersion` (or the license's default) asked for.
    pub resolved_from: Option<String>,
    /// The Foundry release it runs.
    pub resolved_version: Option<String>,
    /// Where its data lives.
    pub storage: Option<StorageStatus>,
    /// How its worlds and modules are provided.
    pub volumes: Option<BTreeMap<String, VolumeStatus>>,
    /// What the owner should know.
    pub warnings: Vec<Warning>,
}

/// Where an instance's data lives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct StorageStatus {
    /// `pvc` or `nfs`.
    pub backend: String,
    /// `retain` or `delete`.
    pub delete_policy: String,
    /// The location (`pvc/<claim>:<path>` or `nfs://<server><path>`).
    pub location: String,
}

/// How one kind of data (worlds or modules) is provided.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct VolumeStatus {
    /// The copy Job that fills it, while one runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub copy_job: Option<String>,
    /// `copied`: the source instance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// Where the instance reads it.
    pub location: String,
    /// `new`, `copied` or `shared`.
    pub mode: String,
    /// `shared`: the share.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub share: Option<String>,
}

/// The keys the player monitor sidecar writes into its instance's status (never written by a workflow). The
/// monitor writes a subset per reading; this type documents them all for the status schema.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct MonitorStatus {
    /// Connected players at the last reading; `null` when unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connected_players: Option<u32>,
    /// Foundry's version, as its status endpoint reports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub foundry_version: Option<String>,
    /// Since when nobody has been connected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_since: Option<String>,
    /// The last reading.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_checked_at: Option<String>,
    /// The last time players were seen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_player_activity: Option<String>,
    /// Why the last reading gave no count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monitor_error: Option<String>,
    /// The game system's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    /// The running world's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub world: Option<String>,
}

/// A condition that keeps its `lastTransitionTime` from `previous` (the object's current conditions) while its
/// status does not change, so reruns write identical bytes.
fn condition(
    previous: &[Value],
    kind: &str,
    status: bool,
    reason: &str,
    message: String,
    now: Timestamp,
    generation: Option<i64>,
) -> Condition {
    let status = if status { "True" } else { "False" };
    let before = previous.iter().find(|c| c.get("type").and_then(Value::as_str) == Some(kind));
    let unchanged = before.is_some_and(|c| c.get("status").and_then(Value::as_str) == Some(status));
    let since = before
        .filter(|_| unchanged)
        .and_then(|c| c.get("lastTransitionTime"))
        .and_then(Value::as_str)
        .and_then(|t| Timestamp::parse(t).ok())
        .unwrap_or(now);
    Condition {
        last_transition_time: since.to_string(),
        message,
        observed_generation: generation,
        reason: reason.to_owned(),
        status: status.to_owned(),
        kind: kind.to_owned(),
    }
}

/// The license status for a routing decision.
pub(crate) fn license_status(r: &Routing) -> LicenseStatus {
    let registered = r
        .instances
        .iter()
        .map(|i| RegisteredInstance {
            message: i.message.clone(),
            name: i.name.clone(),
            reason: i.reason.clone(),
            state: i.state,
        })
        .collect();
    let first_message =
        |prefix: &str| r.warnings.iter().find(|w| w.code.starts_with(prefix)).map(|w| w.message.clone());
    let (ready, ready_reason) = r.ready;
    let ready_message = match (&r.pending, ready) {
        (_, true) => "the active instance is the requested one".to_owned(),
        (Some(_), _) => first_message("SwitchBlocked").unwrap_or_else(|| "a switch is blocked".into()),
        (None, _) => first_message(ready_reason).unwrap_or_else(|| "the requested instance is not active".into()),
    };
    let generation = r.license.metadata.generation;
    let previous = &r.previous.conditions;
    let blocked = match &r.pending {
        Some(p) => condition(
            previous,
            SWITCH_BLOCKED,
            true,
            p.reason,
            first_message("SwitchBlocked").unwrap_or_else(|| "a switch is blocked".into()),
            r.now,
            generation,
        ),
        None => condition(
            previous,
            SWITCH_BLOCKED,
            false,
            "NoSwitchPending",
            "no switch is waiting".into(),
            r.now,
            generation,
        ),
    };
    let conditions = vec![condition(previous, READY, ready, ready_reason, ready_message, r.now, generation), blocked];

    let standby = r.instances.iter().filter(|i| i.state == RouteState::Standby).count();
    let mut message = match r.active.as_deref() {
        Some(a) => format!("active: {a}; {standby} on standby"),
        None => format!("no active instance; {standby} on standby"),
    };
    if let Some(p) = &r.pending {
        let to = if p.to.is_empty() { "deactivation".to_owned() } else { format!("switch to {}", p.to) };
        message.push_str(&format!("; {to} blocked since {}", p.since));
    } else if let Some(w) = r.warnings.first() {
        message.push_str(&format!("; warning: {}", w.code));
    }

    LicenseStatus {
        active_instance: r.active.clone().unwrap_or_default(),
        active_instance_status: r.active_status.as_ref().map(active_instance_status),
        conditions,
        desired_instance: r.desired.clone().unwrap_or_default(),
        // A failed run publishes why here; a good run clears it.
        input_errors: Vec::new(),
        message,
        pending_since: r.pending.as_ref().map(|p| p.since.to_string()),
        registered_instances: registered,
        warnings: r.warnings.clone(),
    }
}

/// The license status key `activeInstanceStatus`, from the active instance's status.
fn active_instance_status(status: &Value) -> ActiveInstanceStatus {
    let a = read_activity(Some(status));
    let at = |t: Option<Timestamp>| t.map(|t| t.to_string());
    ActiveInstanceStatus {
        connected_players: a.connected,
        idle_since: at(a.idle_since),
        last_checked_at: at(a.last_checked_at),
        last_player_activity: at(a.last_player_activity),
    }
}

/// The status key `storage` of a storage plan.
fn storage_status(plan: &StoragePlan) -> StorageStatus {
    StorageStatus {
        backend: plan.backend_name().to_owned(),
        delete_policy: plan.delete_policy_name().to_owned(),
        location: plan.data.describe(),
    }
}

/// The status key `volumes` of a storage plan.
fn volumes_status(plan: &StoragePlan) -> BTreeMap<String, VolumeStatus> {
    plan.volumes
        .iter()
        .map(|v| {
            let status = VolumeStatus {
                copy_job: v.copy.as_ref().map(|c| c.job.clone()),
                from: v.from.clone(),
                location: v.place.describe(),
                mode: v.mode.as_str().to_owned(),
                share: v.share.clone(),
            };
            (v.kind.as_str().to_owned(), status)
        })
        .collect()
}

/// The instance status for a decided workflow; `previous` is the instance's current status.
pub(crate) fn instance_status(c: &Configured, previous: Option<&Value>) -> InstanceStatus {
    let o = &c.outcome;
    let license_name = &c.instance.spec.license_ref.name;
    let generation = c.instance.metadata.generation;
    let (ready, reason, message) = &o.ready;
    let previous_conditions =
        previous.and_then(|s| s.get("conditions")).and_then(Value::as_array).map_or(&[][..], Vec::as_slice);
    let mut conditions =
        vec![condition(previous_conditions, READY, *ready, reason, message.clone(), c.now, generation)];
    if let Some(w) = &o.workload {
        let (status, reason, message) = if w.admin_key_defaulted {
            let create = admin_secret_command(&c.object.namespace, &w.admin_key.name);
            let message = format!(
                "Foundry starts once Secret `{}` (key `{}`) exists; create it with `{create}`",
                w.admin_key.name, w.admin_key.key
            );
            (false, "DefaultSecret", message)
        } else {
            let message = format!("the admin key is read from Secret `{}` key `{}`", w.admin_key.name, w.admin_key.key);
            (true, "Referenced", message)
        };
        conditions.push(condition(previous_conditions, ADMIN_KEY, status, reason, message, c.now, generation));
    }
    let summary = match &o.version {
        Some(v) => format!("Foundry {v}; license {license_name}"),
        None => message.clone(),
    };
    InstanceStatus {
        admitted: o.admitted,
        conditions,
        configured_generation: generation,
        image: o.image.clone(),
        // A failed run publishes why here; a good run clears it.
        input_errors: Vec::new(),
        license: license_name.clone(),
        license_generation: o.license_generation,
        message: summary,
        resolved_from: o.version_spec.clone(),
        resolved_version: o.version.clone(),
        storage: o.storage.as_ref().map(storage_status),
        volumes: o.storage.as_ref().map(volumes_status),
        warnings: o.warnings.clone(),
    }
}
