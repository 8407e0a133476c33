//! Stand-ins for the services the Kratix workflows talk to, as real HTTP servers on loopback.
//!
//! `FakeApi` answers the real Kubernetes API paths of the `foundry.platform` resources with real JSON and records
//! every request, so tests assert the exact verb, path and body a live cluster would see: lists (per namespace and
//! across all, paged with `limit` and `continue`, carrying the store's real, increasing `resourceVersion`),
//! watches (`?watch=true`: a chunked stream of `ADDED`/`MODIFIED`/`DELETED` events after the given
//! `resourceVersion`, until `timeoutSeconds`), get, create (setting `uid`, `creationTimestamp` and
//! `resourceVersion`, 409 for an existing name), merge-patch of objects and of their status subresource (409 when a
//! `metadata.resourceVersion` precondition does not hold), and delete with `uid`/`resourceVersion` preconditions.
//! Every change, including a test's own `put`, bumps the revision and is seen by the watches.
//!
//! It is kept for fault injection, which a real API server cannot do on demand: per path, for the first N requests
//! or for all, a status, a delay, a garbage body, a list that never stops paging (`continue` for ever), or an
//! answer that echoes the request's `Authorization` header. RBAC, schemas, CEL rules, the status subresource and TokenRequest
//! tokens are covered against a real kube-apiserver by the cluster tier (`host-runner/tests/cluster/`, run by
//! `cargo xtask cluster`). `FakeFoundry` answers `GET /api/status` as a Foundry server would, or misbehaves.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One request as the server saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub query: String,
    pub headers: BTreeMap<String, String>,
    pub body: String,
}

impl Request {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

/// A canned misbehaviour.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Answer this status and body.
    Status(u16, String),
    /// Wait this long, then answer normally.
    Delay(Duration),
    /// Answer 200 with this body.
    Body(String),
    /// Answer a list's page as usual, but always with another `continue` token.
    EndlessContinue,
    /// Answer 401 with a message that quotes the request's `Authorization` header, as a hostile or broken server
    /// might.
    EchoAuthorization,
}

/// One change, as a watch reports it.
#[derive(Debug, Clone)]
struct Change {
    revision: u64,
    plural: String,
    namespace: String,
    kind: &'static str,
    object: Value,
}

#[derive(Default)]
struct ApiState {
    objects: BTreeMap<String, Value>,
    requests: Vec<Request>,
    faults: Vec<(String, String, Fault, Option<usize>)>,
    page_size: Option<usize>,
    revision: u64,
    changes: Vec<Change>,
    record_requests: bool,
}

/// An in-process Kubernetes API for `foundry.platform` objects.
#[derive(Clone)]
pub struct FakeApi {
    state: Arc<(Mutex<ApiState>, std::sync::Condvar)>,
    pub addr: String,
}

/// What the stand-in sends back.
enum Reply {
    Full(u16, String),
    Watch { plural: String, namespace: Option<String>, after: u64, until: std::time::Instant },
}

const GROUP_PATH: &str = "/apis/foundry.platform/v1alpha1/namespaces/";

