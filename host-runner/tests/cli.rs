//! The `host-runner` binary as users run it: outputs, files, exit codes and error reports.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_host-runner")).current_dir(root()).args(args).output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

const EXAMPLE: [&str; 4] = ["preview", "examples/platform", "--observations", "examples/observations.yaml"];

#[test]
fn example_platform_table() {
    let out = run(&EXAMPLE);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    insta::assert_snapshot!("example_table", text(&out.stdout));
}

#[test]
fn example_platform_json_has_the_documented_shape() {
    let out = run(&[&EXAMPLE[..], &["--output", "json"]].concat());
    assert_eq!(out.status.code(), Some(0));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let license = &doc["licenses"][0];
    for key in ["namespace", "name", "activeInstance", "instances", "warnings", "status", "manifests"] {
        assert!(license.get(key).is_some(), "missing `{key}`");
    }
    for key in ["name", "state", "backend", "hostname"] {
        assert!(license["instances"][0].get(key).is_some(), "instance lacks `{key}`");
    }
    assert_eq!(license["activeInstance"], "campaign-alpha");
    let yaml = run(&[&EXAMPLE[..], &["--output", "yaml"]].concat());
    let from_yaml: serde_json::Value = serde_saphyr::from_slice(&yaml.stdout).unwrap();
    assert_eq!(from_yaml, doc, "the YAML output is the JSON document");
}

