//! Embeds the policy module in the binary, so `host-runner` is self-contained.
//!
//! With `FOUNDRY_POLICY_WASM=<file>` that file is embedded as it is. Otherwise the module is built here: a nested
//! `cargo build` of `policy-wasm` through the one build path of the module (the `module-build` crate: wasm32,
//! profile `wasm`, `wasm-opt`, the OPA ABI post-link step). Cargo reruns this only when the policy sources change.

use std::path::PathBuf;

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").map_err(|e| e.to_string())?);
    let root = manifest.parent().ok_or("no workspace root")?.to_path_buf();
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").map_err(|e| e.to_string())?);
    let out = out_dir.join("policy.wasm");
    embed_module(&root, &out)?;
    precompile(&out, &out_dir.join("policy.cwasm"))
}

/// Compiles the module to native code with the runtime's exact engine configuration.
fn precompile(wasm: &std::path::Path, cwasm: &std::path::Path) -> Result<(), String> {
    let bytes = std::fs::read(wasm).map_err(|e| e.to_string())?;
    let mut config = wasmtime::Config::new();
    module_build::engine_config(&mut config);
    let engine = wasmtime::Engine::new(&config).map_err(|e| format!("wasmtime engine: {e}"))?;
    let native = engine.precompile_module(&bytes).map_err(|e| format!("precompiling the policy module: {e}"))?;
    std::fs::write(cwasm, native).map_err(|e| format!("cannot write {}: {e}", cwasm.display()))
}

fn embed_module(root: &std::path::Path, out: &std::path::Path) -> Result<(), String> {
    println!("cargo:rerun-if-env-changed=FOUNDRY_POLICY_WASM");
    println!("cargo:rerun-if-env-changed=WASM_OPT");

    if let Some(given) = std::env::var_os("FOUNDRY_POLICY_WASM") {
        let given = PathBuf::from(given);
        println!("cargo:rerun-if-changed={}", given.display());
        std::fs::copy(&given, out).map_err(|e| format!("cannot copy FOUNDRY_POLICY_WASM {}: {e}", given.display()))?;
        return Ok(());
    }

    for path in [
        "policy-core/src",
        "policy-core/Cargo.toml",
        "policy-wasm/src",
        "policy-wasm/Cargo.toml",
        "policy-wasm/build.rs",
        "module-build/src",
        "Cargo.lock",
        "Cargo.toml",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(path).display());
    }
    let target_root = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root.join("target"));
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let built = module_build::build(root, &target_root, &cargo, module_build::Tuning::Speed)?;
    if let Some(why) = &built.unoptimized {
        println!("cargo:warning=the embedded policy module is not size-optimised: {why}");
    }
    let linked = built.wasm;
    std::fs::write(out, linked).map_err(|e| format!("cannot write {}: {e}", out.display()))
}
