//! `foundry/admission/review`: the review of a change to a license or instance for an admission engine (OPA's
//! webhook, Kubewarden): the change is denied for exactly the reasons the pipelines would refuse it, and problems
//! that were there before the change are warnings, not denials. The rules are in `rules::admission`.

use crate::error::{Diagnostic, InputError};
use crate::rules::admission::{self, Change, REFUSAL_CODES, Request};

pub use crate::rules::admission::{CATALOG_KEY, DATA_ROOT, INSTANCE_RESOURCE, LICENSE_RESOURCE};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `apiVersion` of the AdmissionReview answered.
pub const ADMISSION_API_VERSION: &str = "admission.k8s.io/v1";

/// The input: an AdmissionReview (OPA webhook) or just `{"request": ...}` (Kubewarden).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AdmissionCall {
    /// `admission.k8s.io/v1`, when the whole review is given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    /// `AdmissionReview`, when the whole review is given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// The request.
    pub request: AdmissionRequest,
}

/// The fields of an AdmissionRequest the review reads; the API server's other fields are accepted and ignored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AdmissionRequest {
    /// Echoed in the response.
    pub uid: String,
    /// The kind of the object.
    pub kind: GroupVersionKind,
    /// What is done to it.
    pub operation: AdmissionOperation,
    /// The object's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The object's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The object after the change (CREATE, UPDATE).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object: Option<Value>,
    /// The object before the change (UPDATE, DELETE).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old_object: Option<Value>,
}

/// `{group, version, kind}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupVersionKind {
    /// API group (`foundry.platform`).
    #[serde(default)]
    pub group: String,
    /// API version.
    #[serde(default)]
    pub version: String,
    /// Kind.
    pub kind: String,
}

/// The operation under review.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum AdmissionOperation {
    /// A new object.
    Create,
    /// A changed object.
    Update,
    /// A removed object.
    Delete,
    /// A connection (exec, proxy); nothing to review.
    Connect,
}

/// The answer: an AdmissionReview holding the response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AdmissionReview {
    /// `admission.k8s.io/v1`.
    pub api_version: String,
    /// `AdmissionReview`.
    pub kind: String,
    /// The verdict.
    pub response: AdmissionResponse,
}

/// The verdict on one request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdmissionResponse {
    /// The request's uid.
    pub uid: String,
    /// Whether the change may proceed.
    pub allowed: bool,
    /// Why it may not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<AdmissionStatus>,
    /// Problems that were there before the change; shown to the user, not blocking.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// A Kubernetes `Status` explaining a denial.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdmissionStatus {
    /// HTTP code: 422 when the object itself is invalid, 403 when the cluster's state forbids the change.
    pub code: u16,
    /// `Invalid` or `Forbidden`.
    pub reason: String,
    /// Every cause in one line, each with its fix.
    pub message: String,
    /// The causes, one per problem.
    pub details: StatusDetails,
}

/// `Status.details`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusDetails {
    /// One entry per problem.
    pub causes: Vec<StatusCause>,
}

/// One problem: `reason` is the policy's stable error code, `field` the path inside the object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusCause {
    /// Stable machine code.
    pub reason: String,
    /// One line.
    pub message: String,
    /// Field path.
    pub field: String,
}

/// Reviews one request against the related objects in `data` (typed form).
pub fn review(call: &AdmissionCall, data: Option<&Value>) -> Result<AdmissionReview, Vec<InputError>> {
    let request = &call.request;
    let kind = request.kind.kind.as_str();
    let ours = request.kind.group == crate::model::GROUP
        && (kind == crate::model::LICENSE_KIND || kind == crate::model::INSTANCE_KIND);
    if !ours || request.operation == AdmissionOperation::Connect {
        return Ok(verdict(request, Vec::new(), Vec::new()));
    }
    let change = match request.operation {
        AdmissionOperation::Delete => Change::Delete,
        _ => Change::Write(request.object.as_ref().filter(|o| o.is_object()).ok_or_else(|| {
            vec![InputError::InvalidJson {
                path: "request.object".into(),
                detail: "a CREATE or UPDATE review must carry the object".into(),
            }]
        })?),
    };
    let rules_request = Request {
        kind,
        change,
        old_object: request.old_object.as_ref(),
        namespace: request.namespace.as_deref(),
        name: request.name.as_deref(),
    };
    let (denials, warnings) = admission::review(rules_request, data).map_err(|e| vec![e])?;
    Ok(verdict(request, denials, warnings))
}

fn verdict(request: &AdmissionRequest, denials: Vec<Diagnostic>, warnings: Vec<String>) -> AdmissionReview {
    let status = (!denials.is_empty()).then(|| {
        // Only state-based refusals are 403; one invalid field makes the whole change invalid.
        let forbidden = denials.iter().all(|d| REFUSAL_CODES.contains(&d.code.as_str()));
        AdmissionStatus {
            code: if forbidden { 403 } else { 422 },
            reason: if forbidden { "Forbidden" } else { "Invalid" }.to_owned(),
            message: denials
                .iter()
                .map(|d| format!("{}: {} ({})", d.code, d.message, d.help))
                .collect::<Vec<_>>()
                .join("; "),
            details: StatusDetails {
                causes: denials
                    .iter()
                    .map(|d| StatusCause { reason: d.code.clone(), message: d.message.clone(), field: d.path.clone() })
                    .collect(),
            },
        }
    });
    AdmissionReview {
        api_version: ADMISSION_API_VERSION.to_owned(),
        kind: "AdmissionReview".to_owned(),
        response: AdmissionResponse { uid: request.uid.clone(), allowed: status.is_none(), status, warnings },
    }
}
