//! `host-runner monitor` as the sidecar runs it: Foundry's status endpoint (a real HTTP stand-in that answers,
//! is down, is slow, or answers garbage) and the Kubernetes API stand-in, asserting the exact status patches.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

mod support;

use serde_json::{Value, json};
use std::process::{Command, Output};
use std::time::{Duration, Instant};
use support::{FakeApi, FakeFoundry, Fault, Foundry, instance_object, refused_addr, status_body};

const STATUS_PATH: &str = "/apis/foundry.platform/v1alpha1/namespaces/tabletop/foundryinstances/alpha/status";

fn api_with(status: Value) -> FakeApi {
    let api = FakeApi::start();
    api.put(instance_object("alpha", "tabletop", "guild", status));
    api.put(instance_object("beta", "tabletop", "guild", json!({"connectedPlayers": 7})));
    api
}

/// Runs the monitor for `iterations` polls, the instance and namespace given as the downward API gives them.
fn monitor(api: &FakeApi, foundry: &str, iterations: u32, interval: &str) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = api.kubeconfig(dir.path());
    Command::new(env!("CARGO_BIN_EXE_host-runner"))
        .arg("monitor")
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .args(["--status-url", &format!("http://{foundry}/api/status")])
        .args(["--interval", interval, "--max-backoff", "2", "--probe-timeout", "1", "--api-timeout", "2"])
        .args(["--iterations", &iterations.to_string()])
        .env_clear()
        .env("FOUNDRY_INSTANCE", "alpha")
        .env("FOUNDRY_NAMESPACE", "tabletop")
        .output()
        .unwrap()
}

