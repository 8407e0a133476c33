//! Runs every corpus case through the policy module in the `opa-wasm` crate (matrix-org's rust-opa-wasm), an
//! OPA-ABI host this project did not write, and compares each result with native `policy-core`'s answer.
//!
//! `opa-wasm-runner <corpus-answers/index.json> <policy.wasm> <policy-abi1.1.wasm>`: the first module runs on
//! the crate's ABI 1.2+ `opa_eval` path, the second (the same code declaring ABI 1.1) on its eval-context path.
//! Each case gets a fresh store and instance; its data is loaded with `with_data` (which hands the module a
//! NUL-terminated string, a quirk the module must tolerate), its input is passed as the exact bytes native ran.
//! Cases listed for `opa-wasm` / `opa-wasm-slow` in DIVERGENCES.yaml are not run; it prints
//! `N passed, N failed` and exits non-zero on any failure.

#![allow(clippy::print_stdout)]

use anyhow::{Context, Result, bail};
use opa_wasm::{Runtime, wasmtime};
use serde_json::Value;
use serde_json::value::RawValue;
use std::process::ExitCode;

fn main() -> ExitCode {
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("opa-wasm-runner: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run() -> Result<bool> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [index, fast, slow] = args.as_slice() else {
        bail!("usage: opa-wasm-runner <corpus-answers/index.json> <policy.wasm> <policy-abi1.1.wasm>");
    };
    let cases: Vec<Value> = serde_json::from_slice(&std::fs::read(index).with_context(|| format!("reading {index}"))?)?;
    let runtime = tokio::runtime::Builder::new_current_thread().build()?;
    let mut ok = true;
    for (runner, module, want_abi) in [("opa-wasm", fast, "1.3"), ("opa-wasm-slow", slow, "1.1")] {
        let bytes = std::fs::read(module).with_context(|| format!("reading {module}"))?;
        ok &= runtime.block_on(run_module(runner, &bytes, want_abi, &cases))?;
    }
    Ok(ok)
}

async fn run_module(runner: &str, module: &[u8], want_abi: &str, cases: &[Value]) -> Result<bool> {
    let config = wasmtime::Config::new();
    let engine = wasmtime::Engine::new(&config)?;
    let module = wasmtime::Module::new(&engine, module)?;

    // What the crate makes of the module itself.
    let mut store = wasmtime::Store::new(&engine, ());
    let probe = Runtime::new(&mut store, &module).await?;
    let abi = probe.abi_version().to_string();
    let mut failures = Vec::new();
    if !abi.starts_with(want_abi) {
        failures.push(format!("ABI version {abi}, expected {want_abi}"));
    }
    if probe.default_entrypoint() != Some("foundry/license/route") {
        failures.push(format!("default entrypoint {:?}, expected foundry/license/route", probe.default_entrypoint()));
    }
    let entrypoints = probe.entrypoints();

    let mut passed = 0;
    for case in cases {
        let name = case["name"].as_str().unwrap_or_default();
        if case["skip"].get(runner).is_some() {
            continue;
        }
        let operation = case["operation"].as_str().unwrap_or_default();
        if !entrypoints.contains(operation) {
            failures.push(format!("{name}: the module has no entrypoint {operation}"));
            continue;
        }
        match evaluate(&engine, &module, case).await {
            Ok(result) if result == case["answer"] => passed += 1,
            Ok(result) => {
                failures.push(format!("{name}: differs from native\n  got:    {result}\n  native: {}", case["answer"]))
            }
            Err(e) => failures.push(format!("{name}: {e:#}")),
        }
    }
    for failure in &failures {
        println!("FAIL [{runner}] {failure}");
    }
    println!("{runner} runs the module as ABI {abi}");
    println!("{runner}: {passed} passed, {} failed", failures.len());
    Ok(failures.is_empty() && passed > 0)
}

async fn evaluate(engine: &wasmtime::Engine, module: &wasmtime::Module, case: &Value) -> Result<Value> {
    let mut store = wasmtime::Store::new(engine, ());
    let runtime = Runtime::new(&mut store, module).await?;
    let policy = match &case["data"] {
        Value::Null => runtime.without_data(&mut store).await?,
        data => runtime.with_data(&mut store, data).await?,
    };
    let input = RawValue::from_string(case["inputText"].as_str().unwrap_or_default().to_owned())?;
    let operation = case["operation"].as_str().unwrap_or_default();
    let set: Value = policy.evaluate(&mut store, operation, &input).await?;
    match set.as_array().map(Vec::as_slice) {
        Some([one]) => one.get("result").cloned().context("the binding has no `result`"),
        _ => bail!("not a result set with one result: {set}"),
    }
}
