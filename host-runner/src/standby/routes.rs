//! The standby page's routes (axum handlers): `/`, the two embedded assets, `/healthz` (the process answers),
//! `/readyz` (the cluster has been read), `/favicon.ico` and `POST /activate`, matched exactly; anything else is
//! the one 404 page.
//!
//! A handler checks the request (rate limits, host, origin, CSRF), takes what the host's page needs from the
//! [`super::store::Store`], has the policy decide off the async workers ([`super::Standby::decide`]), and does the
//! write the policy asked for. It never opens a file and never holds a lock across I/O.

use super::html;
use super::security::{CSRF_COOKIE, CSRF_FIELD, SECURITY_HEADERS, cookie, form_field, same_origin};
use super::store::{HostObjects, HostView};
use super::{Standby, limits::client_key, unix};
use crate::cluster::ClusterError;
use crate::http::Peer;
use crate::kube::Resource;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Extension, State};
use axum::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use axum::http::{StatusCode, Uri};
use axum::response::Response;
use axum::routing::{MethodRouter, get, post};
use policy_core::api::standby::{ActivationOutcome, StandbyCallRef, normalize_host};
use serde_json::json;
use std::sync::Arc;
use tower_http::set_header::SetResponseHeaderLayer;

static CSS: &str = include_str!("assets/standby.css");
static JS: &str = include_str!("assets/standby.js");

/// The service's router, with the security headers on every answer.
pub(super) fn router(state: Arc<Standby>) -> Router {
    let only = |route: MethodRouter<Arc<Standby>>| route.fallback(method_not_allowed);
    let mut router = Router::new()
        .route("/", only(get(page)))
        .route("/assets/standby.css", only(get(|| async { asset("text/css; charset=utf-8", CSS) })))
        .route("/assets/standby.js", only(get(|| async { asset("text/javascript; charset=utf-8", JS) })))
        .route("/healthz", only(get(|| async { respond(StatusCode::OK, "text/plain; charset=utf-8", "ok\n") })))
        .route("/readyz", only(get(ready)))
        // Browsers ask for it on every visit; there is none, and saying so without a 404 keeps their consoles clean.
        .route(
            "/favicon.ico",
            get(|| async { respond(StatusCode::NO_CONTENT, "image/x-icon", "") }).fallback(not_found),
        )
        .route("/activate", only(post(activate)))
        .fallback(not_found)
        .with_state(state.clone());
    router = crate::http::limit_layers(router, &state.options.server);
    router = router
        .layer(SetResponseHeaderLayer::if_not_present(header::CACHE_CONTROL, HeaderValue::from_static("no-store")));
    for (name, value) in SECURITY_HEADERS {
        router = router
            .layer(SetResponseHeaderLayer::overriding(HeaderName::from_static(name), HeaderValue::from_static(value)));
    }
    router
}

