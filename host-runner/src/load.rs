//! Reading Kubernetes objects from YAML files and directories, with limits.
//!
//! Files are read whole, checked against size limits before parsing, decoded as UTF-8, and handed to
//! `policy_core::documents`, the one YAML reader the browser preview shares (multi-document, `List` expansion,
//! `default` namespace, the reader's budget against alias bombs and runaway nesting). Directories are read
//! recursively in name order, so the same tree always yields the same objects in the same order.

use policy_core::documents::{self, DocumentError};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// Largest single input file.
pub const MAX_FILE_BYTES: u64 = 16 << 20;
/// Largest total input across all files.
pub const MAX_TOTAL_BYTES: u64 = 32 << 20;
/// Most objects read in one run.
pub const MAX_OBJECTS: usize = 20_000;
/// Deepest directory recursion.
const MAX_DEPTH: usize = 16;

/// One object and where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded {
    /// The file it was read from.
    pub source: PathBuf,
    /// The object.
    pub value: Value,
}

impl Loaded {
    /// `kind` of the object (empty if absent).
    pub fn kind(&self) -> &str {
        self.value.get("kind").and_then(Value::as_str).unwrap_or_default()
    }

    /// `<namespace>/<name>` of the object.
    pub fn id(&self) -> String {
        let meta = self.value.get("metadata");
        let field = |k: &str| meta.and_then(|m| m.get(k)).and_then(Value::as_str).unwrap_or_default().to_owned();
        format!("{}/{}", field("namespace"), field("name"))
    }
}

/// Why input could not be read.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A path could not be read.
    #[error("cannot read `{path}`: {reason}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The OS error.
        reason: String,
    },
    /// A file or the whole input is too large.
    #[error("`{path}` is too large: {detail}")]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Which limit.
        detail: String,
    },
    /// A file is not UTF-8.
    #[error("`{path}` is not UTF-8 text (invalid byte at offset {offset})")]
    NotUtf8 {
        /// The file.
        path: PathBuf,
        /// First bad byte.
        offset: usize,
    },
    /// A file is not valid YAML, or exceeds the YAML reader's budget.
    #[error("`{path}` is not valid YAML: {detail}")]
    Yaml {
        /// The file.
        path: PathBuf,
        /// What the reader said.
        detail: String,
    },
    /// A document is not a Kubernetes object.
    #[error("`{path}`: document {index} is not a Kubernetes object (a mapping with `kind` and `metadata`)")]
    NotAnObject {
        /// The file.
        path: PathBuf,
        /// Document index (from 1).
        index: usize,
    },
    /// Too many objects.
    #[error("the input holds more than {MAX_OBJECTS} objects")]
    TooManyObjects,
    /// The observations file's `now` is not a time.
    #[error("`{path}`: `now` must be an RFC 3339 time such as \"2026-11-22T18:30:00Z\"")]
    ObservationTime {
        /// The file.
        path: PathBuf,
    },
}

impl LoadError {
    /// Stable machine code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Io { .. } => "InputUnreadable",
            Self::TooLarge { .. } => "InputTooLarge",
            Self::NotUtf8 { .. } => "InputNotUtf8",
            Self::Yaml { .. } => "InputInvalidYaml",
            Self::NotAnObject { .. } => "InputNotAnObject",
            Self::TooManyObjects => "InputTooManyObjects",
            Self::ObservationTime { .. } => "InvalidObservation",
        }
    }
}

/// Reads every object under `paths` (files, or directories read recursively for `*.yaml`, `*.yml`, `*.json`).
pub fn load_paths(paths: &[PathBuf]) -> Result<Vec<Loaded>, LoadError> {
    let mut files = Vec::new();
    for path in paths {
        collect_files(path, 0, true, &mut files)?;
    }
    let mut total = 0u64;
    let mut out = Vec::new();
    for file in files {
        let size = std::fs::metadata(&file).map_err(|e| io(&file, &e))?.len();
        total += size;
        if total > MAX_TOTAL_BYTES {
            return Err(LoadError::TooLarge {
                path: file,
                detail: format!("the input passes the limit of {} MiB in total", MAX_TOTAL_BYTES >> 20),
            });
        }
        out.extend(load_file(&file)?);
        if out.len() > MAX_OBJECTS {
            return Err(LoadError::TooManyObjects);
        }
    }
    Ok(out)
}

