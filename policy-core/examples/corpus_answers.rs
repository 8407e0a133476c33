//! Writes native `policy-core`'s answer to every corpus case, for the hosts that are not Rust (the npm SDK in
//! Node and in Chromium) and for the `opa-wasm` crate's runner, which live outside this workspace.
//!
//! `cargo run -p policy-core --example corpus_answers -- <DIR>` writes `<DIR>/<area>/<case>.json` per case and
//! `<DIR>/index.json` with all of them: the operation, the exact input bytes (`inputText`), the data document,
//! the native answer (`answer`, and its exact text `answerText`) and, per runner, why the case is not run there
//! (from `tests/corpus/DIVERGENCES.yaml`). Runners compare their result with `answer`; nothing is computed twice.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use serde_json::{Map, Value, json};
use std::path::PathBuf;

fn main() {
    let dir = PathBuf::from(std::env::args().nth(1).expect("usage: corpus_answers <DIR>"));
    if dir.exists() {
        std::fs::remove_dir_all(&dir).expect("the old answers can be removed");
    }
    let divergences = corpus::divergences();
    let mut index = Vec::new();
    for case in corpus::load_cases() {
        let input = String::from_utf8(corpus::call_bytes(&case)).unwrap();
        let answer_text = policy_core::api::call_with_data(&case.operation, input.as_bytes(), case.data.as_ref());
        let skip: Map<String, Value> = divergences
            .iter()
            .filter(|d| corpus::covers(&d.case, &case.name))
            .map(|d| (d.runner.clone(), Value::String(d.reason.clone())))
            .collect();
        let entry = json!({
            "name": case.name,
            "operation": case.operation,
            "inputText": input,
            "data": case.data,
            "answer": serde_json::from_str::<Value>(&answer_text).unwrap(),
            "answerText": answer_text,
            "skip": skip,
        });
        let path = dir.join(format!("{}.json", case.name));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, serde_json::to_vec_pretty(&entry).unwrap()).unwrap();
        index.push(entry);
    }
    std::fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
    println!("{} answers in {}", index.len(), dir.display());
}
