//! The cluster tier: the real `host-runner` binary against a real kube-apiserver (with etcd, RBAC and
//! ServiceAccount tokens), started by `cargo xtask cluster` with the CRDs of our Promises installed as Kratix
//! installs them and the upstream CRDs our manifests use (Gateway API, external-dns).
//!
//! Every workflow runs as Kratix would run it: the Kratix environment, the three directories, `object.yaml`
//! read by the pipeline's own ServiceAccount, and a token of that ServiceAccount holding exactly what Kratix
//! grants (its default Role for resource workflows plus the pipeline's `rbac.permissions`, read from the Promise
//! files). After each run the test applies `status.yaml` as Kratix's status writer does, and every file a workflow
//! writes is applied with server-side dry-run, so the real schemas and CEL rules judge our manifests.
//!
//! The tests are ignored by a plain `cargo test` (they need the control plane); `cargo xtask cluster` and
//! `cargo xtask test` run them with `--run-ignored only`. Each test works in its own namespace.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

mod kratix;
#[path = "../support/mod.rs"]
mod support;
mod tier;

use kratix::{Pod, Workflow, text};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::{FakeFoundry, Foundry};
use tier::{GROUP, Tier, root, yaml_documents, yaml_object};

const LICENSE: &str = "foundry-license";
const INSTANCE: &str = "foundry-instance";

fn license(namespace: &str, domain: &str, active: &str, extra: Value) -> Value {
    let mut spec = json!({
        "licenseSecretRef": {"name": "foundry-license", "key": "license-key"},
        "activeInstanceName": active,
        "baseDomain": domain,
        "gateway": {
            "parentRef": {"name": "public-gateway", "namespace": "gateway-system", "sectionName": "https"},
            "dnsTargets": ["203.0.113.10", "2001:db8::10"],
        },
        "standby": {"serviceName": "foundry-standby-page", "namespace": "foundry-vtt", "port": 80},
    });
    support::merge(&mut spec, &extra);
    json!({"apiVersion": "foundry.platform/v1alpha1", "kind": "FoundryLicense",
           "metadata": {"name": "guild", "namespace": namespace}, "spec": spec})
}

fn instance(namespace: &str, name: &str) -> Value {
    json!({"apiVersion": "foundry.platform/v1alpha1", "kind": "FoundryInstance",
           "metadata": {"name": name, "namespace": namespace}, "spec": {"licenseRef": {"name": "guild"}}})
}

/// The status keys an instance workflow writes once its workload is configured for the spec's first generation
/// (against the license's first generation).
fn configured() -> Value {
    json!({"configuredGeneration": 1, "licenseGeneration": 1,
           "conditions": [{"type": "Ready", "status": "True", "reason": "Configured",
                           "message": "configured", "lastTransitionTime": "2026-11-22T18:30:00Z"}]})
}

/// The route an instance gets: its backend Service.
fn backend(pod: &Pod, instance: &str) -> Value {
    let route = yaml_object(&pod.output_dir().join(format!("httproute-{instance}.yaml")));
    route["spec"]["rules"][0]["backendRefs"][0]["name"].clone()
}

fn now() -> String {
    support::now_rfc3339()
}

