//! Writes the seed corpora of the fuzz targets (`cargo xtask fuzz`) from the case corpus and the example platform.
//!
//! `fuzz-seeds DIR` writes `DIR/<target>/<case>` files: for the byte-level entrypoint targets, one seed per case and
//! per entrypoint id (the first byte picks the id, so each call is also tried on the other operations); for the YAML
//! target, each case's objects as YAML documents and the example platform's files as they are.

// A developer tool: a broken corpus should stop it loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::print_stdout)]

use serde_json::Value;
use std::path::PathBuf;

/// Entrypoint ids to seed: every current one and one past them (the targets map the first byte modulo their count).
const IDS: u8 = 3;

fn main() {
    let dir = PathBuf::from(std::env::args().nth(1).expect("usage: fuzz-seeds DIR"));
    let write = |target: &str, name: &str, bytes: &[u8]| {
        let path = dir.join(target).join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    };
    let mut count = 0;
    for case in corpus::load_cases() {
        let stem = case.name.replace('/', "-");
        let call = corpus::call_bytes(&case);
        for id in 0..IDS {
            let mut seed = vec![id];
            seed.extend_from_slice(&call);
            for target in ["entrypoints", "wasm_host"] {
                write(target, &format!("{stem}-{id}"), &seed);
            }
        }
        let objects: Vec<Value> = match case.call.get("objects") {
            Some(Value::Array(objects)) => objects.clone(),
            _ => case
                .call
                .get("license")
                .into_iter()
                .chain(case.call["instances"].as_array().into_iter().flatten())
                .cloned()
                .collect(),
        };
        // JSON documents are YAML documents.
        let docs: Vec<String> = objects.iter().map(|o| serde_json::to_string(o).unwrap()).collect();
        write("yaml_load", &stem, docs.join("\n---\n").as_bytes());
        count += 1;
    }
    let examples = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/platform");
    for entry in std::fs::read_dir(&examples).unwrap() {
        let path = entry.unwrap().path();
        write(
            "yaml_load",
            &format!("example-{}", path.file_name().unwrap().to_string_lossy()),
            &std::fs::read(&path).unwrap(),
        );
    }
    println!("wrote seeds of {count} cases under {}", dir.display());
}
