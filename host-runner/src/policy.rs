//! One typed call into the policy module: encode the call, evaluate the operation, decode the tagged answer.
//!
//! The services (`standby-page`, `monitor`) decide everything through here; this module only moves JSON.

use crate::engine::{EngineError, PolicyEngine};
use policy_core::api::Answer;
use policy_core::{Diagnostic, Operation};
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Why a policy call gave no decision.
#[derive(Debug, thiserror::Error)]
pub enum PolicyCallError {
    /// The module failed (or its answer was not the expected shape).
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The policy refused the input.
    #[error("the policy refused the input: {}", first(.0))]
    Refused(Vec<Diagnostic>),
}

fn first(d: &[Diagnostic]) -> String {
    d.first().map(|d| format!("{}: {}", d.code, d.message)).unwrap_or_default()
}

impl PolicyCallError {
    /// Stable machine code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Engine(e) => e.code(),
            Self::Refused(_) => "InvalidInput",
        }
    }
}

/// Runs `op` on `call` and decodes the decision.
pub fn decide<T: DeserializeOwned>(engine: &PolicyEngine, op: Operation, call: &Value) -> Result<T, PolicyCallError> {
    let input = serde_json::to_vec(call)
        .map_err(|e| EngineError::MalformedAnswer(format!("the call could not be encoded: {e}")))?;
    let answer = engine.evaluate(op.name(), &input)?;
    let answer: Answer<T> = serde_json::from_slice(&answer)
        .map_err(|e| EngineError::MalformedAnswer(format!("not a `{}` answer: {e}", op.name())))?;
    answer.into_result().map_err(PolicyCallError::Refused)
}
