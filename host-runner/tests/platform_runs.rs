//! The workflows agree with each other over time: license and instance workflows run one after another over one
//! shared in-memory cluster, as Kratix runs them (a spec change or the reconciliation label starts a resource's
//! configure workflow, a deletion its delete workflow; `status.yaml` is merged into the status after a successful
//! run, and the output becomes the resource's Work), through the same `kratix::Run` as the pipeline binary.
//!
//! After every run it checks what must hold across workflows:
//! - no route to a missing workload: an HTTPRoute to `foundry-<x>` exists only while instance `x`'s Work holds
//!   its Deployment and Service;
//! - `isActive` on every instance equals its license's answer;
//! - no object is written by two licenses, and no hostname is routed twice.
//!
//! The in-memory cluster is a stand-in on purpose: it lets one test drive dozens of workflow runs in a second
//! and check the invariants between any two of them; the cluster tier runs the same binaries against a real API
//! server.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic, clippy::print_stdout)]

use host_runner::cluster::{Cluster, ClusterError, RECONCILE_LABEL, StatusTarget};
use host_runner::engine::{Limits, PolicyEngine};
use host_runner::kratix::{KratixDirs, KratixEnv, Run};
use host_runner::policy::Policy;
use host_runner::probe::StatusFetcher;
use policy_core::api::observe::StatusFetch;
use serde_json::{Value, json};
use std::borrow::Cow;
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, VecDeque};
use support::merge;

mod support;

type Key = (String, String, String); // kind, namespace, name

/// A workflow Kratix would start.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Job {
    Configure(Key),
    Delete(Key),
}

#[derive(Default)]
struct Sim {
    objects: RefCell<BTreeMap<Key, Value>>,
    /// The manifests each resource's last successful configure run wrote (its Work).
    works: RefCell<BTreeMap<Key, Vec<Value>>>,
    queue: RefCell<VecDeque<Job>>,
    /// Players connected per instance, as a probe of its Service would read them.
    players: RefCell<BTreeMap<String, u32>>,
    clock: Cell<i64>,
    runs: Cell<usize>,
    /// The number of runs done when each object was created, and when each license last ran successfully.
    born: RefCell<BTreeMap<Key, usize>>,
    license_ran: RefCell<BTreeMap<Key, usize>>,
}

fn key(kind: &str, ns: &str, name: &str) -> Key {
    (kind.into(), ns.into(), name.into())
}

impl Sim {
    fn now(&self) -> String {
        policy_core::api::Timestamp::from_unix(self.clock.get()).unwrap().to_string()
    }

    fn tick(&self, secs: i64) {
        self.clock.set(self.clock.get() + secs);
    }

    /// Creates or changes an object's spec (Kratix runs its configure workflow when the generation changes).
    fn apply(&self, kind: &str, ns: &str, name: &str, spec: Value) {
        let k = key(kind, ns, name);
        let mut objects = self.objects.borrow_mut();
        let now = self.now();
        let object = objects.entry(k.clone()).or_insert_with(|| {
            self.born.borrow_mut().insert(k.clone(), self.runs.get());
            json!({"apiVersion": "foundry.platform/v1alpha1", "kind": kind,
                   "metadata": {"name": name, "namespace": ns, "generation": 0, "creationTimestamp": now,
                                "uid": format!("uid-{ns}-{name}")},
                   "spec": {}, "status": {}})
        });
        if object["spec"] != spec {
            object["spec"] = spec;
            let generation = object["metadata"]["generation"].as_i64().unwrap() + 1;
            object["metadata"]["generation"] = json!(generation);
            self.queue.borrow_mut().push_back(Job::Configure(k));
        }
    }

    fn annotate(&self, kind: &str, ns: &str, name: &str, annotations: Value) {
        let k = key(kind, ns, name);
        self.objects.borrow_mut().get_mut(&k).unwrap()["metadata"]["annotations"] = annotations;
        // Annotations change no generation: Kratix does not re-run for them; the license sees them on its next run.
    }

