//! Building the policy module, shared by `host-runner`'s build script (which embeds and precompiles it) and by
//! `cargo xtask build-wasm`: [`build`] runs the one build path (a nested `cargo build` of `policy-wasm` for
//! wasm32, `wasm-opt`, then the OPA ABI post-link step of [`postlink`]); [`engine_config`] (feature `engine`) is
//! the wasmtime configuration the module is precompiled and run with.
//!
//! Without the `engine` feature this crate has no dependencies, so build scripts stay cheap.

#![allow(clippy::print_stdout)]

pub mod build;
pub mod postlink;

pub use build::{Built, Tuning, WASM_FEATURES, build, wasm_opt};

/// The wasmtime configuration of the policy engine: the build script precompiles the embedded module with exactly
/// this configuration, so the runtime can load the precompiled code instead of compiling it.
#[cfg(feature = "engine")]
pub fn engine_config(config: &mut wasmtime::Config) {
    // Fuel metering on: every evaluation is stopped by a fuel budget.
    config.consume_fuel(true);
}
