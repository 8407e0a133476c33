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
//! - [`instance`]: the instance workflows: [`controls`] (admission, defaults), [`versions`] (catalog, upgrade
//!   rules), [`volumes`] (storage, volume modes), [`workload`] (Deployment, Service, PVC, copy Jobs);
//! - [`foundry`]: reading Foundry's status endpoint;
//! - [`admission`]: the review of a change for an admission engine;
//! - [`monitor`]: the player monitor sidecar and what it writes; [`activation`]: the standby page and activation
//!   requests;
//! - [`manifests`]: the Kubernetes objects a decision becomes;
//! - [`status`]: the license status a decision writes;
//! - [`error`]: error codes;
//! - `documents` (feature `yaml-input`): reading objects and observations from YAML text.

pub mod activation;
pub mod admission;
pub mod api;
pub mod controls;
pub mod decision;
#[cfg(feature = "yaml-input")]
pub mod documents;
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
pub mod versions;
pub mod volumes;
pub mod workload;
pub mod yaml;

pub use api::{Answer, Operation, call};
pub use decision::{RouteDecision, route};
pub use error::{Diagnostic, InputError, ObjectRef};
pub use preview::{PreviewCall, PreviewDecision};
pub use routing::RouteCall;
