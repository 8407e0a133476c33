//! The one HTTP stack of the services: every service of `host-runner` that listens (the standby page,
//! `serve-preview`, and whatever comes next) is an axum [`Router`] handed to [`serve`] with its [`ServerLimits`].
//!
//! - [`serve`] owns the accept loop (hyper-util, HTTP/1.1): a cap on connections held at once (past it a new
//!   connection is closed at once instead of waiting unseen in the kernel's backlog), a deadline for reading each
//!   request head, a largest head, and a cap on each connection's lifetime, after which it is shut down gracefully.
//!   A client that trickles its head, keeps a connection idle or reads an answer slowly therefore holds one slot
//!   for a bounded time, and many such clients cannot take the slots of the others.
//! - [`limit_layers`] wraps a router in the per-request bounds every service uses: a total deadline for each
//!   request (tower-http `TimeoutLayer`, answered 503), a deadline for its body, and a largest body.
//! - [`init_logging`] sends `tracing` events to stderr as JSON lines.
//! - Handlers learn the client's address from the [`Peer`] request extension.
//!
//! This module knows no route and no service: it must not grow service-specific behaviour.

use axum::Router;
use axum::body::Body;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tower::ServiceExt;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::{RequestBodyTimeoutLayer, TimeoutLayer};

/// The bounds of one server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerLimits {
    /// Connections held at once; past it new connections are closed at once.
    pub max_connections: usize,
    /// Time to read a request head (on a new or a kept-alive connection).
    pub header_read_timeout: Duration,
    /// Largest request head, in bytes (at least 8 KiB; larger heads are answered 431).
    pub max_head: usize,
    /// Longest life of one connection, however busy; then it is shut down gracefully.
    pub connection_lifetime: Duration,
    /// Total time of one request, from its head to the answer's head (answered 503 past it).
    pub request_timeout: Duration,
    /// Largest request body, in bytes (answered 413 past it).
    pub max_body: usize,
    /// Write header names in title case (`Content-Type`), as some clients and tests expect.
    pub title_case_headers: bool,
    /// Serve more than one request per connection.
    pub keep_alive: bool,
}

impl Default for ServerLimits {
    fn default() -> Self {
        Self {
            max_connections: 512,
            header_read_timeout: Duration::from_secs(5),
            max_head: 16 * 1024,
            connection_lifetime: Duration::from_secs(120),
            request_timeout: Duration::from_secs(15),
            max_body: 2048,
            title_case_headers: false,
            keep_alive: true,
        }
    }
}

/// The address of the client at the other end of the connection, set on every request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer(pub SocketAddr);

/// Counts what the accept loop did, for logs and tests.
#[derive(Debug, Default)]
pub struct ServerStats {
    /// Connections accepted and served.
    pub accepted: AtomicU64,
    /// Connections closed at once because every slot was taken.
    pub shed: AtomicU64,
    /// Connections shut down at the end of their lifetime.
    pub expired: AtomicU64,
}

/// Sends `tracing` events at INFO and above to stderr as JSON lines (one object per line, with `timestamp`,
/// `level` and the event's fields). Safe to call more than once; only the first call installs.
pub fn init_logging() {
    let _ = tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_span_list(false)
        .with_target(false)
        .with_max_level(tracing::Level::INFO)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Wraps `router` in the per-request bounds of `limits`: a total deadline (503), a deadline for reading the body
/// (408), and the largest body (413).
pub fn limit_layers(router: Router, limits: &ServerLimits) -> Router {
    router
        .layer(RequestBodyLimitLayer::new(limits.max_body))
        .layer(RequestBodyTimeoutLayer::new(limits.request_timeout))
        .layer(TimeoutLayer::with_status_code(http::StatusCode::SERVICE_UNAVAILABLE, limits.request_timeout))
}

/// Serves `router` on `listener` until the process ends (see the module documentation for the bounds).
pub async fn serve(listener: tokio::net::TcpListener, router: Router, limits: ServerLimits, stats: Arc<ServerStats>) {
    let slots = Arc::new(tokio::sync::Semaphore::new(limits.max_connections.max(1)));
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors or a connection reset before it was accepted: wait a little, go on.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            // Every slot is taken: closing at once tells the client (and a load balancer) to go elsewhere, where
            // waiting in the backlog would only delay it unseen.
            stats.shed.fetch_add(1, Ordering::Relaxed);
            drop(stream);
            continue;
        };
        stats.accepted.fetch_add(1, Ordering::Relaxed);
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let stats = stats.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |mut req: http::Request<Incoming>| {
                req.extensions_mut().insert(Peer(peer));
                router.clone().oneshot(req.map(Body::new))
            });
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_read_timeout)
                .max_buf_size(limits.max_head.max(8192))
                .title_case_headers(limits.title_case_headers)
                .keep_alive(limits.keep_alive);
            let connection = builder.serve_connection(TokioIo::new(stream), service);
            tokio::pin!(connection);
            tokio::select! {
                _ = connection.as_mut() => {}
                () = tokio::time::sleep(limits.connection_lifetime) => {
                    stats.expired.fetch_add(1, Ordering::Relaxed);
                    // Finish the request in flight, accept no other; a client that still does not let go is cut.
                    connection.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(Duration::from_secs(5), connection).await;
                }
            }
            drop(permit);
        });
    }
}
