//! The standby page and activation requests: what a standby hostname shows, what a click on "Request
//! activation" does, and what happens to the requests an operator approves or nobody answers.
//!
//! The rules of three operations (`api::standby` assembles their answers), all on what the standby page service
//! read from the cluster (licenses, instances, activation requests) and `now`:
//! - `foundry/standby/page`: which instance a `Host` header names ([`resolve`]), and what a click would do;
//! - `foundry/activation/request`: what a click does ([`click`]): switch the license at once, record a request,
//!   point at the request already waiting, or refuse;
//! - `foundry/activation/review`: per request of one license ([`review`]): expire it, refuse it, or apply an
//!   approved one by switching the license.
//!
//! The rules:
//! 1. A host names an instance when, lowercased and without a numeric port, it is exactly `<instance>.<baseDomain>`
//!    for one license's base domain ([`crate::model::LicenseSpec::base_domain`]) and that license has the instance
//!    (not being deleted). Anything else (an IP, a trailing dot, a deeper name, a name two licenses claim) names
//!    nothing, and the answer says nothing about any license.
//! 2. A click is refused when activation is unavailable or `disabled`, the instance is scheduled for deletion, is
//!    already the effective active instance, or is already what the license asks for. A request still waiting for
//!    the same instance is pointed at instead of repeated.
//! 3. With `auto-when-idle`, a click switches at once when the license has no effective active instance, or when a
//!    fresh reading of the active instance's monitor says nobody has been connected for `idleMinutes`. An unknown or
//!    stale count is never idle. Otherwise (and always with `request`) the click records a request.
//! 4. A request expires `requestTTL` after its creation (the API server's `creationTimestamp`, which a client
//!    cannot forge), approved or not. An approved, unexpired request for an eligible instance switches the license;
//!    when several are approved, the oldest wins and the others are superseded.
//! 5. A switch only sets `spec.activeInstanceName`, with the license's `resourceVersion` as a precondition; the
//!    license workflow still applies its `block`/`force` player gate.
//! 6. A finished request (`Applied`, `Expired`, `Refused`) is kept for the record for
//!    [`FINISHED_REQUEST_RETENTION_SECONDS`] after its `status.decidedAt`, then deleted, guarded by its `uid` and
//!    `resourceVersion`. Without a readable `decidedAt` its expiry (creation plus `requestTTL`) counts as the
//!    decision; a request with no readable time at all cannot be aged and is deleted at once.
//!
//! This module must not do I/O or read a clock, and the page it describes must never carry data of another license
//! or any secret reference.

use crate::error::{InputError, ObjectRef};
use crate::input::{from_value, namespace_of, object_ref, text};
use crate::model::{ActivationMode, FoundryLicense, LICENSE_KIND, SCHEDULED_DELETE_ANNOTATION};
use crate::names;
use crate::rules::limits;
use crate::rules::monitor::{PlayerActivity, read_activity};
use crate::rules::routing::workload_ready;
use crate::text::shorten;
use crate::time::{Duration, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// How long a request waits for approval unless the license says otherwise.
pub const DEFAULT_REQUEST_TTL: &str = "24h";
/// Minutes without players after which `auto-when-idle` switches, unless the license says otherwise.
pub const DEFAULT_IDLE_MINUTES: u32 = 30;
/// How long a finished request is kept before the review deletes it (rule 6): a day, long enough for an operator
/// to see what happened with `kubectl get foundryactivationrequests`, short enough that the requests of a
/// namespace stay few (at most one waits per instance, and clicks are rate-limited per instance).
pub const FINISHED_REQUEST_RETENTION_SECONDS: u64 = 24 * 3600;
/// Longest `Host` header considered (a 253-character name, a colon and a port).
pub const MAX_HOST: usize = 253 + 6;

/// What a click on "Request activation" does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ActivationOutcome {
    /// The license is switched at once.
    Switch,
    /// A request is recorded for an operator to approve.
    Request,
    /// A request for the instance already waits.
    Pending,
    /// Nothing happens, for the reason given.
    Refused,
    /// The host names no instance.
    NotFound,
}

