//! The one build path of the policy module, shared by `cargo xtask build-wasm` and host-runner's build script.
//!
//! 1. A nested `cargo build` of `policy-wasm` for wasm32 (profile `wasm`) in its own target directory, so it never
//!    waits on the outer build's lock, with the outer build's flags and wrappers removed (they are for the host).
//! 2. `wasm-opt` (binaryen) optimises the module further; it only rewrites code, never behaviour, and the corpus
//!    checks the optimised module answers byte for byte like native `policy-core`. Without `wasm-opt` on `PATH`
//!    the module is used as built and the caller is told (`cargo xtask` installs binaryen first).
//! 3. The OPA ABI post-link step adds the two ABI version globals (`postlink.rs`).
//!
//! This crate must stay free of dependencies (without `engine`): build scripts depend on it.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The wasm features Rust 1.95 emits for wasm32 (binaryen 108 needs them named).
pub const WASM_FEATURES: [&str; 6] = [
    "--enable-bulk-memory",
    "--enable-sign-ext",
    "--enable-mutable-globals",
    "--enable-nontrapping-float-to-int",
    "--enable-multivalue",
    "--enable-reference-types",
];

/// The built module.
#[derive(Debug)]
pub struct Built {
    /// The post-linked module (ABI 1.3).
    pub wasm: Vec<u8>,
    /// The optimised module before the post-link step (for variants that declare another ABI minor version).
    pub unlinked: Vec<u8>,
    /// Why `wasm-opt` did not run, if it did not.
    pub unoptimized: Option<String>,
}

/// The `wasm-opt` to run: `$WASM_OPT`, else the one on `PATH`, if it answers.
pub fn wasm_opt() -> Option<PathBuf> {
    let candidate = std::env::var_os("WASM_OPT").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("wasm-opt"));
    let answers = Command::new(&candidate).arg("--version").output().is_ok_and(|o| o.status.success());
    answers.then_some(candidate)
}

/// How to optimise the module.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tuning {
    /// The shipped build: for speed (the `wasm` profile's `opt-level = 3`, `wasm-opt -O3`).
    Speed,
    /// For size (`opt-level = "s"`, `wasm-opt -Oz`), in its own target directory; only measured, never shipped.
    Size,
}

/// Builds, optimises and post-links the module. `target_root` is the outer build's target directory.
pub fn build(root: &Path, target_root: &Path, cargo: &str, tuning: Tuning) -> Result<Built, String> {
    let target_dir = target_root.join(match tuning {
        Tuning::Speed => "wasm",
        Tuning::Size => "wasm-size",
    });
    let mut cmd = Command::new(cargo);
    if tuning == Tuning::Size {
        cmd.env("CARGO_PROFILE_WASM_OPT_LEVEL", "s");
    }
    cmd.current_dir(root)
        .args(["build", "--package", "policy-wasm", "--profile", "wasm", "--target", "wasm32-unknown-unknown"])
        .arg(format!("--target-dir={}", target_dir.display()));
    for var in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_BUILD_RUSTFLAGS",
        "RUSTC_WORKSPACE_WRAPPER",
        "RUSTC_WRAPPER",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "CARGO_PRIMARY_PACKAGE",
    ] {
        cmd.env_remove(var);
    }
    let status = cmd.status().map_err(|e| format!("cannot run cargo for the policy module: {e}"))?;
    if !status.success() {
        return Err("building the policy module failed; is the target installed? run \
                    `rustup target add wasm32-unknown-unknown` (or `cargo xtask build-wasm`)"
            .into());
    }
    let built = target_dir.join("wasm32-unknown-unknown").join("wasm").join("policy_wasm.wasm");
    let (input, unoptimized) = match wasm_opt() {
        Some(tool) => {
            let optimized = built.with_extension("opt.wasm");
            let level = match tuning {
                Tuning::Speed => "-O3",
                Tuning::Size => "-Oz",
            };
            let status = Command::new(&tool)
                .arg(level)
                .args(WASM_FEATURES)
                .arg(&built)
                .arg("-o")
                .arg(&optimized)
                .status()
                .map_err(|e| format!("cannot run {}: {e}", tool.display()))?;
            if !status.success() {
                return Err(format!("{} {} {} failed ({status})", tool.display(), level, WASM_FEATURES.join(" ")));
            }
            (optimized, None)
        }
        None => (built.clone(), Some("`wasm-opt` was not found; install binaryen (`apt-get install binaryen`)".into())),
    };
    let raw = std::fs::read(&input).map_err(|e| format!("cannot read {}: {e}", input.display()))?;
    let wasm =
        crate::postlink::add_abi_globals(&raw, 1, 3).map_err(|e| format!("post-link of {}: {e}", input.display()))?;
    Ok(Built { wasm, unlinked: raw, unoptimized })
}
