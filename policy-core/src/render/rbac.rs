//! The RBAC the platform's generated workloads run with: each player monitor may `get` and `patch` the status of
//! its own instance and nothing else.

use crate::model::GROUP;
use crate::render::labels::{INSTANCE_LABEL, PART_OF, PART_OF_LABEL};
use serde_json::{Value, json};

/// The ServiceAccount, Role and RoleBinding, in that order, of the monitor of `instance` in `namespace`, running as
/// `account`.
pub(crate) fn monitor_rbac(account: &str, instance: &str, namespace: &str) -> Vec<Value> {
    let labels = json!({PART_OF_LABEL: PART_OF, INSTANCE_LABEL: instance});
    let meta = json!({"name": account, "namespace": namespace, "labels": labels});
    vec![
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta, "automountServiceAccountToken": false}),
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": meta,
            "rules": [{
                "apiGroups": [GROUP],
                "resources": ["foundryinstances/status"],
                "resourceNames": [instance],
                "verbs": ["get", "patch"],
            }],
        }),
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": meta,
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": account},
            "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": namespace}],
        }),
    ]
}
