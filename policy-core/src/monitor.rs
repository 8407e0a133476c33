//! The player monitor: what the sidecar beside each Foundry server writes into its own instance's status, how the
//! rest of the platform reads it back, and the sidecar itself (container, pod volumes and RBAC) for the instance
//! workload.
//!
//! The sidecar (`host-runner monitor`) only fetches `/api/status` and patches; everything it writes is decided
//! here ([`decide`], operation `foundry/instance/monitor`): the reading ([`crate::foundry::interpret`]), the merge
//! patch built from the previous status and the reading, and when to poll next (exponential backoff while the
//! endpoint fails). The keys it owns ([`OWNED_KEYS`]) never overlap the keys the instance workflow writes, because
//! Kratix replaces a top-level status key whenever a workflow writes it. An unknown count is never written as zero.
//!
//! This module must not read a clock or do I/O: `now` comes from the call.

use crate::error::InputError;
use crate::foundry::{self, StatusFetch, StatusReading};
use crate::manifests::{INSTANCE_LABEL, PART_OF_LABEL};
use crate::names;
use crate::time::{Timestamp, shorten};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// The status keys the monitor owns on a `FoundryInstance`.
pub const OWNED_KEYS: [&str; 8] = [
    "connectedPlayers",
    "world",
    "system",
    "foundryVersion",
    "lastPlayerActivity",
    "idleSince",
    "lastCheckedAt",
    "monitorError",
];

/// Default seconds between two polls.
pub const DEFAULT_INTERVAL_SECONDS: u64 = 30;
/// Default cap of the backoff while the endpoint fails.
pub const DEFAULT_MAX_BACKOFF_SECONDS: u64 = 300;
/// A reading older than this is not trusted (the monitor may have stopped): its count is unknown.
pub const STALE_AFTER_SECONDS: u64 = 600;
/// Where the sidecar finds Foundry: the same pod, Foundry's own port.
pub const DEFAULT_STATUS_URL: &str = "http://127.0.0.1:30000/api/status";

/// The input of `foundry/instance/monitor`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MonitorCall {
    /// The instance's status as the API server last returned it (`null` when it has none).
    #[serde(default)]
    pub previous: Value,
    /// What the status endpoint answered.
    pub fetch: StatusFetch,
    /// The time of the reading (RFC 3339).
    #[serde(default)]
    pub now: Option<String>,
    /// Failed readings in a row before this one.
    #[serde(default)]
    pub failures: u32,
    /// Seconds between polls while readings succeed (default 30).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval_seconds: Option<u64>,
    /// Cap of the backoff (default 300).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_backoff_seconds: Option<u64>,
}

/// The answer of `foundry/instance/monitor`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MonitorDecision {
    /// The merge patch for the `status` subresource: `{"status": {...}}`, only [`OWNED_KEYS`].
    pub patch: Value,
    /// What the answer meant.
    pub reading: StatusReading,
    /// Failed readings in a row, this one included.
    pub failures: u32,
    /// Seconds until the next poll.
    pub next_poll_seconds: u64,
    /// One line for the log.
    pub message: String,
}

