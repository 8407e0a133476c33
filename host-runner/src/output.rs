//! Writing decided files to disk: a directory's whole content, with its status file, replaced in one step or not
//! at all.
//!
//! A run writes everything it will publish before it touches what is there: the status file's temporary copy
//! first (so a full disk fails the run before the output is touched), then a complete staged copy of the output
//! directory. Then it swaps:
//!
//! - **The directory's parent is writable and the directory is not a mount point** (`preview --out`, a pipeline
//!   run on a plain directory): the copy is staged as a hidden sibling and exchanged with the directory by one
//!   `renameat2(RENAME_EXCHANGE)`; the status file is then renamed into place, and if that fails the exchange is
//!   undone. A reader sees the old directory or the new one, never a mix. (`preview --out` stages the directory
//!   holding both `output/` and `metadata/`, so output and status change in that one exchange.) On a filesystem
//!   without `RENAME_EXCHANGE` the directory is moved aside and the copy renamed in: it is then missing for the
//!   time of one rename, never partial.
//! - **The directory is a mount point, or its parent is read-only** (Kratix: `/kratix/output` is its own volume
//!   on a read-only root filesystem): the copy is staged inside the directory, the old entries are moved into a
//!   hidden directory beside it, the new ones moved in, and the old ones deleted; a failure moves everything back.
//!   A `kill -9` in the middle leaves a mix, which nothing reads: Kratix runs the work-writer and applies
//!   `status.yaml` only after every container exited 0, and the container's next attempt (same volumes with the
//!   default `restartPolicy: OnFailure`, fresh ones otherwise) replaces all of it.
//!
//! Temporary files and directories are removed on failure, and leftovers of a killed run are removed by the next.
//! Paths come from the policy and are checked here anyway: relative, no `..`, no absolute or hidden components.

use crate::error::RunError;
use std::fs::File;
use std::io::Write;
use std::path::{Component, Path, PathBuf};

/// Name of the staging directory inside a target directory (when the copy cannot be staged beside it).
const STAGING: &str = ".foundry-staging";
/// Name of the directory the old entries are moved into while they are replaced in place.
const OLD: &str = ".foundry-old";

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

/// Replaces the whole content of `dir` with `files` (see the module documentation for the guarantee).
pub fn replace_dir_contents(dir: &Path, files: &[PlannedFile]) -> Result<(), RunError> {
    replace(dir, files, &[], None)
}

/// Replaces the whole content of `dir` with `files` and the (possibly empty) directories `dirs`, all relative to
/// `dir`, in one step.
pub fn replace_dir_tree(dir: &Path, files: &[PlannedFile], dirs: &[&str]) -> Result<(), RunError> {
    replace(dir, files, dirs, None)
}

/// Replaces the whole content of `dir` with `files` and the file `status_path` with `status`: both, or neither
/// with the old output intact (see the module documentation for the guarantee in each case).
pub fn replace_output_and_status(
    dir: &Path,
    files: &[PlannedFile],
    status_path: &Path,
    status: &[u8],
) -> Result<(), RunError> {
    replace(dir, files, &[], Some((status_path, status)))
}

/// Writes one file atomically (temporary file in the same directory, synced, then renamed; removed on failure).
pub fn write_file_atomic(path: &Path, content: &[u8]) -> Result<(), RunError> {
    let tmp = write_temporary(path, content)?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        out_err(path, &e)
    })
}

/// The temporary copy of `path`, written and synced; removed again when that fails.
fn write_temporary(path: &Path, content: &[u8]) -> Result<PathBuf, RunError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| out_err(dir, &e))?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp"));
    let written = File::create(&tmp).and_then(|mut f| {
        f.write_all(content)?;
        f.sync_all()
    });
    match written {
        Ok(()) => Ok(tmp),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(out_err(&tmp, &e))
        }
    }
}

fn stage(staging: &Path, files: &[PlannedFile], dirs: &[&str]) -> Result<(), RunError> {
    std::fs::create_dir_all(staging).map_err(|e| out_err(staging, &e))?;
    for rel in dirs {
        let target = staging.join(safe_relative(rel)?);
        std::fs::create_dir_all(&target).map_err(|e| out_err(&target, &e))?;
    }
    for file in files {
        let target = staging.join(safe_relative(&file.path)?);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(|e| out_err(parent, &e))?;
        }
        std::fs::write(&target, &file.content).map_err(|e| out_err(&target, &e))?;
    }
    // One flush of the filesystem instead of one per file: the copy is on disk before it replaces anything.
    let dir = File::open(staging).map_err(|e| out_err(staging, &e))?;
    rustix::fs::syncfs(&dir).map_err(|e| out_err(staging, &e.into()))
}

