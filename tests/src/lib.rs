//! The case corpus and its checker.
//!
//! `tests/corpus/<area>/<NNN-name>.yaml` holds one scenario per file: the operation, the call (OPA's `input`:
//! objects and observations, or an admission review), OPA's `data` when the operation reads it, and the expected
//! decision or error codes. The Rust runners (native `policy-core`, the CLI, our wasmtime host) load the cases with
//! [`load_cases`] and check their answer with [`check`]; the hosts outside Rust (OPA's npm SDK in Node and
//! Chromium, the `opa-wasm` crate) compare with the native answers `policy-core`'s `corpus_answers` example
//! writes, so all of them are held to the same expectations. Runners that cannot express a case list it, with a reason, in
//! `tests/corpus/DIVERGENCES.yaml`; nothing is skipped silently.

// Test support: a broken case or generator should fail the test run loudly.
#![allow(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod generate;

use serde::{Deserialize, Deserializer};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One scenario.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    /// What the scenario shows.
    pub description: String,
    /// The operation (entrypoint name); default `foundry/license/route`.
    #[serde(default = "default_operation")]
    pub operation: String,
    /// The call, as JSON (OPA's `input`).
    pub call: Value,
    /// OPA's `data` document, for operations that read it (admission review); absent means undefined.
    #[serde(default)]
    pub data: Option<Value>,
    /// What the answer must say.
    pub expect: Expect,
    /// File stem, e.g. `routing/006-switch-blocked-players`.
    #[serde(skip)]
    pub name: String,
    /// The file.
    #[serde(skip)]
    pub path: PathBuf,
}

fn default_operation() -> String {
    "foundry/license/route".into()
}

/// Keeps an explicit `null` apart from an absent field.
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

/// Expectations. Every field is optional; those given must hold.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Expect {
    /// `success` or `failure`.
    pub outcome: String,
    /// Failure: the error codes, in order (`Code` or `Code@path`).
    #[serde(default)]
    pub errors: Option<Vec<String>>,
    /// The effective active instance (`""` for none).
    #[serde(default)]
    pub active_instance: Option<String>,
    /// The desired instance.
    #[serde(default)]
    pub desired_instance: Option<String>,
    /// Every instance and its state, exactly.
    #[serde(default)]
    pub states: Option<BTreeMap<String, String>>,
    /// Reasons of some instances.
    #[serde(default)]
    pub reasons: Option<BTreeMap<String, String>>,
    /// Backends of some instances, as `namespace/name:port`.
    #[serde(default)]
    pub backends: Option<BTreeMap<String, String>>,
    /// Hostnames of some instances.
    #[serde(default)]
    pub hostnames: Option<BTreeMap<String, String>>,
    /// Warning codes, exactly and in order.
    #[serde(default)]
    pub warnings: Option<Vec<String>>,
    /// Substrings that must appear in the warning messages, per code.
    #[serde(default)]
    pub warning_texts: Option<BTreeMap<String, String>>,
    /// `status.pendingSince` (null for none).
    #[serde(default, deserialize_with = "present")]
    pub pending_since: Option<Value>,
    /// The instance whose player count the decision needed (null for none).
    #[serde(default, deserialize_with = "present")]
    pub player_check: Option<Value>,
    /// Conditions as `type: Status/Reason`.
    #[serde(default)]
    pub conditions: Option<BTreeMap<String, String>>,
    /// The output files, exactly and in order.
    #[serde(default)]
    pub files: Option<Vec<String>>,
    /// Partial objects, each of which some manifest must contain.
    #[serde(default)]
    pub manifests_contain: Option<Vec<Value>>,
    /// A partial status the status must contain.
    #[serde(default)]
    pub status: Option<Value>,
    /// Top-level status keys the status must not have (keys another writer owns).
    #[serde(default)]
    pub status_lacks: Option<Vec<String>>,
    /// Instance workflows: the license to re-route, as `namespace/name` (null for none).
    #[serde(default, deserialize_with = "present")]
    pub reroute: Option<Value>,
    /// Status reading: a partial player observation it must contain.
    #[serde(default)]
    pub observation: Option<Value>,
    /// Status reading: a partial reading (world, system, version) it must contain.
    #[serde(default)]
    pub reading: Option<Value>,
    /// A partial decision the decision must contain (operations other than routing).
    #[serde(default)]
    pub decision: Option<Value>,
    /// Preview only: per license (in order), the same expectations.
    #[serde(default)]
    pub licenses: Option<Vec<Expect>>,
    /// Preview only: note codes, in order.
    #[serde(default)]
    pub notes: Option<Vec<String>>,
    /// Admission only: whether the change is allowed.
    #[serde(default)]
    pub allowed: Option<bool>,
    /// Admission only: the denial's HTTP code (403 or 422).
    #[serde(default)]
    pub code: Option<u16>,
    /// Admission only: the denial causes' codes, in order.
    #[serde(default)]
    pub causes: Option<Vec<String>>,
    /// Admission only: how many warnings the response carries.
    #[serde(default)]
    pub admission_warnings: Option<usize>,
}

