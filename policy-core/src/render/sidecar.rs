//! The player monitor sidecar of an instance pod: its container and the volume carrying its token. The pod runs
//! `host-runner monitor` beside Foundry; what the monitor writes is decided by `rules::monitor`.

use super::rbac::monitor_rbac;
use crate::names;
use crate::render::labels::INSTANCE_LABEL;
use crate::rules::monitor::{DEFAULT_INTERVAL_SECONDS, DEFAULT_STATUS_URL};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// Name of the monitor container in the instance pod.
pub(crate) const SIDECAR_CONTAINER: &str = "player-monitor";
/// Name of the pod volume that carries the monitor's service-account token (mounted in the monitor alone).
pub(crate) const TOKEN_VOLUME: &str = "player-monitor-token";
/// Where the token volume is mounted: where Kubernetes clients look for in-cluster credentials.
pub(crate) const TOKEN_MOUNT_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// The monitor sidecar of one instance, for the instance workload to include.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MonitorSidecar {
    /// The pod's `serviceAccountName`.
    pub service_account_name: String,
    /// The container, to append to the pod's `containers`.
    pub container: Value,
    /// Volumes to append to the pod's `volumes` (the monitor's token, mounted in the monitor only).
    pub volumes: Vec<Value>,
    /// The ServiceAccount, Role and RoleBinding, in that order, in the instance's namespace.
    pub manifests: Vec<Value>,
}

/// The monitor sidecar of `instance` in `namespace`, running `image` (the pipeline image, which is
/// `host-runner`).
///
/// The pod that includes it must: carry the label `foundry.platform/instance: <instance>` (the monitor reads its
/// instance name from it through the downward API), set `serviceAccountName` to
/// [`MonitorSidecar::service_account_name`] and `automountServiceAccountToken: false` (so the Foundry container,
/// which runs third-party modules, never holds the token; the monitor gets it through its own volume), and append
/// [`MonitorSidecar::volumes`] to its volumes. The manifests grant `get` and `patch` on this one instance's status
/// and nothing else.
pub fn monitor_sidecar(instance: &str, namespace: &str, image: &str) -> MonitorSidecar {
    let account = format!("{}monitor-{instance}", names::SERVICE_PREFIX);
    let container = json!({
        "name": SIDECAR_CONTAINER,
        "image": image,
        "args": [
            "monitor",
            "--status-url", DEFAULT_STATUS_URL,
            "--interval", DEFAULT_INTERVAL_SECONDS.to_string(),
            "--memory-mib", "32",
        ],
        "env": [
            {"name": "FOUNDRY_INSTANCE", "valueFrom": {"fieldRef": {"fieldPath": format!("metadata.labels['{INSTANCE_LABEL}']")}}},
            {"name": "FOUNDRY_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
        ],
        "resources": {
            "requests": {"cpu": "10m", "memory": "32Mi"},
            "limits": {"cpu": "100m", "memory": "96Mi"},
        },
        "securityContext": {
            "runAsNonRoot": true,
            "runAsUser": 65532,
            "runAsGroup": 65532,
            "allowPrivilegeEscalation": false,
            "readOnlyRootFilesystem": true,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "volumeMounts": [{"name": TOKEN_VOLUME, "mountPath": TOKEN_MOUNT_PATH, "readOnly": true}],
    });
    let volumes = vec![json!({
        "name": TOKEN_VOLUME,
        "projected": {"sources": [
            {"serviceAccountToken": {"path": "token", "expirationSeconds": 3607}},
            {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
            {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"fieldPath": "metadata.namespace"}}]}},
        ]},
    })];
    let manifests = monitor_rbac(&account, instance, namespace);
    MonitorSidecar { service_account_name: account, container, volumes, manifests }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sidecar_can_patch_only_its_own_instance() {
        let s = monitor_sidecar("alpha", "tabletop", "foundry-kratix/host-runner:0.1.0");
        assert_eq!(s.service_account_name, "foundry-monitor-alpha");
        let role = &s.manifests[1];
        assert_eq!(role["kind"], "Role");
        assert_eq!(
            role["rules"],
            json!([{"apiGroups": ["foundry.platform"], "resources": ["foundryinstances/status"],
                "resourceNames": ["alpha"], "verbs": ["get", "patch"]}])
        );
        assert_eq!(s.manifests[2]["subjects"][0]["name"], "foundry-monitor-alpha");
        assert_eq!(s.container["args"][0], "monitor");
        assert_eq!(s.container["securityContext"]["readOnlyRootFilesystem"], true);
        assert_eq!(s.container["securityContext"]["runAsNonRoot"], true);
        assert_eq!(s.container["env"][1]["valueFrom"]["fieldRef"]["fieldPath"], "metadata.namespace");
        assert_eq!(s.manifests[0]["automountServiceAccountToken"], false);
    }
}
