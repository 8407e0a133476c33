//! `host-runner kratix`: the program in the Kratix workflow containers of both Promises.
//!
//! It reads the Kratix environment and `/kratix/input/object.yaml`, picks the workflow (license configure,
//! instance configure, instance delete), asks the policy module for the decision, and writes
//! `/kratix/output/*` and `/kratix/metadata/status.yaml`. All I/O with the cluster goes through a [`Cluster`]
//! and all probes through a [`StatusFetcher`], so an offline run (a snapshot file and an observations file)
//! follows exactly the same path as a live one.
//!
//! Failure rules: the decision is complete before anything is written; outputs are replaced all at once; a
//! refused input writes no output (Kratix keeps the last good one) and publishes why on the object's status at
//! once, because Kratix applies `status.yaml` only when the pipeline succeeds.

use crate::cluster::{Cluster, StatusTarget};
use crate::error::{Located, RunError};
use crate::load;
use crate::output::{self, PlannedFile};
use crate::policy::{Policy, PolicyError};
use crate::probe::StatusFetcher;
use policy_core::Diagnostic;
use policy_core::api::instance::InstanceCall;
use policy_core::api::license::RouteCallRef;
use policy_core::api::{OutputFile, STATUS_FILE, Timestamp, namespace_of};
use policy_core::model::{INSTANCE_KIND, LICENSE_KIND};
use serde_json::{Value, json};
use std::borrow::Cow;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The three directories of the pipeline contract.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KratixDirs {
    /// Holds `object.yaml` (read-only in a pipeline).
    pub input: PathBuf,
    /// Files written here become the resource's Work.
    pub output: PathBuf,
    /// `status.yaml` written here is merged into the object's status.
    pub metadata: PathBuf,
}

/// The Kratix environment variables a workflow container gets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KratixEnv {
    /// `KRATIX_WORKFLOW_TYPE`: `resource` or `promise`.
    pub workflow_type: Option<String>,
    /// `KRATIX_WORKFLOW_ACTION`: `configure` or `delete`.
    pub action: Option<String>,
    /// `KRATIX_OBJECT_KIND`.
    pub kind: Option<String>,
    /// `KRATIX_CRD_PLURAL`.
    pub crd_plural: Option<String>,
    /// `KRATIX_DRY_RUN`: no side effects on the cluster.
    pub dry_run: bool,
    /// `FOUNDRY_RUNNER_IMAGE`: the image of the instances' player monitor sidecar (set by the Promise to its own
    /// pipeline image, so both stay the same).
    pub runner_image: Option<String>,
}

impl KratixEnv {
    /// Reads the variables through `get` (the process environment in production).
    pub fn read(get: impl Fn(&str) -> Option<String>) -> Self {
        let var = |k: &str| get(k).filter(|v| !v.is_empty());
        Self {
            workflow_type: var("KRATIX_WORKFLOW_TYPE"),
            action: var("KRATIX_WORKFLOW_ACTION"),
            kind: var("KRATIX_OBJECT_KIND"),
            crd_plural: var("KRATIX_CRD_PLURAL"),
            dry_run: var("KRATIX_DRY_RUN").is_some_and(|v| v.eq_ignore_ascii_case("true")),
            runner_image: var("FOUNDRY_RUNNER_IMAGE"),
        }
    }
}

/// The workflows this program runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workflow {
    /// Route a license's instances.
    LicenseConfigure,
    /// Configure an instance and have its license re-route.
    InstanceConfigure,
    /// An instance is being deleted: have its license re-route without it.
    InstanceDelete,
}

