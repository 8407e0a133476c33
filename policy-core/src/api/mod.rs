//! The one call/answer layer every front end uses.
//!
//! One file per operation family holds its `Call` and `Decision` types (with enums for outcomes, phases and
//! states), the typed function, and through [`call`] the JSON form: [`license`] (route a license), [`preview`]
//! (every license and instance of a set of objects), [`instance`] (configure, delete), [`admission`] (review a
//! change), [`standby`] (the standby page, activation requests and their review), [`monitor`] (the player
//! monitor), [`observe`] (Foundry's status endpoint), [`catalog`] (the release catalog) and [`migrate`] (the
//! existing platform's objects in this platform's format). The CLI, the
//! services, the wasm exports (OPA ABI and wasm-bindgen), the browser page and the tests all go through here; no
//! front end knows the rules.
//!
//! Every call that needs the time carries it as `now` (RFC 3339) at its top level: the policy has no clock.
//!
//! Answers are tagged: `{"outcome":"success","decision":{...}}` or
//! `{"outcome":"failure","errors":[{"code","message","object","path","help"}]}`.

pub mod admission;
pub mod catalog;
pub mod instance;
pub mod license;
pub mod migrate;
pub mod monitor;
pub mod observe;
pub mod preview;
pub mod standby;

use crate::error::{Diagnostic, InputError};
use crate::text::shorten;
use admission::{AdmissionCall, AdmissionReview};
#[cfg(doc)]
use catalog::{CatalogCall, CatalogListing};
#[cfg(doc)]
use instance::{InstanceCall, InstanceDecision};
use license::{RouteCall, RouteDecision};
#[cfg(doc)]
use migrate::{MigrateCall, Migration};
#[cfg(doc)]
use monitor::{MonitorCall, MonitorDecision};
#[cfg(doc)]
use observe::{StatusFetch, StatusReading};
use preview::{PreviewCall, PreviewDecision};
use serde::{Deserialize, Serialize};
use serde_json::Value;
#[cfg(doc)]
use standby::{ActivationDecision, ReviewCall, ReviewDecision, StandbyCall, StandbyPage};

pub use crate::error::ObjectRef;
pub use crate::input::namespace_of;
pub use crate::render::labels::{INSTANCE_LABEL, LICENSE_LABEL, PART_OF, PART_OF_LABEL, STATE_LABEL};
pub use crate::render::yaml::to_yaml;
pub use crate::render::{Manifest, OutputFile, STATUS_FILE};
pub use crate::time::{Duration, Timestamp};

/// Largest call accepted, in bytes. Hosts enforce their own (lower) limits first; this one holds in every host.
pub const MAX_CALL_BYTES: usize = 64 * 1024 * 1024;

/// The operations of the policy. Their names double as OPA entrypoint names; ids are their position in
/// [`Operation::ALL`] and never change once published.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// Route a license's instances: [`RouteCall`] → [`RouteDecision`].
    LicenseRoute,
    /// Route every license in a set of objects: [`PreviewCall`] → [`PreviewDecision`].
    PlatformPreview,
    /// Review a change to a license or instance for an admission engine: [`AdmissionCall`] plus the related
    /// objects as `data` → [`AdmissionReview`].
    AdmissionReview,
    /// Configure an instance: [`InstanceCall`] → [`InstanceDecision`].
    InstanceConfigure,
    /// Delete an instance: [`InstanceCall`] → [`InstanceDecision`].
    InstanceDelete,
    /// Read an instance's `/api/status` answer: [`StatusFetch`] → [`StatusReading`].
    InstanceObserve,
    /// List the release catalog: [`CatalogCall`] → [`CatalogListing`].
    CatalogList,
    /// What the player monitor writes into its instance's status: [`MonitorCall`] → [`MonitorDecision`].
    InstanceMonitor,
    /// The standby page for a `Host` header: [`StandbyCall`] → [`StandbyPage`].
    StandbyPage,
    /// A click on "Request activation": [`StandbyCall`] → [`ActivationDecision`].
    ActivationRequest,
    /// The activation requests of a license: [`ReviewCall`] → [`ReviewDecision`].
    ActivationReview,
    /// The existing platform's objects in this platform's format: [`MigrateCall`] → [`Migration`].
    PlatformMigrate,
}

