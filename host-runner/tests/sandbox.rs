//! The sandbox: fuel, memory and answer checks stop a misbehaving module with a clear error, and the host keeps
//! working afterwards (every evaluation gets a fresh store).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use host_runner::engine::{EngineError, Limits, PolicyEngine};

/// A module that speaks just enough of the OPA ABI to load, and misbehaves on request: the input's length picks
/// the behaviour (1 loop, 2 grow memory, 3 trap, 4 abort, 5 non-JSON answer, 6 empty result set, 7 recurse
/// without end, 8 answer outside memory, 9 answer without a terminator, 10 two results, 11 call a builtin the host
/// does not provide, else a valid answer).
const ROGUE: &str = r#"
(module
  (import "env" "memory" (memory 2))
  (import "env" "opa_abort" (func $abort (param i32)))
  (import "env" "opa_builtin0" (func $builtin (param i32 i32) (result i32)))
  (global (export "opa_wasm_abi_version") i32 (i32.const 1))
  (global (export "opa_wasm_abi_minor_version") i32 (i32.const 3))
  (data (i32.const 1024) "{\"rogue\":0}\00")
  (data (i32.const 2048) "[{\"result\":{\"ok\":true}}]\00")
  (data (i32.const 2560) "this is not json\00")
  (data (i32.const 3072) "[]\00")
  (data (i32.const 3584) "rogue gave up\00")
  (data (i32.const 4096) "[{\"result\":1},{\"result\":2}]\00")
  (func $recurse (param i32) (result i32) (call $recurse (i32.add (local.get 0) (i32.const 1))))
  (func (export "entrypoints") (result i32) (i32.const 1))
  (func (export "opa_json_dump") (param i32) (result i32) (i32.const 1024))
  (func (export "opa_heap_ptr_get") (result i32) (i32.const 65536))
  (func (export "opa_eval") (param i32 i32 i32 i32 i32 i32 i32) (result i32)
    (if (i32.eq (local.get 4) (i32.const 1)) (then (loop $forever (br $forever))))
    (if (i32.eq (local.get 4) (i32.const 2)) (then
      (loop $grow (br_if $grow (i32.ne (memory.grow (i32.const 16)) (i32.const -1))))
      unreachable))
    (if (i32.eq (local.get 4) (i32.const 3)) (then unreachable))
    (if (i32.eq (local.get 4) (i32.const 4)) (then (call $abort (i32.const 3584)) unreachable))
    (if (i32.eq (local.get 4) (i32.const 5)) (then (return (i32.const 2560))))
    (if (i32.eq (local.get 4) (i32.const 6)) (then (return (i32.const 3072))))
    (if (i32.eq (local.get 4) (i32.const 7)) (then (return (call $recurse (i32.const 0)))))
    (if (i32.eq (local.get 4) (i32.const 8)) (then (return (i32.const 0x7ffffff0))))
    (if (i32.eq (local.get 4) (i32.const 9)) (then
      (memory.fill (i32.const 8192) (i32.const 65) (i32.sub (i32.mul (memory.size) (i32.const 65536)) (i32.const 8192)))
      (return (i32.const 8192))))
    (if (i32.eq (local.get 4) (i32.const 10)) (then (return (i32.const 4096))))
    (if (i32.eq (local.get 4) (i32.const 11)) (then (return (call $builtin (i32.const 0) (i32.const 0)))))
    (i32.const 2048))
)
"#;

fn rogue() -> PolicyEngine {
    // wasmtime reads the text format directly (feature `wat`, enabled for tests).
    let wasm = ROGUE.as_bytes();
    let limits = Limits { fuel: 50_000_000, memory_bytes: 8 << 20, ..Limits::default() };
    PolicyEngine::from_bytes(wasm, limits).expect("the rogue module loads")
}