impl FakeApi {
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let state = ApiState { record_requests: true, ..ApiState::default() };
        let api = FakeApi { state: Arc::new((Mutex::new(state), std::sync::Condvar::new())), addr };
        let server = api.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let server = server.clone();
                std::thread::spawn(move || serve_replies(stream, |req| server.handle(req), &server));
            }
        });
        api
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ApiState> {
        self.state.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Stops (or resumes) recording requests: a load test's millions of page views need no record.
    pub fn record_requests(&self, on: bool) {
        self.lock().record_requests = on;
    }

    /// Stores an object (its path is derived from its kind, namespace and name), as `kubectl apply` would: a new
    /// `resourceVersion`, a `uid` when it has none, and an event for the watches.
    pub fn put(&self, object: Value) {
        self.put_all(std::iter::once(object));
    }

    /// Stores many objects at once (one lock, one wake-up of the watches).
    pub fn put_all(&self, objects: impl IntoIterator<Item = Value>) {
        let mut state = self.lock();
        for mut object in objects {
            let plural = plural(object["kind"].as_str().unwrap());
            let (ns, name) = (
                object["metadata"]["namespace"].as_str().unwrap().to_owned(),
                object["metadata"]["name"].as_str().unwrap().to_owned(),
            );
            let key = format!("{GROUP_PATH}{ns}/{plural}/{name}");
            let existed = state.objects.contains_key(&key);
            if object["metadata"].get("uid").is_none() {
                let uid = state.objects.get(&key).map(|o| o["metadata"]["uid"].clone()).unwrap_or(Value::Null);
                object["metadata"]["uid"] =
                    if uid.is_null() { json!(format!("uid-{}", state.revision + 1)) } else { uid };
            }
            state.commit(&key, object, if existed { "MODIFIED" } else { "ADDED" });
        }
        self.state.1.notify_all();
    }

    /// Deletes an object, as `kubectl delete` would.
    pub fn remove(&self, kind: &str, namespace: &str, name: &str) {
        let key = format!("{GROUP_PATH}{namespace}/{}/{name}", plural(kind));
        let mut state = self.lock();
        if let Some(object) = state.objects.remove(&key) {
            state.commit_delete(&key, object);
        }
        self.state.1.notify_all();
    }

    pub fn object(&self, kind: &str, namespace: &str, name: &str) -> Option<Value> {
        let key = format!("{GROUP_PATH}{namespace}/{}/{name}", plural(kind));
        self.lock().objects.get(&key).cloned()
    }

    /// Misbehaves for `method` requests whose path starts with `path`: always, or for the first `times`.
    pub fn fault(&self, method: &str, path: &str, fault: Fault, times: Option<usize>) {
        self.lock().faults.push((method.into(), path.into(), fault, times));
    }

    /// Removes every fault.
    pub fn clear_faults(&self) {
        self.lock().faults.clear();
    }

    /// Serves lists in pages of this size (with `continue` tokens).
    pub fn page_size(&self, n: usize) {
        self.lock().page_size = Some(n);
    }

    pub fn requests(&self) -> Vec<Request> {
        self.lock().requests.clone()
    }

    /// The requests other than reads.
    pub fn writes(&self) -> Vec<Request> {
        self.requests().into_iter().filter(|r| r.method != "GET").collect()
    }

    /// Every stored object of a kind, in path order.
    pub fn objects(&self, kind: &str) -> Vec<Value> {
        let plural = format!("/{}/", plural(kind));
        self.lock().objects.iter().filter(|(k, _)| k.contains(&plural)).map(|(_, v)| v.clone()).collect()
    }

    /// The number of stored objects of a kind.
    pub fn count(&self, kind: &str) -> usize {
        let plural = format!("/{}/", plural(kind));
        self.lock().objects.keys().filter(|k| k.contains(&plural)).count()
    }

    /// A kubeconfig file pointing at this server.
    pub fn kubeconfig(&self, dir: &Path) -> PathBuf {
        self.kubeconfig_with_token(dir, "not-a-secret")
    }

    /// A kubeconfig file pointing at this server, with this bearer token.
    pub fn kubeconfig_with_token(&self, dir: &Path, token: &str) -> PathBuf {
        let path = dir.join("kubeconfig");
        let text = format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: fake\nclusters:\n- name: fake\n  cluster:\n    server: http://{}\n\
             contexts:\n- name: fake\n  context:\n    cluster: fake\n    user: fake\nusers:\n- name: fake\n  user:\n    token: {token}\n",
            self.addr
        );
        std::fs::write(&path, text).unwrap();
        path
    }

    fn handle(&self, req: Request) -> Reply {
        let mut state = self.lock();
        if state.record_requests {
            state.requests.push(req.clone());
        }
        let mut chosen = None;
        for (method, prefix, fault, times) in state.faults.iter_mut() {
            if *method == req.method && req.path.starts_with(prefix.as_str()) && times.is_none_or(|t| t > 0) {
                if let Some(t) = times {
                    *t -= 1;
                }
                chosen = Some(fault.clone());
                break;
            }
        }
        let mut endless = false;
        match chosen {
            Some(Fault::Status(code, body)) => return Reply::Full(code, body),
            Some(Fault::Body(body)) => return Reply::Full(200, body),
            Some(Fault::EchoAuthorization) => {
                let auth = req.headers.get("authorization").cloned().unwrap_or_default();
                return Reply::Full(
                    401,
                    status_body(401, "Unauthorized", &format!("Unauthorized: the header was Authorization: {auth}")),
                );
            }
            Some(Fault::EndlessContinue) => endless = true,
            Some(Fault::Delay(d)) => {
                drop(state);
                std::thread::sleep(d);
                state = self.lock();
            }
            None => {}
        }
        let watching = matches!(query_param(&req.query, "watch"), Some("true" | "1"));
        // Lists and watches across all namespaces: /apis/foundry.platform/v1alpha1/<plural>.
        if let Some(plural) = req.path.strip_prefix("/apis/foundry.platform/v1alpha1/")
            && !plural.contains('/')
            && req.method == "GET"
        {
            if watching {
                return watch_reply(&req, plural, None, &state);
            }
            let suffix = format!("/{plural}/");
            let items = state.objects.iter().filter(|(k, _)| k.contains(&suffix) && k.starts_with(GROUP_PATH));
            return Reply::Full(200, list_page(&state, &req, plural, items, endless));
        }
        let Some(rest) = req.path.strip_prefix(GROUP_PATH) else { return not_found(&req.path) };
        let parts: Vec<&str> = rest.split('/').collect();
        match (req.method.as_str(), parts.as_slice()) {
            ("POST", [ns, plural]) => {
                let mut object = req.json();
                let Some(name) = object["metadata"]["name"].as_str().map(str::to_owned) else {
                    return Reply::Full(422, status_body(422, "Invalid", "metadata.name is required"));
                };
                let key = format!("{GROUP_PATH}{ns}/{plural}/{name}");
                if state.objects.contains_key(&key) {
                    return Reply::Full(409, status_body(409, "AlreadyExists", &format!("{name} already exists")));
                }
                object["metadata"]["namespace"] = json!(ns);
                object["metadata"]["creationTimestamp"] = json!(now_rfc3339());
                object["metadata"]["uid"] = json!(format!("uid-{}", state.revision + 1));
                let stored = state.commit(&key, object, "ADDED");
                self.state.1.notify_all();
                Reply::Full(201, stored.to_string())
            }
            ("GET", [ns, plural]) => {
                if watching {
                    return watch_reply(&req, plural, Some(ns), &state);
                }
                let prefix = format!("{GROUP_PATH}{ns}/{plural}/");
                let items = state.objects.iter().filter(|(k, _)| k.starts_with(&prefix));
                Reply::Full(200, list_page(&state, &req, plural, items, endless))
            }
            ("GET", [_, _, _, "status"]) => match state.objects.get(req.path.trim_end_matches("/status")) {
                Some(o) => Reply::Full(200, o.to_string()),
                None => not_found(&req.path),
            },
            ("GET", [_, _, _]) => match state.objects.get(&req.path) {
                Some(o) => Reply::Full(200, o.to_string()),
                None => not_found(&req.path),
            },
            ("DELETE", [_, _, _]) => {
                let Some(object) = state.objects.get(&req.path).cloned() else { return not_found(&req.path) };
                let options = req.json();
                for (field, pointer) in [("uid", "/metadata/uid"), ("resourceVersion", "/metadata/resourceVersion")] {
                    if let Some(wanted) = options.pointer(&format!("/preconditions/{field}")).filter(|v| !v.is_null())
                        && object.pointer(pointer) != Some(wanted)
                    {
                        return Reply::Full(
                            409,
                            status_body(409, "Conflict", &format!("Precondition failed: {field} does not match")),
                        );
                    }
                }
                state.objects.remove(&req.path);
                let gone = state.commit_delete(&req.path, object);
                self.state.1.notify_all();
                Reply::Full(200, gone.to_string())
            }
            ("PATCH", [_, _, _]) | ("PATCH", [_, _, _, "status"]) => {
                let key = req.path.trim_end_matches("/status").to_owned();
                if req.headers.get("content-type").map(String::as_str) != Some("application/merge-patch+json") {
                    return Reply::Full(415, status_body(415, "UnsupportedMediaType", "expected a JSON merge patch"));
                }
                let Some(mut o) = state.objects.get(&key).cloned() else { return not_found(&req.path) };
                let mut patch = req.json();
                if let Some(wanted) = patch.pointer("/metadata/resourceVersion").cloned() {
                    if o["metadata"]["resourceVersion"] != wanted {
                        return Reply::Full(409, status_body(409, "Conflict", "the object has been modified"));
                    }
                    patch["metadata"].as_object_mut().unwrap().remove("resourceVersion");
                }
                merge(&mut o, &patch);
                let stored = state.commit(&key, o, "MODIFIED");
                self.state.1.notify_all();
                Reply::Full(200, stored.to_string())
            }
            _ => not_found(&req.path),
        }
    }
}