/// The corpus directory.
pub fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus")
}

/// Loads every case under `tests/corpus`, in path order.
pub fn load_cases() -> Vec<Case> {
    let dir = corpus_dir();
    let mut files = Vec::new();
    collect(&dir, &mut files);
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).unwrap_or_else(|e| fail(&path, &e.to_string()));
            let mut case: Case = serde_saphyr::from_str(&text).unwrap_or_else(|e| fail(&path, &e.to_string()));
            let rel = path.strip_prefix(&dir).unwrap_or(&path).with_extension("");
            case.name = rel.to_string_lossy().into_owned();
            case.path = path;
            case
        })
        .collect()
}

fn fail(path: &Path, why: &str) -> ! {
    panic!("corpus case {}: {why}", path.display())
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(&path, out);
        } else if path.extension().is_some_and(|e| e == "yaml")
            && path.file_name().is_some_and(|n| n != "DIVERGENCES.yaml")
        {
            out.push(path);
        }
    }
}

/// A runner that cannot express a case, and why.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Divergence {
    /// The case name (e.g. `routing/060-null-license`).
    pub case: String,
    /// The runner (`cli`, `npm`, ...).
    pub runner: String,
    /// Why.
    pub reason: String,
}

/// The listed divergences.
pub fn divergences() -> Vec<Divergence> {
    let path = corpus_dir().join("DIVERGENCES.yaml");
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    serde_saphyr::from_str::<Option<Vec<Divergence>>>(&text)
        .unwrap_or_else(|e| fail(&path, &e.to_string()))
        .unwrap_or_default()
}

/// Whether a divergence entry covers a case: its name, or `<area>/*` for every case of an area.
pub fn covers(pattern: &str, name: &str) -> bool {
    match pattern.strip_suffix("/*") {
        Some(area) => name.strip_prefix(area).is_some_and(|rest| rest.starts_with('/')),
        None => pattern == name,
    }
}

/// Whether `runner` is listed as unable to run `case`.
pub fn diverges(case: &Case, runner: &str) -> bool {
    divergences().iter().any(|d| covers(&d.case, &case.name) && d.runner == runner)
}

/// The call as JSON bytes.
pub fn call_bytes(case: &Case) -> Vec<u8> {
    serde_json::to_vec(&case.call).unwrap_or_default()
}

/// The data document as JSON bytes, if the case has one.
pub fn data_bytes(case: &Case) -> Option<Vec<u8>> {
    case.data.as_ref().map(|d| serde_json::to_vec(d).unwrap_or_default())
}

