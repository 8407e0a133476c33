//! The routing rules of a license: which of its instances is active, and why.
//!
//! Everything is decided here, in one pass, before any manifest is written: the license's instances, the desired
//! and current active instance, eligibility, the player gate of a switch, the grace period, and each instance's
//! state. `render` then turns the decision into manifests and a status; nothing there decides anything.
//!
//! The rules, in order:
//! 1. The license's instances are the `FoundryInstance`s in its namespace whose `spec.licenseRef.name` names it,
//!    in name order, except those being deleted. Others are ignored (not even validated). A scheduled deletion
//!    (`foundry.platform/scheduled-delete-at`) must be an RFC 3339 time.
//! 2. desired = `spec.activeInstanceName`; current = `status.activeInstance` (either may be empty).
//! 3. An instance may become active when it belongs to the license, is admitted by `restrictions.maxInstances`
//!    (the current active instance is admitted first), its workload is configured for its current generation
//!    (its `Ready` condition is `True` and `status.configuredGeneration` is `metadata.generation`), it is not
//!    scheduled for deletion, and no older
//!    license publishes its hostname ([`claims`]). An empty desired asks for no active instance. An ineligible
//!    desired yields a warning, and the target falls back to current if current may stay, else to none
//!    ([`target`]).
//! 4. Moving away from current passes the switch gate when current still has players to protect: it may stay,
//!    or it is leaving because its deletion is scheduled in the future or its workload is being reconfigured.
//!    `block` switches only with 0 players on current and otherwise keeps current with a warning; `force`
//!    switches at once and warns when players were connected or their count was unknown ([`gate`]). A current
//!    that is gone, refused, past its scheduled deletion or claimed by an older license is released at once.
//! 5. With `switchGracePeriod`, a switch blocked for that long (since `status.pendingSince`) proceeds anyway.
//!
//! [`states`] then gives each instance its state, reason and backend. The decision also says which instances'
//! workflows must run again because the license changed under them (`reconfigure`), and the route state each
//! instance's status should show (`isActive`).

mod claims;
mod gate;
mod states;
mod target;

use crate::error::{InputError, ObjectRef};
use crate::input::{check_identity, check_players, from_value, object_ref, parse_now, parse_observations, text};
use crate::model::{
    FoundryLicense, INSTANCE_KIND, LICENSE_KIND, ObjectMeta, Observations, SCHEDULED_DELETE_ANNOTATION, StandbySpec,
    Warning,
};
use crate::names;
use crate::rules::limits::{self, MAX_INSTANCES};
use crate::text::shorten;
use crate::time::{Duration, Timestamp};
use gate::{Gate, player_observation};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeSet;

pub use claims::ClaimCheck;

/// Default Gateway a license's routes attach to when `spec.gateway.parentRef` is not set.
pub const DEFAULT_GATEWAY: &str = "default-gateway";

/// Whether an instance receives its own traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum RouteState {
    /// Routed to its own Service.
    Active,
    /// Routed to the standby page.
    Standby,
}

impl RouteState {
    /// `active` or `standby`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Standby => "standby",
        }
    }
}

/// Where a route sends traffic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Backend {
    /// Service name.
    pub name: String,
    /// Service namespace.
    pub namespace: String,
    /// Service port.
    pub port: u16,
}

/// The decision for one instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceRoute {
    /// Instance name.
    pub name: String,
    /// Active or standby.
    pub state: RouteState,
    /// Machine reason for the state.
    pub reason: String,
    /// The reason in words.
    pub message: String,
    /// The route's backend.
    pub backend: Backend,
    /// The instance's public hostname.
    pub hostname: String,
    /// When the instance is scheduled for deletion (the annotation's value), if it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduled_delete_at: Option<String>,
    /// An older license publishes the hostname: this instance gets no route at all.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unrouted: bool,
}

/// The player count the switch gate needed, so a live host knows which instance to probe (at most one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlayerCheck {
    /// The instance whose players decide the switch.
    pub instance: String,
    /// Its namespace.
    pub namespace: String,
    /// Its in-cluster status endpoint (never the public hostname, which may show the standby page).
    pub url: String,
    /// Whether the call carried an observation for it.
    pub observed: bool,
    /// The count used, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connected: Option<u32>,
}

