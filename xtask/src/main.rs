//! The task runner. Every task CI runs is a task here, and CI calls it unchanged:
//!
//! - `cargo xtask preview`    runs `host-runner preview` on the example platform (no cluster needed);
//! - `cargo xtask test`       installs what the tests need (the wasm32 target, Chromium and the browser test's npm
//!   packages), then runs every check and test;
//! - `cargo xtask build-wasm` builds the policy module (OPA ABI) into `target/policy/policy.wasm`;
//! - `cargo xtask promises`   regenerates `promises/*/promise.yaml` from the Rust types (`--check`: fail on drift).
//!
//! Tasks print each command before running it and stop at the first failure.

#![allow(clippy::print_stdout)]

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

#[path = "../../policy-wasm/postlink.rs"]
mod postlink;
mod promises;

const WASM_TARGET: &str = "wasm32-unknown-unknown";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("preview") => preview(args.get(1..).unwrap_or_default()),
        Some("test") => test(),
        Some("build-wasm") => build_wasm().map(|path| println!("{}", path.display())),
        Some("lint") => lint(),
        Some("promises") => promises::run(&root(), args.get(1).is_some_and(|a| a == "--check")),
        _ => {
            eprintln!("usage: cargo xtask <preview [ARGS...] | test | lint | build-wasm | promises [--check]>");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

type Result<T = ()> = std::result::Result<T, String>;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_default()
}

fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(root());
    cmd
}

fn run(cmd: &mut Command) -> Result {
    let shown = format!("{cmd:?}").replace('"', "");
    println!("+ {shown}");
    let status = cmd.status().map_err(|e| format!("cannot start {shown}: {e}"))?;
    if status.success() { Ok(()) } else { Err(format!("{shown} failed ({status})")) }
}

/// Installs the wasm32 target if rustup lacks it.
fn ensure_wasm_target() -> Result {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).lines().any(|l| l.trim() == WASM_TARGET))
        .unwrap_or(false);
    if installed { Ok(()) } else { run(Command::new("rustup").args(["target", "add", WASM_TARGET])) }
}

/// Builds the OPA-ABI module and adds the ABI globals; returns its path.
fn build_wasm() -> Result<PathBuf> {
    ensure_wasm_target()?;
    let target_dir = root().join("target").join("wasm");
    run(cargo()
        .args(["build", "--package", "policy-wasm", "--profile", "wasm", "--target", WASM_TARGET])
        .arg(format!("--target-dir={}", target_dir.display())))?;
    let built = target_dir.join(WASM_TARGET).join("wasm").join("policy_wasm.wasm");
    let raw = std::fs::read(&built).map_err(|e| format!("cannot read {}: {e}", built.display()))?;
    let linked = postlink::add_abi_globals(&raw, 1, 3).map_err(|e| format!("post-link of {}: {e}", built.display()))?;
    let out_dir = root().join("target").join("policy");
    std::fs::create_dir_all(&out_dir).map_err(|e| e.to_string())?;
    let out = out_dir.join("policy.wasm");
    std::fs::write(&out, linked).map_err(|e| format!("cannot write {}: {e}", out.display()))?;
    Ok(out)
}

fn preview(extra: &[String]) -> Result {
    ensure_wasm_target()?;
    let mut cmd = cargo();
    cmd.args(["run", "--quiet", "--release", "--package", "host-runner", "--", "preview"]);
    if extra.is_empty() {
        cmd.args(["examples/platform", "--observations", "examples/observations.yaml"]);
    } else {
        cmd.args(extra);
    }
    run(&mut cmd)
}

fn lint() -> Result {
    ensure_wasm_target()?;
    run(cargo().args(["fmt", "--all", "--", "--check"]))?;
    println!("+ promises --check");
    promises::run(&root(), true)?;
    run(cargo().args(["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"]))?;
    // The OPA ABI glue only compiles for wasm32: lint it there too.
    run(cargo().args(["clippy", "--package", "policy-wasm", "--target", WASM_TARGET, "--", "-D", "warnings"]))
}

fn test() -> Result {
    ensure_wasm_target()?;
    lint()?;
    build_wasm()?;
    ensure_browser()?;
    // The browser test fails, rather than skips, when anything it needs is missing.
    run(cargo().args(["nextest", "run", "--workspace", "--no-fail-fast"]).env("FOUNDRY_BROWSER_TESTS", "1"))
}

/// Installs what the standby page's browser test needs: Debian's Chromium (only when missing) and the pinned npm
/// packages of `tests/browser` (from the committed lockfile).
fn ensure_browser() -> Result {
    if !Path::new("/usr/bin/chromium").exists() {
        run(Command::new("apt-get").arg("update"))?;
        run(Command::new("apt-get").args(["install", "-y", "--no-install-recommends", "chromium"]))?;
    }
    let dir = root().join("tests").join("browser");
    let installed = dir.join("node_modules").join("playwright-core").join("package.json");
    let wanted = std::fs::read_to_string(dir.join("package-lock.json")).unwrap_or_default();
    let have = std::fs::read_to_string(dir.join("node_modules").join(".package-lock.json")).unwrap_or_default();
    if !installed.exists() || !have.contains(&lock_version(&wanted)) {
        run(Command::new("npm").args(["ci", "--no-audit", "--no-fund"]).current_dir(&dir))?;
    }
    Ok(())
}

/// The `playwright-core` version a lockfile pins (empty when it names none).
fn lock_version(lock: &str) -> String {
    lock.split("\"node_modules/playwright-core\"")
        .nth(1)
        .and_then(|rest| rest.split("\"version\": \"").nth(1))
        .and_then(|rest| rest.split('"').next())
        .map(|v| format!("\"version\": \"{v}\""))
        .unwrap_or_default()
}