/// Checks an answer (`{"outcome": ..., ...}`) against the case; returns every mismatch.
pub fn check(case: &Case, answer: &Value) -> Result<(), Vec<String>> {
    let mut problems = Vec::new();
    let outcome = answer.get("outcome").and_then(Value::as_str).unwrap_or("(none)");
    if outcome != case.expect.outcome {
        problems.push(format!("outcome: expected {}, got {outcome}: {answer}", case.expect.outcome));
        return Err(problems);
    }
    if outcome == "failure" {
        let errors = answer.get("errors").and_then(Value::as_array).cloned().unwrap_or_default();
        if let Some(expected) = &case.expect.errors {
            let got: Vec<String> = errors
                .iter()
                .zip(expected)
                .map(|(e, want)| {
                    let code = e.get("code").and_then(Value::as_str).unwrap_or_default();
                    if want.contains('@') {
                        format!("{code}@{}", e.get("path").and_then(Value::as_str).unwrap_or_default())
                    } else {
                        code.to_owned()
                    }
                })
                .collect();
            if &got != expected || errors.len() != expected.len() {
                problems.push(format!("errors: expected {expected:?}, got {errors:?}"));
            }
        }
        for e in &errors {
            for key in ["code", "message", "path", "help"] {
                if e.get(key).and_then(Value::as_str).is_none() {
                    problems.push(format!("error without `{key}`: {e}"));
                }
            }
        }
        return if problems.is_empty() { Ok(()) } else { Err(problems) };
    }
    let decision = answer.get("decision").cloned().unwrap_or_default();
    if case.operation == "foundry/admission/review" {
        check_admission(case, &decision, &mut problems);
    } else if case.operation == "foundry/platform/preview" {
        let licenses = decision.get("licenses").and_then(Value::as_array).cloned().unwrap_or_default();
        if let Some(expected) = &case.expect.licenses {
            if expected.len() != licenses.len() {
                problems.push(format!("licenses: expected {}, got {}", expected.len(), licenses.len()));
            }
            for (i, (want, got)) in expected.iter().zip(&licenses).enumerate() {
                check_route(want, got, &mut problems, &format!("licenses[{i}]."));
            }
        }
        if let Some(notes) = &case.expect.notes {
            let got: Vec<&str> = decision
                .get("notes")
                .and_then(Value::as_array)
                .map(|n| n.iter().filter_map(|n| n.get("code").and_then(Value::as_str)).collect())
                .unwrap_or_default();
            if &got != notes {
                problems.push(format!("notes: expected {notes:?}, got {got:?}"));
            }
        }
    } else {
        check_route(&case.expect, &decision, &mut problems, "");
    }
    if let Some(want) = &case.expect.reroute {
        let got = match decision.get("reroute") {
            Some(r) if !r.is_null() => Value::String(format!("{}/{}", str_of(r, "namespace"), str_of(r, "name"))),
            _ => Value::Null,
        };
        if *want != got {
            problems.push(format!("reroute: expected {want}, got {got}"));
        }
    }
    if let Some(partial) = &case.expect.observation
        && !decision.get("observation").is_some_and(|o| contains(o, partial))
    {
        problems.push(format!("observation {} does not contain {partial}", decision["observation"]));
    }
    if let Some(partial) = &case.expect.reading
        && !contains(&decision, partial)
    {
        problems.push(format!("reading {decision} does not contain {partial}"));
    }
    if let Some(partial) = &case.expect.decision
        && !contains(&decision, partial)
    {
        problems.push(format!("decision {decision} does not contain {partial}"));
    }
    if problems.is_empty() { Ok(()) } else { Err(problems) }
}