fn io(path: &Path, e: &std::io::Error) -> LoadError {
    LoadError::Io { path: path.to_path_buf(), reason: e.to_string() }
}

fn collect_files(path: &Path, depth: usize, explicit: bool, out: &mut Vec<PathBuf>) -> Result<(), LoadError> {
    let meta = std::fs::metadata(path).map_err(|e| io(path, &e))?;
    if meta.is_file() {
        let wanted =
            explicit || path.extension().and_then(|e| e.to_str()).is_some_and(|e| matches!(e, "yaml" | "yml" | "json"));
        if wanted {
            out.push(path.to_path_buf());
        }
        return Ok(());
    }
    if !meta.is_dir() {
        return Err(LoadError::Io { path: path.to_path_buf(), reason: "not a file or directory".into() });
    }
    if depth >= MAX_DEPTH {
        return Err(LoadError::Io { path: path.to_path_buf(), reason: format!("nested deeper than {MAX_DEPTH}") });
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(|e| io(path, &e))?
        .map(|entry| entry.map(|e| e.path()).map_err(|e| io(path, &e)))
        .collect::<Result<_, _>>()?;
    entries.sort();
    for entry in entries {
        // Symlinked directories are not followed, so a link loop cannot make the walk endless.
        let is_link = std::fs::symlink_metadata(&entry).map(|m| m.file_type().is_symlink()).unwrap_or(false);
        if is_link && entry.is_dir() {
            continue;
        }
        collect_files(&entry, depth + 1, false, out)?;
    }
    Ok(())
}

/// Reads the objects of one file.
pub fn load_file(path: &Path) -> Result<Vec<Loaded>, LoadError> {
    let size = std::fs::metadata(path).map_err(|e| io(path, &e))?.len();
    if size > MAX_FILE_BYTES {
        return Err(LoadError::TooLarge {
            path: path.to_path_buf(),
            detail: format!("{} MiB; one file may have at most {} MiB", size >> 20, MAX_FILE_BYTES >> 20),
        });
    }
    let bytes = std::fs::read(path).map_err(|e| io(path, &e))?;
    objects_from_bytes(path, &bytes)
}

/// Reads the objects of a file's bytes (`path` is only named in errors and in each object's source).
pub fn objects_from_bytes(path: &Path, bytes: &[u8]) -> Result<Vec<Loaded>, LoadError> {
    let text = utf8(path, bytes)?;
    let objects = documents::read_objects(text).map_err(|e| document_error(path, e))?;
    Ok(objects.into_iter().map(|value| Loaded { source: path.to_path_buf(), value }).collect())
}

/// Parses the YAML documents of a file's bytes.
pub fn parse_documents(path: &Path, bytes: &[u8]) -> Result<Vec<Value>, LoadError> {
    documents::parse_documents(utf8(path, bytes)?).map_err(|e| document_error(path, e))
}

/// Reads an observations file's bytes: one mapping.
pub fn parse_observations(path: &Path, bytes: &[u8]) -> Result<Value, LoadError> {
    documents::read_observations(utf8(path, bytes)?).map_err(|e| document_error(path, e))
}

fn utf8<'a>(path: &Path, bytes: &'a [u8]) -> Result<&'a str, LoadError> {
    std::str::from_utf8(bytes).map_err(|e| LoadError::NotUtf8 { path: path.to_path_buf(), offset: e.valid_up_to() })
}

fn document_error(path: &Path, e: DocumentError) -> LoadError {
    let path = path.to_path_buf();
    match e {
        DocumentError::Yaml { detail } => LoadError::Yaml { path, detail },
        DocumentError::NotAnObject { index } => LoadError::NotAnObject { path, index },
        DocumentError::NotObservations => LoadError::NotAnObject { path, index: 1 },
    }
}
