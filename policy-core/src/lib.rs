//! Routing and validation rules of the Foundry VTT platform on Kratix.
//!
//! This crate is the whole policy: types, rules, manifest templates and the JSON call/answer layer. It performs
//! no I/O and reads no clock, so the same input always gives the same bytes. It is compiled natively (tests, the
//! CLI's native mode) and to wasm32 by `policy-wasm`, which every host (the Kratix pipeline runner, OPA's SDKs,
//! the browser preview) loads.
//!
//! Where to look:
//! - [`api`]: the call/answer layer and the list of operations;
//! - [`model`]: the `FoundryLicense` / `FoundryInstance` API types;
//! - [`routing`]: the routing rules of a license;
//! - [`preview`]: every license of a set of objects at once;
//! - [`instance`]: the instance workflows; [`foundry`]: reading Foundry's status endpoint;
//! - [`monitor`]: the player monitor sidecar and what it writes; [`activation`]: the standby page and activation
//!   requests;
//! - [`manifests`]: the Kubernetes objects a decision becomes;
//! - [`status`]: the license status a decision writes;
//! - [`error`]: error codes.

pub mod activation;
pub mod api;
pub mod decision;
pub mod error;
pub mod foundry;
pub mod instance;
pub mod manifests;
pub mod model;
pub mod monitor;
pub mod names;
pub mod preview;
pub mod routing;
pub mod status;
pub mod time;
pub mod yaml;

pub use api::{Answer, Operation, call};
pub use decision::{RouteDecision, route};
pub use error::{Diagnostic, InputError, ObjectRef};
pub use preview::{PreviewCall, PreviewDecision};
pub use routing::RouteCall;