fn check_admission(case: &Case, review: &Value, problems: &mut Vec<String>) {
    let want = &case.expect;
    let response = review.get("response").cloned().unwrap_or_default();
    if review.get("apiVersion").and_then(Value::as_str) != Some("admission.k8s.io/v1")
        || review.get("kind").and_then(Value::as_str) != Some("AdmissionReview")
    {
        problems.push(format!("not an admission.k8s.io/v1 AdmissionReview: {review}"));
    }
    if response.get("uid") != case.call.pointer("/request/uid") {
        problems.push(format!("response.uid does not echo request.uid: {response}"));
    }
    let allowed = response.get("allowed").and_then(Value::as_bool);
    if want.allowed.is_none() {
        problems.push("an admission case must say `allowed`".into());
    }
    if allowed != want.allowed {
        problems.push(format!("allowed: expected {:?}, got {allowed:?}: {response}", want.allowed));
    }
    let status = response.get("status");
    if allowed == Some(true) && status.is_some() {
        problems.push(format!("an allowed response carries a status: {response}"));
    }
    if let Some(code) = want.code {
        let got = status.and_then(|s| s.get("code")).and_then(Value::as_u64);
        if got != Some(u64::from(code)) {
            problems.push(format!("status.code: expected {code}, got {got:?}"));
        }
    }
    let causes: Vec<String> = status
        .and_then(|s| s.pointer("/details/causes"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|c| str_of(c, "reason"))
        .collect();
    if let Some(expected) = &want.causes
        && *expected != causes
    {
        problems.push(format!("causes: expected {expected:?}, got {causes:?}"));
    }
    if allowed == Some(false) {
        let message = status.and_then(|s| s.get("message")).and_then(Value::as_str).unwrap_or_default();
        if message.is_empty() {
            problems.push("a denial without status.message".into());
        }
    }
    if let Some(n) = want.admission_warnings {
        let got = response.get("warnings").and_then(Value::as_array).map_or(0, Vec::len);
        if got != n {
            problems.push(format!("warnings: expected {n}, got {got}: {response}"));
        }
    }
}

fn check_route(want: &Expect, d: &Value, problems: &mut Vec<String>, at: &str) {
    let text = |key: &str| d.get(key).and_then(Value::as_str).unwrap_or_default().to_owned();
    let mut eq = |what: &str, expected: &dyn std::fmt::Debug, got: &dyn std::fmt::Debug, same: bool| {
        if !same {
            problems.push(format!("{at}{what}: expected {expected:?}, got {got:?}"));
        }
    };
    if let Some(v) = &want.active_instance {
        eq("activeInstance", v, &text("activeInstance"), *v == text("activeInstance"));
    }
    if let Some(v) = &want.desired_instance {
        eq("desiredInstance", v, &text("desiredInstance"), *v == text("desiredInstance"));
    }
    let instances = d.get("instances").and_then(Value::as_array).cloned().unwrap_or_default();
    let field = |name: &str, key: &str| -> Option<Value> {
        instances.iter().find(|i| i.get("name").and_then(Value::as_str) == Some(name)).and_then(|i| i.get(key)).cloned()
    };
    if let Some(states) = &want.states {
        let got: BTreeMap<String, String> = instances.iter().map(|i| (str_of(i, "name"), str_of(i, "state"))).collect();
        eq("states", states, &got, *states == got);
        let order: Vec<String> = instances.iter().map(|i| str_of(i, "name")).collect();
        let mut sorted = order.clone();
        sorted.sort();
        eq("instance order", &sorted, &order, sorted == order);
    }
    for (name, reason) in want.reasons.iter().flatten() {
        let got = field(name, "reason");
        eq(&format!("reason of {name}"), reason, &got, got.as_ref().and_then(Value::as_str) == Some(reason));
    }
    for (name, backend) in want.backends.iter().flatten() {
        let got = field(name, "backend").map(|b| {
            format!("{}/{}:{}", str_of(&b, "namespace"), str_of(&b, "name"), b.get("port").cloned().unwrap_or_default())
        });
        eq(&format!("backend of {name}"), backend, &got, got.as_deref() == Some(backend.as_str()));
    }
    for (name, host) in want.hostnames.iter().flatten() {
        let got = field(name, "hostname");
        eq(&format!("hostname of {name}"), host, &got, got.as_ref().and_then(Value::as_str) == Some(host));
    }
    let warnings = d.get("warnings").and_then(Value::as_array).cloned().unwrap_or_default();
    if let Some(codes) = &want.warnings {
        let got: Vec<String> = warnings.iter().map(|w| str_of(w, "code")).collect();
        eq("warnings", codes, &got, *codes == got);
    }
    for (code, needle) in want.warning_texts.iter().flatten() {
        let got = warnings.iter().find(|w| str_of(w, "code") == *code).map(|w| str_of(w, "message"));
        eq(&format!("warning {code} text"), needle, &got, got.as_deref().is_some_and(|m| m.contains(needle.as_str())));
    }
    let status = d.get("status").cloned().unwrap_or_default();
    if let Some(v) = &want.pending_since {
        let got = status.get("pendingSince").cloned().unwrap_or_default();
        eq("status.pendingSince", v, &got, *v == got);
    }
    if let Some(v) = &want.player_check {
        let got = d.get("playerCheck").and_then(|p| p.get("instance")).cloned().unwrap_or(Value::Null);
        eq("playerCheck.instance", v, &got, *v == got);
    }
    if let Some(conditions) = &want.conditions {
        let got: BTreeMap<String, String> = status
            .get("conditions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|c| (str_of(c, "type"), format!("{}/{}", str_of(c, "status"), str_of(c, "reason"))))
            .collect();
        eq("conditions", conditions, &got, *conditions == got);
    }
    if let Some(files) = &want.files {
        let got: Vec<String> =
            d.get("files").and_then(Value::as_array).into_iter().flatten().map(|f| str_of(f, "path")).collect();
        eq("files", files, &got, *files == got);
    }
    let manifests = d.get("manifests").and_then(Value::as_array).cloned().unwrap_or_default();
    for partial in want.manifests_contain.iter().flatten() {
        if !manifests.iter().any(|m| contains(m, partial)) {
            problems.push(format!("{at}no manifest contains {partial}"));
        }
    }
    if let Some(partial) = &want.status
        && !contains(&status, partial)
    {
        problems.push(format!("{at}status {status} does not contain {partial}"));
    }
    for key in want.status_lacks.iter().flatten() {
        if status.get(key).is_some() {
            problems.push(format!("{at}status has `{key}`, which another writer owns: {status}"));
        }
    }
}

fn str_of(v: &Value, key: &str) -> String {
    v.get(key).and_then(Value::as_str).unwrap_or_default().to_owned()
}

/// Whether `actual` contains `expected`: objects by key (recursively), arrays element-wise with equal length,
/// scalars by equality.
pub fn contains(actual: &Value, expected: &Value) -> bool {
    match (actual, expected) {
        (Value::Object(a), Value::Object(e)) => e.iter().all(|(k, ev)| a.get(k).is_some_and(|av| contains(av, ev))),
        (Value::Array(a), Value::Array(e)) => a.len() == e.len() && a.iter().zip(e).all(|(av, ev)| contains(av, ev)),
        _ => actual == expected,
    }
}
