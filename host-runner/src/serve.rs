//! `host-runner serve-preview`: serves the browser preview's static files on a local address.
//!
//! A small HTTP/1.1 server on `std` alone: GET and HEAD of files under one directory, one short-lived
//! connection per request, a thread per connection up to a cap, timeouts on every socket. The page runs the
//! policy in the browser; nothing is ever sent here but requests for files.
//!
//! It must not: serve anything outside its directory (request paths are decoded once, then `..`, `.`-prefixed
//! names, backslashes, NUL and absolute forms are refused, and the resolved file must still lie under the
//! canonical directory, so a symlink cannot lead out), execute or list anything, or bind beyond loopback unless
//! asked to.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// Default address: loopback only.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// Default directory: what `cargo xtask build-web` writes.
pub const DEFAULT_DIR: &str = "target/web";

/// Largest request head (request line and headers).
const MAX_HEAD: usize = 16 * 1024;
/// Largest file served.
const MAX_FILE: u64 = 64 << 20;
/// Connections handled at once; more are answered 503.
const MAX_CONNECTIONS: usize = 32;
/// How long a client may take to send its request or read the answer.
const TIMEOUT: Duration = Duration::from_secs(10);

/// The page may load its own scripts and compile wasm; it may not load or send anything elsewhere.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; \
     img-src 'self' data: blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; \
     frame-ancestors 'none'";

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
}

impl ServeError {
    /// Stable machine code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Directory { .. } => "ServeDirectoryMissing",
            Self::Listen { .. } => "ServeListenFailed",
        }
    }
}

/// A bound server, ready to run.
#[derive(Debug)]
pub struct Server {
    listener: TcpListener,
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
        let listener = TcpListener::bind(addr).map_err(|e| ServeError::Listen { addr, reason: e.to_string() })?;
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
    pub fn run(self) {
        let root = Arc::new(self.root);
        let active = Arc::new(AtomicUsize::new(0));
        for stream in self.listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let _ = stream.set_read_timeout(Some(TIMEOUT));
            let _ = stream.set_write_timeout(Some(TIMEOUT));
            if active.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS {
                active.fetch_sub(1, Ordering::SeqCst);
                let _ = respond(&mut stream, &Response::error(503, "too many connections"), false);
                continue;
            }
            let root = Arc::clone(&root);
            let done = Arc::clone(&active);
            let spawned = std::thread::Builder::new().name("serve".into()).spawn(move || {
                handle(stream, &root);
                done.fetch_sub(1, Ordering::SeqCst);
            });
            if spawned.is_err() {
                active.fetch_sub(1, Ordering::SeqCst);
            }
        }
    }
}

/// An answer to one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// HTTP status code.
    pub status: u16,
    /// `Content-Type`.
    pub content_type: &'static str,
    /// The body.
    pub body: Vec<u8>,
    /// Extra header lines.
    pub extra: Vec<(&'static str, &'static str)>,
}

impl Response {
    fn error(status: u16, text: &str) -> Self {
        Self {
            status,
            content_type: "text/plain; charset=utf-8",
            body: format!("{status} {}: {text}\n", reason(status)).into_bytes(),
            extra: Vec::new(),
        }
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        413 => "Content Too Large",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "Error",
    }
}

fn handle(stream: TcpStream, root: &Path) {
    let mut reader = BufReader::new(stream);
    let (response, head_only) = match read_head(&mut reader) {
        Ok(head) => {
            let head_only = head.method == "HEAD";
            (answer(&head, root), head_only)
        }
        Err(response) => (response, false),
    };
    let mut stream = reader.into_inner();
    let _ = respond(&mut stream, &response, head_only);
    // Closing with unread request bytes makes the kernel reset the connection, which can destroy the answer
    // before the client reads it; so stop writing, then drain (bounded in bytes and time) before closing.
    let _ = stream.shutdown(std::net::Shutdown::Write);
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    let _ = std::io::copy(&mut Read::by_ref(&mut stream).take(MAX_HEAD as u64 * 4), &mut std::io::sink());
}

/// The parts of a request the server reads.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Head {
    method: String,
    target: String,
}

