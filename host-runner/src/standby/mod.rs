//! `host-runner standby-page`: the page every standby route points at, with the "Request activation" button.
//!
//! One HTTP/1.1 server (hyper) answers every standby hostname. It reads the platform's licenses, instances and
//! activation requests through the kube-rs client (a short-lived cache, refreshed at most every `--cache-ttl`), and
//! asks the policy for everything: which instance a `Host` names and what its page shows
//! (`foundry/standby/page`), what a click does (`foundry/activation/request`), and what happens to the requests
//! operators approve or leave (`foundry/activation/review`, polled every `--review-interval`). It then does only
//! the I/O: render, create the request, patch the license's `spec.activeInstanceName`, patch a request's status.
//!
//! It faces the internet, so it serves nothing but the page and its two embedded assets (no filesystem path is
//! ever opened), matches paths exactly, bounds header and body sizes and every timeout, and accepts a POST only
//! with a same-origin `Origin`/`Referer`, a valid CSRF token in both the form and a `SameSite=Strict` cookie, and
//! within the per-client and per-instance rate limits. An unknown host gets the same 404 page whatever it asked.

mod html;
pub mod security;

use crate::cluster::ClusterError;
use crate::kube::{KubeClient, Resource};
use crate::policy::Policy;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use policy_core::api::Timestamp;
use policy_core::api::standby::{ActivationOutcome, ReviewCall, StandbyCall};
use security::{CSRF_COOKIE, CSRF_FIELD, CsrfKeys, RateLimiter, SECURITY_HEADERS};
use serde_json::{Value, json};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Largest POST body (the form has one field).
pub const MAX_BODY: usize = 2048;
/// Largest request head (line and headers).
pub const MAX_HEAD: usize = 16 * 1024;
/// Connections served at once; more wait in the kernel's backlog.
pub const MAX_CONNECTIONS: usize = 256;
/// Keys each rate limiter tracks.
const MAX_RATE_KEYS: usize = 10_000;

static CSS: &str = include_str!("assets/standby.css");
static JS: &str = include_str!("assets/standby.js");

/// How the service runs.
#[derive(Debug, Clone)]
pub struct StandbyOptions {
    /// Where to listen.
    pub listen: SocketAddr,
    /// The service has the activation permissions (create requests, patch licenses).
    pub activation: bool,
    /// How long a read of the cluster is reused.
    pub cache_ttl: Duration,
    /// How often activation requests are reviewed.
    pub review_interval: Duration,
    /// A CSRF token is valid for between this and twice this.
    pub token_lifetime: Duration,
    /// Page views per client per `client_window` (each one reads the policy over the whole platform).
    pub page_limit: u32,
    /// POSTs per client per `client_window`.
    pub client_limit: u32,
    /// The client limit's window.
    pub client_window: Duration,
    /// Activations or requests per instance per `instance_window`.
    pub instance_limit: u32,
    /// The instance limit's window.
    pub instance_window: Duration,
    /// Identify clients by the last `X-Forwarded-For` entry (the one the Gateway added) instead of the peer.
    pub trust_forwarded_for: bool,
    /// Timeout of a whole request (head, body, cluster reads, answer).
    pub request_timeout: Duration,
}

/// What the cluster held at the last read.
#[derive(Debug, Clone)]
struct Cached {
    at: Instant,
    licenses: Vec<Value>,
    instances: Vec<Value>,
    requests: Vec<Value>,
}

struct State {
    policy: Policy,
    api: KubeClient,
    options: StandbyOptions,
    csrf: CsrfKeys,
    clock: fn() -> Timestamp,
    cache: tokio::sync::Mutex<Option<Cached>>,
    pages: Mutex<RateLimiter>,
    clients: Mutex<RateLimiter>,
    instances: Mutex<RateLimiter>,
}

type Answer = Response<Full<Bytes>>;

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StandbyError {
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {reason}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        reason: String,
    },
    /// No random key could be made.
    #[error(transparent)]
    Random(#[from] security::RandomUnavailable),
}

