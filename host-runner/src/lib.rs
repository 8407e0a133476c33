//! `host-runner`: the program around the policy module.
//!
//! It loads the one policy `.wasm` (embedded at build time, or `--module`) into wasmtime and does all the I/O the
//! policy must not do: reading files, the clock, and writing outputs. Every decision comes from the module.
//!
//! Where to look:
//! - [`engine`]: the wasmtime host of the OPA-ABI module (limits, traps);
//! - [`load`]: reading Kubernetes objects from YAML, with limits;
//! - [`preview`]: the `preview` command;
//! - [`render`]: tables, JSON and YAML output;
//! - [`output`]: all-or-nothing file writing;
//! - [`serve`]: the static server of the browser preview (`serve-preview`);
//! - [`cli`]: flags and exit codes; [`error`]: errors and their exit codes.

pub mod cli;
pub mod engine;
mod engine_config;
pub mod error;
pub mod load;
pub mod output;
pub mod preview;
pub mod render;
pub mod serve;