/// The keys of an instance's status its license's workflow writes: how the license routes it now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct RouteStatus {
    /// The instance is the license's effective active instance (its hostname routes to its own Foundry).
    pub is_active: bool,
    /// `active` or `standby`.
    pub route_state: RouteState,
}

/// The route state an instance's status should show, when it shows something else now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RouteStatusUpdate {
    /// The instance.
    pub instance: String,
    /// The keys to merge into its status.
    pub status: RouteStatus,
}

/// The switch the gate is holding back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pending {
    pub(crate) to: String,
    pub(crate) since: Timestamp,
    pub(crate) reason: &'static str,
}

/// Everything the rules decided, before rendering.
#[derive(Debug, Clone)]
pub(crate) struct Routing {
    pub(crate) license: FoundryLicense,
    pub(crate) license_ref: ObjectRef,
    pub(crate) namespace: String,
    pub(crate) now: Timestamp,
    pub(crate) desired: Option<String>,
    pub(crate) active: Option<String>,
    pub(crate) instances: Vec<InstanceRoute>,
    pub(crate) warnings: Vec<Warning>,
    pub(crate) pending: Option<Pending>,
    pub(crate) ready: (bool, &'static str),
    pub(crate) player_check: Option<PlayerCheck>,
    pub(crate) claim_check: Option<ClaimCheck>,
    pub(crate) previous: PreviousStatus,
    pub(crate) gateway: GatewayTarget,
    /// The status of the effective active instance object (what its player monitor last reported).
    pub(crate) active_status: Option<Value>,
    /// Instances whose workflow must run again (the license changed what they were configured against).
    pub(crate) reconfigure: Vec<String>,
    /// Instances whose status shows another route state than this decision.
    pub(crate) route_statuses: Vec<RouteStatusUpdate>,
}

/// The resolved gateway attachment and DNS settings of a license.
#[derive(Debug, Clone)]
pub(crate) struct GatewayTarget {
    pub(crate) parent_name: String,
    pub(crate) parent_namespace: Option<String>,
    pub(crate) section_name: Option<String>,
    pub(crate) base_domain: String,
    pub(crate) dns: DnsTargets,
    pub(crate) standby: StandbySpec,
}

/// DNS records to publish for each hostname.
#[derive(Debug, Clone, Default)]
pub(crate) struct DnsTargets {
    pub(crate) ipv4: Vec<String>,
    pub(crate) ipv6: Vec<String>,
    pub(crate) cname: Option<String>,
}

impl DnsTargets {
    pub(crate) fn is_empty(&self) -> bool {
        self.ipv4.is_empty() && self.ipv6.is_empty() && self.cname.is_none()
    }
}

/// What the license's current status says (read leniently: a damaged status never blocks routing).
#[derive(Debug, Clone, Default)]
pub(crate) struct PreviousStatus {
    pub(crate) active: Option<String>,
    pub(crate) pending_since: Option<Timestamp>,
    pub(crate) conditions: Vec<Value>,
}

/// A scheduled deletion: the annotation's text and its time.
#[derive(Debug, Clone)]
struct Scheduled {
    text: String,
    at: Timestamp,
}

/// An instance of the license, as routing sees it.
#[derive(Debug, Clone)]
struct Member {
    name: String,
    scheduled: Option<Scheduled>,
    created: Option<String>,
    /// Within the license's `restrictions.maxInstances`.
    admitted: bool,
    /// Its workload is configured for its current generation.
    ready: bool,
    /// The reason of its `Ready` condition, when it has one.
    ready_reason: Option<String>,
    /// The license generation its workflow last configured it against.
    license_generation: Option<i64>,
    /// An older license publishes its hostname.
    claimed: bool,
    /// The instance's status (its player monitor's keys among them).
    status: Value,
}

impl Member {
    /// Whether it may become active (rule 3).
    fn eligible(&self) -> bool {
        self.admitted && self.ready && self.scheduled.is_none() && !self.claimed
    }
}

/// What routing reads of other licenses, to find hostnames an older license already publishes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Others<'a> {
    /// Every other `FoundryLicense` (at least those with the same base domain).
    pub(crate) licenses: &'a [Value],
    /// The `FoundryInstance`s of the namespaces a previous decision asked for (`None`: not read yet).
    pub(crate) instances: Option<&'a [Value]>,
}