/// Serves until the process ends. Prints `listening on <addr>` on `announce` once bound.
pub async fn serve(
    policy: Policy,
    api: KubeClient,
    options: StandbyOptions,
    clock: fn() -> Timestamp,
    announce: impl FnOnce(SocketAddr),
) -> Result<(), StandbyError> {
    let listener = tokio::net::TcpListener::bind(options.listen)
        .await
        .map_err(|e| StandbyError::Listen { addr: options.listen, reason: e.to_string() })?;
    let bound = listener.local_addr().unwrap_or(options.listen);
    let state = Arc::new(State {
        policy,
        api,
        csrf: CsrfKeys::new(options.token_lifetime)?,
        clock,
        cache: tokio::sync::Mutex::new(None),
        pages: Mutex::new(RateLimiter::new(options.page_limit, options.client_window, MAX_RATE_KEYS)),
        clients: Mutex::new(RateLimiter::new(options.client_limit, options.client_window, MAX_RATE_KEYS)),
        instances: Mutex::new(RateLimiter::new(options.instance_limit, options.instance_window, MAX_RATE_KEYS)),
        options,
    });
    announce(bound);
    if state.options.activation {
        let reviewer = state.clone();
        tokio::spawn(async move { review_loop(reviewer).await });
    }
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok((stream, peer)) = listener.accept().await else { continue };
        let Ok(permit) = slots.clone().acquire_owned().await else { continue };
        let state = state.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let state = state.clone();
                async move { Ok::<_, Infallible>(handle(&state, peer, req).await) }
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(10))
                .max_buf_size(MAX_HEAD)
                .serve_connection(TokioIo::new(stream), service);
            // A connection never outlives a few requests' worth of time, whatever the client does.
            let _ = tokio::time::timeout(Duration::from_secs(120), connection).await;
            drop(permit);
        });
    }
}

fn respond(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Answer {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    for (name, value) in SECURITY_HEADERS {
        headers.insert(name, HeaderValue::from_static(value));
    }
    if let Ok(v) = HeaderValue::from_str(content_type) {
        headers.insert(header::CONTENT_TYPE, v);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn html(status: StatusCode, body: String) -> Answer {
    respond(status, "text/html; charset=utf-8", body)
}

fn not_found() -> Answer {
    html(StatusCode::NOT_FOUND, html::not_found())
}

/// The one `Host` header, lowercased; `None` when absent, repeated or not text.
fn host_of(req: &Request<Incoming>) -> Option<String> {
    let mut values = req.headers().get_all(header::HOST).iter();
    let host = values.next()?;
    if values.next().is_some() {
        return None;
    }
    host.to_str().ok().filter(|h| h.len() <= policy_core::api::standby::MAX_HOST).map(str::to_ascii_lowercase)
}

async fn handle(state: &State, peer: SocketAddr, req: Request<Incoming>) -> Answer {
    match tokio::time::timeout(state.options.request_timeout, route(state, peer, req)).await {
        Ok(answer) => answer,
        Err(_) => html(StatusCode::SERVICE_UNAVAILABLE, html::unavailable()),
    }
}

async fn route(state: &State, peer: SocketAddr, req: Request<Incoming>) -> Answer {
    let path = req.uri().path().to_owned();
    let method = req.method().clone();
    match (method, path.as_str()) {
        (Method::GET | Method::HEAD, "/") => {
            // Only what the page needs is kept across the cluster read.
            let host = host_of(&req);
            let result = req.uri().query().and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("result=")));
            let notice = result.and_then(html::result_notice);
            let secure =
                req.headers().get("x-forwarded-proto").is_some_and(|p| p.as_bytes().eq_ignore_ascii_case(b"https"));
            let key = client_key(state, peer, &req);
            drop(req);
            if let Err(secs) = state.pages.lock().unwrap_or_else(|e| e.into_inner()).hit(&key, Instant::now()) {
                let mut answer =
                    respond(StatusCode::TOO_MANY_REQUESTS, "text/plain; charset=utf-8", "too many requests\n");
                if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                    answer.headers_mut().insert(header::RETRY_AFTER, v);
                }
                return answer;
            }
            page(state, host, notice, secure).await
        }
        (Method::GET | Method::HEAD, "/assets/standby.css") => asset("text/css; charset=utf-8", CSS),
        (Method::GET | Method::HEAD, "/assets/standby.js") => asset("text/javascript; charset=utf-8", JS),
        (Method::GET | Method::HEAD, "/healthz") => respond(StatusCode::OK, "text/plain; charset=utf-8", "ok\n"),
        // Browsers ask for it on every visit; there is none, and saying so without a 404 keeps their consoles clean.
        (Method::GET | Method::HEAD, "/favicon.ico") => respond(StatusCode::NO_CONTENT, "image/x-icon", ""),
        (Method::POST, "/activate") => activate(state, peer, req).await,
        (_, "/" | "/activate" | "/healthz" | "/assets/standby.css" | "/assets/standby.js") => {
            let mut answer =
                respond(StatusCode::METHOD_NOT_ALLOWED, "text/plain; charset=utf-8", "method not allowed\n");
            answer.headers_mut().insert(header::ALLOW, HeaderValue::from_static("GET, HEAD, POST"));
            answer
        }
        _ => not_found(),
    }
}

fn asset(content_type: &str, body: &'static str) -> Answer {
    let mut answer = respond(StatusCode::OK, content_type, body);
    answer.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=300"));
    answer
}

