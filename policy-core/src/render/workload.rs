//! Manifest templates of an instance's workload: the Foundry Deployment, its Service, its PVC, and copy Jobs.
//!
//! Only rendering happens here: versions, storage and admission were decided before. Secrets are referenced by
//! name and key (`secretKeyRef`), never read, so no secret value can reach a manifest. Foundry binds its license
//! to the pod's hostname, so every instance runs with a stable `hostname`; one replica with the `Recreate`
//! strategy, because two Foundry processes must never share a data directory.

use super::sidecar::{MonitorSidecar, monitor_sidecar};
use crate::model::{AdminKeyRef, CredentialsRef, DeletePolicy, SecretKeyRef};
use crate::names;
use crate::rules::instance::{ComputeResources, Configured, Workload};
use crate::rules::versions::Release;
use crate::rules::volumes::{CopyPlan, Place, StoragePlan};
use serde_json::{Map, Value, json};

/// Foundry's port in the container.
pub(crate) const FOUNDRY_PORT: u16 = 30000;
/// UID and GID the Foundry image runs as.
pub(crate) const FOUNDRY_UID: u32 = 1000;
/// The image of copy Jobs (a shell and `cp`).
pub(crate) const COPY_IMAGE: &str = "busybox:1.37";
/// Marker a copy Job leaves in its target once done.
pub(crate) const COPY_MARKER: &str = ".foundry-copy-done";

/// Everything decided about an instance's workload, borrowed from the decision.
#[derive(Debug, Clone)]
struct WorkloadPlan<'a> {
    /// Namespace.
    namespace: &'a str,
    /// Instance name.
    instance: &'a str,
    /// License name.
    license: &'a str,
    /// Image reference.
    image: &'a str,
    /// Foundry release.
    release: Release,
    /// Public hostname, when the license has a base domain.
    hostname: Option<String>,
    /// TLS terminates at the Gateway.
    proxy_ssl: bool,
    /// The port players connect to.
    proxy_port: u16,
    /// Compute resources.
    resources: &'a ComputeResources,
    /// The license key.
    license_secret: &'a SecretKeyRef,
    /// The foundryvtt.com account.
    credentials: Option<&'a CredentialsRef>,
    /// The admin key.
    admin_key: Option<&'a AdminKeyRef>,
    /// Storage.
    storage: &'a StoragePlan,
    /// The image of the player monitor sidecar (`host-runner`).
    runner_image: &'a str,
}

impl<'a> WorkloadPlan<'a> {
    fn new(c: &'a Configured, w: &'a Workload, storage: &'a StoragePlan) -> Self {
        Self {
            namespace: &c.object.namespace,
            instance: &c.instance.metadata.name,
            license: &w.license.metadata.name,
            image: &w.image,
            release: w.release,
            hostname: w.hostname.clone(),
            proxy_ssl: w.proxy_ssl,
            proxy_port: w.proxy_port,
            resources: &w.resources,
            license_secret: &w.license.spec.license_secret_ref,
            credentials: w.license.spec.credentials_secret_ref.as_ref(),
            admin_key: Some(&w.admin_key),
            storage,
            runner_image: &w.runner_image,
        }
    }
}

fn labels(plan: &WorkloadPlan<'_>) -> Value {
    json!({
        "app.kubernetes.io/name": "foundry-vtt",
        "app.kubernetes.io/part-of": "foundry-vtt",
        "foundry.platform/instance": plan.instance,
        "foundry.platform/license": plan.license,
    })
}

fn selector(plan: &WorkloadPlan<'_>) -> Value {
    json!({"app.kubernetes.io/name": "foundry-vtt", "foundry.platform/instance": plan.instance})
}

