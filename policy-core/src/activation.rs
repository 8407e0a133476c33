//! The standby page and activation requests: what a standby hostname shows, what a click on "Request
//! activation" does, and what happens to the requests an operator approves or nobody answers.
//!
//! Three operations, all on what the standby page service read from the cluster (licenses, instances, activation
//! requests) and `now`:
//! - `foundry/standby/page` ([`page`]): which instance a `Host` header names, and the facts the page shows about
//!   it and its license only;
//! - `foundry/activation/request` ([`request`]): what a click does: switch the license at once, record a request,
//!   point at the request already waiting, or refuse;
//! - `foundry/activation/review` ([`review`]): per request of one license: expire it, refuse it, or apply an
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
//!
//! This module must not do I/O or read a clock, and the page it describes must never carry data of another license
//! or any secret reference.

use crate::error::{InputError, ObjectRef, from_value};
use crate::manifests::{INSTANCE_LABEL, LICENSE_LABEL, PART_OF_LABEL};
use crate::model::{
    ACTIVATION_REQUEST_KIND, API_VERSION, ActivationMode, FoundryLicense, LICENSE_KIND, SCHEDULED_DELETE_ANNOTATION,
};
use crate::monitor::{PlayerActivity, read_activity};
use crate::names;
use crate::routing::{Warning, object_ref};
use crate::time::{Duration, Timestamp, shorten};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// How long a request waits for approval unless the license says otherwise.
pub const DEFAULT_REQUEST_TTL: &str = "24h";
/// Minutes without players after which `auto-when-idle` switches, unless the license says otherwise.
pub const DEFAULT_IDLE_MINUTES: u32 = 30;
/// Longest `Host` header considered (a 253-character name, a colon and a port).
pub const MAX_HOST: usize = 253 + 6;
/// Most objects (licenses, instances and requests together) in one call.
pub const MAX_OBJECTS: usize = 30_000;

/// Request phases that are final.
const TERMINAL: [&str; 3] = ["Applied", "Expired", "Refused"];

/// The input of `foundry/standby/page` and `foundry/activation/request`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StandbyCall {
    /// The `Host` header, as received.
    #[serde(default)]
    pub host: String,
    /// Every `FoundryLicense` the service sees.
    #[serde(default)]
    pub licenses: Vec<Value>,
    /// Every `FoundryInstance` the service sees.
    #[serde(default)]
    pub instances: Vec<Value>,
    /// Every `FoundryActivationRequest` the service sees.
    #[serde(default)]
    pub requests: Vec<Value>,
    /// The time (RFC 3339).
    #[serde(default)]
    pub now: Option<String>,
    /// The service runs with the permissions activation needs (create requests, patch licenses).
    #[serde(default)]
    pub activation_enabled: bool,
}

/// The answer of `foundry/standby/page`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StandbyPage {
    /// The page, or `null` when the host names no instance (the service answers 404).
    pub page: Option<PageView>,
}

/// Everything the page shows. Only the matched instance's license is described.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PageView {
    /// The instance the host names.
    pub instance: String,
    /// Its license.
    pub license: String,
    /// Its hostname.
    pub hostname: String,
    /// `standby`, or `active` when it is already the effective active instance (its route is switching).
    pub state: String,
    /// The license's effective active instance (`status.activeInstance`).
    pub active_instance: Option<String>,
    /// Its hostname.
    pub active_hostname: Option<String>,
    /// Players on the active instance, from a fresh monitor reading; `null` when unknown.
    pub active_players: Option<u32>,
    /// Since when nobody has been connected to the active instance.
    pub active_idle_since: Option<String>,
    /// When the active instance's monitor last read its players.
    pub active_checked_at: Option<String>,
    /// A switch the license has been asked for and not made yet.
    pub switch: Option<SwitchView>,
    /// The license's warnings.
    pub warnings: Vec<Warning>,
    /// When the instance is scheduled for deletion.
    pub scheduled_delete_at: Option<String>,
    /// The activation button.
    pub activation: ActivationView,
}

/// A switch the license asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SwitchView {
    /// The instance asked for (empty: a deactivation).
    pub to: String,
    /// Held back by the player gate since then; `null` when not (yet) held back.
    pub blocked_since: Option<String>,
    /// Why, in words.
    pub message: String,
}