impl ApiState {
    /// Stores `object` at `key` with the next revision and records the change; returns what is stored.
    fn commit(&mut self, key: &str, mut object: Value, kind: &'static str) -> Value {
        self.revision += 1;
        object["metadata"]["resourceVersion"] = json!(self.revision.to_string());
        self.objects.insert(key.to_owned(), object.clone());
        self.record_change(key, object.clone(), kind);
        object
    }

    /// Records the deletion of `object` (already removed from `key`).
    fn commit_delete(&mut self, key: &str, mut object: Value) -> Value {
        self.revision += 1;
        object["metadata"]["resourceVersion"] = json!(self.revision.to_string());
        self.record_change(key, object.clone(), "DELETED");
        object
    }

    fn record_change(&mut self, key: &str, object: Value, kind: &'static str) {
        let rest = key.strip_prefix(GROUP_PATH).unwrap_or_default();
        let mut parts = rest.split('/');
        let (namespace, plural) =
            (parts.next().unwrap_or_default().to_owned(), parts.next().unwrap_or_default().to_owned());
        self.changes.push(Change { revision: self.revision, plural, namespace, kind, object });
    }
}

/// One page of a list, as the API server answers it.
fn list_page<'a>(
    state: &ApiState,
    req: &Request,
    plural: &str,
    items: impl Iterator<Item = (&'a String, &'a Value)>,
    endless: bool,
) -> String {
    let items: Vec<&Value> = items.map(|(_, v)| v).collect();
    let start: usize = query_param(&req.query, "continue").and_then(|c| c.parse().ok()).unwrap_or(0);
    let asked = query_param(&req.query, "limit").and_then(|l| l.parse::<usize>().ok()).filter(|l| *l > 0);
    let limit = match (state.page_size, asked) {
        (Some(p), Some(a)) => p.min(a),
        (Some(p), None) => p,
        (None, Some(a)) => a,
        (None, None) => usize::MAX,
    };
    let total = items.len();
    let page: Vec<Value> = items
        .into_iter()
        .skip(start)
        .take(limit)
        .map(|o| {
            // List items carry no apiVersion/kind, as the real API server sends them.
            let mut o = o.clone();
            o.as_object_mut().unwrap().remove("apiVersion");
            o.as_object_mut().unwrap().remove("kind");
            o
        })
        .collect();
    let mut metadata = json!({"resourceVersion": state.revision.max(1).to_string()});
    if endless {
        metadata["continue"] = json!((start + page.len().max(1)).to_string());
    } else if start + page.len() < total {
        metadata["continue"] = json!((start + page.len()).to_string());
    }
    let kind = match plural {
        "foundryinstances" => "FoundryInstanceList",
        "foundryactivationrequests" => "FoundryActivationRequestList",
        _ => "FoundryLicenseList",
    };
    json!({"apiVersion": "foundry.platform/v1alpha1", "kind": kind, "metadata": metadata, "items": page}).to_string()
}

