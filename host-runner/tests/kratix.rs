//! `host-runner kratix` run as a Kratix pipeline container would run it: the Kratix environment variables, the
//! three directories, a Kubernetes API (an in-process server answering the real paths with real JSON) and a
//! Foundry status endpoint (a real HTTP stand-in). Each test asserts the files written and the exact requests.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

mod support;

use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;
use support::{FakeApi, FakeFoundry, Fault, Foundry, refused_addr, status_body};

const NOW: &str = "2026-11-22T18:30:00Z";

fn license(spec: Value, status: Value) -> Value {
    let mut full = json!({
        "licenseSecretRef": {"name": "foundry-license", "key": "license-key"},
        "gateway": {"baseDomain": "dnd.example.com", "parentRef": {"name": "gw", "namespace": "gateway-system"}},
    });
    support::merge(&mut full, &spec);
    json!({
        "apiVersion": "foundry.platform/v1alpha1", "kind": "FoundryLicense",
        "metadata": {"name": "guild", "namespace": "tabletop", "uid": "1234", "generation": 2},
        "spec": full, "status": status,
    })
}

/// An instance whose workflow configured its workload (a `Ready` condition), as in a running platform.
fn instance(name: &str, license: &str) -> Value {
    json!({
        "apiVersion": "foundry.platform/v1alpha1", "kind": "FoundryInstance",
        "metadata": {"name": name, "namespace": "tabletop", "uid": format!("uid-{name}")},
        "spec": {"licenseRef": {"name": license}},
        // Configured against the license's current spec (generation 2).
        "status": {"licenseGeneration": 2, "conditions": [{"type": "Ready", "status": "True", "reason": "Configured"}]},
    })
}

/// The directories of one pipeline pod.
struct Pod {
    dir: tempfile::TempDir,
}

