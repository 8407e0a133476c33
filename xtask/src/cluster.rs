//! `cargo xtask cluster`: the cluster tier, against a real Kubernetes API server and a real OPA.
//!
//! - Builds, from the Go modules pinned in `cluster/*/go.mod` (and `go.sum`), `foundry-control-plane` (etcd and
//!   kube-apiserver in one process, `cluster/control-plane`) and `opa` (`cluster/opa`, with its wasm engine) into
//!   `target/cluster/bin`. A stamp beside each binary records what it was built from (the module's files, the Go
//!   version, the flags), so a later run with nothing changed builds nothing.
//! - Gathers the CRDs: those of our Promises, from `spec.api` exactly as Kratix installs them
//!   ([`kratix_crd`]), those in `promises/standby-page/`, and the upstream ones our manifests use (Gateway API's
//!   standard channel, external-dns's `DNSEndpoint`), read from those projects' own Go modules at pinned versions.
//! - Starts a throw-away control plane on loopback in a temporary directory (it makes its certificates and keys,
//!   waits for `/readyz`, creates the CRDs, waits until they are Established, then writes the admin kubeconfig),
//!   runs the tier's tests (`host-runner/tests/cluster/`, ignored by a plain `cargo test`) against it, and stops it
//!   on every path, failures included. The control plane also dies with this process (a parent-death signal).
//!
//! It does not start Kratix: the tests run `host-runner kratix` as Kratix's pipeline pods would, with the
//! permissions Kratix would grant.

use crate::{Result, run};
use serde_json::{Value, json};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Gateway API release whose standard-channel CRDs judge our HTTPRoutes and ReferenceGrants.
const GATEWAY_API: (&str, &str) = ("sigs.k8s.io/gateway-api", "v1.6.3");
const GATEWAY_API_CRDS: &[&str] = &[
    "config/crd/standard/gateway.networking.k8s.io_gatewayclasses.yaml",
    "config/crd/standard/gateway.networking.k8s.io_gateways.yaml",
    "config/crd/standard/gateway.networking.k8s.io_httproutes.yaml",
    "config/crd/standard/gateway.networking.k8s.io_referencegrants.yaml",
];
/// external-dns release whose CRD judges our DNSEndpoints (v0.23.0 needs Go 1.27).
const EXTERNAL_DNS: (&str, &str) = ("sigs.k8s.io/external-dns", "v0.22.0");
const EXTERNAL_DNS_CRDS: &[&str] = &["config/crd/standard/dnsendpoints.externaldns.k8s.io.yaml"];

/// The Promises whose `spec.api` Kratix installs as CRDs.
const PROMISES: &[&str] = &["promises/foundry-license/promise.yaml", "promises/foundry-instance/promise.yaml"];
/// The standby page's manifests (their CRDs are installed as they are).
const STANDBY_PAGE: &str = "promises/standby-page";

/// The test target of the tier, in `host-runner`.
const TIER_TESTS: &str = "cluster";
/// How long the control plane may take to become ready with every CRD Established.
const READY_TIMEOUT: Duration = Duration::from_secs(180);

/// A Go program of `cluster/`, built into `target/cluster/bin`.
struct GoProgram {
    /// The binary's name.
    name: &'static str,
    /// Its module, relative to the repository.
    module: &'static str,
    /// The package to build (`.`, or a main package of a required module).
    package: &'static str,
    /// Build tags.
    tags: &'static str,
}

const CONTROL_PLANE: GoProgram =
    GoProgram { name: "foundry-control-plane", module: "cluster/control-plane", package: ".", tags: "" };
/// OPA's wasm engine (wazero, pure Go) is compiled in only with the `opa_wasm` tag, as OPA's own release builds do.
const OPA: GoProgram =
    GoProgram { name: "opa", module: "cluster/opa", package: "github.com/open-policy-agent/opa", tags: "opa_wasm" };