impl Operation {
    /// Every operation, in entrypoint-id order.
    pub const ALL: [Operation; 12] = [
        Operation::LicenseRoute,
        Operation::PlatformPreview,
        Operation::AdmissionReview,
        Operation::InstanceConfigure,
        Operation::InstanceDelete,
        Operation::InstanceObserve,
        Operation::CatalogList,
        Operation::InstanceMonitor,
        Operation::StandbyPage,
        Operation::ActivationRequest,
        Operation::ActivationReview,
        Operation::PlatformMigrate,
    ];

    /// The operation's name (`foundry/license/route`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Self::LicenseRoute => "foundry/license/route",
            Self::PlatformPreview => "foundry/platform/preview",
            Self::AdmissionReview => "foundry/admission/review",
            Self::InstanceConfigure => "foundry/instance/configure",
            Self::InstanceDelete => "foundry/instance/delete",
            Self::InstanceObserve => "foundry/instance/observe",
            Self::CatalogList => "foundry/catalog/list",
            Self::InstanceMonitor => "foundry/instance/monitor",
            Self::StandbyPage => "foundry/standby/page",
            Self::ActivationRequest => "foundry/activation/request",
            Self::ActivationReview => "foundry/activation/review",
            Self::PlatformMigrate => "foundry/platform/migrate",
        }
    }

    /// Looks an operation up by name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|op| op.name() == name)
    }

    /// Looks an operation up by its entrypoint id.
    pub fn from_id(id: usize) -> Option<Self> {
        Self::ALL.get(id).copied()
    }
}

/// A tagged answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "lowercase")]
pub enum Answer<T> {
    /// The operation decided.
    Success {
        /// The decision.
        decision: T,
    },
    /// The input was refused.
    Failure {
        /// Every problem found.
        errors: Vec<Diagnostic>,
    },
}

impl<T> Answer<T> {
    /// Builds a failure answer from errors.
    pub fn failure(errors: &[InputError]) -> Self {
        Self::Failure { errors: errors.iter().map(InputError::to_diagnostic).collect() }
    }

    /// Converts into a `Result`.
    pub fn into_result(self) -> Result<T, Vec<Diagnostic>> {
        match self {
            Self::Success { decision } => Ok(decision),
            Self::Failure { errors } => Err(errors),
        }
    }
}

/// Wraps a typed operation's result as an answer.
pub fn answer<T>(result: Result<T, Vec<InputError>>) -> Answer<T> {
    match result {
        Ok(decision) => Answer::Success { decision },
        Err(errors) => Answer::failure(&errors),
    }
}

/// Routes one license, as a tagged answer.
pub fn license_route(call: &RouteCall) -> Answer<RouteDecision> {
    answer(license::route(call))
}

/// Routes every license in a set of objects, as a tagged answer.
pub fn platform_preview(call: &PreviewCall) -> Answer<PreviewDecision> {
    answer(preview::preview(call))
}

/// Reviews a change for an admission engine, as a tagged answer; `data` holds the related objects.
pub fn admission_review(call: &AdmissionCall, data: Option<&Value>) -> Answer<AdmissionReview> {
    answer(admission::review(call, data))
}

/// Runs operation `op` on a JSON call and returns the JSON answer. Never panics; every refusal is an answer.
pub fn call(op: &str, input: &[u8]) -> String {
    call_with_data(op, input, None)
}

/// Like [`call`], with OPA's `data` document: the related objects for operations that read them (admission
/// review); the others ignore it. `None` is OPA's undefined `data`.
pub fn call_with_data(op: &str, input: &[u8], data: Option<&Value>) -> String {
    match Operation::from_name(op) {
        Some(op) => {
            let mut out = Vec::new();
            call_op_with_data_into(op, input, data, &mut out);
            String::from_utf8(out).unwrap_or_default()
        }
        None => {
            let mut out = Vec::new();
            let known = Operation::ALL.map(Operation::name).join(", ");
            let error = InputError::UnknownOperation { name: shorten(op), known };
            write_json(&Answer::<()>::failure(&[error]), &mut out);
            String::from_utf8(out).unwrap_or_default()
        }
    }
}

