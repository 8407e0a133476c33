//! The routing rules of a license: which of its instances is active, and why.
//!
//! Everything is decided here, in one pass, before any manifest is written: the license's instances, the desired
//! and current active instance, eligibility, the player gate of a switch, the grace period, and each instance's
//! state. `render` then turns the decision into manifests and a status; nothing there decides anything.
//!
//! The rules, in order:
//! 1. The license's instances are the `FoundryInstance`s in its namespace whose `spec.licenseRef.name` names it,
//!    in name order, except those being deleted. Others are ignored (not even validated).
//! 2. desired = `spec.activeInstanceName`; current = `status.activeInstance` (either may be empty).
//! 3. An instance is eligible if it belongs to the license and is not scheduled for deletion. An empty desired
//!    asks for no active instance. An ineligible desired yields a warning, and the target falls back to current if
//!    current is eligible, else to none ([`target`]).
//! 4. Moving away from an eligible current passes the switch gate: `force` switches; `block` switches only with 0
//!    players on current, and otherwise keeps current with a warning. An ineligible current has no gate ([`gate`]).
//! 5. With `switchGracePeriod`, a switch blocked for that long (since `status.pendingSince`) proceeds anyway.
//!
//! [`states`] then gives each instance its state, reason and backend.

mod gate;
mod states;
mod target;

use crate::error::{InputError, ObjectRef};
use crate::input::{check_identity, check_players, from_value, object_ref, parse_now, parse_observations};
use crate::model::{
    FoundryLicense, INSTANCE_KIND, LICENSE_KIND, ObjectMeta, Observations, SCHEDULED_DELETE_ANNOTATION, StandbySpec,
    SwitchMode, Warning,
};
use crate::names;
use crate::rules::limits::{self, MAX_INSTANCES};
use crate::text::shorten;
use crate::time::{Duration, Timestamp};
use gate::{Gate, player_observation};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeSet;

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
    pub(crate) previous: PreviousStatus,
    pub(crate) gateway: GatewayTarget,
    /// The status of the effective active instance object (what its player monitor last reported).
    pub(crate) active_status: Option<Value>,
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

/// An instance of the license, as routing sees it.
#[derive(Debug, Clone)]
struct Member {
    name: String,
    scheduled_delete_at: Option<String>,
    created: Option<String>,
    /// Within the license's `restrictions.maxInstances`.
    admitted: bool,
    /// The instance's status as its player monitor reported it.
    status: Value,
}

/// Applies the rules to a license, its namespace's instances, the observations and the time (`now`).
pub(crate) fn decide(
    license: &Value,
    instances: &[Value],
    observations: &Value,
    now: Option<&str>,
) -> Result<Routing, Vec<InputError>> {
    let (parsed, license_ref) = check_license(license)?;
    let mut errors: Vec<InputError> = license_name_problem(&parsed, &license_ref).into_iter().collect();
    let namespace = parsed.metadata.namespace().to_owned();

    let now = parse_now(now).map_err(|e| errors.push(e)).ok();
    let observations = match parse_observations(observations) {
        Ok(o) => o,
        Err(e) => return Err(vec![e]),
    };
    errors.extend(check_players(&observations.players));
    let checked = check_spec_and_members(&parsed, &license_ref, &namespace, instances);
    errors.extend(checked.errors);

    let (Some(now), Some(gateway), true) = (now, checked.gateway, errors.is_empty()) else {
        return Err(errors);
    };
    let previous = read_previous_status(license);
    Ok(apply_rules(
        parsed,
        license_ref,
        namespace,
        now,
        checked.grace,
        gateway,
        checked.members,
        previous,
        &observations,
    ))
}