#[test]
#[ignore = "cluster tier: needs the control plane that cargo xtask cluster starts"]
fn license_and_instance_workflows_switch_block_and_delete() {
    let tier = Tier::connect("license_and_instance_workflows_switch_block_and_delete");
    let ns = tier.namespace("flow");
    tier.ensure_namespace("foundry-vtt");
    let domain = format!("{ns}.example.com");
    let route = Workflow::from_promise(LICENSE, "configure");
    let configure = Workflow::from_promise(INSTANCE, "configure");
    let delete = Workflow::from_promise(INSTANCE, "delete");
    let mut applied = 0;

    tier.create(&ns, "foundrylicenses", license(&ns, &domain, "alpha", json!({})));
    for name in ["alpha", "beta"] {
        // Kratix puts its delete-workflow finalizer on resources of Promises with a delete workflow.
        let mut object = instance(&ns, name);
        object["metadata"]["finalizers"] = json!(["kratix.io/delete-workflows"]);
        tier.create(&ns, "foundryinstances", object);
    }

    // Each instance is configured: its workload, its status, and its license asked to re-route.
    for name in ["alpha", "beta"] {
        let pod = Pod::new(&tier, &configure, &ns, name, &configure.permissions);
        let out = pod.run_ok(&[]);
        assert!(out.contains(&format!("asked FoundryLicense {ns}/guild to re-route")), "{out}");
        let status = pod.write_status(&tier)["status"].clone();
        assert_eq!(status["license"], "guild", "{status}");
        assert!(status["resolvedVersion"].is_string(), "{status}");
        applied += tier.dry_run_output(&pod.output_dir());
    }
    let lic = tier.get(&ns, "foundrylicenses", "guild").unwrap();
    assert_eq!(lic["metadata"]["labels"]["kratix.io/manual-reconciliation"], "true", "{lic}");

    // The license routes: alpha becomes active (nothing was active, so no player gate).
    let pod = Pod::new(&tier, &route, &ns, "guild", &route.permissions);
    let obs = pod.observations(&format!("now: \"{}\"\n", now()));
    let out = pod.run_ok(&["--observations", obs.to_str().unwrap()]);
    let alpha = tier.get(&ns, "foundryinstances", "alpha").unwrap();
    assert!(out.contains("active alpha"), "{out}\n{alpha:#}");
    assert_eq!(
        pod.output_files(),
        [
            "dnsendpoint-alpha.yaml",
            "dnsendpoint-beta.yaml",
            "httproute-alpha.yaml",
            "httproute-beta.yaml",
            "referencegrant-standby.yaml"
        ]
    );
    assert_eq!(backend(&pod, "alpha"), "foundry-alpha");
    assert_eq!(backend(&pod, "beta"), "foundry-standby-page");
    let status = pod.write_status(&tier)["status"].clone();
    assert_eq!(status["activeInstance"], "alpha", "{status}");
    applied += tier.dry_run_output(&pod.output_dir());

    // A switch to beta while three players are on alpha is held back.
    tier.patch(&ns, "foundrylicenses", "guild", json!({"spec": {"activeInstanceName": "beta"}}));
    let pod = Pod::new(&tier, &route, &ns, "guild", &route.permissions);
    let obs = pod.observations(&format!("now: \"{}\"\nplayers:\n  - {{instance: alpha, connected: 3}}\n", now()));
    let out = pod.run_ok(&["--observations", obs.to_str().unwrap()]);
    assert!(out.contains("SwitchBlockedPlayersConnected"), "{out}");
    assert_eq!(backend(&pod, "alpha"), "foundry-alpha");
    let status = pod.write_status(&tier)["status"].clone();
    assert_eq!(status["activeInstance"], "alpha", "{status}");
    assert_eq!(status["desiredInstance"], "beta", "{status}");
    assert!(status["pendingSince"].is_string(), "{status}");
    assert_eq!(status["warnings"][0]["code"], "SwitchBlockedPlayersConnected", "{status}");
    applied += tier.dry_run_output(&pod.output_dir());

    // The players leave: the next run probes alpha's Service (here a Foundry stand-in) and switches.
    let foundry = FakeFoundry::start(Foundry::Answer(200, r#"{"active":true,"version":"13.351","users":0}"#.into()));
    let pod = Pod::new(&tier, &route, &ns, "guild", &route.permissions);
    let obs = pod.observations(&format!("now: \"{}\"\n", now()));
    let out = pod.run_ok(&["--observations", obs.to_str().unwrap(), "--connect-to", &foundry.addr]);
    assert!(out.contains("0 connected"), "{out}");
    assert_eq!(foundry.requests()[0].headers["host"], format!("foundry-alpha.{ns}.svc:80"));
    assert_eq!(backend(&pod, "beta"), "foundry-beta");
    assert_eq!(backend(&pod, "alpha"), "foundry-standby-page");
    let status = pod.write_status(&tier)["status"].clone();
    assert_eq!(status["activeInstance"], "beta", "{status}");
    assert!(status["pendingSince"].is_null(), "{status}");
    applied += tier.dry_run_output(&pod.output_dir());

    // beta, now active, is deleted: its delete workflow asks the license to re-route, and the license's next run
    // gives it no route and frees the license. Then Kratix removes its finalizer and it is gone.
    tier.patch(
        &ns,
        "foundrylicenses",
        "guild",
        json!({"metadata": {"labels": {"kratix.io/manual-reconciliation": null}}}),
    );
    tier.delete(&ns, "foundryinstances", "beta");
    let pod = Pod::new(&tier, &delete, &ns, "beta", &delete.permissions);
    let object = yaml_object(&pod.path("input/object.yaml"));
    assert!(object["metadata"]["deletionTimestamp"].is_string(), "{object}");
    let out = pod.run_ok(&[]);
    assert!(out.contains("re-route"), "{out}");
    pod.write_status(&tier);
    let lic = tier.get(&ns, "foundrylicenses", "guild").unwrap();
    assert_eq!(lic["metadata"]["labels"]["kratix.io/manual-reconciliation"], "true", "{lic}");
    let pod = Pod::new(&tier, &route, &ns, "guild", &route.permissions);
    let obs = pod.observations(&format!("now: \"{}\"\n", now()));
    pod.run_ok(&["--observations", obs.to_str().unwrap()]);
    assert!(!pod.output_files().contains(&"httproute-beta.yaml".to_owned()), "{:?}", pod.output_files());
    let status = pod.write_status(&tier)["status"].clone();
    assert!(status["activeInstance"].as_str().is_none_or(str::is_empty), "{status}");
    applied += tier.dry_run_output(&pod.output_dir());
    tier.patch(&ns, "foundryinstances", "beta", json!({"metadata": {"finalizers": null}}));
    assert!(tier.get(&ns, "foundryinstances", "beta").is_none(), "beta is gone once its finalizer is");

    eprintln!("{applied} generated manifests accepted by server-side dry-run");
}

#[test]
#[ignore = "cluster tier: needs the control plane that cargo xtask cluster starts"]
fn the_example_platform_and_everything_it_generates_pass_server_side_dry_run() {
    let tier = Tier::connect("the_example_platform_and_everything_it_generates_pass_server_side_dry_run");
    let ns = tier.namespace("example");
    tier.ensure_namespace("foundry-vtt");
    // The example platform, moved into this test's namespace.
    let input = tempfile::tempdir().unwrap();
    for file in tier::sorted_files(&root().join("examples/platform")) {
        let text = std::fs::read_to_string(&file).unwrap().replace("namespace: tabletop", &format!("namespace: {ns}"));
        std::fs::write(input.path().join(file.file_name().unwrap()), text).unwrap();
    }
    // The objects themselves are judged by our CRDs as Kratix installs them.
    let mut objects = 0;
    for file in tier::sorted_files(input.path()) {
        for object in yaml_documents(&file) {
            tier.dry_run_apply(&object)
                .unwrap_or_else(|e| panic!("{} {}: {e}", object["kind"], object["metadata"]["name"]));
            objects += 1;
        }
    }
    assert_eq!(objects, 6, "the license and five instances");
    let out = tempfile::tempdir().unwrap();
    let run = Command::new(env!("CARGO_BIN_EXE_host-runner"))
        .arg("preview")
        .arg(input.path())
        .arg("--observations")
        .arg(root().join("examples/observations.yaml"))
        .arg("--out")
        .arg(out.path())
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(0), "{}", text(&run.stderr));
    let mut applied = 0;
    let mut kinds = std::collections::BTreeSet::new();
    for plural in ["foundrylicenses", "foundryinstances"] {
        for dir in std::fs::read_dir(out.path().join(&ns).join(plural)).unwrap() {
            let output = dir.unwrap().path().join("output");
            if !output.is_dir() {
                continue;
            }
            for file in tier::sorted_files(&output) {
                for object in yaml_documents(&file) {
                    kinds.insert(object["kind"].as_str().unwrap().to_owned());
                }
            }
            applied += tier.dry_run_output(&output);
        }
    }
    for kind in ["HTTPRoute", "ReferenceGrant", "DNSEndpoint", "Deployment", "Service", "PersistentVolumeClaim", "Job"]
    {
        assert!(kinds.contains(kind), "the example generates a {kind}: {kinds:?}");
    }
    eprintln!("{applied} manifests of the example platform accepted by server-side dry-run ({kinds:?})");
}

/// The state each workflow needs so that it uses every permission it has: a license with a requested switch and
/// instances (license-route lists them; instance-configure reads its license, lists the instances and patches the
/// license; instance-delete reads and patches the license).
fn rbac_scenario(tier: &Tier, ns: &str) {
    tier.create(ns, "foundrylicenses", license(ns, &format!("{ns}.example.com"), "alpha", json!({})));
    tier.create(ns, "foundryinstances", instance(ns, "alpha"));
    tier.create(ns, "foundryinstances", instance(ns, "beta"));
    // Configured against an older license spec: license-route labels them to reconfigure and writes their route
    // state.
    let mut stale = configured();
    stale["licenseGeneration"] = json!(0);
    for name in ["alpha", "beta"] {
        tier.patch_status(ns, "foundryinstances", name, stale.clone());
    }
}

/// Runs `workflow` on its object in a fresh namespace whose pipeline ServiceAccount holds `permissions`.
fn run_with(tier: &Tier, workflow: &Workflow, permissions: &[Value]) -> (std::process::Output, String) {
    let ns = tier.namespace("rbac");
    rbac_scenario(tier, &ns);
    let object = if workflow.plural == "foundrylicenses" { "guild" } else { "beta" };
    let pod = Pod::new(tier, workflow, &ns, object, permissions);
    let obs = pod.observations(&format!("now: \"{}\"\n", now()));
    (pod.run(&["--observations", obs.to_str().unwrap()]), ns)
}

#[test]
#[ignore = "cluster tier: needs the control plane that cargo xtask cluster starts"]
fn every_verb_a_promise_grants_is_one_its_workflow_needs() {
    let tier = Tier::connect("every_verb_a_promise_grants_is_one_its_workflow_needs");
    for (promise, action) in [(LICENSE, "configure"), (INSTANCE, "configure"), (INSTANCE, "delete")] {
        let workflow = Workflow::from_promise(promise, action);
        let (out, _) = run_with(&tier, &workflow, &workflow.permissions);
        assert_eq!(out.status.code(), Some(0), "{}: {}", workflow.pipeline, text(&out.stderr));
        for (i, rule) in workflow.permissions.iter().enumerate() {
            for resource in rule["resources"].as_array().unwrap() {
                let resource = resource.as_str().unwrap();
                for verb in rule["verbs"].as_array().unwrap() {
                    let verb = verb.as_str().unwrap();
                    // Kratix's default Role already grants these on the workflow's own kind.
                    if resource == workflow.plural || resource == format!("{}/status", workflow.plural) {
                        assert!(
                            ["get", "list", "update", "create", "patch"].contains(&verb),
                            "{}: {verb} {resource} is not in Kratix's default Role; test it here",
                            workflow.pipeline
                        );
                        continue;
                    }
                    let mut fewer = workflow.permissions.clone();
                    let verbs = fewer[i]["verbs"].as_array_mut().unwrap();
                    verbs.retain(|v| v != verb);
                    if verbs.is_empty() {
                        // A rule without verbs is invalid; losing its last verb is losing the rule.
                        fewer.remove(i);
                    }
                    let (out, ns) = run_with(&tier, &workflow, &fewer);
                    let stderr = text(&out.stderr);
                    assert_eq!(
                        out.status.code(),
                        Some(5),
                        "{}: without `{verb}` on {resource} the run should fail (exit 5), but: {stderr}",
                        workflow.pipeline
                    );
                    // A list across namespaces fails as such; the same grant also covers the pipeline's own namespace.
                    let group = rule["apiGroups"][0].as_str().unwrap_or(GROUP);
                    let here = format!("may not {verb} {resource}.{group} in namespace `{ns}`");
                    let anywhere = format!("may not {verb} {resource}.{group} in any namespace");
                    assert!(
                        stderr.contains(&here)
                            || (rule.get("resourceNamespace").is_some() && stderr.contains(&anywhere)),
                        "{}: expected {here:?} in {stderr}",
                        workflow.pipeline
                    );
                    assert!(stderr.contains("rbac.permissions"), "{stderr}");
                }
            }
        }
    }
}

/// An HTTPRoute, ReferenceGrant and DNSEndpoint as the license workflow writes them (through `preview --out`,
/// which writes the same bytes).
fn generated_routes(ns: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let mut objects = vec![license(ns, &format!("{ns}.example.com"), "alpha", json!({}))];
    objects.push(instance(ns, "alpha"));
    objects.push(instance(ns, "beta"));
    let input = dir.path().join("platform.yaml");
    std::fs::write(&input, objects.iter().map(policy_core::api::to_yaml).collect::<Vec<_>>().join("---\n")).unwrap();
    let out = dir.path().join("out");
    let run = Command::new(env!("CARGO_BIN_EXE_host-runner"))
        .arg("preview")
        .arg(&input)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(0), "{}", text(&run.stderr));
    let output = out.join(ns).join("foundrylicenses").join("guild").join("output");
    (dir, output)
}