/// The parts of a routing call.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RouteInput<'a> {
    pub(crate) license: &'a Value,
    pub(crate) instances: &'a [Value],
    pub(crate) observations: &'a Value,
    pub(crate) now: Option<&'a str>,
    /// Other licenses, for hostname claims (`None`: not checked).
    pub(crate) others: Option<Others<'a>>,
}

/// Applies the rules to a license, its namespace's instances, the observations and the time (`now`).
pub(crate) fn decide(input: RouteInput<'_>) -> Result<Routing, Vec<InputError>> {
    let (parsed, license_ref) = check_license(input.license)?;
    let mut errors: Vec<InputError> = license_name_problem(&parsed, &license_ref).into_iter().collect();
    let namespace = parsed.metadata.namespace().to_owned();

    let now = parse_now(input.now).map_err(|e| errors.push(e)).ok();
    let observations = match parse_observations(input.observations) {
        Ok(o) => o,
        Err(e) => return Err(vec![e]),
    };
    errors.extend(check_players(&observations.players));
    let previous = read_previous_status(input.license);
    let checked =
        check_spec_and_members(&parsed, &license_ref, &namespace, input.instances, previous.active.as_deref());
    errors.extend(checked.errors);

    let (Some(now), Some(gateway), true) = (now, checked.gateway, errors.is_empty()) else {
        return Err(errors);
    };
    let mut members = checked.members;
    let claim_check = match input.others {
        Some(others) => claims::apply(input.license, &gateway.base_domain, others, &mut members),
        None => None,
    };
    Ok(apply_rules(
        parsed,
        license_ref,
        namespace,
        now,
        checked.grace,
        gateway,
        members,
        previous,
        &observations,
        claim_check,
    ))
}

/// Every problem the rules find in a license and its instances, in the order a routing call reports them,
/// leaving out the observations. An empty list means the pipeline can route the license. Admission review uses
/// this, so an object is refused for exactly the reasons the pipeline would refuse it.
pub(crate) fn object_problems(license: &Value, instances: &[Value]) -> Vec<InputError> {
    let (parsed, license_ref) = match check_license(license) {
        Ok(checked) => checked,
        Err(errors) => return errors,
    };
    let mut errors: Vec<InputError> = license_name_problem(&parsed, &license_ref).into_iter().collect();
    let namespace = parsed.metadata.namespace().to_owned();
    let active = read_previous_status(license).active;
    errors.extend(check_spec_and_members(&parsed, &license_ref, &namespace, instances, active.as_deref()).errors);
    errors
}

/// The hostnames of `license`'s instances that an older license among `others` already publishes (for admission
/// review, which reads every license and instance).
pub(crate) fn claimed_hostnames(
    license: &Value,
    instances: &[Value],
    others: &[Value],
    other_instances: &[Value],
) -> Vec<(String, String)> {
    let Ok((parsed, _)) = check_license(license) else { return Vec::new() };
    let Some(base) = parsed.spec.base_domain() else { return Vec::new() };
    let namespace = parsed.metadata.namespace();
    let names: Vec<String> = instances
        .iter()
        .filter(|i| crate::input::namespace_of(i) == namespace)
        .filter(|i| text(i, "/spec/licenseRef/name") == Some(parsed.metadata.name.as_str()))
        .filter(|i| i.pointer("/metadata/deletionTimestamp").is_none_or(Value::is_null))
        .filter_map(|i| text(i, "/metadata/name").map(str::to_owned))
        .collect();
    let taken = claims::taken(license, base, others, other_instances);
    names.into_iter().filter(|n| taken.contains(n)).map(|n| (format!("{n}.{base}"), n)).collect()
}

