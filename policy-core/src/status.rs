//! The license status a routing decision writes.
//!
//! Kratix replaces each top-level status key a pipeline writes and keeps the others, so every key the platform
//! owns is written in full on every run, with explicit empty values (`""`, `[]`, `null`) rather than omissions
//! that would leave stale data. `conditions` is merged by Kratix per `type`; a condition keeps its
//! `lastTransitionTime` while its status does not change, so reruns give identical bytes.

use crate::routing::{RouteState, Routing};
use serde_json::{Value, json};

/// Condition types this platform owns on a license.
pub const READY: &str = "Ready";
/// True while a switch is held back by the player gate.
pub const SWITCH_BLOCKED: &str = "SwitchBlocked";

/// Builds the license status for a decision.
pub(crate) fn license_status(r: &Routing) -> Value {
    let active = r.active.clone().unwrap_or_default();
    let registered: Vec<Value> = r
        .instances
        .iter()
        .map(|i| json!({"name": i.name, "state": i.state.as_str(), "reason": i.reason, "message": i.message}))
        .collect();
    let warnings: Vec<Value> = r.warnings.iter().map(|w| json!({"code": w.code, "message": w.message})).collect();

    let (ready, ready_reason) = r.ready;
    let ready_message = match (&r.pending, ready) {
        (_, true) => "the active instance is the requested one".to_owned(),
        (Some(_), _) => first_message(r, "SwitchBlocked").unwrap_or_else(|| "a switch is blocked".into()),
        (None, _) => first_message(r, ready_reason).unwrap_or_else(|| "the requested instance is not active".into()),
    };
    let blocked = match &r.pending {
        Some(p) => condition(
            r,
            SWITCH_BLOCKED,
            true,
            p.reason,
            first_message(r, "SwitchBlocked").unwrap_or_else(|| "a switch is blocked".into()),
        ),
        None => condition(r, SWITCH_BLOCKED, false, "NoSwitchPending", "no switch is waiting".into()),
    };
    let conditions = vec![condition(r, READY, ready, ready_reason, ready_message), blocked];

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

    json!({
        "activeInstance": active,
        "desiredInstance": r.desired.clone().unwrap_or_default(),
        "registeredInstances": registered,
        "warnings": warnings,
        "pendingSince": r.pending.as_ref().map(|p| p.since.to_string()),
        "conditions": conditions,
        "message": message,
        // A failed run publishes why here; a good run clears it.
        "inputErrors": [],
        "activeInstanceStatus": crate::monitor::active_instance_status(r.active_status.as_ref()),
    })
}

/// The message of the first warning whose code starts with `prefix`.
fn first_message(r: &Routing, prefix: &str) -> Option<String> {
    r.warnings.iter().find(|w| w.code.starts_with(prefix)).map(|w| w.message.clone())
}

fn condition(r: &Routing, kind: &str, status: bool, reason: &str, message: String) -> Value {
    let status = if status { "True" } else { "False" };
    let previous = r.previous.conditions.iter().find(|c| c.get("type").and_then(Value::as_str) == Some(kind));
    let unchanged = previous.is_some_and(|c| c.get("status").and_then(Value::as_str) == Some(status));
    let since = previous
        .filter(|_| unchanged)
        .and_then(|c| c.get("lastTransitionTime"))
        .and_then(Value::as_str)
        .and_then(|t| crate::time::Timestamp::parse(t).ok())
        .unwrap_or(r.now);
    let mut c = json!({
        "type": kind,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": since.to_string(),
    });
    if let (Some(generation), Some(obj)) = (r.license.metadata.generation, c.as_object_mut()) {
        obj.insert("observedGeneration".into(), json!(generation));
    }
    c
}
