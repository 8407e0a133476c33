//! Fetching an instance's `GET /api/status` over HTTP, for the switch gate (and the player monitor).
//!
//! The fetch is bounded: one request, a short overall timeout, a cap on the body. It never fails: whatever
//! happens becomes a [`StatusFetch`] (an answer, or why there was none), and the policy decides what it means
//! (`foundry/instance/observe`). No credentials are sent: the endpoint needs none.

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use policy_core::api::observe::{MAX_STATUS_BODY, StatusFetch};
use std::sync::Arc;
use std::time::Duration;
use tokio::runtime::Runtime;

/// How to reach Foundry status endpoints.
#[derive(Debug, Clone)]
pub struct ProbeSettings {
    /// Timeout of the whole request (connect, send, read).
    pub timeout: Duration,
    /// Connect here instead of the URL's host and port (the `Host` header keeps the URL's), like curl's
    /// `--connect-to`: for tests and for clusters where the Service name does not resolve from the pipeline pod.
    pub connect_to: Option<String>,
}

impl Default for ProbeSettings {
    fn default() -> Self {
        Self { timeout: Duration::from_secs(3), connect_to: None }
    }
}

/// Fetches status endpoints.
pub trait StatusFetcher {
    /// Fetches `url` for `instance` in `namespace`; `None` when this fetcher makes no live requests.
    fn fetch(&self, url: &str, instance: &str, namespace: &str) -> Option<StatusFetch>;
}

/// Makes no requests (offline runs: the observations file is all there is).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoFetch;

impl StatusFetcher for NoFetch {
    fn fetch(&self, _url: &str, _instance: &str, _namespace: &str) -> Option<StatusFetch> {
        None
    }
}

/// Fetches over HTTP/1.1.
pub struct HttpFetcher {
    rt: Arc<Runtime>,
    settings: ProbeSettings,
    client: Client<HttpConnector, Empty<Bytes>>,
}

impl std::fmt::Debug for HttpFetcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpFetcher").field("settings", &self.settings).finish_non_exhaustive()
    }
}

impl HttpFetcher {
    /// A fetcher running on `rt`.
    pub fn new(rt: Arc<Runtime>, settings: ProbeSettings) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(settings.timeout));
        let client = Client::builder(TokioExecutor::new()).build(connector);
        Self { rt, settings, client }
    }

    async fn get(&self, url: &str) -> Result<(u16, String), String> {
        let uri: hyper::Uri = url.parse().map_err(|e| format!("bad status URL `{url}`: {e}"))?;
        let host = uri.authority().map(|a| a.as_str().to_owned()).unwrap_or_default();
        let target = match &self.settings.connect_to {
            Some(addr) => {
                let path = uri.path_and_query().map_or("/", |p| p.as_str());
                format!("http://{addr}{path}").parse().map_err(|e| format!("bad --connect-to `{addr}`: {e}"))?
            }
            None => uri,
        };
        let request = hyper::Request::get(target)
            .header(hyper::header::HOST, host)
            .header(hyper::header::ACCEPT, "application/json")
            .body(Empty::<Bytes>::new())
            .map_err(|e| e.to_string())?;
        let response = self.client.request(request).await.map_err(|e| describe(&e))?;
        let status = response.status().as_u16();
        let body = Limited::new(response.into_body(), MAX_STATUS_BODY)
            .collect()
            .await
            .map_err(|e| format!("reading the answer failed: {e}"))?
            .to_bytes();
        Ok((status, String::from_utf8_lossy(&body).into_owned()))
    }
}

/// The most specific cause of a client error (e.g. `Connection refused`), not just "client error".
fn describe(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

impl HttpFetcher {
    /// Fetches `url` for `instance` within the timeout; whatever happens becomes the fetch.
    pub async fn fetch_async(&self, url: &str, instance: &str, namespace: &str) -> StatusFetch {
        let timeout = self.settings.timeout;
        let result = match tokio::time::timeout(timeout, self.get(url)).await {
            Ok(result) => result,
            Err(_) => Err(format!("timed out after {timeout:?}")),
        };
        let mut fetch =
            StatusFetch { instance: instance.into(), namespace: Some(namespace.into()), ..Default::default() };
        match result {
            Ok((status, body)) => {
                fetch.http_status = Some(status);
                fetch.body = Some(body);
            }
            Err(e) => fetch.error = Some(e),
        }
        fetch
    }
}

impl StatusFetcher for HttpFetcher {
    fn fetch(&self, url: &str, instance: &str, namespace: &str) -> Option<StatusFetch> {
        Some(self.rt.block_on(self.fetch_async(url, instance, namespace)))
    }
}