/// The instance that routes to its own Service now: the license's `status.activeInstance`, if that instance is
/// one of the license's instances and not scheduled for deletion. Taking it away (deleting it, or
/// moving it to another license) would release it without the player check of rule 4.
pub(crate) fn routed_instance(license: &Value, instances: &[Value]) -> Option<String> {
    let active = read_previous_status(license).active?;
    let namespace = object_ref(license, LICENSE_KIND).namespace;
    let license_name = license.pointer("/metadata/name").and_then(Value::as_str)?;
    instances
        .iter()
        .find(|i| {
            object_ref(i, INSTANCE_KIND).namespace == namespace
                && i.pointer("/metadata/name").and_then(Value::as_str) == Some(active.as_str())
                && i.pointer("/spec/licenseRef/name").and_then(Value::as_str) == Some(license_name)
        })
        // A scheduled deletion is the owner's decision to let it go; the expiry deletes it once it is due.
        .filter(|i| i.pointer("/metadata/annotations").and_then(|a| a.get(SCHEDULED_DELETE_ANNOTATION)).is_none())
        .map(|_| active)
}

/// The license object: present, well formed, of the right kind.
fn check_license(value: &Value) -> Result<(FoundryLicense, ObjectRef), Vec<InputError>> {
    let license_ref = object_ref(value, LICENSE_KIND);
    if value.is_null() {
        return Err(vec![InputError::MissingField {
            object: license_ref,
            path: String::new(),
            detail: "missing field `license`".into(),
        }]);
    }
    let license: FoundryLicense = from_value(value, &license_ref).map_err(|e| vec![e])?;
    check_identity(&license.kind, &license.api_version, &license.metadata, &license_ref, LICENSE_KIND)
        .map_err(|e| vec![e])?;
    Ok((license, license_ref))
}

fn license_name_problem(license: &FoundryLicense, license_ref: &ObjectRef) -> Option<InputError> {
    (!names::is_dns1123_label(&license.metadata.name)).then(|| InputError::InvalidField {
        object: license_ref.clone(),
        path: "metadata.name".into(),
        detail: format!(
            "the license name `{}` must be a DNS label (lowercase letters, digits and `-`, at most 63 \
             characters) because it is used in labels and object names",
            shorten(&license.metadata.name)
        ),
    })
}

/// The license's settings and instances, checked.
struct CheckedSpec {
    grace: Option<Duration>,
    gateway: Option<GatewayTarget>,
    members: Vec<Member>,
    errors: Vec<InputError>,
}

fn check_spec_and_members(
    license: &FoundryLicense,
    license_ref: &ObjectRef,
    namespace: &str,
    instances: &[Value],
    active: Option<&str>,
) -> CheckedSpec {
    let mut errors = Vec::new();
    let grace = match license.spec.switch_grace_period.as_deref().map(Duration::parse) {
        Some(Err(e)) => {
            errors.push(InputError::InvalidField {
                object: license_ref.clone(),
                path: "spec.switchGracePeriod".into(),
                detail: e.to_string(),
            });
            None
        }
        Some(Ok(d)) => Some(d),
        None => None,
    };
    errors.extend(crate::rules::activation::check_settings(license, license_ref));
    errors.extend(crate::rules::controls::check_license(license, license_ref));
    let gateway = match resolve_gateway(license, license_ref) {
        Ok(g) => Some(g),
        Err(mut e) => {
            errors.append(&mut e);
            None
        }
    };
    if instances.len() > MAX_INSTANCES {
        errors.push(InputError::TooManyInstances { count: instances.len(), limit: MAX_INSTANCES });
        return CheckedSpec { grace, gateway, members: Vec::new(), errors };
    }
    let max_instances = license.spec.restrictions.as_ref().and_then(|r| r.max_instances);
    let members = match collect_members(instances, namespace, &license.metadata.name, max_instances, active) {
        Ok(m) => m,
        Err(mut e) => {
            errors.append(&mut e);
            Vec::new()
        }
    };
    CheckedSpec { grace, gateway, members, errors }
}

