//! `host-runner`: the program around the policy module.
//!
//! It loads the one policy `.wasm` (embedded at build time, or `--module`) into wasmtime and does all the I/O the
//! policy must not do: reading files, the clock, and writing outputs. Every decision comes from the module.
//!
//! Where to look:
//! - [`engine`]: the wasmtime host of the OPA-ABI module (limits, traps);
//! - [`load`]: reading Kubernetes objects from YAML, with limits;
//! - [`preview`]: the `preview` command; [`migrate`]: the `migrate` command;
//! - [`kratix`]: the Kratix pipeline runtime (`kratix` command) and its workflows;
//! - [`cluster`]: what the workflows need from a cluster, and the offline snapshot; [`kube`]: the one Kubernetes
//!   client (live runs, the monitor and the services);
//! - [`probe`]: fetching Foundry's status endpoint;
//! - [`standby`]: the standby page service (`standby-page` command); [`monitor`]: the player monitor sidecar
//!   (`monitor` command); [`policy`]: one typed policy call;
//! - [`render`]: tables, JSON and YAML output;
//! - [`output`]: all-or-nothing file writing;
//! - [`http`]: the one HTTP stack every service runs on (accept loop, limits, logs);
//! - [`serve`]: the static server of the browser preview (`serve-preview`);
//! - [`cli`]: flags and exit codes; [`error`]: errors and their exit codes.

pub mod catalog;
pub mod cli;
pub mod cluster;
pub mod engine;
pub mod error;
pub mod http;
pub mod kratix;
pub mod kube;
pub mod load;
pub mod migrate;
pub mod monitor;
pub mod output;
pub mod policy;
pub mod preview;
pub mod probe;
pub mod render;
pub mod serve;
pub mod standby;
