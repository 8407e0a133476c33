//! License controls, checked where they are given: `restrictions.allowedVersions`, `defaults.foundryVersion` and
//! `defaults.resources` are validated on the license itself, so a bad value refuses the license (in its routing
//! workflow and in admission review) instead of failing every instance that inherits it.

use crate::error::{InputError, ObjectRef, Rule};
use crate::model::FoundryLicense;
use crate::names;
use crate::rules::versions::{VersionSpec, allowed_entry_problem};
use crate::text::shorten;

/// Every problem of the license's `restrictions` and `defaults`.
pub(crate) fn check_license(license: &FoundryLicense, object: &ObjectRef) -> Vec<InputError> {
    let mut errors = Vec::new();
    let invalid = |path: String, detail: String| InputError::InvalidField { object: object.clone(), path, detail };
    if let Some(r) = &license.spec.restrictions {
        for (i, entry) in r.allowed_versions.iter().enumerate() {
            if let Some(detail) = allowed_entry_problem(entry) {
                errors.push(invalid(format!("spec.restrictions.allowedVersions[{i}]"), detail));
            }
        }
    }
    if let Some(d) = &license.spec.defaults {
        if let Some(v) = &d.foundry_version
            && let Err(detail) = VersionSpec::parse(v)
        {
            errors.push(invalid("spec.defaults.foundryVersion".into(), detail));
        }
        if let Some(r) = &d.resources {
            for (field, value) in
                [("cpu", &r.cpu), ("memory", &r.memory), ("cpuLimit", &r.cpu_limit), ("memoryLimit", &r.memory_limit)]
            {
                if let Some(v) = value.as_deref().filter(|v| !names::is_quantity(v)) {
                    errors.push(InputError::Refused {
                        object: object.clone(),
                        path: format!("spec.defaults.resources.{field}"),
                        rule: Rule::InvalidQuantity,
                        detail: format!("`{}` is not a resource quantity", shorten(v)),
                    });
                }
            }
        }
    }
    errors
}