impl Workflow {
    /// Picks the workflow from the environment; without it (a local run), from the object's kind and `configure`.
    pub fn select(env: &KratixEnv, object_kind: &str) -> Result<Self, RunError> {
        if let Some(t) = env.workflow_type.as_deref().filter(|t| *t != "resource") {
            return Err(RunError::Usage(format!(
                "KRATIX_WORKFLOW_TYPE is `{t}`; only resource workflows are run by host-runner (the Promises \
                 declare no promise workflows)"
            )));
        }
        let kind = env.kind.as_deref().unwrap_or(object_kind);
        if kind != object_kind {
            return Err(RunError::Usage(format!(
                "KRATIX_OBJECT_KIND is `{kind}` but the input object is a `{object_kind}`"
            )));
        }
        match (kind, env.action.as_deref().unwrap_or("configure")) {
            (LICENSE_KIND, "configure") => Ok(Self::LicenseConfigure),
            (INSTANCE_KIND, "configure") => Ok(Self::InstanceConfigure),
            (INSTANCE_KIND, "delete") => Ok(Self::InstanceDelete),
            (kind, action) => Err(RunError::Usage(format!(
                "no `{action}` workflow for kind `{kind}`; host-runner runs FoundryLicense configure, \
                 FoundryInstance configure and FoundryInstance delete"
            ))),
        }
    }
}

/// Everything a workflow run uses.
pub struct Run<'a> {
    /// The policy.
    pub policy: &'a Policy,
    /// The cluster (live or snapshot).
    pub cluster: &'a dyn Cluster,
    /// The status fetcher (live or none).
    pub fetcher: &'a dyn StatusFetcher,
    /// The directories.
    pub dirs: KratixDirs,
    /// The environment.
    pub env: KratixEnv,
    /// The observations to start from (any known player counts).
    pub observations: Value,
    /// The time of the decision (RFC 3339).
    pub now: String,
    /// The operator's release catalog (`null`: the shipped one).
    pub catalog: Value,
}

impl std::fmt::Debug for Run<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Run").field("dirs", &self.dirs).field("env", &self.env).finish_non_exhaustive()
    }
}

/// What a successful run did, for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// One line per fact, for `kubectl logs`.
    pub lines: Vec<String>,
}

/// The observations to start from and the time of the decision: the file's content (if any), with `now` from the
/// clock when it has none.
pub fn base_observations(file: Option<&Path>, clock: Timestamp) -> Result<(Value, String), RunError> {
    crate::preview::read_observations(file, clock)
}

/// Reads `object.yaml`: exactly one object.
fn read_object(dirs: &KratixDirs) -> Result<Value, RunError> {
    let path = dirs.input.join("object.yaml");
    let mut objects = load::load_file(&path)?;
    match (objects.len(), objects.pop()) {
        (1, Some(object)) => Ok(object.value),
        (n, _) => Err(RunError::Usage(format!("`{}` holds {n} objects; Kratix writes exactly one", path.display()))),
    }
}