fn patches(api: &FakeApi) -> Vec<Value> {
    api.writes()
        .into_iter()
        .map(|r| {
            assert_eq!(r.method, "PATCH");
            assert_eq!(r.path, STATUS_PATH, "only its own instance's status");
            assert_eq!(r.headers["content-type"], "application/merge-patch+json");
            r.json()
        })
        .collect()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn players_are_written_into_the_instance_status_and_workflow_keys_are_kept() {
    let api = api_with(json!({"license": "guild", "routeState": "active", "message": "license: guild; route: active"}));
    let foundry = FakeFoundry::start(Foundry::Answer(
        200,
        r#"{"active":true,"version":"13.351","world":"lost-mine","system":"dnd5e","users":3,"uptime":12}"#.into(),
    ));
    let out = monitor(&api, &foundry.addr, 2, "1");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let reads: Vec<_> = api.requests().into_iter().filter(|r| r.method == "GET").collect();
    assert_eq!(reads.len(), 1, "the status is read once, then kept from the patch answers");
    assert_eq!(reads[0].path, STATUS_PATH);
    let patches = patches(&api);
    assert_eq!(patches.len(), 2);
    for p in &patches {
        let keys: Vec<&String> = p["status"].as_object().unwrap().keys().collect();
        for k in &keys {
            assert!(policy_core::api::monitor::OWNED_KEYS.contains(&k.as_str()), "{k} is not the monitor's");
        }
        assert_eq!(p.as_object().unwrap().len(), 1, "only status is patched: {p}");
    }
    let status = api.object("FoundryInstance", "tabletop", "alpha").unwrap()["status"].clone();
    assert_eq!(status["connectedPlayers"], 3);
    assert_eq!(status["world"], "lost-mine");
    assert_eq!(status["system"], "dnd5e");
    assert_eq!(status["foundryVersion"], "13.351");
    assert!(status["lastPlayerActivity"].is_string());
    assert_eq!(status["lastPlayerActivity"], status["lastCheckedAt"]);
    assert!(status.get("idleSince").is_none() && status.get("monitorError").is_none(), "{status}");
    assert_eq!(status["license"], "guild", "the instance workflow's keys are untouched");
    assert_eq!(status["routeState"], "active");
    assert_eq!(foundry.requests()[0].path, "/api/status");
    assert!(!foundry.requests()[0].headers.contains_key("authorization"), "no credentials are sent to Foundry");
    assert_eq!(api.object("FoundryInstance", "tabletop", "beta").unwrap()["status"]["connectedPlayers"], 7);
}

#[test]
fn nobody_connected_keeps_the_last_activity_and_the_idle_start() {
    let api = api_with(json!({
        "connectedPlayers": 0, "lastPlayerActivity": "2026-11-20T10:00:00Z", "idleSince": "2026-11-20T10:00:30Z",
        "lastCheckedAt": "2026-11-20T10:01:00Z",
    }));
    let foundry = FakeFoundry::start(Foundry::Answer(200, r#"{"active":false,"version":"13.351"}"#.into()));
    let out = monitor(&api, &foundry.addr, 1, "1");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let status = api.object("FoundryInstance", "tabletop", "alpha").unwrap()["status"].clone();
    assert_eq!(status["connectedPlayers"], 0);
    assert_eq!(status["lastPlayerActivity"], "2026-11-20T10:00:00Z");
    assert_eq!(status["idleSince"], "2026-11-20T10:00:30Z");
    assert_ne!(status["lastCheckedAt"], "2026-11-20T10:01:00Z");
}

#[test]
fn foundry_down_slow_or_garbled_is_reported_never_zero_and_backs_off() {
    let slow = FakeFoundry::start(Foundry::Slow(Duration::from_secs(3), r#"{"active":true,"users":0}"#.into()));
    let garbage = FakeFoundry::start(Foundry::Answer(200, "<html>502 Bad Gateway</html>".into()));
    let broken = FakeFoundry::start(Foundry::Answer(200, r#"{"active":true,"users":null}"#.into()));
    let down = refused_addr();
    for (what, addr, needle) in [
        ("down", down.as_str(), "refused"),
        ("slow", slow.addr.as_str(), "timed out"),
        ("garbage", garbage.addr.as_str(), "not Foundry's status JSON"),
        ("users null", broken.addr.as_str(), "not a count"),
    ] {
        let api = api_with(json!({"connectedPlayers": 0, "idleSince": "2026-11-20T10:00:30Z", "world": "lost-mine"}));
        let started = Instant::now();
        let out = monitor(&api, addr, 2, "1");
        let log = text(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{what}: the monitor does not crash: {log}");
        let status = api.object("FoundryInstance", "tabletop", "alpha").unwrap()["status"].clone();
        assert!(
            status.get("connectedPlayers").is_none(),
            "{what}: an unknown count is not written as a number: {status}"
        );
        assert!(status.get("idleSince").is_none(), "{what}: nobody may claim it idle: {status}");
        let error = status["monitorError"].as_str().unwrap_or_default();
        assert!(error.contains(needle), "{what}: {error}");
        assert_eq!(status["world"], "lost-mine", "{what}: the last known world stays");
        assert!(log.contains("next poll in 2s"), "{what}: backs off: {log}");
        assert_eq!(patches(&api).len(), 2, "{what}");
        assert!(started.elapsed() < Duration::from_secs(12), "{what}: bounded by the probe timeout");
    }
}

#[test]
fn recovery_clears_the_error() {
    let api = api_with(json!({"monitorError": "timed out after 5s", "connectedPlayers": null}));
    let foundry = FakeFoundry::start(Foundry::Answer(200, r#"{"active":true,"version":"13.351","users":1}"#.into()));
    let out = monitor(&api, &foundry.addr, 1, "1");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let p = &patches(&api)[0];
    assert_eq!(p["status"]["monitorError"], Value::Null, "the patch deletes the error");
    let status = api.object("FoundryInstance", "tabletop", "alpha").unwrap()["status"].clone();
    assert!(status.get("monitorError").is_none());
    assert_eq!(status["connectedPlayers"], 1);
}

#[test]
fn api_failures_are_logged_and_the_sidecar_keeps_running() {
    let api = api_with(json!({}));
    api.fault("PATCH", STATUS_PATH, Fault::Status(403, status_body(403, "Forbidden", "cannot patch")), None);
    let foundry = FakeFoundry::start(Foundry::Answer(200, r#"{"active":true,"users":2}"#.into()));
    let out = monitor(&api, &foundry.addr, 2, "1");
    let log = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{log}");
    assert_eq!(log.matches("writing the status failed").count(), 2, "{log}");
    assert!(log.contains("get and patch"), "names the missing permission: {log}");
    assert_eq!(foundry.requests().len(), 2, "it kept polling");
}

#[test]
fn an_interval_above_the_backoff_cap_is_a_usage_error() {
    let api = api_with(json!({}));
    let foundry = FakeFoundry::start(Foundry::Answer(200, r#"{"active":false}"#.into()));
    let out = monitor(&api, &foundry.addr, 1, "10");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("backoff cap"), "{}", text(&out.stderr));
}

#[test]
fn the_sidecar_container_runs_as_the_workload_declares_it() {
    let api = api_with(json!({}));
    let foundry = FakeFoundry::start(Foundry::Answer(200, r#"{"active":true,"version":"13.351","users":2}"#.into()));
    let sidecar = policy_core::api::monitor::monitor_sidecar("alpha", "tabletop", "foundry-kratix/host-runner:0.1.0");
    let mut args: Vec<String> =
        sidecar.container["args"].as_array().unwrap().iter().map(|a| a.as_str().unwrap().to_owned()).collect();
    // The same arguments, except that Foundry is the stand-in rather than the pod's own port.
    let at = args.iter().position(|a| a == "--status-url").unwrap();
    args[at + 1] = format!("http://{}/api/status", foundry.addr);
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_host-runner"))
        .args(&args)
        .arg("--kubeconfig")
        .arg(api.kubeconfig(dir.path()))
        .args(["--iterations", "1"])
        .env_clear()
        .env("FOUNDRY_INSTANCE", "alpha")
        .env("FOUNDRY_NAMESPACE", "tabletop")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(api.object("FoundryInstance", "tabletop", "alpha").unwrap()["status"]["connectedPlayers"], 2);
    let env: Vec<&str> =
        sidecar.container["env"].as_array().unwrap().iter().map(|e| e["name"].as_str().unwrap()).collect();
    assert_eq!(env, ["FOUNDRY_INSTANCE", "FOUNDRY_NAMESPACE"], "the variables the command reads");
}