/// Where the current active instance stands (rules 3 and 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Current {
    /// No instance is active.
    None,
    /// It may stay active.
    Stays,
    /// It may not stay, but players may still be on it: a switch away passes the gate.
    Leaving(&'static str, &'static str),
    /// It is released at once, with this warning code and reason.
    Released(&'static str, &'static str),
}

fn current_state(members: &[Member], current: Option<&str>, now: Timestamp) -> Current {
    let Some(cur) = current else { return Current::None };
    match members.iter().find(|m| m.name == cur) {
        None => Current::Released("PreviousActiveInstanceGone", "no longer exists"),
        Some(m) if !m.admitted => {
            Current::Released("PreviousActiveInstanceRefused", "is beyond the license's instance limit")
        }
        Some(m) if m.claimed => {
            Current::Released("PreviousActiveInstanceHostnameClaimed", "has a hostname an older license publishes")
        }
        Some(Member { scheduled: Some(s), .. }) if s.at <= now => {
            Current::Released("PreviousActiveInstanceScheduledForDeletion", "has reached its scheduled deletion time")
        }
        Some(Member { scheduled: Some(_), .. }) => Current::Leaving(
            "ActiveInstanceScheduledForDeletion",
            "is scheduled for deletion; it stays active only while players are connected",
        ),
        Some(m) if !m.ready => Current::Leaving(
            "ActiveInstanceNotReady",
            "has no workload configured for its current spec; it stays active only while players are connected",
        ),
        Some(_) => Current::Stays,
    }
}

/// The decision proper, on validated input.
#[allow(clippy::too_many_arguments)]
fn apply_rules(
    license: FoundryLicense,
    license_ref: ObjectRef,
    namespace: String,
    now: Timestamp,
    grace: Option<Duration>,
    gateway: GatewayTarget,
    members: Vec<Member>,
    previous: PreviousStatus,
    observations: &Observations,
    claim_check: Option<ClaimCheck>,
) -> Routing {
    let mut warnings = Vec::new();
    let desired = license.spec.active_instance_name.clone().filter(|d| !d.is_empty());
    let current = previous.active.clone();
    let current_state = current_state(&members, current.as_deref(), now);

    // Rule 3: the target the owner can have.
    let chosen = target::choose(&members, desired.as_deref(), current.as_deref(), current_state, &mut warnings);
    let desired_problem = chosen.desired_problem;

    // Rules 4 and 5: the switch gate.
    let mut active = chosen.target.clone();
    let mut pending = None;
    let mut player_check = None;
    if let Some(cur) = current.as_deref()
        && matches!(current_state, Current::Stays | Current::Leaving(..))
        && chosen.target.as_deref() != Some(cur)
    {
        let gate = Gate {
            current: cur,
            target: chosen.target.as_deref(),
            namespace: &namespace,
            now,
            grace,
            mode: license.spec.switch_mode,
        };
        let outcome = gate.decide(player_observation(&observations.players, cur, &namespace), previous.pending_since);
        warnings.extend(outcome.warning);
        player_check = outcome.player_check;
        if let Some(p) = outcome.pending {
            pending = Some(p);
            active = Some(cur.to_owned());
        }
    }

    let ready = match (&pending, desired_problem) {
        (Some(_), _) => (false, "SwitchBlocked"),
        (None, Some(code)) => (false, code),
        (None, None) => (true, "ActiveAsRequested"),
    };
    if gateway.standby != StandbySpec::default() {
        let s = &gateway.standby;
        warnings.push(Warning::new(
            "StandbyServiceNotManaged",
            format!(
                "standby routes go to Service `{}/{}:{}`, which the platform does not deploy; deploy the standby page \
                 there (see promises/standby-page) or remove `spec.standby`",
                s.namespace, s.service_name, s.port
            ),
        ));
    }
    let instances =
        states::instance_routes(&members, active.as_deref(), pending.as_ref(), desired_problem, &gateway, &namespace);
    for m in members.iter().filter(|m| m.claimed) {
        warnings.push(Warning::new(
            "HostnameClaimedByOlderLicense",
            format!(
                "`{}.{}` is already published by an older license; `{}` gets no route until one of them is renamed",
                m.name, gateway.base_domain, m.name
            ),
        ));
    }
    let reconfigure = reconfigure(&members, license.metadata.generation);
    let route_statuses = route_statuses(&members, &instances);
    let active_status = active.as_deref().and_then(|a| members.iter().find(|m| m.name == a)).map(|m| m.status.clone());
    Routing {
        active_status,
        license,
        license_ref,
        namespace,
        now,
        desired,
        active,
        instances,
        warnings,
        pending,
        ready,
        player_check,
        claim_check,
        previous,
        gateway,
        reconfigure,
        route_statuses,
    }
}