#[test]
#[ignore = "cluster tier: needs the control plane that cargo xtask cluster starts"]
fn gateway_api_and_external_dns_rules_refuse_broken_manifests() {
    let tier = Tier::connect("gateway_api_and_external_dns_rules_refuse_broken_manifests");
    let ns = tier.namespace("cel");
    tier.ensure_namespace("foundry-vtt");
    let (_dir, output) = generated_routes(&ns);
    let route = yaml_object(&output.join("httproute-alpha.yaml"));
    let grant = yaml_object(&output.join("referencegrant-standby.yaml"));
    let dns = yaml_object(&output.join("dnsendpoint-alpha.yaml"));
    for good in [&route, &grant, &dns] {
        tier.dry_run_apply(good).unwrap_or_else(|e| panic!("{} refused: {e}", good["kind"]));
    }
    let broken = |object: &Value, pointer: &str, value: Option<Value>| {
        let mut copy = object.clone();
        let (parent, key) = pointer.rsplit_once('/').unwrap();
        let parent = copy.pointer_mut(parent).unwrap();
        match (value, parent) {
            (Some(v), Value::Array(items)) => items[key.parse::<usize>().unwrap()] = v,
            (Some(v), p) => p[key] = v,
            (None, p) => {
                p.as_object_mut().unwrap().remove(key);
            }
        }
        tier.dry_run_apply(&copy).expect_err(&format!("{} with {pointer} changed was accepted", object["kind"]))
    };
    // A CEL rule of HTTPRoute's backendRefs: a Service reference needs its port.
    let refused = broken(&route, "/spec/rules/0/backendRefs/0/port", None);
    assert!(refused.contains("Must have port for Service reference"), "{refused}");
    // The schema's hostname pattern: no upper case, no trailing dot.
    let refused = broken(&route, "/spec/hostnames/0", Some(json!("Alpha.Example.COM.")));
    assert!(refused.contains("spec.hostnames[0]"), "{refused}");
    // ReferenceGrant: `from` must name a namespace.
    let refused = broken(&grant, "/spec/from/0/namespace", Some(json!("")));
    assert!(refused.contains("spec.from[0].namespace"), "{refused}");
    // DNSEndpoint: a record's targets are a list of strings.
    let refused = broken(&dns, "/spec/endpoints/0/targets", Some(json!("203.0.113.10")));
    assert!(refused.contains("spec.endpoints[0].targets"), "{refused}");
}

