//! How decisions are shown: a table for people, JSON and YAML for programs.

use policy_core::api::catalog::CatalogListing;
use policy_core::api::instance::InstanceDecision;
use policy_core::api::license::RouteDecision;
use policy_core::api::preview::PreviewDecision;
use policy_core::api::to_yaml;
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
        OutputFormat::Yaml => to_yaml(&document(decision)),
    }
}

/// The machine-readable document: `{"licenses": [...], "instances": [...], "notes": [...]}`.
pub fn document(decision: &PreviewDecision) -> Value {
    json!({
        "licenses": decision.licenses.iter().map(license_document).collect::<Vec<_>>(),
        "instances": decision.instances.iter().map(instance_document).collect::<Vec<_>>(),
        "notes": decision.notes,
    })
}

fn instance_document(d: &InstanceDecision) -> Value {
    let s = &d.status;
    json!({
        "namespace": d.instance.namespace,
        "name": d.instance.name,
        "license": s.license,
        "admitted": s.admitted,
        "resolvedVersion": s.resolved_version,
        "image": s.image,
        "storage": s.storage,
        "volumes": s.volumes,
        "warnings": d.warnings,
        "status": d.status,
        "manifests": d.manifests,
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
    if !decision.instances.is_empty() {
        out.push('\n');
        out.push_str(&instance_table(&decision.instances));
    }
    out
}

/// One row per instance workload: version, storage, volume modes, and its state.
fn instance_table(instances: &[InstanceDecision]) -> String {
    let mut rows = vec![["WORKLOAD", "FOUNDRY", "STORAGE", "WORLDS", "MODULES", "STATE"].map(str::to_owned)];
    let text = |v: Option<&str>| v.unwrap_or("-").to_owned();
    for d in instances {
        let s = &d.status;
        let volume = |kind: &str| text(s.volumes.as_ref().and_then(|v| v.get(kind)).map(|v| v.mode.as_str()));
        rows.push([
            format!("{}/{}", d.instance.namespace, d.instance.name),
            text(s.resolved_version.as_deref()),
            text(s.storage.as_ref().map(|st| st.location.as_str())),
            volume("worlds"),
            volume("modules"),
            text(s.conditions.first().map(|c| c.reason.as_str())),
        ]);
    }
    let mut out = columns(&rows);
    for d in instances {
        for w in &d.warnings {
            out.push_str(&format!("  {}: {}: {}\n", d.instance.name, w.code, w.message));
        }
    }
    out
}

/// Rows as aligned columns (the last one unpadded).
pub(crate) fn columns<const N: usize>(rows: &[[String; N]]) -> String {
    let mut widths = [0usize; N];
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

/// The release catalog: a table of releases, or the listing as JSON/YAML.
pub fn catalog(listing: &CatalogListing, format: OutputFormat) -> String {
    let doc = serde_json::to_value(listing).unwrap_or_default();
    match format {
        OutputFormat::Json => {
            let mut text = serde_json::to_string_pretty(&doc).unwrap_or_default();
            text.push('\n');
            text
        }
        OutputFormat::Yaml => to_yaml(&doc),
        OutputFormat::Table => {
            let mut out =
                format!("IMAGE {}\nlatest -> {}\n", listing.image, listing.latest.as_deref().unwrap_or("(none)"));
            for (channel, release) in &listing.channels {
                out.push_str(&format!("{channel} -> {release}\n"));
            }
            let mut rows = vec![["RELEASE".to_owned(), "CHANNEL".to_owned()]];
            for (version, channel) in &listing.releases {
                let channel = serde_json::to_value(channel).ok().and_then(|c| c.as_str().map(str::to_owned));
                rows.push([version.clone(), channel.unwrap_or_default()]);
            }
            out.push_str(&columns(&rows));
            out
        }
    }
}
