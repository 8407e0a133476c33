//! The labels every generated object carries, so `kubectl get -l` finds a license's or an instance's objects.

use serde_json::{Map, Value, json};

/// Label naming the license an object belongs to.
pub const LICENSE_LABEL: &str = "foundry.platform/license";
/// Label naming the instance an object belongs to.
pub const INSTANCE_LABEL: &str = "foundry.platform/instance";
/// Label with the route state (`active` or `standby`), for `kubectl get -l`.
pub const STATE_LABEL: &str = "foundry.platform/route-state";
/// Label common to everything the platform generates.
pub const PART_OF_LABEL: &str = "app.kubernetes.io/part-of";

/// Value of [`PART_OF_LABEL`] on everything the platform generates.
pub const PART_OF: &str = "foundry-vtt";

/// The labels of an object of `license` (and of `instance` in `state`, when it belongs to one).
pub(crate) fn object_labels(license: &str, instance: Option<(&str, &str)>) -> Value {
    let mut labels = Map::new();
    labels.insert(PART_OF_LABEL.into(), json!(PART_OF));
    labels.insert(LICENSE_LABEL.into(), json!(license));
    if let Some((instance, state)) = instance {
        labels.insert(INSTANCE_LABEL.into(), json!(instance));
        labels.insert(STATE_LABEL.into(), json!(state));
    }
    Value::Object(labels)
}
