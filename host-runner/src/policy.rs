//! The policy client: the one caller of the engine's `evaluate`. Each operation is a typed method taking the
//! operation's `Call` type from `policy_core::api` and returning its decision; the encoding, the evaluation and
//! the decoding of the tagged answer happen once, in [`Policy::decide`].
//!
//! This module only moves JSON between the API types and the module: it decides nothing.

use crate::engine::{EngineError, PolicyEngine};
use policy_core::Diagnostic;
use policy_core::api::catalog::{CatalogCall, CatalogListing};
use policy_core::api::instance::{InstanceCall, InstanceDecision};
use policy_core::api::license::{RouteCallRef, RouteDecision};
use policy_core::api::migrate::{MigrateCall, Migration};
use policy_core::api::monitor::{MonitorCall, MonitorDecision};
use policy_core::api::observe::{StatusFetch, StatusReading};
use policy_core::api::preview::{PreviewCall, PreviewDecision};
use policy_core::api::standby::{ActivationDecision, ReviewCallRef, ReviewDecision, StandbyCallRef, StandbyPage};
use policy_core::api::{Answer, Operation};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Why a policy call gave no decision.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
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

impl PolicyError {
    /// Stable machine code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Engine(e) => e.code(),
            Self::Refused(_) => "InvalidInput",
        }
    }
}

/// The policy module, called through its operations.
#[derive(Debug)]
pub struct Policy {
    engine: PolicyEngine,
}

impl Policy {
    /// Calls the module through `engine`.
    pub fn new(engine: PolicyEngine) -> Self {
        Self { engine }
    }

    /// The engine (its limits and entrypoints).
    pub fn engine(&self) -> &PolicyEngine {
        &self.engine
    }

    /// `foundry/license/route`.
    pub fn route<I: Serialize>(&self, call: &RouteCallRef<'_, I>) -> Result<RouteDecision, PolicyError> {
        self.decide(Operation::LicenseRoute, call)
    }

    /// `foundry/platform/preview`.
    pub fn preview(&self, call: &PreviewCall) -> Result<PreviewDecision, PolicyError> {
        self.decide(Operation::PlatformPreview, call)
    }

    /// `foundry/platform/migrate`.
    pub fn migrate(&self, call: &MigrateCall) -> Result<Migration, PolicyError> {
        self.decide(Operation::PlatformMigrate, call)
    }

    /// `foundry/instance/configure`.
    pub fn configure(&self, call: &InstanceCall) -> Result<InstanceDecision, PolicyError> {
        self.decide(Operation::InstanceConfigure, call)
    }

    /// `foundry/instance/delete`.
    pub fn delete(&self, call: &InstanceCall) -> Result<InstanceDecision, PolicyError> {
        self.decide(Operation::InstanceDelete, call)
    }

    /// `foundry/instance/observe`.
    pub fn observe(&self, fetch: &StatusFetch) -> Result<StatusReading, PolicyError> {
        self.decide(Operation::InstanceObserve, fetch)
    }

    /// `foundry/catalog/list`.
    pub fn catalog(&self, call: &CatalogCall) -> Result<CatalogListing, PolicyError> {
        self.decide(Operation::CatalogList, call)
    }

    /// `foundry/instance/monitor`.
    pub fn monitor(&self, call: &MonitorCall) -> Result<MonitorDecision, PolicyError> {
        self.decide(Operation::InstanceMonitor, call)
    }

    /// `foundry/standby/page` (objects in any serializable form: JSON values, or the JSON text a store keeps).
    pub fn standby_page<O: Serialize>(&self, call: &StandbyCallRef<'_, O>) -> Result<StandbyPage, PolicyError> {
        self.decide(Operation::StandbyPage, call)
    }

    /// `foundry/activation/request`.
    pub fn activation_request<O: Serialize>(
        &self,
        call: &StandbyCallRef<'_, O>,
    ) -> Result<ActivationDecision, PolicyError> {
        self.decide(Operation::ActivationRequest, call)
    }

    /// `foundry/activation/review`.
    pub fn activation_review<O: Serialize>(&self, call: &ReviewCallRef<'_, O>) -> Result<ReviewDecision, PolicyError> {
        self.decide(Operation::ActivationReview, call)
    }

    /// Encodes the call, evaluates the operation, and decodes the tagged answer: the only place that does.
    fn decide<C: Serialize + ?Sized, D: DeserializeOwned>(&self, op: Operation, call: &C) -> Result<D, PolicyError> {
        let input = serde_json::to_vec(call)
            .map_err(|e| EngineError::MalformedAnswer(format!("the call could not be encoded: {e}")))?;
        let answer = self.engine.evaluate(op.name(), &input)?;
        // The call is no longer needed: free it before the answer is decoded (large calls peak here).
        drop(input);
        let answer: Answer<D> = serde_json::from_slice(&answer)
            .map_err(|e| EngineError::MalformedAnswer(format!("not a `{}` answer: {e}", op.name())))?;
        answer.into_result().map_err(PolicyError::Refused)
    }
}
