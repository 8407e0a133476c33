//! Rule 3: the target the owner can have. The desired instance (`spec.activeInstanceName`) is the target when it
//! is eligible; an ineligible desired yields a warning, and the target falls back to the current active instance
//! when that one is eligible, else to none. A current instance that became ineligible is released without a player
//! check (it cannot be kept), with a warning that says why.

use super::Member;
use crate::model::Warning;
use crate::text::shorten;

/// What rule 3 decided.
pub(super) struct Target {
    /// The instance the license should route to, before the switch gate.
    pub(super) target: Option<String>,
    /// The warning code of an ineligible desired instance.
    pub(super) desired_problem: Option<&'static str>,
    /// Whether the current active instance may stay active.
    pub(super) current_eligible: bool,
}

/// Whether `name` is one of the members and may be active.
pub(super) fn eligible(members: &[Member], name: &str) -> bool {
    members.iter().find(|m| m.name == name).is_some_and(|m| m.scheduled_delete_at.is_none() && m.admitted)
}

/// Applies rule 3 to the desired and current instances; warnings are appended to `warnings`.
pub(super) fn choose(
    members: &[Member],
    desired: Option<&str>,
    current: Option<&str>,
    warnings: &mut Vec<Warning>,
) -> Target {
    let find = |name: &str| members.iter().find(|m| m.name == name);
    let current_eligible = current.is_some_and(|c| eligible(members, c));
    let mut desired_problem: Option<&'static str> = None;
    let target = match desired {
        None => None,
        Some(d) if eligible(members, d) => Some(d.to_owned()),
        Some(d) => {
            let fallback = current.filter(|_| current_eligible).map(str::to_owned);
            let keep = fallback
                .as_deref()
                .map_or_else(|| "no instance is active".to_owned(), |c| format!("`{c}` stays active"));
            let (code, why) = match find(d) {
                None => ("DesiredInstanceNotFound", "is not an instance of this license"),
                Some(m) if !m.admitted => (
                    "DesiredInstanceRefused",
                    "is beyond the license's `restrictions.maxInstances` and cannot be active",
                ),
                Some(_) => ("DesiredInstanceScheduledForDeletion", "is scheduled for deletion and cannot be active"),
            };
            desired_problem = Some(code);
            warnings.push(Warning::new(code, format!("`{}` {why}; {keep}", shorten(d))));
            fallback
        }
    };
    if let Some(cur) = current
        && !current_eligible
        && target.as_deref() != Some(cur)
    {
        let (code, why) = match find(cur) {
            None => ("PreviousActiveInstanceGone", "no longer exists"),
            Some(m) if !m.admitted => ("PreviousActiveInstanceRefused", "is beyond the license's instance limit"),
            Some(_) => ("PreviousActiveInstanceScheduledForDeletion", "is scheduled for deletion"),
        };
        warnings.push(Warning::new(
            code,
            format!("the previously active instance `{}` {why}; it was released without a player check", shorten(cur)),
        ));
    }
    Target { target, desired_problem, current_eligible }
}
