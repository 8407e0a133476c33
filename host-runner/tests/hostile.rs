//! Hostile inputs, handed to `host-runner preview` and to the policy module as users (or attackers) can: a YAML
//! alias bomb, a 50 MiB input, 100 000 instances, deep nesting, invalid UTF-8, names of 10 000 characters,
//! duplicates, and numbers out of range. Each must end in a clear error with its stable code and exit code, within
//! generous bounds on time and memory, and never in a panic or an abort.
//!
//! The bounds catch hangs and blow-ups, not slowness: the time bound is many times what any case takes, and each
//! run of the binary gets a data limit (`RLIMIT_DATA`: heap and the module's linear memory) of 256 MiB, what a
//! Kratix pipeline container gets by default, so a case that needed more would die instead of exiting with its
//! code. Other tests running at the same time do not disturb either bound.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use host_runner::engine::{EngineError, Limits, PolicyEngine};
use serde_json::{Value, json};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Far above what any case takes (a few seconds at most in a debug build): only a hang breaks it.
const TIME_BOUND: Duration = Duration::from_secs(60);
/// The default memory limit of a Kratix pipeline container.
const DATA_LIMIT: libc::rlim_t = 256 << 20;

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    wall: Duration,
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// Runs `host-runner` with `args` under the data limit, measuring wall time.
fn host_runner(args: &[&Path]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_host-runner"));
    cmd.current_dir(root()).args(args).stdin(Stdio::null());
    // SAFETY: runs in the child between fork and exec and calls only `setrlimit`, which is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            let limit = libc::rlimit { rlim_cur: DATA_LIMIT, rlim_max: DATA_LIMIT };
            if libc::setrlimit(libc::RLIMIT_DATA, &limit) == 0 { Ok(()) } else { Err(std::io::Error::last_os_error()) }
        });
    }
    let started = Instant::now();
    let output = cmd.output().unwrap();
    Run {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        wall: started.elapsed(),
    }
}

fn preview(paths: &[&Path]) -> Run {
    let mut args: Vec<&Path> = vec![Path::new("preview")];
    args.extend_from_slice(paths);
    host_runner(&args)
}

/// The run ended with exit `exit` (so within the data limit: past it, the process aborts) and a report that starts
/// with `error[<code>]`, in time, without a panic, and without echoing the hostile input back at length.
fn assert_refused(run: &Run, exit: i32, code: &str) {
    assert_eq!(run.code, Some(exit), "expected exit {exit} ({code}); stderr:\n{:.2000}", run.stderr);
    assert!(run.stderr.starts_with(&format!("error[{code}]")), "expected error[{code}], got:\n{:.2000}", run.stderr);
    assert!(!run.stderr.contains("panicked"), "{:.2000}", run.stderr);
    assert!(run.stdout.is_empty(), "a refused input printed a decision");
    assert!(run.stderr.lines().all(|l| l.len() < 1000), "the report echoes the input at length:\n{:.3000}", run.stderr);
    assert!(run.wall < TIME_BOUND, "took {:?}", run.wall);
}

fn write(dir: &Path, name: &str, content: impl AsRef<[u8]>) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, content).unwrap();
    path
}

const LICENSE: &str = "apiVersion: foundry.platform/v1alpha1\nkind: FoundryLicense\nmetadata: {name: guild, namespace: games}\n\
spec:\n  licenseSecretRef: {name: s, key: k}\n  activeInstanceName: alpha\n  gateway: {baseDomain: play.example.org}\n";

fn instance_json(name: &str) -> Value {
    json!({
        "apiVersion": "foundry.platform/v1alpha1",
        "kind": "FoundryInstance",
        "metadata": {"name": name, "namespace": "games"},
        "spec": {"licenseRef": {"name": "guild"}},
    })
}

fn engine() -> &'static PolicyEngine {
    static ENGINE: OnceLock<PolicyEngine> = OnceLock::new();
    ENGINE.get_or_init(|| PolicyEngine::embedded(Limits::default()).expect("the embedded module loads"))
}

/// Evaluates a route call in the module; returns the answer and the linear memory it used.
fn route_in_wasm(call: &[u8]) -> (Value, usize) {
    let (answer, usage) = engine().evaluate_metered("foundry/license/route", call).expect("the module answers");
    assert_eq!(
        String::from_utf8_lossy(&answer),
        policy_core::call("foundry/license/route", call),
        "wasm and native differ"
    );
    (serde_json::from_slice(&answer).unwrap(), usage.memory_bytes)
}

