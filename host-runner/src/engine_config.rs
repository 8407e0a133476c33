//! The wasmtime configuration of the policy engine. Shared with the build script, which precompiles the embedded
//! module with exactly this configuration, so the runtime can load the precompiled code instead of compiling.

/// Applies the engine settings: fuel metering on (evaluations are stopped by a fuel budget).
pub(crate) fn configure(config: &mut wasmtime::Config) {
    config.consume_fuel(true);
}
