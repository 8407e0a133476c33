//! How decisions are shown: a table for people, JSON and YAML for programs.

use policy_core::preview::PreviewDecision;
use policy_core::{RouteDecision, yaml};
use serde_json::{Value, json};

/// `--output` formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// One table per license, then its warnings.
    Table,
    /// One JSON document.
    Json,
    /// The JSON document as YAML.
    Yaml,
}

/// Renders a preview in the chosen format (always ends with a newline).
pub fn render(decision: &PreviewDecision, format: OutputFormat) -> String {
    match format {
        OutputFormat::Table => table(decision),
        OutputFormat::Json => {
            let mut text = serde_json::to_string_pretty(&document(decision)).unwrap_or_default();
            text.push('\n');
            text
        }
        OutputFormat::Yaml => yaml::to_yaml(&document(decision)),
    }
}

/// The machine-readable document: `{"licenses": [...], "notes": [...]}`.
pub fn document(decision: &PreviewDecision) -> Value {
    json!({
        "licenses": decision.licenses.iter().map(license_document).collect::<Vec<_>>(),
        "notes": decision.notes,
    })
}

fn license_document(d: &RouteDecision) -> Value {
    json!({
        "namespace": d.license.namespace,
        "name": d.license.name,
        "activeInstance": d.active_instance,
        "desiredInstance": d.desired_instance,
        "instances": d.instances.iter().map(|i| json!({
            "name": i.name,
            "state": i.state.as_str(),
            "reason": i.reason,
            "backend": {"name": i.backend.name, "namespace": i.backend.namespace, "port": i.backend.port},
            "hostname": i.hostname,
        })).collect::<Vec<_>>(),
        "warnings": d.warnings,
        "status": d.status,
        "manifests": d.manifests,
    })
}

/// One block per license: a header line, the instance table, the warnings.
pub fn table(decision: &PreviewDecision) -> String {
    let mut out = String::new();
    for (i, d) in decision.licenses.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let or_none = |s: &str| if s.is_empty() { "(none)".to_owned() } else { s.to_owned() };
        out.push_str(&format!(
            "LICENSE {}/{}  active: {}  requested: {}\n",
            d.license.namespace,
            d.license.name,
            or_none(&d.active_instance),
            or_none(&d.desired_instance)
        ));
        let mut rows = vec![["INSTANCE", "STATE", "BACKEND", "HOSTNAME", "REASON"].map(str::to_owned)];
        for inst in &d.instances {
            let backend = if inst.backend.namespace == d.license.namespace {
                format!("{}:{}", inst.backend.name, inst.backend.port)
            } else {
                format!("{}/{}:{}", inst.backend.namespace, inst.backend.name, inst.backend.port)
            };
            rows.push([
                inst.name.clone(),
                inst.state.as_str().to_owned(),
                backend,
                inst.hostname.clone(),
                inst.reason.clone(),
            ]);
        }
        if d.instances.is_empty() {
            out.push_str("(no instances)\n");
        } else {
            out.push_str(&columns(&rows));
        }
        if !d.warnings.is_empty() {
            out.push_str("warnings:\n");
            for w in &d.warnings {
                out.push_str(&format!("  {}: {}\n", w.code, w.message));
            }
        }
    }
    out
}

fn columns(rows: &[[String; 5]]) -> String {
    let mut widths = [0usize; 5];
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (i, (cell, w)) in row.iter().zip(widths).enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<w$}  "));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}