fn error_codes(answer: &Value) -> Vec<String> {
    assert_eq!(answer["outcome"], "failure", "{answer:.500}");
    answer["errors"].as_array().unwrap().iter().map(|e| e["code"].as_str().unwrap().to_owned()).collect()
}

fn valid_call(instances: Vec<Value>) -> Value {
    json!({
        "license": {
            "apiVersion": "foundry.platform/v1alpha1", "kind": "FoundryLicense",
            "metadata": {"name": "guild", "namespace": "games"},
            "spec": {"licenseSecretRef": {"name": "s", "key": "k"}, "gateway": {"baseDomain": "play.example.org"}},
        },
        "instances": instances,
        "observations": {"players": []},
        "now": "2026-11-22T18:30:00Z",
    })
}

#[test]
fn yaml_alias_bomb_is_refused_by_the_reader_budget() {
    let dir = tempfile::tempdir().unwrap();
    // Nine levels of ten references each: 10^9 strings if expanded.
    let mut bomb = String::from("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: lol}\ndata:\n  a0: &a0 [\"lol\"]\n");
    for level in 1..=9 {
        let refs = vec![format!("*a{}", level - 1); 10].join(", ");
        bomb.push_str(&format!("  a{level}: &a{level} [{refs}]\n"));
    }
    let file = write(dir.path(), "bomb.yaml", bomb);
    assert_refused(&preview(&[&file]), 3, "InputInvalidYaml");
}

#[test]
fn input_of_50_mib_is_refused_before_it_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let mut big = String::from(LICENSE);
    let line = format!("# {}\n", "x".repeat(1022));
    while big.len() < 50 << 20 {
        big.push_str(&line);
    }
    let file = write(dir.path(), "big.yaml", &big);
    let run = preview(&[&file]);
    assert_refused(&run, 3, "InputTooLarge");
    assert!(run.stderr.contains("MiB"), "{}", run.stderr);

    // The same size split over files passes each file's limit but not the total.
    let parts: Vec<PathBuf> = (0..4).map(|i| write(dir.path(), &format!("part{i}.yaml"), &big[..13 << 20])).collect();
    let refs: Vec<&Path> = parts.iter().map(PathBuf::as_path).collect();
    assert_refused(&preview(&refs), 3, "InputTooLarge");

    // The module refuses a call over its input limit before running anything.
    let call = vec![b' '; 50 << 20];
    let err = engine().evaluate("foundry/license/route", &call).unwrap_err();
    assert!(matches!(err, EngineError::InputTooLarge { .. }), "{err:?}");
    assert_eq!(err.code(), "PolicyInputTooLarge");
    // The call layer holds its own limit in every host.
    let mut huge = vec![b' '; policy_core::api::MAX_CALL_BYTES + 1];
    huge[0] = b'{';
    let answer: Value = serde_json::from_str(&policy_core::call("foundry/license/route", &huge)).unwrap();
    assert_eq!(error_codes(&answer), ["InvalidJson"]);
}

#[test]
fn hundred_thousand_instances_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "license.yaml", LICENSE);
    // Ten `kubectl get -o yaml` lists of 10 000 instances each: every file is within its limits.
    for part in 0..10 {
        let items: Vec<Value> = (0..10_000).map(|i| instance_json(&format!("i{part}-{i:05}"))).collect();
        let list = json!({"apiVersion": "v1", "kind": "List", "items": items});
        write(dir.path(), &format!("instances-{part}.yaml"), serde_json::to_vec(&list).unwrap());
    }
    let run = preview(&[dir.path()]);
    assert_refused(&run, 3, "InputTooManyObjects");

    // One list of 100 000 passes the size limit but not the YAML reader's node budget.
    let items: Vec<Value> = (0..100_000).map(|i| instance_json(&format!("i{i:06}"))).collect();
    let one = write(dir.path(), "one.json", serde_json::to_vec(&json!({"kind": "List", "items": items})).unwrap());
    assert_refused(&preview(&[&one]), 3, "InputInvalidYaml");

    // The module refuses the same call with the instance limit, not by running out of memory.
    let items: Vec<Value> = (0..100_000).map(|i| instance_json(&format!("i{i:06}"))).collect();
    let call = serde_json::to_vec(&valid_call(items)).unwrap();
    let (answer, memory) = route_in_wasm(&call);
    assert_eq!(error_codes(&answer), ["TooManyInstances"]);
    assert!(answer["errors"][0]["message"].as_str().unwrap().starts_with("100000 instances were given"));
    assert!(memory < 128 << 20, "the refusal used {} MiB of linear memory", memory >> 20);
}

