//! Finding the release catalog an operator gave, if any.
//!
//! The policy ships a catalog of Foundry releases. An operator replaces or extends it with a YAML or JSON file,
//! given with `--catalog`, or through `FOUNDRY_RELEASE_CATALOG` (which the Promises point at an optional
//! ConfigMap mount: when the ConfigMap does not exist the file is absent, and the shipped catalog is used). This
//! module only reads the file; what it means is the policy's business.

use crate::error::RunError;
use crate::load::{self, LoadError};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// Environment variable naming an operator catalog file that may be absent.
pub const CATALOG_ENV: &str = "FOUNDRY_RELEASE_CATALOG";

/// The operator's catalog as JSON, or `null` for the shipped one.
pub fn read(explicit: Option<&Path>, env: Option<PathBuf>) -> Result<Value, RunError> {
    let path = match (explicit, env) {
        (Some(path), _) => path.to_path_buf(),
        (None, Some(path)) if path.exists() => path,
        (None, _) => return Ok(Value::Null),
    };
    let bytes = std::fs::read(&path).map_err(|e| LoadError::Io { path: path.clone(), reason: e.to_string() })?;
    let mut docs = load::parse_documents(&path, &bytes)?;
    match (docs.len(), docs.pop()) {
        (1, Some(doc @ Value::Object(_))) => Ok(doc),
        _ => Err(LoadError::NotAnObject { path, index: 1 }.into()),
    }
}
