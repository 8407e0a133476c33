//! `foundry/instance/observe`: what an instance's answer to `GET /api/status` means (the player count, or why it
//! is unknown), read the same way by the license workflow's player probe and the player monitor.

use crate::error::InputError;
use crate::rules::foundry;

pub use crate::rules::foundry::{MAX_STATUS_BODY, StatusFetch, StatusReading};

/// Interprets one status fetch (typed form).
pub fn observe(fetch: &StatusFetch) -> Result<StatusReading, Vec<InputError>> {
    foundry::interpret(fetch).map_err(|e| vec![e])
}
