//! Runs the case corpus through the built `.wasm` in our wasmtime host, and through the CLI binary.
//!
//! The wasm runner checks each answer against the case and requires it to be byte-identical to native
//! `policy-core`. The CLI runner feeds the same objects to `host-runner preview` as files and requires its JSON
//! output and its `--out` files to equal what native `policy-core` decides, and its exit code and error codes
//! to match failures.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use host_runner::engine::{Limits, PolicyEngine};
use host_runner::render::{self, OutputFormat};
use serde_json::{Value, json};
use std::process::Command;
use std::sync::OnceLock;

fn engine() -> &'static PolicyEngine {
    static ENGINE: OnceLock<PolicyEngine> = OnceLock::new();
    ENGINE.get_or_init(|| PolicyEngine::embedded(Limits::default()).expect("the embedded module loads"))
}

#[test]
fn corpus_passes_in_wasmtime_and_matches_native_bytes() {
    let cases = corpus::load_cases();
    let mut failures = Vec::new();
    for case in cases.iter().filter(|c| !corpus::diverges(c, "wasmtime")) {
        let call = corpus::call_bytes(case);
        let native = policy_core::api::call_with_data(&case.operation, &call, case.data.as_ref());
        let data = corpus::data_bytes(case);
        let wasm = match engine().evaluate_with_data(&case.operation, &call, data.as_deref()) {
            Ok((bytes, _)) => String::from_utf8(bytes).unwrap(),
            Err(e) => {
                failures.push(format!("{}: the module failed: {e}", case.name));
                continue;
            }
        };
        if wasm != native {
            failures
                .push(format!("{}: wasm and native answers differ\n  wasm:   {wasm}\n  native: {native}", case.name));
        }
        if let Err(problems) = corpus::check(case, &serde_json::from_str(&wasm).unwrap()) {
            failures.push(format!("{}:\n  {}", case.name, problems.join("\n  ")));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The objects and observations of a preview case, as `preview` reads them.
fn preview_input(case: &corpus::Case) -> Option<(Vec<Value>, Value)> {
    let call = &case.call;
    if case.operation != "foundry/platform/preview" {
        return None;
    }
    let objects = call["objects"].as_array()?.clone();
    if objects.iter().any(|o| !o.is_object()) {
        return None;
    }
    Some((objects, observations_file(call)))
}

/// The observations file a person would write for a call: its observations, and its `now` when it has one.
fn observations_file(call: &Value) -> Value {
    let mut file = call.get("observations").cloned().unwrap_or(json!({}));
    if let (Some(now), Some(map)) = (call.get("now"), file.as_object_mut()) {
        map.insert("now".into(), now.clone());
    }
    file
}

/// Writes `value` as a YAML file and returns its path.
fn write_yaml(dir: &std::path::Path, name: &str, value: &Value) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, policy_core::api::to_yaml(value)).unwrap();
    path
}

/// Runs an instance workflow case through `host-runner kratix --offline`, as the pipeline would run it, and
/// compares the files it writes with what native `policy-core` decides.
fn instance_case_through_kratix(case: &corpus::Case, failures: &mut Vec<String>) {
    let call = &case.call;
    let dir = tempfile::tempdir().unwrap();
    for d in ["input", "output", "metadata"] {
        std::fs::create_dir_all(dir.path().join(d)).unwrap();
    }
    write_yaml(&dir.path().join("input"), "object.yaml", &call["instance"]);
    let mut snapshot: Vec<String> = Vec::new();
    if call["license"].is_object() {
        snapshot.push(policy_core::api::to_yaml(&call["license"]));
    }
    for i in call.get("instances").and_then(Value::as_array).into_iter().flatten() {
        snapshot.push(policy_core::api::to_yaml(i));
    }
    // The running Deployment, as the snapshot's cluster holds it.
    if call.get("workload").is_some_and(Value::is_object) {
        snapshot.push(policy_core::api::to_yaml(&call["workload"]));
    }
    std::fs::write(dir.path().join("snapshot.yaml"), snapshot.join("---\n")).unwrap();
    let observations = write_yaml(dir.path(), "observations.yaml", &observations_file(call));
    let action = if case.operation.ends_with("/delete") { "delete" } else { "configure" };
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_host-runner"));
    cmd.args(["kratix", "--offline", "--snapshot"])
        .arg(dir.path().join("snapshot.yaml"))
        .arg("--observations")
        .arg(&observations)
        .env_clear()
        .env("KRATIX_WORKFLOW_TYPE", "resource")
        .env("KRATIX_WORKFLOW_ACTION", action)
        .env("KRATIX_OBJECT_KIND", "FoundryInstance")
        .env("KRATIX_INPUT_DIR", dir.path().join("input"))
        .env("KRATIX_OUTPUT_DIR", dir.path().join("output"))
        .env("KRATIX_METADATA_DIR", dir.path().join("metadata"));
    if call.get("catalog").is_some_and(Value::is_object) {
        cmd.arg("--catalog").arg(write_yaml(dir.path(), "catalog.yaml", &call["catalog"]));
    }
    let output = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    let native: Value = serde_json::from_str(&policy_core::call(&case.operation, &corpus::call_bytes(case))).unwrap();
    match native["outcome"].as_str() {
        Some("failure") => {
            if output.status.code() != Some(3) {
                failures.push(format!("{}: expected exit 3, got {:?}: {stderr}", case.name, output.status));
            }
            for e in native["errors"].as_array().unwrap() {
                if !stderr.contains(&format!("error[{}]", e["code"].as_str().unwrap())) {
                    failures.push(format!("{}: stderr lacks {}: {stderr}", case.name, e["code"]));
                }
            }
            if std::fs::read_dir(dir.path().join("output")).unwrap().count() != 0 {
                failures.push(format!("{}: a refused input still wrote output", case.name));
            }
        }
        _ => {
            if !output.status.success() {
                failures.push(format!("{}: exit {:?}: {stderr}", case.name, output.status));
                return;
            }
            let decision = &native["decision"];
            if action == "configure" {
                let files = decision["files"].as_array().unwrap();
                for f in files {
                    let written = std::fs::read_to_string(dir.path().join("output").join(f["path"].as_str().unwrap()))
                        .unwrap_or_default();
                    if written != f["content"].as_str().unwrap() {
                        failures.push(format!("{}: {} differs from native", case.name, f["path"]));
                    }
                }
                if std::fs::read_dir(dir.path().join("output")).unwrap().count() != files.len() {
                    failures.push(format!("{}: the output holds other files than native decides", case.name));
                }
            }
            let status = std::fs::read_to_string(dir.path().join("metadata/status.yaml")).unwrap_or_default();
            if status != decision["statusYaml"].as_str().unwrap() {
                failures.push(format!("{}: status.yaml differs from native", case.name));
            }
            let touched = stderr.contains("would label FoundryLicense");
            if touched != decision.get("reroute").is_some_and(Value::is_object) {
                failures.push(format!("{}: re-route request differs from native: {stderr}", case.name));
            }
        }
    }
}

/// Runs a routing case through `host-runner kratix --offline` (the license workflow, as the pipeline runs it), and
/// compares its files, its status and the changes it would make with what native `policy-core` decides.
fn route_case_through_kratix(case: &corpus::Case, failures: &mut Vec<String>) {
    let call = &case.call;
    let dir = tempfile::tempdir().unwrap();
    for d in ["input", "output", "metadata"] {
        std::fs::create_dir_all(dir.path().join(d)).unwrap();
    }
    write_yaml(&dir.path().join("input"), "object.yaml", &call["license"]);
    let mut snapshot = vec![policy_core::api::to_yaml(&call["license"])];
    for key in ["instances", "otherLicenses", "otherInstances"] {
        for o in call.get(key).and_then(Value::as_array).into_iter().flatten() {
            snapshot.push(policy_core::api::to_yaml(o));
        }
    }
    std::fs::write(dir.path().join("snapshot.yaml"), snapshot.join("---\n")).unwrap();
    let observations = write_yaml(dir.path(), "observations.yaml", &observations_file(call));
    let output = Command::new(env!("CARGO_BIN_EXE_host-runner"))
        .args(["kratix", "--offline", "--snapshot"])
        .arg(dir.path().join("snapshot.yaml"))
        .arg("--observations")
        .arg(&observations)
        .env_clear()
        .env("KRATIX_WORKFLOW_TYPE", "resource")
        .env("KRATIX_WORKFLOW_ACTION", "configure")
        .env("KRATIX_OBJECT_KIND", "FoundryLicense")
        .env("KRATIX_INPUT_DIR", dir.path().join("input"))
        .env("KRATIX_OUTPUT_DIR", dir.path().join("output"))
        .env("KRATIX_METADATA_DIR", dir.path().join("metadata"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    let native: Value = serde_json::from_str(&policy_core::call(&case.operation, &corpus::call_bytes(case))).unwrap();
    if native["outcome"] == "failure" {
        if output.status.code() != Some(3) {
            failures.push(format!("{}: expected exit 3, got {:?}: {stderr}", case.name, output.status));
        }
        return;
    }
    if !output.status.success() {
        failures.push(format!("{}: exit {:?}: {stderr}", case.name, output.status));
        return;
    }
    let decision = &native["decision"];
    let files = decision["files"].as_array().unwrap();
    for f in files {
        let written =
            std::fs::read_to_string(dir.path().join("output").join(f["path"].as_str().unwrap())).unwrap_or_default();
        if written != f["content"].as_str().unwrap() {
            failures.push(format!("{}: {} differs from native", case.name, f["path"]));
        }
    }
    if std::fs::read_dir(dir.path().join("output")).unwrap().count() != files.len() {
        failures.push(format!("{}: the output holds other files than native decides", case.name));
    }
    let status = std::fs::read_to_string(dir.path().join("metadata/status.yaml")).unwrap_or_default();
    if status != decision["statusYaml"].as_str().unwrap() {
        failures.push(format!("{}: status.yaml differs from native", case.name));
    }
    let count = |key: &str| decision.get(key).and_then(Value::as_array).map_or(0, Vec::len);
    let recorded = |what: &str| stderr.lines().filter(|l| l.contains(what)).count();
    if recorded("would label FoundryInstance") != count("reconfigure") {
        failures.push(format!("{}: instances to reconfigure differ from native: {stderr}", case.name));
    }
    if recorded("would merge into the status of foundryinstances/") != count("routeStatuses") {
        failures.push(format!("{}: instance route states differ from native: {stderr}", case.name));
    }
}

/// Runs a catalog case through `host-runner catalog --output json`.
fn catalog_case_through_cli(case: &corpus::Case, failures: &mut Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_host-runner"));
    cmd.args(["catalog", "--output", "json"]);
    if case.call.get("catalog").is_some_and(Value::is_object) {
        cmd.arg("--catalog").arg(write_yaml(dir.path(), "catalog.yaml", &case.call["catalog"]));
    }
    json_matches_native(case, &cmd.output().unwrap(), failures);
}

/// A migration case through `host-runner migrate`: the objects in a file, the settings as flags, the report as
/// JSON.
fn migrate_case_through_cli(case: &corpus::Case, failures: &mut Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let objects = case.call["objects"].as_array().cloned().unwrap_or_default();
    let docs: Vec<String> = objects.iter().map(|o| serde_json::to_string(o).unwrap()).collect();
    std::fs::write(dir.path().join("objects.yaml"), docs.join("\n---\n")).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_host-runner"));
    cmd.arg("migrate").arg(dir.path().join("objects.yaml")).args(["--output", "json"]);
    for (key, flag) in [("nfsServer", "--nfs-server"), ("nfsBase", "--nfs-base")] {
        if let Some(value) = case.call.pointer(&format!("/settings/{key}")).and_then(Value::as_str) {
            cmd.args([flag, value]);
        }
    }
    json_matches_native(case, &cmd.output().unwrap(), failures);
}

/// A command that prints the decision as JSON: exit 3 where native refuses, else the same document.
fn json_matches_native(case: &corpus::Case, output: &std::process::Output, failures: &mut Vec<String>) {
    let native: Value = serde_json::from_str(&policy_core::call(&case.operation, &corpus::call_bytes(case))).unwrap();
    match native["outcome"].as_str() {
        Some("failure") => {
            if output.status.code() != Some(3) {
                failures.push(format!("{}: expected exit 3, got {:?}", case.name, output.status));
            }
        }
        _ => {
            let printed: Value = serde_json::from_slice(&output.stdout).unwrap_or_default();
            if printed != native["decision"] {
                failures.push(format!("{}: the CLI's JSON differs from native: {printed}", case.name));
            }
        }
    }
}

#[test]
fn corpus_through_the_cli_matches_native() {
    let bin = env!("CARGO_BIN_EXE_host-runner");
    let mut failures = Vec::new();
    let mut ran = 0;
    for case in corpus::load_cases().iter().filter(|c| !corpus::diverges(c, "cli")) {
        match case.operation.as_str() {
            "foundry/instance/configure" | "foundry/instance/delete" => {
                instance_case_through_kratix(case, &mut failures);
                ran += 1;
                continue;
            }
            "foundry/license/route" => {
                route_case_through_kratix(case, &mut failures);
                ran += 1;
                continue;
            }
            "foundry/catalog/list" => {
                catalog_case_through_cli(case, &mut failures);
                ran += 1;
                continue;
            }
            "foundry/platform/migrate" => {
                migrate_case_through_cli(case, &mut failures);
                ran += 1;
                continue;
            }
            _ => {}
        }
        let Some((objects, observations)) = preview_input(case) else {
            failures.push(format!("{}: cannot be given to the CLI; list it in DIVERGENCES.yaml", case.name));
            continue;
        };
        let dir = tempfile::tempdir().unwrap();
        // JSON documents are YAML documents.
        let docs: Vec<String> = objects.iter().map(|o| serde_json::to_string(o).unwrap()).collect();
        std::fs::write(dir.path().join("objects.yaml"), docs.join("\n---\n")).unwrap();
        std::fs::write(dir.path().join("observations.yaml"), serde_json::to_string(&observations).unwrap()).unwrap();
        let out_dir = dir.path().join("out");
        let output = Command::new(bin)
            .arg("preview")
            .arg(dir.path().join("objects.yaml"))
            .arg("--observations")
            .arg(dir.path().join("observations.yaml"))
            .args(["--output", "json", "--out"])
            .arg(&out_dir)
            .output()
            .unwrap();
        ran += 1;
        let stderr = String::from_utf8_lossy(&output.stderr);
        let native_call =
            json!({"objects": objects, "observations": case.call.get("observations"), "now": case.call.get("now")});
        let native = policy_core::api::platform_preview(&serde_json::from_value(native_call).unwrap());
        match (case.expect.outcome.as_str(), native) {
            ("failure", policy_core::Answer::Failure { errors }) => {
                if output.status.code() != Some(3) {
                    failures.push(format!("{}: expected exit 3, got {:?}: {stderr}", case.name, output.status));
                }
                for e in &errors {
                    if !stderr.contains(&format!("error[{}]: {}", e.code, e.message)) {
                        failures.push(format!("{}: stderr lacks `{}`: {stderr}", case.name, e.code));
                    }
                }
                if out_dir.exists() {
                    failures.push(format!("{}: a refused input still wrote output", case.name));
                }
            }
            ("success", policy_core::Answer::Success { decision }) => {
                if !output.status.success() {
                    failures.push(format!("{}: exit {:?}: {stderr}", case.name, output.status));
                    continue;
                }
                let expected = render::render(&decision, OutputFormat::Json);
                if String::from_utf8_lossy(&output.stdout) != expected {
                    failures.push(format!("{}: CLI JSON differs from native", case.name));
                }
                let licenses =
                    decision.licenses.iter().map(|d| ("foundrylicenses", &d.license, &d.files, &d.status_yaml));
                let instances =
                    decision.instances.iter().map(|d| ("foundryinstances", &d.instance, &d.files, &d.status_yaml));
                for (plural, object, files, status_yaml) in licenses.chain(instances) {
                    let base = out_dir.join(&object.namespace).join(plural).join(&object.name);
                    for file in files {
                        let written = std::fs::read_to_string(base.join("output").join(&file.path)).unwrap_or_default();
                        if written != file.content {
                            failures.push(format!("{}: {} of {object} differs from native", case.name, file.path));
                        }
                    }
                    let count = std::fs::read_dir(base.join("output")).map(|d| d.count()).unwrap_or(0);
                    if count != files.len() {
                        failures.push(format!(
                            "{}: {count} output files for {object}, expected {}",
                            case.name,
                            files.len()
                        ));
                    }
                    let status = std::fs::read_to_string(base.join("metadata/status.yaml")).unwrap_or_default();
                    if status != *status_yaml {
                        failures.push(format!("{}: status.yaml of {object} differs from native", case.name));
                    }
                }
            }
            (want, _) => failures.push(format!("{}: native preview outcome differs from expected {want}", case.name)),
        }
    }
    assert!(ran >= 25, "only {ran} cases ran through the CLI");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
