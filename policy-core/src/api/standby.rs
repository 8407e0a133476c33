//! The standby page and activation requests: what a standby hostname shows (`foundry/standby/page`), what a click
//! on "Request activation" does (`foundry/activation/request`), and what happens to the requests an operator
//! approves or nobody answers (`foundry/activation/review`). The rules are in `rules::activation`; this file holds
//! the calls and answers and assembles the answers from what the rules decided.
//!
//! The page it describes never carries data of another license or any secret reference.

use crate::error::{InputError, ObjectRef};
use crate::input::{from_value, object_ref, parse_now, text};
use crate::model::{FoundryLicense, LICENSE_KIND, Warning};
use crate::render::requests::activation_request;
use crate::rules::activation;
use crate::rules::limits::MAX_STANDBY_OBJECTS;
use crate::rules::routing::RouteState;
use crate::text::shorten;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

pub use crate::rules::activation::{
    ActivationOutcome, DEFAULT_IDLE_MINUTES, DEFAULT_REQUEST_TTL, FINISHED_REQUEST_RETENTION_SECONDS, MAX_HOST,
    RequestPhase, normalize_host,
};

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

/// A [`StandbyCall`] whose objects are borrowed (any serializable form of them: JSON values, or JSON text a host
/// keeps), so a host that holds many objects encodes a call without copying them. Encodes exactly as a
/// [`StandbyCall`] does.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StandbyCallRef<'a, O: Serialize> {
    /// The `Host` header, as received.
    pub host: &'a str,
    /// The licenses.
    pub licenses: &'a [O],
    /// The instances.
    pub instances: &'a [O],
    /// The activation requests.
    pub requests: &'a [O],
    /// The time (RFC 3339).
    pub now: &'a str,
    /// The service runs with the permissions activation needs.
    pub activation_enabled: bool,
}

/// A [`ReviewCall`] whose objects are borrowed; encodes exactly as a [`ReviewCall`] does.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReviewCallRef<'a, O: Serialize> {
    /// The license.
    pub license: &'a O,
    /// The instances of its namespace.
    pub instances: &'a [O],
    /// The activation requests of its namespace.
    pub requests: &'a [O],
    /// The time (RFC 3339).
    pub now: &'a str,
    /// The service runs with the permissions activation needs.
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
    pub state: RouteState,
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
    pub outcome: ActivationOutcome,
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
    pub outcome: ActivationOutcome,
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
    /// The finished requests whose record has been kept long enough ([`FINISHED_REQUEST_RETENTION_SECONDS`]
    /// after `status.decidedAt`), in name order: delete each with its `uid` and `resourceVersion` as
    /// preconditions, so a request changed meanwhile is left for the next review.
    #[serde(default)]
    pub deletions: Vec<RequestDeletion>,
}

/// A finished request to delete.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestDeletion {
    /// The request's name.
    pub request: String,
    /// Its `metadata.uid` as read (a precondition of the deletion).
    pub uid: Option<String>,
    /// Its `metadata.resourceVersion` as read (a precondition of the deletion).
    pub resource_version: Option<String>,
    /// When it was decided (RFC 3339), or expired when no decision time was recorded; `null` when it carries no
    /// readable time at all.
    pub decided_at: Option<String>,
}

/// What happens to one request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestAction {
    /// The request's name.
    pub request: String,
    /// `Pending`, `Applied`, `Expired` or `Refused`.
    pub phase: RequestPhase,
    /// Machine reason.
    pub reason: String,
    /// The reason in words.
    pub message: String,
    /// The JSON merge patch for the request's `status` subresource.
    pub status_patch: Value,
}

fn check_size(count: usize) -> Result<(), InputError> {
    if count > MAX_STANDBY_OBJECTS {
        return Err(InputError::TooManyObjects { count, limit: MAX_STANDBY_OBJECTS });
    }
    Ok(())
}

/// `foundry/standby/page`: the facts the page for a host shows.
pub fn page(call: &StandbyCall) -> Result<StandbyPage, Vec<InputError>> {
    let now = parse_now(call.now.as_deref()).map_err(|e| vec![e])?;
    check_size(call.licenses.len() + call.instances.len() + call.requests.len()).map_err(|e| vec![e])?;
    let Some(m) = activation::resolve(&call.host, &call.licenses, &call.instances) else {
        return Ok(StandbyPage { page: None });
    };
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
    let c = activation::click(&m, &call.requests, call.activation_enabled, now);
    let mode = activation::settings(&m.license, &m.object).map(|s| s.mode).unwrap_or_default();
    let view = PageView {
        hostname: format!("{}.{}", m.instance, m.base_domain),
        state: if active.as_deref() == Some(m.instance.as_str()) { RouteState::Active } else { RouteState::Standby },
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
            button: matches!(c.outcome, ActivationOutcome::Switch | ActivationOutcome::Request),
            outcome: c.outcome,
            reason: c.reason.into(),
            message: c.message,
            pending_request: c.pending.map(|p| RequestView {
                name: p.name,
                requested_at: p.requested_at.map(|t| t.to_string()).unwrap_or_default(),
                expires_at: p.expires_at.to_string(),
            }),
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
    let Some(m) = activation::resolve(&call.host, &call.licenses, &call.instances) else {
        return Ok(ActivationDecision {
            outcome: ActivationOutcome::NotFound,
            reason: "UnknownHost".into(),
            message: "no instance is published under this name".into(),
            license: None,
            instance: None,
            license_patch: None,
            request: None,
            pending_request: None,
        });
    };
    let c = activation::click(&m, &call.requests, call.activation_enabled, now);
    let (license_patch, request) = match c.outcome {
        ActivationOutcome::Switch => (Some(switch_patch(m.license_value, &m.instance)), None),
        ActivationOutcome::Request => {
            (None, Some(activation_request(&m.namespace, &m.license.metadata.name, &m.instance, now)))
        }
        _ => (None, None),
    };
    Ok(ActivationDecision {
        outcome: c.outcome,
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
    let s = activation::settings(&license, &object).map_err(|e| vec![e])?;
    let reviewed =
        activation::review(&call.license, &license, s, &call.instances, &call.requests, call.activation_enabled, now);
    let actions = reviewed
        .items
        .into_iter()
        .map(|item| {
            // A waiting request has not been decided yet.
            let decided_at = if item.phase.is_final() { Value::String(now.to_string()) } else { Value::Null };
            RequestAction {
                status_patch: json!({"status": {"phase": item.phase.as_str(), "reason": item.reason,
                    "message": item.message, "expiresAt": item.expires_at.to_string(), "decidedAt": decided_at}}),
                request: item.request,
                phase: item.phase,
                reason: item.reason.into(),
                message: item.message,
            }
        })
        .collect();
    let license_patch = reviewed.switch_to.map(|instance| switch_patch(&call.license, &instance));
    let deletions = reviewed
        .expunged
        .into_iter()
        .map(|e| RequestDeletion {
            request: e.request,
            uid: e.uid,
            resource_version: e.resource_version,
            decided_at: e.decided_at.map(|t| t.to_string()),
        })
        .collect();
    Ok(ReviewDecision { license: object, license_patch, actions, deletions })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ACTIVATION_REQUEST_KIND, API_VERSION};

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
