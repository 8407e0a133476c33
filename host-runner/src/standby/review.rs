//! The review loop: every `--review-interval`, each license that has activation requests is reviewed by the policy
//! (`foundry/activation/review`), and the service does what it decided: switch the license, write the requests'
//! status, delete the finished requests whose record has been kept long enough (with their `uid` and
//! `resourceVersion` as preconditions). What the API answers goes into the store at once.
//!
//! A failed write is logged and left for the next review; nothing here holds a lock across I/O.

use super::Standby;
use crate::kube::Resource;
use policy_core::api::standby::ReviewCallRef;
use std::sync::Arc;

/// Reviews until the process ends.
pub(super) async fn run(state: Arc<Standby>) {
    loop {
        tokio::time::sleep(state.options.review_interval).await;
        once(&state).await;
    }
}

/// Reviews the requests of every license that has any, applying what the policy decides.
pub(super) async fn once(state: &Arc<Standby>) {
    for license in state.store.licenses_with_requests() {
        let (namespace, name) = (license.namespace.clone(), license.name.clone());
        let now = (state.clock)().to_string();
        let activation = state.options.activation;
        let decision = state
            .decide(move |policy| {
                policy.activation_review(&ReviewCallRef {
                    license: &license.license,
                    instances: &license.instances,
                    requests: &license.requests,
                    now: &now,
                    activation_enabled: activation,
                })
            })
            .await;
        let decision = match decision {
            Some(Ok(d)) => d,
            Some(Err(e)) => {
                tracing::error!(license = %format!("{namespace}/{name}"), error = %e, code = e.code(), "review failed");
                continue;
            }
            None => continue,
        };
        if let Some(patch) = &decision.license_patch {
            match state.api.merge_patch(Resource::License, &namespace, &name, patch).await {
                Ok(patched) => state.store.apply(Resource::License, &patched),
                Err(e) => {
                    // The requests stay as they are and are reviewed again next time.
                    tracing::error!(license = %format!("{namespace}/{name}"), error = %e, code = e.code(), "switch failed");
                    continue;
                }
            }
        }
        for action in &decision.actions {
            match state
                .api
                .merge_patch_status(Resource::ActivationRequest, &namespace, &action.request, &action.status_patch)
                .await
            {
                Ok(updated) => {
                    state.store.apply(Resource::ActivationRequest, &updated);
                    tracing::info!(
                        request = %format!("{namespace}/{}", action.request),
                        phase = action.phase.as_str(),
                        reason = %action.reason,
                        "request reviewed"
                    );
                }
                Err(e) => tracing::error!(
                    request = %format!("{namespace}/{}", action.request),
                    error = %e,
                    code = e.code(),
                    "updating a request failed"
                ),
            }
        }
        for deletion in &decision.deletions {
            let (Some(uid), Some(version)) = (deletion.uid.as_deref(), deletion.resource_version.as_deref()) else {
                // Every object the API server holds has both; one read without them is not deleted blindly.
                tracing::warn!(request = %format!("{namespace}/{}", deletion.request), "finished request without uid or resourceVersion is kept");
                continue;
            };
            match state
                .api
                .delete(Resource::ActivationRequest, &namespace, &deletion.request, Some((uid, version)))
                .await
            {
                Ok(()) => {
                    state.store.remove(Resource::ActivationRequest, &namespace, &deletion.request);
                    tracing::info!(request = %format!("{namespace}/{}", deletion.request), "finished request deleted");
                }
                Err(e) => tracing::warn!(
                    request = %format!("{namespace}/{}", deletion.request),
                    error = %e,
                    code = e.code(),
                    "deleting a finished request failed; the next review tries again"
                ),
            }
        }
    }
}
