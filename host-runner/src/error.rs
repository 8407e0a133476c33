//! Errors of a run and the exit codes they map to.
//!
//! Exit codes (documented in the README and in `--help`):
//!
//! | code | meaning |
//! |---|---|
//! | 0 | decided (warnings included) |
//! | 1 | internal error, or output could not be written |
//! | 2 | usage error (bad flags or arguments) |
//! | 3 | invalid input: the message names the file, the object and the field |
//! | 4 | the policy module failed (trap, fuel or memory limit, malformed answer) |
//! | 5 | the Kubernetes API or another service failed |

use crate::cluster::ClusterError;
use crate::engine::EngineError;
use crate::load::LoadError;
use crate::serve::ServeError;
use policy_core::Diagnostic;
use std::path::PathBuf;

/// Exit codes of `host-runner`.
pub mod exit {
    /// Decided.
    pub const OK: u8 = 0;
    /// Internal error or unwritable output.
    pub const INTERNAL: u8 = 1;
    /// Usage error.
    pub const USAGE: u8 = 2;
    /// Invalid input.
    pub const INVALID_INPUT: u8 = 3;
    /// The policy module failed.
    pub const POLICY: u8 = 4;
    /// The Kubernetes API or another service failed.
    pub const SERVICE: u8 = 5;
}

/// A problem found in the input, with the file it came from when known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    /// The structured error from the policy.
    pub diagnostic: Diagnostic,
    /// The file holding the object.
    pub source: Option<PathBuf>,
}

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Bad flags or arguments.
    #[error("{0}")]
    Usage(String),
    /// Input files could not be read.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// The policy refused the input.
    #[error("the input is invalid ({} problem{})", .0.len(), if .0.len() == 1 { "" } else { "s" })]
    Invalid(Vec<Located>),
    /// The policy module failed.
    #[error(transparent)]
    Policy(#[from] EngineError),
    /// The Kubernetes API (or the offline snapshot) failed.
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    /// Output could not be written.
    #[error("cannot write `{path}`: {reason}")]
    Output {
        /// The path.
        path: PathBuf,
        /// The OS error.
        reason: String,
    },
    /// The preview server could not start.
    #[error(transparent)]
    Serve(#[from] ServeError),
    /// Something that should not happen.
    #[error("internal error: {0}")]
    Internal(String),
}

impl RunError {
    /// The exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Usage(_) => exit::USAGE,
            Self::Load(_) | Self::Invalid(_) => exit::INVALID_INPUT,
            Self::Policy(_) => exit::POLICY,
            Self::Cluster(ClusterError::Snapshot(_) | ClusterError::TooMany { .. }) => exit::INVALID_INPUT,
            Self::Cluster(_) => exit::SERVICE,
            Self::Serve(ServeError::Directory { .. }) => exit::USAGE,
            Self::Output { .. } | Self::Serve(_) | Self::Internal(_) => exit::INTERNAL,
        }
    }

    /// Stable machine code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Usage(_) => "Usage",
            Self::Load(e) => e.code(),
            Self::Invalid(_) => "InvalidInput",
            Self::Policy(e) => e.code(),
            Self::Cluster(e) => e.code(),
            Self::Output { .. } => "OutputUnwritable",
            Self::Serve(e) => e.code(),
            Self::Internal(_) => "Internal",
        }
    }

    /// The full report for a terminal or a pipeline log: what failed, where, and what to do.
    pub fn report(&self) -> String {
        match self {
            Self::Invalid(problems) => {
                let mut out = String::new();
                for p in problems {
                    let d = &p.diagnostic;
                    out.push_str(&format!("error[{}]: {}\n", d.code, d.message));
                    let mut at = Vec::new();
                    if let Some(src) = &p.source {
                        at.push(format!("in `{}`", src.display()));
                    }
                    if let Some(obj) = &d.object {
                        at.push(obj.to_string());
                    }
                    if !d.path.is_empty() {
                        at.push(format!("field `{}`", d.path));
                    }
                    if !at.is_empty() {
                        out.push_str(&format!("  --> {}\n", at.join(", ")));
                    }
                    out.push_str(&format!("  help: {}\n", d.help));
                }
                out.push_str(&format!("{self}\n"));
                out
            }
            Self::Policy(e) => format!(
                "error[{}]: {e}\n  help: {}\n",
                e.code(),
                match e {
                    EngineError::OutOfFuel { .. } | EngineError::MemoryLimit { .. } => {
                        "the input is too large or the module misbehaves; split the input or raise --fuel / --memory-mib"
                    }
                    EngineError::InputTooLarge { .. } => "split the input into smaller parts",
                    _ => "check the module given with --module, or report a bug if it is the embedded one",
                }
            ),
            Self::Cluster(e) => format!("error[{}]: {e}\n  help: {}\n", e.code(), e.help()),
            other => format!("error[{}]: {other}\n", other.code()),
        }
    }
}
