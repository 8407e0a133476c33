//! The `FoundryActivationRequest` a click records, for an operator to approve.

use super::labels::{INSTANCE_LABEL, LICENSE_LABEL, PART_OF, PART_OF_LABEL};
use crate::model::{ACTIVATION_REQUEST_KIND, API_VERSION};
use crate::time::Timestamp;
use serde_json::{Value, json};

/// The request for `instance` of `license` in `namespace`, made at `now` (its name carries the time, so the same
/// second's click from someone else names the same object).
pub(crate) fn activation_request(namespace: &str, license: &str, instance: &str, now: Timestamp) -> Value {
    json!({
        "apiVersion": API_VERSION,
        "kind": ACTIVATION_REQUEST_KIND,
        "metadata": {
            "name": format!("activate-{instance}-{}", now.unix()),
            "namespace": namespace,
            "labels": {PART_OF_LABEL: PART_OF, LICENSE_LABEL: license, INSTANCE_LABEL: instance},
        },
        "spec": {
            "licenseRef": {"name": license},
            "instanceName": instance,
            "approved": false,
            "requestedAt": now.to_string(),
        },
    })
}
