//! The standby page service's Kubernetes calls, through the kube-rs client: list the platform's objects in all
//! namespaces, create an activation request, merge-patch a license's spec and a request's status. Each call has
//! a timeout; nothing here decides anything.

use kube::Client;
use kube::api::{Api, ApiResource, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use serde_json::Value;
use std::time::Duration;

/// Items per list page.
const PAGE: u32 = 500;
/// Most objects of one kind the service reads (bounds memory whatever the cluster holds).
pub const MAX_LISTED: usize = 10_000;

/// Why a call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// The API server answered with an error status.
    #[error("{verb} {resource}: HTTP {code}: {message}")]
    Status {
        /// The verb.
        verb: &'static str,
        /// The resource.
        resource: &'static str,
        /// HTTP status.
        code: u16,
        /// The API server's message.
        message: String,
    },
    /// No answer in time.
    #[error("{verb} {resource}: no answer within {timeout:?}")]
    Timeout {
        /// The verb.
        verb: &'static str,
        /// The resource.
        resource: &'static str,
        /// The timeout.
        timeout: Duration,
    },
    /// The connection or the answer failed.
    #[error("{verb} {resource}: {detail}")]
    Failed {
        /// The verb.
        verb: &'static str,
        /// The resource.
        resource: &'static str,
        /// What failed.
        detail: String,
    },
}

impl ApiError {
    /// The HTTP status, when the API server answered.
    pub fn code(&self) -> Option<u16> {
        match self {
            Self::Status { code, .. } => Some(*code),
            _ => None,
        }
    }
}

/// The kinds the service reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `FoundryLicense`.
    License,
    /// `FoundryInstance`.
    Instance,
    /// `FoundryActivationRequest`.
    Request,
}

impl Kind {
    fn resource(self) -> ApiResource {
        let (kind, plural) = self.names();
        ApiResource {
            group: policy_core::model::GROUP.into(),
            version: policy_core::model::VERSION.into(),
            api_version: policy_core::model::API_VERSION.into(),
            kind: kind.into(),
            plural: plural.into(),
        }
    }

    fn names(self) -> (&'static str, &'static str) {
        match self {
            Self::License => (policy_core::model::LICENSE_KIND, "foundrylicenses"),
            Self::Instance => (policy_core::model::INSTANCE_KIND, "foundryinstances"),
            Self::Request => (policy_core::model::ACTIVATION_REQUEST_KIND, "foundryactivationrequests"),
        }
    }
}

/// The service's view of the API.
#[derive(Clone)]
pub struct StandbyApi {
    client: Client,
    timeout: Duration,
}

impl std::fmt::Debug for StandbyApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StandbyApi").field("timeout", &self.timeout).finish_non_exhaustive()
    }
}

async fn bounded<T>(
    verb: &'static str,
    resource: &'static str,
    timeout: Duration,
    call: impl std::future::Future<Output = Result<T, kube::Error>>,
) -> Result<T, ApiError> {
    match tokio::time::timeout(timeout, call).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(kube::Error::Api(status))) => {
            Err(ApiError::Status { verb, resource, code: status.code, message: status.message })
        }
        Ok(Err(e)) => Err(ApiError::Failed { verb, resource, detail: e.to_string() }),
        Err(_) => Err(ApiError::Timeout { verb, resource, timeout }),
    }
}

impl StandbyApi {
    /// Wraps a client; `timeout` bounds each call.
    pub fn new(client: Client, timeout: Duration) -> Self {
        Self { client, timeout }
    }

    /// Every object of `kind` in all namespaces, as JSON (with `apiVersion` and `kind` restored).
    pub async fn list(&self, kind: Kind) -> Result<Vec<Value>, ApiError> {
        let api: Api<DynamicObject> = Api::all_with(self.client.clone(), &kind.resource());
        let (kind_name, plural) = kind.names();
        let mut items = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut params = ListParams::default().limit(PAGE);
            if let Some(t) = &token {
                params = params.continue_token(t);
            }
            let page = bounded("list", plural, self.timeout, api.list(&params)).await?;
            for item in page.items {
                let mut value = serde_json::to_value(item).map_err(|e| ApiError::Failed {
                    verb: "list",
                    resource: plural,
                    detail: e.to_string(),
                })?;
                if let Some(obj) = value.as_object_mut() {
                    obj.insert("apiVersion".into(), Value::from(policy_core::model::API_VERSION));
                    obj.insert("kind".into(), Value::from(kind_name));
                }
                items.push(value);
                if items.len() > MAX_LISTED {
                    return Err(ApiError::Failed {
                        verb: "list",
                        resource: plural,
                        detail: format!("more than {MAX_LISTED} objects"),
                    });
                }
            }
            token = page.metadata.continue_.filter(|t| !t.is_empty());
            if token.is_none() {
                return Ok(items);
            }
        }
    }

    /// Creates an activation request.
    pub async fn create_request(&self, request: &Value) -> Result<(), ApiError> {
        let namespace = request.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or_default();
        let api: Api<DynamicObject> = Api::namespaced_with(self.client.clone(), namespace, &Kind::Request.resource());
        let object: DynamicObject = serde_json::from_value(request.clone()).map_err(|e| ApiError::Failed {
            verb: "create",
            resource: "foundryactivationrequests",
            detail: e.to_string(),
        })?;
        bounded("create", "foundryactivationrequests", self.timeout, api.create(&PostParams::default(), &object))
            .await
            .map(|_| ())
    }

    /// Merge-patches a license (its spec: a switch).
    pub async fn patch_license(&self, namespace: &str, name: &str, patch: &Value) -> Result<(), ApiError> {
        let api: Api<DynamicObject> = Api::namespaced_with(self.client.clone(), namespace, &Kind::License.resource());
        let patch = Patch::Merge(patch);
        bounded("patch", "foundrylicenses", self.timeout, api.patch(name, &PatchParams::default(), &patch))
            .await
            .map(|_| ())
    }

    /// Merge-patches a request's status subresource.
    pub async fn patch_request_status(&self, namespace: &str, name: &str, patch: &Value) -> Result<(), ApiError> {
        let api: Api<DynamicObject> = Api::namespaced_with(self.client.clone(), namespace, &Kind::Request.resource());
        let patch = Patch::Merge(patch);
        bounded(
            "patch",
            "foundryactivationrequests/status",
            self.timeout,
            api.patch_status(name, &PatchParams::default(), &patch),
        )
        .await
        .map(|_| ())
    }
}
