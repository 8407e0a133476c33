//! The one Kubernetes client of the host, on kube-rs: the pipeline, the player monitor and the services all go
//! through [`KubeClient`].
//!
//! - One table of the resources the host touches ([`Resource`]): group, version, kind and plural live here only.
//! - Every request has a per-attempt timeout and goes through one retry policy ([`ApiRetry`], a tower retry
//!   layer as kube-rs's own `client::retry` shows): HTTP 429 and 5xx are retried for every verb (the server did
//!   not apply the request), transport failures and timeouts only for reads (a write may have been applied).
//! - Lists are read in one paging loop ([`KubeClient::list`]) bounded in items, pages and total time, so neither
//!   a huge namespace nor an API that keeps answering with a `continue` token can exhaust memory or time.
//! - No credential is ever printed: a kubeconfig that cannot be parsed is named but never quoted, and every text
//!   that comes back from the API is scrubbed of bearer tokens ([`scrub`]).
//!
//! This module only moves objects; it decides nothing. [`LiveCluster`] adapts it to the workflows' blocking
//! [`Cluster`] interface.

use crate::cluster::{Cluster, ClusterError, RECONCILE_LABEL, StatusTarget};
use http::{Request, Response};
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::client::{Body, ClientBuilder, DynBody};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use policy_core::model::{ACTIVATION_REQUEST_KIND, API_VERSION, GROUP, INSTANCE_KIND, LICENSE_KIND, VERSION};
use serde_json::{Value, json};
use std::borrow::Cow;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::runtime::Runtime;
use tower::BoxError;
use tower::buffer::BufferLayer;
use tower::retry::{Policy, RetryLayer};
use tower::timeout::TimeoutLayer;

/// Attempts per request (the first and three retries).
pub const ATTEMPTS: u32 = 4;
/// Wait before the first retry; doubled for each further one.
const FIRST_BACKOFF: Duration = Duration::from_millis(250);

/// The resources the host reads and writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    /// `FoundryLicense`.
    License,
    /// `FoundryInstance`.
    Instance,
    /// `FoundryActivationRequest`.
    ActivationRequest,
}

impl Resource {
    /// The kind.
    pub fn kind(self) -> &'static str {
        match self {
            Self::License => LICENSE_KIND,
            Self::Instance => INSTANCE_KIND,
            Self::ActivationRequest => ACTIVATION_REQUEST_KIND,
        }
    }

    /// The plural resource name.
    pub fn plural(self) -> &'static str {
        match self {
            Self::License => "foundrylicenses",
            Self::Instance => "foundryinstances",
            Self::ActivationRequest => "foundryactivationrequests",
        }
    }

    /// The resource as kube-rs addresses it.
    pub fn api_resource(self) -> ApiResource {
        ApiResource {
            group: GROUP.into(),
            version: VERSION.into(),
            api_version: API_VERSION.into(),
            kind: self.kind().into(),
            plural: self.plural().into(),
        }
    }

    /// `<plural>.<group>`, for messages (the name RBAC rules and `kubectl` use).
    pub fn qualified(self) -> String {
        format!("{}.{GROUP}", self.plural())
    }
}

/// Bounds of one list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListLimits {
    /// Items per page.
    pub page: u32,
    /// Most items read; past it the list fails with [`ClusterError::TooMany`].
    pub max_items: usize,
    /// Longest time the whole list may take.
    pub deadline: Duration,
}

impl Default for ListLimits {
    /// Sized for the largest decision the policy accepts (10 000 instances, see `policy_core::api::license`).
    fn default() -> Self {
        Self { page: 500, max_items: 10_000, deadline: Duration::from_secs(60) }
    }
}

/// The retry policy of every API request (see the module documentation).
#[derive(Debug, Clone)]
pub struct ApiRetry {
    retries_left: u32,
    backoff: Duration,
}

impl Default for ApiRetry {
    fn default() -> Self {
        Self { retries_left: ATTEMPTS - 1, backoff: FIRST_BACKOFF }
    }
}

impl<B> Policy<Request<Body>, Response<B>, BoxError> for ApiRetry {
    type Future = tokio::time::Sleep;