fn secret_env(name: &str, secret: &str, key: &str) -> Value {
    json!({"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}})
}

fn env(plan: &WorkloadPlan<'_>) -> Vec<Value> {
    let mut env = vec![json!({"name": "CONTAINER_CACHE", "value": "/data/container_cache"})];
    if let Some(c) = plan.admin_key {
        env.push(secret_env("FOUNDRY_ADMIN_KEY", &c.name, &c.key));
    }
    if let Some(host) = &plan.hostname {
        env.push(json!({"name": "FOUNDRY_HOSTNAME", "value": host}));
    }
    env.push(secret_env("FOUNDRY_LICENSE_KEY", &plan.license_secret.name, &plan.license_secret.key));
    if let Some(c) = plan.credentials {
        env.push(secret_env("FOUNDRY_PASSWORD", &c.name, &c.password_key));
    }
    env.push(json!({"name": "FOUNDRY_PROXY_PORT", "value": plan.proxy_port.to_string()}));
    env.push(json!({"name": "FOUNDRY_PROXY_SSL", "value": if plan.proxy_ssl { "true" } else { "false" }}));
    env.push(json!({"name": "FOUNDRY_TELEMETRY", "value": "false"}));
    if let Some(c) = plan.credentials {
        env.push(secret_env("FOUNDRY_USERNAME", &c.name, &c.username_key));
    }
    env.push(json!({"name": "FOUNDRY_VERSION", "value": plan.release.to_string()}));
    env
}

/// A pod volume for a place, named `name`, and the mount of that place at `mount_path`.
fn volume_and_mount(name: &str, place: &Place, mount_path: &str, read_only: bool) -> (Value, Value) {
    let (volume, sub_path) = match place {
        Place::Pvc { claim, sub_path } => {
            (json!({"name": name, "persistentVolumeClaim": {"claimName": claim}}), sub_path)
        }
        Place::Nfs { server, path, sub_path } => {
            (json!({"name": name, "nfs": {"server": server, "path": path}}), sub_path)
        }
    };
    let mut mount = Map::new();
    mount.insert("name".into(), json!(name));
    mount.insert("mountPath".into(), json!(mount_path));
    if !sub_path.is_empty() {
        mount.insert("subPath".into(), json!(sub_path));
    }
    if read_only {
        mount.insert("readOnly".into(), json!(true));
    }
    (volume, Value::Object(mount))
}

fn pod_security() -> Value {
    json!({
        "runAsNonRoot": true,
        "runAsUser": FOUNDRY_UID,
        "runAsGroup": FOUNDRY_UID,
        "fsGroup": FOUNDRY_UID,
        "seccompProfile": {"type": "RuntimeDefault"},
    })
}

fn container_security() -> Value {
    json!({"allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true, "capabilities": {"drop": ["ALL"]}})
}

fn metadata(plan: &WorkloadPlan<'_>, name: &str) -> Value {
    json!({"name": name, "namespace": plan.namespace, "labels": labels(plan)})
}

/// The workload's manifests, in file order; none when the instance gets no workload.
pub(crate) fn manifests(c: &Configured) -> Vec<(String, Value)> {
    let (Some(w), Some(storage)) = (&c.outcome.workload, &c.outcome.storage) else { return Vec::new() };
    let plan = &WorkloadPlan::new(c, w, storage);
    let monitor = monitor_sidecar(plan.instance, plan.namespace, plan.runner_image);
    let mut out =
        vec![("deployment.yaml".to_owned(), deployment(plan, &monitor)), ("service.yaml".to_owned(), service(plan))];
    for (manifest, file) in
        monitor.manifests.iter().zip(["monitor-serviceaccount.yaml", "monitor-role.yaml", "monitor-rolebinding.yaml"])
    {
        out.push((file.to_owned(), manifest.clone()));
    }
    if let Place::Pvc { claim, .. } = &plan.storage.data {
        out.push(("pvc.yaml".to_owned(), pvc(plan, claim)));
    }
    for v in &plan.storage.volumes {
        if let Some(copy) = &v.copy {
            out.push((format!("copy-{}-job.yaml", v.kind.as_str()), copy_job(plan, copy, v.kind.as_str())));
        }
    }
    out
}

fn deployment(plan: &WorkloadPlan<'_>, monitor: &MonitorSidecar) -> Value {
    let (data_volume, data_mount) = volume_and_mount("data", &plan.storage.data, "/data", false);
    let mut volumes = vec![data_volume];
    let mut mounts = vec![data_mount];
    for v in &plan.storage.volumes {
        if v.place != plan.storage.data.join(&format!("Data/{}", v.kind.as_str())) {
            let (volume, mount) = volume_and_mount(
                &format!("shared-{}", v.kind.as_str()),
                &v.place,
                &format!("/data/Data/{}", v.kind.as_str()),
                false,
            );
            volumes.push(volume);
            mounts.push(mount);
        }
    }
    // The image writes its runtime files here; the root filesystem stays read-only.
    for (name, path) in [("resources", "/home/node/resources"), ("tmp", "/tmp")] {
        volumes.push(json!({"name": name, "emptyDir": {}}));
        mounts.push(json!({"name": name, "mountPath": path}));
    }
    // The monitor's API token is mounted in the monitor only: the Foundry container never holds it.
    volumes.extend(monitor.volumes.iter().cloned());
    let probe = |period: u32, failures: u32| json!({"httpGet": {"path": "/api/status", "port": "http"}, "periodSeconds": period, "failureThreshold": failures, "timeoutSeconds": 5});
    let r = plan.resources;
    let mut pod_labels = labels(plan);
    if let Some(obj) = pod_labels.as_object_mut() {
        obj.insert("app.kubernetes.io/version".into(), json!(plan.release.to_string()));
    }
    let mut deployment = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(plan, &names::service_name(plan.instance)),
        "spec": {
            "replicas": 1,
            "strategy": {"type": "Recreate"},
            "selector": {"matchLabels": selector(plan)},
            "template": {
                "metadata": {"labels": pod_labels},
                "spec": {
                    "hostname": plan.instance,
                    "enableServiceLinks": false,
                    "serviceAccountName": monitor.service_account_name,
                    "automountServiceAccountToken": false,
                    "securityContext": pod_security(),
                    "containers": [{
                        "name": "foundry",
                        "image": plan.image,
                        "ports": [{"name": "http", "containerPort": FOUNDRY_PORT, "protocol": "TCP"}],
                        "env": env(plan),
                        "resources": {
                            "requests": {"cpu": r.cpu, "memory": r.memory},
                            "limits": {"cpu": r.cpu_limit, "memory": r.memory_limit},
                        },
                        // The first start downloads and installs Foundry: allow it ten minutes.
                        "startupProbe": probe(10, 60),
                        "readinessProbe": probe(10, 3),
                        "livenessProbe": probe(30, 4),
                        "securityContext": container_security(),
                        "volumeMounts": mounts,
                    }, monitor.container],
                    "volumes": volumes,
                },
            },
        },
    });
    if let (Some(affinity), Some(pod)) = (copy_affinity(plan), deployment.pointer_mut("/spec/template/spec")) {
        pod["affinity"] = affinity;
    }
    deployment
}

fn service(plan: &WorkloadPlan<'_>) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(plan, &names::service_name(plan.instance)),
        "spec": {
            "type": "ClusterIP",
            "selector": selector(plan),
            "ports": [{"name": "http", "port": names::INSTANCE_SERVICE_PORT, "targetPort": "http", "protocol": "TCP"}],
        },
    })
}