#[test]
fn out_dir_has_the_kratix_layout_and_reruns_replace_it() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().to_str().unwrap();
    let stale = dir.path().join("tabletop/foundrylicenses/dungeons-guild/output/httproute-old-instance.yaml");
    std::fs::create_dir_all(stale.parent().unwrap()).unwrap();
    std::fs::write(&stale, "left by an earlier run").unwrap();
    let first = run(&[&EXAMPLE[..], &["--out", out_dir]].concat());
    assert_eq!(first.status.code(), Some(0));
    assert!(!stale.exists(), "a rerun replaces what an earlier run left");
    let base = dir.path().join("tabletop/foundrylicenses/dungeons-guild");
    let mut files: Vec<String> = std::fs::read_dir(base.join("output"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    files.sort();
    insta::assert_yaml_snapshot!("example_output_files", files);
    insta::assert_snapshot!("example_status", std::fs::read_to_string(base.join("metadata/status.yaml")).unwrap());
    insta::assert_snapshot!(
        "example_active_route",
        std::fs::read_to_string(base.join("output/httproute-campaign-alpha.yaml")).unwrap()
    );

    let beta = dir.path().join("tabletop/foundryinstances/campaign-beta");
    let mut workload: Vec<String> = std::fs::read_dir(beta.join("output"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    workload.sort();
    insta::assert_yaml_snapshot!("example_workload_files", workload);
    insta::assert_snapshot!(
        "example_deployment",
        std::fs::read_to_string(beta.join("output/deployment.yaml")).unwrap()
    );
    insta::assert_snapshot!(
        "example_copy_job",
        std::fs::read_to_string(beta.join("output/copy-worlds-job.yaml")).unwrap()
    );
    insta::assert_snapshot!(
        "example_instance_status",
        std::fs::read_to_string(beta.join("metadata/status.yaml")).unwrap()
    );
    copy_script_copies_once_and_never_over_data(
        &std::fs::read_to_string(beta.join("output/copy-worlds-job.yaml")).unwrap(),
    );
    let refused = dir.path().join("tabletop/foundryinstances/overflow/output");
    assert_eq!(std::fs::read_dir(&refused).unwrap().count(), 0, "a refused instance gets no workload");

    // Same input, same bytes.
    let again = tempfile::tempdir().unwrap();
    let second = run(&[&EXAMPLE[..], &["--out", again.path().to_str().unwrap()]].concat());
    assert_eq!(first.stdout, second.stdout);
    for f in &files {
        let a = std::fs::read(base.join("output").join(f)).unwrap();
        let b = std::fs::read(again.path().join("tabletop/foundrylicenses/dungeons-guild/output").join(f)).unwrap();
        assert_eq!(a, b, "{f} differs between runs");
    }
}

#[test]
fn invalid_input_names_file_object_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("license.yaml");
    std::fs::write(
        &file,
        "apiVersion: foundry.platform/v1alpha1\nkind: FoundryLicense\nmetadata: {name: guild, namespace: games}\n\
         spec:\n  licenseSecretRef: {name: s, key: k}\n  switchMode: gentle\n  gateway: {baseDomain: x.example.org}\n",
    )
    .unwrap();
    let out = run(&["preview", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(3));
    let report = text(&out.stderr).replace(file.to_str().unwrap(), "<file>");
    insta::assert_snapshot!("invalid_switch_mode", report);
    assert!(out.stdout.is_empty(), "nothing is printed as a decision");
}

#[test]
fn unreadable_and_malformed_files_are_input_errors() {
    let dir = tempfile::tempdir().unwrap();
    let missing = run(&["preview", dir.path().join("nope.yaml").to_str().unwrap()]);
    assert_eq!(missing.status.code(), Some(3));
    assert!(text(&missing.stderr).starts_with("error[InputUnreadable]"), "{}", text(&missing.stderr));

    let bad_yaml = dir.path().join("bad.yaml");
    std::fs::write(&bad_yaml, "kind: [unclosed\n").unwrap();
    let out = run(&["preview", bad_yaml.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(3));
    assert!(text(&out.stderr).starts_with("error[InputInvalidYaml]"), "{}", text(&out.stderr));

    let binary = dir.path().join("binary.yaml");
    std::fs::write(&binary, b"kind: \xff\xfe\n").unwrap();
    let out = run(&["preview", binary.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(3));
    assert!(text(&out.stderr).starts_with("error[InputNotUtf8]"), "{}", text(&out.stderr));

    let scalar = dir.path().join("scalar.yaml");
    std::fs::write(&scalar, "just a string\n").unwrap();
    let out = run(&["preview", scalar.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(3));
    assert!(text(&out.stderr).starts_with("error[InputNotAnObject]"), "{}", text(&out.stderr));
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(run(&[]).status.code(), Some(2));
    assert_eq!(run(&["preview"]).status.code(), Some(2));
    assert_eq!(run(&[&EXAMPLE[..], &["--output", "xml"]].concat()).status.code(), Some(2));
    let help = run(&["--help"]);
    assert_eq!(help.status.code(), Some(0));
    assert!(text(&help.stdout).contains("Exit codes"));
}

#[test]
fn policy_failures_exit_4() {
    let out = run(&[&EXAMPLE[..], &["--fuel", "100000"]].concat());
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    assert!(text(&out.stderr).starts_with("error[PolicyOutOfFuel]"), "{}", text(&out.stderr));
    let dir = tempfile::tempdir().unwrap();
    let module = dir.path().join("not.wasm");
    std::fs::write(&module, b"not wasm").unwrap();
    let out = run(&[&EXAMPLE[..], &["--module", module.to_str().unwrap()]].concat());
    assert_eq!(out.status.code(), Some(4));
    assert!(text(&out.stderr).starts_with("error[PolicyModuleInvalid]"), "{}", text(&out.stderr));
}

#[test]
fn other_kinds_are_skipped_with_a_note() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(root().join("examples/platform/license.yaml"), dir.path().join("license.yaml")).unwrap();
    std::fs::write(
        dir.path().join("extra.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings, namespace: tabletop}\n",
    )
    .unwrap();
    let out = run(&["preview", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("note[SkippedObject]: ConfigMap tabletop/settings is not a FoundryLicense"));
}

#[test]
fn the_module_flag_loads_a_policy_from_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let module = dir.path().join("policy.wasm");
    std::fs::write(&module, host_runner::engine::EMBEDDED_POLICY).unwrap();
    let embedded = run(&EXAMPLE);
    let from_file = run(&[&EXAMPLE[..], &["--module", module.to_str().unwrap()]].concat());
    assert_eq!(from_file.status.code(), Some(0), "{}", text(&from_file.stderr));
    assert_eq!(embedded.stdout, from_file.stdout);
}

/// Runs the copy Job's script, as rendered, with `sh` against real directories: it copies into an empty target
/// once, reports `already copied` afterwards, and fails (copying nothing) on a target that holds other data.
fn copy_script_copies_once_and_never_over_data(job: &str) {
    let job: serde_json::Value = serde_saphyr::from_str(job).unwrap();
    let container = &job["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["command"][0], "sh");
    let script = container["command"][2].as_str().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (source, target) = (dir.path().join("source"), dir.path().join("target"));
    std::fs::create_dir_all(source.join("worlds/keep")).unwrap();
    std::fs::write(source.join("worlds/keep/world.json"), "{}").unwrap();
    std::fs::create_dir_all(&target).unwrap();
    let script = script.replace("/source", source.to_str().unwrap()).replace("/target", target.to_str().unwrap());
    let sh = |script: &str| Command::new("sh").args(["-c", script]).output().unwrap();

    let first = sh(&script);
    assert_eq!(first.status.code(), Some(0), "{}", text(&first.stderr));
    assert_eq!(text(&first.stdout).trim(), "copied");
    assert_eq!(std::fs::read_to_string(target.join("worlds/keep/world.json")).unwrap(), "{}");
    let again = sh(&script);
    assert_eq!((again.status.code(), text(&again.stdout).trim().to_owned()), (Some(0), "already copied".to_owned()));

    // A target with data the copy did not write: exit 1, nothing copied, nothing marked.
    std::fs::remove_dir_all(&target).unwrap();
    std::fs::create_dir_all(target.join("mine")).unwrap();
    let refused = sh(&script);
    assert_eq!(refused.status.code(), Some(1));
    assert!(text(&refused.stderr).contains("refusing to copy over it"), "{}", text(&refused.stderr));
    assert!(!target.join("worlds").exists() && !target.join(".foundry-copy-done").exists());
}