    fn retry(&mut self, req: &mut Request<Body>, result: &mut Result<Response<B>, BoxError>) -> Option<Self::Future> {
        let status = match result {
            Ok(response) => Some(response.status().as_u16()),
            Err(_) => None,
        };
        let again = retried(req.method() == http::Method::POST, req.method() == http::Method::GET, status);
        if !again || self.retries_left == 0 {
            return None;
        }
        self.retries_left -= 1;
        let wait = self.backoff;
        self.backoff = self.backoff.saturating_mul(2);
        Some(tokio::time::sleep(wait))
    }

    fn clone_request(&mut self, req: &Request<Body>) -> Option<Request<Body>> {
        let body = req.body().try_clone()?;
        let mut builder = Request::builder().method(req.method().clone()).uri(req.uri().clone()).version(req.version());
        if let Some(headers) = builder.headers_mut() {
            headers.extend(req.headers().clone());
        }
        builder.body(body).ok().map(|mut copy| {
            *copy.extensions_mut() = req.extensions().clone();
            copy
        })
    }
}

/// Whether a request is retried after answering `status` (`None`: no answer). 429 and 503 mean the server did not
/// take the request, so every verb is retried; other server errors are retried except for a creation (which may
/// have happened, and repeating it is not idempotent); no answer at all only for reads (a write may have been
/// applied).
fn retried(create: bool, read: bool, status: Option<u16>) -> bool {
    match status {
        Some(429 | 503) => true,
        Some(501) => false,
        Some(code) if code >= 500 => !create,
        Some(_) => false,
        None => read,
    }
}

/// Removes credentials from a text that came from the API or a library: `Bearer` tokens, JWTs (service-account
/// tokens), and `token:` values, then shortens it.
pub fn scrub(text: &str) -> String {
    let mut out = Vec::new();
    let mut words = text.split(' ').peekable();
    while let Some(word) = words.next() {
        let lower = word.to_ascii_lowercase();
        if lower.ends_with("bearer") || lower.ends_with("token:") || lower.ends_with("token=") {
            out.push(word.to_owned());
            if words.next().is_some() {
                out.push("[redacted]".to_owned());
            }
        } else if looks_like_jwt(word) {
            out.push("[redacted]".to_owned());
        } else {
            out.push(word.to_owned());
        }
    }
    let joined = out.join(" ");
    if joined.chars().count() > 300 { joined.chars().take(300).chain(['…']).collect() } else { joined }
}

fn looks_like_jwt(word: &str) -> bool {
    let core = word.trim_matches(|c: char| !c.is_ascii_alphanumeric() && c != '-' && c != '_' && c != '.');
    core.starts_with("eyJ") && core.matches('.').count() >= 2 && core.len() > 20
}

/// What went wrong with one request, before it becomes a [`ClusterError`].
enum Failure {
    Status(u16, String),
    Transport(String),
    Malformed(String),
}

fn classify(e: &kube::Error, timeout: Duration) -> Failure {
    match e {
        kube::Error::Api(status) => Failure::Status(status.code, scrub(&status.message)),
        kube::Error::SerdeError(e) => Failure::Malformed(scrub(&e.to_string())),
        kube::Error::Service(e) if e.is::<tower::timeout::error::Elapsed>() => {
            Failure::Transport(format!("no answer within {timeout:?}"))
        }
        kube::Error::HyperError(e) => Failure::Transport(scrub(&root_cause(e))),
        kube::Error::Service(e) => Failure::Transport(scrub(&root_cause(e.as_ref()))),
        other => Failure::Malformed(scrub(&other.to_string())),
    }
}

fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

/// A request, for error messages.
#[derive(Clone, Copy)]
struct Op<'a> {
    verb: &'a str,
    resource: &'a str,
    namespace: &'a str,
}

impl Op<'_> {
    fn error(&self, failure: Failure) -> ClusterError {
        let (verb, resource, namespace) = (self.verb.to_owned(), self.resource.to_owned(), self.namespace.to_owned());
        match failure {
            Failure::Status(403, detail) => ClusterError::Forbidden { verb, resource, namespace, detail },
            Failure::Status(code, detail) if code == 429 || code >= 500 => {
                let attempts = if retried(self.verb == "create", false, Some(code)) { ATTEMPTS } else { 1 };
                ClusterError::Unavailable {
                    verb,
                    resource,
                    namespace,
                    attempts,
                    detail: format!("HTTP {code}: {detail}"),
                }
            }
            Failure::Status(code, detail) => ClusterError::Refused { verb, resource, namespace, code, detail },
            Failure::Transport(detail) => {
                let read = self.verb == "get" || self.verb == "list";
                let attempts = if retried(false, read, None) { ATTEMPTS } else { 1 };
                ClusterError::Unavailable { verb, resource, namespace, attempts, detail }
            }
            Failure::Malformed(detail) => ClusterError::Malformed { verb, resource, namespace, detail },
        }
    }
}