/// Instances whose workflow must run again: a freed slot (admitted, but its workload was refused for the limit),
/// a lost slot (refused, but its workload is configured), or a license spec changed since it was configured.
fn reconfigure(members: &[Member], license_generation: Option<i64>) -> Vec<String> {
    members
        .iter()
        .filter(|m| {
            let refused_before = m.ready_reason.as_deref() == Some("RefusedInstanceLimit");
            let freed = m.admitted && refused_before;
            let lost = !m.admitted && m.ready;
            // Only an instance configured for its own current spec: a failing one is retried by Kratix anyway.
            let stale = m.ready && license_generation.is_some() && m.license_generation != license_generation;
            freed || lost || stale
        })
        .map(|m| m.name.clone())
        .collect()
}

/// The `isActive` / `routeState` patches of the instances whose status shows another state.
fn route_statuses(members: &[Member], routes: &[InstanceRoute]) -> Vec<RouteStatusUpdate> {
    members
        .iter()
        .zip(routes)
        .filter_map(|(m, r)| {
            let active = r.state == RouteState::Active;
            let shown =
                (m.status.get("isActive").and_then(Value::as_bool), m.status.get("routeState").and_then(Value::as_str));
            (shown != (Some(active), Some(r.state.as_str()))).then(|| RouteStatusUpdate {
                instance: m.name.clone(),
                status: RouteStatus { is_active: active, route_state: r.state },
            })
        })
        .collect()
}

