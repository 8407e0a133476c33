//! What Kratix gives a resource workflow's pipeline pod, read from our Promise files: its ServiceAccount, the
//! default Role of resource workflows, the Roles of the pipeline's `rbac.permissions`, the environment variables
//! and the three directories with `object.yaml` as Kratix's reader writes it. (Kratix's own code:
//! `api/v1alpha1/pipeline_factory.go`.)

use crate::tier::{GROUP, Tier, VERSION, root, yaml_object};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::{Command, Output};

/// One resource workflow's pipeline, as a Promise declares it.
#[derive(Debug, Clone)]
pub(crate) struct Workflow {
    pub(crate) promise: String,
    pub(crate) kind: String,
    pub(crate) plural: String,
    pub(crate) action: String,
    pub(crate) pipeline: String,
    /// `spec.rbac.permissions` of the pipeline, as written.
    pub(crate) permissions: Vec<Value>,
    /// The pipeline's container environment (e.g. `FOUNDRY_RUNNER_IMAGE`).
    pub(crate) env: Vec<(String, String)>,
}

impl Workflow {
    /// The first pipeline of `spec.workflows.resource.<action>` of `promises/<promise>/promise.yaml` (Kratix runs
    /// only the first pipeline of a delete workflow; ours have one each).
    pub(crate) fn from_promise(promise: &str, action: &str) -> Self {
        let file = root().join("promises").join(promise).join("promise.yaml");
        let doc = yaml_object(&file);
        let api = &doc["spec"]["api"]["spec"];
        let pipeline = &doc["spec"]["workflows"]["resource"][action][0];
        assert!(pipeline.is_object(), "{}: no resource.{action} pipeline", file.display());
        let env = pipeline["spec"]["containers"][0]["env"]
            .as_array()
            .map(|vars| {
                vars.iter()
                    .filter_map(|v| Some((v["name"].as_str()?.to_owned(), v["value"].as_str()?.to_owned())))
                    .collect()
            })
            .unwrap_or_default();
        Workflow {
            promise: doc["metadata"]["name"].as_str().unwrap().to_owned(),
            kind: api["names"]["kind"].as_str().unwrap().to_owned(),
            plural: api["names"]["plural"].as_str().unwrap().to_owned(),
            action: action.to_owned(),
            pipeline: pipeline["metadata"]["name"].as_str().unwrap().to_owned(),
            permissions: pipeline["spec"]["rbac"]["permissions"].as_array().cloned().unwrap_or_default(),
            env,
        }
    }

    /// Kratix's ServiceAccount name: `<promise>-<workflowType>-<action>-<pipeline>`.
    pub(crate) fn service_account(&self) -> String {
        format!("{}-resource-{}-{}", self.promise, self.action, self.pipeline)
    }

    /// The Role Kratix gives every resource workflow in the pipeline namespace.
    pub(crate) fn default_rules(&self) -> Value {
        json!([
            {"apiGroups": [GROUP], "resources": [self.plural, format!("{}/status", self.plural)],
             "verbs": ["get", "list", "update", "create", "patch"]},
            {"apiGroups": ["platform.kratix.io"], "resources": ["works"], "verbs": ["*"]},
        ])
    }

    /// Creates the ServiceAccount, the default Role and the Roles of `permissions` (the Promise's, or a changed
    /// copy) with their bindings in `namespace`, the resource's namespace, where Kratix runs resource workflows;
    /// waits until the authorizer applies them. Returns the ServiceAccount's name.
    pub(crate) fn grant(&self, tier: &Tier, namespace: &str, permissions: &[Value]) -> String {
        let account = self.service_account();
        let labels = json!({"kratix.io/promise-name": self.promise});
        tier.apply(&json!({"apiVersion": "v1", "kind": "ServiceAccount",
                           "metadata": {"name": account, "namespace": namespace, "labels": labels}}));
        let subject = json!([{"kind": "ServiceAccount", "name": account, "namespace": namespace}]);
        let role = |name: &str, rules: Value| {
            tier.apply(&json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                               "metadata": {"name": name, "namespace": namespace, "labels": labels}, "rules": rules}));
            tier.apply(&json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                               "metadata": {"name": name, "namespace": namespace, "labels": labels},
                               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
                               "subjects": subject}));
        };
        role(&account, self.default_rules());
        // `resourceNamespace` empty means the pipeline namespace (a Role); `*` means every namespace (Kratix makes
        // a ClusterRole and a ClusterRoleBinding).
        let (local, everywhere): (Vec<&Value>, Vec<&Value>) = permissions
            .iter()
            .partition(|p| p.get("resourceNamespace").and_then(Value::as_str).unwrap_or_default().is_empty());
        let strip = |p: &&Value| {
            assert!(
                p["apiGroups"] == json!([GROUP]) || p["apiGroups"] == json!(["apps"]),
                "the tier waits for permissions in {GROUP} and apps only: {p}"
            );
            let mut rule = (*p).clone();
            rule.as_object_mut().unwrap().remove("resourceNamespace");
            rule
        };
        for p in &everywhere {
            assert_eq!(p["resourceNamespace"], "*", "only `*` is granted beyond the pipeline namespace: {p}");
        }
        role(&format!("{account}-permissions"), Value::Array(local.iter().map(strip).collect()));
        let cluster_name = format!("{account}-{namespace}");
        tier.apply(&json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                           "metadata": {"name": cluster_name, "labels": labels},
                           "rules": everywhere.iter().map(strip).collect::<Vec<_>>()}));
        tier.apply(&json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                           "metadata": {"name": cluster_name, "labels": labels},
                           "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": cluster_name},
                           "subjects": subject}));
        tier.await_permission((namespace, &account), "get", &self.plural, namespace, None);
        for p in permissions {
            let elsewhere = !p.get("resourceNamespace").and_then(Value::as_str).unwrap_or_default().is_empty();
            for resource in p["resources"].as_array().unwrap() {
                for verb in p["verbs"].as_array().unwrap() {
                    let (verb, resource) = (verb.as_str().unwrap(), qualified(p, resource.as_str().unwrap()));
                    let resource = resource.as_str();
                    // A cluster-wide grant holds in any namespace: check one that is not the pipeline's.
                    let at = if elsewhere { "kube-system" } else { namespace };
                    tier.await_permission((namespace, &account), verb, resource, at, None);
                }
            }
        }
        account
    }

    /// The variables Kratix sets on the pipeline's containers, then the container's own `env` from the Promise.
    pub(crate) fn kratix_env(&self, namespace: &str, name: &str) -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> = [
            ("KRATIX_WORKFLOW_TYPE", "resource"),
            ("KRATIX_WORKFLOW_ACTION", self.action.as_str()),
            ("KRATIX_PROMISE_NAME", self.promise.as_str()),
            ("KRATIX_PIPELINE_NAME", self.pipeline.as_str()),
            ("KRATIX_OBJECT_KIND", self.kind.as_str()),
            ("KRATIX_OBJECT_GROUP", GROUP),
            ("KRATIX_OBJECT_VERSION", VERSION),
            ("KRATIX_OBJECT_NAME", name),
            ("KRATIX_OBJECT_NAMESPACE", namespace),
            ("KRATIX_CRD_PLURAL", self.plural.as_str()),
            ("KRATIX_CLUSTER_SCOPED", "false"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        // The release catalog's path names a ConfigMap volume that is optional and absent here.
        env.extend(self.env.iter().filter(|(k, _)| k != "FOUNDRY_RELEASE_CATALOG").cloned());
        env
    }
}

