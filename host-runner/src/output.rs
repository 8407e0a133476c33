//! Writing decided files to disk, all or nothing.
//!
//! A run first stages every file in a hidden directory next to the target, then swaps them in. A failure before
//! the swap leaves the target as it was; a rerun replaces whatever an earlier attempt left. Paths come from the
//! policy and are checked here anyway: relative, no `..`, no absolute or hidden components.

use crate::error::RunError;
use std::path::{Component, Path, PathBuf};

/// Name of the staging directory inside a target directory.
const STAGING: &str = ".foundry-staging";

/// A file to write, relative to its target directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedFile {
    /// Relative path.
    pub path: String,
    /// Content.
    pub content: Vec<u8>,
}

fn out_err(path: &Path, e: &std::io::Error) -> RunError {
    RunError::Output { path: path.to_path_buf(), reason: e.to_string() }
}

/// Checks that `rel` is a plain relative path that stays inside its directory.
pub fn safe_relative(rel: &str) -> Result<PathBuf, RunError> {
    let path = Path::new(rel);
    let ok = !rel.is_empty()
        && path.components().all(|c| match c {
            Component::Normal(part) => !part.to_string_lossy().starts_with('.'),
            _ => false,
        });
    if ok {
        Ok(path.to_path_buf())
    } else {
        Err(RunError::Internal(format!("refusing to write outside the output directory: `{rel}`")))
    }
}

/// Replaces the whole content of `dir` with `files` (the directory itself may be a mount point, so it is kept).
pub fn replace_dir_contents(dir: &Path, files: &[PlannedFile]) -> Result<(), RunError> {
    std::fs::create_dir_all(dir).map_err(|e| out_err(dir, &e))?;
    let staging = dir.join(STAGING);
    if staging.exists() {
        std::fs::remove_dir_all(&staging).map_err(|e| out_err(&staging, &e))?;
    }
    let staged = stage(&staging, files);
    if let Err(e) = staged {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(e);
    }
    // Everything is staged: clear the old content, then move the new in.
    for entry in std::fs::read_dir(dir).map_err(|e| out_err(dir, &e))? {
        let entry = entry.map_err(|e| out_err(dir, &e))?;
        if entry.file_name() == STAGING {
            continue;
        }
        let path = entry.path();
        let result = if entry.file_type().map_err(|e| out_err(&path, &e))?.is_dir() {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
        result.map_err(|e| out_err(&path, &e))?;
    }
    for entry in std::fs::read_dir(&staging).map_err(|e| out_err(&staging, &e))? {
        let entry = entry.map_err(|e| out_err(&staging, &e))?;
        let target = dir.join(entry.file_name());
        std::fs::rename(entry.path(), &target).map_err(|e| out_err(&target, &e))?;
    }
    std::fs::remove_dir_all(&staging).map_err(|e| out_err(&staging, &e))
}

/// Writes one file atomically (temporary file in the same directory, then rename).
pub fn write_file_atomic(path: &Path, content: &[u8]) -> Result<(), RunError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| out_err(dir, &e))?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, content).map_err(|e| out_err(&tmp, &e))?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        out_err(path, &e)
    })
}

fn stage(staging: &Path, files: &[PlannedFile]) -> Result<(), RunError> {
    std::fs::create_dir_all(staging).map_err(|e| out_err(staging, &e))?;
    for file in files {
        let target = staging.join(safe_relative(&file.path)?);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(|e| out_err(parent, &e))?;
        }
        std::fs::write(&target, &file.content).map_err(|e| out_err(&target, &e))?;
    }
    Ok(())
}