#[test]
fn deep_nesting_is_refused_without_exhausting_the_stack() {
    let dir = tempfile::tempdir().unwrap();
    for (name, doc) in [
        (
            "flow.yaml",
            format!(
                "kind: ConfigMap\nmetadata: {{name: deep}}\ndata: {}{}\n",
                "[".repeat(100_000),
                "]".repeat(100_000)
            ),
        ),
        ("block.yaml", {
            let mut doc = String::from("kind: ConfigMap\nmetadata: {name: deep}\ndata:\n");
            for depth in 0..2_000 {
                doc.push_str(&format!("{}k:\n", " ".repeat(depth + 2)));
            }
            doc
        }),
    ] {
        let file = write(dir.path(), name, doc);
        assert_refused(&preview(&[&file]), 3, "InputInvalidYaml");
    }

    // Deep JSON in the call, at the top and inside an object the policy reads.
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let (answer, _) = route_in_wasm(deep.as_bytes());
    assert_eq!(error_codes(&answer), ["InvalidJson"]);
    let mut call = valid_call(vec![]).to_string();
    call = call.replacen("\"metadata\":{", &format!("\"metadata\":{{\"labels\":{deep},"), 1);
    let (answer, _) = route_in_wasm(call.as_bytes());
    assert_eq!(error_codes(&answer), ["InvalidJson"]);
    assert!(answer["errors"][0]["message"].as_str().unwrap().contains("recursion limit"), "{answer}");
}

#[test]
fn invalid_utf8_is_refused_with_its_offset() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = LICENSE.as_bytes().to_vec();
    bytes.extend_from_slice(b"# \xc3\x28 broken\n");
    let file = write(dir.path(), "license.yaml", &bytes);
    let run = preview(&[&file]);
    assert_refused(&run, 3, "InputNotUtf8");
    assert!(run.stderr.contains(&format!("offset {}", LICENSE.len() + 2)), "{}", run.stderr);

    let good = write(dir.path(), "good.yaml", LICENSE);
    let observations =
        write(dir.path(), "observations.yaml", b"now: \"2026-11-22T18:30:00Z\"\nplayers: [{instance: \xff}]\n");
    let run = host_runner(&[Path::new("preview"), &good, Path::new("--observations"), &observations]);
    assert_refused(&run, 3, "InputNotUtf8");

    // In the module: invalid UTF-8 inside a JSON string.
    let mut call = serde_json::to_vec(&valid_call(vec![instance_json("alpha")])).unwrap();
    let at = call.windows(5).position(|w| w == b"alpha").unwrap();
    call[at + 2] = 0xff;
    let (answer, _) = route_in_wasm(&call);
    assert_eq!(error_codes(&answer), ["InvalidJson"]);
}

#[test]
fn names_of_ten_thousand_characters_are_refused_and_not_echoed() {
    let dir = tempfile::tempdir().unwrap();
    let long = "a".repeat(10_000);
    write(dir.path(), "license.yaml", LICENSE);
    write(dir.path(), "instance.yaml", serde_json::to_vec(&instance_json(&long)).unwrap());
    let run = preview(&[dir.path()]);
    assert_refused(&run, 3, "InvalidInstanceName");
    assert!(run.stderr.contains("the name is 10000 characters long"), "{}", run.stderr);

    let long_license = LICENSE.replace("name: guild", &format!("name: {long}"));
    let file = write(dir.path(), "long-license.yaml", long_license);
    assert_refused(&preview(&[&file]), 3, "InvalidField");

    let long_namespace = LICENSE.replace("namespace: games", &format!("namespace: {long}"));
    let file = write(dir.path(), "long-namespace.yaml", long_namespace);
    let run = preview(&[&file]);
    assert_refused(&run, 3, "InvalidField");
    assert!(run.stderr.contains("metadata.namespace"), "{}", run.stderr);

    let mut call = valid_call(vec![instance_json(&long)]);
    call["license"]["spec"]["activeInstanceName"] = json!(long);
    let (answer, _) = route_in_wasm(&serde_json::to_vec(&call).unwrap());
    assert_eq!(error_codes(&answer), ["InvalidInstanceName"]);
    assert!(answer.to_string().len() < 4_000, "the answer echoes the names: {answer:.300}");
}