/// Whether `dir` is a mount point (another device than its parent).
fn is_mount_point(dir: &Path, parent: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(dir), std::fs::metadata(parent)) {
        (Ok(d), Ok(p)) => d.dev() != p.dev(),
        _ => false,
    }
}

fn remove_any(path: &Path) -> std::io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

fn replace(dir: &Path, files: &[PlannedFile], dirs: &[&str], status: Option<(&Path, &[u8])>) -> Result<(), RunError> {
    for file in files {
        safe_relative(&file.path)?;
    }
    for rel in dirs {
        safe_relative(rel)?;
    }
    let status_tmp = match status {
        Some((path, content)) => Some((write_temporary(path, content)?, path)),
        None => None,
    };
    let result = swap_in(dir, files, dirs, status_tmp.as_ref().map(|(tmp, path)| (tmp.as_path(), *path)));
    if let (Err(_), Some((tmp, _))) = (&result, &status_tmp) {
        let _ = std::fs::remove_file(tmp);
    }
    result
}

/// Stages `files` and swaps them in for `dir`'s content, then renames `status` (temporary, final) into place.
fn swap_in(dir: &Path, files: &[PlannedFile], dirs: &[&str], status: Option<(&Path, &Path)>) -> Result<(), RunError> {
    let parent = dir.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "output".into());
    let sibling = parent.join(format!(".{name}.foundry-new"));
    // Leftovers of a killed run.
    let _ = remove_any(&sibling);
    let _ = remove_any(&dir.join(STAGING));
    let beside = !is_mount_point(dir, parent) && std::fs::create_dir_all(&sibling).is_ok();
    if beside {
        if let Err(e) = stage(&sibling, files, dirs) {
            let _ = remove_any(&sibling);
            return Err(e);
        }
        exchange_beside(dir, &sibling, status)
    } else {
        std::fs::create_dir_all(dir).map_err(|e| out_err(dir, &e))?;
        let staging = dir.join(STAGING);
        if let Err(e) = stage(&staging, files, dirs) {
            let _ = remove_any(&staging);
            return Err(e);
        }
        move_in_place(dir, &staging, status)
    }
}

/// Exchanges the staged sibling with `dir` (one `renameat2`), then renames the status in; undoes the exchange when
/// that fails.
fn exchange_beside(dir: &Path, staged: &Path, status: Option<(&Path, &Path)>) -> Result<(), RunError> {
    let exchanged = if dir.exists() {
        match rustix::fs::renameat_with(
            rustix::fs::CWD,
            staged,
            rustix::fs::CWD,
            dir,
            rustix::fs::RenameFlags::EXCHANGE,
        ) {
            Ok(()) => true,
            Err(rustix::io::Errno::INVAL | rustix::io::Errno::NOSYS | rustix::io::Errno::NOTSUP) => {
                // No RENAME_EXCHANGE here: move the old directory aside, then the new one in.
                let aside = staged.with_extension("foundry-old");
                let _ = remove_any(&aside);
                std::fs::rename(dir, &aside).map_err(|e| out_err(dir, &e))?;
                if let Err(e) = std::fs::rename(staged, dir) {
                    let _ = std::fs::rename(&aside, dir);
                    let _ = remove_any(staged);
                    return Err(out_err(dir, &e));
                }
                std::fs::rename(&aside, staged).map_err(|e| out_err(staged, &e))?;
                true
            }
            Err(e) => {
                let _ = remove_any(staged);
                return Err(out_err(dir, &e.into()));
            }
        }
    } else {
        std::fs::rename(staged, dir).map_err(|e| {
            let _ = remove_any(staged);
            out_err(dir, &e)
        })?;
        false
    };
    if let Some((tmp, path)) = status
        && let Err(e) = std::fs::rename(tmp, path)
    {
        // Put the old output back: the run fails with what was there before.
        if exchanged {
            let _ = rustix::fs::renameat_with(
                rustix::fs::CWD,
                staged,
                rustix::fs::CWD,
                dir,
                rustix::fs::RenameFlags::EXCHANGE,
            );
        } else {
            let _ = std::fs::rename(dir, staged);
        }
        let _ = remove_any(staged);
        return Err(out_err(path, &e));
    }
    // `staged` now holds the old content; a copy that cannot be removed is hidden and removed by the next run.
    let _ = remove_any(staged);
    Ok(())
}