    fn delete(&self, kind: &str, ns: &str, name: &str) {
        let k = key(kind, ns, name);
        let now = self.now();
        self.objects.borrow_mut().get_mut(&k).unwrap()["metadata"]["deletionTimestamp"] = json!(now);
        self.queue.borrow_mut().push_back(Job::Delete(k));
    }

    /// Kratix's reconciliation interval: every license's configure workflow runs again.
    fn reconcile_licenses(&self) {
        let licenses: Vec<Key> = self.objects.borrow().keys().filter(|k| k.0 == "FoundryLicense").cloned().collect();
        for k in licenses {
            self.queue.borrow_mut().push_back(Job::Configure(k));
        }
    }

    fn label(&self, k: Key) {
        if let Some(o) = self.objects.borrow_mut().get_mut(&k) {
            o["metadata"]["labels"][RECONCILE_LABEL] = json!("true");
        }
        let job = Job::Configure(k);
        if !self.queue.borrow().contains(&job) {
            self.queue.borrow_mut().push_back(job);
        }
    }

    fn object(&self, k: &Key) -> Option<Value> {
        self.objects.borrow().get(k).cloned()
    }

    fn status(&self, kind: &str, ns: &str, name: &str) -> Value {
        self.object(&key(kind, ns, name)).map(|o| o["status"].clone()).unwrap_or(Value::Null)
    }

    /// Runs queued workflows until none is left, checking the invariants after each.
    fn settle(&self, policy: &Policy) {
        let mut runs = 0;
        loop {
            let next = self.queue.borrow_mut().pop_front();
            let Some(job) = next else { break };
            runs += 1;
            assert!(runs < 60, "the workflows keep starting each other: {:?}", self.queue.borrow());
            self.run(policy, &job);
            self.check();
        }
    }

    fn run(&self, policy: &Policy, job: &Job) {
        let (k, action) = match job {
            Job::Configure(k) => (k, "configure"),
            Job::Delete(k) => (k, "delete"),
        };
        let Some(mut object) = self.object(k) else { return };
        // Kratix removes the label when it starts the run.
        if let Some(labels) = object["metadata"].get_mut("labels").and_then(Value::as_object_mut) {
            labels.remove(RECONCILE_LABEL);
        }
        let dir = tempfile::tempdir().unwrap();
        for d in ["input", "output", "metadata"] {
            std::fs::create_dir_all(dir.path().join(d)).unwrap();
        }
        std::fs::write(dir.path().join("input/object.yaml"), policy_core::api::to_yaml(&object)).unwrap();
        let env = KratixEnv {
            workflow_type: Some("resource".into()),
            action: Some(action.into()),
            kind: Some(k.0.clone()),
            crd_plural: None,
            dry_run: false,
            runner_image: None,
        };
        let dirs = KratixDirs {
            input: dir.path().join("input"),
            output: dir.path().join("output"),
            metadata: dir.path().join("metadata"),
        };
        let run = Run {
            policy,
            cluster: self,
            fetcher: self,
            dirs: dirs.clone(),
            env,
            observations: json!({}),
            now: self.now(),
            catalog: Value::Null,
        };
        self.runs.set(self.runs.get() + 1);
        let mut log = Vec::new();
        let result = run.execute(&mut log);
        match (result, action) {
            (Ok(_), "delete") => {
                self.objects.borrow_mut().remove(k);
                self.works.borrow_mut().remove(k);
            }
            (Ok(_), _) => {
                // Kratix's status writer, then the Work.
                let status: Value =
                    serde_saphyr::from_str(&std::fs::read_to_string(dirs.metadata.join("status.yaml")).unwrap())
                        .unwrap();
                if let Some(o) = self.objects.borrow_mut().get_mut(k) {
                    let mut merged = o["status"].clone();
                    for (key, value) in status.as_object().unwrap() {
                        merged[key] = value.clone();
                    }
                    o["status"] = merged;
                }
                let mut manifests = Vec::new();
                for entry in std::fs::read_dir(&dirs.output).unwrap() {
                    let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
                    manifests.push(serde_saphyr::from_str::<Value>(&text).unwrap());
                }
                self.works.borrow_mut().insert(k.clone(), manifests);
                if k.0 == "FoundryLicense" {
                    self.license_ran.borrow_mut().insert(k.clone(), self.runs.get());
                }
            }
            // A failed run keeps the last Work (Kratix applies nothing from it); its refusal is on the status.
            (Err(_), _) => {}
        }
    }

