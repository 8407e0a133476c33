//! Each instance's state after the rules: active or standby, the reason and its words, the route's backend and
//! hostname.

use super::{Backend, GatewayTarget, InstanceRoute, Member, Pending, RouteState};
use crate::names;
use crate::text::shorten;

/// The route of every member, in the members' (name) order.
pub(super) fn instance_routes(
    members: &[Member],
    active: Option<&str>,
    pending: Option<&Pending>,
    desired_problem: Option<&str>,
    gateway: &GatewayTarget,
    namespace: &str,
) -> Vec<InstanceRoute> {
    members
        .iter()
        .map(|m| {
            let is_active = active == Some(m.name.as_str());
            let (reason, message) = if is_active {
                match (pending, desired_problem) {
                    (Some(p), _) if p.to.is_empty() => (
                        "KeptWhileSwitchBlocked",
                        "still active: the deactivation waits for players to leave".to_owned(),
                    ),
                    (Some(p), _) => (
                        "KeptWhileSwitchBlocked",
                        format!("still active: the switch to `{}` waits for players to leave", p.to),
                    ),
                    (None, Some(_)) => (
                        "KeptWhileRequestIneligible",
                        "still active: the requested instance cannot be activated".to_owned(),
                    ),
                    (None, None) => ("Selected", "selected by spec.activeInstanceName".to_owned()),
                }
            } else if !m.admitted {
                ("RefusedInstanceLimit", "refused: beyond the license's `restrictions.maxInstances`".to_owned())
            } else if m.claimed {
                ("HostnameClaimed", "no route: an older license publishes this hostname".to_owned())
            } else if let Some(s) = &m.scheduled {
                ("ScheduledForDeletion", format!("scheduled for deletion at `{}`", shorten(&s.text)))
            } else if pending.is_some_and(|p| p.to == m.name) {
                ("SwitchPending", "requested: waits for players to leave the active instance".to_owned())
            } else if !m.ready {
                ("WorkloadNotReady", "its workload is not configured for its current spec yet".to_owned())
            } else {
                ("NotSelected", "not the requested instance".to_owned())
            };
            let backend = if is_active {
                Backend {
                    name: names::service_name(&m.name),
                    namespace: namespace.to_owned(),
                    port: names::INSTANCE_SERVICE_PORT,
                }
            } else {
                Backend {
                    name: gateway.standby.service_name.clone(),
                    namespace: gateway.standby.namespace.clone(),
                    port: gateway.standby.port,
                }
            };
            InstanceRoute {
                name: m.name.clone(),
                state: if is_active { RouteState::Active } else { RouteState::Standby },
                reason: reason.to_owned(),
                message,
                backend,
                hostname: format!("{}.{}", m.name, gateway.base_domain),
                scheduled_delete_at: m.scheduled.as_ref().map(|s| s.text.clone()),
                unrouted: m.claimed,
            }
        })
        .collect()
}