impl State {
    /// The cluster as last read; read again when older than the cache TTL (or `force`). A failed read keeps
    /// serving the previous one.
    async fn snapshot(&self, force: bool) -> Result<Cached, ClusterError> {
        let mut cache = self.cache.lock().await;
        if let Some(c) = cache.as_ref()
            && !force
            && c.at.elapsed() < self.options.cache_ttl
        {
            return Ok(c.clone());
        }
        let read = async {
            let licenses = self.api.list(Resource::License, None).await?;
            let instances = self.api.list(Resource::Instance, None).await?;
            // Without the activation permissions requests cannot be read, and are not needed.
            let requests = if self.options.activation {
                self.api.list(Resource::ActivationRequest, None).await?
            } else {
                Vec::new()
            };
            Ok::<_, ClusterError>(Cached { at: Instant::now(), licenses, instances, requests })
        };
        match read.await {
            Ok(fresh) => {
                *cache = Some(fresh.clone());
                Ok(fresh)
            }
            Err(e) => {
                eprintln!("standby-page: reading the cluster failed: {e}");
                cache.clone().ok_or(e)
            }
        }
    }

    async fn invalidate(&self) {
        *self.cache.lock().await = None;
    }

    fn call(&self, host: &str, snap: &Cached, now: Timestamp) -> StandbyCall {
        StandbyCall {
            host: host.to_owned(),
            licenses: snap.licenses.clone(),
            instances: snap.instances.clone(),
            requests: snap.requests.clone(),
            now: Some(now.to_string()),
            activation_enabled: self.options.activation,
        }
    }
}

async fn page(state: &State, host: Option<String>, notice: Option<&'static str>, secure: bool) -> Answer {
    let Some(host) = host else { return not_found() };
    let now = (state.clock)();
    let Ok(snap) = state.snapshot(false).await else {
        return html(StatusCode::SERVICE_UNAVAILABLE, html::unavailable());
    };
    let page = match state.policy.standby_page(&state.call(&host, &snap, now)) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("standby-page: the policy failed: {e}");
            return html(StatusCode::SERVICE_UNAVAILABLE, html::unavailable());
        }
    };
    let Some(view) = page.page else { return not_found() };
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

fn unix(t: Timestamp) -> u64 {
    u64::try_from(t.unix()).unwrap_or(0)
}

/// The client a POST is counted against.
fn client_key(state: &State, peer: SocketAddr, req: &Request<Incoming>) -> String {
    if state.options.trust_forwarded_for
        && let Some(last) = req
            .headers()
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .rfind(|v| !v.is_empty())
    {
        return last.chars().take(64).collect();
    }
    peer.ip().to_string()
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
}