    /// The invariants that must hold between any two runs.
    fn check(&self) {
        let works = self.works.borrow();
        let mut owners: BTreeMap<(String, String, String), Key> = BTreeMap::new();
        let mut hostnames: BTreeMap<String, Key> = BTreeMap::new();
        for (owner, manifests) in works.iter().filter(|(k, _)| k.0 == "FoundryLicense") {
            let mut active_routes = 0;
            for m in manifests {
                let id = (
                    m["kind"].as_str().unwrap().to_owned(),
                    m["metadata"]["namespace"].as_str().unwrap().to_owned(),
                    m["metadata"]["name"].as_str().unwrap().to_owned(),
                );
                if let Some(other) = owners.insert(id.clone(), owner.clone()) {
                    panic!("{id:?} is written by {other:?} and {owner:?}");
                }
                if m["kind"] != "HTTPRoute" {
                    continue;
                }
                let host = m["spec"]["hostnames"][0].as_str().unwrap().to_owned();
                if let Some(other) = hostnames.insert(host.clone(), owner.clone()) {
                    panic!("{host} is routed by {other:?} and {owner:?}");
                }
                let backend = m["spec"]["rules"][0]["backendRefs"][0]["name"].as_str().unwrap();
                if backend == "foundry-standby-page" {
                    continue;
                }
                active_routes += 1;
                let instance = backend.strip_prefix("foundry-").unwrap();
                let work = works.get(&key("FoundryInstance", &owner.1, instance));
                let has = |kind: &str| {
                    work.is_some_and(|w| w.iter().any(|m| m["kind"] == kind && m["metadata"]["name"] == backend))
                };
                assert!(
                    has("Deployment") && has("Service"),
                    "{owner:?} routes {host} to {backend}, which has no workload (run {})",
                    self.runs.get()
                );
            }
            assert!(active_routes <= 1, "{owner:?} has {active_routes} active routes");
        }
        // isActive tells the truth once the license has run.
        let objects = self.objects.borrow();
        let (born, license_ran) = (self.born.borrow(), self.license_ran.borrow());
        for (k, o) in objects.iter().filter(|(k, _)| k.0 == "FoundryLicense") {
            let Some(&ran) = license_ran.get(k) else { continue };
            let active = o["status"]["activeInstance"].as_str().unwrap_or_default();
            for (ik, i) in objects.iter().filter(|(ik, i)| {
                ik.0 == "FoundryInstance" && ik.1 == k.1 && i["spec"]["licenseRef"]["name"] == k.2.as_str()
            }) {
                // Being deleted, or created after the license's last run: nothing told it yet.
                if i["metadata"].get("deletionTimestamp").is_some() || born[ik] >= ran {
                    continue;
                }
                assert_eq!(
                    i["status"]["isActive"].as_bool(),
                    Some(ik.2 == active),
                    "{ik:?}'s isActive disagrees with {k:?} (active `{active}`)"
                );
            }
        }
    }
}

