//! `host-runner migrate` on the existing platform's objects (`examples/legacy/`), as an operator runs it: the
//! migrated objects are accepted by `preview`, every instance's data stays exactly where the existing platform
//! kept it, a second migration changes nothing, and missing settings are refused by name.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const NFS: [&str; 4] = ["--nfs-server", "192.168.200.184", "--nfs-base", "/volume1/foundry"];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_host-runner")).current_dir(root()).args(args).output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Where the existing platform kept each instance's data, by its own rules (`setup_volume.py`,
/// `manifest_templates.py`): NFS unless `storageBackend: pvc`, at `nfsBasePath` verbatim or
/// `<NFS_BASE_PATH>/instances/<name>`; PVC `foundry-<name>-data`.
fn legacy_locations() -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(root().join("examples/legacy")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("yaml") {
            continue;
        }
        let docs: Vec<Value> = serde_saphyr::from_multiple(&std::fs::read_to_string(&path).unwrap()).unwrap();
        for doc in docs.iter().filter(|d| d["kind"] == "FoundryInstance") {
            let name = doc["metadata"]["name"].as_str().unwrap();
            let id = format!("{}/{name}", doc["metadata"]["namespace"].as_str().unwrap());
            let place = if doc["spec"]["storageBackend"] == "pvc" {
                format!("pvc/foundry-{name}-data:/")
            } else {
                let path = doc["spec"]["nfsBasePath"]
                    .as_str()
                    .map_or_else(|| format!("/volume1/foundry/instances/{name}"), str::to_owned);
                format!("nfs://192.168.200.184{}", path.trim_end_matches('/'))
            };
            out.insert(id, place);
        }
    }
    out
}

/// Where a rendered Deployment mounts Foundry's `/data`.
fn deployment_location(manifests: &[Value]) -> String {
    let deployment = manifests.iter().find(|m| m["kind"] == "Deployment").expect("a Deployment");
    let pod = &deployment["spec"]["template"]["spec"];
    let mount = pod["containers"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|c| c["volumeMounts"].as_array().cloned().unwrap_or_default())
        .find(|m| m["mountPath"] == "/data")
        .expect("a mount at /data");
    let volume = pod["volumes"].as_array().unwrap().iter().find(|v| v["name"] == mount["name"]).unwrap().clone();
    let sub = mount["subPath"].as_str().unwrap_or_default();
    if let Some(claim) = volume["persistentVolumeClaim"]["claimName"].as_str() {
        format!("pvc/{claim}:/{sub}")
    } else {
        let nfs = &volume["nfs"];
        let base = nfs["path"].as_str().unwrap().trim_end_matches('/');
        let path = if sub.is_empty() { base.to_owned() } else { format!("{base}/{sub}") };
        format!("nfs://{}{path}", nfs["server"].as_str().unwrap())
    }
}

#[test]
fn legacy_objects_migrate_keep_their_data_and_preview() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("migrated");
    let migrated =
        run(&[&["migrate", "examples/legacy", "--output", "json", "--out", out.to_str().unwrap()][..], &NFS].concat());
    assert_eq!(migrated.status.code(), Some(0), "{}", text(&migrated.stderr));
    let report: Value = serde_json::from_slice(&migrated.stdout).unwrap();

    // The report's "before" is the existing platform's location, its "after" the same place or nothing.
    let legacy = legacy_locations();
    assert_eq!(legacy.len(), 6);
    let mut reported = BTreeMap::new();
    for l in report["locations"].as_array().unwrap() {
        let id = format!("{}/{}", l["object"]["namespace"].as_str().unwrap(), l["object"]["name"].as_str().unwrap());
        assert_eq!(l["before"].as_str(), Some(legacy[&id].as_str()), "{id}");
        reported.insert(id, l["after"].clone());
    }
    assert_eq!(reported.keys().collect::<Vec<_>>(), legacy.keys().collect::<Vec<_>>());
    // A free NFS path is kept verbatim, and the migrated license allows exactly it.
    let halloween = &legacy["tabletop/halloween"];
    assert_eq!(reported["tabletop/halloween"].as_str(), Some(halloween.as_str()));
    assert_eq!(report["actionRequired"], 0);
    let license: Value = serde_saphyr::from_str(
        &std::fs::read_to_string(out.join("tabletop/foundrylicenses/dungeons-guild.yaml")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        license["spec"]["restrictions"]["legacyNfsPaths"],
        serde_json::json!(["/volume1/oneshots/halloween-2024"])
    );
    // Every field the existing platform's CRD never had is reported, not silently lost.
    for field in ["spec.requestActive", "spec.subdomain", "spec.plugins", "spec.owner", "spec.gateway.dnsTarget"] {
        assert!(
            report["changes"].as_array().unwrap().iter().any(|c| c["path"] == field && c["action"] == "dropped"),
            "{field} dropped without a word"
        );
    }

    // `preview` accepts every migrated object, and each Deployment mounts the very directory or claim the
    // existing platform used.
    let preview = run(&["preview", out.to_str().unwrap(), "--output", "json"]);
    assert_eq!(preview.status.code(), Some(0), "{}", text(&preview.stderr));
    let doc: Value = serde_json::from_slice(&preview.stdout).unwrap();
    let instances = doc["instances"].as_array().unwrap();
    assert_eq!(instances.len(), 6);
    for i in instances {
        let id = format!("{}/{}", i["namespace"].as_str().unwrap(), i["name"].as_str().unwrap());
        assert_eq!(i["admitted"], true, "{id}");
        let after = deployment_location(i["manifests"].as_array().unwrap());
        assert_eq!(after, legacy[&id], "{id}: the data must stay where it was");
        assert_eq!(reported[&id].as_str(), Some(after.as_str()), "{id}: the report says where it is");
    }
    let routed = doc["licenses"].as_array().unwrap().iter().find(|l| l["name"] == "dungeons-guild").unwrap();
    assert_eq!(routed["activeInstance"], "campaign-alpha", "the active instance stays active");
    assert_eq!(routed["instances"].as_array().unwrap().len(), 5);

    // Migrating the migrated objects changes nothing: same files, byte for byte, and no change reported.
    let again = dir.path().join("again");
    let second =
        run(&[&["migrate", out.to_str().unwrap(), "--output", "json", "--out", again.to_str().unwrap()][..], &NFS]
            .concat());
    assert_eq!(second.status.code(), Some(0), "{}", text(&second.stderr));
    let second_report: Value = serde_json::from_slice(&second.stdout).unwrap();
    assert_eq!(second_report["changes"], serde_json::json!([]));
    for file in walk(&out) {
        let rel = file.strip_prefix(&out).unwrap();
        assert_eq!(std::fs::read(&file).unwrap(), std::fs::read(again.join(rel)).unwrap(), "{}", rel.display());
    }
    assert_eq!(walk(&out).len(), walk(&again).len());
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() { files.extend(walk(&path)) } else { files.push(path) }
    }
    files.sort();
    files
}