/// The activation button and what a click would do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActivationView {
    /// The license's mode.
    pub mode: String,
    /// The button is shown.
    pub button: bool,
    /// What a click would do: `switch`, `request`, `pending` or `refused`.
    pub outcome: String,
    /// Machine reason.
    pub reason: String,
    /// The reason in words.
    pub message: String,
    /// A request for this instance that waits for approval.
    pub pending_request: Option<RequestView>,
}

/// A waiting request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestView {
    /// Its name.
    pub name: String,
    /// When it was made.
    pub requested_at: String,
    /// When it expires.
    pub expires_at: String,
}

/// The answer of `foundry/activation/request`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActivationDecision {
    /// `switch`, `request`, `pending`, `refused`, or `notFound` (the host names no instance).
    pub outcome: String,
    /// Machine reason.
    pub reason: String,
    /// The reason in words, for the page.
    pub message: String,
    /// The license (absent for `notFound`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub license: Option<ObjectRef>,
    /// The instance (absent for `notFound`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    /// `switch`: the JSON merge patch for the license.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub license_patch: Option<Value>,
    /// `request`: the `FoundryActivationRequest` to create.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<Value>,
    /// `pending`: the name of the request that already waits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_request: Option<String>,
}

/// The input of `foundry/activation/review`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReviewCall {
    /// The license.
    #[serde(default)]
    pub license: Value,
    /// The instances of its namespace.
    #[serde(default)]
    pub instances: Vec<Value>,
    /// The activation requests of its namespace.
    #[serde(default)]
    pub requests: Vec<Value>,
    /// The time (RFC 3339).
    #[serde(default)]
    pub now: Option<String>,
    /// The service runs with the permissions activation needs.
    #[serde(default)]
    pub activation_enabled: bool,
}

/// The answer of `foundry/activation/review`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReviewDecision {
    /// The license.
    pub license: ObjectRef,
    /// The merge patch that switches the license, when an approved request is applied (patch it before writing
    /// the requests' status).
    pub license_patch: Option<Value>,
    /// The requests whose status changes, in name order; a request whose status is already right is left out.
    pub actions: Vec<RequestAction>,
}

/// What happens to one request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestAction {
    /// The request's name.
    pub request: String,
    /// `Pending`, `Applied`, `Expired` or `Refused`.
    pub phase: String,
    /// Machine reason.
    pub reason: String,
    /// The reason in words.
    pub message: String,
    /// The JSON merge patch for the request's `status` subresource.
    pub status_patch: Value,
}

/// A license's activation settings, validated.
#[derive(Debug, Clone, Copy)]
struct Settings {
    mode: ActivationMode,
    ttl: Duration,
    idle_minutes: u32,
}

fn settings(license: &FoundryLicense, object: &ObjectRef) -> Result<Settings, InputError> {
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
struct Matched<'a> {
    license: FoundryLicense,
    license_value: &'a Value,
    object: ObjectRef,
    namespace: String,
    base_domain: String,
    instance: String,
    scheduled_delete_at: Option<String>,
    /// The license's instances (name, object), not being deleted.
    members: Vec<(String, &'a Value)>,
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

fn text<'a>(value: &'a Value, pointer: &str) -> Option<&'a str> {
    value.pointer(pointer).and_then(Value::as_str).filter(|s| !s.is_empty())
}

fn namespace_of(value: &Value) -> &str {
    text(value, "/metadata/namespace").unwrap_or(crate::model::DEFAULT_NAMESPACE)
}

/// The license's instances, in name order, without those being deleted.
fn members<'a>(instances: &'a [Value], namespace: &str, license: &str) -> Vec<(String, &'a Value)> {
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
fn resolve<'a>(call: &'a StandbyCall) -> Option<Matched<'a>> {
    let host = normalize_host(&call.host)?;
    let (label, rest) = host.split_once('.')?;
    if names::instance_name_problem(label).is_some() {
        return None;
    }
    let mut found: Option<Matched<'a>> = None;
    for value in &call.licenses {
        let object = object_ref(value, LICENSE_KIND);
        // A license the API server holds but the policy cannot read routes nothing, so it names nothing.
        let Ok(license) = from_value::<FoundryLicense>(value, &object) else { continue };
        if license.spec.base_domain() != Some(rest) {
            continue;
        }
        let namespace = license.metadata.namespace().to_owned();
        let members = members(&call.instances, &namespace, &license.metadata.name);
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
    fn effective_active(&self) -> Option<&str> {
        text(self.license_value, "/status/activeInstance")
    }

    fn desired(&self) -> Option<&str> {
        self.license.spec.active_instance_name.as_deref().filter(|d| !d.is_empty())
    }

    /// The monitor's reading of the effective active instance, when it still is an instance of the license.
    fn active_activity(&self) -> Option<PlayerActivity> {
        let active = self.effective_active()?;
        let (_, object) = self.members.iter().find(|(n, _)| n == active)?;
        Some(read_activity(object.get("status")))
    }
}