/// Resolves gateway, DNS and standby settings, validating each.
fn resolve_gateway(license: &FoundryLicense, object: &ObjectRef) -> Result<GatewayTarget, Vec<InputError>> {
    let mut errors = Vec::new();
    let spec = license.spec.gateway.clone().unwrap_or_default();
    let invalid =
        |path: &str, detail: String| InputError::InvalidField { object: object.clone(), path: path.into(), detail };
    let base_domain_path = license.spec.base_domain_path();

    let base_domain = match license.spec.base_domain() {
        None => {
            errors.push(InputError::MissingBaseDomain { object: object.clone() });
            String::new()
        }
        Some(d) => {
            if let Some(detail) = names::base_domain_problem(d) {
                errors.push(InputError::InvalidDomain {
                    object: object.clone(),
                    path: base_domain_path.into(),
                    detail: format!("`{}` is not a valid base domain: {detail}", shorten(d)),
                });
            } else if d.len() + 1 + names::MAX_INSTANCE_NAME > names::MAX_DNS_NAME {
                errors.push(InputError::InvalidDomain {
                    object: object.clone(),
                    path: base_domain_path.into(),
                    detail: format!(
                        "the base domain `{}` is {} characters long; `<instance>.<baseDomain>` must fit in 253, so at \
                         most {} are allowed",
                        shorten(d),
                        d.len(),
                        names::MAX_DNS_NAME - 1 - names::MAX_INSTANCE_NAME
                    ),
                });
            }
            d.to_owned()
        }
    };

    let (parent_name, parent_namespace, section_name) = match &spec.parent_ref {
        Some(p) => {
            if !names::is_dns1123_subdomain(&p.name) {
                errors.push(invalid(
                    "spec.gateway.parentRef.name",
                    format!("`{}` is not a valid object name", shorten(&p.name)),
                ));
            }
            if let Some(ns) = p.namespace.as_deref().filter(|ns| !names::is_dns1123_label(ns)) {
                errors.push(invalid(
                    "spec.gateway.parentRef.namespace",
                    format!("`{}` is not a valid namespace", shorten(ns)),
                ));
            }
            if let Some(s) = p.section_name.as_deref().filter(|s| !names::is_dns1123_subdomain(s)) {
                errors.push(invalid(
                    "spec.gateway.parentRef.sectionName",
                    format!("`{}` is not a valid listener name", shorten(s)),
                ));
            }
            (
                p.name.clone(),
                p.namespace.clone().filter(|n| !n.is_empty()),
                p.section_name.clone().filter(|s| !s.is_empty()),
            )
        }
        None => (DEFAULT_GATEWAY.to_owned(), None, None),
    };

    let mut dns = DnsTargets::default();
    // The existing platform's `dnsTarget` counts as `host-runner migrate` maps it: only when nothing else is set.
    let legacy = spec.dns_target.iter().filter(|_| spec.dns_targets.is_empty() && spec.public_ip.is_none());
    let targets: Vec<&String> = spec.dns_targets.iter().chain(spec.public_ip.iter()).chain(legacy).collect();
    let mut hostnames = Vec::new();
    for (i, t) in targets.iter().enumerate() {
        let path = if i < spec.dns_targets.len() {
            format!("spec.gateway.dnsTargets[{i}]")
        } else if spec.public_ip.is_some() {
            "spec.gateway.publicIP".into()
        } else {
            "spec.gateway.dnsTarget".into()
        };
        if names::is_ipv4(t) {
            if !dns.ipv4.contains(t) {
                dns.ipv4.push((*t).clone());
            }
        } else if names::is_ipv6(t) {
            if !dns.ipv6.contains(t) {
                dns.ipv6.push((*t).clone());
            }
        } else if let Some(detail) = names::hostname_target_problem(t, &base_domain) {
            errors.push(InputError::InvalidDnsTargets { object: object.clone(), path, detail });
        } else {
            hostnames.push((path, (*t).clone()));
        }
    }
    match hostnames.as_slice() {
        [] => {}
        [(_, host)] if dns.ipv4.is_empty() && dns.ipv6.is_empty() => dns.cname = Some(host.clone()),
        [(path, _), ..] => errors.push(InputError::InvalidDnsTargets {
            object: object.clone(),
            path: path.clone(),
            detail: "a hostname target becomes a CNAME record, which cannot be combined with other targets".into(),
        }),
    }

    let standby = license.spec.standby.clone().unwrap_or_default();
    if !names::is_dns1035_label(&standby.service_name) {
        errors.push(invalid(
            "spec.standby.serviceName",
            format!("`{}` is not a valid Service name", shorten(&standby.service_name)),
        ));
    }
    if !names::is_dns1123_label(&standby.namespace) {
        errors.push(invalid(
            "spec.standby.namespace",
            format!("`{}` is not a valid namespace", shorten(&standby.namespace)),
        ));
    }
    if standby.port == 0 {
        errors.push(invalid("spec.standby.port", "the port must be between 1 and 65535".into()));
    }

    if errors.is_empty() {
        Ok(GatewayTarget { parent_name, parent_namespace, section_name, base_domain, dns, standby })
    } else {
        Err(errors)
    }
}

