//! The task runner. Every task CI runs is a task here, and CI calls it unchanged:
//!
//! - `cargo xtask preview`    runs `host-runner preview` on the example platform (no cluster needed);
//! - `cargo xtask test`       installs what the tests need, then runs every check and test;
//! - `cargo xtask build-wasm` builds the policy module (OPA ABI; cargo, wasm-opt, post-link) into
//!   `target/policy/policy.wasm`, and its ABI 1.1 twin `policy-abi1.1.wasm` that makes SDKs take the eval-context
//!   path;
//! - `cargo xtask build-web`  builds the browser preview (wasm-bindgen build of the same crate) into `target/web`;
//! - `cargo xtask engines`    runs the case corpus in every host: native, our wasmtime host, OPA's npm SDK in Node,
//!   the `opa-wasm` crate, the npm SDK in headless Chromium, and OPA itself (`opa run --server`);
//! - `cargo xtask lint`       formatting, clippy (host and both wasm builds) and the Promise drift check;
//! - `cargo xtask promises`   regenerates `promises/*/promise.yaml` from the Rust types (`--check`: fail on drift);
//! - `cargo xtask soak`       the load and fault suite (`host-runner/tests/load.rs`) at full size, on the same test
//!   build as `test` (nothing is built twice), writing its figures to `target/load/report.md` (`test` runs the same
//!   suite in its short form);
//! - `cargo xtask bench [--quick]` measures the routing decision natively, in wasm, in Rego and as a process, and
//!   writes the report to `target/bench/report.md` (not part of `test`: it takes minutes and measures the machine);
//! - `cargo xtask fuzz [SECONDS [TARGET...]]` runs every fuzz target (or those named) for SECONDS (default 60)
//!   each, seeded from the corpus;
//! - `cargo xtask cluster [FILTER...]` runs the cluster tier against a real kube-apiserver it builds and starts
//!   (see `cluster.rs`).
//!
//! What the tests need and a fresh machine lacks is installed here, into `target/` where possible: the wasm32
//! target (rustup), `wasm-bindgen-cli` (cargo install, the version `policy-wasm` pins), the npm packages
//! (`npm ci` from the committed lockfile), and Debian's Chromium (apt-get, only when missing). Tasks print each
//! command before running it and stop at the first failure.

#![allow(clippy::print_stdout)]

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

mod cluster;
mod promises;

use module_build as build_module;
use module_build::postlink;