/// Decides the status patch and the next poll for one reading.
pub fn decide(call: &MonitorCall) -> Result<MonitorDecision, Vec<InputError>> {
    let now = parse_now(call.now.as_deref()).map_err(|e| vec![e])?;
    let interval = call.interval_seconds.unwrap_or(DEFAULT_INTERVAL_SECONDS);
    let cap = call.max_backoff_seconds.unwrap_or(DEFAULT_MAX_BACKOFF_SECONDS);
    if interval == 0 || interval > cap {
        return Err(vec![InputError::InvalidObservation {
            path: "intervalSeconds".into(),
            detail: format!("the interval must be between 1 and the backoff cap ({cap}s); got {interval}"),
        }]);
    }
    let reading = foundry::interpret(&call.fetch).map_err(|e| vec![e])?;
    let previous = read_activity(Some(&call.previous));
    let mut status = Map::new();
    let stamp = |t: Timestamp| Value::String(t.to_string());
    let at = |t: Option<Timestamp>| t.map_or(Value::Null, stamp);
    status.insert("lastCheckedAt".into(), stamp(now));
    let (failures, next, message) = match (reading.observation.connected, &reading.observation.error) {
        (Some(n), _) => {
            status.insert("connectedPlayers".into(), json!(n));
            let opt = |v: &Option<String>| v.clone().map_or(Value::Null, Value::String);
            status.insert("world".into(), opt(&reading.world));
            status.insert("system".into(), opt(&reading.system));
            status.insert("foundryVersion".into(), opt(&reading.foundry_version));
            if n > 0 {
                status.insert("lastPlayerActivity".into(), stamp(now));
                status.insert("idleSince".into(), Value::Null);
            } else {
                // Nobody is connected: the last activity stays what it was, and the idle time runs from the first
                // reading that saw nobody (a later start than the true one, so idleness is never overstated).
                status.insert("lastPlayerActivity".into(), at(previous.last_player_activity));
                let since = match (previous.connected, previous.idle_since) {
                    (Some(0), Some(since)) if since <= now => since,
                    _ => now,
                };
                status.insert("idleSince".into(), stamp(since));
            }
            status.insert("monitorError".into(), Value::Null);
            (0, interval, format!("{n} connected"))
        }
        (None, error) => {
            let why = error.clone().unwrap_or_else(|| "no count".into());
            // Unknown is never zero: nobody may claim this instance is idle until a reading succeeds again. The
            // last known world, system and version stay as they were.
            status.insert("connectedPlayers".into(), Value::Null);
            status.insert("idleSince".into(), Value::Null);
            status.insert("monitorError".into(), Value::String(why.clone()));
            let failures = call.failures.saturating_add(1);
            let exponent = failures.min(16);
            let next = interval.saturating_mul(1u64 << exponent).min(cap);
            (failures, next, format!("player count unknown ({why}); next poll in {next}s"))
        }
    };
    Ok(MonitorDecision {
        patch: json!({ "status": Value::Object(status) }),
        reading,
        failures,
        next_poll_seconds: next,
        message,
    })
}

fn parse_now(now: Option<&str>) -> Result<Timestamp, InputError> {
    let text = now.ok_or_else(|| InputError::InvalidObservation {
        path: "now".into(),
        detail: "missing field `now`: the policy has no clock, so the caller must give the time".into(),
    })?;
    Timestamp::parse(text).map_err(|e| InputError::InvalidObservation { path: "now".into(), detail: e.to_string() })
}

/// What an instance's status says about its players, read leniently (a damaged value reads as unknown).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlayerActivity {
    /// Connected players at the last reading, when it gave a count.
    pub connected: Option<u32>,
    /// The last time players were seen.
    pub last_player_activity: Option<Timestamp>,
    /// Since when nobody has been connected.
    pub idle_since: Option<Timestamp>,
    /// The last reading.
    pub last_checked_at: Option<Timestamp>,
    /// Why the last reading gave no count.
    pub error: Option<String>,
}

/// Reads the monitor's keys from an instance status.
pub fn read_activity(status: Option<&Value>) -> PlayerActivity {
    let get = |key: &str| status.and_then(|s| s.get(key));
    let time = |key: &str| get(key).and_then(Value::as_str).and_then(|t| Timestamp::parse(t).ok());
    PlayerActivity {
        connected: get("connectedPlayers").and_then(Value::as_u64).and_then(|n| u32::try_from(n).ok()),
        last_player_activity: time("lastPlayerActivity"),
        idle_since: time("idleSince"),
        last_checked_at: time("lastCheckedAt"),
        error: get("monitorError").and_then(Value::as_str).map(shorten),
    }
}