/// A resource of a permission rule as the tier addresses it: bare for ours, `<plural>.<group>` for another group.
pub(crate) fn qualified(rule: &Value, resource: &str) -> String {
    match rule["apiGroups"][0].as_str() {
        Some(GROUP) | None => resource.to_owned(),
        Some(group) => format!("{resource}.{group}"),
    }
}

/// One pipeline pod: its three directories and its ServiceAccount's kubeconfig.
pub(crate) struct Pod {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) kubeconfig: PathBuf,
    pub(crate) workflow: Workflow,
    pub(crate) namespace: String,
    pub(crate) name: String,
}

impl Pod {
    /// A pod for `workflow` on object `name`, whose ServiceAccount holds `permissions`; its reader writes the
    /// live object, read with the pod's own ServiceAccount as Kratix's reader container does.
    pub(crate) fn new(tier: &Tier, workflow: &Workflow, namespace: &str, name: &str, permissions: &[Value]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        for d in ["input", "output", "metadata"] {
            std::fs::create_dir_all(dir.path().join(d)).unwrap();
        }
        let account = workflow.grant(tier, namespace, permissions);
        let kubeconfig = tier.token_kubeconfig(namespace, &account, dir.path());
        let pod = Pod { dir, kubeconfig, workflow: workflow.clone(), namespace: namespace.into(), name: name.into() };
        pod.read_object(tier);
        pod
    }

    /// Kratix's reader: the live object, as YAML, into `input/object.yaml`.
    pub(crate) fn read_object(&self, tier: &Tier) {
        let client = tier.client(&self.kubeconfig);
        let api = tier.ours(&client, &self.namespace, &self.workflow.plural);
        let object = tier.rt.block_on(api.get(&self.name)).unwrap();
        let mut object = serde_json::to_value(object).unwrap();
        // The dynamic client Kratix reads with keeps apiVersion and kind.
        object["apiVersion"] = json!(format!("{GROUP}/{VERSION}"));
        object["kind"] = json!(self.workflow.kind);
        std::fs::write(self.path("input/object.yaml"), policy_core::api::to_yaml(&object)).unwrap();
    }

    pub(crate) fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Runs `host-runner kratix` as the pipeline container: Kratix's environment, the three directories (by the
    /// SDKs' variables), the ServiceAccount's kubeconfig, and `extra` flags.
    pub(crate) fn run(&self, extra: &[&str]) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_host-runner"));
        cmd.arg("kratix")
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(["--api-timeout", "5", "--probe-timeout", "2"])
            .args(extra)
            .env_clear()
            .env("KRATIX_INPUT_DIR", self.path("input"))
            .env("KRATIX_OUTPUT_DIR", self.path("output"))
            .env("KRATIX_METADATA_DIR", self.path("metadata"));
        for (k, v) in self.workflow.kratix_env(&self.namespace, &self.name) {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    }

    /// The run must succeed; returns its stdout.
    pub(crate) fn run_ok(&self, extra: &[&str]) -> String {
        let out = self.run(extra);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{} {} failed:\nstdout: {}\nstderr: {}",
            self.workflow.pipeline,
            self.name,
            text(&out.stdout),
            text(&out.stderr)
        );
        text(&out.stdout)
    }

    /// Kratix's status writer applies `metadata/status.yaml`.
    pub(crate) fn write_status(&self, tier: &Tier) -> Value {
        tier.write_status(&self.namespace, &self.workflow.plural, &self.name, &self.path("metadata/status.yaml"))
    }

    /// An observations file in the pod's directory.
    pub(crate) fn observations(&self, body: &str) -> PathBuf {
        let path = self.path("observations.yaml");
        std::fs::write(&path, body).unwrap();
        path
    }

    pub(crate) fn output_dir(&self) -> PathBuf {
        self.path("output")
    }

    pub(crate) fn output_files(&self) -> Vec<String> {
        crate::tier::sorted_files(&self.output_dir())
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect()
    }
}

pub(crate) fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}
