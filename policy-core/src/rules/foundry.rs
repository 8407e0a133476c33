//! Reading Foundry's `GET /api/status`: how many players are connected to an instance.
//!
//! Foundry answers `{"active": true, "version": "13.351", "world": "...", "system": "dnd5e", "users": 3, ...}`
//! while a world runs, and `{"active": false, "version": "..."}` on its setup screen. The host only fetches the
//! answer; what it means is decided here, so the license gate and the player monitor read it the same way. Anything
//! that is not a clear count (a timeout, a refused connection, another HTTP status, `users: null`, an HTML page) is
//! an unknown count, never zero: unknown blocks a switch in `block` mode.

use crate::error::InputError;
use crate::model::PlayerObservation;
use crate::text::shorten;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Largest status body read, in bytes; Foundry's is a few hundred.
pub const MAX_STATUS_BODY: usize = 64 * 1024;

/// What the host saw when it asked an instance for its status.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StatusFetch {
    /// The instance asked.
    pub instance: String,
    /// Its namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The HTTP status code, when an answer came.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_status: Option<u16>,
    /// The answer's body (at most [`MAX_STATUS_BODY`] bytes, lossily decoded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// Why no answer came (timeout, refused, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What the status means.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusReading {
    /// The player count, or why it is unknown; ready to go into `observations.players`.
    pub observation: PlayerObservation,
    /// A world is running.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub world_active: Option<bool>,
    /// The running world's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub world: Option<String>,
    /// The game system's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    /// Foundry's version (`generation.build`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub foundry_version: Option<String>,
}

/// Interprets one status fetch.
pub(crate) fn interpret(fetch: &StatusFetch) -> Result<StatusReading, InputError> {
    if fetch.instance.is_empty() {
        return Err(InputError::InvalidObservation {
            path: "instance".into(),
            detail: "the instance name is empty".into(),
        });
    }
    let unknown = |why: String| StatusReading {
        observation: PlayerObservation {
            instance: fetch.instance.clone(),
            namespace: fetch.namespace.clone(),
            connected: None,
            error: Some(why),
        },
        world_active: None,
        world: None,
        system: None,
        foundry_version: None,
    };
    if let Some(error) = &fetch.error {
        return Ok(unknown(shorten(error)));
    }
    match fetch.http_status {
        Some(200) => {}
        Some(code) => return Ok(unknown(format!("HTTP {code} from the status endpoint"))),
        None => return Ok(unknown("no answer".into())),
    }
    let body = fetch.body.as_deref().unwrap_or_default();
    let Ok(Value::Object(doc)) = serde_json::from_str::<Value>(body) else {
        return Ok(unknown("the answer is not Foundry's status JSON".into()));
    };
    let text = |key: &str| doc.get(key).and_then(Value::as_str).map(shorten);
    let Some(active) = doc.get("active").and_then(Value::as_bool) else {
        return Ok(unknown("the status JSON has no `active` flag".into()));
    };
    let connected = if active {
        match doc.get("users").and_then(Value::as_u64).and_then(|n| u32::try_from(n).ok()) {
            Some(n) => n,
            None => return Ok(unknown("a world is running but `users` is missing or not a count".into())),
        }
    } else {
        // The setup screen: no world runs, so nobody can be playing.
        0
    };
    Ok(StatusReading {
        observation: PlayerObservation {
            instance: fetch.instance.clone(),
            namespace: fetch.namespace.clone(),
            connected: Some(connected),
            error: None,
        },
        world_active: Some(active),
        world: if active { text("world") } else { None },
        system: if active { text("system") } else { None },
        foundry_version: text("version"),
    })
}