fn pvc(plan: &WorkloadPlan<'_>, claim: &str) -> Value {
    let mut meta = metadata(plan, claim);
    if plan.storage.delete_policy == DeletePolicy::Retain
        && let Some(obj) = meta.as_object_mut()
    {
        // Deleting the instance removes its Work from the state store; the GitOps agent must not delete the data.
        obj.insert(
            "annotations".into(),
            json!({
                "kustomize.toolkit.fluxcd.io/prune": "disabled",
                // `Prune=false` keeps it when its file leaves the repository (Argo CD's automated prune);
                // `Delete=false` keeps it when the Application itself is deleted.
                "argocd.argoproj.io/sync-options": "Prune=false,Delete=false",
                "foundry.platform/delete-policy": "retain",
            }),
        );
    }
    let mut spec = json!({"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": plan.storage.size}}});
    if let (Some(class), Some(obj)) = (&plan.storage.storage_class, spec.as_object_mut()) {
        obj.insert("storageClassName".into(), json!(class));
    }
    json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": meta, "spec": spec})
}

/// Longest time a copy Job may take, pending included: a copy that cannot be scheduled fails visibly.
pub(crate) const COPY_DEADLINE_SECONDS: u64 = 6 * 3600;

/// The copy script: never over existing data, at most once, and it fails (never claims a copy it did not make)
/// when the target holds data it did not write.
pub(crate) fn copy_script() -> String {
    format!(
        "set -eu\n\
         if [ -e /target/{COPY_MARKER} ]; then echo 'already copied'; exit 0; fi\n\
         if [ -n \"$(ls -A /target 2>/dev/null)\" ]; then echo 'the target already holds data it did not get from a copy: \
         refusing to copy over it (empty the target, or change the volume mode)' >&2; exit 1; fi\n\
         cp -a /source/. /target/\n\
         touch /target/{COPY_MARKER}\n\
         echo copied\n"
    )
}

