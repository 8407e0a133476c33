//! Routing and validation rules of the Foundry VTT platform on Kratix.
//!
//! This crate is the whole policy: types, rules, manifest templates and the JSON call/answer layer. It performs
//! no I/O and reads no clock, so the same input always gives the same bytes. It is compiled natively (tests, the
//! CLI's native mode) and to wasm32 by `policy-wasm`, which every host (the Kratix pipeline runner, OPA's SDKs,
//! the browser preview) loads.
//!
//! Front ends use [`api`] and [`model`] only. The layers, each using only those below it:
//! - [`api`]: one file per operation family: its call and answer types, the typed function and the JSON form;
//! - `render`: every manifest and status, rendered from decisions (routes, workloads, the monitor sidecar and
//!   its RBAC, typed statuses, labels, the YAML writer);
//! - `rules`: the decisions: routing (target, gate, states), instances, versions, volumes, admission, activation,
//!   the monitor, Foundry's status endpoint, and the platform's limits;
//! - `input`: what every call shares (object references and identity checks, the namespace default, bounded
//!   lists, `now`, the observations);
//! - [`model`] (the `FoundryLicense` / `FoundryInstance` API types), [`error`] (error codes), [`names`],
//!   `time`, `text`;
//! - [`documents`] (feature `yaml-input`): reading objects and observations from YAML text.

pub mod api;
#[cfg(feature = "yaml-input")]
pub mod documents;
pub mod error;
mod input;
pub mod model;
pub mod names;
mod render;
mod rules;
mod text;
mod time;

pub use api::{Answer, Operation, call};
pub use error::{Diagnostic, InputError, ObjectRef};
