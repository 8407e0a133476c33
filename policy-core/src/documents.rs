//! Reading Kubernetes objects and observations from YAML text (feature `yaml-input`).
//!
//! One reader for every front end that takes YAML from people: `host-runner` (files) and the browser preview
//! (text areas) both call it, so they accept the same documents and see the same objects. JSON is YAML. `List`
//! documents (`kubectl get -o yaml`) are expanded, empty documents are skipped, and objects without a namespace
//! get `default`, as `kubectl` does. The YAML reader's own budget guards against alias bombs and deep nesting.
//!
//! It must not touch files or know their size limits: text in, values out; where the text came from is the
//! caller's business (and its error messages).

use crate::model::DEFAULT_NAMESPACE;
use serde_json::Value;

/// Why a text could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DocumentError {
    /// The text is not valid YAML, or exceeds the reader's budget.
    #[error("not valid YAML: {detail}")]
    Yaml {
        /// What the reader said, on one line.
        detail: String,
    },
    /// A document is not a Kubernetes object (or not a mapping, for observations).
    #[error("document {index} is not a Kubernetes object (a mapping with `kind` and `metadata`)")]
    NotAnObject {
        /// Document index, from 1.
        index: usize,
    },
    /// The observations are not one mapping.
    #[error("the observations must be one mapping with `now` and `players`")]
    NotObservations,
}

impl DocumentError {
    /// Stable machine code (the same codes `host-runner` reports for files).
    pub fn code(&self) -> &'static str {
        match self {
            Self::Yaml { .. } => "InputInvalidYaml",
            Self::NotAnObject { .. } => "InputNotAnObject",
            Self::NotObservations => "InputNotAnObject",
        }
    }
}

/// Parses every YAML document of a text.
pub fn parse_documents(text: &str) -> Result<Vec<Value>, DocumentError> {
    serde_saphyr::from_multiple::<Value>(text).map_err(|e| DocumentError::Yaml { detail: one_line(&e.to_string()) })
}

/// The Kubernetes objects of a text, in document order.
pub fn read_objects(text: &str) -> Result<Vec<Value>, DocumentError> {
    let mut out = Vec::new();
    for (i, doc) in parse_documents(text)?.into_iter().enumerate() {
        match doc {
            Value::Null => {}
            Value::Object(_) => expand(i + 1, doc, &mut out)?,
            _ => return Err(DocumentError::NotAnObject { index: i + 1 }),
        }
    }
    Ok(out)
}

/// The observations document of a text: exactly one mapping.
pub fn read_observations(text: &str) -> Result<Value, DocumentError> {
    let mut docs = parse_documents(text)?;
    match (docs.len(), docs.pop()) {
        (1, Some(v @ Value::Object(_))) => Ok(v),
        _ => Err(DocumentError::NotObservations),
    }
}

/// Splits an observations document as people write it (`now` and `players`, see `examples/observations.yaml`) into
/// the call's `now` and its `observations`: the document's `now` when it gives one, else `default_now` (the
/// caller's clock stands in, as in a live run).
pub fn split_observations(mut observations: Value, default_now: &str) -> (Value, Value) {
    let now = observations.as_object_mut().and_then(|map| map.remove("now"));
    (observations, now.unwrap_or_else(|| Value::String(default_now.to_owned())))
}

fn one_line(text: &str) -> String {
    let line = text.lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join("; ");
    line.chars().take(400).collect()
}

fn expand(index: usize, mut doc: Value, out: &mut Vec<Value>) -> Result<(), DocumentError> {
    let kind = doc.get("kind").and_then(Value::as_str).unwrap_or_default();
    if kind == "List" || (kind.ends_with("List") && doc.get("items").is_some()) {
        let items = match doc.get_mut("items").map(Value::take) {
            Some(Value::Array(items)) => items,
            _ => return Err(DocumentError::NotAnObject { index }),
        };
        for item in items {
            if !item.is_object() {
                return Err(DocumentError::NotAnObject { index });
            }
            out.push(with_namespace(item));
        }
        return Ok(());
    }
    if doc.get("kind").is_none() {
        return Err(DocumentError::NotAnObject { index });
    }
    out.push(with_namespace(doc));
    Ok(())
}

fn with_namespace(mut value: Value) -> Value {
    if let Some(meta) = value.get_mut("metadata").and_then(Value::as_object_mut)
        && meta.get("namespace").and_then(Value::as_str).is_none_or(str::is_empty)
    {
        meta.insert("namespace".into(), Value::String(DEFAULT_NAMESPACE.into()));
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_are_expanded_and_namespaces_defaulted() {
        let text = "kind: List\nitems:\n- {kind: FoundryInstance, metadata: {name: a}}\n---\n---\nkind: FoundryLicense\n\
                    metadata: {name: l, namespace: games}\n";
        let objects = read_objects(text).unwrap();
        assert_eq!(objects.len(), 2);
        assert_eq!(objects[0]["metadata"]["namespace"], "default");
        assert_eq!(objects[1]["metadata"]["namespace"], "games");
        assert_eq!(read_objects("- a\n").unwrap_err(), DocumentError::NotAnObject { index: 1 });
        assert_eq!(read_objects("{kind: [").unwrap_err().code(), "InputInvalidYaml");
    }

    #[test]
    fn observations_are_one_mapping_and_get_a_default_now() {
        let (o, now) = split_observations(read_observations("players: []\n").unwrap(), "2026-01-01T00:00:00Z");
        assert_eq!(now, "2026-01-01T00:00:00Z");
        assert_eq!(o, serde_json::json!({"players": []}));
        let (kept, now) = split_observations(read_observations("now: '2026-11-22T18:30:00Z'\n").unwrap(), "x");
        assert_eq!(now, "2026-11-22T18:30:00Z");
        assert_eq!(kept, serde_json::json!({}));
        assert_eq!(read_observations("a: 1\n---\nb: 2\n").unwrap_err(), DocumentError::NotObservations);
    }
}
