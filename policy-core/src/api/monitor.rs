//! `foundry/instance/monitor`: what the player monitor sidecar writes into its instance's status after one poll
//! of Foundry's status endpoint, and when it polls next.

use crate::error::InputError;
use crate::input::parse_now;
use crate::rules::foundry::{StatusFetch, StatusReading};
use crate::rules::monitor::{self, Poll};
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use crate::render::sidecar::{MonitorSidecar, monitor_sidecar};
pub use crate::render::status::MonitorStatus;
pub use crate::rules::monitor::{
    DEFAULT_INTERVAL_SECONDS, DEFAULT_MAX_BACKOFF_SECONDS, DEFAULT_STATUS_URL, OWNED_KEYS, STALE_AFTER_SECONDS,
};

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

/// Decides the status patch and the next poll for one reading (typed form).
pub fn decide(call: &MonitorCall) -> Result<MonitorDecision, Vec<InputError>> {
    let now = parse_now(call.now.as_deref()).map_err(|e| vec![e])?;
    let poll = Poll {
        previous: &call.previous,
        now,
        failures: call.failures,
        interval_seconds: call.interval_seconds,
        max_backoff_seconds: call.max_backoff_seconds,
    };
    let (reading, outcome) = monitor::decide(&call.fetch, &poll).map_err(|e| vec![e])?;
    Ok(MonitorDecision {
        patch: outcome.patch,
        reading,
        failures: outcome.failures,
        next_poll_seconds: outcome.next_poll_seconds,
        message: outcome.message,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn owned_keys_never_overlap_the_instance_workflow_keys() {
        let call = crate::api::instance::InstanceCall {
            instance: json!({"apiVersion": "foundry.platform/v1alpha1", "kind": "FoundryInstance",
                "metadata": {"name": "alpha", "namespace": "t"}, "spec": {"licenseRef": {"name": "guild"}}}),
            license: json!({"apiVersion": "foundry.platform/v1alpha1", "kind": "FoundryLicense",
                "metadata": {"name": "guild", "namespace": "t"},
                "spec": {"licenseSecretRef": {"name": "l", "key": "k"}, "baseDomain": "play.example.org"}}),
            now: Some("2026-11-22T18:30:00Z".into()),
            ..Default::default()
        };
        let decision = crate::api::instance::configure(&call).unwrap();
        let status = serde_json::to_value(&decision.status).unwrap();
        let workflow_keys: Vec<&String> = status.as_object().unwrap().keys().collect();
        assert!(!workflow_keys.is_empty());
        for key in workflow_keys {
            assert!(!OWNED_KEYS.contains(&key.as_str()), "{key} is written by both");
        }
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
