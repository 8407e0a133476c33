//! `foundry/instance/configure` and `foundry/instance/delete`: what an instance's Kratix workflows write. The
//! rules are in `rules::instance` (admission, version, storage, resources); this file holds the call and the
//! answer, and renders the workload and the status of what the rules decided.

use crate::error::{InputError, ObjectRef};
use crate::input::object_ref;
use crate::model::{INSTANCE_KIND, Warning};
use crate::render::status::instance_status;
use crate::render::{OutputFile, workload, yaml};
use crate::rules::instance::{self, CallParts, Configured, Peers};
use crate::rules::versions::Catalog;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use crate::render::status::{ADMIN_KEY, InstanceStatus, StorageStatus, VolumeStatus};
pub use crate::rules::instance::{RUNNER_IMAGE, default_admin_secret};
pub use crate::rules::volumes::CONFIRM_DATA_LOCATION;

/// The input of the instance workflows.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InstanceCall {
    /// The `FoundryInstance` object, as the API server returns it (status included).
    #[serde(default)]
    pub instance: Value,
    /// The license it names, or `null` when that license does not exist.
    #[serde(default)]
    pub license: Value,
    /// The `FoundryInstance`s of the namespace (this one may be among them); used for admission, copies and
    /// shares.
    #[serde(default)]
    pub instances: Vec<Value>,
    /// The time of the decision (RFC 3339).
    #[serde(default)]
    pub now: Option<String>,
    /// An operator's release catalog, replacing or extending the shipped one (`null`: the shipped one).
    #[serde(default)]
    pub catalog: Value,
    /// The instance's Deployment `foundry-<name>` as the cluster has it (`null`: none). Its data volume is where
    /// the data is when the status records no place yet (a workload of the existing platform): a spec that would
    /// start it elsewhere is refused (`DataLocationChange`).
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub workload: Value,
    /// The image of the player monitor sidecar (default [`RUNNER_IMAGE`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runner_image: Option<String>,
}

impl InstanceCall {
    fn parts(&self) -> CallParts<'_> {
        CallParts {
            instance: &self.instance,
            license: &self.license,
            now: self.now.as_deref(),
            workload: &self.workload,
        }
    }
}

/// The answer of an instance workflow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceDecision {
    /// The instance decided for.
    pub instance: ObjectRef,
    /// The license the host must ask to re-route, when it exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reroute: Option<ObjectRef>,
    /// What the owner should know.
    pub warnings: Vec<Warning>,
    /// The instance status to write (every owned key).
    pub status: InstanceStatus,
    /// The manifests to write, in file order.
    pub manifests: Vec<Value>,
    /// The exact files of the Kratix output directory.
    pub files: Vec<OutputFile>,
    /// The exact content of `status.yaml`.
    pub status_yaml: String,
}

/// Decides the configure workflow of an instance (typed form).
pub fn configure(call: &InstanceCall) -> Result<InstanceDecision, Vec<InputError>> {
    let namespace = object_ref(&call.instance, INSTANCE_KIND).namespace;
    let peers = Peers::read(&call.instances, &namespace);
    let catalog = Catalog::load(&call.catalog);
    configure_among(call.parts(), &peers, &catalog, call.runner_image.as_deref())
}

/// [`configure`] with the namespace's instances already read and the catalog already loaded, so that deciding
/// many instances (a preview) costs each one only its own work.
pub(crate) fn configure_among(
    call: CallParts<'_>,
    peers: &Peers,
    catalog: &Result<Catalog, InputError>,
    runner_image: Option<&str>,
) -> Result<InstanceDecision, Vec<InputError>> {
    let configured = instance::configure_among(call, peers, catalog, runner_image)?;
    Ok(answer(call.instance, configured))
}

/// Decides the delete workflow of an instance (typed form): its license re-routes without it; its data is kept.
pub fn delete(call: &InstanceCall) -> Result<InstanceDecision, Vec<InputError>> {
    let configured = instance::delete(call.parts())?;
    Ok(answer(&call.instance, configured))
}

/// Renders what the rules decided: the workload's files and the status.
fn answer(instance: &Value, configured: Configured) -> InstanceDecision {
    let status = instance_status(&configured, instance.get("status"));
    let manifests = workload::manifests(&configured);
    let files = manifests
        .iter()
        .map(|(path, object)| OutputFile { path: path.clone(), content: yaml::to_yaml(object) })
        .collect();
    let status_value = serde_json::to_value(&status).unwrap_or(Value::Null);
    let Configured { object, outcome, .. } = configured;
    InstanceDecision {
        instance: object,
        reroute: outcome.reroute,
        warnings: outcome.warnings,
        status_yaml: yaml::to_yaml(&status_value),
        status,
        manifests: manifests.into_iter().map(|(_, m)| m).collect(),
        files,
    }
}