fn respond(status: StatusCode, content_type: &'static str, body: impl Into<Body>) -> Response {
    let mut response = Response::new(body.into());
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

fn html(status: StatusCode, body: String) -> Response {
    respond(status, "text/html; charset=utf-8", body)
}

async fn not_found() -> Response {
    html(StatusCode::NOT_FOUND, html::not_found())
}

fn unavailable() -> Response {
    html(StatusCode::SERVICE_UNAVAILABLE, html::unavailable())
}

async fn method_not_allowed() -> Response {
    let mut answer = respond(StatusCode::METHOD_NOT_ALLOWED, "text/plain; charset=utf-8", "method not allowed\n");
    answer.headers_mut().insert(header::ALLOW, HeaderValue::from_static("GET, HEAD, POST"));
    answer
}

/// Ready once every kind has been listed: until then no page could be answered.
async fn ready(State(state): State<Arc<Standby>>) -> Response {
    if state.store.synced() {
        respond(StatusCode::OK, "text/plain; charset=utf-8", "ready\n")
    } else {
        respond(StatusCode::SERVICE_UNAVAILABLE, "text/plain; charset=utf-8", "not ready\n")
    }
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut answer = respond(StatusCode::OK, content_type, body);
    answer.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=300"));
    answer
}

fn limited(retry_after: u64) -> Response {
    let mut answer = respond(StatusCode::TOO_MANY_REQUESTS, "text/plain; charset=utf-8", "too many requests\n");
    if let Ok(v) = HeaderValue::from_str(&retry_after.to_string()) {
        answer.headers_mut().insert(header::RETRY_AFTER, v);
    }
    answer
}

/// The one `Host` header, lowercased; `None` when absent, repeated or not text.
fn host_of(headers: &HeaderMap) -> Option<String> {
    let mut values = headers.get_all(header::HOST).iter();
    let host = values.next()?;
    if values.next().is_some() {
        return None;
    }
    host.to_str().ok().filter(|h| h.len() <= policy_core::api::standby::MAX_HOST).map(str::to_ascii_lowercase)
}

/// The base domain a host would be under (`<instance>.<baseDomain>`), as the policy reads hosts.
fn base_domain(host: &str) -> Option<String> {
    normalize_host(host)?.split_once('.').map(|(_, rest)| rest.to_owned())
}

/// What the store holds for a host: `Ok(None)` when no license claims its base domain.
fn objects_for(state: &Standby, host: &str) -> Result<Option<HostObjects>, ()> {
    let Some(domain) = base_domain(host) else { return Ok(None) };
    match state.store.host(&domain) {
        HostView::Unknown => Ok(None),
        HostView::Ready(objects) => Ok(Some(objects)),
        HostView::Unavailable(why) => {
            state.warn_throttled(&why);
            Err(())
        }
    }
}

async fn page(
    State(state): State<Arc<Standby>>,
    Extension(Peer(peer)): Extension<Peer>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let key = client_key(peer, &headers, state.options.trust_forwarded_for);
    if let Err(secs) = state.pages.check(&key) {
        return limited(secs);
    }
    let Some(host) = host_of(&headers) else { return not_found().await };
    let notice =
        uri.query().and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("result="))).and_then(html::result_notice);
    let secure = headers.get("x-forwarded-proto").is_some_and(|p| p.as_bytes().eq_ignore_ascii_case(b"https"));
    // A host whose base domain no license claims names nothing: the policy would find no license to match, so it
    // is not asked.
    let objects = match objects_for(&state, &host) {
        Ok(Some(objects)) => objects,
        Ok(None) => return not_found().await,
        Err(()) => return unavailable(),
    };
    let now = (state.clock)();
    let activation = state.options.activation;
    let call_host = host.clone();
    let decided = state
        .decide(move |policy| {
            let now = now.to_string();
            policy.standby_page(&StandbyCallRef {
                host: &call_host,
                licenses: &objects.licenses,
                instances: &objects.instances,
                requests: &objects.requests,
                now: &now,
                activation_enabled: activation,
            })
        })
        .await;
    let page = match decided {
        Some(Ok(page)) => page,
        Some(Err(e)) => {
            tracing::error!(error = %e, code = e.code(), "the policy failed");
            return unavailable();
        }
        None => return unavailable(),
    };
    let Some(view) = page.page else { return not_found().await };
    let token = state.csrf.issue(&host, unix(now));
    let mut answer = html(StatusCode::OK, html::page(&view, &token, notice, now));
    let cookie = format!(
        "{CSRF_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
        state.options.token_lifetime.as_secs().saturating_mul(2),
        if secure { "; Secure" } else { "" }
    );
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        answer.headers_mut().insert(header::SET_COOKIE, v);
    }
    answer
}

/// How a POST ended, for the page (JSON for the script, a redirect without it).
struct Outcome {
    status: StatusCode,
    code: &'static str,
    message: String,
    retry_after: Option<u64>,
}

impl Outcome {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: html::sentence(&message.into()).replace('`', ""), retry_after: None }
    }

    fn limited(secs: u64) -> Self {
        let mut o = Self::new(StatusCode::TOO_MANY_REQUESTS, "limited", "too many requests; try again later");
        o.retry_after = Some(secs);
        o
    }

    fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "notFound", "not found")
    }

    fn unavailable() -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "failed", "the platform is not reachable; try again later")
    }
}

async fn activate(
    State(state): State<Arc<Standby>>,
    Extension(Peer(peer)): Extension<Peer>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let wants_json =
        headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|v| v.contains("application/json"));
    let outcome = match click(&state, peer, &headers, &body).await {
        Ok(o) | Err(o) => o,
    };
    if outcome.status == StatusCode::NOT_FOUND {
        return not_found().await;
    }
    if wants_json {
        let body = json!({"outcome": outcome.code, "message": outcome.message}).to_string();
        let mut answer = respond(outcome.status, "application/json", body);
        if let Some(secs) = outcome.retry_after
            && let Ok(v) = HeaderValue::from_str(&secs.to_string())
        {
            answer.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return answer;
    }
    let mut answer = respond(StatusCode::SEE_OTHER, "text/plain; charset=utf-8", "");
    if let Ok(v) = HeaderValue::from_str(&format!("/?result={}", outcome.code)) {
        answer.headers_mut().insert(header::LOCATION, v);
    }
    answer
}