fn watch_reply(req: &Request, plural: &str, namespace: Option<&str>, state: &ApiState) -> Reply {
    let after = query_param(&req.query, "resourceVersion").and_then(|v| v.parse().ok()).unwrap_or(state.revision);
    let secs = query_param(&req.query, "timeoutSeconds").and_then(|v| v.parse().ok()).unwrap_or(60u64).min(60);
    Reply::Watch {
        plural: plural.to_owned(),
        namespace: namespace.map(str::to_owned),
        after,
        until: std::time::Instant::now() + Duration::from_secs(secs),
    }
}

/// The time now, as the API server writes `creationTimestamp`.
pub fn now_rfc3339() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    policy_core::api::Timestamp::from_unix(secs as i64).unwrap().to_string()
}

fn plural(kind: &str) -> &'static str {
    match kind {
        "FoundryLicense" => "foundrylicenses",
        "FoundryInstance" => "foundryinstances",
        "FoundryActivationRequest" => "foundryactivationrequests",
        other => panic!("no plural for {other}"),
    }
}

fn query_param<'a>(query: &'a str, key: &str) -> Option<&'a str> {
    query.split('&').filter_map(|kv| kv.split_once('=')).find(|(k, _)| *k == key).map(|(_, v)| v)
}

pub fn status_body(code: u16, reason: &str, message: &str) -> String {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message, "reason": reason, "code": code})
        .to_string()
}