#[test]
fn nfs_instances_need_the_existing_platforms_settings() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("migrated");
    let refused = run(&["migrate", "examples/legacy", "--out", out.to_str().unwrap()]);
    assert_eq!(refused.status.code(), Some(3));
    let stderr = text(&refused.stderr);
    assert!(stderr.contains("MigrationSettingMissing") && stderr.contains("--nfs-server"), "{stderr}");
    assert!(stderr.contains("instances.yaml"), "names the file: {stderr}");
    assert!(!out.exists(), "a refused migration writes nothing");
}

#[test]
fn the_table_shows_every_change_and_where_the_data_is() {
    let out = run(&[&["migrate", "examples/legacy"][..], &NFS].concat());
    assert_eq!(out.status.code(), Some(0));
    let table = text(&out.stdout);
    assert!(table.starts_with("OBJECT"));
    assert!(
        table.contains("tabletop/halloween       nfs://192.168.200.184/volume1/oneshots/halloween-2024           same"),
        "{table}"
    );
    assert!(table.contains("8 objects migrated") && table.contains("0 need an operator's action"), "{table}");
}

#[test]
fn preview_keeps_a_running_workloads_data_place() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("migrated");
    let migrated = run(&[&["migrate", "examples/legacy", "--out", out.to_str().unwrap()][..], &NFS].concat());
    assert_eq!(migrated.status.code(), Some(0), "{}", text(&migrated.stderr));
    // The existing platform's Deployment of campaign-alpha, as `kubectl get -o yaml` gives it.
    let deployment = r#"{"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "foundry-campaign-alpha", "namespace": "tabletop"},
        "spec": {"template": {"spec": {
            "containers": [{"name": "foundry-vtt", "volumeMounts": [{"name": "data", "mountPath": "/data"}]}],
            "volumes": [{"name": "data",
                         "nfs": {"server": "192.168.200.184", "path": "/volume1/foundry/instances/campaign-alpha"}}]}}}}"#;
    std::fs::write(out.join("deployment.json"), deployment).unwrap();
    let kept = run(&["preview", out.to_str().unwrap()]);
    assert_eq!(kept.status.code(), Some(0), "the migrated spec names the running place: {}", text(&kept.stderr));
    assert!(!text(&kept.stderr).contains("SkippedObject"), "{}", text(&kept.stderr));

    // Without its storage (this platform's default is a new PVC), the instance would start on an empty volume.
    let file = out.join("tabletop/foundryinstances/campaign-alpha.yaml");
    let mut alpha: Value = serde_saphyr::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    alpha["spec"].as_object_mut().unwrap().remove("storage");
    std::fs::write(&file, serde_json::to_string(&alpha).unwrap()).unwrap();
    let refused = run(&["preview", out.to_str().unwrap()]);
    assert_eq!(refused.status.code(), Some(3));
    let stderr = text(&refused.stderr);
    assert!(stderr.contains("DataLocationChange") && stderr.contains("confirm-data-location"), "{stderr}");
}
