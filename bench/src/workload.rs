//! The benchmark's routing call: one license with `n` instances, deciding a switch that the player gate holds back.
//!
//! The call is realistic and exercises every rule: the license asks to switch from `inst-00000` (two players
//! connected, a grace period running) to `inst-00001`; every tenth instance is scheduled for deletion; the standby
//! page lives in another namespace, so a ReferenceGrant is written too. Names sort in numeric order.

use serde_json::{Value, json};
use std::path::Path;

/// The time of the decision.
pub const NOW: &str = "2026-11-22T18:30:00Z";

/// The name of instance `i`.
pub fn instance_name(i: usize) -> String {
    format!("inst-{i:05}")
}

/// The license of the workload.
pub fn license() -> Value {
    json!({
        "apiVersion": "foundry.platform/v1alpha1",
        "kind": "FoundryLicense",
        "metadata": {"name": "guild", "namespace": "games", "generation": 7},
        "spec": {
            "licenseSecretRef": {"name": "foundry-license", "key": "license-key"},
            "activeInstanceName": instance_name(1),
            "switchMode": "block",
            "switchGracePeriod": "2h",
            "gateway": {"baseDomain": "play.example.org", "parentRef": {"name": "gw", "namespace": "gateway-system"}},
        },
        "status": {"activeInstance": instance_name(0), "pendingSince": "2026-11-22T18:00:00Z"},
    })
}

/// Instance `i` of the workload.
pub fn instance(i: usize) -> Value {
    let mut metadata = json!({"name": instance_name(i), "namespace": "games"});
    if i >= 2
        && i.is_multiple_of(10)
        && let Some(meta) = metadata.as_object_mut()
    {
        meta.insert("annotations".into(), json!({"foundry.platform/scheduled-delete-at": "2026-12-01T00:00:00Z"}));
    }
    json!({
        "apiVersion": "foundry.platform/v1alpha1",
        "kind": "FoundryInstance",
        "metadata": metadata,
        "spec": {"licenseRef": {"name": "guild"}, "foundryVersion": "13.x"},
        // Configured by its own workflow, as in a running platform.
        "status": {"conditions": [{"type": "Ready", "status": "True", "reason": "Configured"}]},
    })
}

/// The observations: the players of the current instance.
pub fn observations() -> Value {
    json!({"players": [{"instance": instance_name(0), "connected": 2}]})
}

/// The `foundry/license/route` call with `n` instances.
pub fn route_call(n: usize) -> Value {
    json!({
        "license": license(),
        "instances": (0..n).map(instance).collect::<Vec<_>>(),
        "observations": observations(),
        "now": NOW,
    })
}

/// Writes the workload as `host-runner preview` reads it: `platform/license.yaml`, `platform/instances.yaml` (a
/// `kind: List`, as `kubectl get -o yaml` writes it) and `observations.yaml` under `dir`. Returns the two paths to
/// pass.
pub fn write_preview_files(n: usize, dir: &Path) -> std::io::Result<(std::path::PathBuf, std::path::PathBuf)> {
    let platform = dir.join("platform");
    std::fs::create_dir_all(&platform)?;
    std::fs::write(platform.join("license.yaml"), policy_core::api::to_yaml(&license()))?;
    let list = json!({"apiVersion": "v1", "kind": "List", "items": (0..n).map(instance).collect::<Vec<_>>()});
    std::fs::write(platform.join("instances.yaml"), policy_core::api::to_yaml(&list))?;
    let observations_file = dir.join("observations.yaml");
    let mut file = observations();
    if let Some(map) = file.as_object_mut() {
        map.insert("now".into(), json!(NOW));
    }
    std::fs::write(&observations_file, policy_core::api::to_yaml(&file))?;
    Ok((platform, observations_file))
}
