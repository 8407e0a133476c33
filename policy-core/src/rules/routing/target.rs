//! Rule 3: the target the owner can have. The desired instance (`spec.activeInstanceName`) is the target when it
//! may become active; an ineligible desired yields a warning, and the target falls back to the current active
//! instance when that one may stay, else to none. A current instance that is released at once (gone, refused,
//! past its scheduled deletion, or claimed by an older license) gets a warning that says why; one that is leaving
//! (a future deletion, a workload being reconfigured) gets a warning too, and the gate of rule 4 protects its
//! players.

use super::{Current, Member};
use crate::model::Warning;
use crate::text::shorten;

/// What rule 3 decided.
pub(super) struct Target {
    /// The instance the license should route to, before the switch gate.
    pub(super) target: Option<String>,
    /// The warning code of an ineligible desired instance.
    pub(super) desired_problem: Option<&'static str>,
}

/// Applies rule 3 to the desired and current instances; warnings are appended to `warnings`.
pub(super) fn choose(
    members: &[Member],
    desired: Option<&str>,
    current: Option<&str>,
    current_state: Current,
    warnings: &mut Vec<Warning>,
) -> Target {
    let find = |name: &str| members.iter().find(|m| m.name == name);
    let mut desired_problem: Option<&'static str> = None;
    let target = match desired {
        None => None,
        Some(d) if find(d).is_some_and(Member::eligible) => Some(d.to_owned()),
        Some(d) => {
            let fallback = current.filter(|_| current_state == Current::Stays).map(str::to_owned);
            let keep = fallback
                .as_deref()
                .map_or_else(|| "no instance is active".to_owned(), |c| format!("`{c}` stays active"));
            let (code, why) = match find(d) {
                None => ("DesiredInstanceNotFound", "is not an instance of this license"),
                Some(m) if !m.admitted => (
                    "DesiredInstanceRefused",
                    "is beyond the license's `restrictions.maxInstances` and cannot be active",
                ),
                Some(m) if m.claimed => (
                    "DesiredInstanceHostnameClaimed",
                    "has a hostname an older license already publishes and cannot be active",
                ),
                Some(m) if m.scheduled.is_some() => {
                    ("DesiredInstanceScheduledForDeletion", "is scheduled for deletion and cannot be active")
                }
                Some(_) => (
                    "DesiredInstanceNotReady",
                    "has no workload configured for its current spec yet (its instance workflow has not succeeded \
                     for it) and cannot be active",
                ),
            };
            desired_problem = Some(code);
            warnings.push(Warning::new(code, format!("`{}` {why}; {keep}", shorten(d))));
            fallback
        }
    };
    if let Some(cur) = current
        && target.as_deref() != Some(cur)
    {
        match current_state {
            Current::Released(code, why) => warnings.push(Warning::new(
                code,
                format!(
                    "the previously active instance `{}` {why}; it was released without a player check",
                    shorten(cur)
                ),
            )),
            Current::Leaving(code, why) => {
                warnings.push(Warning::new(code, format!("the active instance `{}` {why}", shorten(cur))));
            }
            Current::None | Current::Stays => {}
        }
    }
    Target { target, desired_problem }
}