fn not_found(path: &str) -> Reply {
    Reply::Full(404, status_body(404, "NotFound", &format!("{path} not found")))
}

/// RFC 7386 JSON merge patch.
pub fn merge(target: &mut Value, patch: &Value) {
    match patch {
        Value::Object(p) => {
            if !target.is_object() {
                *target = json!({});
            }
            let t = target.as_object_mut().unwrap();
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        other => *target = other.clone(),
    }
}

/// Reads one request from a connection; `None` when it closed.
fn read_request(reader: &mut BufReader<TcpStream>) -> Option<Request> {
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return None;
    }
    let mut words = line.split_whitespace();
    let (method, target) = (words.next().unwrap_or_default().to_owned(), words.next().unwrap_or_default().to_owned());
    let mut headers = BTreeMap::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 {
            return None;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
        }
    }
    let mut body = Vec::new();
    if let Some(len) = headers.get("content-length").and_then(|l| l.parse::<usize>().ok()) {
        body.resize(len, 0);
        reader.read_exact(&mut body).ok()?;
    } else if headers.get("transfer-encoding").is_some_and(|t| t.contains("chunked")) {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size).ok()?;
            let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
            let mut chunk = vec![0; n + 2];
            reader.read_exact(&mut chunk).ok()?;
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
    }
    let (path, query) = target.split_once('?').map_or((target.clone(), String::new()), |(p, q)| (p.into(), q.into()));
    Some(Request { method, path, query, headers, body: String::from_utf8_lossy(&body).into_owned() })
}

fn write_full(stream: &mut TcpStream, code: u16, body: &str) -> bool {
    let content_type = if body.trim_start().starts_with('<') { "text/html" } else { "application/json" };
    let response =
        format!("HTTP/1.1 {code} X\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\n\r\n{body}", body.len());
    stream.write_all(response.as_bytes()).is_ok()
}

/// Serves HTTP/1.1 requests on one connection until it closes.
fn serve(stream: TcpStream, handler: impl Fn(Request) -> (u16, String)) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut stream = stream;
    while let Some(req) = read_request(&mut reader) {
        let (code, body) = handler(req);
        if !write_full(&mut stream, code, &body) {
            return;
        }
    }
}

/// Serves the API stand-in's requests on one connection, streaming watches.
fn serve_replies(stream: TcpStream, handler: impl Fn(Request) -> Reply, api: &FakeApi) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut stream = stream;
    while let Some(req) = read_request(&mut reader) {
        match handler(req) {
            Reply::Full(code, body) => {
                if !write_full(&mut stream, code, &body) {
                    return;
                }
            }
            Reply::Watch { plural, namespace, after, until } => {
                if !stream_watch(&mut stream, api, &plural, namespace.as_deref(), after, until) {
                    return;
                }
            }
        }
    }
}