impl ActivationOutcome {
    /// The outcome as written in answers.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Switch => "switch",
            Self::Request => "request",
            Self::Pending => "pending",
            Self::Refused => "refused",
            Self::NotFound => "notFound",
        }
    }
}

/// The phase of a `FoundryActivationRequest`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RequestPhase {
    /// Waiting for an operator's approval.
    Pending,
    /// Applied (or already true): the license asks for the instance.
    Applied,
    /// Not approved in time.
    Expired,
    /// Refused, for the reason given.
    Refused,
}

impl RequestPhase {
    /// The phase as written in the request's status.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "Pending",
            Self::Applied => "Applied",
            Self::Expired => "Expired",
            Self::Refused => "Refused",
        }
    }

    /// Whether the phase is final.
    pub fn is_final(self) -> bool {
        self != Self::Pending
    }
}

/// Request phases that are final.
const TERMINAL: [&str; 3] = ["Applied", "Expired", "Refused"];

/// A license's activation settings, validated.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Settings {
    pub(crate) mode: ActivationMode,
    pub(crate) ttl: Duration,
    pub(crate) idle_minutes: u32,
}

pub(crate) fn settings(license: &FoundryLicense, object: &ObjectRef) -> Result<Settings, InputError> {
    let spec = license.spec.activation();
    let ttl = Duration::parse(spec.request_ttl.as_deref().unwrap_or(DEFAULT_REQUEST_TTL)).map_err(|e| {
        InputError::InvalidField {
            object: object.clone(),
            path: "spec.activation.requestTTL".into(),
            detail: e.to_string(),
        }
    })?;
    if ttl.seconds() == 0 {
        return Err(InputError::InvalidField {
            object: object.clone(),
            path: "spec.activation.requestTTL".into(),
            detail: "a request must live longer than `0s`".into(),
        });
    }
    let idle_minutes = spec.idle_minutes.unwrap_or(DEFAULT_IDLE_MINUTES);
    if idle_minutes == 0 {
        return Err(InputError::InvalidField {
            object: object.clone(),
            path: "spec.activation.idleMinutes".into(),
            detail: "`idleMinutes` must be at least 1".into(),
        });
    }
    Ok(Settings { mode: spec.mode, ttl, idle_minutes })
}

/// Checks the activation settings of a license (used by the routing workflow, so a bad value is reported where
/// the owner looks).
pub(crate) fn check_settings(license: &FoundryLicense, object: &ObjectRef) -> Option<InputError> {
    settings(license, object).err()
}

/// The instance a host names, with everything about its license the rules need.
pub(crate) struct Matched<'a> {
    pub(crate) license: FoundryLicense,
    pub(crate) license_value: &'a Value,
    pub(crate) object: ObjectRef,
    pub(crate) namespace: String,
    pub(crate) base_domain: String,
    pub(crate) instance: String,
    pub(crate) scheduled_delete_at: Option<String>,
    /// The license's instances (name, object), not being deleted.
    pub(crate) members: Vec<(String, &'a Value)>,
}

/// Lowercases a `Host` header and drops a numeric port; `None` when it cannot be a hostname of ours.
pub fn normalize_host(host: &str) -> Option<String> {
    if host.is_empty() || host.len() > MAX_HOST || !host.is_ascii() {
        return None;
    }
    let name = match host.rsplit_once(':') {
        Some((name, port)) => {
            let valid_port = !port.is_empty() && port.len() <= 5 && port.bytes().all(|b| b.is_ascii_digit());
            if !valid_port || port.parse::<u32>().map_or(true, |p| p == 0 || p > 65_535) {
                return None;
            }
            name
        }
        None => host,
    };
    let name = name.to_ascii_lowercase();
    if names::is_ipv4(&name) || !names::is_dns1123_subdomain(&name) {
        return None;
    }
    Some(name)
}