impl Pod {
    fn new(object: &Value) -> Self {
        let dir = tempfile::tempdir().unwrap();
        for d in ["input", "output", "metadata"] {
            std::fs::create_dir_all(dir.path().join(d)).unwrap();
        }
        // Kratix's reader writes the live object as YAML.
        std::fs::write(dir.path().join("input/object.yaml"), policy_core::api::to_yaml(object)).unwrap();
        Pod { dir }
    }
    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }
    fn output_files(&self) -> Vec<String> {
        let mut files: Vec<String> = std::fs::read_dir(self.path("output"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        files.sort();
        files
    }
    fn status(&self) -> Option<Value> {
        let text = std::fs::read_to_string(self.path("metadata/status.yaml")).ok()?;
        Some(serde_saphyr::from_str(&text).unwrap())
    }
}

fn kratix_env(kind: &str, action: &str, name: &str) -> Vec<(String, String)> {
    let plural = if kind == "FoundryLicense" { "foundrylicenses" } else { "foundryinstances" };
    [
        ("KRATIX_WORKFLOW_TYPE", "resource"),
        ("KRATIX_WORKFLOW_ACTION", action),
        ("KRATIX_OBJECT_KIND", kind),
        ("KRATIX_OBJECT_GROUP", "foundry.platform"),
        ("KRATIX_OBJECT_VERSION", "v1alpha1"),
        ("KRATIX_OBJECT_NAME", name),
        ("KRATIX_OBJECT_NAMESPACE", "tabletop"),
        ("KRATIX_CRD_PLURAL", plural),
        ("KRATIX_PROMISE_NAME", if kind == "FoundryLicense" { "foundry-license" } else { "foundry-instance" }),
        ("KRATIX_PIPELINE_NAME", "pipeline"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

/// Runs `host-runner kratix` like the pipeline container: env vars, the three directories (given by env, as the
/// SDKs allow), and `extra` flags.
fn run(pod: &Pod, env: &[(String, String)], extra: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_host-runner"));
    cmd.arg("kratix")
        .args(extra)
        .env_clear()
        .env("KRATIX_INPUT_DIR", pod.path("input"))
        .env("KRATIX_OUTPUT_DIR", pod.path("output"))
        .env("KRATIX_METADATA_DIR", pod.path("metadata"));
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn live_args<'a>(kubeconfig: &'a Path, observations: &'a Path, foundry: &'a str) -> Vec<&'a str> {
    vec![
        "--kubeconfig",
        kubeconfig.to_str().unwrap(),
        "--observations",
        observations.to_str().unwrap(),
        "--api-timeout",
        "1",
        "--probe-timeout",
        "1",
        "--connect-to",
        foundry,
    ]
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A cluster with license `guild` (active `alpha`, requested `beta`) and its instances.
fn cluster(spec: Value) -> (FakeApi, Value) {
    let api = FakeApi::start();
    let lic = license(spec, json!({"activeInstance": "alpha"}));
    api.put(lic.clone());
    for (name, owner) in [("alpha", "guild"), ("beta", "guild"), ("gamma", "guild"), ("stranger", "other-license")] {
        api.put(instance(name, owner));
    }
    (api, lic)
}

fn observations_file(pod: &Pod, body: &str) -> PathBuf {
    let path = pod.path("observations.yaml");
    std::fs::write(&path, body).unwrap();
    path
}

#[test]
fn license_workflow_lists_instances_and_writes_routes_and_status() {
    let (api, lic) = cluster(json!({"activeInstanceName": "beta", "switchMode": "force"}));
    let pod = Pod::new(&lic);
    let kubeconfig = api.kubeconfig(pod.dir.path());
    let obs = observations_file(&pod, &format!("now: \"{NOW}\"\n"));
    let foundry = FakeFoundry::start(Foundry::Answer(200, r#"{"active":true,"users":4}"#.into()));
    let out =
        run(&pod, &kratix_env("FoundryLicense", "configure", "guild"), &live_args(&kubeconfig, &obs, &foundry.addr));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));

    let requests = api.requests();
    let seen: Vec<(&str, &str)> = requests.iter().map(|r| (r.method.as_str(), r.path.as_str())).collect();
    assert_eq!(
        seen,
        [
            ("GET", "/apis/foundry.platform/v1alpha1/namespaces/tabletop/foundryinstances"),
            // Every license, for hostnames an older one already publishes.
            ("GET", "/apis/foundry.platform/v1alpha1/foundrylicenses"),
            // Each instance's status learns its route state (none had one yet).
            ("PATCH", "/apis/foundry.platform/v1alpha1/namespaces/tabletop/foundryinstances/alpha/status"),
            ("PATCH", "/apis/foundry.platform/v1alpha1/namespaces/tabletop/foundryinstances/beta/status"),
            ("PATCH", "/apis/foundry.platform/v1alpha1/namespaces/tabletop/foundryinstances/gamma/status"),
        ],
        "{requests:#?}"
    );
    assert!(requests[0].query.contains("limit=500"), "{}", requests[0].query);
    assert_eq!(requests[3].json(), json!({"status": {"isActive": true, "routeState": "active"}}));
    assert_eq!(requests[2].json(), json!({"status": {"isActive": false, "routeState": "standby"}}));
    // A forced switch still measures what it drops, once, so the owner is told.
    assert_eq!(foundry.requests().len(), 1, "one probe");

    assert_eq!(
        pod.output_files(),
        ["httproute-alpha.yaml", "httproute-beta.yaml", "httproute-gamma.yaml", "referencegrant-standby.yaml"]
    );
    let route: Value =
        serde_saphyr::from_str(&std::fs::read_to_string(pod.path("output/httproute-beta.yaml")).unwrap()).unwrap();
    assert_eq!(route["spec"]["rules"][0]["backendRefs"][0], json!({"name": "foundry-beta", "port": 80}));
    let status = pod.status().unwrap();
    assert_eq!(status["activeInstance"], "beta");
    assert_eq!(status["warnings"][0]["code"], "SwitchForcedPlayersConnected");
    assert_eq!(status["inputErrors"], json!([]));
    assert!(status.get("kratix").is_none());
    assert!(text(&out.stdout).contains("FoundryLicense tabletop/guild: active beta, requested beta; wrote 4 files"));
}

#[test]
fn block_mode_probes_the_current_instance_once_through_its_service() {
    let (api, lic) = cluster(json!({"activeInstanceName": "beta"}));
    let pod = Pod::new(&lic);
    let kubeconfig = api.kubeconfig(pod.dir.path());
    let obs = observations_file(&pod, &format!("now: \"{NOW}\"\n"));
    let foundry =
        FakeFoundry::start(Foundry::Answer(200, r#"{"active":true,"version":"13.351","world":"w","users":3}"#.into()));
    let out =
        run(&pod, &kratix_env("FoundryLicense", "configure", "guild"), &live_args(&kubeconfig, &obs, &foundry.addr));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let probes = foundry.requests();
    assert_eq!(probes.len(), 1, "one probe per run");
    assert_eq!(probes[0].method, "GET");
    assert_eq!(probes[0].path, "/api/status");
    assert_eq!(
        probes[0].headers["host"], "foundry-alpha.tabletop.svc:80",
        "the cluster Service, never the public host"
    );
    assert!(!probes[0].headers.contains_key("authorization"), "no credentials are sent");
    let status = pod.status().unwrap();
    assert_eq!(status["activeInstance"], "alpha");
    assert_eq!(status["pendingSince"], NOW);
    assert_eq!(status["warnings"][0]["code"], "SwitchBlockedPlayersConnected");
    assert!(text(&out.stdout).contains("3 connected"), "{}", text(&out.stdout));
}

/// Runs the block-mode switch against a Foundry stand-in and returns the resulting status.
fn switch_with_foundry(foundry_addr: &str) -> (Output, Option<Value>) {
    let (api, lic) = cluster(json!({"activeInstanceName": "beta"}));
    let pod = Pod::new(&lic);
    let kubeconfig = api.kubeconfig(pod.dir.path());
    let obs = observations_file(&pod, &format!("now: \"{NOW}\"\n"));
    let out =
        run(&pod, &kratix_env("FoundryLicense", "configure", "guild"), &live_args(&kubeconfig, &obs, foundry_addr));
    (out, pod.status())
}

#[test]
fn a_setup_screen_means_no_players_and_the_switch_happens() {
    let foundry = FakeFoundry::start(Foundry::Answer(200, r#"{"active":false,"version":"14.369"}"#.into()));
    let (out, status) = switch_with_foundry(&foundry.addr);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(status.unwrap()["activeInstance"], "beta");
}

#[test]
fn foundry_faults_mean_an_unknown_count_and_block_without_crashing() {
    let cases: Vec<(&str, String)> = vec![
        ("users: null", FakeFoundry::start(Foundry::Answer(200, r#"{"active":true,"users":null}"#.into())).addr),
        ("HTML", FakeFoundry::start(Foundry::Answer(200, "<html><body>standby</body></html>".into())).addr),
        ("HTTP 500", FakeFoundry::start(Foundry::Answer(500, "boom".into())).addr),
        ("timeout", FakeFoundry::start(Foundry::Slow(Duration::from_secs(4), r#"{"active":false}"#.into())).addr),
        ("refused", refused_addr()),
    ];
    for (what, addr) in cases {
        let started = std::time::Instant::now();
        let (out, status) = switch_with_foundry(&addr);
        assert_eq!(out.status.code(), Some(0), "{what}: {}", text(&out.stderr));
        let status = status.unwrap();
        assert_eq!(status["activeInstance"], "alpha", "{what}: the switch is held");
        assert_eq!(status["warnings"][0]["code"], "SwitchBlockedPlayerCountUnknown", "{what}");
        assert!(started.elapsed() < Duration::from_secs(3), "{what}: the probe timeout bounds the run");
    }
}

#[test]
fn instance_configure_reads_its_license_and_asks_it_to_reroute() {
    let (api, _) = cluster(json!({"activeInstanceName": "alpha"}));
    let inst = instance("delta", "guild");
    api.put(inst.clone());
    let pod = Pod::new(&inst);
    let kubeconfig = api.kubeconfig(pod.dir.path());
    let obs = observations_file(&pod, &format!("now: \"{NOW}\"\n"));
    let out =
        run(&pod, &kratix_env("FoundryInstance", "configure", "delta"), &live_args(&kubeconfig, &obs, "127.0.0.1:1"));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let requests = api.requests();
    let calls: Vec<(&str, &str)> = requests.iter().map(|r| (r.method.as_str(), r.path.as_str())).collect();
    assert_eq!(
        calls,
        [
            ("GET", "/apis/foundry.platform/v1alpha1/namespaces/tabletop/foundrylicenses/guild"),
            ("GET", "/apis/foundry.platform/v1alpha1/namespaces/tabletop/foundryinstances"),
            // The running workload, whose data place the new spec must keep (none yet: 404).
            ("GET", "/apis/apps/v1/namespaces/tabletop/deployments/foundry-delta"),
            ("PATCH", "/apis/foundry.platform/v1alpha1/namespaces/tabletop/foundrylicenses/guild"),
        ]
    );
    assert_eq!(requests[3].headers["content-type"], "application/merge-patch+json");
    assert_eq!(requests[3].json(), json!({"metadata": {"labels": {"kratix.io/manual-reconciliation": "true"}}}));
    assert_eq!(
        pod.output_files(),
        [
            "deployment.yaml",
            "monitor-role.yaml",
            "monitor-rolebinding.yaml",
            "monitor-serviceaccount.yaml",
            "pvc.yaml",
            "service.yaml"
        ]
    );
    let status = pod.status().unwrap();
    assert_eq!(status["license"], "guild");
    assert_eq!(status["resolvedVersion"], "14.369");
    assert!(text(&out.stdout).contains("asked FoundryLicense tabletop/guild to re-route"));
}

#[test]
fn instance_delete_reroutes_the_license_and_leaves_the_output_alone() {
    let (api, _) = cluster(json!({"activeInstanceName": "beta"}));
    let pod = Pod::new(&instance("beta", "guild"));
    std::fs::write(pod.path("output/untouched.yaml"), "kept").unwrap();
    let kubeconfig = api.kubeconfig(pod.dir.path());
    let obs = observations_file(&pod, &format!("now: \"{NOW}\"\n"));
    let out = run(&pod, &kratix_env("FoundryInstance", "delete", "beta"), &live_args(&kubeconfig, &obs, "127.0.0.1:1"));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let patches: Vec<_> = api.requests().into_iter().filter(|r| r.method == "PATCH").collect();
    assert_eq!(patches.len(), 1);
    assert_eq!(patches[0].json()["metadata"]["labels"]["kratix.io/manual-reconciliation"], "true");
    assert_eq!(pod.output_files(), ["untouched.yaml"]);
    assert!(pod.status().is_some());
}

#[test]
fn a_missing_license_is_a_warning_and_nothing_is_patched() {
    let api = FakeApi::start();
    let inst = instance("alpha", "nowhere");
    let pod = Pod::new(&inst);
    let kubeconfig = api.kubeconfig(pod.dir.path());
    let obs = observations_file(&pod, &format!("now: \"{NOW}\"\n"));
    let out =
        run(&pod, &kratix_env("FoundryInstance", "configure", "alpha"), &live_args(&kubeconfig, &obs, "127.0.0.1:1"));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(api.requests().iter().all(|r| r.method == "GET"));
    assert_eq!(pod.status().unwrap()["warnings"][0]["code"], "LicenseNotFound");
}

/// Runs the license workflow against an API that misbehaves; returns the output and the pod.
fn license_with_api_fault(fault: Fault, times: Option<usize>) -> (Output, Pod, FakeApi) {
    let (api, lic) = cluster(json!({"activeInstanceName": "beta", "switchMode": "force"}));
    api.fault("GET", "/apis/foundry.platform/v1alpha1/namespaces/tabletop/foundryinstances", fault, times);
    let pod = Pod::new(&lic);
    std::fs::write(pod.path("output/from-an-earlier-attempt.yaml"), "stale").unwrap();
    let kubeconfig = api.kubeconfig(pod.dir.path());
    let obs = observations_file(&pod, &format!("now: \"{NOW}\"\n"));
    let out =
        run(&pod, &kratix_env("FoundryLicense", "configure", "guild"), &live_args(&kubeconfig, &obs, "127.0.0.1:1"));
    (out, pod, api)
}

#[test]
fn api_errors_fail_the_run_with_no_partial_output() {
    let cases = [
        ("500", Fault::Status(500, status_body(500, "InternalError", "etcd is sad")), 4, "error[ClusterUnavailable]"),
        ("timeout", Fault::Delay(Duration::from_secs(3)), 4, "error[ClusterUnavailable]"),
        ("malformed", Fault::Body("{\"items\": [\"not an object".into()), 1, "error[ClusterMalformedAnswer]"),
    ];
    for (what, fault, attempts, code) in cases {
        let (out, pod, api) = license_with_api_fault(fault, None);
        assert_eq!(out.status.code(), Some(5), "{what}: {}", text(&out.stderr));
        assert!(text(&out.stderr).starts_with(code), "{what}: {}", text(&out.stderr));
        assert_eq!(api.requests().len(), attempts, "{what}: attempts");
        assert_eq!(pod.output_files(), ["from-an-earlier-attempt.yaml"], "{what}: nothing written");
        assert!(pod.status().is_none(), "{what}: no half-written status");
    }
}

#[test]
fn a_forbidden_list_names_the_missing_permission_and_is_not_retried() {
    let message = "foundryinstances.foundry.platform is forbidden: User \"system:serviceaccount:tabletop:sa\" cannot list resource";
    let (out, pod, api) = license_with_api_fault(Fault::Status(403, status_body(403, "Forbidden", message)), None);
    assert_eq!(out.status.code(), Some(5));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("may not list foundryinstances.foundry.platform in namespace `tabletop`"), "{stderr}");
    assert!(stderr.contains("rbac.permissions"), "{stderr}");
    assert_eq!(api.requests().len(), 1);
    assert!(pod.status().is_none());
}

#[test]
fn transient_api_errors_are_retried_with_backoff() {
    let (out, pod, api) =
        license_with_api_fault(Fault::Status(503, status_body(503, "ServiceUnavailable", "busy")), Some(2));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let lists = api.requests().into_iter().filter(|r| r.path.ends_with("/foundryinstances")).count();
    assert_eq!(lists, 3, "two failures, then the answer");
    assert_eq!(pod.status().unwrap()["activeInstance"], "beta");
    assert!(
        !pod.output_files().contains(&"from-an-earlier-attempt.yaml".to_owned()),
        "a rerun replaces earlier output"
    );
}

#[test]
fn lists_are_read_page_by_page() {
    let (api, lic) = cluster(json!({"activeInstanceName": "beta", "switchMode": "force"}));
    api.page_size(2);
    let pod = Pod::new(&lic);
    let kubeconfig = api.kubeconfig(pod.dir.path());
    let obs = observations_file(&pod, &format!("now: \"{NOW}\"\n"));
    let out =
        run(&pod, &kratix_env("FoundryLicense", "configure", "guild"), &live_args(&kubeconfig, &obs, "127.0.0.1:1"));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let lists: Vec<_> = api.requests().into_iter().filter(|r| r.path.ends_with("/foundryinstances")).collect();
    assert_eq!(lists.len(), 2);
    assert!(lists[1].query.contains("continue=2"), "{}", lists[1].query);
    assert_eq!(pod.output_files().len(), 4);
}

#[test]
fn an_invalid_license_publishes_why_and_writes_no_output() {
    let (api, lic) = cluster(json!({"switchMode": "gentle"}));
    let pod = Pod::new(&lic);
    let kubeconfig = api.kubeconfig(pod.dir.path());
    let obs = observations_file(&pod, &format!("now: \"{NOW}\"\n"));
    let out =
        run(&pod, &kratix_env("FoundryLicense", "configure", "guild"), &live_args(&kubeconfig, &obs, "127.0.0.1:1"));
    assert_eq!(out.status.code(), Some(3));
    assert!(text(&out.stderr).contains("error[InvalidField]: FoundryLicense tabletop/guild: unknown variant `gentle`"));
    assert!(pod.output_files().is_empty());
    let patch = api.requests().into_iter().find(|r| r.method == "PATCH").expect("the refusal is published");
    assert_eq!(patch.path, "/apis/foundry.platform/v1alpha1/namespaces/tabletop/foundrylicenses/guild/status");
    let body = patch.json();
    assert!(body["status"]["message"].as_str().unwrap().starts_with("refused: InvalidField"));
    assert_eq!(body["status"]["inputErrors"][0]["path"], "spec.switchMode");
    assert_eq!(
        api.object("FoundryLicense", "tabletop", "guild").unwrap()["status"]["inputErrors"][0]["code"],
        "InvalidField"
    );
}

#[test]
fn offline_mode_decides_exactly_like_a_live_run() {
    let (api, lic) = cluster(json!({"activeInstanceName": "beta"}));
    let players = format!("now: \"{NOW}\"\nplayers:\n  - {{instance: alpha, connected: 0}}\n");
    let live = Pod::new(&lic);
    let kubeconfig = api.kubeconfig(live.dir.path());
    let obs = observations_file(&live, &players);
    let out =
        run(&live, &kratix_env("FoundryLicense", "configure", "guild"), &live_args(&kubeconfig, &obs, "127.0.0.1:1"));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));

    let offline = Pod::new(&lic);
    let snapshot = offline.path("snapshot.yaml");
    let objects: Vec<String> = ["alpha", "beta", "gamma"]
        .iter()
        .map(|n| policy_core::api::to_yaml(&instance(n, "guild")))
        .chain([policy_core::api::to_yaml(&instance("stranger", "other-license"))])
        .collect();
    std::fs::write(&snapshot, objects.join("---\n")).unwrap();
    let obs = observations_file(&offline, &players);
    let out = run(
        &offline,
        &kratix_env("FoundryLicense", "configure", "guild"),
        &["--offline", "--snapshot", snapshot.to_str().unwrap(), "--observations", obs.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(live.output_files(), offline.output_files());
    for f in live.output_files() {
        assert_eq!(
            std::fs::read(live.path("output").join(&f)).unwrap(),
            std::fs::read(offline.path("output").join(&f)).unwrap(),
            "{f}"
        );
    }
    assert_eq!(
        std::fs::read(live.path("metadata/status.yaml")).unwrap(),
        std::fs::read(offline.path("metadata/status.yaml")).unwrap()
    );
}

#[test]
fn offline_instance_runs_print_the_changes_instead_of_making_them() {
    let lic = license(json!({}), json!({}));
    let inst = instance("alpha", "guild");
    let pod = Pod::new(&inst);
    let snapshot = pod.path("snapshot.yaml");
    std::fs::write(&snapshot, policy_core::api::to_yaml(&lic)).unwrap();
    let out = run(
        &pod,
        &kratix_env("FoundryInstance", "configure", "alpha"),
        &["--offline", "--snapshot", snapshot.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr)
            .contains("offline: would label FoundryLicense tabletop/guild with kratix.io/manual-reconciliation=true"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn dry_runs_change_nothing_in_the_cluster() {
    let (api, _) = cluster(json!({}));
    let pod = Pod::new(&instance("alpha", "guild"));
    let kubeconfig = api.kubeconfig(pod.dir.path());
    let obs = observations_file(&pod, &format!("now: \"{NOW}\"\n"));
    let mut env = kratix_env("FoundryInstance", "configure", "alpha");
    env.push(("KRATIX_DRY_RUN".into(), "true".into()));
    let out = run(&pod, &env, &live_args(&kubeconfig, &obs, "127.0.0.1:1"));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(api.requests().iter().all(|r| r.method == "GET"));
}

#[test]
fn wrong_environment_is_a_usage_error() {
    let pod = Pod::new(&license(json!({}), json!({})));
    let mut env = kratix_env("FoundryLicense", "configure", "guild");
    env[0].1 = "promise".into();
    let out = run(&pod, &env, &["--offline", "--snapshot", pod.path("input/object.yaml").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let env = kratix_env("FoundryLicense", "delete", "guild");
    let out = run(&pod, &env, &["--offline", "--snapshot", pod.path("input/object.yaml").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("no `delete` workflow for kind `FoundryLicense`"));
}