impl Run<'_> {
    /// Runs the workflow the environment and the input object call for.
    pub fn execute(&self, log: &mut dyn Write) -> Result<Summary, RunError> {
        let object = read_object(&self.dirs)?;
        let kind = object.get("kind").and_then(Value::as_str).unwrap_or_default().to_owned();
        let workflow = Workflow::select(&self.env, &kind)?;
        let result = match workflow {
            Workflow::LicenseConfigure => self.license_configure(&object),
            Workflow::InstanceConfigure | Workflow::InstanceDelete => self.instance(&object, workflow),
        };
        match result {
            Err(RunError::Invalid(problems)) => {
                self.publish_refusal(&object, &problems, log);
                Err(RunError::Invalid(problems))
            }
            other => other,
        }
    }

    fn license_configure(&self, license: &Value) -> Result<Summary, RunError> {
        let namespace = namespace_of(license);
        let instances = self.cluster.list_instances(namespace)?;
        // The other licenses, for hostnames an older one already publishes; their instances only when needed.
        let others = self.cluster.list_licenses()?;
        let mut other_instances: Option<Vec<Cow<'_, Value>>> = None;
        let mut observations = self.observations.clone();
        // Serialised straight from the objects (no copy of thousands of instances as a second `Value`).
        let route = |observations: &Value, other_instances: Option<&[Cow<'_, Value>]>| {
            self.located(self.policy.route(&RouteCallRef {
                license,
                instances: &instances,
                observations,
                now: &self.now,
                other_licenses: Some(&others),
                other_instances,
            }))
        };
        let mut decision = route(&observations, None)?;
        let mut lines = Vec::new();
        // Hostname claims need the instances of older licenses sharing the base domain: read them and decide again.
        if let Some(check) = decision.claim_check.clone().filter(|c| !c.observed) {
            let mut read = Vec::new();
            for ns in &check.namespaces {
                read.extend(self.cluster.list_instances(ns)?);
            }
            lines.push(format!("read the instances of {} for hostname claims", check.namespaces.join(", ")));
            other_instances = Some(read);
            decision = route(&observations, other_instances.as_deref())?;
        }
        // The gate needed a player count nobody measured: probe that one instance (once) and decide again.
        if let Some(check) = decision.player_check.clone().filter(|c| !c.observed)
            && let Some(fetch) = self.fetcher.fetch(&check.url, &check.instance, &check.namespace)
        {
            let reading = self.located(self.policy.observe(&fetch))?;
            lines.push(match (&reading.observation.connected, &reading.observation.error) {
                (Some(n), _) => format!("probed {}: {n} connected", check.url),
                (None, Some(e)) => format!("probed {}: player count unknown ({e})", check.url),
                (None, None) => format!("probed {}", check.url),
            });
            if let Some(players) = observations.get_mut("players").and_then(Value::as_array_mut) {
                players.push(serde_json::to_value(&reading.observation)?);
            } else if let Some(map) = observations.as_object_mut() {
                map.insert("players".into(), json!([reading.observation]));
            } else {
                observations = json!({"players": [reading.observation]});
            }
            decision = route(&observations, other_instances.as_deref())?;
        }
        let files = std::mem::take(&mut decision.files);
        let written = files.len();
        self.write(files, &decision.status_yaml)?;
        let r = &decision.license;
        let active = if decision.active_instance.is_empty() { "(none)" } else { &decision.active_instance };
        lines.insert(
            0,
            format!(
                "{r}: active {active}, requested {}; wrote {} files",
                if decision.desired_instance.is_empty() { "(none)" } else { &decision.desired_instance },
                written
            ),
        );
        lines.extend(decision.warnings.iter().map(|w| format!("warning[{}]: {}", w.code, w.message)));
        // Each instance's status says how the license routes it; instances configured against an older license
        // spec (or a slot that changed hands) run their workflow again.
        for update in &decision.route_statuses {
            if self.env.dry_run {
                lines.push(format!(
                    "dry run: {}'s status not set to {}",
                    update.instance,
                    update.status.route_state.as_str()
                ));
                continue;
            }
            let status = serde_json::to_value(&update.status)?;
            self.cluster.patch_instance_status(&r.namespace, &update.instance, &status)?;
            lines.push(format!("set {}'s route state to {}", update.instance, update.status.route_state.as_str()));
        }
        for name in &decision.reconfigure {
            if self.env.dry_run {
                lines.push(format!("dry run: {name} not asked to reconfigure"));
                continue;
            }
            self.cluster.touch_instance(&r.namespace, name)?;
            lines.push(format!("asked {name} to reconfigure (the license changed what it was configured against)"));
        }
        Ok(Summary { lines })
    }

    fn instance(&self, instance: &Value, workflow: Workflow) -> Result<Summary, RunError> {
        let namespace = namespace_of(instance);
        let license_name = instance.pointer("/spec/licenseRef/name").and_then(Value::as_str).unwrap_or_default();
        let license = match license_name {
            "" => None,
            name => self.cluster.get_license(namespace, name)?,
        };
        // Admission, copies and shares look at the license's other instances; a deletion needs none of that.
        let instances = match workflow {
            Workflow::InstanceConfigure => self.cluster.list_instances(namespace)?,
            _ => Vec::new(),
        };
        // The running workload, whose data place a configure run must keep (a deletion leaves it to Kratix).
        let workload = match workflow {
            Workflow::InstanceConfigure => {
                let name = instance.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
                self.cluster.get_workload(namespace, &format!("foundry-{name}"))?.unwrap_or(Value::Null)
            }
            _ => Value::Null,
        };
        let call = InstanceCall {
            workload,
            instance: instance.clone(),
            license: license.unwrap_or(Value::Null),
            instances: instances.into_iter().map(std::borrow::Cow::into_owned).collect(),
            now: Some(self.now.clone()),
            catalog: self.catalog.clone(),
            runner_image: self.env.runner_image.clone(),
        };
        let mut decision = match workflow {
            Workflow::InstanceDelete => self.located(self.policy.delete(&call))?,
            _ => self.located(self.policy.configure(&call))?,
        };
        drop(call);
        if workflow == Workflow::InstanceDelete {
            // Kratix ignores the output of delete workflows; only the status is written.
            output::write_file_atomic(&self.dirs.metadata.join(STATUS_FILE), decision.status_yaml.as_bytes())?;
        } else {
            self.write(std::mem::take(&mut decision.files), &decision.status_yaml)?;
        }
        let mut lines = vec![format!("{}: {}", decision.instance, decision.status.message)];
        lines.extend(decision.warnings.iter().map(|w| format!("warning[{}]: {}", w.code, w.message)));
        match (&decision.reroute, self.env.dry_run) {
            (Some(license), false) => {
                self.cluster.touch_license(&license.namespace, &license.name)?;
                lines.push(format!("asked {license} to re-route"));
            }
            (Some(license), true) => lines.push(format!("dry run: {license} not asked to re-route")),
            (None, _) => {}
        }
        Ok(Summary { lines })
    }

    /// A policy refusal becomes [`RunError::Invalid`], located in the input object.
    fn located<T>(&self, result: Result<T, PolicyError>) -> Result<T, RunError> {
        result.map_err(|e| match e {
            PolicyError::Engine(e) => RunError::Policy(e),
            PolicyError::Refused(diagnostics) => {
                let source = self.dirs.input.join("object.yaml");
                RunError::Invalid(
                    diagnostics.into_iter().map(|d| Located { diagnostic: d, source: Some(source.clone()) }).collect(),
                )
            }
        })
    }

    /// Replaces the output directory's content and the status together, or neither (see `output`).
    fn write(&self, files: Vec<OutputFile>, status_yaml: &str) -> Result<(), RunError> {
        let planned: Vec<PlannedFile> =
            files.into_iter().map(|f| PlannedFile { path: f.path, content: f.content.into_bytes() }).collect();
        check_status(status_yaml)?;
        output::replace_output_and_status(
            &self.dirs.output,
            &planned,
            &self.dirs.metadata.join(STATUS_FILE),
            status_yaml.as_bytes(),
        )
    }

    /// Publishes why the input was refused on the object's status (best effort: the run fails either way).
    fn publish_refusal(&self, object: &Value, problems: &[Located], log: &mut dyn Write) {
        if self.env.dry_run {
            return;
        }
        let Some(target) = status_target(object, self.env.crd_plural.as_deref()) else { return };
        let errors: Vec<&Diagnostic> = problems.iter().map(|p| &p.diagnostic).collect();
        let first = errors.first().map(|d| format!("{}: {}", d.code, d.message)).unwrap_or_default();
        let status = json!({"message": format!("refused: {first}"), "inputErrors": errors});
        if let Err(e) = self.cluster.publish_status(&target, &status) {
            let _ = writeln!(log, "warning: could not publish the refusal on the status: {e}");
        }
    }
}