/// The license's instances, in name order, without those being deleted.
pub(crate) fn members<'a>(instances: &'a [Value], namespace: &str, license: &str) -> Vec<(String, &'a Value)> {
    let mut out: Vec<(String, &Value)> = instances
        .iter()
        .filter(|i| namespace_of(i) == namespace && text(i, "/spec/licenseRef/name") == Some(license))
        .filter(|i| i.pointer("/metadata/deletionTimestamp").is_none_or(Value::is_null))
        .filter_map(|i| text(i, "/metadata/name").map(|n| (n.to_owned(), i)))
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// Rule 1: the instance a host names.
pub(crate) fn resolve<'a>(host: &str, licenses: &'a [Value], instances: &'a [Value]) -> Option<Matched<'a>> {
    let host = normalize_host(host)?;
    let (label, rest) = host.split_once('.')?;
    if names::instance_name_problem(label).is_some() {
        return None;
    }
    let mut found: Option<Matched<'a>> = None;
    for value in licenses {
        let object = object_ref(value, LICENSE_KIND);
        // A license the API server holds but the policy cannot read routes nothing, so it names nothing.
        let Ok(license) = from_value::<FoundryLicense>(value, &object) else { continue };
        if license.spec.base_domain() != Some(rest) {
            continue;
        }
        let namespace = license.metadata.namespace().to_owned();
        let members = members(instances, &namespace, &license.metadata.name);
        let Some((_, instance)) = members.iter().find(|(n, _)| n == label) else { continue };
        if found.is_some() {
            // Two licenses claim the name: the Gateway's choice is not ours to guess.
            return None;
        }
        let scheduled_delete_at = instance
            .pointer(&format!("/metadata/annotations/{}", SCHEDULED_DELETE_ANNOTATION.replace('/', "~1")))
            .and_then(Value::as_str)
            .map(shorten);
        found = Some(Matched {
            base_domain: rest.to_owned(),
            instance: label.to_owned(),
            scheduled_delete_at,
            object,
            namespace,
            members,
            license,
            license_value: value,
        });
    }
    found
}

impl Matched<'_> {
    pub(crate) fn effective_active(&self) -> Option<&str> {
        text(self.license_value, "/status/activeInstance")
    }

    pub(crate) fn desired(&self) -> Option<&str> {
        self.license.spec.active_instance_name.as_deref().filter(|d| !d.is_empty())
    }

    /// The monitor's reading of the effective active instance, when it still is an instance of the license.
    pub(crate) fn active_activity(&self) -> Option<PlayerActivity> {
        let active = self.effective_active()?;
        let (_, object) = self.members.iter().find(|(n, _)| n == active)?;
        Some(read_activity(object.get("status")))
    }
}

/// A request of the license, read leniently.
#[derive(Debug, Clone)]
pub(crate) struct Request {
    pub(crate) name: String,
    pub(crate) instance: String,
    pub(crate) approved: bool,
    pub(crate) phase: Option<String>,
    pub(crate) expires_at_status: Option<String>,
    pub(crate) requested_at: Option<Timestamp>,
    pub(crate) decided_at: Option<Timestamp>,
    pub(crate) uid: Option<String>,
    pub(crate) resource_version: Option<String>,
}

