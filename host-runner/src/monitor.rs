//! `host-runner monitor`: the player monitor sidecar of a Foundry pod.
//!
//! It polls Foundry's `/api/status` in the same pod, asks the policy (`foundry/instance/monitor`) what the answer
//! means and what to write, and merge-patches its own `FoundryInstance` status with exactly that. It never crashes
//! on a failed probe or API call: each failure is logged, reported in the status when the API allows, and retried
//! after the delay the policy chose (exponential, capped). Its service account may only `get` and `patch` the
//! status of its own instance, so it reads nothing else and writes nothing else.

use crate::cluster::{ClusterError, StatusTarget};
use crate::kube::{KubeClient, Resource};
use crate::policy::{Policy, PolicyError};
use crate::probe::HttpFetcher;
use policy_core::api::Timestamp;
use policy_core::api::monitor::MonitorCall;
use serde_json::Value;
use std::io::Write;
use std::time::Duration;

/// What the monitor watches and how often.
#[derive(Debug, Clone)]
pub struct MonitorSettings {
    /// The instance.
    pub instance: String,
    /// Its namespace.
    pub namespace: String,
    /// Foundry's status endpoint.
    pub status_url: String,
    /// Seconds between polls while they succeed.
    pub interval: u64,
    /// Cap of the backoff, in seconds.
    pub max_backoff: u64,
    /// Stop after this many polls (for tests and one-off checks); `None` runs for ever.
    pub iterations: Option<u64>,
}

/// Why the monitor stopped (only a bad configuration stops it).
#[derive(Debug, thiserror::Error)]
pub enum MonitorError {
    /// The policy refused the settings (e.g. an interval above the backoff cap).
    #[error(transparent)]
    Policy(#[from] PolicyError),
}

/// Runs the monitor loop. `clock` gives `now`; `sleep` waits (both injected so the loop reads no hidden state).
pub async fn run(
    policy: &Policy,
    cluster: &KubeClient,
    fetcher: &HttpFetcher,
    settings: &MonitorSettings,
    clock: &dyn Fn() -> Timestamp,
    log: &mut dyn Write,
) -> Result<(), MonitorError> {
    let target = StatusTarget {
        group: policy_core::model::GROUP.into(),
        version: policy_core::model::VERSION.into(),
        plural: Resource::Instance.plural().into(),
        namespace: settings.namespace.clone(),
        name: settings.instance.clone(),
    };
    let mut previous: Option<Value> = None;
    let mut failures: u32 = 0;
    let mut polls: u64 = 0;
    loop {
        if previous.is_none() {
            previous = match cluster.get_status(&target).await {
                Ok(Some(status)) => Some(status),
                Ok(None) => {
                    let _ =
                        writeln!(log, "monitor: FoundryInstance {}/{} does not exist", target.namespace, target.name);
                    None
                }
                Err(e) => {
                    let _ = writeln!(log, "monitor: reading the status failed: {e}");
                    None
                }
            };
        }
        let fetch = fetcher.fetch_async(&settings.status_url, &settings.instance, &settings.namespace).await;
        let decision = policy.monitor(&MonitorCall {
            previous: previous.clone().unwrap_or(Value::Null),
            fetch,
            now: Some(clock().to_string()),
            failures,
            interval_seconds: Some(settings.interval),
            max_backoff_seconds: Some(settings.max_backoff),
        })?;
        failures = decision.failures;
        let status = decision.patch.get("status").cloned().unwrap_or(Value::Null);
        match cluster.patch_status(&target, &status).await {
            Ok(now_held) => {
                previous = Some(now_held);
                let _ = writeln!(log, "monitor: {}", decision.message);
            }
            Err(e) => {
                // Read the status again next time: it may have changed, or the object may come back.
                previous = None;
                let hint = match &e {
                    ClusterError::Forbidden { .. } => " (the Role must grant get and patch on this instance's status)",
                    _ => "",
                };
                let _ = writeln!(log, "monitor: {}; writing the status failed: {e}{hint}", decision.message);
            }
        }
        polls += 1;
        if settings.iterations.is_some_and(|n| polls >= n) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_secs(decision.next_poll_seconds)).await;
    }
}