fn read_head(reader: &mut impl BufRead) -> Result<Head, Response> {
    let mut head = Vec::new();
    loop {
        let mut line = Vec::new();
        let n = reader
            .by_ref()
            .take((MAX_HEAD - head.len()) as u64 + 1)
            .read_until(b'\n', &mut line)
            .map_err(|_| Response::error(400, "the request could not be read"))?;
        if n == 0 {
            return Err(Response::error(400, "the request ended early"));
        }
        head.extend_from_slice(&line);
        if head.len() > MAX_HEAD {
            return Err(Response::error(431, "the request head is too large"));
        }
        if line == b"\r\n" || line == b"\n" {
            break;
        }
    }
    let text = std::str::from_utf8(&head).map_err(|_| Response::error(400, "the request is not UTF-8"))?;
    let request_line = text.lines().next().unwrap_or_default();
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Response::error(400, "malformed request line"));
    };
    if !matches!(version, "HTTP/1.0" | "HTTP/1.1") {
        return Err(Response::error(400, "only HTTP/1.0 and HTTP/1.1 are served"));
    }
    let has_body = text.lines().any(|l| {
        let lower = l.to_ascii_lowercase();
        (lower.starts_with("content-length:") && lower.trim_end() != "content-length: 0")
            || lower.starts_with("transfer-encoding:")
    });
    if has_body && matches!(method, "GET" | "HEAD") {
        return Err(Response::error(413, "requests for files carry no body"));
    }
    Ok(Head { method: method.to_owned(), target: target.to_owned() })
}

fn answer(head: &Head, root: &Path) -> Response {
    if !matches!(head.method.as_str(), "GET" | "HEAD") {
        let mut r = Response::error(405, "only GET and HEAD are served");
        r.extra.push(("Allow", "GET, HEAD"));
        return r;
    }
    let file = match resolve(root, &head.target) {
        Ok(file) => file,
        Err(status) => return Response::error(status, "no such file"),
    };
    match std::fs::metadata(&file) {
        Ok(m) if m.len() > MAX_FILE => return Response::error(413, "the file is too large to serve"),
        Ok(_) => {}
        Err(_) => return Response::error(404, "no such file"),
    }
    match std::fs::read(&file) {
        Ok(body) => Response { status: 200, content_type: content_type(&file), body, extra: Vec::new() },
        Err(_) => Response::error(404, "no such file"),
    }
}

/// Maps a request target to a file under `root`, or the status to answer. `root` must be canonical.
pub fn resolve(root: &Path, target: &str) -> Result<PathBuf, u16> {
    if !target.starts_with('/') || target.starts_with("//") {
        return Err(400);
    }
    let path = target.split(['?', '#']).next().unwrap_or_default();
    let decoded = percent_decode(path).ok_or(400u16)?;
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

/// Decodes `%XX` escapes once; `None` for a bad escape or a result that is not UTF-8.
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The `Content-Type` of a file, by extension.
pub fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()).unwrap_or_default() {
        "html" | "htm" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "wasm" => "application/wasm",
        "json" | "map" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "yaml" | "yml" => "application/yaml",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

fn respond(stream: &mut TcpStream, r: &Response, head_only: bool) -> std::io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nX-Content-Type-Options: nosniff\r\n\
         Cache-Control: no-store\r\nContent-Security-Policy: {CONTENT_SECURITY_POLICY}\r\n\
         Referrer-Policy: no-referrer\r\nCross-Origin-Resource-Policy: same-origin\r\nConnection: close\r\n",
        r.status,
        reason(r.status),
        r.content_type,
        r.body.len()
    );
    for (name, value) in &r.extra {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    if !head_only {
        stream.write_all(&r.body)?;
    }
    stream.flush()
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
        for bad in ["//etc/passwd", "etc/passwd", "/a%2", "/a%zz", "/a%00b", "/a\\..\\b", "http://x/"] {
            assert_eq!(resolve(&root, bad), Err(400), "{bad}");
        }
        assert_eq!(resolve(&root, "/missing.js"), Err(404));
        assert_eq!(content_type(Path::new("a/policy_wasm_bg.wasm")), "application/wasm");
        assert_eq!(content_type(Path::new("app.js")), "text/javascript; charset=utf-8");
    }
}
