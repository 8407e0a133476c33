//! The key facts of a routing decision, in one shape for both the policy's answer and the Rego decision, so the
//! two can be compared: the active instance, each instance's state, reason, backend and hostname, and the warning
//! codes in order.

use serde_json::{Value, json};

/// The key facts of a decision object (`RouteDecision` JSON, or the Rego `decision`).
pub fn of(decision: &Value) -> Value {
    let instances: Vec<Value> = decision
        .get("instances")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|i| {
            let backend = i.get("backend").cloned().unwrap_or_default();
            json!({
                "name": i.get("name"),
                "state": i.get("state"),
                "reason": i.get("reason"),
                "backend": format!(
                    "{}/{}:{}",
                    backend.get("namespace").and_then(Value::as_str).unwrap_or_default(),
                    backend.get("name").and_then(Value::as_str).unwrap_or_default(),
                    backend.get("port").and_then(Value::as_u64).unwrap_or_default(),
                ),
                "hostname": i.get("hostname"),
            })
        })
        .collect();
    let warnings: Vec<Value> = decision
        .get("warnings")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|w| w.get("code").cloned().unwrap_or_default())
        .collect();
    json!({
        "activeInstance": decision.get("activeInstance"),
        "desiredInstance": decision.get("desiredInstance"),
        "instances": instances,
        "warnings": warnings,
    })
}