/// A Kubernetes API client with the project's timeouts, retries and list bounds.
#[derive(Clone)]
pub struct KubeClient {
    client: Client,
    config: Config,
    timeout: Duration,
    limits: ListLimits,
}

impl std::fmt::Debug for KubeClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeClient").field("timeout", &self.timeout).field("limits", &self.limits).finish()
    }
}

impl KubeClient {
    /// Connects: the given kubeconfig; else the in-cluster service account; else the default kubeconfig
    /// (`$KUBECONFIG` or `~/.kube/config`). `timeout` bounds each attempt of each request. Must run inside a
    /// tokio runtime.
    pub async fn connect(kubeconfig: Option<&Path>, timeout: Duration) -> Result<Self, ClusterError> {
        let config = match kubeconfig {
            Some(path) => {
                // The parser's message quotes the file, which holds credentials: say where, never what.
                let kc = Kubeconfig::read_from(path).map_err(|_| {
                    ClusterError::Config(format!(
                        "cannot read `{}` as a kubeconfig (missing, unreadable, or not valid kubeconfig YAML); its \
                         content is not shown because it holds credentials",
                        path.display()
                    ))
                })?;
                Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
                    .await
                    .map_err(|e| ClusterError::Config(format!("`{}`: {}", path.display(), scrub(&e.to_string()))))?
            }
            None => match Config::incluster() {
                Ok(config) => config,
                Err(in_cluster) => Config::from_kubeconfig(&KubeConfigOptions::default()).await.map_err(|e| {
                    ClusterError::Config(format!(
                        "not in a cluster ({}) and no usable kubeconfig ({})",
                        scrub(&in_cluster.to_string()),
                        scrub(&e.to_string())
                    ))
                })?,
            },
        };
        Self::from_config(config, timeout, ListLimits::default())
    }

    /// A client for `config`, with the retry policy and per-attempt timeout layered in.
    pub fn from_config(mut config: Config, timeout: Duration, limits: ListLimits) -> Result<Self, ClusterError> {
        config.connect_timeout = Some(timeout);
        config.read_timeout = Some(timeout);
        config.write_timeout = Some(timeout);
        let builder =
            ClientBuilder::try_from(config.clone()).map_err(|e| ClusterError::Config(scrub(&e.to_string())))?;
        let client = builder
            .with_layer(&BufferLayer::new(256))
            .with_layer(&TimeoutLayer::new(timeout))
            .with_layer(&RetryLayer::new(ApiRetry::default()))
            .build::<Box<DynBody>>();
        Ok(Self { client, config, timeout, limits })
    }

    /// A client for long-lived watches (kube-runtime's `watcher`, which retries by itself): the same connection
    /// settings, without the per-attempt timeout and retry layers, and reads allowed to wait `idle` (longer than
    /// the watch's own server-side timeout) before the connection counts as dead.
    pub fn watch_client(&self, idle: Duration) -> Result<Client, ClusterError> {
        let mut config = self.config.clone();
        config.read_timeout = Some(idle);
        Client::try_from(config).map_err(|e| ClusterError::Config(scrub(&e.to_string())))
    }

    /// The bounds of each list.
    pub fn limits(&self) -> ListLimits {
        self.limits
    }

    /// The same client with other list bounds.
    pub fn with_limits(mut self, limits: ListLimits) -> Self {
        self.limits = limits;
        self
    }

    /// The kube-rs client (for watches).
    pub fn client(&self) -> Client {
        self.client.clone()
    }