/// `cargo xtask cluster [FILTER...]`: builds what it needs, starts the control plane, runs the tier (the filters
/// are passed to nextest), stops it.
pub(crate) fn cluster(root: &Path, target: &Path, filters: &[String]) -> Result {
    let control_plane = ensure_built(root, target, &CONTROL_PLANE)?;
    let run_dir = std::env::temp_dir().join(format!("foundry-cluster-{}", std::process::id()));
    let crds = gather_crds(root, &run_dir.join("crds"))?;
    println!("cluster: {} CRDs to install", crds.len());
    let plane = ControlPlane::start(&control_plane, &run_dir)?;
    let report = run_dir.join("report");
    std::fs::create_dir_all(&report).map_err(|e| format!("cannot create {}: {e}", report.display()))?;
    let started = Instant::now();
    // `--workspace`, as the rest of `cargo xtask test`, so the test binaries are built with the same features and
    // not twice; the filter picks the tier's binary.
    let result = run(crate::cargo()
        .args(["nextest", "run", "--workspace", "--run-ignored", "only", "--no-fail-fast"])
        .args(["-E", &format!("package(host-runner) & binary({TIER_TESTS})")])
        .args(filters)
        .env("FOUNDRY_CLUSTER_KUBECONFIG", &plane.kubeconfig)
        .env("FOUNDRY_CLUSTER_REPORT", &report));
    println!("cluster: tier ran in {:.0?}", started.elapsed());
    print_report(&report);
    // Stopped before the directory goes; on failure its log is kept for reading.
    plane.stop(result.is_ok());
    if result.is_ok() {
        let _ = std::fs::remove_dir_all(&run_dir);
    }
    result
}

/// The corpus through OPA itself (`tests/node/opa-server.test.mjs`): builds OPA (cached like the control plane),
/// then runs the Node test that serves the policy module from a bundle with `opa run --server`. Needs the built
/// module, the native answers and the npm packages, which the callers make first.
pub(crate) fn opa_corpus(root: &Path, target: &Path) -> Result {
    let opa = ensure_built(root, target, &OPA)?;
    run(Command::new("node")
        .current_dir(root.join("tests/node"))
        .args(["--test", "opa-server.test.mjs"])
        .env("FOUNDRY_TARGET_DIR", target)
        .env("OPA", opa))
}

/// Which Go runs the builds: `go` on PATH, 1.26 or later (what the pinned modules' `go` lines need).
fn go_version() -> Result<String> {
    let out = Command::new("go").arg("version").output().map_err(|e| {
        format!("cannot run `go` ({e}): the cluster tier builds kube-apiserver, etcd and OPA from Go modules; install Go 1.26 or later")
    })?;
    let text = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let minor = text
        .split_whitespace()
        .nth(2)
        .and_then(|v| v.strip_prefix("go1."))
        .and_then(|v| v.split('.').next())
        .and_then(|v| v.parse::<u32>().ok());
    match minor {
        Some(m) if m >= 26 => Ok(text),
        _ => Err(format!("`go version` says `{text}`; the cluster tier needs Go 1.26 or later")),
    }
}

/// The version a `go.mod` requires of `module` (`require` block or line).
fn required_version(go_mod: &str, module: &str) -> Option<String> {
    go_mod.lines().find_map(|line| {
        let line = line.trim().trim_start_matches("require").trim();
        let mut words = line.split_whitespace();
        (words.next() == Some(module)).then(|| words.next().map(str::to_owned)).flatten()
    })
}