/// Replaces `dir`'s entries with those staged in `staging` (inside it), keeping the old ones aside until the end.
fn move_in_place(dir: &Path, staging: &Path, status: Option<(&Path, &Path)>) -> Result<(), RunError> {
    let old = dir.join(OLD);
    let _ = remove_any(&old);
    std::fs::create_dir(&old).map_err(|e| out_err(&old, &e))?;
    let entries = |from: &Path| -> Result<Vec<std::ffi::OsString>, RunError> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(from).map_err(|e| out_err(from, &e))? {
            let name = entry.map_err(|e| out_err(from, &e))?.file_name();
            if name != STAGING && name != OLD {
                names.push(name);
            }
        }
        Ok(names)
    };
    let undo = |moved_old: &[std::ffi::OsString], moved_new: &[std::ffi::OsString]| {
        for n in moved_new {
            let _ = std::fs::rename(dir.join(n), staging.join(n));
        }
        for n in moved_old {
            let _ = std::fs::rename(old.join(n), dir.join(n));
        }
        let _ = remove_any(staging);
        let _ = remove_any(&old);
    };
    let mut moved_old = Vec::new();
    for n in entries(dir)? {
        if let Err(e) = std::fs::rename(dir.join(&n), old.join(&n)) {
            undo(&moved_old, &[]);
            return Err(out_err(&dir.join(&n), &e));
        }
        moved_old.push(n);
    }
    let mut moved_new = Vec::new();
    for n in entries(staging)? {
        if let Err(e) = std::fs::rename(staging.join(&n), dir.join(&n)) {
            undo(&moved_old, &moved_new);
            return Err(out_err(&dir.join(&n), &e));
        }
        moved_new.push(n);
    }
    if let Some((tmp, path)) = status
        && let Err(e) = std::fs::rename(tmp, path)
    {
        undo(&moved_old, &moved_new);
        return Err(out_err(path, &e));
    }
    remove_any(staging).map_err(|e| out_err(staging, &e))?;
    remove_any(&old).map_err(|e| out_err(&old, &e))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn files(names: &[&str], content: &str) -> Vec<PlannedFile> {
        names.iter().map(|n| PlannedFile { path: (*n).into(), content: content.as_bytes().to_vec() }).collect()
    }

    fn listing(dir: &Path) -> Vec<String> {
        let mut out: Vec<String> =
            std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        out.sort();
        out
    }

    #[test]
    fn output_and_status_are_replaced_together_and_nothing_is_left_behind() {
        let root = tempfile::tempdir().unwrap();
        let (out, meta) = (root.path().join("output"), root.path().join("metadata"));
        let status = meta.join("status.yaml");
        replace_output_and_status(&out, &files(&["a.yaml", "b/c.yaml"], "one"), &status, b"one").unwrap();
        replace_output_and_status(&out, &files(&["d.yaml"], "two"), &status, b"two").unwrap();
        assert_eq!(listing(&out), ["d.yaml"]);
        assert_eq!(std::fs::read_to_string(&status).unwrap(), "two");
        assert_eq!(listing(root.path()), ["metadata", "output"], "no staging left beside");
        assert_eq!(listing(&meta), ["status.yaml"], "no temporary status left");
    }

    #[test]
    fn a_status_that_cannot_be_written_leaves_the_old_output() {
        let root = tempfile::tempdir().unwrap();
        let out = root.path().join("output");
        replace_dir_contents(&out, &files(&["a.yaml"], "old")).unwrap();
        // The status's directory is a file: its temporary copy cannot be written.
        let blocker = root.path().join("metadata");
        std::fs::write(&blocker, "").unwrap();
        let err = replace_output_and_status(&out, &files(&["b.yaml"], "new"), &blocker.join("status.yaml"), b"x");
        assert!(err.is_err());
        assert_eq!(listing(&out), ["a.yaml"]);
        assert_eq!(listing(root.path()), ["metadata", "output"]);
    }

    #[test]
    fn unsafe_paths_are_refused_before_anything_is_written() {
        let root = tempfile::tempdir().unwrap();
        let out = root.path().join("output");
        replace_dir_contents(&out, &files(&["a.yaml"], "old")).unwrap();
        assert!(replace_dir_contents(&out, &files(&["ok.yaml", "../escape.yaml"], "x")).is_err());
        assert_eq!(listing(&out), ["a.yaml"]);
        assert!(!root.path().join("escape.yaml").exists());
    }

    #[test]
    fn in_place_replacement_keeps_the_directory_and_cleans_up() {
        let root = tempfile::tempdir().unwrap();
        let out = root.path().join("output");
        std::fs::create_dir_all(out.join("old-dir")).unwrap();
        std::fs::write(out.join("old.yaml"), "old").unwrap();
        std::fs::create_dir_all(out.join(STAGING)).unwrap();
        stage(&out.join(STAGING), &files(&["new.yaml", "x/y.yaml"], "new"), &[]).unwrap();
        let meta = root.path().join("status.yaml");
        let tmp = write_temporary(&meta, b"s").unwrap();
        move_in_place(&out, &out.join(STAGING), Some((&tmp, &meta))).unwrap();
        assert_eq!(listing(&out), ["new.yaml", "x"]);
        assert_eq!(std::fs::read_to_string(meta).unwrap(), "s");
    }
}