#[test]
fn duplicates_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "license.yaml", LICENSE);
    let twice = [instance_json("alpha"), instance_json("alpha")].map(|v| v.to_string()).join("\n---\n");
    write(dir.path(), "instances.yaml", twice);
    assert_refused(&preview(&[dir.path()]), 3, "DuplicateObject");

    let licenses = write(dir.path(), "licenses.yaml", format!("{LICENSE}---\n{LICENSE}"));
    assert_refused(&preview(&[&licenses]), 3, "DuplicateObject");

    let keys = write(
        dir.path(),
        "keys.yaml",
        LICENSE.replace("kind: FoundryLicense\n", "kind: FoundryLicense\nkind: Other\n"),
    );
    assert_refused(&preview(&[&keys]), 3, "InputInvalidYaml");

    // In the module: an object given twice, and a key given twice in the call.
    let (answer, _) =
        route_in_wasm(&serde_json::to_vec(&valid_call(vec![instance_json("a"), instance_json("a")])).unwrap());
    assert_eq!(error_codes(&answer), ["DuplicateObject"]);
    let call = valid_call(vec![]).to_string().replacen('{', "{\"instances\":[],", 1);
    let (answer, _) = route_in_wasm(call.as_bytes());
    assert_eq!(error_codes(&answer), ["InvalidJson"]);
    assert!(answer["errors"][0]["message"].as_str().unwrap().contains("duplicate field"), "{answer}");
}

#[test]
fn numbers_out_of_range_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let port = write(dir.path(), "port.yaml", LICENSE.replace("  gateway:", "  standby: {port: 70000}\n  gateway:"));
    let run = preview(&[&port]);
    assert_refused(&run, 3, "InvalidField");
    assert!(run.stderr.contains("field `spec.standby.port`"), "{}", run.stderr);

    let license = write(dir.path(), "license.yaml", LICENSE);
    for (name, players, code) in [
        ("huge.yaml", "[{instance: alpha, connected: 1e400}]", "InputInvalidYaml"),
        ("overflow.yaml", "[{instance: alpha, connected: 4294967296}]", "InvalidObservation"),
        ("negative.yaml", "[{instance: alpha, connected: -3}]", "InvalidObservation"),
    ] {
        let observations = write(dir.path(), name, format!("now: \"2026-11-22T18:30:00Z\"\nplayers: {players}\n"));
        let run = host_runner(&[Path::new("preview"), &license, Path::new("--observations"), &observations]);
        assert_refused(&run, 3, code);
        assert!(
            run.stderr.contains("1e400") || run.stderr.contains("observations.players[0]"),
            "{name}: {}",
            run.stderr
        );
    }

    // In the module: a number JSON cannot hold, and counts and ports past their types.
    let call = valid_call(vec![]).to_string().replace(
        "\"observations\":{\"players\":[]",
        "\"observations\":{\"players\":[{\"instance\":\"a\",\"connected\":1e400}]",
    );
    let (answer, _) = route_in_wasm(call.as_bytes());
    assert_eq!(error_codes(&answer), ["InvalidJson"]);
    let mut call = valid_call(vec![]);
    call["observations"]["players"] = json!([{"instance": "a", "connected": 4_294_967_296u64}]);
    let (answer, _) = route_in_wasm(&serde_json::to_vec(&call).unwrap());
    assert_eq!(error_codes(&answer), ["InvalidObservation"]);
    call["license"]["spec"]["standby"] = json!({"port": -1});
    let (answer, _) = route_in_wasm(&serde_json::to_vec(&call).unwrap());
    assert_eq!(error_codes(&answer), ["InvalidField"]);
    assert_eq!(answer["errors"][0]["path"], "spec.standby.port");
}
