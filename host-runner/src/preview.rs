//! `host-runner preview`: decide every license in a set of files, with no cluster.
//!
//! Reads the objects, adds the observations (or the clock and unknown player counts), asks the policy module for
//! the platform preview, and prints it or writes each license's Kratix output exactly as the pipeline would.

use crate::error::{Located, RunError};
use crate::load::{self, Loaded};
use crate::output::{self, PlannedFile};
use crate::policy::{Policy, PolicyError};
use crate::render::{self, OutputFormat};
use policy_core::Diagnostic;
use policy_core::api::preview::{PreviewCall, PreviewDecision};
use policy_core::api::{STATUS_FILE, Timestamp};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

/// What to preview and how to show it.
#[derive(Debug, Clone)]
pub struct PreviewOptions {
    /// Files or directories of Kubernetes objects.
    pub paths: Vec<PathBuf>,
    /// The observations file (`now`, `players`).
    pub observations: Option<PathBuf>,
    /// Output format.
    pub output: OutputFormat,
    /// Where to write each license's and instance's Kratix output.
    pub out_dir: Option<PathBuf>,
    /// The operator's release catalog (`null`: the shipped one).
    pub catalog: Value,
}

/// Runs the preview; prints the result to `stdout` and notes to `stderr`.
pub fn run(
    policy: &Policy,
    options: &PreviewOptions,
    clock: Timestamp,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> Result<PreviewDecision, RunError> {
    let objects = load::load_paths(&options.paths)?;
    let observations = read_observations(options.observations.as_deref(), clock)?;
    let decision = decide(policy, &objects, observations, &options.catalog, options.observations.as_deref())?;
    let sources = Sources::new(&objects);
    for note in &decision.notes {
        let source = sources.of(&note.object.kind, &note.object.namespace, &note.object.name);
        let at = source.map(|s| format!(" (in `{}`)", s.display())).unwrap_or_default();
        let _ = writeln!(stderr, "note[{}]: {}{at}", note.code, note.message);
    }
    if let Some(dir) = &options.out_dir {
        write_out_dir(dir, &decision)?;
    }
    stdout
        .write_all(render::render(&decision, options.output).as_bytes())
        .map_err(|e| RunError::Output { path: "<stdout>".into(), reason: e.to_string() })?;
    Ok(decision)
}

/// Asks the policy for the platform preview of `objects`.
pub fn decide(
    policy: &Policy,
    objects: &[Loaded],
    (observations, now): (Value, String),
    catalog: &Value,
    observations_file: Option<&Path>,
) -> Result<PreviewDecision, RunError> {
    let call = PreviewCall {
        objects: objects.iter().map(|o| o.value.clone()).collect(),
        observations,
        now: Some(now),
        catalog: catalog.clone(),
    };
    policy.preview(&call).map_err(|e| match e {
        PolicyError::Engine(e) => RunError::Policy(e),
        PolicyError::Refused(diagnostics) => located(objects, observations_file, diagnostics),
    })
}

/// The refusal of a preview, each problem with the file it came from.
fn located(objects: &[Loaded], observations_file: Option<&Path>, diagnostics: Vec<Diagnostic>) -> RunError {
    let sources = Sources::new(objects);
    RunError::Invalid(
        diagnostics
            .into_iter()
            .map(|d| {
                let source = match &d.object {
                    Some(o) => sources.of(&o.kind, &o.namespace, &o.name).map(Path::to_path_buf),
                    None if d.path.starts_with("observations") || d.path == "now" => {
                        observations_file.map(Path::to_path_buf)
                    }
                    None => None,
                };
                Located { diagnostic: d, source }
            })
            .collect(),
    )
}

/// Reads an observations file as people write it (`now` and `players`) into the call's observations and its
/// `now`: the file's time when it gives one, else the clock's.
pub fn read_observations(path: Option<&Path>, clock: Timestamp) -> Result<(Value, String), RunError> {
    let doc = match path {
        None => json!({}),
        Some(path) => {
            let bytes = std::fs::read(path)
                .map_err(|e| load::LoadError::Io { path: path.to_path_buf(), reason: e.to_string() })?;
            load::parse_observations(path, &bytes)?
        }
    };
    let (observations, now) = policy_core::documents::split_observations(doc, &clock.to_string());
    match now {
        Value::String(now) => Ok((observations, now)),
        _ => Err(load::LoadError::ObservationTime { path: path.map(Path::to_path_buf).unwrap_or_default() }.into()),
    }
}

/// The file each object came from, by (kind, namespace, name); the first file wins, as in reading order. An index,
/// so that naming the file of every note or error stays linear in the number of objects.
struct Sources<'a>(BTreeMap<(&'a str, &'a str, &'a str), &'a Path>);

impl<'a> Sources<'a> {
    fn new(objects: &'a [Loaded]) -> Self {
        let mut index = BTreeMap::new();
        for o in objects {
            let meta = o.value.get("metadata");
            let field = |k: &str| meta.and_then(|m| m.get(k)).and_then(Value::as_str).unwrap_or_default();
            index.entry((o.kind(), field("namespace"), field("name"))).or_insert(o.source.as_path());
        }
        Self(index)
    }

    fn of(&self, kind: &str, namespace: &str, name: &str) -> Option<&'a Path> {
        self.0.get(&(kind, namespace, name)).copied()
    }
}

/// Writes, per license and per instance, `<dir>/<namespace>/<plural>/<name>/output/*` and `.../metadata/status.yaml`,
/// as the Kratix workflows of each would: each `<name>` directory (output and status together) in one step.
pub fn write_out_dir(dir: &Path, decision: &PreviewDecision) -> Result<(), RunError> {
    let licenses = decision.licenses.iter().map(|d| ("foundrylicenses", &d.license, &d.files, &d.status_yaml));
    let instances = decision.instances.iter().map(|d| ("foundryinstances", &d.instance, &d.files, &d.status_yaml));
    for (plural, object, files, status_yaml) in licenses.chain(instances) {
        let base = dir.join(&object.namespace).join(plural).join(&object.name);
        let mut planned: Vec<PlannedFile> = files
            .iter()
            .map(|f| PlannedFile { path: format!("output/{}", f.path), content: f.content.clone().into_bytes() })
            .collect();
        planned
            .push(PlannedFile { path: format!("metadata/{STATUS_FILE}"), content: status_yaml.clone().into_bytes() });
        output::replace_dir_tree(&base, &planned, &["output", "metadata"])?;
    }
    Ok(())
}
