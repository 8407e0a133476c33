//! The live [`Cluster`]: the Kubernetes API through kube-rs.
//!
//! Configuration is the pod's service account when running in a cluster, else a kubeconfig. Every call has a
//! timeout and is retried with exponential backoff on failures that may pass (timeouts, refused connections,
//! HTTP 429 and 5xx); a 403 names the permission the pipeline lacks. This module only moves objects; it decides
//! nothing.

use crate::cluster::{Cluster, ClusterError, RECONCILE_LABEL, StatusTarget};
use kube::api::{Api, ApiResource, DynamicObject, ListParams, Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use serde_json::{Value, json};
use std::borrow::Cow;
use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::runtime::Runtime;

/// Attempts per call (the first and three retries).
const ATTEMPTS: u32 = 4;
/// Wait before the first retry; doubled for each further one.
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
/// Items per list page.
const PAGE: u32 = 500;

/// A cluster reached through the Kubernetes API.
pub struct KubeCluster {
    rt: Arc<Runtime>,
    client: Client,
    timeout: Duration,
}

impl std::fmt::Debug for KubeCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeCluster").field("timeout", &self.timeout).finish_non_exhaustive()
    }
}

fn resource(kind: &str, plural: &str) -> ApiResource {
    ApiResource {
        group: policy_core::model::GROUP.into(),
        version: policy_core::model::VERSION.into(),
        api_version: policy_core::model::API_VERSION.into(),
        kind: kind.into(),
        plural: plural.into(),
    }
}

impl KubeCluster {
    /// Connects: the given kubeconfig; else the in-cluster service account; else the default kubeconfig
    /// (`$KUBECONFIG` or `~/.kube/config`). `timeout` bounds each API call.
    pub fn connect(rt: Arc<Runtime>, kubeconfig: Option<&Path>, timeout: Duration) -> Result<Self, ClusterError> {
        let mut config = rt.block_on(async {
            match kubeconfig {
                Some(path) => {
                    let kc = Kubeconfig::read_from(path)
                        .map_err(|e| ClusterError::Config(format!("cannot read `{}`: {e}", path.display())))?;
                    Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
                        .await
                        .map_err(|e| ClusterError::Config(format!("`{}`: {e}", path.display())))
                }
                None => match Config::incluster() {
                    Ok(config) => Ok(config),
                    Err(in_cluster) => Config::from_kubeconfig(&KubeConfigOptions::default()).await.map_err(|e| {
                        ClusterError::Config(format!("not in a cluster ({in_cluster}) and no usable kubeconfig ({e})"))
                    }),
                },
            }
        })?;
        config.connect_timeout = Some(timeout);
        config.read_timeout = Some(timeout);
        config.write_timeout = Some(timeout);
        let client = {
            let _guard = rt.enter();
            Client::try_from(config).map_err(|e| ClusterError::Config(e.to_string()))?
        };
        Ok(Self { rt, client, timeout })
    }

    /// The kube-rs client (for the services, which make their own async calls).
    pub fn client(&self) -> Client {
        self.client.clone()
    }

    /// The timeout of each call.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    fn api(&self, namespace: &str, kind: &str, plural: &str) -> Api<DynamicObject> {
        Api::namespaced_with(self.client.clone(), namespace, &resource(kind, plural))
    }

    /// Runs one API call with the timeout and retries.
    fn call<T, F, Fut>(&self, op: Op<'_>, f: F) -> Result<T, ClusterError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, kube::Error>>,
    {
        self.rt.block_on(async {
            let mut backoff = FIRST_BACKOFF;
            let mut attempt = 1;
            loop {
                let failure = match tokio::time::timeout(self.timeout, f()).await {
                    Ok(Ok(value)) => return Ok(value),
                    Ok(Err(e)) => match classify(&e) {
                        Class::Retry(detail) => detail,
                        Class::Fail(code, detail) => return Err(op.error(code, detail)),
                        Class::Malformed(detail) => return Err(op.malformed(detail)),
                    },
                    Err(_) => format!("no answer within {:?}", self.timeout),
                };
                if attempt >= ATTEMPTS {
                    return Err(op.unavailable(attempt, failure));
                }
                tokio::time::sleep(backoff).await;
                backoff *= 2;
                attempt += 1;
            }
        })
    }
}

/// An API call, for error messages.
#[derive(Clone, Copy)]
struct Op<'a> {
    verb: &'a str,
    resource: &'a str,
    namespace: &'a str,
}

impl Op<'_> {
    fn error(&self, code: u16, detail: String) -> ClusterError {
        let (verb, resource, namespace) = (self.verb.into(), self.resource.into(), self.namespace.into());
        if code == 403 {
            ClusterError::Forbidden { verb, resource, namespace, detail }
        } else {
            ClusterError::Refused { verb, resource, namespace, code, detail }
        }
    }

    fn malformed(&self, detail: String) -> ClusterError {
        ClusterError::Malformed {
            verb: self.verb.into(),
            resource: self.resource.into(),
            namespace: self.namespace.into(),
            detail,
        }
    }

    fn unavailable(&self, attempts: u32, detail: String) -> ClusterError {
        ClusterError::Unavailable {
            verb: self.verb.into(),
            resource: self.resource.into(),
            namespace: self.namespace.into(),
            attempts,
            detail,
        }
    }
}