/// Streams the changes of `plural` (in `namespace`, or all) after revision `after` until `until`, as a chunked
/// body of JSON lines.
fn stream_watch(
    stream: &mut TcpStream,
    api: &FakeApi,
    plural: &str,
    namespace: Option<&str>,
    mut after: u64,
    until: std::time::Instant,
) -> bool {
    let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n";
    if stream.write_all(head.as_bytes()).is_err() {
        return false;
    }
    loop {
        let batch: Vec<String> = {
            let (lock, wake) = (&api.state.0, &api.state.1);
            let mut state = lock.lock().unwrap_or_else(|e| e.into_inner());
            loop {
                let start = state.changes.partition_point(|c| c.revision <= after);
                if start < state.changes.len() {
                    let lines: Vec<String> = state.changes[start..]
                        .iter()
                        .filter(|c| c.plural == plural && namespace.is_none_or(|ns| c.namespace == ns))
                        .map(|c| json!({"type": c.kind, "object": c.object}).to_string() + "\n")
                        .collect();
                    after = state.changes.last().map_or(after, |c| c.revision);
                    if !lines.is_empty() {
                        break lines;
                    }
                }
                let now = std::time::Instant::now();
                if now >= until {
                    break Vec::new();
                }
                state = wake.wait_timeout(state, until - now).unwrap_or_else(|e| e.into_inner()).0;
            }
        };
        if batch.is_empty() {
            return stream.write_all(b"0\r\n\r\n").is_ok();
        }
        for line in batch {
            let chunk = format!("{:x}\r\n{line}\r\n", line.len());
            if stream.write_all(chunk.as_bytes()).is_err() {
                return false;
            }
        }
    }
}

/// How the Foundry stand-in answers `GET /api/status`.
#[derive(Debug, Clone)]
pub enum Foundry {
    Answer(u16, String),
    Slow(Duration, String),
}

/// An in-process Foundry status endpoint.
#[derive(Clone)]
pub struct FakeFoundry {
    pub addr: String,
    requests: Arc<Mutex<Vec<Request>>>,
}

impl FakeFoundry {
    pub fn start(behaviour: Foundry) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let requests: Arc<Mutex<Vec<Request>>> = Arc::default();
        let seen = requests.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (behaviour, seen) = (behaviour.clone(), seen.clone());
                std::thread::spawn(move || {
                    serve(stream, |req| {
                        seen.lock().unwrap().push(req);
                        match &behaviour {
                            Foundry::Answer(code, body) => (*code, body.clone()),
                            Foundry::Slow(d, body) => {
                                std::thread::sleep(*d);
                                (200, body.clone())
                            }
                        }
                    })
                });
            }
        });
        FakeFoundry { addr, requests }
    }

    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }
}

/// An address where nothing listens (connections are refused).
pub fn refused_addr() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    drop(listener);
    addr
}

/// The time `secs` seconds ago, as the monitor writes timestamps.
pub fn ago(secs: u64) -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    policy_core::api::Timestamp::from_unix((now - secs) as i64).unwrap().to_string()
}

/// A `FoundryLicense` in `namespace` publishing its instances under `domain`.
pub fn license_object(name: &str, namespace: &str, domain: &str, active: &str, activation: Value) -> Value {
    let mut spec = json!({
        "licenseSecretRef": {"name": "foundry-license", "key": "license-key"},
        "gateway": {"baseDomain": domain},
        "activeInstanceName": active,
    });
    if !activation.is_null() {
        spec["activation"] = activation;
    }
    json!({
        "apiVersion": "foundry.platform/v1alpha1", "kind": "FoundryLicense",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
        "status": {"activeInstance": active, "desiredInstance": active, "pendingSince": null, "warnings": []},
    })
}

