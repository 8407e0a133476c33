//! `host-runner serve-preview`: serves the browser preview's static files on a local address.
//!
//! A router on the one HTTP stack ([`crate::http`]): tower-http's `ServeDir` streams the files (so memory does not
//! grow with file size or with the number of clients), the stack bounds connections, heads, each request's total
//! time and each connection's life. GET and HEAD only, one request per connection. The page runs the policy in the
//! browser; nothing is ever sent here but requests for files.
//!
//! It must not: serve anything outside its directory (before `ServeDir` sees a request, [`resolve`] decodes its
//! path once and refuses bad escapes, NUL, backslashes, `.`-prefixed names and absolute forms, and the resolved
//! file must still lie under the canonical directory, so a symlink cannot lead out), execute or list anything, or
//! bind beyond loopback unless asked to.

use crate::http::{self, ServerLimits, ServerStats};
use ::http::header::{self, HeaderValue};
use ::http::{Method, StatusCode};
use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tower_http::services::ServeDir;
use tower_http::set_header::SetResponseHeaderLayer;

/// Default address: loopback only.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// Default directory: what `cargo xtask build-web` writes.
pub const DEFAULT_DIR: &str = "target/web";

/// The page may load its own scripts and compile wasm; it may not load or send anything elsewhere.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; \
     img-src 'self' data: blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; \
     frame-ancestors 'none'";

/// The bounds of the preview server: a few local clients, one request per connection, no request bodies.
pub const LIMITS: ServerLimits = ServerLimits {
    max_connections: 64,
    header_read_timeout: Duration::from_secs(5),
    max_head: 16 * 1024,
    connection_lifetime: Duration::from_secs(60),
    request_timeout: Duration::from_secs(10),
    max_body: 0,
    title_case_headers: true,
    keep_alive: false,
};

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The directory is missing or unreadable.
    #[error("cannot serve `{dir}`: {reason}; build the page with `cargo xtask build-web` or pass --dir")]
    Directory {
        /// The directory.
        dir: PathBuf,
        /// The OS error.
        reason: String,
    },
    /// The address cannot be bound.
    #[error("cannot listen on {addr}: {reason}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        reason: String,
    },
    /// The async runtime could not start.
    #[error("cannot start the server: {0}")]
    Runtime(String),
}

impl ServeError {
    /// Stable machine code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Directory { .. } => "ServeDirectoryMissing",
            Self::Listen { .. } => "ServeListenFailed",
            Self::Runtime(_) => "ServeRuntimeFailed",
        }
    }
}

/// A bound server, ready to run.
#[derive(Debug)]
pub struct Server {
    listener: std::net::TcpListener,
    root: PathBuf,
}

impl Server {
    /// Binds `addr` to serve `dir`.
    pub fn bind(addr: SocketAddr, dir: &Path) -> Result<Self, ServeError> {
        let root =
            dir.canonicalize().map_err(|e| ServeError::Directory { dir: dir.to_path_buf(), reason: e.to_string() })?;
        if !root.is_dir() {
            return Err(ServeError::Directory { dir: dir.to_path_buf(), reason: "not a directory".into() });
        }
        let listener =
            std::net::TcpListener::bind(addr).map_err(|e| ServeError::Listen { addr, reason: e.to_string() })?;
        Ok(Self { listener, root })
    }

    /// The address actually bound (port 0 asks the system for a free port).
    pub fn local_addr(&self) -> Result<SocketAddr, ServeError> {
        self.listener
            .local_addr()
            .map_err(|e| ServeError::Listen { addr: ([0, 0, 0, 0], 0).into(), reason: e.to_string() })
    }

    /// The canonical directory served.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Serves until the process ends.
    pub fn run(self) -> Result<(), ServeError> {
        let addr = self.local_addr()?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(|e| ServeError::Runtime(e.to_string()))?;
        runtime.block_on(async move {
            self.listener.set_nonblocking(true).map_err(|e| ServeError::Listen { addr, reason: e.to_string() })?;
            let listener = tokio::net::TcpListener::from_std(self.listener)
                .map_err(|e| ServeError::Listen { addr, reason: e.to_string() })?;
            http::serve(listener, router(self.root), LIMITS, Arc::new(ServerStats::default())).await;
            Ok(())
        })
    }
}

/// The preview's routes: files under `root` (canonical), through [`guard`].
pub fn router(root: PathBuf) -> Router {
    let files = ServeDir::new(&root).append_index_html_on_directories(true);
    let headers = [
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::CACHE_CONTROL, "no-store"),
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::HeaderName::from_static("cross-origin-resource-policy"), "same-origin"),
    ];
    let mut router = http::limit_layers(
        Router::new().fallback_service(files).layer(middleware::from_fn_with_state(Arc::new(root), guard)),
        &LIMITS,
    )
    .layer(middleware::map_response(text_charset));
    for (name, value) in headers {
        router = router.layer(SetResponseHeaderLayer::overriding(name, HeaderValue::from_static(value)));
    }
    router
}

