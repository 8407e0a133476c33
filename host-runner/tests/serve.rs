//! `host-runner serve-preview` over real sockets: only files under its directory, with the right types, and
//! every attempt to climb out (raw, percent-encoded, through a symlink) refused.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};

struct Server {
    child: Child,
    addr: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(dir: &std::path::Path) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_host-runner"))
        .args(["serve-preview", "--listen", "127.0.0.1:0", "--dir"])
        .arg(dir)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let addr = line.split("http://").nth(1).unwrap().split('/').next().unwrap().to_owned();
    Server { child, addr }
}

/// Sends a raw request (so paths reach the server exactly as written) and returns status, headers, body.
fn request(server: &Server, raw: &str) -> (u16, String, Vec<u8>) {
    let mut stream = TcpStream::connect(&server.addr).unwrap();
    stream.write_all(raw.as_bytes()).unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let split = response.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8(response[..split].to_vec()).unwrap();
    let status = head[9..12].parse().unwrap();
    (status, head, response[split + 4..].to_vec())
}

fn get(server: &Server, path: &str) -> (u16, String, Vec<u8>) {
    request(server, &format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n"))
}

#[test]
fn serves_only_its_directory() {
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret.txt"), "secret").unwrap();
    let site = outside.path().join("site");
    std::fs::create_dir_all(site.join("pkg")).unwrap();
    std::fs::write(site.join("index.html"), "<!doctype html><p>preview").unwrap();
    std::fs::write(site.join("pkg/policy_wasm_bg.wasm"), b"\0asm\x01\0\0\0").unwrap();
    std::fs::write(site.join("app.js"), "export {}").unwrap();
    std::fs::write(site.join(".env"), "TOKEN=x").unwrap();
    std::os::unix::fs::symlink(outside.path().join("secret.txt"), site.join("link.txt")).unwrap();
    let server = start(&site);

    let (status, head, body) = get(&server, "/");
    assert_eq!(status, 200);
    assert!(head.contains("Content-Type: text/html; charset=utf-8"), "{head}");
    assert!(head.contains("Content-Security-Policy: default-src 'self'"), "{head}");
    assert!(head.contains("X-Content-Type-Options: nosniff"), "{head}");
    assert_eq!(body, b"<!doctype html><p>preview");
    let (status, head, body) = get(&server, "/pkg/policy_wasm_bg.wasm");
    assert_eq!(status, 200);
    assert!(head.contains("Content-Type: application/wasm"), "{head}");
    assert_eq!(body, b"\0asm\x01\0\0\0");
    assert!(get(&server, "/app.js?v=2").1.contains("Content-Type: text/javascript"));

    for path in [
        "/../secret.txt",
        "/pkg/../../secret.txt",
        "/%2e%2e/secret.txt",
        "/pkg/%2E%2E%2F%2E%2E%2Fsecret.txt",
        "/..%2fsecret.txt",
        "/.env",
        "/link.txt",
        "/missing.js",
    ] {
        let (status, _, body) = get(&server, path);
        assert_eq!(status, 404, "{path}");
        assert!(!String::from_utf8_lossy(&body).contains("secret"), "{path}");
    }
    for path in ["//secret.txt", "/%zz", "/a%00b", "/..\\secret.txt", "secret.txt"] {
        assert_eq!(get(&server, path).0, 400, "{path}");
    }

    let (status, head, body) = request(&server, "HEAD /app.js HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!((status, body.len()), (200, 0));
    assert!(head.contains("Content-Length: 9"), "{head}");
    let (status, head, _) = request(&server, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n");
    assert_eq!(status, 405);
    assert!(head.contains("Allow: GET, HEAD"), "{head}");
    assert_eq!(request(&server, "GET / SPDY/3\r\n\r\n").0, 400);
    let huge = format!("GET / HTTP/1.1\r\nX-Pad: {}\r\n\r\n", "a".repeat(20_000));
    assert_eq!(request(&server, &huge).0, 431);
}

#[test]
fn a_missing_directory_is_a_usage_error() {
    let output = Command::new(env!("CARGO_BIN_EXE_host-runner"))
        .args(["serve-preview", "--listen", "127.0.0.1:0", "--dir", "/nonexistent/web"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("error[ServeDirectoryMissing]") && stderr.contains("cargo xtask build-web"), "{stderr}");
}
