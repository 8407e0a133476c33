//! Stand-ins for the services the Kratix workflows talk to, as real HTTP servers on loopback.
//!
//! `FakeApi` answers the real Kubernetes API paths of the `foundry.platform` resources with real JSON (list with
//! pagination, get, merge-patch of objects and of their status) and records every request, so tests assert the
//! exact verb, path and body a live cluster would see. It also lists each kind across all namespaces, creates
//! objects (setting `creationTimestamp` and `resourceVersion`, answering 409 for an existing name), serves the
//! status subresource, and honours a `metadata.resourceVersion` precondition in a merge patch (409 on mismatch), as
//! the standby page and the monitor need. Faults (an HTTP status, a delay, a malformed body) can be
//! set per path, for the first N requests or for all. `FakeFoundry` answers `GET /api/status` as a Foundry server
//! would, or misbehaves.
//!
//! `FakeApi` is kept only for what a real API server will not do on demand: injected faults (errors, delays,
//! malformed answers, paging) and asserting the exact requests. Everything else (RBAC, schemas, CEL rules, the
//! status subresource, TokenRequest tokens) is covered against a real kube-apiserver by the cluster tier
//! (`host-runner/tests/cluster/`, run by `cargo xtask cluster`).

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
    Status(u16, String),
    Delay(Duration),
    Body(String),
}

#[derive(Default)]
struct ApiState {
    objects: BTreeMap<String, Value>,
    requests: Vec<Request>,
    faults: Vec<(String, String, Fault, Option<usize>)>,
    page_size: Option<usize>,
}

/// An in-process Kubernetes API for `foundry.platform` objects.
#[derive(Clone)]
pub struct FakeApi {
    state: Arc<Mutex<ApiState>>,
    pub addr: String,
}

const GROUP_PATH: &str = "/apis/foundry.platform/v1alpha1/namespaces/";