fn plain(status: StatusCode, text: &str) -> Response {
    let reason = status.canonical_reason().unwrap_or("Error");
    let mut response = Response::new(Body::from(format!("{} {reason}: {text}\n", status.as_u16())));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    response
}

/// Lets a request reach `ServeDir` only for a file that [`resolve`] finds under the root.
async fn guard(State(root): State<Arc<PathBuf>>, req: Request, next: Next) -> Response {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut response = plain(StatusCode::METHOD_NOT_ALLOWED, "only GET and HEAD are served");
        response.headers_mut().insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    // Only origin-form targets (`/path?query`): an absolute or authority form names no file of ours.
    if req.uri().scheme().is_some() || req.uri().authority().is_some() {
        return plain(StatusCode::BAD_REQUEST, "no such file");
    }
    match resolve(&root, req.uri().path()) {
        Ok(_) => next.run(req).await,
        Err(status) => plain(StatusCode::from_u16(status).unwrap_or(StatusCode::NOT_FOUND), "no such file"),
    }
}

/// Text files are UTF-8: say so, so a browser never guesses.
async fn text_charset(mut response: Response) -> Response {
    let needs = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .filter(|v| v.starts_with("text/") && !v.contains("charset"))
        .map(|v| format!("{v}; charset=utf-8"));
    if let Some(value) = needs.and_then(|v| HeaderValue::from_str(&v).ok()) {
        response.headers_mut().insert(header::CONTENT_TYPE, value);
    }
    response
}

/// Maps a request target to a file under `root`, or the status to answer. `root` must be canonical.
pub fn resolve(root: &Path, target: &str) -> Result<PathBuf, u16> {
    if !target.starts_with('/') || target.starts_with("//") {
        return Err(400);
    }
    let path = target.split(['?', '#']).next().unwrap_or_default();
    // Every `%` must start an escape of two hex digits; the decoded path must be UTF-8.
    let bytes = path.as_bytes();
    let escapes_ok = bytes
        .iter()
        .enumerate()
        .filter(|(_, b)| **b == b'%')
        .all(|(i, _)| bytes.get(i + 1..i + 3).is_some_and(|hex| hex.iter().all(u8::is_ascii_hexdigit)));
    if !escapes_ok {
        return Err(400);
    }
    let decoded = percent_encoding::percent_decode_str(path).decode_utf8().map_err(|_| 400u16)?;
    if decoded.contains(['\0', '\\']) {
        return Err(400);
    }
    let mut file = root.to_path_buf();
    for segment in decoded.split('/').filter(|s| !s.is_empty()) {
        // `..` would climb out; other dot-names are hidden files (`.git`, staging directories) and never served.
        if segment.starts_with('.') {
            return Err(404);
        }
        file.push(segment);
    }
    if file.is_dir() {
        file.push("index.html");
    }
    // A symlink inside the directory may point anywhere; only what resolves under the root is served.
    let real = file.canonicalize().map_err(|_| 404u16)?;
    if !real.starts_with(root) || !real.is_file() {
        return Err(404);
    }
    Ok(real)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn paths_stay_under_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        std::fs::create_dir(root.join("pkg")).unwrap();
        std::fs::write(root.join("index.html"), "<p>").unwrap();
        std::fs::write(root.join("pkg/policy.wasm"), b"\0asm").unwrap();
        std::fs::write(root.join(".hidden"), "x").unwrap();
        assert_eq!(resolve(&root, "/").unwrap(), root.join("index.html"));
        assert_eq!(resolve(&root, "/pkg/policy.wasm?v=1").unwrap(), root.join("pkg/policy.wasm"));
        assert_eq!(resolve(&root, "/pkg/%70olicy.wasm").unwrap(), root.join("pkg/policy.wasm"));
        for bad in ["/../etc/passwd", "/pkg/../../etc/passwd", "/%2e%2e/etc/passwd", "/pkg/..%2f..%2fetc", "/.hidden"] {
            assert_eq!(resolve(&root, bad), Err(404), "{bad}");
        }
        for bad in ["//etc/passwd", "etc/passwd", "/a%2", "/a%zz", "/a%00b", "/a\\..\\b", "http://x/", "/%ff"] {
            assert_eq!(resolve(&root, bad), Err(400), "{bad}");
        }
        assert_eq!(resolve(&root, "/missing.js"), Err(404));
    }
}