    /// The timeout of each attempt.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    fn api(&self, resource: &ApiResource, namespace: Option<&str>) -> Api<DynamicObject> {
        match namespace {
            Some(ns) => Api::namespaced_with(self.client.clone(), ns, resource),
            None => Api::all_with(self.client.clone(), resource),
        }
    }

    /// Runs one request (its attempts are the retry layer's) within its total deadline.
    async fn call<T>(
        &self,
        op: Op<'_>,
        request: impl std::future::Future<Output = Result<T, kube::Error>>,
    ) -> Result<T, ClusterError> {
        // Every attempt is bounded, so the backoff and attempts bound the whole request too.
        let deadline = self.timeout.saturating_mul(ATTEMPTS + 1) + FIRST_BACKOFF.saturating_mul(8);
        match tokio::time::timeout(deadline, request).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(op.error(classify(&e, self.timeout))),
            Err(_) => Err(op.error(Failure::Transport(format!("no answer within {deadline:?}")))),
        }
    }

    /// Every object of `resource` in `namespace` (or in all namespaces), as JSON with `apiVersion` and `kind`:
    /// the one paging loop. Fails when the list holds more than the limit's items, takes more pages than that
    /// many items need, or takes longer than its deadline.
    pub async fn list(&self, resource: Resource, namespace: Option<&str>) -> Result<Vec<Value>, ClusterError> {
        self.list_of(&resource.api_resource(), &resource.qualified(), namespace).await
    }

    /// Every `FoundryPassword` of the existing platform in every namespace (for `migrate`); none when its CRD is
    /// not installed.
    pub async fn list_legacy_passwords(&self) -> Result<Vec<Value>, ClusterError> {
        let resource = ApiResource {
            group: GROUP.into(),
            version: VERSION.into(),
            api_version: API_VERSION.into(),
            kind: "FoundryPassword".into(),
            plural: "foundrypasswords".into(),
        };
        match self.list_of(&resource, &format!("foundrypasswords.{GROUP}"), None).await {
            Err(ClusterError::Refused { code: 404, .. }) => Ok(Vec::new()),
            other => other,
        }
    }

    async fn list_of(
        &self,
        resource: &ApiResource,
        name: &str,
        namespace: Option<&str>,
    ) -> Result<Vec<Value>, ClusterError> {
        let api = self.api(resource, namespace);
        let name = name.to_owned();
        let op = Op { verb: "list", resource: &name, namespace: namespace.unwrap_or_default() };
        let limits = self.limits;
        let started = Instant::now();
        let max_pages = limits.max_items / usize::try_from(limits.page.max(1)).unwrap_or(1) + 2;
        let mut items = Vec::new();
        let mut token: Option<String> = None;
        for _ in 0..max_pages {
            let mut params = ListParams::default().limit(limits.page);
            if let Some(t) = &token {
                params = params.continue_token(t);
            }
            let page = self.call(op, api.list(&params)).await?;
            for item in page.items {
                let mut value =
                    serde_json::to_value(item).map_err(|e| op.error(Failure::Malformed(scrub(&e.to_string()))))?;
                if let Some(obj) = value.as_object_mut() {
                    obj.insert("apiVersion".into(), Value::from(resource.api_version.as_str()));
                    obj.insert("kind".into(), Value::from(resource.kind.as_str()));
                }
                items.push(value);
                if items.len() > limits.max_items {
                    return Err(ClusterError::TooMany {
                        resource: name.clone(),
                        namespace: op.namespace.into(),
                        limit: limits.max_items,
                    });
                }
            }
            token = page.metadata.continue_.filter(|t| !t.is_empty());
            if token.is_none() {
                return Ok(items);
            }
            if started.elapsed() > limits.deadline {
                return Err(op.error(Failure::Transport(format!("the list took longer than {:?}", limits.deadline))));
            }
        }
        Err(op.error(Failure::Malformed(format!(
            "the API kept paging past {max_pages} pages of {} items; the list is refused",
            limits.page
        ))))
    }

    /// One object, or `None` when it does not exist.
    pub async fn get(&self, resource: Resource, namespace: &str, name: &str) -> Result<Option<Value>, ClusterError> {
        let api = self.api(&resource.api_resource(), Some(namespace));
        let qualified = resource.qualified();
        let op = Op { verb: "get", resource: &qualified, namespace };
        match self.call(op, api.get_opt(name)).await? {
            Some(obj) => serde_json::to_value(obj).map(Some).map_err(|e| op.error(Failure::Malformed(e.to_string()))),
            None => Ok(None),
        }
    }

    /// The Deployment `namespace/name` (`apps/v1`), or `None` when it does not exist.
    pub async fn get_deployment(&self, namespace: &str, name: &str) -> Result<Option<Value>, ClusterError> {
        let resource = ApiResource {
            group: "apps".into(),
            version: "v1".into(),
            api_version: "apps/v1".into(),
            kind: "Deployment".into(),
            plural: "deployments".into(),
        };
        let api = self.api(&resource, Some(namespace));
        let op = Op { verb: "get", resource: "deployments.apps", namespace };
        match self.call(op, api.get_opt(name)).await? {
            Some(obj) => serde_json::to_value(obj).map(Some).map_err(|e| op.error(Failure::Malformed(e.to_string()))),
            None => Ok(None),
        }
    }

    /// Merge-patches an object (its `metadata.resourceVersion`, when the patch carries one, is a precondition).
    pub async fn merge_patch(
        &self,
        resource: Resource,
        namespace: &str,
        name: &str,
        patch: &Value,
    ) -> Result<Value, ClusterError> {
        let api = self.api(&resource.api_resource(), Some(namespace));
        let qualified = resource.qualified();
        let op = Op { verb: "patch", resource: &qualified, namespace };
        let params = PatchParams::default();
        let obj = self.call(op, api.patch(name, &params, &Patch::Merge(patch))).await?;
        serde_json::to_value(obj).map_err(|e| op.error(Failure::Malformed(e.to_string())))
    }

    /// Creates an object (its namespace is its `metadata.namespace`).
    pub async fn create(&self, resource: Resource, object: &Value) -> Result<Value, ClusterError> {
        let namespace = object.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or_default();
        let api = self.api(&resource.api_resource(), Some(namespace));
        let qualified = resource.qualified();
        let op = Op { verb: "create", resource: &qualified, namespace };
        let object: DynamicObject =
            serde_json::from_value(object.clone()).map_err(|e| op.error(Failure::Malformed(e.to_string())))?;
        let created = self.call(op, api.create(&PostParams::default(), &object)).await?;
        serde_json::to_value(created).map_err(|e| op.error(Failure::Malformed(e.to_string())))
    }

    /// Deletes an object, only if it still has this `uid` and `resourceVersion` (when given). An object already
    /// gone counts as deleted.
    pub async fn delete(
        &self,
        resource: Resource,
        namespace: &str,
        name: &str,
        preconditions: Option<(&str, &str)>,
    ) -> Result<(), ClusterError> {
        let api = self.api(&resource.api_resource(), Some(namespace));
        let qualified = resource.qualified();
        let op = Op { verb: "delete", resource: &qualified, namespace };
        let mut params = DeleteParams::default();
        if let Some((uid, rv)) = preconditions {
            params.preconditions =
                Some(kube::api::Preconditions { uid: Some(uid.to_owned()), resource_version: Some(rv.to_owned()) });
        }
        match self.call(op, api.delete(name, &params)).await {
            Ok(_) | Err(ClusterError::Refused { code: 404, .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    fn status_api(&self, target: &StatusTarget) -> (Api<DynamicObject>, String) {
        let resource = ApiResource {
            group: target.group.clone(),
            version: target.version.clone(),
            api_version: format!("{}/{}", target.group, target.version),
            kind: String::new(),
            plural: target.plural.clone(),
        };
        (self.api(&resource, Some(&target.namespace)), format!("{}/status.{}", target.plural, target.group))
    }

    /// The object's `status` (through the status subresource), `Value::Null` when it has none, `None` when the
    /// object does not exist.
    pub async fn get_status(&self, target: &StatusTarget) -> Result<Option<Value>, ClusterError> {
        let (api, name) = self.status_api(target);
        let op = Op { verb: "get", resource: &name, namespace: &target.namespace };
        match self.call(op, api.get_status(&target.name)).await {
            Ok(obj) => Ok(Some(obj.data.get("status").cloned().unwrap_or(Value::Null))),
            Err(ClusterError::Refused { code: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Merges `status` into the object's status and returns the status the API server now holds.
    pub async fn patch_status(&self, target: &StatusTarget, status: &Value) -> Result<Value, ClusterError> {
        let (api, name) = self.status_api(target);
        let op = Op { verb: "patch", resource: &name, namespace: &target.namespace };
        let body = json!({ "status": status });
        let obj = self.call(op, api.patch_status(&target.name, &PatchParams::default(), &Patch::Merge(&body))).await?;
        Ok(obj.data.get("status").cloned().unwrap_or(Value::Null))
    }

    /// Merge-patches the status subresource of an object of `resource` with `patch` (`{"status": {...}}`), and
    /// returns the object the API server now holds.
    pub async fn merge_patch_status(
        &self,
        resource: Resource,
        namespace: &str,
        name: &str,
        patch: &Value,
    ) -> Result<Value, ClusterError> {
        let api = self.api(&resource.api_resource(), Some(namespace));
        let qualified = format!("{}/status.{GROUP}", resource.plural());
        let op = Op { verb: "patch", resource: &qualified, namespace };
        let obj = self.call(op, api.patch_status(name, &PatchParams::default(), &Patch::Merge(patch))).await?;
        serde_json::to_value(obj).map_err(|e| op.error(Failure::Malformed(e.to_string())))
    }
}

/// The live [`Cluster`] of the workflows: [`KubeClient`] driven by a runtime of its own.
pub struct LiveCluster {
    rt: Arc<Runtime>,
    client: KubeClient,
}

impl std::fmt::Debug for LiveCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveCluster").field("client", &self.client).finish_non_exhaustive()
    }
}

impl LiveCluster {
    /// Connects as [`KubeClient::connect`] does.
    pub fn connect(rt: Arc<Runtime>, kubeconfig: Option<&Path>, timeout: Duration) -> Result<Self, ClusterError> {
        let client = rt.block_on(KubeClient::connect(kubeconfig, timeout))?;
        Ok(Self { rt, client })
    }
}

impl Cluster for LiveCluster {
    fn list_instances(&self, namespace: &str) -> Result<Vec<Cow<'_, Value>>, ClusterError> {
        let items = self.rt.block_on(self.client.list(Resource::Instance, Some(namespace)))?;
        Ok(items.into_iter().map(Cow::Owned).collect())
    }

    fn list_licenses(&self) -> Result<Vec<Cow<'_, Value>>, ClusterError> {
        let items = self.rt.block_on(self.client.list(Resource::License, None))?;
        Ok(items.into_iter().map(Cow::Owned).collect())
    }

    fn get_license(&self, namespace: &str, name: &str) -> Result<Option<Value>, ClusterError> {
        self.rt.block_on(self.client.get(Resource::License, namespace, name))
    }

    fn get_workload(&self, namespace: &str, name: &str) -> Result<Option<Value>, ClusterError> {
        self.rt.block_on(self.client.get_deployment(namespace, name))
    }

    fn touch_instance(&self, namespace: &str, name: &str) -> Result<(), ClusterError> {
        let patch = json!({"metadata": {"labels": {RECONCILE_LABEL: "true"}}});
        match self.rt.block_on(self.client.merge_patch(Resource::Instance, namespace, name, &patch)) {
            // The instance went away meanwhile: nothing left to reconfigure.
            Err(ClusterError::Refused { code: 404, .. }) => Ok(()),
            other => other.map(|_| ()),
        }
    }

    fn patch_instance_status(&self, namespace: &str, name: &str, status: &Value) -> Result<(), ClusterError> {
        let patch = json!({ "status": status });
        match self.rt.block_on(self.client.merge_patch_status(Resource::Instance, namespace, name, &patch)) {
            Err(ClusterError::Refused { code: 404, .. }) => Ok(()),
            other => other.map(|_| ()),
        }
    }

    fn touch_license(&self, namespace: &str, name: &str) -> Result<(), ClusterError> {
        let patch = json!({"metadata": {"labels": {RECONCILE_LABEL: "true"}}});
        match self.rt.block_on(self.client.merge_patch(Resource::License, namespace, name, &patch)) {
            // The license went away meanwhile: nothing left to re-route.
            Err(ClusterError::Refused { code: 404, .. }) => Ok(()),
            other => other.map(|_| ()),
        }
    }

    fn publish_status(&self, target: &StatusTarget, status: &Value) -> Result<(), ClusterError> {
        self.rt.block_on(self.client.patch_status(target, status)).map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_scrubbed() {
        let jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW0ifQ.c2lnbmF0dXJlLXNpZ25hdHVyZQ";
        for text in [
            format!("unauthorized: Authorization: Bearer {jwt}"),
            format!("header was bearer s3cr3t-static-token and {jwt}"),
            "line 3: token: s3cr3t-static-token".to_owned(),
        ] {
            let clean = scrub(&text);
            assert!(!clean.contains("s3cr3t") && !clean.contains("eyJ"), "{clean}");
        }
        assert_eq!(scrub("foundryinstances is forbidden"), "foundryinstances is forbidden");
    }
}