/// Every problem the rules find in a license and its instances, in the order a routing call reports them,
/// leaving out the observations. An empty list means the pipeline can route the license. Admission review uses
/// this, so an object is refused for exactly the reasons the pipeline would refuse it.
pub(crate) fn object_problems(license: &Value, instances: &[Value]) -> Vec<InputError> {
    let (license, license_ref) = match check_license(license) {
        Ok(checked) => checked,
        Err(errors) => return errors,
    };
    let mut errors: Vec<InputError> = license_name_problem(&license, &license_ref).into_iter().collect();
    let namespace = license.metadata.namespace().to_owned();
    errors.extend(check_spec_and_members(&license, &license_ref, &namespace, instances).errors);
    errors
}

/// The instance that routes to its own Service now: the license's `status.activeInstance`, if that instance is
/// one of the license's instances and not scheduled for deletion (rule 3's eligibility). Taking it away (deleting
/// it, or moving it to another license) would release it without the player check of rule 4.
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
    let members = match collect_members(instances, namespace, &license.metadata.name, max_instances) {
        Ok(m) => m,
        Err(mut e) => {
            errors.append(&mut e);
            Vec::new()
        }
    };
    CheckedSpec { grace, gateway, members, errors }
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
) -> Routing {
    let mut warnings = Vec::new();
    let desired = license.spec.active_instance_name.clone().filter(|d| !d.is_empty());
    let current = previous.active.clone();

    // Rule 3: the target the owner can have.
    let chosen = target::choose(&members, desired.as_deref(), current.as_deref(), &mut warnings);
    let desired_problem = chosen.desired_problem;

    // Rules 4 and 5: the switch gate.
    let mut active = chosen.target.clone();
    let mut pending = None;
    let mut player_check = None;
    if let Some(cur) = current.as_deref()
        && chosen.current_eligible
        && chosen.target.as_deref() != Some(cur)
        && license.spec.switch_mode == SwitchMode::Block
    {
        let gate = Gate { current: cur, target: chosen.target.as_deref(), namespace: &namespace, now, grace };
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
    let instances =
        states::instance_routes(&members, active.as_deref(), pending.as_ref(), desired_problem, &gateway, &namespace);
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
        previous,
        gateway,
    }
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
    let targets: Vec<&String> = spec.dns_targets.iter().chain(spec.public_ip.iter()).collect();
    let mut hostnames = Vec::new();
    for (i, t) in targets.iter().enumerate() {
        let path = if i < spec.dns_targets.len() {
            format!("spec.gateway.dnsTargets[{i}]")
        } else {
            "spec.gateway.publicIP".into()
        };
        if names::is_ipv4(t) {
            if !dns.ipv4.contains(t) {
                dns.ipv4.push((*t).clone());
            }
        } else if names::is_ipv6(t) {
            if !dns.ipv6.contains(t) {
                dns.ipv6.push((*t).clone());
            }
        } else if names::is_dns1123_subdomain(t.trim_end_matches('.')) && !t.is_empty() {
            hostnames.push((path, (*t).clone()));
        } else {
            errors.push(InputError::InvalidDnsTargets {
                object: object.clone(),
                path,
                detail: format!("`{}` is neither an IP address nor a hostname", shorten(t)),
            });
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
        let name = view.metadata.name;
        if let Some(detail) = names::instance_name_problem(&name) {
            errors.push(InputError::InvalidInstanceName { object, name: shorten(&name), detail });
            continue;
        }
        if !seen.insert(name.clone()) {
            errors.push(InputError::DuplicateObject { object });
            continue;
        }
        let scheduled_delete_at = view.metadata.annotations.get(SCHEDULED_DELETE_ANNOTATION).cloned();
        members.push(Member {
            name,
            scheduled_delete_at,
            created: view.metadata.creation_timestamp,
            admitted: true,
            status: view.status,
        });
    }
    members.sort_by(|a, b| a.name.cmp(&b.name));
    let admitted = limits::admitted(members.iter().map(|m| (m.name.as_str(), m.created.as_deref())), max_instances);
    for m in &mut members {
        m.admitted = admitted.contains(&m.name);
    }
    if errors.is_empty() { Ok(members) } else { Err(errors) }
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