pub(crate) fn requests_of(requests: &[Value], namespace: &str, license: &str) -> Vec<Request> {
    let mut out: Vec<Request> = requests
        .iter()
        .filter(|r| namespace_of(r) == namespace && text(r, "/spec/licenseRef/name") == Some(license))
        .filter_map(|r| {
            let time = |p: &str| text(r, p).and_then(|t| Timestamp::parse(t).ok());
            Some(Request {
                name: text(r, "/metadata/name")?.to_owned(),
                instance: text(r, "/spec/instanceName").unwrap_or_default().to_owned(),
                approved: r.pointer("/spec/approved").and_then(Value::as_bool).unwrap_or(false),
                phase: text(r, "/status/phase").map(str::to_owned),
                expires_at_status: text(r, "/status/expiresAt").map(str::to_owned),
                requested_at: time("/metadata/creationTimestamp").or_else(|| time("/spec/requestedAt")),
                decided_at: time("/status/decidedAt"),
                uid: text(r, "/metadata/uid").map(str::to_owned),
                resource_version: text(r, "/metadata/resourceVersion").map(str::to_owned),
            })
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

impl Request {
    pub(crate) fn terminal(&self) -> bool {
        self.phase.as_deref().is_some_and(|p| TERMINAL.contains(&p))
    }

    /// When it expires; a request with no readable time expires at once (it cannot be aged).
    pub(crate) fn expires_at(&self, ttl: Duration, now: Timestamp) -> Timestamp {
        self.requested_at.map_or(now, |t| t.plus(ttl.seconds()))
    }
}

/// What a click does (rules 2 and 3).
pub(crate) struct Click {
    pub(crate) outcome: ActivationOutcome,
    pub(crate) reason: &'static str,
    pub(crate) message: String,
    pub(crate) pending: Option<WaitingRequest>,
}

/// A request that already waits for the same instance.
pub(crate) struct WaitingRequest {
    pub(crate) name: String,
    pub(crate) requested_at: Option<Timestamp>,
    pub(crate) expires_at: Timestamp,
}

fn refused(reason: &'static str, message: String) -> Click {
    Click { outcome: ActivationOutcome::Refused, reason, message, pending: None }
}

pub(crate) fn click(m: &Matched<'_>, requests: &[Value], activation_enabled: bool, now: Timestamp) -> Click {
    if !activation_enabled {
        return refused("ActivationUnavailable", "activation requests are not enabled on this platform".into());
    }
    let s = match settings(&m.license, &m.object) {
        Ok(s) => s,
        Err(_) => {
            return refused("ActivationMisconfigured", "the license's activation settings are not valid".into());
        }
    };
    if s.mode == ActivationMode::Disabled {
        return refused("ActivationDisabled", "this license does not take activation requests".into());
    }
    if let Some(at) = &m.scheduled_delete_at {
        return refused(
            "InstanceScheduledForDeletion",
            format!("`{}` is scheduled for deletion at {at} and cannot be activated", m.instance),
        );
    }
    if m.effective_active() == Some(m.instance.as_str()) {
        return refused("AlreadyActive", format!("`{}` is already the active instance", m.instance));
    }
    if m.desired() == Some(m.instance.as_str()) {
        return refused(
            "SwitchAlreadyRequested",
            format!("the license already asks for `{}`; the switch waits for players to leave", m.instance),
        );
    }
    // Only an instance routing could make active is offered: admitted by the license's limit (its active instance
    // first) and with a workload configured for its current spec.
    let max = m.license.spec.restrictions.as_ref().and_then(|r| r.max_instances);
    let admitted = limits::admitted(
        m.members.iter().map(|(n, o)| (n.as_str(), o.pointer("/metadata/creationTimestamp").and_then(Value::as_str))),
        max,
        m.effective_active(),
    );
    if !admitted.contains(&m.instance) {
        return refused(
            "InstanceRefused",
            format!("`{}` is beyond the license's instance limit and cannot be activated", m.instance),
        );
    }
    let me = m.members.iter().find(|(n, _)| *n == m.instance).map(|(_, o)| *o);
    if !me.is_some_and(workload_ready) {
        return refused(
            "InstanceNotReady",
            format!("`{}` has no workload configured yet and cannot be activated", m.instance),
        );
    }
    let waiting = requests_of(requests, &m.namespace, &m.license.metadata.name)
        .into_iter()
        .filter(|r| r.instance == m.instance && !r.terminal() && r.expires_at(s.ttl, now) > now)
        .min_by(|a, b| a.requested_at.cmp(&b.requested_at).then(a.name.cmp(&b.name)));
    if let Some(r) = waiting {
        let expires = r.expires_at(s.ttl, now);
        return Click {
            outcome: ActivationOutcome::Pending,
            reason: "RequestPending",
            message: format!("a request for `{}` waits for approval until {expires}", m.instance),
            pending: Some(WaitingRequest { name: r.name.clone(), requested_at: r.requested_at, expires_at: expires }),
        };
    }
    if s.mode == ActivationMode::Request {
        return Click {
            outcome: ActivationOutcome::Request,
            reason: "ApprovalNeeded",
            message: format!("a click records a request for `{}` that an operator approves", m.instance),
            pending: None,
        };
    }
    let approval = s.idle_minutes;
    let Some(active) = m.effective_active().filter(|a| m.members.iter().any(|(n, _)| n == a)) else {
        return Click {
            outcome: ActivationOutcome::Switch,
            reason: "NoActiveInstance",
            message: format!("no instance is active: a click activates `{}` at once", m.instance),
            pending: None,
        };
    };
    let activity = m.active_activity().unwrap_or_default();
    let needed = u64::from(approval) * 60;
    match (activity.players(now), activity.idle_seconds(now)) {
        (Some(0), Some(idle)) if idle >= needed => Click {
            outcome: ActivationOutcome::Switch,
            reason: "ActiveInstanceIdle",
            message: format!(
                "nobody has played on `{active}` for {}: a click activates `{}` at once",
                Duration::from_seconds(idle - idle % 60),
                m.instance
            ),
            pending: None,
        },
        (Some(0), _) => Click {
            outcome: ActivationOutcome::Request,
            reason: "ActiveInstanceRecentlyUsed",
            message: format!(
                "`{active}` has not been idle for {approval} minutes yet: a click records a request for an operator"
            ),
            pending: None,
        },
        (Some(n), _) => Click {
            outcome: ActivationOutcome::Request,
            reason: "ActiveInstanceInUse",
            message: format!(
                "{n} player{} connected to `{active}`: a click records a request for an operator",
                if n == 1 { " is" } else { "s are" }
            ),
            pending: None,
        },
        (None, _) => Click {
            outcome: ActivationOutcome::Request,
            reason: "ActivePlayersUnknown",
            message: format!(
                "the players of `{active}` are not known right now: a click records a request for an operator"
            ),
            pending: None,
        },
    }
}

/// What happens to one request of a license.
pub(crate) struct ReviewItem {
    /// The request's name.
    pub(crate) request: String,
    /// Its new phase.
    pub(crate) phase: RequestPhase,
    /// Machine reason.
    pub(crate) reason: &'static str,
    /// The reason in words.
    pub(crate) message: String,
    /// When it expires.
    pub(crate) expires_at: Timestamp,
}

/// A finished request whose record has been kept long enough (rule 6).
pub(crate) struct Expunged {
    /// The request's name.
    pub(crate) request: String,
    /// Its `metadata.uid`, a precondition of the deletion.
    pub(crate) uid: Option<String>,
    /// Its `metadata.resourceVersion`, a precondition of the deletion.
    pub(crate) resource_version: Option<String>,
    /// When it was decided (or, without a readable decision time, when it expired).
    pub(crate) decided_at: Option<Timestamp>,
}

/// What the review of a license's requests decided.
pub(crate) struct Reviewed {
    /// The instance the license is switched to, when an approved request is applied.
    pub(crate) switch_to: Option<String>,
    /// The requests whose status changes, in name order.
    pub(crate) items: Vec<ReviewItem>,
    /// The finished requests to delete, in name order.
    pub(crate) expunged: Vec<Expunged>,
}

/// Rule 4: what happens to each request of a license (`license` is the object as read, `parsed` the same object
/// typed). A waiting request whose status already says so is left out.
pub(crate) fn review(
    license: &Value,
    parsed: &FoundryLicense,
    s: Settings,
    instances: &[Value],
    requests: &[Value],
    activation_enabled: bool,
    now: Timestamp,
) -> Reviewed {
    let namespace = parsed.metadata.namespace().to_owned();
    let members = members(instances, &namespace, &parsed.metadata.name);
    let active = text(license, "/status/activeInstance");
    let desired = parsed.spec.active_instance_name.as_deref().filter(|d| !d.is_empty());
    let requests = requests_of(requests, &namespace, &parsed.metadata.name);

    let eligible = |instance: &str| -> Result<(), (&'static str, String)> {
        match members.iter().find(|(n, _)| n == instance) {
            None => Err(("InstanceNotFound", format!("`{}` is not an instance of this license", shorten(instance)))),
            Some((_, o))
                if o.pointer("/metadata/annotations").and_then(|a| a.get(SCHEDULED_DELETE_ANNOTATION)).is_some() =>
            {
                Err(("InstanceScheduledForDeletion", format!("`{instance}` is scheduled for deletion")))
            }
            Some(_) => Ok(()),
        }
    };
    // The oldest approved request that can be applied wins.
    let winner = requests
        .iter()
        .filter(|r| !r.terminal() && r.approved && r.expires_at(s.ttl, now) > now)
        .filter(|r| {
            eligible(&r.instance).is_ok() && Some(r.instance.as_str()) != active && Some(r.instance.as_str()) != desired
        })
        .filter(|_| s.mode != ActivationMode::Disabled && activation_enabled)
        .min_by(|a, b| a.requested_at.cmp(&b.requested_at).then(a.name.cmp(&b.name)))
        .map(|r| r.name.clone());

    let mut items = Vec::new();
    let mut switch_to = None;
    for r in requests.iter().filter(|r| !r.terminal()) {
        let expires = r.expires_at(s.ttl, now);
        let (phase, reason, message) = if expires <= now {
            (RequestPhase::Expired, "Expired", format!("not approved before {expires}"))
        } else if s.mode == ActivationMode::Disabled || !activation_enabled {
            (RequestPhase::Refused, "ActivationDisabled", "the license no longer takes activation requests".to_owned())
        } else if let Err((reason, message)) = eligible(&r.instance) {
            (RequestPhase::Refused, reason, message)
        } else if Some(r.instance.as_str()) == active {
            (RequestPhase::Applied, "AlreadyActive", format!("`{}` is the active instance", r.instance))
        } else if Some(r.instance.as_str()) == desired {
            (RequestPhase::Applied, "AlreadyRequested", format!("the license asks for `{}`", r.instance))
        } else if winner.as_deref() == Some(r.name.as_str()) {
            switch_to = Some(r.instance.clone());
            (RequestPhase::Applied, "Approved", format!("approved: the license now asks for `{}`", r.instance))
        } else if r.approved {
            (RequestPhase::Refused, "Superseded", "another approved request was applied first".to_owned())
        } else {
            let at = expires.to_string();
            if r.phase.as_deref() == Some("Pending") && r.expires_at_status.as_deref() == Some(at.as_str()) {
                continue;
            }
            let message = format!("waits for an operator to set `spec.approved: true` until {at}");
            (RequestPhase::Pending, "AwaitingApproval", message)
        };
        items.push(ReviewItem { request: r.name.clone(), phase, reason, message, expires_at: expires });
    }
    let expunged = requests
        .iter()
        .filter(|r| r.terminal())
        .filter_map(|r| {
            let decided_at = r.decided_at.or_else(|| r.requested_at.map(|t| t.plus(s.ttl.seconds())));
            let keep_until = decided_at.map(|t| t.plus(FINISHED_REQUEST_RETENTION_SECONDS));
            keep_until.is_none_or(|until| until <= now).then(|| Expunged {
                request: r.name.clone(),
                uid: r.uid.clone(),
                resource_version: r.resource_version.clone(),
                decided_at,
            })
        })
        .collect();
    Reviewed { switch_to, items, expunged }
}
