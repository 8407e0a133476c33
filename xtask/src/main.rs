//! The task runner. Every task CI runs is a task here, and CI calls it unchanged:
//!
//! - `cargo xtask preview`    runs `host-runner preview` on the example platform (no cluster needed);
//! - `cargo xtask test`       installs what the tests need, then runs every check and test;
//! - `cargo xtask build-wasm` builds the policy module (OPA ABI) into `target/policy/policy.wasm`;
//! - `cargo xtask bench [--quick]` measures the routing decision natively, in wasm, in Rego and as a process, and
//!   writes the report to `target/bench/report.md` (not part of `test`: it takes minutes and measures the machine);
//! - `cargo xtask fuzz [SECONDS [TARGET...]]` runs every fuzz target (or those named) for SECONDS (default 60)
//!   each, seeded from the corpus.
//!
//! Tasks print each command before running it and stop at the first failure.

#![allow(clippy::print_stdout)]

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

#[path = "../../policy-wasm/postlink.rs"]
mod postlink;

#[path = "../../policy-wasm/build_module.rs"]
mod build_module;

const WASM_TARGET: &str = "wasm32-unknown-unknown";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("preview") => preview(args.get(1..).unwrap_or_default()),
        Some("test") => test(),
        Some("build-wasm") => build_wasm().map(|path| println!("{}", path.display())),
        Some("lint") => lint(),
        Some("bench") => bench(args.get(1..).unwrap_or_default()),
        Some("fuzz") => fuzz(args.get(1..).unwrap_or_default()),
        _ => {
            eprintln!(
                "usage: cargo xtask <preview [ARGS...] | test | lint | build-wasm | bench [--quick] | fuzz [SECONDS [TARGET...]]>"
            );
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

/// Whether `program --version` runs.
fn answers(program: &str, args: &[&str]) -> bool {
    Command::new(program).args(args).output().is_ok_and(|o| o.status.success())
}

/// Installs binaryen's `wasm-opt` (Debian package `binaryen`) if it is missing, so the module is built as it ships.
fn ensure_wasm_opt() -> Result {
    if build_module::wasm_opt().is_some() {
        return Ok(());
    }
    if !answers("apt-get", &["--version"]) {
        return Err("`wasm-opt` is missing and apt-get is not available: install binaryen (version 108 or later) \
                    and put `wasm-opt` on PATH, or set WASM_OPT to its path"
            .into());
    }
    run(Command::new("apt-get").args(["update", "-qq"]))?;
    run(Command::new("apt-get").args(["install", "-y", "-qq", "binaryen"]))?;
    build_module::wasm_opt().map(|_| ()).ok_or_else(|| "binaryen was installed but `wasm-opt` does not run".into())
}

/// Installs a cargo subcommand from crates.io if `cargo <name> --version` fails.
fn ensure_cargo_tool(subcommand: &str, package: &str) -> Result {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    if answers(&cargo, &[subcommand, "--version"]) {
        return Ok(());
    }
    run(Command::new(&cargo).args(["install", "--locked", package]))
}

/// Builds the OPA-ABI module through the one build path (`policy-wasm/build_module.rs`); returns its path.
fn build_wasm() -> Result<PathBuf> {
    ensure_wasm_target()?;
    ensure_wasm_opt()?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    println!("+ build the policy module (cargo build --profile wasm, wasm-opt, OPA ABI post-link)");
    let built = build_module::build(&root(), &root().join("target"), &cargo)?;
    if let Some(why) = built.unoptimized {
        return Err(why);
    }
    let out_dir = root().join("target").join("policy");
    std::fs::create_dir_all(&out_dir).map_err(|e| e.to_string())?;
    let out = out_dir.join("policy.wasm");
    std::fs::write(&out, built.wasm).map_err(|e| format!("cannot write {}: {e}", out.display()))?;
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
    run(cargo().args(["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"]))?;
    // The OPA ABI glue only compiles for wasm32: lint it there too.
    run(cargo().args(["clippy", "--package", "policy-wasm", "--target", WASM_TARGET, "--", "-D", "warnings"]))
}

fn test() -> Result {
    ensure_wasm_target()?;
    ensure_wasm_opt()?;
    ensure_cargo_tool("nextest", "cargo-nextest")?;
    lint()?;
    build_wasm()?;
    run(cargo().args(["nextest", "run", "--workspace", "--no-fail-fast"]))
}

/// Release builds of `host-runner` and the bench, then the bench itself (see `bench/src/main.rs`).
fn bench(extra: &[String]) -> Result {
    ensure_wasm_target()?;
    ensure_wasm_opt()?;
    run(cargo().args(["build", "--release", "--package", "host-runner", "--package", "bench"]))?;
    let target = root().join("target").join("release");
    let report = root().join("target").join("bench").join("report.md");
    run(Command::new(target.join("bench"))
        .current_dir(root())
        .arg("--host-runner")
        .arg(target.join("host-runner"))
        .arg("--root")
        .arg(root())
        .arg("--out")
        .arg(&report)
        .args(extra))?;
    println!("report written to {}", report.display());
    Ok(())
}

/// Every fuzz target for a bounded time, seeded from the corpus. Needs the sanitizer flags of nightly Rust, which
/// stable Rust accepts with `RUSTC_BOOTSTRAP=1`. A crash leaves its input in `fuzz/artifacts/<target>/` and fails.
fn fuzz(extra: &[String]) -> Result {
    let seconds: u64 = match extra.first() {
        Some(s) => s.parse().map_err(|_| format!("fuzz: `{s}` is not a number of seconds"))?,
        None => 60,
    };
    // Optional target names after the seconds: run only those.
    let only: Vec<&String> = extra.iter().skip(1).collect();
    ensure_wasm_target()?;
    ensure_wasm_opt()?;
    ensure_cargo_tool("fuzz", "cargo-fuzz")?;
    let corpus_dir = root().join("fuzz").join("corpus");
    run(cargo().args(["run", "--quiet", "--package", "corpus", "--bin", "fuzz-seeds", "--"]).arg(&corpus_dir))?;
    let list = cargo()
        .args(["fuzz", "list"])
        .env("RUSTC_BOOTSTRAP", "1")
        .output()
        .map_err(|e| format!("cannot run cargo fuzz list: {e}"))?;
    let targets: Vec<String> =
        String::from_utf8_lossy(&list.stdout).lines().map(str::trim).map(str::to_owned).collect();
    if targets.is_empty() {
        return Err("cargo fuzz list found no targets".into());
    }
    for target in targets.iter().filter(|t| only.is_empty() || only.contains(t)) {
        std::fs::create_dir_all(corpus_dir.join(target)).map_err(|e| e.to_string())?;
        // The target that runs the module in wasmtime needs the host, which is behind a feature (see fuzz/Cargo.toml).
        let features: &[&str] = if target == "wasm_host" { &["--features", "host"] } else { &[] };
        run(cargo()
            .args(["fuzz", "run", target])
            .args(features)
            .arg(corpus_dir.join(target))
            .args([
                "--",
                &format!("-max_total_time={seconds}"),
                "-rss_limit_mb=4096",
                "-timeout=30",
                "-print_final_stats=1",
            ])
            .env("RUSTC_BOOTSTRAP", "1"))?;
    }
    Ok(())
}