impl FakeApi {
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let api = FakeApi { state: Arc::default(), addr };
        let server = api.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let server = server.clone();
                std::thread::spawn(move || serve(stream, |req| server.handle(req)));
            }
        });
        api
    }

    /// Stores an object (its path is derived from its kind, namespace and name).
    pub fn put(&self, mut object: Value) {
        let plural = plural(object["kind"].as_str().unwrap());
        if object["metadata"].get("resourceVersion").is_none() {
            object["metadata"]["resourceVersion"] = json!("1");
        }
        let key = format!(
            "{GROUP_PATH}{}/{plural}/{}",
            object["metadata"]["namespace"].as_str().unwrap(),
            object["metadata"]["name"].as_str().unwrap()
        );
        self.state.lock().unwrap().objects.insert(key, object);
    }

    pub fn object(&self, kind: &str, namespace: &str, name: &str) -> Option<Value> {
        let key = format!("{GROUP_PATH}{namespace}/{}/{name}", plural(kind));
        self.state.lock().unwrap().objects.get(&key).cloned()
    }

    /// Misbehaves for `method` requests whose path starts with `path`: always, or for the first `times`.
    pub fn fault(&self, method: &str, path: &str, fault: Fault, times: Option<usize>) {
        self.state.lock().unwrap().faults.push((method.into(), path.into(), fault, times));
    }

    /// Serves lists in pages of this size (with `continue` tokens).
    pub fn page_size(&self, n: usize) {
        self.state.lock().unwrap().page_size = Some(n);
    }

    pub fn requests(&self) -> Vec<Request> {
        self.state.lock().unwrap().requests.clone()
    }

    /// The requests other than reads.
    pub fn writes(&self) -> Vec<Request> {
        self.requests().into_iter().filter(|r| r.method != "GET").collect()
    }

    /// Every stored object of a kind, in path order.
    pub fn objects(&self, kind: &str) -> Vec<Value> {
        let plural = format!("/{}/", plural(kind));
        self.state.lock().unwrap().objects.iter().filter(|(k, _)| k.contains(&plural)).map(|(_, v)| v.clone()).collect()
    }

    /// A kubeconfig file pointing at this server.
    pub fn kubeconfig(&self, dir: &Path) -> PathBuf {
        let path = dir.join("kubeconfig");
        let text = format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: fake\nclusters:\n- name: fake\n  cluster:\n    server: http://{}\n\
             contexts:\n- name: fake\n  context:\n    cluster: fake\n    user: fake\nusers:\n- name: fake\n  user:\n    token: not-a-secret\n",
            self.addr
        );
        std::fs::write(&path, text).unwrap();
        path
    }

    fn handle(&self, req: Request) -> (u16, String) {
        let mut state = self.state.lock().unwrap();
        state.requests.push(req.clone());
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
        let page_size = state.page_size;
        match chosen {
            Some(Fault::Status(code, body)) => return (code, body),
            Some(Fault::Body(body)) => return (200, body),
            Some(Fault::Delay(d)) => {
                drop(state);
                std::thread::sleep(d);
                state = self.state.lock().unwrap();
            }
            None => {}
        }
        // Lists across all namespaces: /apis/foundry.platform/v1alpha1/<plural>.
        if let Some(plural) = req.path.strip_prefix("/apis/foundry.platform/v1alpha1/")
            && !plural.contains('/')
            && req.method == "GET"
        {
            let suffix = format!("/{plural}/");
            let items: Vec<Value> = state
                .objects
                .iter()
                .filter(|(k, _)| k.contains(&suffix) && k.starts_with(GROUP_PATH))
                .map(|(_, v)| {
                    let mut o = v.clone();
                    o.as_object_mut().unwrap().remove("apiVersion");
                    o.as_object_mut().unwrap().remove("kind");
                    o
                })
                .collect();
            return (200, json!({"apiVersion": "foundry.platform/v1alpha1", "kind": "List", "metadata": {"resourceVersion": "42"}, "items": items}).to_string());
        }
        let Some(rest) = req.path.strip_prefix(GROUP_PATH) else { return not_found(&req.path) };
        let parts: Vec<&str> = rest.split('/').collect();
        match (req.method.as_str(), parts.as_slice()) {
            ("POST", [ns, plural]) => {
                let mut object = req.json();
                let Some(name) = object["metadata"]["name"].as_str().map(str::to_owned) else {
                    return (422, status_body(422, "Invalid", "metadata.name is required"));
                };
                let key = format!("{GROUP_PATH}{ns}/{plural}/{name}");
                if state.objects.contains_key(&key) {
                    return (409, status_body(409, "AlreadyExists", &format!("{name} already exists")));
                }
                object["metadata"]["namespace"] = json!(ns);
                object["metadata"]["creationTimestamp"] = json!(now_rfc3339());
                object["metadata"]["resourceVersion"] = json!("1");
                state.objects.insert(key, object.clone());
                (201, object.to_string())
            }
            ("GET", [_, _, _, "status"]) => match state.objects.get(req.path.trim_end_matches("/status")) {
                Some(o) => (200, o.to_string()),
                None => not_found(&req.path),
            },
            ("GET", [ns, plural]) => {
                let prefix = format!("{GROUP_PATH}{ns}/{plural}/");
                let mut items: Vec<Value> =
                    state.objects.iter().filter(|(k, _)| k.starts_with(&prefix)).map(|(_, v)| v.clone()).collect();
                let start: usize = query_param(&req.query, "continue").and_then(|c| c.parse().ok()).unwrap_or(0);
                let limit = page_size.unwrap_or(usize::MAX);
                let total = items.len();
                let page: Vec<Value> = items.drain(..).skip(start).take(limit).collect();
                let next =
                    if start + page.len() < total { json!((start + page.len()).to_string()) } else { json!(null) };
                let mut metadata = json!({"resourceVersion": "42"});
                if !next.is_null() {
                    metadata["continue"] = next;
                }
                let kind = if *plural == "foundryinstances" { "FoundryInstanceList" } else { "FoundryLicenseList" };
                // List items carry no apiVersion/kind, as the real API server sends them.
                let page: Vec<Value> = page
                    .into_iter()
                    .map(|mut o| {
                        o.as_object_mut().unwrap().remove("apiVersion");
                        o.as_object_mut().unwrap().remove("kind");
                        o
                    })
                    .collect();
                (200, json!({"apiVersion": "foundry.platform/v1alpha1", "kind": kind, "metadata": metadata, "items": page}).to_string())
            }
            ("GET", [_, _, _]) => match state.objects.get(&req.path) {
                Some(o) => (200, o.to_string()),
                None => not_found(&req.path),
            },
            ("PATCH", [_, _, _]) | ("PATCH", [_, _, _, "status"]) => {
                let key = req.path.trim_end_matches("/status").to_owned();
                if req.headers.get("content-type").map(String::as_str) != Some("application/merge-patch+json") {
                    return (415, status_body(415, "UnsupportedMediaType", "expected a JSON merge patch"));
                }
                match state.objects.get_mut(&key) {
                    Some(o) => {
                        let mut patch = req.json();
                        if let Some(wanted) = patch.pointer("/metadata/resourceVersion").cloned() {
                            if o["metadata"]["resourceVersion"] != wanted {
                                return (409, status_body(409, "Conflict", "the object has been modified"));
                            }
                            patch["metadata"].as_object_mut().unwrap().remove("resourceVersion");
                        }
                        merge(o, &patch);
                        let version: u64 =
                            o["metadata"]["resourceVersion"].as_str().unwrap_or("1").parse().unwrap_or(1);
                        o["metadata"]["resourceVersion"] = json!((version + 1).to_string());
                        (200, o.to_string())
                    }
                    None => not_found(&req.path),
                }
            }
            _ => not_found(&req.path),
        }
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

fn not_found(path: &str) -> (u16, String) {
    (404, status_body(404, "NotFound", &format!("{path} not found")))
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

/// Serves HTTP/1.1 requests on one connection until it closes.
fn serve(stream: TcpStream, handler: impl Fn(Request) -> (u16, String)) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut stream = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut words = line.split_whitespace();
        let (method, target) =
            (words.next().unwrap_or_default().to_owned(), words.next().unwrap_or_default().to_owned());
        let mut headers = BTreeMap::new();
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
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
            reader.read_exact(&mut body).unwrap();
        } else if headers.get("transfer-encoding").is_some_and(|t| t.contains("chunked")) {
            loop {
                let mut size = String::new();
                reader.read_line(&mut size).unwrap();
                let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
                let mut chunk = vec![0; n + 2];
                reader.read_exact(&mut chunk).unwrap();
                if n == 0 {
                    break;
                }
                body.extend_from_slice(&chunk[..n]);
            }
        }
        let (path, query) =
            target.split_once('?').map_or((target.clone(), String::new()), |(p, q)| (p.into(), q.into()));
        let req = Request { method, path, query, headers, body: String::from_utf8_lossy(&body).into_owned() };
        let (code, body) = handler(req);
        let content_type = if body.trim_start().starts_with('<') { "text/html" } else { "application/json" };
        let response = format!(
            "HTTP/1.1 {code} X\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        if stream.write_all(response.as_bytes()).is_err() {
            return;
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

/// A `FoundryInstance` of `license`, with a monitor status.
/// An instance whose workflow configured its workload (a `Ready` condition), with `status` merged over that.
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
    pub fn start(api: &FakeApi, dir: &Path, extra: &[&str]) -> Self {
        let kubeconfig = api.kubeconfig(dir);
        let log = dir.join("standby.log");
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_host-runner"))
            .args(["standby-page", "--listen", "127.0.0.1:0", "--cache-ttl", "0", "--kubeconfig"])
            .arg(&kubeconfig)
            .args(extra)
            .stdout(std::process::Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let addr = line.trim().strip_prefix("standby-page: listening on ").unwrap_or_else(|| {
            panic!("no address announced: {line:?}; log: {}", std::fs::read_to_string(&log).unwrap_or_default())
        });
        StandbyService { addr: addr.to_owned(), child, log }
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
