//! The player monitor: what the sidecar beside each Foundry server writes into its own instance's status, and how
//! the rest of the platform reads it back. (The sidecar's container and RBAC are rendered by `render::sidecar`.)
//!
//! The sidecar (`host-runner monitor`) only fetches `/api/status` and patches; everything it writes is decided
//! here (operation `foundry/instance/monitor`): the reading (`rules::foundry`), the merge
//! patch built from the previous status and the reading, and when to poll next (exponential backoff while the
//! endpoint fails). The keys it owns ([`OWNED_KEYS`]) never overlap the keys the instance workflow writes, because
//! Kratix replaces a top-level status key whenever a workflow writes it. An unknown count is never written as zero.
//!
//! This module must not read a clock or do I/O: `now` comes from the call.

use crate::error::InputError;
use crate::rules::foundry::{self, StatusFetch, StatusReading};
use crate::text::shorten;
use crate::time::Timestamp;
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

/// One poll of the monitor, as the rules see it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Poll<'a> {
    /// The instance's status as the API server last returned it.
    pub(crate) previous: &'a Value,
    /// The time of the reading.
    pub(crate) now: Timestamp,
    /// Failed readings in a row before this one.
    pub(crate) failures: u32,
    /// Seconds between polls while readings succeed.
    pub(crate) interval_seconds: Option<u64>,
    /// Cap of the backoff.
    pub(crate) max_backoff_seconds: Option<u64>,
}

/// What the monitor writes and when it polls next.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct MonitorOutcome {
    /// The merge patch for the `status` subresource.
    pub(crate) patch: Value,
    /// Failed readings in a row, this one included.
    pub(crate) failures: u32,
    /// Seconds until the next poll.
    pub(crate) next_poll_seconds: u64,
    /// One line for the log.
    pub(crate) message: String,
}

/// Decides the status patch and the next poll for one reading.
pub(crate) fn decide(fetch: &StatusFetch, poll: &Poll<'_>) -> Result<(StatusReading, MonitorOutcome), InputError> {
    let now = poll.now;
    let interval = poll.interval_seconds.unwrap_or(DEFAULT_INTERVAL_SECONDS);
    let cap = poll.max_backoff_seconds.unwrap_or(DEFAULT_MAX_BACKOFF_SECONDS);
    if interval == 0 || interval > cap {
        return Err(InputError::InvalidObservation {
            path: "intervalSeconds".into(),
            detail: format!("the interval must be between 1 and the backoff cap ({cap}s); got {interval}"),
        });
    }
    let reading = foundry::interpret(fetch)?;
    let previous = read_activity(Some(poll.previous));
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
            let failures = poll.failures.saturating_add(1);
            let exponent = failures.min(16);
            let next = interval.saturating_mul(1u64 << exponent).min(cap);
            (failures, next, format!("player count unknown ({why}); next poll in {next}s"))
        }
    };
    let outcome = MonitorOutcome {
        patch: json!({ "status": Value::Object(status) }),
        failures,
        next_poll_seconds: next,
        message,
    };
    Ok((reading, outcome))
}

/// What an instance's status says about its players, read leniently (a damaged value reads as unknown).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct PlayerActivity {
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
pub(crate) fn read_activity(status: Option<&Value>) -> PlayerActivity {
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
    pub(crate) fn fresh(&self, now: Timestamp) -> bool {
        self.last_checked_at.is_some_and(|t| t <= now.plus(60) && now.seconds_since(t) <= STALE_AFTER_SECONDS)
    }

    /// The players connected at `now`, when a fresh reading gave a count.
    pub(crate) fn players(&self, now: Timestamp) -> Option<u32> {
        self.connected.filter(|_| self.fresh(now))
    }

    /// How long nobody has been connected, when a fresh reading says nobody is.
    pub(crate) fn idle_seconds(&self, now: Timestamp) -> Option<u64> {
        match (self.players(now), self.idle_since) {
            (Some(0), Some(since)) if since <= now => Some(now.seconds_since(since)),
            _ => None,
        }
    }
}
