//! `foundry/platform/migrate`: the existing platform's objects rewritten in this platform's format, each change
//! explained, no data moved (the rules are in `rules::migrate`).

use crate::error::InputError;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use crate::rules::migrate::{
    Change, ChangeAction, DataLocation, LEGACY_BASE_DOMAIN, LEGACY_VERSION, LegacySettings, Migration, PASSWORD_KIND,
};

/// The input of `foundry/platform/migrate`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MigrateCall {
    /// `FoundryLicense`, `FoundryInstance` and `FoundryPassword` objects in the existing platform's format (or
    /// already in this one's: they come out unchanged).
    pub objects: Vec<Value>,
    /// The existing platform's pipeline settings.
    #[serde(default)]
    pub settings: LegacySettings,
}

/// Migrates a set of objects (`foundry/platform/migrate`).
pub fn migrate(call: &MigrateCall) -> Result<Migration, Vec<InputError>> {
    crate::rules::migrate::migrate(&call.objects, &call.settings)
}