impl Cluster for Sim {
    fn list_instances(&self, namespace: &str) -> Result<Vec<Cow<'_, Value>>, ClusterError> {
        Ok(self
            .objects
            .borrow()
            .iter()
            .filter(|(k, _)| k.0 == "FoundryInstance" && k.1 == namespace)
            .map(|(_, v)| Cow::Owned(v.clone()))
            .collect())
    }

    fn list_licenses(&self) -> Result<Vec<Cow<'_, Value>>, ClusterError> {
        Ok(self
            .objects
            .borrow()
            .iter()
            .filter(|(k, _)| k.0 == "FoundryLicense")
            .map(|(_, v)| Cow::Owned(v.clone()))
            .collect())
    }

    fn get_license(&self, namespace: &str, name: &str) -> Result<Option<Value>, ClusterError> {
        Ok(self.object(&key("FoundryLicense", namespace, name)))
    }

    fn get_workload(&self, namespace: &str, name: &str) -> Result<Option<Value>, ClusterError> {
        // What the instance's Work put in the cluster.
        let instance = name.strip_prefix("foundry-").unwrap_or_default();
        Ok(self
            .works
            .borrow()
            .get(&key("FoundryInstance", namespace, instance))
            .and_then(|w| w.iter().find(|m| m["kind"] == "Deployment" && m["metadata"]["name"] == name).cloned()))
    }

    fn touch_license(&self, namespace: &str, name: &str) -> Result<(), ClusterError> {
        self.label(key("FoundryLicense", namespace, name));
        Ok(())
    }

    fn touch_instance(&self, namespace: &str, name: &str) -> Result<(), ClusterError> {
        self.label(key("FoundryInstance", namespace, name));
        Ok(())
    }

    fn patch_instance_status(&self, namespace: &str, name: &str, status: &Value) -> Result<(), ClusterError> {
        if let Some(o) = self.objects.borrow_mut().get_mut(&key("FoundryInstance", namespace, name)) {
            merge(&mut o["status"], status);
        }
        Ok(())
    }

    fn publish_status(&self, target: &StatusTarget, status: &Value) -> Result<(), ClusterError> {
        let kind = if target.plural == "foundrylicenses" { "FoundryLicense" } else { "FoundryInstance" };
        if let Some(o) = self.objects.borrow_mut().get_mut(&key(kind, &target.namespace, &target.name)) {
            merge(&mut o["status"], status);
        }
        Ok(())
    }
}

impl StatusFetcher for Sim {
    fn fetch(&self, _url: &str, instance: &str, namespace: &str) -> Option<StatusFetch> {
        let users = self.players.borrow().get(instance).copied().unwrap_or(0);
        Some(StatusFetch {
            instance: instance.into(),
            namespace: Some(namespace.into()),
            http_status: Some(200),
            body: Some(json!({"active": true, "users": users}).to_string()),
            error: None,
        })
    }
}

fn license_spec(domain: &str, active: &str, extra: Value) -> Value {
    let mut spec = json!({
        "licenseSecretRef": {"name": "foundry-license", "key": "license-key"},
        "baseDomain": domain,
        "activeInstanceName": active,
    });
    merge(&mut spec, &extra);
    spec
}

fn instance_spec(license: &str, extra: Value) -> Value {
    let mut spec = json!({"licenseRef": {"name": license}, "adminPasswordSecretRef": {"name": "admin"}});
    merge(&mut spec, &extra);
    spec
}

fn active(sim: &Sim, ns: &str, license: &str) -> String {
    sim.status("FoundryLicense", ns, license)["activeInstance"].as_str().unwrap_or_default().to_owned()
}