#[test]
#[ignore = "cluster tier: needs the control plane that cargo xtask cluster starts"]
fn the_monitor_patches_its_own_status_under_the_role_its_workload_grants() {
    let tier = Tier::connect("the_monitor_patches_its_own_status_under_the_role_its_workload_grants");
    let ns = tier.namespace("monitor");
    tier.create(&ns, "foundrylicenses", license(&ns, &format!("{ns}.example.com"), "alpha", json!({})));
    tier.create(&ns, "foundryinstances", instance(&ns, "alpha"));
    tier.create(&ns, "foundryinstances", instance(&ns, "beta"));
    let configure = Workflow::from_promise(INSTANCE, "configure");
    let pod = Pod::new(&tier, &configure, &ns, "alpha", &configure.permissions);
    pod.run_ok(&[]);
    pod.write_status(&tier);
    // The monitor's ServiceAccount, Role and RoleBinding, as the workload manifests carry them, applied for real.
    let mut account = String::new();
    for file in ["monitor-serviceaccount.yaml", "monitor-role.yaml", "monitor-rolebinding.yaml"] {
        let object = yaml_object(&pod.output_dir().join(file));
        if object["kind"] == "ServiceAccount" {
            account = object["metadata"]["name"].as_str().unwrap().to_owned();
        }
        tier.apply(&object);
    }
    tier.await_permission((&ns, &account), "patch", "foundryinstances/status", &ns, Some("alpha"));
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = tier.token_kubeconfig(&ns, &account, dir.path());
    let foundry = FakeFoundry::start(Foundry::Answer(
        200,
        r#"{"active":true,"version":"13.351","world":"lost-mine","system":"dnd5e","users":2}"#.into(),
    ));
    let monitor = |instance: &str| {
        Command::new(env!("CARGO_BIN_EXE_host-runner"))
            .arg("monitor")
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .args(["--status-url", &format!("http://{}/api/status", foundry.addr)])
            .args(["--iterations", "1", "--api-timeout", "5", "--probe-timeout", "2"])
            .env_clear()
            .env("FOUNDRY_INSTANCE", instance)
            .env("FOUNDRY_NAMESPACE", &ns)
            .output()
            .unwrap()
    };
    let out = monitor("alpha");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let status = tier.get(&ns, "foundryinstances", "alpha").unwrap()["status"].clone();
    assert_eq!(status["connectedPlayers"], 2, "{status}\n{}", text(&out.stderr));
    assert_eq!(status["world"], "lost-mine", "{status}");
    assert!(status["lastCheckedAt"].is_string(), "{status}");
    assert_eq!(status["license"], "guild", "the workflow's keys are kept: {status}");
    // The same token cannot write another instance's status: the Role names alpha alone.
    let before = tier.get(&ns, "foundryinstances", "beta").unwrap()["status"].clone();
    let out = monitor("beta");
    assert_eq!(out.status.code(), Some(0), "a refused write is logged, never a crash: {}", text(&out.stderr));
    let log = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(log.contains("the Role must grant get and patch on this instance's status"), "{log}");
    assert_eq!(tier.get(&ns, "foundryinstances", "beta").unwrap()["status"], before);
}