async fn activate(state: &State, peer: SocketAddr, req: Request<Incoming>) -> Answer {
    let wants_json =
        req.headers().get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|v| v.contains("application/json"));
    let outcome = match activate_inner(state, peer, req).await {
        Ok(o) | Err(o) => o,
    };
    if wants_json || outcome.status == StatusCode::NOT_FOUND {
        if outcome.status == StatusCode::NOT_FOUND {
            return not_found();
        }
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

async fn activate_inner(state: &State, peer: SocketAddr, req: Request<Incoming>) -> Result<Outcome, Outcome> {
    let limited = |secs: u64| {
        let mut o = Outcome::new(StatusCode::TOO_MANY_REQUESTS, "limited", "too many requests; try again later");
        o.retry_after = Some(secs);
        o
    };
    let key = client_key(state, peer, &req);
    state.clients.lock().unwrap_or_else(|e| e.into_inner()).hit(&key, Instant::now()).map_err(limited)?;

    let forbidden = || Outcome::new(StatusCode::FORBIDDEN, "expired", "the page has expired; reload it and try again");
    let host = host_of(&req).ok_or_else(|| Outcome::new(StatusCode::NOT_FOUND, "notFound", "not found"))?;
    let (same_origin, cookie, declared) = {
        let header =
            |name: header::HeaderName| req.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let same_origin = match (header(header::ORIGIN), header(header::REFERER)) {
            (Some(origin), _) => security::same_origin(&origin, &host),
            (None, Some(referer)) => security::same_origin(&referer, &host),
            (None, None) => false,
        };
        let cookie = header(header::COOKIE).and_then(|c| security::cookie(&c, CSRF_COOKIE).map(str::to_owned));
        let declared = header(header::CONTENT_LENGTH).and_then(|v| v.parse::<usize>().ok());
        (same_origin, cookie, declared)
    };
    if !same_origin {
        return Err(forbidden());
    }
    if declared.is_some_and(|n| n > MAX_BODY) {
        return Err(Outcome::new(StatusCode::PAYLOAD_TOO_LARGE, "refused", "the request is too large"));
    }
    let body = Limited::new(req.into_body(), MAX_BODY)
        .collect()
        .await
        .map_err(|_| Outcome::new(StatusCode::PAYLOAD_TOO_LARGE, "refused", "the request is too large"))?
        .to_bytes();
    let body = String::from_utf8_lossy(&body);
    let now = (state.clock)();
    let token_ok = match (security::form_field(&body, CSRF_FIELD), cookie.as_deref()) {
        (Some(form), Some(cookie)) => form == cookie && state.csrf.verify(form, &host, unix(now)),
        _ => false,
    };
    if !token_ok {
        return Err(forbidden());
    }

    let unavailable =
        || Outcome::new(StatusCode::SERVICE_UNAVAILABLE, "failed", "the platform is not reachable; try again later");
    let snap = state.snapshot(false).await.map_err(|_| unavailable())?;
    let decision = state.policy.activation_request(&state.call(&host, &snap, now)).map_err(|e| {
        eprintln!("standby-page: the policy failed: {e}");
        unavailable()
    })?;
    let (Some(license), Some(instance)) = (&decision.license, &decision.instance) else {
        return Err(Outcome::new(StatusCode::NOT_FOUND, "notFound", "not found"));
    };
    match decision.outcome {
        ActivationOutcome::Refused => return Ok(Outcome::new(StatusCode::CONFLICT, "refused", decision.message)),
        ActivationOutcome::Pending => return Ok(Outcome::new(StatusCode::OK, "pending", decision.message)),
        _ => {}
    }
    let instance_key = format!("{}/{}/{instance}", license.namespace, license.name);
    state.instances.lock().unwrap_or_else(|e| e.into_inner()).hit(&instance_key, Instant::now()).map_err(limited)?;
    let failed = |e: ClusterError| {
        eprintln!("standby-page: activation of {instance_key} failed: {e}");
        Outcome::new(StatusCode::BAD_GATEWAY, "failed", "the request could not be recorded; try again later")
    };
    let result = match (decision.outcome, &decision.license_patch, &decision.request) {
        (ActivationOutcome::Switch, Some(patch), _) => {
            state.api.merge_patch(Resource::License, &license.namespace, &license.name, patch).await.map_err(failed)?;
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
                Ok(_) => {}
                // The same second's request from someone else: it exists, which is what was asked.
                Err(ClusterError::Refused { code: 409, .. }) => {}
                Err(e) => return Err(failed(e)),
            }
            Outcome::new(StatusCode::CREATED, "request", "your request was recorded; an operator has to approve it")
        }
        _ => return Err(unavailable()),
    };
    eprintln!("standby-page: {instance_key}: {}", result.code);
    state.invalidate().await;
    Ok(result)
}

async fn review_loop(state: Arc<State>) {
    loop {
        tokio::time::sleep(state.options.review_interval).await;
        review_once(&state).await;
    }
}

/// Reviews the requests of every license that has any, applying what the policy decides.
async fn review_once(state: &State) {
    let Ok(snap) = state.snapshot(true).await else { return };
    let now = (state.clock)();
    let text = |v: &Value, p: &str| v.pointer(p).and_then(Value::as_str).unwrap_or_default().to_owned();
    let mut changed = false;
    for license in &snap.licenses {
        let (namespace, name) = (text(license, "/metadata/namespace"), text(license, "/metadata/name"));
        let in_namespace = |list: &[Value]| -> Vec<Value> {
            list.iter().filter(|o| text(o, "/metadata/namespace") == namespace).cloned().collect()
        };
        let requests: Vec<Value> =
            in_namespace(&snap.requests).into_iter().filter(|r| text(r, "/spec/licenseRef/name") == name).collect();
        if requests.is_empty() {
            continue;
        }
        let call = ReviewCall {
            license: license.clone(),
            instances: in_namespace(&snap.instances),
            requests,
            now: Some(now.to_string()),
            activation_enabled: state.options.activation,
        };
        let decision = match state.policy.activation_review(&call) {
            Ok(d) => d,
            Err(e) => {
                eprintln!("standby-page: reviewing requests of {namespace}/{name}: {e}");
                continue;
            }
        };
        if let Some(patch) = &decision.license_patch {
            if let Err(e) = state.api.merge_patch(Resource::License, &namespace, &name, patch).await {
                // The requests stay as they are and are reviewed again next time.
                eprintln!("standby-page: switching {namespace}/{name} failed: {e}");
                continue;
            }
            changed = true;
        }
        for action in &decision.actions {
            match state
                .api
                .merge_patch_status(Resource::ActivationRequest, &namespace, &action.request, &action.status_patch)
                .await
            {
                Ok(()) => {
                    changed = true;
                    eprintln!(
                        "standby-page: request {namespace}/{}: {} ({})",
                        action.request,
                        action.phase.as_str(),
                        action.reason
                    );
                }
                Err(e) => eprintln!("standby-page: updating request {namespace}/{}: {e}", action.request),
            }
        }
    }
    if changed {
        state.invalidate().await;
    }
}
