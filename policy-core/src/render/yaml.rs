//! A small, deterministic YAML writer for JSON values.
//!
//! Manifests and `status.yaml` are rendered here, inside the policy, so every host (the pipeline, the CLI, the
//! browser) writes byte-identical files. Only what JSON can express is needed: maps (keys in sorted order, as
//! `serde_json::Map` keeps them), sequences and scalars. A string is written plain only when no YAML 1.1 or 1.2
//! reader (go-yaml inside Kubernetes included) could take it for anything but that string; everything else is
//! double-quoted with JSON escapes, which YAML's double-quoted style accepts.

use serde_json::Value;
use std::fmt::Write as _;

/// Renders `value` as a YAML document (no `---` marker, ends with a newline).
pub fn to_yaml(value: &Value) -> String {
    let mut out = String::new();
    match value {
        Value::Object(map) if !map.is_empty() => write_map(&mut out, map, 0),
        Value::Array(items) if !items.is_empty() => write_seq(&mut out, items, 0),
        scalar => {
            write_scalar(&mut out, scalar);
            out.push('\n');
        }
    }
    out
}

fn indent(out: &mut String, n: usize) {
    out.extend(std::iter::repeat_n(' ', n));
}

fn write_map(out: &mut String, map: &serde_json::Map<String, Value>, level: usize) {
    for (key, value) in map {
        indent(out, level);
        write_string(out, key);
        out.push(':');
        write_child(out, value, level);
    }
}

fn write_seq(out: &mut String, items: &[Value], level: usize) {
    for item in items {
        indent(out, level);
        out.push('-');
        match item {
            Value::Object(map) if !map.is_empty() => {
                // The first entry shares the dash line; the rest align under it.
                out.push(' ');
                let mut first = true;
                for (key, value) in map {
                    if !first {
                        indent(out, level + 2);
                    }
                    first = false;
                    write_string(out, key);
                    out.push(':');
                    write_child(out, value, level + 2);
                }
            }
            Value::Array(inner) if !inner.is_empty() => {
                out.push('\n');
                write_seq(out, inner, level + 2);
            }
            scalar => {
                out.push(' ');
                write_scalar(out, scalar);
                out.push('\n');
            }
        }
    }
}

/// Writes what follows `key:`: a scalar on the same line, or a block on the next lines.
fn write_child(out: &mut String, value: &Value, level: usize) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            out.push('\n');
            write_map(out, map, level + 2);
        }
        Value::Array(items) if !items.is_empty() => {
            out.push('\n');
            write_seq(out, items, level + 2);
        }
        scalar => {
            out.push(' ');
            write_scalar(out, scalar);
            out.push('\n');
        }
    }
}

fn write_scalar(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => {
            let _ = write!(out, "{n}");
        }
        Value::String(s) => write_string(out, s),
        Value::Object(_) => out.push_str("{}"),
        Value::Array(_) => out.push_str("[]"),
    }
}

fn write_string(out: &mut String, s: &str) {
    if is_plain_safe(s) {
        out.push_str(s);
    } else {
        // JSON string syntax is valid YAML double-quoted syntax.
        out.push_str(&Value::String(s.to_owned()).to_string());
    }
}

/// Words that YAML 1.1 (go-yaml v2, used by Kubernetes) or YAML 1.2 resolve to booleans or null.
const RESERVED: &[&str] = &["y", "n", "yes", "no", "on", "off", "true", "false", "null"];

/// A string may go unquoted if it starts with a letter, `_` or `/`, continues with letters, digits and `._/-`, and
/// is not a reserved word. That excludes numbers, dates, versions and anything with `:` `#` or spaces.
fn is_plain_safe(s: &str) -> bool {
    let mut bytes = s.bytes();
    let Some(first) = bytes.next() else {
        return false;
    };
    (first.is_ascii_alphabetic() || first == b'_' || first == b'/')
        && bytes.all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'/' | b'-'))
        && !RESERVED.iter().any(|w| w.eq_ignore_ascii_case(s))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn renders_kubernetes_shapes() {
        let doc = json!({
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "HTTPRoute",
            "metadata": {"name": "foundry-id-alpha", "labels": {"app.kubernetes.io/name": "foundry-vtt"}},
            "spec": {
                "hostnames": ["alpha.example.com"],
                "rules": [{"backendRefs": [{"name": "foundry-alpha", "port": 80}]}],
                "to": [{"group": "", "kind": "Service"}],
                "empty": {}, "none": [], "flag": true, "gone": null
            }
        });
        insta::assert_snapshot!(to_yaml(&doc), @r#"
        apiVersion: gateway.networking.k8s.io/v1
        kind: HTTPRoute
        metadata:
          labels:
            app.kubernetes.io/name: foundry-vtt
          name: foundry-id-alpha
        spec:
          empty: {}
          flag: true
          gone: null
          hostnames:
            - alpha.example.com
          none: []
          rules:
            - backendRefs:
                - name: foundry-alpha
                  port: 80
          to:
            - group: ""
              kind: Service
        "#);
    }

    #[test]
    fn quotes_anything_ambiguous() {
        for s in ["on", "No", "y", "13.347", "1.2.3.4", "2026-01-01T00:00:00Z", "a: b", "#x", "", " a", "-1", "~"] {
            let out = to_yaml(&json!({ "k": s }));
            assert!(out.starts_with("k: \""), "{s:?} rendered as {out:?}");
        }
        assert_eq!(to_yaml(&json!(["a", ["b"], [], {}])), "- a\n-\n  - b\n- []\n- {}\n");
    }

    #[test]
    fn round_trips_through_a_yaml_parser() {
        let doc = json!({
            "s": "line\nbreak \"quoted\" \\ tab\t unicode é \u{1}",
            "n": [1, -2, 3.5, 0],
            "nested": [[{"a": [{"b": {"c": "yes"}}]}]],
            "weird key: #": "v"
        });
        let parsed: Value = serde_saphyr::from_str(&to_yaml(&doc)).unwrap();
        assert_eq!(parsed, doc);
    }
}