enum Class {
    Retry(String),
    Fail(u16, String),
    Malformed(String),
}

fn classify(e: &kube::Error) -> Class {
    match e {
        kube::Error::Api(status) if status.code == 429 || status.code >= 500 => {
            Class::Retry(format!("HTTP {}: {}", status.code, status.message))
        }
        kube::Error::Api(status) => Class::Fail(status.code, status.message.clone()),
        kube::Error::SerdeError(e) => Class::Malformed(e.to_string()),
        kube::Error::HyperError(e) => Class::Retry(e.to_string()),
        kube::Error::Service(e) => Class::Retry(e.to_string()),
        other => Class::Malformed(other.to_string()),
    }
}

const INSTANCES: &str = "foundryinstances.foundry.platform";
const LICENSES: &str = "foundrylicenses.foundry.platform";

impl Cluster for KubeCluster {
    fn list_instances(&self, namespace: &str) -> Result<Vec<Cow<'_, Value>>, ClusterError> {
        let api = self.api(namespace, policy_core::model::INSTANCE_KIND, "foundryinstances");
        let op = Op { verb: "list", resource: INSTANCES, namespace };
        let mut items = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut params = ListParams::default().limit(PAGE);
            if let Some(t) = &token {
                params = params.continue_token(t);
            }
            let page = self.call(op, || api.list(&params))?;
            for item in page.items {
                items.push(Cow::Owned(serde_json::to_value(item).map_err(|e| op.malformed(e.to_string()))?));
            }
            token = page.metadata.continue_.filter(|t| !t.is_empty());
            if token.is_none() {
                return Ok(items);
            }
        }
    }

    fn get_license(&self, namespace: &str, name: &str) -> Result<Option<Value>, ClusterError> {
        let api = self.api(namespace, policy_core::model::LICENSE_KIND, "foundrylicenses");
        let op = Op { verb: "get", resource: LICENSES, namespace };
        match self.call(op, || api.get_opt(name))? {
            Some(obj) => serde_json::to_value(obj).map(Some).map_err(|e| op.malformed(e.to_string())),
            None => Ok(None),
        }
    }

    fn touch_license(&self, namespace: &str, name: &str) -> Result<(), ClusterError> {
        let api = self.api(namespace, policy_core::model::LICENSE_KIND, "foundrylicenses");
        let op = Op { verb: "patch", resource: LICENSES, namespace };
        let body = json!({"metadata": {"labels": {RECONCILE_LABEL: "true"}}});
        let (params, patch) = (PatchParams::default(), Patch::Merge(&body));
        match self.call(op, || api.patch(name, &params, &patch)) {
            // The license went away meanwhile: nothing left to re-route.
            Err(ClusterError::Refused { code: 404, .. }) => Ok(()),
            other => other.map(|_| ()),
        }
    }

    fn publish_status(&self, target: &StatusTarget, status: &Value) -> Result<(), ClusterError> {
        self.patch_status(target, status).map(|_| ())
    }
}

impl KubeCluster {
    fn status_api(&self, target: &StatusTarget) -> (Api<DynamicObject>, String) {
        let resource = ApiResource {
            group: target.group.clone(),
            version: target.version.clone(),
            api_version: format!("{}/{}", target.group, target.version),
            kind: String::new(),
            plural: target.plural.clone(),
        };
        let api: Api<DynamicObject> = Api::namespaced_with(self.client.clone(), &target.namespace, &resource);
        (api, format!("{}.{}/status", target.plural, target.group))
    }

    /// The object's `status` (through the status subresource), `Value::Null` when it has none, `None` when the
    /// object does not exist.
    pub fn get_status(&self, target: &StatusTarget) -> Result<Option<Value>, ClusterError> {
        let (api, name) = self.status_api(target);
        let op = Op { verb: "get", resource: &name, namespace: &target.namespace };
        match self.call(op, || api.get_status(&target.name)) {
            Ok(obj) => Ok(Some(obj.data.get("status").cloned().unwrap_or(Value::Null))),
            Err(ClusterError::Refused { code: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Merges `status` into the object's status and returns the status the API server now holds.
    pub fn patch_status(&self, target: &StatusTarget, status: &Value) -> Result<Value, ClusterError> {
        let (api, name) = self.status_api(target);
        let op = Op { verb: "patch", resource: &name, namespace: &target.namespace };
        let body = json!({ "status": status });
        let (params, patch) = (PatchParams::default(), Patch::Merge(&body));
        let obj = self.call(op, || api.patch_status(&target.name, &params, &patch))?;
        Ok(obj.data.get("status").cloned().unwrap_or(Value::Null))
    }
}