/// A `FoundryInstance` of `license`: an instance whose workflow configured its workload (a `Ready` condition), with `status` merged over that.
pub fn instance_object(name: &str, namespace: &str, license: &str, status: Value) -> Value {
    let mut object = json!({
        "apiVersion": "foundry.platform/v1alpha1", "kind": "FoundryInstance",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"licenseRef": {"name": license}},
        "status": {"conditions": [{"type": "Ready", "status": "True", "reason": "Configured"}]},
    });
    merge(&mut object["status"], &status);
    object
}

/// The status a monitor writes for an instance nobody has used for `idle` seconds.
pub fn idle_status(idle: u64) -> Value {
    json!({"connectedPlayers": 0, "idleSince": ago(idle), "lastPlayerActivity": ago(idle + 30),
           "lastCheckedAt": ago(10), "world": "lost-mine", "license": "guild", "routeState": "active"})
}

/// A running `host-runner standby-page`, stopped when dropped.
pub struct StandbyService {
    child: std::process::Child,
    pub addr: String,
    pub log: PathBuf,
}

impl StandbyService {
    /// Starts the service and waits (up to ten seconds) until it has read the cluster (`/readyz`).
    pub fn start(api: &FakeApi, dir: &Path, extra: &[&str]) -> Self {
        let service = Self::spawn(api, dir, extra);
        let started = std::time::Instant::now();
        while started.elapsed() < Duration::from_secs(10) {
            if http_get(&service.addr, "localhost", "/readyz").status == 200 {
                break;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        service
    }

    /// Starts the service without waiting for it to read the cluster.
    pub fn spawn(api: &FakeApi, dir: &Path, extra: &[&str]) -> Self {
        let kubeconfig = api.kubeconfig(dir);
        let log = dir.join("standby.log");
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_host-runner"))
            .args(["standby-page", "--listen", "127.0.0.1:0", "--kubeconfig"])
            .arg(&kubeconfig)
            .args(extra)
            .stdout(std::process::Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Self::announced(child, log)
    }

    /// A service started by the caller (stdout piped, stderr to `log`), once it has read the cluster.
    pub fn adopt(child: std::process::Child, log: PathBuf) -> Self {
        let service = Self::announced(child, log);
        let started = std::time::Instant::now();
        while started.elapsed() < Duration::from_secs(30) {
            if http_get(&service.addr, "localhost", "/readyz").status == 200 {
                break;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        service
    }

    fn announced(mut child: std::process::Child, log: PathBuf) -> Self {
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let addr = line.trim().strip_prefix("standby-page: listening on ").unwrap_or_else(|| {
            panic!("no address announced: {line:?}; log: {}", std::fs::read_to_string(&log).unwrap_or_default())
        });
        StandbyService { addr: addr.to_owned(), child, log }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for StandbyService {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP answer as the client saw it.
#[derive(Debug, Clone)]
pub struct HttpAnswer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl HttpAnswer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// Sends `raw` (a whole HTTP/1.1 request, `Connection: close`) as written, and reads the answer.
pub fn http_raw(addr: &str, raw: &str) -> HttpAnswer {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    // The server may close early (a refused head or body); what it answered is still read.
    let _ = stream.write_all(raw.as_bytes());
    let mut bytes = Vec::new();
    let _ = stream.read_to_end(&mut bytes);
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines.next().and_then(|l| l.split_whitespace().nth(1)).and_then(|c| c.parse().ok()).unwrap_or(0);
    let headers =
        lines.filter_map(|l| l.split_once(':')).map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned())).collect();
    HttpAnswer { status, headers, body: body.to_owned() }
}

/// `GET path` with the given `Host`.
pub fn http_get(addr: &str, host: &str, path: &str) -> HttpAnswer {
    http_raw(addr, &format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"))
}

/// `POST /activate` with the given `Host`, extra header lines (each ending in `\r\n`) and form body.
pub fn http_post(addr: &str, host: &str, headers: &str, body: &str) -> HttpAnswer {
    http_raw(
        addr,
        &format!(
            "POST /activate HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
             Content-Length: {}\r\n{headers}Connection: close\r\n\r\n{body}",
            body.len()
        ),
    )
}