const WASM_TARGET: &str = "wasm32-unknown-unknown";
const CHROMIUM: &str = "/usr/bin/chromium";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("preview") => preview(args.get(1..).unwrap_or_default()),
        Some("test") => test(),
        Some("build-wasm") => match args.get(1).map(String::as_str) {
            None => build_wasm().map(|path| println!("{}", path.display())),
            Some("--small") => build_wasm_for_size().map(|path| println!("{}", path.display())),
            Some(other) => Err(format!("unknown argument `{other}`; usage: cargo xtask build-wasm [--small]")),
        },
        Some("build-web") => build_web().map(|path| println!("{}", path.display())),
        Some("engines") => engines(),
        Some("lint") => lint(),
        Some("promises") => promises::run(&root(), args.get(1).is_some_and(|a| a == "--check")),
        Some("bench") => bench(args.get(1..).unwrap_or_default()),
        Some("soak") => soak(),
        Some("fuzz") => fuzz(args.get(1..).unwrap_or_default()),
        Some("cluster") => cluster::cluster(&root(), &target(), args.get(1..).unwrap_or_default()),
        _ => {
            eprintln!(
                "usage: cargo xtask <preview [ARGS...] | test | lint | build-wasm | build-web | engines | \
                 promises [--check] | bench [--quick] | soak | fuzz [SECONDS [TARGET...]] | cluster [FILTER...]>"
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

fn target() -> PathBuf {
    root().join("target")
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

/// Runs a step and says how long it took.
fn timed(name: &str, step: impl FnOnce() -> Result) -> Result {
    let start = Instant::now();
    let result = step();
    println!("xtask: {name} {} in {:.0?}", if result.is_ok() { "done" } else { "FAILED" }, start.elapsed());
    result
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

/// Installs a C++ compiler (Debian package `g++`) if `c++` is missing: the fuzz crate's libFuzzer is C++.
fn ensure_cxx() -> Result {
    if answers("c++", &["--version"]) {
        return Ok(());
    }
    if !answers("apt-get", &["--version"]) {
        return Err("a C++ compiler (`c++`) is needed to build libFuzzer for the fuzz targets; install g++".into());
    }
    run(Command::new("apt-get").args(["update", "-qq"]))?;
    run(Command::new("apt-get").args(["install", "-y", "-qq", "g++"]))
}

/// Installs a cargo subcommand from crates.io if `cargo <name> --version` fails.
fn ensure_cargo_tool(subcommand: &str, package: &str) -> Result {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    if answers(&cargo, &[subcommand, "--version"]) {
        return Ok(());
    }
    run(Command::new(&cargo).args(["install", "--locked", package]))
}

/// Builds the OPA-ABI module through the one build path (the `module-build` crate); returns its path.
fn build_wasm() -> Result<PathBuf> {
    let (out, built) = build_tuned(build_module::Tuning::Speed, "policy.wasm")?;
    // ABI 1.1 is the same code declaring an older ABI, so SDKs take the eval-context path; only tests use it.
    let twin = out.with_file_name("policy-abi1.1.wasm");
    let linked = postlink::add_abi_globals(&built.unlinked, 1, 1).map_err(|e| format!("post-link: {e}"))?;
    std::fs::write(&twin, linked).map_err(|e| format!("cannot write {}: {e}", twin.display()))?;
    Ok(out)
}

/// Builds the module tuned for size instead of speed (`target/policy/policy-small.wasm`), for `bench --module`:
/// the size/speed trade-off of the shipped build is measured, not assumed.
fn build_wasm_for_size() -> Result<PathBuf> {
    build_tuned(build_module::Tuning::Size, "policy-small.wasm").map(|(out, _)| out)
}

/// Builds the module with `tuning` and writes it as `target/policy/<file>`.
fn build_tuned(tuning: build_module::Tuning, file: &str) -> Result<(PathBuf, build_module::Built)> {
    ensure_wasm_target()?;
    ensure_wasm_opt()?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    println!("+ build the policy module ({tuning:?}: cargo build --profile wasm, wasm-opt, OPA ABI post-link)");
    let built = build_module::build(&root(), &target(), &cargo, tuning)?;
    if let Some(why) = built.unoptimized {
        return Err(why);
    }
    let out_dir = target().join("policy");
    std::fs::create_dir_all(&out_dir).map_err(|e| e.to_string())?;
    let out = out_dir.join(file);
    std::fs::write(&out, &built.wasm).map_err(|e| format!("cannot write {}: {e}", out.display()))?;
    Ok((out, built))
}

/// The exact `wasm-bindgen` version `policy-wasm` pins (`wasm-bindgen = { version = "=X", ... }`).
fn wasm_bindgen_version() -> Result<String> {
    let manifest = root().join("policy-wasm").join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest).map_err(|e| format!("cannot read {}: {e}", manifest.display()))?;
    text.lines()
        .filter(|l| l.trim_start().starts_with("wasm-bindgen"))
        .find_map(|l| l.split("version = \"=").nth(1).and_then(|rest| rest.split('"').next()))
        .map(str::to_owned)
        .ok_or_else(|| format!("{} does not pin wasm-bindgen with `=`", manifest.display()))
}

/// `wasm-bindgen` of the pinned version, installed into `target/tools` on first use.
fn ensure_wasm_bindgen() -> Result<PathBuf> {
    let version = wasm_bindgen_version()?;
    let tools = target().join("tools").join(format!("wasm-bindgen-{version}"));
    let bin = tools.join("bin").join("wasm-bindgen");
    let have = Command::new(&bin)
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains(&version))
        .unwrap_or(false);
    if !have {
        // Not `--locked`: the CLI's own lockfile pins a crate version the registry no longer serves.
        run(cargo()
            .args(["install", "wasm-bindgen-cli", "--version", &version, "--root"])
            .arg(&tools)
            .env_remove("CARGO_TARGET_DIR"))?;
    }
    Ok(bin)
}

/// Builds the browser preview into `target/web`: the wasm-bindgen build of policy-wasm, the page, the example.
fn build_web() -> Result<PathBuf> {
    ensure_wasm_target()?;
    let bindgen = ensure_wasm_bindgen()?;
    // Its own target dir: the OPA build's output file has the same name.
    let target_dir = target().join("wasm-web");
    run(cargo()
        .args(["build", "--package", "policy-wasm", "--no-default-features", "--features", "bindgen"])
        .args(["--profile", "wasm-web", "--target", WASM_TARGET])
        .arg(format!("--target-dir={}", target_dir.display())))?;
    let built = target_dir.join(WASM_TARGET).join("wasm-web").join("policy_wasm.wasm");
    let web = target().join("web");
    if web.exists() {
        std::fs::remove_dir_all(&web).map_err(|e| format!("cannot clear {}: {e}", web.display()))?;
    }
    run(Command::new(&bindgen)
        .args(["--target", "web", "--no-typescript", "--remove-name-section", "--out-dir"])
        .arg(web.join("pkg"))
        .arg(&built))?;
    copy_files(&root().join("web"), &web)?;
    let examples = web.join("examples");
    std::fs::create_dir_all(&examples).map_err(|e| e.to_string())?;
    for (from, to) in [
        ("examples/platform/license.yaml", "license.yaml"),
        ("examples/platform/instances.yaml", "instances.yaml"),
        ("examples/observations.yaml", "observations.yaml"),
    ] {
        std::fs::copy(root().join(from), examples.join(to)).map_err(|e| format!("cannot copy {from}: {e}"))?;
    }
    Ok(web)
}

fn copy_files(from: &Path, to: &Path) -> Result {
    std::fs::create_dir_all(to).map_err(|e| e.to_string())?;
    for entry in std::fs::read_dir(from).map_err(|e| format!("cannot read {}: {e}", from.display()))? {
        let path = entry.map_err(|e| e.to_string())?.path();
        if path.is_file()
            && let Some(name) = path.file_name()
        {
            std::fs::copy(&path, to.join(name)).map_err(|e| format!("cannot copy {}: {e}", path.display()))?;
        }
    }
    Ok(())
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
    // The OPA ABI glue and the browser API only compile for wasm32: lint them there too.
    run(cargo().args(["clippy", "--package", "policy-wasm", "--target", WASM_TARGET, "--", "-D", "warnings"]))?;
    run(cargo()
        .args(["clippy", "--package", "policy-wasm", "--no-default-features", "--features", "bindgen"])
        .args(["--all-targets", "--", "-D", "warnings"]))?;
    run(cargo()
        .args(["clippy", "--package", "policy-wasm", "--no-default-features", "--features", "bindgen"])
        .args(["--target", WASM_TARGET, "--", "-D", "warnings"]))?;
    run(cargo().args(["fmt", "--manifest-path", "tests/opa-wasm-runner/Cargo.toml", "--", "--check"]))?;
    // The fuzz targets live outside the workspace (they need sanitizer flags to run); compile them here so they
    // cannot fall behind the policy's API. `wasm_host` needs feature `host` (wasmtime), checked by `cargo xtask fuzz`.
    run(cargo().args(["fmt", "--manifest-path", "fuzz/Cargo.toml", "--", "--check"]))?;
    ensure_cxx()?;
    run(cargo()
        .args(["check", "--manifest-path", "fuzz/Cargo.toml", "--bins", "--locked"])
        .arg(format!("--target-dir={}", target().join("fuzz-check").display())))
}

/// Native `policy-core` answers to every corpus case, for the hosts outside this workspace.
fn corpus_answers() -> Result<PathBuf> {
    let dir = target().join("corpus-answers");
    run(cargo().args(["run", "--quiet", "--package", "policy-core", "--example", "corpus_answers", "--"]).arg(&dir))?;
    Ok(dir.join("index.json"))
}

/// The `host-runner` binary the Node tests start: the one the workspace's test build makes, so nothing is built
/// twice with other features (the test build unifies in the dev-dependencies' wasmtime features).
fn host_runner_bin() -> Result<PathBuf> {
    run(cargo().args(["test", "--no-run", "--quiet", "--workspace"]))?;
    Ok(target().join("debug").join("host-runner"))
}

/// Debian's Chromium, installed with apt-get when missing (or `CHROMIUM` names another binary).
fn ensure_chromium() -> Result<PathBuf> {
    if let Some(given) = std::env::var_os("CHROMIUM") {
        return Ok(PathBuf::from(given));
    }
    let chromium = PathBuf::from(CHROMIUM);
    if !chromium.exists() {
        run(Command::new("apt-get").arg("update"))?;
        run(Command::new("apt-get").args(["install", "-y", "chromium"]).env("DEBIAN_FRONTEND", "noninteractive"))?;
    }
    Ok(chromium)
}

fn npm_ci() -> Result {
    run(Command::new("npm").current_dir(root().join("tests/node")).args(["ci", "--no-audit", "--no-fund"]))
}

/// Runs Node test files (in `tests/node`) with the paths they need.
fn node_tests(files: &[&str]) -> Result {
    let host_runner = host_runner_bin()?;
    let chromium = ensure_chromium()?;
    let mut cmd = Command::new("node");
    cmd.current_dir(root().join("tests/node"))
        .arg("--test")
        .args(files)
        .env("FOUNDRY_TARGET_DIR", target())
        .env("HOST_RUNNER", host_runner)
        .env("CHROMIUM", chromium);
    run(&mut cmd)
}

/// The `opa-wasm` crate as a second host: a workspace of its own, built into `target/opa-wasm-runner`.
fn opa_wasm_runner(index: &Path, module: &Path) -> Result {
    let slow = module.with_file_name("policy-abi1.1.wasm");
    run(cargo()
        .args(["run", "--quiet", "--locked", "--manifest-path", "tests/opa-wasm-runner/Cargo.toml"])
        .arg(format!("--target-dir={}", target().join("opa-wasm-runner").display()))
        .arg("--")
        .args([index, module, &slow]))
}

/// The corpus in every host: native and wasmtime (cargo tests), the npm SDK in Node and in Chromium, and the
/// `opa-wasm` crate.
fn engines() -> Result {
    let module = build_wasm()?;
    timed("native and wasmtime corpus", || {
        run(cargo().args(["nextest", "run", "--workspace", "-E", "test(corpus) | test(wasm_matches_native)"]))
    })?;
    let index = corpus_answers()?;
    npm_ci()?;
    timed("npm SDK in Node and Chromium", || node_tests(&["opa-sdk.test.mjs", "browser-corpus.test.mjs"]))?;
    timed("opa-wasm crate", || opa_wasm_runner(&index, &module))?;
    timed("OPA", || cluster::opa_corpus(&root(), &target()))
}

/// `taskset` (Debian's `util-linux`), which the load suite pins the standby page with.
fn ensure_taskset() -> Result {
    if answers("taskset", &["--version"]) {
        return Ok(());
    }
    run(Command::new("apt-get").args(["update", "-qq"]))?;
    run(Command::new("apt-get").args(["install", "-y", "-qq", "util-linux"]))
}

/// The load suite's figures of the last run (`target/load/report.md`), printed.
fn load_report() {
    let report = target().join("load").join("report.md");
    if let Ok(text) = std::fs::read_to_string(&report) {
        println!("xtask: load and fault suite ({}):\n{text}", report.display());
    }
}

/// The load and fault suite at full size (the figures the README quotes), on the test build `test` uses: a second,
/// release build of every test binary would double the build time and disk. The policy runs as precompiled native
/// code in both; the host's own code is unoptimised here, so the figures are on the safe side.
fn soak() -> Result {
    ensure_wasm_target()?;
    ensure_wasm_opt()?;
    ensure_cargo_tool("nextest", "cargo-nextest")?;
    ensure_taskset()?;
    let _ = std::fs::remove_file(target().join("load").join("report.md"));
    let result = timed("soak", || {
        run(cargo()
            .args(["nextest", "run", "--package", "host-runner", "--no-fail-fast"])
            .args(["-E", "binary(load)"])
            .env("FOUNDRY_SOAK", "1"))
    });
    load_report();
    result
}

fn test() -> Result {
    let start = Instant::now();
    ensure_wasm_target()?;
    ensure_wasm_opt()?;
    ensure_cargo_tool("nextest", "cargo-nextest")?;
    ensure_taskset()?;
    let _ = std::fs::remove_file(target().join("load").join("report.md"));
    timed("lint", lint)?;
    let module = build_wasm()?;
    // The standby page's browser test (in the Rust suite) and the Node tests share Chromium and the npm packages;
    // it fails, rather than skips, when anything it needs is missing.
    let chromium = ensure_chromium()?;
    npm_ci()?;
    timed("cargo tests", || {
        run(cargo()
            .args(["nextest", "run", "--workspace", "--no-fail-fast"])
            .env("FOUNDRY_BROWSER_TESTS", "1")
            .env("CHROMIUM", &chromium))?;
        // The browser build's API, natively.
        run(cargo().args([
            "nextest",
            "run",
            "--package",
            "policy-wasm",
            "--no-default-features",
            "--features",
            "bindgen",
        ]))
    })?;
    load_report();
    timed("build-web", || build_web().map(|_| ()))?;
    let index = corpus_answers()?;
    timed("node and chromium tests", || {
        node_tests(&["opa-sdk.test.mjs", "browser-corpus.test.mjs", "preview.test.mjs"])
    })?;
    timed("opa-wasm crate", || opa_wasm_runner(&index, &module))?;
    timed("OPA", || cluster::opa_corpus(&root(), &target()))?;
    timed("cluster tier", || cluster::cluster(&root(), &target(), &[]))?;
    println!("xtask: every check passed in {:.0?}", start.elapsed());
    Ok(())
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
    ensure_cxx()?;
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