/// Rule 1: the license's instances, validated, in name order.
fn collect_members(
    instances: &[Value],
    namespace: &str,
    license: &str,
    max_instances: Option<u32>,
    active: Option<&str>,
) -> Result<Vec<Member>, Vec<InputError>> {
    let mut errors = Vec::new();
    let mut members: Vec<Member> = Vec::new();
    // Names seen so far: a set keeps the duplicate check linear in the number of instances.
    let mut seen: BTreeSet<String> = BTreeSet::new();
    for value in instances {
        let ns = crate::input::namespace_of(value);
        let owner = value.pointer("/spec/licenseRef/name").and_then(Value::as_str);
        if ns != namespace || owner != Some(license) {
            continue;
        }
        let object = object_ref(value, INSTANCE_KIND);
        let view: InstanceView = match from_value(value, &object) {
            Ok(v) => v,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        if let Err(e) = check_identity(&view.kind, &view.api_version, &view.metadata, &object, INSTANCE_KIND) {
            errors.push(e);
            continue;
        }
        // An instance being deleted is gone for routing: its route disappears on this run, and if it was active
        // the license is freed, while its delete workflow still runs.
        if view.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let name = view.metadata.name.clone();
        if let Some(detail) = names::instance_name_problem(&name) {
            errors.push(InputError::InvalidInstanceName { object, name: shorten(&name), detail });
            continue;
        }
        if !seen.insert(name.clone()) {
            errors.push(InputError::DuplicateObject { object });
            continue;
        }
        let scheduled = match view.metadata.annotations.get(SCHEDULED_DELETE_ANNOTATION) {
            None => None,
            Some(text) => match Timestamp::parse(text) {
                Ok(at) => Some(Scheduled { text: text.clone(), at }),
                Err(_) => {
                    errors.push(InputError::InvalidField {
                        object,
                        path: format!("metadata.annotations[{SCHEDULED_DELETE_ANNOTATION}]"),
                        detail: format!("`{}` is not an RFC 3339 time such as `2026-12-24T18:00:00Z`", shorten(text)),
                    });
                    continue;
                }
            },
        };
        let readiness = workload_readiness(&view);
        members.push(Member {
            name,
            scheduled,
            created: view.metadata.creation_timestamp,
            admitted: true,
            ready: readiness.0,
            ready_reason: readiness.1,
            license_generation: view.status.get("licenseGeneration").and_then(Value::as_i64),
            claimed: false,
            status: view.status,
        });
    }
    members.sort_by(|a, b| a.name.cmp(&b.name));
    let admitted =
        limits::admitted(members.iter().map(|m| (m.name.as_str(), m.created.as_deref())), max_instances, active);
    for m in &mut members {
        m.admitted = admitted.contains(&m.name);
    }
    if errors.is_empty() { Ok(members) } else { Err(errors) }
}

/// Whether an instance object's workload is configured for its current generation (read leniently).
pub(crate) fn workload_ready(instance: &Value) -> bool {
    let view = InstanceView {
        api_version: String::new(),
        kind: String::new(),
        metadata: ObjectMeta {
            generation: instance.pointer("/metadata/generation").and_then(Value::as_i64),
            ..ObjectMeta::default()
        },
        status: instance.get("status").cloned().unwrap_or(Value::Null),
    };
    workload_readiness(&view).0
}

/// Whether the instance's workload is configured for its current generation (its `Ready` condition is `True` and
/// its `status.configuredGeneration` is `metadata.generation`; a condition's own `observedGeneration` is not
/// kept by Kratix's status schema), and the condition's reason.
fn workload_readiness(view: &InstanceView) -> (bool, Option<String>) {
    let ready = view
        .status
        .get("conditions")
        .and_then(Value::as_array)
        .and_then(|c| c.iter().find(|c| c.get("type").and_then(Value::as_str) == Some("Ready")));
    let Some(ready) = ready else { return (false, None) };
    let reason = ready.get("reason").and_then(Value::as_str).map(str::to_owned);
    let configured = view.status.get("configuredGeneration").and_then(Value::as_i64);
    let is_true = ready.get("status").and_then(Value::as_str) == Some("True");
    (is_true && configured == view.metadata.generation, reason)
}

/// The fields of an instance that routing reads; the rest of its spec is the instance workflow's business.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct InstanceView {
    #[serde(default)]
    api_version: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    metadata: ObjectMeta,
    #[serde(default)]
    status: Value,
}

fn read_previous_status(license: &Value) -> PreviousStatus {
    let status = license.get("status");
    let text = |key: &str| status.and_then(|s| s.get(key)).and_then(Value::as_str).filter(|s| !s.is_empty());
    PreviousStatus {
        active: text("activeInstance").map(str::to_owned),
        pending_since: text("pendingSince").and_then(|t| Timestamp::parse(t).ok()),
        conditions: status.and_then(|s| s.get("conditions")).and_then(Value::as_array).cloned().unwrap_or_default(),
    }
}