async fn click(
    state: &Arc<Standby>,
    peer: std::net::SocketAddr,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Outcome, Outcome> {
    let key = client_key(peer, headers, state.options.trust_forwarded_for);
    state.clients.check(&key).map_err(Outcome::limited)?;

    let forbidden = || Outcome::new(StatusCode::FORBIDDEN, "expired", "the page has expired; reload it and try again");
    let host = host_of(headers).ok_or_else(Outcome::not_found)?;
    let header = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    let same = match (header(header::ORIGIN), header(header::REFERER)) {
        (Some(origin), _) => same_origin(origin, &host),
        (None, Some(referer)) => same_origin(referer, &host),
        (None, None) => false,
    };
    if !same {
        return Err(forbidden());
    }
    let body = String::from_utf8_lossy(body);
    let now = (state.clock)();
    let token_ok = match (form_field(&body, CSRF_FIELD), header(header::COOKIE).and_then(|c| cookie(c, CSRF_COOKIE))) {
        (Some(form), Some(cookie)) => form == cookie && state.csrf.verify(form, &host, unix(now)),
        _ => false,
    };
    if !token_ok {
        return Err(forbidden());
    }

    let objects = match objects_for(state, &host) {
        Ok(Some(objects)) => objects,
        Ok(None) => return Err(Outcome::not_found()),
        Err(()) => return Err(Outcome::unavailable()),
    };
    let activation = state.options.activation;
    let call_host = host.clone();
    let decision = state
        .decide(move |policy| {
            let now = now.to_string();
            policy.activation_request(&StandbyCallRef {
                host: &call_host,
                licenses: &objects.licenses,
                instances: &objects.instances,
                requests: &objects.requests,
                now: &now,
                activation_enabled: activation,
            })
        })
        .await;
    let decision = match decision {
        Some(Ok(d)) => d,
        Some(Err(e)) => {
            tracing::error!(error = %e, code = e.code(), "the policy failed");
            return Err(Outcome::unavailable());
        }
        None => return Err(Outcome::unavailable()),
    };
    let (Some(license), Some(instance)) = (&decision.license, &decision.instance) else {
        return Err(Outcome::not_found());
    };
    match decision.outcome {
        ActivationOutcome::Refused => return Ok(Outcome::new(StatusCode::CONFLICT, "refused", decision.message)),
        ActivationOutcome::Pending => return Ok(Outcome::new(StatusCode::OK, "pending", decision.message)),
        _ => {}
    }
    let instance_key = format!("{}/{}/{instance}", license.namespace, license.name);
    state.instances.check(&instance_key).map_err(Outcome::limited)?;
    let failed = |e: ClusterError| {
        tracing::error!(instance = %instance_key, error = %e, code = e.code(), "activation failed");
        Outcome::new(StatusCode::BAD_GATEWAY, "failed", "the request could not be recorded; try again later")
    };
    let result = match (decision.outcome, &decision.license_patch, &decision.request) {
        (ActivationOutcome::Switch, Some(patch), _) => {
            let patched = state
                .api
                .merge_patch(Resource::License, &license.namespace, &license.name, patch)
                .await
                .map_err(failed)?;
            state.store.apply(Resource::License, &patched);
            Outcome::new(
                StatusCode::OK,
                "switch",
                format!(
                    "the switch to {instance} was requested. This page becomes the game once the platform has routed it"
                ),
            )
        }
        (ActivationOutcome::Request, _, Some(request)) => {
            match state.api.create(Resource::ActivationRequest, request).await {
                Ok(created) => state.store.apply(Resource::ActivationRequest, &created),
                // The same second's request from someone else: it exists, which is what was asked.
                Err(ClusterError::Refused { code: 409, .. }) => {}
                Err(e) => return Err(failed(e)),
            }
            Outcome::new(StatusCode::CREATED, "request", "your request was recorded; an operator has to approve it")
        }
        _ => return Err(Outcome::unavailable()),
    };
    tracing::info!(instance = %instance_key, outcome = result.code, "activation");
    Ok(result)
}