/// A request of the license, read leniently.
#[derive(Debug, Clone)]
struct Request {
    name: String,
    instance: String,
    approved: bool,
    phase: Option<String>,
    expires_at_status: Option<String>,
    requested_at: Option<Timestamp>,
}

fn requests_of(requests: &[Value], namespace: &str, license: &str) -> Vec<Request> {
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
            })
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

impl Request {
    fn terminal(&self) -> bool {
        self.phase.as_deref().is_some_and(|p| TERMINAL.contains(&p))
    }

    /// When it expires; a request with no readable time expires at once (it cannot be aged).
    fn expires_at(&self, ttl: Duration, now: Timestamp) -> Timestamp {
        self.requested_at.map_or(now, |t| t.plus(ttl.seconds()))
    }
}

/// What a click does (rules 2 and 3).
struct Click {
    outcome: &'static str,
    reason: &'static str,
    message: String,
    pending: Option<RequestView>,
}

fn refused(reason: &'static str, message: String) -> Click {
    Click { outcome: "refused", reason, message, pending: None }
}

fn click(m: &Matched<'_>, call: &StandbyCall, now: Timestamp) -> Click {
    if !call.activation_enabled {
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
    let waiting = requests_of(&call.requests, &m.namespace, &m.license.metadata.name)
        .into_iter()
        .filter(|r| r.instance == m.instance && !r.terminal() && r.expires_at(s.ttl, now) > now)
        .min_by(|a, b| a.requested_at.cmp(&b.requested_at).then(a.name.cmp(&b.name)));
    if let Some(r) = waiting {
        let expires = r.expires_at(s.ttl, now);
        return Click {
            outcome: "pending",
            reason: "RequestPending",
            message: format!("a request for `{}` waits for approval until {expires}", m.instance),
            pending: Some(RequestView {
                name: r.name.clone(),
                requested_at: r.requested_at.map(|t| t.to_string()).unwrap_or_default(),
                expires_at: expires.to_string(),
            }),
        };
    }
    if s.mode == ActivationMode::Request {
        return Click {
            outcome: "request",
            reason: "ApprovalNeeded",
            message: format!("a click records a request for `{}` that an operator approves", m.instance),
            pending: None,
        };
    }
    let approval = s.idle_minutes;
    let Some(active) = m.effective_active().filter(|a| m.members.iter().any(|(n, _)| n == a)) else {
        return Click {
            outcome: "switch",
            reason: "NoActiveInstance",
            message: format!("no instance is active: a click activates `{}` at once", m.instance),
            pending: None,
        };
    };
    let activity = m.active_activity().unwrap_or_default();
    let needed = u64::from(approval) * 60;
    match (activity.players(now), activity.idle_seconds(now)) {
        (Some(0), Some(idle)) if idle >= needed => Click {
            outcome: "switch",
            reason: "ActiveInstanceIdle",
            message: format!(
                "nobody has played on `{active}` for {}: a click activates `{}` at once",
                Duration::from_seconds(idle - idle % 60),
                m.instance
            ),
            pending: None,
        },
        (Some(0), _) => Click {
            outcome: "request",
            reason: "ActiveInstanceRecentlyUsed",
            message: format!(
                "`{active}` has not been idle for {approval} minutes yet: a click records a request for an operator"
            ),
            pending: None,
        },
        (Some(n), _) => Click {
            outcome: "request",
            reason: "ActiveInstanceInUse",
            message: format!(
                "{n} player{} connected to `{active}`: a click records a request for an operator",
                if n == 1 { " is" } else { "s are" }
            ),
            pending: None,
        },
        (None, _) => Click {
            outcome: "request",
            reason: "ActivePlayersUnknown",
            message: format!(
                "the players of `{active}` are not known right now: a click records a request for an operator"
            ),
            pending: None,
        },
    }
}

fn parse_now(now: Option<&str>) -> Result<Timestamp, InputError> {
    let text = now.ok_or_else(|| InputError::InvalidObservation {
        path: "now".into(),
        detail: "missing field `now`: the policy has no clock, so the caller must give the time".into(),
    })?;
    Timestamp::parse(text).map_err(|e| InputError::InvalidObservation { path: "now".into(), detail: e.to_string() })
}

fn check_size(count: usize) -> Result<(), InputError> {
    if count > MAX_OBJECTS {
        return Err(InputError::TooManyObjects { count, limit: MAX_OBJECTS });
    }
    Ok(())
}

/// `foundry/standby/page`: the facts the page for a host shows.
pub fn page(call: &StandbyCall) -> Result<StandbyPage, Vec<InputError>> {
    let now = parse_now(call.now.as_deref()).map_err(|e| vec![e])?;
    check_size(call.licenses.len() + call.instances.len() + call.requests.len()).map_err(|e| vec![e])?;
    let Some(m) = resolve(call) else { return Ok(StandbyPage { page: None }) };
    let status = m.license_value.get("status");
    let active = m.effective_active().map(str::to_owned);
    let activity = m.active_activity();
    let players = activity.as_ref().and_then(|a| a.players(now));
    let idle_since =
        activity.as_ref().filter(|a| a.players(now) == Some(0)).and_then(|a| a.idle_since).map(|t| t.to_string());
    let checked = activity.as_ref().and_then(|a| a.last_checked_at).map(|t| t.to_string());
    let warnings: Vec<Warning> = status
        .and_then(|s| s.get("warnings"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|w| {
            Some(Warning {
                code: shorten(w.get("code")?.as_str()?),
                message: shorten_long(w.get("message")?.as_str()?),
            })
        })
        .collect();
    let desired = m.desired().unwrap_or_default();
    let blocked_since = status.and_then(|s| text(s, "/pendingSince")).map(str::to_owned);
    let switch = if desired != active.as_deref().unwrap_or_default() || blocked_since.is_some() {
        let message = warnings
            .iter()
            .find(|w| w.code.starts_with("SwitchBlocked"))
            .map(|w| w.message.clone())
            .unwrap_or_else(|| "the switch waits for the license to be routed again".into());
        Some(SwitchView { to: desired.to_owned(), blocked_since, message })
    } else {
        None
    };
    let c = click(&m, call, now);
    let mode = settings(&m.license, &m.object).map(|s| s.mode).unwrap_or_default();
    let view = PageView {
        hostname: format!("{}.{}", m.instance, m.base_domain),
        state: if active.as_deref() == Some(m.instance.as_str()) { "active" } else { "standby" }.into(),
        active_hostname: active.as_ref().map(|a| format!("{a}.{}", m.base_domain)),
        active_instance: active,
        active_players: players,
        active_idle_since: idle_since,
        active_checked_at: checked,
        switch,
        warnings,
        scheduled_delete_at: m.scheduled_delete_at.clone(),
        activation: ActivationView {
            mode: mode.as_str().into(),
            button: matches!(c.outcome, "switch" | "request"),
            outcome: c.outcome.into(),
            reason: c.reason.into(),
            message: c.message,
            pending_request: c.pending,
        },
        license: m.license.metadata.name.clone(),
        instance: m.instance,
    };
    Ok(StandbyPage { page: Some(view) })
}

fn shorten_long(text: &str) -> String {
    if text.chars().count() <= 300 { text.to_owned() } else { text.chars().take(300).chain(['…']).collect() }
}

/// `foundry/activation/request`: what a click on "Request activation" does.
pub fn request(call: &StandbyCall) -> Result<ActivationDecision, Vec<InputError>> {
    let now = parse_now(call.now.as_deref()).map_err(|e| vec![e])?;
    check_size(call.licenses.len() + call.instances.len() + call.requests.len()).map_err(|e| vec![e])?;
    let Some(m) = resolve(call) else {
        return Ok(ActivationDecision {
            outcome: "notFound".into(),
            reason: "UnknownHost".into(),
            message: "no instance is published under this name".into(),
            license: None,
            instance: None,
            license_patch: None,
            request: None,
            pending_request: None,
        });
    };
    let c = click(&m, call, now);
    let license_name = m.license.metadata.name.clone();
    let (license_patch, request) = match c.outcome {
        "switch" => (Some(switch_patch(m.license_value, &m.instance)), None),
        "request" => {
            let request = json!({
                "apiVersion": API_VERSION,
                "kind": ACTIVATION_REQUEST_KIND,
                "metadata": {
                    "name": format!("activate-{}-{}", m.instance, now.unix()),
                    "namespace": m.namespace,
                    "labels": {PART_OF_LABEL: "foundry-vtt", LICENSE_LABEL: license_name, INSTANCE_LABEL: m.instance},
                },
                "spec": {
                    "licenseRef": {"name": license_name},
                    "instanceName": m.instance,
                    "approved": false,
                    "requestedAt": now.to_string(),
                },
            });
            (None, Some(request))
        }
        _ => (None, None),
    };
    Ok(ActivationDecision {
        outcome: c.outcome.into(),
        reason: c.reason.into(),
        message: c.message,
        license: Some(m.object.clone()),
        instance: Some(m.instance.clone()),
        license_patch,
        request,
        pending_request: c.pending.map(|p| p.name),
    })
}

/// The merge patch that asks a license for `instance`, valid only against the version that was read.
fn switch_patch(license: &Value, instance: &str) -> Value {
    let mut patch = json!({"spec": {"activeInstanceName": instance}});
    if let (Some(rv), Some(obj)) = (text(license, "/metadata/resourceVersion"), patch.as_object_mut()) {
        obj.insert("metadata".into(), json!({"resourceVersion": rv}));
    }
    patch
}

/// `foundry/activation/review`: what happens to each request of a license (rule 4).
pub fn review(call: &ReviewCall) -> Result<ReviewDecision, Vec<InputError>> {
    let now = parse_now(call.now.as_deref()).map_err(|e| vec![e])?;
    check_size(call.instances.len() + call.requests.len()).map_err(|e| vec![e])?;
    let object = object_ref(&call.license, LICENSE_KIND);
    if call.license.is_null() {
        return Err(vec![InputError::MissingField {
            object,
            path: String::new(),
            detail: "missing field `license`".into(),
        }]);
    }
    let license: FoundryLicense = from_value(&call.license, &object).map_err(|e| vec![e])?;
    let s = settings(&license, &object).map_err(|e| vec![e])?;
    let namespace = license.metadata.namespace().to_owned();
    let members = members(&call.instances, &namespace, &license.metadata.name);
    let active = text(&call.license, "/status/activeInstance");
    let desired = license.spec.active_instance_name.as_deref().filter(|d| !d.is_empty());
    let requests = requests_of(&call.requests, &namespace, &license.metadata.name);

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
        .filter(|_| s.mode != ActivationMode::Disabled && call.activation_enabled)
        .min_by(|a, b| a.requested_at.cmp(&b.requested_at).then(a.name.cmp(&b.name)))
        .map(|r| r.name.clone());

    let mut actions = Vec::new();
    let mut license_patch = None;
    for r in requests.iter().filter(|r| !r.terminal()) {
        let expires = r.expires_at(s.ttl, now);
        let (phase, reason, message) = if expires <= now {
            ("Expired", "Expired", format!("not approved before {expires}"))
        } else if s.mode == ActivationMode::Disabled || !call.activation_enabled {
            ("Refused", "ActivationDisabled", "the license no longer takes activation requests".to_owned())
        } else if let Err((reason, message)) = eligible(&r.instance) {
            ("Refused", reason, message)
        } else if Some(r.instance.as_str()) == active {
            ("Applied", "AlreadyActive", format!("`{}` is the active instance", r.instance))
        } else if Some(r.instance.as_str()) == desired {
            ("Applied", "AlreadyRequested", format!("the license asks for `{}`", r.instance))
        } else if winner.as_deref() == Some(r.name.as_str()) {
            license_patch = Some(switch_patch(&call.license, &r.instance));
            ("Applied", "Approved", format!("approved: the license now asks for `{}`", r.instance))
        } else if r.approved {
            ("Refused", "Superseded", "another approved request was applied first".to_owned())
        } else {
            let at = expires.to_string();
            if r.phase.as_deref() == Some("Pending") && r.expires_at_status.as_deref() == Some(at.as_str()) {
                continue;
            }
            let message = format!("waits for an operator to set `spec.approved: true` until {at}");
            actions.push(RequestAction {
                request: r.name.clone(),
                phase: "Pending".into(),
                reason: "AwaitingApproval".into(),
                status_patch: json!({"status": {"phase": "Pending", "reason": "AwaitingApproval", "message": message,
                    "expiresAt": at, "decidedAt": null}}),
                message,
            });
            continue;
        };
        actions.push(RequestAction {
            request: r.name.clone(),
            phase: phase.into(),
            reason: reason.into(),
            status_patch: json!({"status": {"phase": phase, "reason": reason, "message": message,
                "expiresAt": expires.to_string(), "decidedAt": now.to_string()}}),
            message,
        });
    }
    Ok(ReviewDecision { license: object, license_patch, actions })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(host: &str) -> StandbyCall {
        let license = |name: &str, ns: &str, domain: &str| {
            json!({"apiVersion": API_VERSION, "kind": LICENSE_KIND,
                "metadata": {"name": name, "namespace": ns},
                "spec": {"licenseSecretRef": {"name": format!("{name}-secret"), "key": "very-secret-key"},
                         "gateway": {"baseDomain": domain}, "activeInstanceName": "alpha",
                         "activation": {"mode": "request"}},
                "status": {"activeInstance": "alpha", "warnings": [{"code": "X", "message": "about `alpha`"}]}})
        };
        let instance = |name: &str, ns: &str, lic: &str| {
            json!({"apiVersion": API_VERSION, "kind": "FoundryInstance", "metadata": {"name": name, "namespace": ns},
                   "spec": {"licenseRef": {"name": lic}}, "status": {"connectedPlayers": 0}})
        };
        StandbyCall {
            host: host.into(),
            licenses: vec![
                license("guild", "tabletop", "dnd.example.com"),
                license("rivals", "other", "rivals.example.com"),
            ],
            instances: vec![
                instance("alpha", "tabletop", "guild"),
                instance("beta", "tabletop", "guild"),
                instance("zeta", "other", "rivals"),
            ],
            requests: vec![json!({"apiVersion": API_VERSION, "kind": ACTIVATION_REQUEST_KIND,
                "metadata": {"name": "activate-zeta-1", "namespace": "other", "creationTimestamp": "2026-11-22T18:00:00Z"},
                "spec": {"licenseRef": {"name": "rivals"}, "instanceName": "zeta"}})],
            now: Some("2026-11-22T18:30:00Z".into()),
            activation_enabled: true,
        }
    }

    #[test]
    fn the_page_carries_nothing_of_other_licenses_and_no_secret_reference() {
        let page = serde_json::to_string(&page(&call("beta.dnd.example.com")).unwrap()).unwrap();
        assert!(page.contains("\"instance\":\"beta\""), "{page}");
        for leak in ["secret", "rivals", "zeta", "other", "tabletop"] {
            assert!(!page.contains(leak), "the page view carries `{leak}`: {page}");
        }
        let decision = serde_json::to_string(&request(&call("beta.dnd.example.com")).unwrap()).unwrap();
        for leak in ["secret", "rivals", "zeta"] {
            assert!(!decision.contains(leak), "the click decision carries `{leak}`: {decision}");
        }
    }

    #[test]
    fn hosts_are_normalized_strictly() {
        assert_eq!(normalize_host("Beta.DND.example.com:8443").as_deref(), Some("beta.dnd.example.com"));
        for bad in [
            "",
            "beta.dnd.example.com.",
            "beta.dnd.example.com:",
            "beta.dnd.example.com:0",
            "beta.dnd.example.com:65536",
            "beta.dnd.example.com:+80",
            "192.0.2.1",
            "[::1]",
            "béta.dnd.example.com",
            "beta dnd.example.com",
            "beta_x.dnd.example.com",
        ] {
            assert_eq!(normalize_host(bad), None, "{bad:?}");
        }
        assert_eq!(normalize_host(&"a.".repeat(200)), None);
    }
}
