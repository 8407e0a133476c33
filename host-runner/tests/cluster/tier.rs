//! The tier's access to the real API server that `cargo xtask cluster` starts: an admin client (kube-rs), a
//! namespace per test, the ServiceAccounts and Roles Kratix would create for a workflow (from the Promise files),
//! their tokens (TokenRequest API), Kratix's reader and status writer, and server-side dry-run applies.

use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::authorization::v1::{ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec};
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use serde_json::{Value, json};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The Promise API group and version of our resources.
pub(crate) const GROUP: &str = "foundry.platform";
pub(crate) const VERSION: &str = "v1alpha1";

/// The repository root.
pub(crate) fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// Reads a YAML file of one or more documents.
pub(crate) fn yaml_documents(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_saphyr::from_multiple::<Value>(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// One Kubernetes object per YAML document of a file.
pub(crate) fn yaml_object(path: &Path) -> Value {
    let mut docs = yaml_documents(path);
    assert_eq!(docs.len(), 1, "{}", path.display());
    docs.remove(0)
}

/// The admin connection of one test.
pub(crate) struct Tier {
    pub(crate) rt: tokio::runtime::Runtime,
    pub(crate) admin: Client,
    /// The API server's URL and CA (base64), for the kubeconfigs of ServiceAccounts.
    server: String,
    ca_data: String,
    /// Where this test records its dry-run applies for `cargo xtask cluster`'s summary.
    report: Option<PathBuf>,
    name: String,
}

impl Tier {
    /// Connects with the admin kubeconfig `cargo xtask cluster` writes (`FOUNDRY_CLUSTER_KUBECONFIG`).
    pub(crate) fn connect(test: &str) -> Self {
        let Some(path) = std::env::var_os("FOUNDRY_CLUSTER_KUBECONFIG") else {
            panic!(
                "FOUNDRY_CLUSTER_KUBECONFIG is not set: this test needs the control plane that `cargo xtask cluster` \
                 builds and starts (run that)"
            );
        };
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let kubeconfig = Kubeconfig::read_from(&path).unwrap();
        let cluster = kubeconfig.clusters[0].cluster.clone().unwrap();
        let server = cluster.server.clone().unwrap();
        let ca_data = cluster.certificate_authority_data.clone().unwrap();
        let admin = rt.block_on(async {
            let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await.unwrap();
            Client::try_from(config).unwrap()
        });
        let report = std::env::var_os("FOUNDRY_CLUSTER_REPORT").map(PathBuf::from);
        Tier { rt, admin, server, ca_data, report, name: test.to_owned() }
    }

    /// Creates a fresh namespace named after the test (with a random suffix: the server outlives one test run).
    pub(crate) fn namespace(&self, prefix: &str) -> String {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
        let name = format!("{prefix}-{:x}{:x}", std::process::id(), nanos);
        self.ensure_namespace(&name);
        name
    }

    /// Creates a namespace unless it exists.
    pub(crate) fn ensure_namespace(&self, name: &str) {
        let api: Api<Namespace> = Api::all(self.admin.clone());
        let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
        match self.rt.block_on(api.create(&PostParams::default(), &ns)) {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 409 => {}
            Err(e) => panic!("cannot create namespace {name}: {e}"),
        }
    }

    /// The API of one of our kinds (`foundrylicenses`, `foundryinstances`, ...) in a namespace.
    pub(crate) fn ours(&self, client: &Client, namespace: &str, plural: &str) -> Api<DynamicObject> {
        let kind = match plural {
            "foundrylicenses" => "FoundryLicense",
            "foundryinstances" => "FoundryInstance",
            "foundryactivationrequests" => "FoundryActivationRequest",
            other => panic!("not one of ours: {other}"),
        };
        let gvk = GroupVersionKind::gvk(GROUP, VERSION, kind);
        Api::namespaced_with(client.clone(), namespace, &ApiResource::from_gvk_with_plural(&gvk, plural))
    }

    /// Creates an object as a user would (`kubectl create`); returns it as the server holds it.
    pub(crate) fn create(&self, namespace: &str, plural: &str, object: Value) -> Value {
        let api = self.ours(&self.admin, namespace, plural);
        let object: DynamicObject = serde_json::from_value(object).unwrap();
        let created = self.rt.block_on(api.create(&PostParams::default(), &object)).unwrap();
        serde_json::to_value(created).unwrap()
    }

    /// The object as the server holds it now.
    pub(crate) fn get(&self, namespace: &str, plural: &str, name: &str) -> Option<Value> {
        let api = self.ours(&self.admin, namespace, plural);
        self.rt.block_on(api.get_opt(name)).unwrap().map(|o| serde_json::to_value(o).unwrap())
    }

    /// Merge-patches an object (as `kubectl patch --type merge`).
    pub(crate) fn patch(&self, namespace: &str, plural: &str, name: &str, patch: Value) -> Value {
        let api = self.ours(&self.admin, namespace, plural);
        let patched = self.rt.block_on(api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))).unwrap();
        serde_json::to_value(patched).unwrap()
    }

    /// Merge-patches an object's status subresource.
    pub(crate) fn patch_status(&self, namespace: &str, plural: &str, name: &str, status: Value) -> Value {
        let api = self.ours(&self.admin, namespace, plural);
        let patch = json!({ "status": status });
        let patched = self.rt.block_on(api.patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))).unwrap();
        serde_json::to_value(patched).unwrap()
    }

    /// Deletes an object (as `kubectl delete --wait=false`).
    pub(crate) fn delete(&self, namespace: &str, plural: &str, name: &str) {
        let api = self.ours(&self.admin, namespace, plural);
        self.rt.block_on(api.delete(name, &DeleteParams::default())).unwrap();
    }

    /// Kratix's status writer: merges the top-level keys of a pipeline's `status.yaml` into the object's status
    /// (each key replaced whole, except `conditions`, merged by `type`) and writes it with an update of the status
    /// subresource, as `MergeStatuses` and `UpdateStatus` in Kratix's work-creator do.
    pub(crate) fn write_status(&self, namespace: &str, plural: &str, name: &str, status_yaml: &Path) -> Value {
        let incoming = yaml_object(status_yaml);
        let incoming = incoming.as_object().expect("status.yaml is a map");
        assert!(!incoming.contains_key("kratix"), "Kratix fails the pipeline on a top-level `kratix` key");
        let api = self.ours(&self.admin, namespace, plural);
        let mut object = serde_json::to_value(self.rt.block_on(api.get(name)).unwrap()).unwrap();
        let mut status = object.get("status").cloned().filter(Value::is_object).unwrap_or_else(|| json!({}));
        for (key, value) in incoming {
            if key == "conditions" {
                let mut merged: Vec<Value> = status["conditions"].as_array().cloned().unwrap_or_default();
                for condition in value.as_array().cloned().unwrap_or_default() {
                    merged.retain(|c| c["type"] != condition["type"]);
                    merged.push(condition);
                }
                status["conditions"] = Value::Array(merged);
            } else {
                status[key] = value.clone();
            }
        }
        object["status"] = status;
        let object: DynamicObject = serde_json::from_value(object).unwrap();
        let updated = self.rt.block_on(api.replace_status(name, &PostParams::default(), &object)).unwrap();
        serde_json::to_value(updated).unwrap()
    }

    /// A kubeconfig for `account` in `namespace` with a token from the TokenRequest API (one hour).
    pub(crate) fn token_kubeconfig(&self, namespace: &str, account: &str, dir: &Path) -> PathBuf {
        let api: Api<ServiceAccount> = Api::namespaced(self.admin.clone(), namespace);
        let request = TokenRequest {
            spec: TokenRequestSpec { expiration_seconds: Some(3600), ..Default::default() },
            ..Default::default()
        };
        let token = self
            .rt
            .block_on(api.create_token_request(account, &PostParams::default(), &request))
            .unwrap()
            .status
            .unwrap()
            .token;
        let path = dir.join(format!("{account}.kubeconfig"));
        let text = format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: {account}\nclusters:\n- name: tier\n  cluster:\n    \
             server: {}\n    certificate-authority-data: {}\ncontexts:\n- name: {account}\n  context:\n    \
             cluster: tier\n    user: {account}\n    namespace: {namespace}\nusers:\n- name: {account}\n  user:\n    \
             token: {token}\n",
            self.server, self.ca_data
        );
        std::fs::write(&path, text).unwrap();
        path
    }

    /// A kube-rs client from a kubeconfig file.
    pub(crate) fn client(&self, kubeconfig: &Path) -> Client {
        self.rt.block_on(async {
            let kc = Kubeconfig::read_from(kubeconfig).unwrap();
            Client::try_from(Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default()).await.unwrap()).unwrap()
        })
    }

    /// Creates (or updates) any object as admin with server-side apply (a real change, not a dry run).
    pub(crate) fn apply(&self, object: &Value) -> Value {
        let (api, name) = self.dynamic(object);
        let params = PatchParams::apply("foundry-tier").force();
        serde_json::to_value(self.rt.block_on(api.patch(&name, &params, &Patch::Apply(object))).unwrap()).unwrap()
    }

    /// Server-side apply with `dryRun=All`: the API server validates the object (schema, CEL rules, admission)
    /// and stores nothing. Records the outcome for `cargo xtask cluster`'s summary.
    pub(crate) fn dry_run_apply(&self, object: &Value) -> Result<(), String> {
        let (api, name) = self.dynamic(object);
        let params = PatchParams::apply("foundry-kratix").dry_run();
        let kind = object["kind"].as_str().unwrap_or_default().to_owned();
        let result = self.rt.block_on(api.patch(&name, &params, &Patch::Apply(object)));
        let (outcome, answer) = match result {
            Ok(_) => ("accepted", Ok(())),
            Err(kube::Error::Api(e)) => ("refused", Err(format!("HTTP {} {}: {}", e.code, e.reason, e.message))),
            Err(e) => panic!("dry-run apply of {kind} {name}: {e}"),
        };
        if let Some(dir) = &self.report {
            let mut file = std::fs::OpenOptions::new().create(true).append(true).open(dir.join(&self.name)).unwrap();
            writeln!(file, "{outcome} {kind}").unwrap();
        }
        answer
    }

    /// Every file of an output directory, dry-run applied; panics on the first refusal. Returns how many.
    pub(crate) fn dry_run_output(&self, dir: &Path) -> usize {
        let mut count = 0;
        for file in sorted_files(dir) {
            for object in yaml_documents(&file) {
                if let Err(e) = self.dry_run_apply(&object) {
                    panic!(
                        "the API server refused {} ({} {}): {e}",
                        file.display(),
                        object["kind"],
                        object["metadata"]["name"]
                    );
                }
                count += 1;
            }
        }
        count
    }

    /// The API for an object's kind (found through discovery) in its namespace, and its name.
    fn dynamic(&self, object: &Value) -> (Api<DynamicObject>, String) {
        let (group, version) = match object["apiVersion"].as_str().unwrap().split_once('/') {
            Some((g, v)) => (g.to_owned(), v.to_owned()),
            None => (String::new(), object["apiVersion"].as_str().unwrap().to_owned()),
        };
        let gvk = GroupVersionKind::gvk(&group, &version, object["kind"].as_str().unwrap());
        let (resource, caps) = self
            .rt
            .block_on(kube::discovery::pinned_kind(&self.admin, &gvk))
            .unwrap_or_else(|e| panic!("the API server does not serve {gvk:?}: {e}"));
        let name = object["metadata"]["name"].as_str().unwrap().to_owned();
        let api = match (caps.scope, object["metadata"]["namespace"].as_str()) {
            (kube::discovery::Scope::Namespaced, Some(ns)) => Api::namespaced_with(self.admin.clone(), ns, &resource),
            (kube::discovery::Scope::Namespaced, None) => panic!("{gvk:?} {name} has no namespace"),
            (kube::discovery::Scope::Cluster, _) => Api::all_with(self.admin.clone(), &resource),
        };
        (api, name)
    }

    /// Waits until the API server's authorizer lets ServiceAccount `account` do `verb` on `resource` (optionally
    /// `resource/subresource`) in `namespace`, on the object `name` if given (RBAC changes reach the authorizer
    /// through a watch, a moment after they are stored).
    pub(crate) fn await_permission(
        &self,
        account: (&str, &str),
        verb: &str,
        resource: &str,
        namespace: &str,
        name: Option<&str>,
    ) {
        let (account_ns, account) = account;
        // `deployments.apps` names a resource of another group; a bare name is one of ours.
        let (resource, group) = resource.split_once('.').unwrap_or((resource, GROUP));
        let (resource, subresource) = resource.split_once('/').map_or((resource, None), |(r, s)| (r, Some(s)));
        let review = SubjectAccessReview {
            spec: SubjectAccessReviewSpec {
                user: Some(format!("system:serviceaccount:{account_ns}:{account}")),
                groups: Some(vec!["system:serviceaccounts".into(), format!("system:serviceaccounts:{account_ns}")]),
                resource_attributes: Some(ResourceAttributes {
                    namespace: Some(namespace.into()),
                    verb: Some(verb.into()),
                    group: Some(group.into()),
                    resource: Some(resource.into()),
                    subresource: subresource.map(str::to_owned),
                    name: name.map(str::to_owned),
                    ..Default::default()
                }),
                ..Default::default()
            },
            ..Default::default()
        };
        let api: Api<SubjectAccessReview> = Api::all(self.admin.clone());
        let start = Instant::now();
        loop {
            let answer = self.rt.block_on(api.create(&PostParams::default(), &review)).unwrap();
            if answer.status.is_some_and(|s| s.allowed) {
                return;
            }
            assert!(start.elapsed() < Duration::from_secs(15), "{account} was never allowed to {verb} {resource}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// The files of a directory, in name order.
pub(crate) fn sorted_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}