/// Runs a known operation on a JSON call.
pub fn call_op(op: Operation, input: &[u8]) -> String {
    let mut out = Vec::new();
    call_op_into(op, input, &mut out);
    String::from_utf8(out).unwrap_or_default()
}

/// Runs a known operation and appends the JSON answer to `out` (hosts that frame the answer avoid a copy).
pub fn call_op_into(op: Operation, input: &[u8], out: &mut Vec<u8>) {
    call_op_with_data_into(op, input, None, out);
}

/// Like [`call_op_into`], with OPA's `data` document.
pub fn call_op_with_data_into(op: Operation, input: &[u8], data: Option<&Value>, out: &mut Vec<u8>) {
    match op {
        Operation::LicenseRoute => run(input, out, license::route),
        Operation::PlatformPreview => run(input, out, preview::preview),
        Operation::AdmissionReview => run(input, out, |call| admission::review(call, data)),
        Operation::InstanceConfigure => run(input, out, instance::configure),
        Operation::InstanceDelete => run(input, out, instance::delete),
        Operation::InstanceObserve => run(input, out, observe::observe),
        Operation::CatalogList => run(input, out, catalog::list),
        Operation::InstanceMonitor => run(input, out, monitor::decide),
        Operation::StandbyPage => run(input, out, standby::page),
        Operation::ActivationRequest => run(input, out, standby::request),
        Operation::ActivationReview => run(input, out, standby::review),
        Operation::PlatformMigrate => run(input, out, migrate::migrate),
    }
}

/// Parses the call, decides, and writes the answer.
fn run<C, D>(input: &[u8], out: &mut Vec<u8>, decide: impl Fn(&C) -> Result<D, Vec<InputError>>)
where
    C: serde::de::DeserializeOwned,
    D: Serialize,
{
    match parse::<C>(input) {
        Ok(call) => {
            let decided = answer(decide(&call));
            // The call is no longer needed: free it before the answer's text is written (large calls peak here).
            drop(call);
            write_json(&decided, out);
        }
        Err(e) => write_json(&Answer::<()>::failure(&[e]), out),
    }
}

fn parse<T: serde::de::DeserializeOwned>(input: &[u8]) -> Result<T, InputError> {
    // OPA hosts pass an undefined input as no bytes, and some pass `null` for it (the npm SDK's fast path sends
    // nothing where its slow path and other hosts send `null`): both mean no input.
    let trimmed = input.trim_ascii();
    if trimmed.is_empty() || trimmed == b"null" {
        return Err(InputError::MissingInput);
    }
    if input.len() > MAX_CALL_BYTES {
        return Err(InputError::InvalidJson {
            path: String::new(),
            detail: format!("the call is {} bytes; at most {MAX_CALL_BYTES} are accepted", input.len()),
        });
    }
    let mut de = serde_json::Deserializer::from_slice(input);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|e| InputError::InvalidJson {
        path: match e.path().to_string() {
            p if p == "." => String::new(),
            p => p,
        },
        detail: e.inner().to_string(),
    })?;
    de.end().map_err(|e| InputError::InvalidJson { path: String::new(), detail: e.to_string() })?;
    Ok(value)
}

/// Serialises an answer. Answers hold only JSON-representable data, so this cannot fail in practice; if it ever
/// did, the caller still gets a well-formed failure answer.
fn write_json<T: Serialize>(answer: &Answer<T>, out: &mut Vec<u8>) {
    let start = out.len();
    if let Err(e) = serde_json::to_writer(&mut *out, answer) {
        out.truncate(start);
        let message = serde_json::Value::String(format!("the answer could not be serialised: {e}"));
        out.extend_from_slice(
            format!(
                r#"{{"outcome":"failure","errors":[{{"code":"Internal","message":{message},"path":"","help":"report this as a bug"}}]}}"#
            )
            .as_bytes(),
        );
    }
}
