//! `host-runner standby-page`: the page every standby route points at, with the "Request activation" button.
//!
//! One router on the project's HTTP stack ([`crate::http`]) answers every standby hostname. Its parts:
//! - [`store`]: the cluster as the service sees it, kept by watches and bounded per namespace, with an index of
//!   licenses by base domain, so a page view reads only the licenses its `Host` names;
//! - `routes`: the axum handlers; [`security`]: CSRF tokens, the same-origin check and the response headers;
//!   [`limits`]: the rate limits; `review`: the review loop of activation requests; `html`: the page.
//!
//! The policy decides everything: which instance a `Host` names and what its page shows (`foundry/standby/page`),
//! what a click does (`foundry/activation/request`), and what happens to the requests operators approve or leave
//! (`foundry/activation/review`). It runs off the async workers, a few evaluations at a time, so `/healthz` and the
//! accept loop stay responsive while pages are evaluated. The service only renders and does the I/O: render,
//! create a request, patch a license's `spec.activeInstanceName`, patch a request's status, delete a finished
//! request.
//!
//! It faces the internet, so it serves nothing but the page and its two embedded assets (no filesystem path is
//! ever opened), matches paths exactly, bounds header and body sizes, every request's time and every connection's
//! life, and accepts a POST only with a same-origin `Origin`/`Referer`, a valid CSRF token in both the form and a
//! `SameSite=Strict` cookie, and within the per-client and per-instance rate limits. An unknown host gets the same
//! 404 page whatever it asked.

mod html;
pub mod limits;
mod review;
mod routes;
pub mod security;
pub mod store;

use crate::http::{ServerLimits, ServerStats};
use crate::kube::KubeClient;
use crate::policy::Policy;
use limits::Limiter;
use policy_core::api::Timestamp;
use security::CsrfKeys;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use store::{Store, StoreLimits};

/// Largest POST body (the form has one field).
pub const MAX_BODY: usize = 2048;

/// How the service runs.
#[derive(Debug, Clone)]
pub struct StandbyOptions {
    /// Where to listen.
    pub listen: SocketAddr,
    /// The service has the activation permissions (create and delete requests, patch licenses).
    pub activation: bool,
    /// How often activation requests are reviewed.
    pub review_interval: Duration,
    /// A CSRF token is valid for between this and twice this.
    pub token_lifetime: Duration,
    /// Page views per client per `client_window`.
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
    /// Policy evaluations at once (each on a blocking thread).
    pub evaluations: usize,
    /// The bounds of the server (connections, heads, bodies, request and connection times).
    pub server: ServerLimits,
    /// The bounds of the store (per namespace and in all).
    pub store: StoreLimits,
}

/// The service's shared state.
pub(crate) struct Standby {
    policy: Arc<Policy>,
    api: KubeClient,
    options: StandbyOptions,
    csrf: CsrfKeys,
    clock: fn() -> Timestamp,
    store: Arc<Store>,
    pages: Limiter<IpAddr>,
    clients: Limiter<IpAddr>,
    instances: Limiter<String>,
    evaluations: tokio::sync::Semaphore,
    last_warning: Mutex<Option<Instant>>,
}

impl std::fmt::Debug for Standby {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Standby").field("options", &self.options).finish_non_exhaustive()
    }
}

impl Standby {
    /// Runs a policy evaluation on a blocking thread, at most `evaluations` at once; `None` when it could not run
    /// (logged).
    async fn decide<T: Send + 'static>(&self, f: impl FnOnce(&Policy) -> T + Send + 'static) -> Option<T> {
        let Ok(_permit) = self.evaluations.acquire().await else { return None };
        let policy = self.policy.clone();
        match tokio::task::spawn_blocking(move || f(&policy)).await {
            Ok(value) => Some(value),
            Err(e) => {
                tracing::error!(error = %e, "a policy evaluation did not finish");
                None
            }
        }
    }

    /// Logs why pages cannot be served, at most every ten seconds.
    fn warn_throttled(&self, why: &str) {
        let mut last = self.last_warning.lock().unwrap_or_else(|e| e.into_inner());
        if last.is_none_or(|t| t.elapsed() > Duration::from_secs(10)) {
            tracing::warn!(reason = %why, "pages answer 503");
            *last = Some(Instant::now());
        }
    }
}

fn unix(t: Timestamp) -> u64 {
    u64::try_from(t.unix()).unwrap_or(0)
}

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

impl StandbyError {
    /// Stable machine code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Listen { .. } => "StandbyListenFailed",
            Self::Random(_) => "StandbyRandomUnavailable",
        }
    }
}

/// Serves until the process ends. Calls `announce` with the bound address once listening.
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
    let store = Arc::new(Store::new(options.store, options.activation));
    let state = Arc::new(Standby {
        policy: Arc::new(policy),
        csrf: CsrfKeys::new(options.token_lifetime)?,
        clock,
        pages: Limiter::new(options.page_limit, options.client_window, limits::MAX_KEYS),
        clients: Limiter::new(options.client_limit, options.client_window, limits::MAX_KEYS),
        instances: Limiter::new(options.instance_limit, options.instance_window, limits::MAX_KEYS),
        evaluations: tokio::sync::Semaphore::new(options.evaluations.max(1)),
        last_warning: Mutex::new(None),
        store: store.clone(),
        api: api.clone(),
        options,
    });
    for kind in store.kinds() {
        tokio::spawn(store::watch(store.clone(), api.clone(), *kind));
    }
    if state.options.activation {
        tokio::spawn(review::run(state.clone()));
    }
    let housekeeper = state.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(10)).await;
            housekeeper.pages.housekeep();
            housekeeper.clients.housekeep();
            housekeeper.instances.housekeep();
        }
    });
    tracing::info!(addr = %bound, activation = state.options.activation, "standby page listening");
    announce(bound);
    let limits = state.options.server;
    crate::http::serve(listener, routes::router(state), limits, Arc::new(ServerStats::default())).await;
    Ok(())
}