/// `host-runner standby-page` with a kubeconfig; stopped when dropped.
struct Standby {
    child: Child,
    addr: String,
    log: PathBuf,
}

impl Standby {
    fn start(kubeconfig: &Path, dir: &Path) -> Self {
        let log = dir.join("standby.log");
        let mut child = Command::new(env!("CARGO_BIN_EXE_host-runner"))
            .args(["standby-page", "--listen", "127.0.0.1:0", "--activation"])
            .args(["--review-interval", "1", "--api-timeout", "5", "--kubeconfig"])
            .arg(kubeconfig)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let addr = line.trim().strip_prefix("standby-page: listening on ").unwrap_or_else(|| {
            panic!("no address announced: {line:?}; log: {}", std::fs::read_to_string(&log).unwrap_or_default())
        });
        Standby { addr: addr.to_owned(), child, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Standby {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < Duration::from_secs(30), "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
#[ignore = "cluster tier: needs the control plane that cargo xtask cluster starts"]
fn standby_page_activation_under_its_own_rbac() {
    let tier = Tier::connect("standby_page_activation_under_its_own_rbac");
    // The standby page's manifests: its Namespace, ServiceAccount and RBAC applied for real (the CRD is installed
    // with the others), its Deployment and Service judged by a dry run.
    let manifests = yaml_documents(&root().join("promises/standby-page/with-activation.yaml"));
    let mut account = None;
    for object in &manifests {
        match object["kind"].as_str().unwrap() {
            "CustomResourceDefinition" => {}
            "Deployment" | "Service" => tier.dry_run_apply(object).unwrap(),
            kind => {
                if kind == "ServiceAccount" {
                    account = Some((
                        object["metadata"]["namespace"].as_str().unwrap().to_owned(),
                        object["metadata"]["name"].as_str().unwrap().to_owned(),
                    ));
                }
                tier.apply(object);
            }
        }
    }
    let (account_ns, account) = account.expect("the manifests hold the page's ServiceAccount");
    let ns = tier.namespace("standby");
    let domain = format!("{ns}.example.com");
    tier.create(
        &ns,
        "foundrylicenses",
        license(&ns, &domain, "alpha", json!({"activation": {"mode": "request", "requestTTL": "1h"}})),
    );
    tier.create(&ns, "foundryinstances", instance(&ns, "alpha"));
    tier.create(&ns, "foundryinstances", instance(&ns, "beta"));
    // What the instance workflows would have published: workloads configured for the current spec.
    for name in ["alpha", "beta"] {
        tier.patch_status(&ns, "foundryinstances", name, configured());
    }
    // What the license workflow would have published.
    tier.patch_status(
        &ns,
        "foundrylicenses",
        "guild",
        json!({"activeInstance": "alpha", "desiredInstance": "alpha", "warnings": []}),
    );
    for (verb, resource) in [
        ("list", "foundrylicenses"),
        ("list", "foundryinstances"),
        ("create", "foundryactivationrequests"),
        ("patch", "foundryactivationrequests/status"),
        ("patch", "foundrylicenses"),
    ] {
        tier.await_permission((&account_ns, &account), verb, resource, &ns, None);
    }
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = tier.token_kubeconfig(&account_ns, &account, dir.path());
    let service = Standby::start(&kubeconfig, dir.path());
    let host = format!("beta.{domain}");
    // The page serves once its watches have listed every kind.
    wait_for("the standby page to be ready", || support::http_get(&service.addr, &host, "/readyz").status == 200);

    let page = support::http_get(&service.addr, &host, "/");
    assert_eq!(page.status, 200, "{page:?}\n{}", service.log());
    assert!(page.body.contains("<code>beta</code> is on standby"), "{}", page.body);
    assert!(page.body.contains("Request activation"), "{}", page.body);

    // A click records a request in the license's namespace.
    let cookie = page.header("set-cookie").unwrap().split(';').next().unwrap().to_owned();
    let token = cookie.split_once('=').unwrap().1.to_owned();
    let click = support::http_post(
        &service.addr,
        &host,
        &format!("Origin: https://{host}\r\nCookie: {cookie}\r\nAccept: application/json\r\n"),
        &format!("csrf={token}"),
    );
    assert_eq!(click.status, 201, "{click:?}\n{}", service.log());
    let requests = tier.ours(&tier.admin, &ns, "foundryactivationrequests");
    let list = || tier.rt.block_on(requests.list(&Default::default())).unwrap().items;
    let created = list();
    assert_eq!(created.len(), 1);
    let name = created[0].metadata.name.clone().unwrap();
    assert_eq!(created[0].data["spec"]["instanceName"], "beta");
    assert_eq!(created[0].data["spec"]["approved"], false);
    assert!(created[0].metadata.creation_timestamp.is_some(), "set by the API server");

    // The review marks it pending; an operator approves; the next review switches the license.
    let phase = |name: &str| tier.get(&ns, "foundryactivationrequests", name).unwrap()["status"]["phase"].clone();
    wait_for("the request to be Pending", || phase(&name) == "Pending");
    assert_eq!(tier.get(&ns, "foundrylicenses", "guild").unwrap()["spec"]["activeInstanceName"], "alpha");
    tier.patch(&ns, "foundryactivationrequests", &name, json!({"spec": {"approved": true}}));
    wait_for("the switch", || {
        tier.get(&ns, "foundrylicenses", "guild").unwrap()["spec"]["activeInstanceName"] == "beta"
    });
    wait_for("the request to be Applied", || phase(&name) == "Applied");
    assert!(!service.log().contains("forbidden"), "{}", service.log());
}

/// The existing platform's Deployment of an instance: its data on NFS at `<NFS_BASE_PATH>/instances/<name>`.
fn legacy_deployment(namespace: &str, name: &str) -> Value {
    let labels = json!({"app": "foundry-vtt", "instance": name});
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
           "metadata": {"name": format!("foundry-{name}"), "namespace": namespace, "labels": labels},
           "spec": {"replicas": 1, "strategy": {"type": "Recreate"}, "selector": {"matchLabels": labels},
                    "template": {"metadata": {"labels": labels}, "spec": {
                        "containers": [{"name": "foundry-vtt", "image": "felddy/foundryvtt:13.347.0",
                                        "ports": [{"containerPort": 30000}],
                                        "volumeMounts": [{"name": "data", "mountPath": "/data"}]}],
                        "volumes": [{"name": "data",
                                     "nfs": {"server": "192.168.200.184",
                                             "path": format!("/volume1/foundry/instances/{name}")}}]}}}})
}

#[test]
#[ignore = "cluster tier: needs the control plane that cargo xtask cluster starts"]
fn an_instance_of_the_existing_platform_keeps_its_data_through_the_upgrade() {
    let tier = Tier::connect("an_instance_of_the_existing_platform_keeps_its_data_through_the_upgrade");
    let ns = tier.namespace("upgrade");
    tier.create(&ns, "foundrylicenses", license(&ns, &format!("{ns}.example.com"), "alpha", json!({})));
    // An instance as the existing platform wrote it: no storage field (its default was NFS), and its running
    // Deployment.
    let mut old = instance(&ns, "alpha");
    old["spec"]["foundryVersion"] = json!("13.347.0");
    old["spec"]["adminPasswordSecretRef"] = json!({"name": "foundry-credentials-alpha"});
    tier.create(&ns, "foundryinstances", old);
    tier.apply(&legacy_deployment(&ns, "alpha"));

    // This Promise's instance workflow, under its own RBAC, reads the Deployment and refuses to start the
    // workload on this platform's default (a new PVC): nothing is written, Kratix keeps the running Work.
    let workflow = Workflow::from_promise(INSTANCE, "configure");
    let pod = Pod::new(&tier, &workflow, &ns, "alpha", &workflow.permissions);
    let refused = pod.run(&[]);
    let stderr = text(&refused.stderr);
    assert_eq!(refused.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("error[DataLocationChange]"), "{stderr}");
    assert!(stderr.contains("nfs://192.168.200.184/volume1/foundry/instances/alpha"), "{stderr}");
    assert!(
        stderr.contains("spec.storage: {backend: nfs, nfs: {server: 192.168.200.184, path: /volume1/foundry}}"),
        "the refusal says which spec keeps the data: {stderr}"
    );
    assert_eq!(std::fs::read_dir(pod.path("output")).unwrap().count(), 0);
    let status = tier.get(&ns, "foundryinstances", "alpha").unwrap()["status"].clone();
    assert_eq!(status["inputErrors"][0]["code"], "DataLocationChange", "the refusal is on the status: {status}");

    // `host-runner migrate --live` reads the objects from the server (every namespace), its spec for this
    // instance applied: the workflow now configures the instance on the very directory the existing platform used.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("migrated");
    let admin = std::env::var_os("FOUNDRY_CLUSTER_KUBECONFIG").unwrap();
    let migrated = Command::new(env!("CARGO_BIN_EXE_host-runner"))
        .args(["migrate", "--live", "--kubeconfig"])
        .arg(&admin)
        .args(["--nfs-server", "192.168.200.184", "--nfs-base", "/volume1/foundry", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(migrated.status.code(), Some(0), "{}", text(&migrated.stderr));
    let spec = yaml_object(&out.join(&ns).join("foundryinstances/alpha.yaml"))["spec"].clone();
    tier.patch(&ns, "foundryinstances", "alpha", json!({"spec": spec}));
    pod.read_object(&tier);
    pod.run_ok(&[]);
    let deployment = yaml_object(&pod.path("output/deployment.yaml"));
    let pod_spec = &deployment["spec"]["template"]["spec"];
    let data = pod_spec["volumes"].as_array().unwrap().iter().find(|v| v["nfs"].is_object()).unwrap();
    assert_eq!(data["nfs"], json!({"server": "192.168.200.184", "path": "/volume1/foundry"}));
    let mount = pod_spec["containers"][0]["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["mountPath"] == "/data")
        .unwrap()
        .clone();
    assert_eq!((mount["name"].clone(), mount["subPath"].clone()), (data["name"].clone(), json!("instances/alpha")));

    // An instance that names its storage the existing platform's way keeps those fields under this Promise's CRD
    // (declared, deprecated), and the workflow reads them as `migrate` does: same directory, a warning to migrate.
    let mut gamma = instance(&ns, "gamma");
    gamma["spec"]["foundryVersion"] = json!("13.347.0");
    gamma["spec"]["adminPasswordSecretRef"] = json!({"name": "foundry-credentials-gamma"});
    gamma["spec"]["storageBackend"] = json!("nfs");
    gamma["spec"]["nfsBasePath"] = json!("/volume1/foundry/instances/gamma");
    let stored = tier.create(&ns, "foundryinstances", gamma);
    assert_eq!(stored["spec"]["storageBackend"], "nfs", "the API server keeps the old fields: {stored}");
    assert_eq!(stored["spec"]["nfsBasePath"], "/volume1/foundry/instances/gamma");
    tier.apply(&legacy_deployment(&ns, "gamma"));
    let pod = Pod::new(&tier, &workflow, &ns, "gamma", &workflow.permissions);
    let stdout = pod.run_ok(&[]);
    assert!(stdout.contains("warning[DeprecatedStorageFields]"), "{stdout}");
    let deployment = yaml_object(&pod.path("output/deployment.yaml"));
    let volumes = deployment["spec"]["template"]["spec"]["volumes"].as_array().unwrap().clone();
    assert!(
        volumes.iter().any(|v| v["nfs"] == json!({"server": "192.168.200.184", "path": "/volume1/foundry"})),
        "{volumes:?}"
    );
}
