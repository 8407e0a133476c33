//! Reading the parts of a call every operation shares: object references and identity checks, the namespace
//! default, bounded lists, the time of the decision and the observations, and typed objects with field paths.
//!
//! Each helper exists once here; the rules and the API layer call these instead of re-reading JSON their own way.
//! Nothing here decides anything about routing or instances.

use crate::error::{InputError, ObjectRef};
use crate::model::{API_VERSION, DEFAULT_NAMESPACE, ObjectMeta, Observations, PlayerObservation};
use crate::names;
use crate::text::shorten;
use crate::time::Timestamp;
use serde_json::Value;

/// A non-empty string at a JSON pointer.
pub(crate) fn text<'a>(value: &'a Value, pointer: &str) -> Option<&'a str> {
    value.pointer(pointer).and_then(Value::as_str).filter(|s| !s.is_empty())
}

/// The namespace of an object as JSON: `metadata.namespace`, or `default` when it has none (as `kubectl` treats
/// objects given without one).
pub fn namespace_of(value: &Value) -> &str {
    text(value, "/metadata/namespace").unwrap_or(DEFAULT_NAMESPACE)
}

/// The reference of an object for messages, before it is known to be well formed (names are shortened).
pub(crate) fn object_ref(value: &Value, kind: &str) -> ObjectRef {
    let name = value.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
    ObjectRef::new(kind, &shorten(namespace_of(value)), &shorten(name))
}

/// Checks `kind`, `apiVersion`, that the object has a name, and that its namespace is a DNS label.
pub(crate) fn check_identity(
    kind: &str,
    api_version: &str,
    meta: &ObjectMeta,
    object: &ObjectRef,
    expected_kind: &str,
) -> Result<(), InputError> {
    if !kind.is_empty() && kind != expected_kind {
        return Err(InputError::InvalidField {
            object: object.clone(),
            path: "kind".into(),
            detail: format!("expected kind `{expected_kind}`, found `{}`", shorten(kind)),
        });
    }
    if !api_version.is_empty() && api_version != API_VERSION {
        return Err(InputError::InvalidField {
            object: object.clone(),
            path: "apiVersion".into(),
            detail: format!("expected apiVersion `{API_VERSION}`, found `{}`", shorten(api_version)),
        });
    }
    if meta.name.is_empty() {
        return Err(InputError::MissingField {
            object: object.clone(),
            path: "metadata.name".into(),
            detail: "missing field `name`".into(),
        });
    }
    if let Some(ns) = meta.namespace.as_deref().filter(|ns| !ns.is_empty())
        && !names::is_dns1123_label(ns)
    {
        return Err(InputError::InvalidField {
            object: object.clone(),
            path: "metadata.namespace".into(),
            detail: format!(
                "the namespace is {} characters long; a namespace is at most 63 lowercase letters, digits and `-`, \
                 starting and ending with a letter or digit",
                ns.chars().count()
            ),
        });
    }
    Ok(())
}

/// Deserialises one object from JSON, turning serde's error into an [`InputError`] that names the object and
/// the field path.
pub(crate) fn from_value<T: serde::de::DeserializeOwned>(value: &Value, object: &ObjectRef) -> Result<T, InputError> {
    serde_path_to_error::deserialize(value).map_err(|err| {
        let path = err.path().to_string();
        let detail = err.inner().to_string();
        let object = object.clone();
        let path = if path == "." { String::new() } else { path };
        if let Some(field) = detail.strip_prefix("missing field `").and_then(|rest| rest.strip_suffix('`')) {
            // Point at the missing field itself, not at its parent.
            let path = if path.is_empty() { field.to_owned() } else { format!("{path}.{field}") };
            InputError::MissingField { object, path, detail }
        } else if detail.starts_with("unknown field") {
            InputError::UnknownField { object, path, detail }
        } else {
            InputError::InvalidField { object, path, detail }
        }
    })
}

/// Reads a JSON list exactly as a `Vec<Value>` reads it (same errors, same paths), keeping the first `limit`
/// elements and a `null` in place of each later one: a list past its limit is refused by its length alone, so its
/// excess elements are parsed (any syntax error still counts) and dropped at once.
pub(crate) fn bounded_list<'de, D: serde::Deserializer<'de>>(d: D, limit: usize) -> Result<Vec<Value>, D::Error> {
    struct Bounded(usize);
    impl<'de> serde::de::Visitor<'de> for Bounded {
        type Value = Vec<Value>;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a sequence")
        }

        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<Value>, A::Error> {
            let mut items = Vec::new();
            while let Some(item) = seq.next_element::<Value>()? {
                items.push(if items.len() < self.0 { item } else { Value::Null });
            }
            Ok(items)
        }
    }
    d.deserialize_seq(Bounded(limit))
}

/// The time of the decision, the call's `now`: the policy has no clock, so every call that needs the time carries
/// it as an RFC 3339 string.
pub(crate) fn parse_now(now: Option<&str>) -> Result<Timestamp, InputError> {
    let text = now.ok_or_else(|| InputError::InvalidNow {
        detail: "missing field `now`: the policy has no clock, so the caller must give the time".into(),
    })?;
    Timestamp::parse(text).map_err(|e| InputError::InvalidNow { detail: e.to_string() })
}

/// Parses the observations (the measured player counts); an absent one is empty.
pub(crate) fn parse_observations(value: &Value) -> Result<Observations, InputError> {
    if value.is_null() {
        return Ok(Observations::default());
    }
    let observations: Observations = serde_path_to_error::deserialize(value)
        .map_err(|e| InputError::InvalidObservation { path: e.path().to_string(), detail: e.inner().to_string() })?;
    Ok(observations)
}

/// Checks every player entry: an instance name and exactly one of `connected` and `error`.
pub(crate) fn check_players(players: &[PlayerObservation]) -> Vec<InputError> {
    let mut errors = Vec::new();
    for (i, p) in players.iter().enumerate() {
        let path = format!("players[{i}]");
        match (&p.connected, &p.error) {
            (Some(_), Some(_)) => errors.push(InputError::InvalidObservation {
                path,
                detail: format!("the entry for `{}` has both `connected` and `error`; keep one", shorten(&p.instance)),
            }),
            (None, None) => errors.push(InputError::InvalidObservation {
                path,
                detail: format!("the entry for `{}` has neither `connected` nor `error`", shorten(&p.instance)),
            }),
            _ => {}
        }
        if p.instance.is_empty() {
            errors.push(InputError::InvalidObservation {
                path: format!("players[{i}].instance"),
                detail: "the instance name is empty".into(),
            });
        }
    }
    errors
}
