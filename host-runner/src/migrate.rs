//! `host-runner migrate`: the existing platform's objects, read from files, rewritten in this platform's format by
//! the policy's `foundry/platform/migrate`, each change shown; `--out` writes the migrated objects, one file each.

use crate::error::{Located, RunError};
use crate::kube::{KubeClient, Resource};
use crate::load::Loaded;
use crate::output::{self, PlannedFile};
use crate::policy::{Policy, PolicyError};
use crate::render::OutputFormat;
use policy_core::api::migrate::{ChangeAction, LegacySettings, MigrateCall, Migration};
use policy_core::api::{namespace_of, to_yaml};
use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};

/// What to migrate and how to show it.
#[derive(Debug, Clone)]
pub struct MigrateOptions {
    /// The existing platform's objects, from files or from the cluster.
    pub objects: Vec<Loaded>,
    /// Its pipeline settings.
    pub settings: LegacySettings,
    /// Output format of the report.
    pub output: OutputFormat,
    /// Where to write the migrated objects (`<DIR>/<namespace>/<plural>/<name>.yaml`).
    pub out_dir: Option<PathBuf>,
}

/// Runs the migration; prints the report to `stdout`.
pub fn run(policy: &Policy, options: &MigrateOptions, stdout: &mut dyn Write) -> Result<Migration, RunError> {
    let objects = &options.objects;
    let call =
        MigrateCall { objects: objects.iter().map(|o| o.value.clone()).collect(), settings: options.settings.clone() };
    let migration = policy.migrate(&call).map_err(|e| match e {
        PolicyError::Engine(e) => RunError::Policy(e),
        PolicyError::Refused(diagnostics) => RunError::Invalid(
            diagnostics
                .into_iter()
                .map(|d| {
                    let source = d.object.as_ref().and_then(|o| {
                        objects
                            .iter()
                            .find(|l| l.kind() == o.kind && l.id() == format!("{}/{}", o.namespace, o.name))
                            .map(|l| l.source.clone())
                    });
                    Located { diagnostic: d, source }
                })
                .collect(),
        ),
    })?;
    if let Some(dir) = &options.out_dir {
        write_out_dir(dir, &migration)?;
    }
    stdout
        .write_all(render(&migration, options.output).as_bytes())
        .map_err(|e| RunError::Output { path: "<stdout>".into(), reason: e.to_string() })?;
    Ok(migration)
}

/// Where objects read from the cluster say they came from.
pub const LIVE_SOURCE: &str = "<cluster>";

/// The existing platform's objects as the cluster holds them: every license, instance and (when its CRD is
/// installed) FoundryPassword, in every namespace.
pub async fn read_live(client: &KubeClient) -> Result<Vec<Loaded>, RunError> {
    let mut values = client.list(Resource::License, None).await?;
    values.extend(client.list(Resource::Instance, None).await?);
    values.extend(client.list_legacy_passwords().await?);
    Ok(values.into_iter().map(|value| Loaded { source: PathBuf::from(LIVE_SOURCE), value }).collect())
}

/// The file of each migrated object, relative to the output directory.
pub fn file_of(object: &Value) -> String {
    let plural = match object.get("kind").and_then(Value::as_str) {
        Some("FoundryLicense") => "foundrylicenses",
        _ => "foundryinstances",
    };
    let name = object.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
    format!("{}/{plural}/{name}.yaml", namespace_of(object))
}

/// Replaces the content of `dir` with the migrated objects, all or nothing.
pub fn write_out_dir(dir: &Path, migration: &Migration) -> Result<(), RunError> {
    let files: Vec<PlannedFile> =
        migration.objects.iter().map(|o| PlannedFile { path: file_of(o), content: to_yaml(o).into_bytes() }).collect();
    output::replace_dir_contents(dir, &files)
}

/// The report in the chosen format (always ends with a newline).
pub fn render(migration: &Migration, format: OutputFormat) -> String {
    match format {
        OutputFormat::Json => {
            let mut text = serde_json::to_string_pretty(migration).unwrap_or_default();
            text.push('\n');
            text
        }
        OutputFormat::Yaml => to_yaml(&serde_json::to_value(migration).unwrap_or_default()),
        OutputFormat::Table => table(migration),
    }
}

fn table(migration: &Migration) -> String {
    let mut rows = vec![["OBJECT".to_owned(), "FIELD".to_owned(), "CHANGE".to_owned(), "WHY".to_owned()]];
    for c in &migration.changes {
        let object = format!("{} {}/{}", c.object.kind, c.object.namespace, c.object.name);
        rows.push([object, c.path.clone(), c.action.as_str().to_owned(), c.detail.clone()]);
    }
    let mut out = crate::render::columns(&rows);
    out.push('\n');
    let mut places = vec![["INSTANCE".to_owned(), "DATA BEFORE".to_owned(), "DATA AFTER".to_owned()]];
    for l in &migration.locations {
        let after = match &l.after {
            Some(a) if *a == l.before => "same".to_owned(),
            Some(a) => a.clone(),
            None => "(not written: action required)".to_owned(),
        };
        places.push([format!("{}/{}", l.object.namespace, l.object.name), l.before.clone(), after]);
    }
    out.push_str(&crate::render::columns(&places));
    let blocked = migration.changes.iter().filter(|c| c.action == ChangeAction::ActionRequired).count();
    out.push_str(&format!(
        "\n{} objects migrated, {} changes, {} need an operator's action{}\n",
        migration.objects.len(),
        migration.changes.iter().filter(|c| c.action != ChangeAction::Note).count(),
        migration.action_required,
        if blocked > 0 { " (see `action required` above)" } else { "" }
    ));
    out
}