/// While a copy from another instance's PVC is planned, every pod that mounts the source or the target must run
/// on the node of the source instance's pod: a ReadWriteOnce volume is mounted on one node at a time.
fn copy_affinity(plan: &WorkloadPlan<'_>) -> Option<Value> {
    let from = plan.storage.volumes.iter().filter_map(|v| v.copy.as_ref()).find_map(|c| {
        let pvc = matches!(c.source, Place::Pvc { .. }) || matches!(c.target, Place::Pvc { .. });
        c.from.as_deref().filter(|_| pvc)
    })?;
    Some(json!({"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{
        "labelSelector": {"matchLabels": {"app.kubernetes.io/name": "foundry-vtt", "foundry.platform/instance": from}},
        "topologyKey": "kubernetes.io/hostname",
    }]}}))
}

fn copy_job(plan: &WorkloadPlan<'_>, copy: &CopyPlan, kind: &str) -> Value {
    let (source_volume, source_mount) = volume_and_mount("source", &copy.source, "/source", true);
    let (target_volume, target_mount) = volume_and_mount("target", &copy.target, "/target", false);
    let mut meta = metadata(plan, &copy.job);
    if let Some(obj) = meta.as_object_mut() {
        obj.insert("annotations".into(), json!({"foundry.platform/copy": format!("{kind}: {} -> {}", copy.source.describe(), copy.target.describe())}));
    }
    let mut job = json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": meta,
        "spec": {
            "backoffLimit": 2,
            "activeDeadlineSeconds": COPY_DEADLINE_SECONDS,
            "template": {
                "metadata": {"labels": labels(plan)},
                "spec": {
                    "restartPolicy": "Never",
                    "automountServiceAccountToken": false,
                    "securityContext": pod_security(),
                    "containers": [{
                        "name": "copy",
                        "image": COPY_IMAGE,
                        "command": ["sh", "-c", copy_script()],
                        "resources": {"requests": {"cpu": "50m", "memory": "32Mi"}, "limits": {"memory": "256Mi"}},
                        "securityContext": container_security(),
                        "volumeMounts": [source_mount, target_mount],
                    }],
                    "volumes": [source_volume, target_volume],
                },
            },
        },
    });
    if let (Some(affinity), Some(pod)) = (copy_affinity(plan), job.pointer_mut("/spec/template/spec")) {
        pod["affinity"] = affinity;
    }
    job
}