fn assert_still_works(engine: &PolicyEngine) {
    let answer = engine.evaluate("rogue", br#"{"fine":true}"#).expect("a following evaluation succeeds");
    assert_eq!(answer, br#"{"ok":true}"#);
}

#[test]
fn endless_loop_is_stopped_by_fuel() {
    let engine = rogue();
    let err = engine.evaluate("rogue", b"1").unwrap_err();
    assert!(matches!(err, EngineError::OutOfFuel { limit: 50_000_000 }), "{err:?}");
    assert_eq!(err.code(), "PolicyOutOfFuel");
    assert!(err.to_string().contains("ran out of fuel"), "{err}");
    assert_still_works(&engine);
}

#[test]
fn unbounded_memory_growth_is_stopped_by_the_limit() {
    let engine = rogue();
    let err = engine.evaluate("rogue", b"12").unwrap_err();
    assert!(matches!(err, EngineError::MemoryLimit { limit_mib: 8 }), "{err:?}");
    assert_still_works(&engine);
}

#[test]
fn traps_and_aborts_are_reported() {
    let engine = rogue();
    let err = engine.evaluate("rogue", b"123").unwrap_err();
    assert!(matches!(&err, EngineError::Trapped(msg) if msg.contains("unreachable")), "{err:?}");
    assert_still_works(&engine);
    let err = engine.evaluate("rogue", b"1234").unwrap_err();
    assert!(matches!(&err, EngineError::Aborted(msg) if msg == "rogue gave up"), "{err:?}");
    assert_still_works(&engine);
}

#[test]
fn malformed_answers_are_refused() {
    let engine = rogue();
    let err = engine.evaluate("rogue", b"12345").unwrap_err();
    assert!(matches!(&err, EngineError::MalformedAnswer(m) if m.contains("not an OPA result set")), "{err:?}");
    let err = engine.evaluate("rogue", b"123456").unwrap_err();
    assert!(matches!(&err, EngineError::MalformedAnswer(m) if m.contains("empty")), "{err:?}");
    assert_still_works(&engine);
}

#[test]
fn unknown_entrypoints_and_oversized_input_are_refused_before_running() {
    let engine = rogue();
    assert!(matches!(engine.evaluate("nope", b"{}"), Err(EngineError::UnknownEntrypoint(_))));
    let limits = Limits { input_bytes: 4, ..Limits::default() };
    let small = PolicyEngine::from_bytes(ROGUE.as_bytes(), limits).unwrap();
    assert!(matches!(small.evaluate("rogue", b"12345"), Err(EngineError::InputTooLarge { size: 5, limit: 4 })));
}

#[test]
fn modules_that_do_not_speak_the_abi_are_refused_at_load() {
    let not_wasm = PolicyEngine::from_bytes(b"definitely not wasm", Limits::default()).unwrap_err();
    assert_eq!(not_wasm.code(), "PolicyModuleInvalid");
    let no_memory = "(module (func (export \"opa_eval\")))";
    let err = PolicyEngine::from_bytes(no_memory.as_bytes(), Limits::default()).unwrap_err();
    assert!(matches!(&err, EngineError::Abi(m) if m.contains("env.memory")), "{err:?}");
    let old_abi = ROGUE.replace("(i32.const 3))\n  (data", "(i32.const 1))\n  (data");
    let err = PolicyEngine::from_bytes(old_abi.as_bytes(), Limits::default()).unwrap_err();
    assert!(matches!(&err, EngineError::Abi(m) if m.contains("1.1")), "{err:?}");
    let wasi = "(module (import \"wasi_snapshot_preview1\" \"fd_write\" (func)))";
    let err = PolicyEngine::from_bytes(wasi.as_bytes(), Limits::default()).unwrap_err();
    assert!(matches!(&err, EngineError::Abi(m) if m.contains("unexpected import")), "{err:?}");
}

#[test]
fn the_real_policy_is_stopped_by_its_limits_too() {
    let input = std::fs::read(corpus::corpus_dir().join("routing/006-switch-blocked-by-players.yaml")).unwrap();
    let case: serde_json::Value = serde_saphyr::from_slice(&input).unwrap();
    let call = serde_json::to_vec(&case["call"]).unwrap();
    let fine = PolicyEngine::embedded(Limits::default()).unwrap();
    let (_, usage) = fine.evaluate_metered("foundry/license/route", &call).unwrap();
    // Enough fuel to load the module (which runs its start function) but not to decide.
    let (_, load) = fine.evaluate_metered("foundry/license/route", b"").unwrap();
    assert!(usage.fuel > 2 * load.fuel, "deciding costs more than an empty call: {usage:?} vs {load:?}");
    let starved = PolicyEngine::embedded(Limits { fuel: usage.fuel / 2, ..Limits::default() }).unwrap();
    let err = starved.evaluate("foundry/license/route", &call).unwrap_err();
    assert!(matches!(err, EngineError::OutOfFuel { .. }), "{err:?}");
    let cramped = PolicyEngine::embedded(Limits { memory_bytes: 1 << 20, ..Limits::default() }).unwrap();
    let big = vec![b' '; 2 << 20];
    assert!(matches!(cramped.evaluate("foundry/license/route", &big), Err(EngineError::MemoryLimit { .. })));
    let answer: serde_json::Value =
        serde_json::from_slice(&fine.evaluate("foundry/license/route", &call).unwrap()).unwrap();
    assert_eq!(answer["outcome"], "success");
}

#[test]
fn runaway_recursion_is_stopped_by_the_stack_limit() {
    let engine = rogue();
    let err = engine.evaluate("rogue", b"1234567").unwrap_err();
    assert!(matches!(&err, EngineError::Trapped(m) if m.contains("stack")), "{err:?}");
    assert_eq!(err.code(), "PolicyTrapped");
    assert_still_works(&engine);
}

#[test]
fn answers_outside_memory_unterminated_or_with_several_results_are_refused() {
    let engine = rogue();
    let err = engine.evaluate("rogue", b"12345678").unwrap_err();
    assert!(matches!(&err, EngineError::MalformedAnswer(m) if m.contains("outside memory")), "{err:?}");
    assert_still_works(&engine);
    let err = engine.evaluate("rogue", b"123456789").unwrap_err();
    assert!(matches!(&err, EngineError::MalformedAnswer(m) if m.contains("no string terminator")), "{err:?}");
    assert_still_works(&engine);
    let err = engine.evaluate("rogue", b"1234567890").unwrap_err();
    assert!(matches!(&err, EngineError::MalformedAnswer(m) if m.contains("2 results")), "{err:?}");
    assert_eq!(err.code(), "PolicyMalformedAnswer");
    assert_still_works(&engine);
}

#[test]
fn a_builtin_the_host_does_not_provide_is_a_clear_error() {
    let engine = rogue();
    let err = engine.evaluate("rogue", b"12345678901").unwrap_err();
    assert!(matches!(&err, EngineError::Trapped(m) if m.contains("no OPA builtins")), "{err:?}");
    assert_still_works(&engine);
}

/// A module that misbehaves while it is loaded, before any evaluation: in its start function or in `entrypoints`.
fn loading(body: &str, start: bool) -> String {
    format!(
        r#"(module
  (import "env" "memory" (memory 2))
  (global (export "opa_wasm_abi_version") i32 (i32.const 1))
  (global (export "opa_wasm_abi_minor_version") i32 (i32.const 3))
  (func $misbehave {body})
  {}
  (func (export "entrypoints") (result i32) {} (i32.const 0))
  (func (export "opa_json_dump") (param i32) (result i32) (i32.const 0))
  (func (export "opa_heap_ptr_get") (result i32) (i32.const 65536))
  (func (export "opa_eval") (param i32 i32 i32 i32 i32 i32 i32) (result i32) (i32.const 0)))"#,
        if start { "(start $misbehave)" } else { "" },
        if start { "" } else { "(call $misbehave)" },
    )
}

#[test]
fn modules_that_misbehave_while_loading_are_stopped_too() {
    let limits = Limits { fuel: 50_000_000, memory_bytes: 8 << 20, ..Limits::default() };
    let endless = "(loop $forever (br $forever))";
    let grow = "(loop $grow (br_if $grow (i32.ne (memory.grow (i32.const 16)) (i32.const -1)))) unreachable";
    for start in [true, false] {
        let err = PolicyEngine::from_bytes(loading(endless, start).as_bytes(), limits).unwrap_err();
        assert!(matches!(err, EngineError::OutOfFuel { .. }), "start {start}: {err:?}");
        let err = PolicyEngine::from_bytes(loading(grow, start).as_bytes(), limits).unwrap_err();
        assert!(matches!(err, EngineError::MemoryLimit { limit_mib: 8 }), "start {start}: {err:?}");
        let err = PolicyEngine::from_bytes(loading("unreachable", start).as_bytes(), limits).unwrap_err();
        assert!(matches!(&err, EngineError::Trapped(m) if m.contains("unreachable")), "start {start}: {err:?}");
    }
    // The process is unharmed: the real policy still loads and decides.
    let fine = PolicyEngine::embedded(Limits::default()).unwrap();
    let answer: serde_json::Value =
        serde_json::from_slice(&fine.evaluate("foundry/license/route", b"{}").unwrap()).unwrap();
    assert_eq!(answer["outcome"], "failure");
}