#[test]
fn workflows_agree_with_each_other_run_after_run() {
    let policy = Policy::new(PolicyEngine::embedded(Limits::default()).unwrap());
    let sim = Sim::default();
    sim.clock.set(1_795_000_000);

    // A license admitting two instances, three instances (`c` the newest, refused), and one whose version the
    // license does not allow.
    sim.apply(
        "FoundryLicense",
        "t",
        "lic",
        license_spec(
            "play.example.com",
            "a",
            json!({
        "restrictions": {"maxInstances": 2, "allowedVersions": ["13.x"]}}),
        ),
    );
    for name in ["a", "b", "c"] {
        sim.tick(60);
        sim.apply("FoundryInstance", "t", name, instance_spec("lic", json!({"foundryVersion": "13.x"})));
    }
    sim.settle(&policy);
    assert_eq!(active(&sim, "t", "lic"), "a");
    assert_eq!(sim.status("FoundryInstance", "t", "c")["conditions"][0]["reason"], "RefusedInstanceLimit");

    // Asking for the refused instance keeps `a`: `c` has no workload.
    sim.apply(
        "FoundryLicense",
        "t",
        "lic",
        license_spec(
            "play.example.com",
            "c",
            json!({
        "restrictions": {"maxInstances": 2, "allowedVersions": ["13.x"]}}),
        ),
    );
    sim.settle(&policy);
    assert_eq!(active(&sim, "t", "lic"), "a");

    // `b` goes: `c` is admitted, its workflow runs again at once (asked by the license), and once it has a workload
    // the switch happens (nobody plays on `a`).
    sim.delete("FoundryInstance", "t", "b");
    sim.settle(&policy);
    assert_eq!(sim.status("FoundryInstance", "t", "c")["conditions"][0]["reason"], "Configured");
    assert_eq!(active(&sim, "t", "lic"), "c");

    // An instance whose version the license refuses never becomes active.
    sim.tick(60);
    sim.apply("FoundryInstance", "t", "d", instance_spec("lic", json!({"foundryVersion": "14.x"})));
    sim.apply(
        "FoundryLicense",
        "t",
        "lic",
        license_spec(
            "play.example.com",
            "d",
            json!({
        "restrictions": {"maxInstances": 3, "allowedVersions": ["13.x"]}}),
        ),
    );
    sim.settle(&policy);
    assert_eq!(active(&sim, "t", "lic"), "c");

    // A deletion scheduled a week ahead while three players are on `c`: nobody is dropped until then.
    sim.players.borrow_mut().insert("c".into(), 3);
    sim.apply(
        "FoundryLicense",
        "t",
        "lic",
        license_spec(
            "play.example.com",
            "a",
            json!({
        "restrictions": {"maxInstances": 3, "allowedVersions": ["13.x"]}}),
        ),
    );
    let week_ahead = policy_core::api::Timestamp::from_unix(sim.clock.get() + 7 * 86_400).unwrap().to_string();
    sim.annotate("FoundryInstance", "t", "c", json!({"foundry.platform/scheduled-delete-at": week_ahead}));
    sim.settle(&policy);
    assert_eq!(active(&sim, "t", "lic"), "c", "kept for its players");
    // The week passes: `c` is released at its scheduled time, players or not.
    sim.tick(7 * 86_400);
    sim.reconcile_licenses();
    sim.settle(&policy);
    assert_eq!(active(&sim, "t", "lic"), "a");

    // The license's base domain changes: every instance is configured again (its hostname moves) in the same
    // round of runs.
    sim.apply(
        "FoundryLicense",
        "t",
        "lic",
        license_spec(
            "games.example.com",
            "a",
            json!({
        "restrictions": {"maxInstances": 3, "allowedVersions": ["13.x"]}}),
        ),
    );
    sim.settle(&policy);
    let generation = sim.object(&key("FoundryLicense", "t", "lic")).unwrap()["metadata"]["generation"].clone();
    for name in ["a", "c"] {
        assert_eq!(sim.status("FoundryInstance", "t", name)["licenseGeneration"], generation, "{name}");
    }

    // A later license in another namespace with the same base domain and an instance `a`: the hostname stays the
    // older license's, and the later one's `a` gets no route (checked by the invariants on every run).
    sim.tick(60);
    sim.apply("FoundryLicense", "u", "lic", license_spec("games.example.com", "a", json!({})));
    sim.apply("FoundryInstance", "u", "a", instance_spec("lic", json!({})));
    sim.settle(&policy);
    assert_eq!(active(&sim, "u", "lic"), "", "the later license cannot publish a.games.example.com");
    assert_eq!(active(&sim, "t", "lic"), "a");
    println!("{} workflow runs, invariants held after each", sim.runs.get());
}