/// 64-bit FNV-1a: the stamp only needs to notice a change, not to resist one.
fn fnv1a(bytes: &[u8], mut hash: u64) -> u64 {
    for b in bytes {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

/// Builds `program` unless its stamp says the binary was built from exactly these inputs; returns the binary.
fn ensure_built(root: &Path, target: &Path, program: &GoProgram) -> Result<PathBuf> {
    let go = go_version()?;
    let module = root.join(program.module);
    let bin_dir = target.join("cluster").join("bin");
    let bin = bin_dir.join(program.name);
    let go_mod = std::fs::read_to_string(module.join("go.mod"))
        .map_err(|e| format!("cannot read {}: {e}", module.join("go.mod").display()))?;
    // kube-apiserver reports (on /version, and to clients) the version its build stamps in, as Kubernetes' own
    // build does (hack/lib/version.sh).
    let mut ldflags = "-s -w".to_owned();
    if let Some(version) = required_version(&go_mod, "k8s.io/kubernetes") {
        let minor = version.split('.').nth(1).unwrap_or_default();
        for package in ["k8s.io/component-base/version", "k8s.io/client-go/pkg/version"] {
            ldflags.push_str(&format!(
                " -X '{package}.gitVersion={version}' -X '{package}.gitMajor=1' -X '{package}.gitMinor={minor}'"
            ));
        }
    }
    let mut inputs: Vec<PathBuf> = std::fs::read_dir(&module)
        .map_err(|e| format!("cannot read {}: {e}", module.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    inputs.sort();
    let mut hash = 0xcbf2_9ce4_8422_2325;
    for input in &inputs {
        let bytes = std::fs::read(input).map_err(|e| format!("cannot read {}: {e}", input.display()))?;
        hash = fnv1a(input.file_name().map(|n| n.as_encoded_bytes()).unwrap_or_default(), hash);
        hash = fnv1a(&bytes, hash);
    }
    let stamp_text = format!("{go}\ntags={}\nldflags={ldflags}\ninputs={hash:016x}\n", program.tags);
    let stamp = bin_dir.join(format!("{}.stamp", program.name));
    if bin.is_file() && std::fs::read_to_string(&stamp).is_ok_and(|s| s == stamp_text) {
        println!("cluster: {} is up to date ({})", program.name, version_of(&bin, program)?);
        return Ok(bin);
    }
    std::fs::create_dir_all(&bin_dir).map_err(|e| format!("cannot create {}: {e}", bin_dir.display()))?;
    let _ = std::fs::remove_file(&stamp);
    let started = Instant::now();
    let mut cmd = Command::new("go");
    cmd.current_dir(&module)
        .args(["build", "-mod=readonly", "-trimpath", "-buildvcs=false"])
        .arg(format!("-tags={}", program.tags))
        .arg(format!("-ldflags={ldflags}"))
        .arg("-o")
        .arg(&bin)
        .arg(program.package);
    run(&mut cmd)?;
    let took = started.elapsed();
    std::fs::write(&stamp, stamp_text).map_err(|e| format!("cannot write {}: {e}", stamp.display()))?;
    println!("cluster: built {} ({}) in {took:.0?}", program.name, version_of(&bin, program)?);
    Ok(bin)
}

/// What the built binary says its version is.
fn version_of(bin: &Path, program: &GoProgram) -> Result<String> {
    let args: &[&str] = if program.name == OPA.name { &["version"] } else { &["--version"] };
    let out = Command::new(bin).args(args).output().map_err(|e| format!("cannot run {}: {e}", bin.display()))?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(format!("{} {} failed: {}", bin.display(), args.join(" "), String::from_utf8_lossy(&out.stderr)));
    }
    Ok(match program.name {
        "opa" => text.lines().find(|l| l.starts_with("Version:")).unwrap_or_default().replace("Version: ", "OPA "),
        _ => text.trim().to_owned(),
    })
}

/// A module's files: `go mod download` (which checks them against the Go checksum database) says where they are.
fn module_dir(module: &str, version: &str) -> Result<PathBuf> {
    let out = Command::new("go")
        .current_dir(std::env::temp_dir())
        .args(["mod", "download", "-json"])
        .arg(format!("{module}@{version}"))
        .output()
        .map_err(|e| format!("cannot run go mod download: {e}"))?;
    let info: Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("go mod download {module}@{version}: {e}: {}", String::from_utf8_lossy(&out.stderr)))?;
    if let Some(error) = info.get("Error").and_then(Value::as_str) {
        return Err(format!("go mod download {module}@{version}: {error}"));
    }
    info.get("Dir")
        .and_then(Value::as_str)
        .map(PathBuf::from)
        .ok_or_else(|| format!("go mod download {module}@{version} named no directory"))
}

/// Writes every CRD to install into `dir` (one file each, in install order) and returns their names.
fn gather_crds(root: &Path, dir: &Path) -> Result<Vec<String>> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let mut names = Vec::new();
    let write = |crd: &Value, names: &mut Vec<String>| -> Result {
        let name = crd.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default().to_owned();
        if names.contains(&name) {
            return Ok(());
        }
        let path = dir.join(format!("{:02}-{name}.json", names.len()));
        std::fs::write(&path, crd.to_string()).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        names.push(name);
        Ok(())
    };
    for promise in PROMISES {
        let path = root.join(promise);
        for document in read_yaml(&path)? {
            write(&kratix_crd(&document).map_err(|e| format!("{}: {e}", path.display()))?, &mut names)?;
        }
    }
    let mut standby: Vec<PathBuf> = std::fs::read_dir(root.join(STANDBY_PAGE))
        .map_err(|e| format!("cannot read {STANDBY_PAGE}: {e}"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    standby.sort();
    for path in standby {
        for document in read_yaml(&path)? {
            if document.get("kind").and_then(Value::as_str) == Some("CustomResourceDefinition") {
                write(&document, &mut names)?;
            }
        }
    }
    for ((module, version), files) in [(GATEWAY_API, GATEWAY_API_CRDS), (EXTERNAL_DNS, EXTERNAL_DNS_CRDS)] {
        let source = module_dir(module, version)?;
        println!("cluster: CRDs of {module} {version}");
        for file in files {
            // Copied as the project publishes them; the control plane reads YAML itself.
            let from = source.join(file);
            let name = from.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_owned();
            let to = dir.join(format!("{:02}-{name}", names.len()));
            std::fs::copy(&from, &to).map_err(|e| format!("cannot copy {}: {e}", from.display()))?;
            names.push(name);
        }
    }
    Ok(names)
}

fn read_yaml(path: &Path) -> Result<Vec<Value>> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    serde_saphyr::from_multiple::<Value>(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// The CRD Kratix installs for a Promise: its `spec.api`, labelled with the Promise's name, where every version
/// gets the status subresource, Kratix's own `status` schema (open to any key, with the fields Kratix writes), and,
/// if it declares no printer columns, Kratix's `message` and `status` columns. As `setStatusFieldsOnCRD` and
/// `generateCRDAndGVK` in Kratix's promise controller (`internal/controller/promise_controller.go`).
fn kratix_crd(promise: &Value) -> std::result::Result<Value, String> {
    let name = promise.pointer("/metadata/name").and_then(Value::as_str).ok_or("the Promise has no metadata.name")?;
    let mut crd = promise.pointer("/spec/api").cloned().ok_or("the Promise has no spec.api")?;
    if crd.get("kind").and_then(Value::as_str) != Some("CustomResourceDefinition") {
        return Err("spec.api is not a CustomResourceDefinition".into());
    }
    let labels = crd
        .as_object_mut()
        .and_then(|c| c.entry("metadata").or_insert_with(|| json!({})).as_object_mut())
        .and_then(|m| m.entry("labels").or_insert_with(|| json!({})).as_object_mut())
        .ok_or("spec.api.metadata is not an object")?;
    labels.insert("kratix.io/promise-name".into(), json!(name));
    let versions =
        crd.pointer_mut("/spec/versions").and_then(Value::as_array_mut).ok_or("spec.api has no spec.versions")?;
    for version in versions {
        let version = version.as_object_mut().ok_or("a version is not an object")?;
        version.insert("subresources".into(), json!({"status": {}}));
        if version.get("additionalPrinterColumns").and_then(Value::as_array).is_none_or(Vec::is_empty) {
            version.insert(
                "additionalPrinterColumns".into(),
                json!([
                    {"name": "message", "type": "string", "jsonPath": ".status.message"},
                    {"name": "status", "type": "string",
                     "jsonPath": ".status.conditions[?(@.type==\"Reconciled\")].message"},
                ]),
            );
        }
        let properties = version
            .get_mut("schema")
            .and_then(|s| s.pointer_mut("/openAPIV3Schema/properties"))
            .and_then(Value::as_object_mut)
            .ok_or("a version has no schema.openAPIV3Schema.properties")?;
        properties.insert("status".into(), kratix_status_schema());
    }
    Ok(crd)
}

/// The `status` schema Kratix puts on every Promise API version.
fn kratix_status_schema() -> Value {
    let string = json!({"type": "string"});
    let int64 = json!({"type": "integer", "format": "int64"});
    json!({
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true,
        "properties": {
            "message": string,
            "observedGeneration": int64,
            "workflows": int64,
            "workflowsSucceeded": int64,
            "workflowsFailed": int64,
            "conditions": {"type": "array", "items": {"type": "object", "properties": {
                "lastTransitionTime": {"type": "string", "format": "datetime"},
                "message": string, "reason": string, "status": string, "type": string,
            }}},
            "kratix": {"type": "object", "properties": {"workflows": {"type": "object", "properties": {
                "lastSuccessfulConfigureWorkflowTime": string,
                "pipelines": {"type": "array", "items": {"type": "object", "properties": {
                    "name": string, "phase": string, "message": string,
                    "lastTransitionTime": {"type": "string", "format": "datetime"},
                }}},
                "suspendedGeneration": int64,
            }}}},
        },
    })
}

/// A running control plane; stopped (killed and waited for) when dropped.
struct ControlPlane {
    child: Option<Child>,
    kubeconfig: PathBuf,
    log: PathBuf,
}

impl ControlPlane {
    /// Starts it in `dir` and waits until it has written its admin kubeconfig (ready, CRDs Established).
    fn start(bin: &Path, dir: &Path) -> Result<Self> {
        let log = dir.join("control-plane.log");
        let log_file = std::fs::File::create(&log).map_err(|e| format!("cannot create {}: {e}", log.display()))?;
        let err_file = log_file.try_clone().map_err(|e| e.to_string())?;
        let started = Instant::now();
        println!("+ {} --dir {} --crds {}", bin.display(), dir.display(), dir.join("crds").display());
        let child = Command::new(bin)
            .arg("--dir")
            .arg(dir)
            .arg("--crds")
            .arg(dir.join("crds"))
            .arg(format!("--timeout={}s", READY_TIMEOUT.as_secs()))
            .stdin(Stdio::null())
            .stdout(log_file)
            .stderr(err_file)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
        let mut plane = ControlPlane { child: Some(child), kubeconfig: dir.join("admin.kubeconfig"), log };
        while !plane.kubeconfig.is_file() {
            if let Some(status) = plane.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                return Err(format!("the control plane exited ({status}) before it was ready:\n{}", plane.log_tail()));
            }
            if started.elapsed() > READY_TIMEOUT + Duration::from_secs(10) {
                return Err(format!("the control plane was not ready within {READY_TIMEOUT:?}:\n{}", plane.log_tail()));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        println!(
            "cluster: control plane ready in {:.1?} (kubeconfig {})",
            started.elapsed(),
            plane.kubeconfig.display()
        );
        Ok(plane)
    }

    /// The last lines of its log (etcd's and kube-apiserver's).
    fn log_tail(&self) -> String {
        let mut text = String::new();
        let _ = std::fs::File::open(&self.log).and_then(|mut f| f.read_to_string(&mut text));
        let mut lines: Vec<&str> = text.lines().rev().take(30).collect();
        lines.reverse();
        lines.join("\n")
    }

    /// Stops it; after a failure, says where its log is.
    fn stop(mut self, ok: bool) {
        self.kill();
        if !ok {
            println!("cluster: the control plane's log is {}", self.log.display());
        }
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Sums what the tests recorded in `report` (one line per server-side dry-run: `accepted <kind>` or
/// `refused <kind>`, the latter only where a test expects the refusal).
fn print_report(report: &Path) {
    let mut counts: std::collections::BTreeMap<(String, String), usize> = Default::default();
    for entry in std::fs::read_dir(report).into_iter().flatten().flatten() {
        let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
        for line in text.lines() {
            if let Some((outcome, kind)) = line.split_once(' ') {
                *counts.entry((outcome.to_owned(), kind.to_owned())).or_default() += 1;
            }
        }
    }
    for outcome in ["accepted", "refused"] {
        let kinds: Vec<String> =
            counts.iter().filter(|((o, _), _)| o == outcome).map(|((_, k), n)| format!("{n} {k}")).collect();
        let total: usize = counts.iter().filter(|((o, _), _)| o == outcome).map(|(_, n)| n).sum();
        let note = if outcome == "refused" { ", each by a test that breaks a manifest on purpose" } else { "" };
        println!("cluster: server-side dry-run {outcome}: {total} ({}){note}", kinds.join(", "));
    }
}