impl PlayerActivity {
    /// The reading is recent enough to be trusted at `now`.
    pub fn fresh(&self, now: Timestamp) -> bool {
        self.last_checked_at.is_some_and(|t| t <= now.plus(60) && now.seconds_since(t) <= STALE_AFTER_SECONDS)
    }

    /// The players connected at `now`, when a fresh reading gave a count.
    pub fn players(&self, now: Timestamp) -> Option<u32> {
        self.connected.filter(|_| self.fresh(now))
    }

    /// How long nobody has been connected, when a fresh reading says nobody is.
    pub fn idle_seconds(&self, now: Timestamp) -> Option<u64> {
        match (self.players(now), self.idle_since) {
            (Some(0), Some(since)) if since <= now => Some(now.seconds_since(since)),
            _ => None,
        }
    }
}

/// The license status key `activeInstanceStatus`, from the active instance's status; `null` without one.
pub(crate) fn active_instance_status(status: Option<&Value>) -> Value {
    let Some(status) = status else { return Value::Null };
    let a = read_activity(Some(status));
    let at = |t: Option<Timestamp>| t.map_or(Value::Null, |t| Value::String(t.to_string()));
    json!({
        "connectedPlayers": a.connected,
        "lastPlayerActivity": at(a.last_player_activity),
        "idleSince": at(a.idle_since),
        "lastCheckedAt": at(a.last_checked_at),
    })
}

/// Name of the monitor container in the instance pod.
pub const SIDECAR_CONTAINER: &str = "player-monitor";
/// Name of the pod volume that carries the monitor's service-account token (mounted in the monitor alone).
pub const TOKEN_VOLUME: &str = "player-monitor-token";
/// Where the token volume is mounted: where Kubernetes clients look for in-cluster credentials.
pub const TOKEN_MOUNT_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

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
    let labels = json!({PART_OF_LABEL: "foundry-vtt", INSTANCE_LABEL: instance});
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
    let meta = json!({"name": account, "namespace": namespace, "labels": labels});
    let manifests = vec![
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta, "automountServiceAccountToken": false}),
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": meta,
            "rules": [{
                "apiGroups": [crate::model::GROUP],
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
    ];
    MonitorSidecar { service_account_name: account, container, volumes, manifests }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owned_keys_never_overlap_the_instance_workflow_keys() {
        let call = crate::instance::InstanceCall {
            instance: json!({"apiVersion": "foundry.platform/v1alpha1", "kind": "FoundryInstance",
                "metadata": {"name": "alpha", "namespace": "t"}, "spec": {"licenseRef": {"name": "guild"}}}),
            license: json!({"apiVersion": "foundry.platform/v1alpha1", "kind": "FoundryLicense",
                "metadata": {"name": "guild", "namespace": "t"},
                "spec": {"licenseSecretRef": {"name": "l", "key": "k"}, "baseDomain": "play.example.org"}}),
            observations: json!({"now": "2026-11-22T18:30:00Z"}),
            ..Default::default()
        };
        let decision = crate::instance::configure(&call).unwrap();
        let workflow_keys: Vec<&String> = decision.status.as_object().unwrap().keys().collect();
        assert!(!workflow_keys.is_empty());
        for key in workflow_keys {
            assert!(!OWNED_KEYS.contains(&key.as_str()), "{key} is written by both");
        }
    }

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

    #[test]
    fn backoff_doubles_and_is_capped() {
        let mut call = MonitorCall {
            fetch: StatusFetch { instance: "a".into(), error: Some("refused".into()), ..Default::default() },
            now: Some("2026-11-22T18:30:00Z".into()),
            ..Default::default()
        };
        let mut delays = Vec::new();
        for _ in 0..6 {
            let d = decide(&call).unwrap();
            delays.push(d.next_poll_seconds);
            call.failures = d.failures;
        }
        assert_eq!(delays, [60, 120, 240, 300, 300, 300]);
    }
}