fn status_target(object: &Value, plural: Option<&str>) -> Option<StatusTarget> {
    let (group, version) = object.get("apiVersion").and_then(Value::as_str)?.split_once('/')?;
    let name = object.pointer("/metadata/name").and_then(Value::as_str)?;
    let plural = match (plural, object.get("kind").and_then(Value::as_str)) {
        (Some(p), _) => p.to_owned(),
        (None, Some(LICENSE_KIND)) => "foundrylicenses".into(),
        (None, Some(INSTANCE_KIND)) => "foundryinstances".into(),
        _ => return None,
    };
    Some(StatusTarget {
        group: group.into(),
        version: version.into(),
        plural,
        namespace: namespace_of(object).to_owned(),
        name: name.into(),
    })
}

/// Kratix fails the pipeline on a top-level `kratix` key in `status.yaml`; refuse it before writing anything.
fn check_status(status_yaml: &str) -> Result<(), RunError> {
    if status_yaml.lines().any(|l| l.starts_with("kratix:")) {
        return Err(RunError::Internal("the status has the reserved top-level key `kratix`".into()));
    }
    Ok(())
}

impl From<serde_json::Error> for RunError {
    fn from(e: serde_json::Error) -> Self {
        RunError::Internal(format!("JSON: {e}"))
    }
}
