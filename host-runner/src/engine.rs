//! The wasm host: runs the policy module on the Open Policy Agent wasm ABI, sandboxed.
//!
//! One [`PolicyEngine`] per process compiles the module once. Every evaluation gets a fresh `Store` and memory,
//! a fuel budget (a module that loops is stopped) and a memory limit (a module that grows without bound is
//! stopped), and every way it can fail maps to one [`EngineError`] variant. The host speaks only the OPA ABI, so
//! any module OPA's SDKs can load runs here, and ours runs there.
//!
//! This module must not know the domain: it moves bytes in and out of entrypoints by name.

use serde::Deserialize;
use serde_json::value::RawValue;
use std::collections::BTreeMap;
use std::path::Path;
use wasmtime::{
    Caller, Config, Engine, Extern, Func, Instance, Memory, MemoryType, Module, ResourceLimiter, Store, Trap, Val,
};

/// The policy module built from this repository's `policy-wasm`, embedded at build time.
pub static EMBEDDED_POLICY: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/policy.wasm"));

/// The same module compiled to native code at build time, with [`module_build::engine_config`]'s configuration.
static EMBEDDED_NATIVE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/policy.cwasm"));

const PAGE: usize = 65_536;

/// Resource limits of one evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Fuel units (about one per wasm instruction).
    pub fuel: u64,
    /// Largest linear memory, in bytes.
    pub memory_bytes: usize,
    /// Largest input accepted, in bytes.
    pub input_bytes: usize,
    /// Largest answer accepted, in bytes.
    pub answer_bytes: usize,
}

impl Default for Limits {
    /// Sized for the largest decision the policy accepts (10 000 instances) with room to spare, and well inside
    /// the 256 MiB a Kratix pipeline container gets by default.
    fn default() -> Self {
        Self { fuel: 20_000_000_000, memory_bytes: 192 << 20, input_bytes: 48 << 20, answer_bytes: 96 << 20 }
    }
}

/// Why an evaluation (or loading the module) failed.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The bytes are not a valid wasm module.
    #[error("the policy module is not valid wasm: {0}")]
    InvalidModule(String),
    /// The module is wasm but not an OPA-ABI policy this host can drive.
    #[error("the policy module does not implement the OPA wasm ABI: {0}")]
    Abi(String),
    /// The entrypoint name is not one the module exports.
    #[error("the policy module has no entrypoint `{0}`")]
    UnknownEntrypoint(String),
    /// The input is larger than the limit.
    #[error("the policy input is {size} bytes; the limit is {limit}")]
    InputTooLarge {
        /// Input size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The fuel ran out: the module looped, or the input needs more work than allowed.
    #[error("the policy ran out of fuel after {limit} units: it did not finish (a loop, or an input far too large)")]
    OutOfFuel {
        /// The fuel limit.
        limit: u64,
    },
    /// The module wanted more memory than allowed.
    #[error("the policy exceeded its memory limit of {limit_mib} MiB")]
    MemoryLimit {
        /// The limit in MiB.
        limit_mib: usize,
    },
    /// The module called `opa_abort`.
    #[error("the policy aborted: {0}")]
    Aborted(String),
    /// The module trapped.
    #[error("the policy trapped: {0}")]
    Trapped(String),
    /// The module returned something that is not an OPA result set holding one result.
    #[error("the policy returned a malformed answer: {0}")]
    MalformedAnswer(String),
    /// The module could not parse the `data` document (`opa_json_parse` returned 0).
    #[error("the policy module refused the data document: {0}")]
    DataRejected(String),
}

impl EngineError {
    /// Stable machine code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidModule(_) => "PolicyModuleInvalid",
            Self::Abi(_) => "PolicyAbiMismatch",
            Self::UnknownEntrypoint(_) => "PolicyUnknownEntrypoint",
            Self::InputTooLarge { .. } => "PolicyInputTooLarge",
            Self::OutOfFuel { .. } => "PolicyOutOfFuel",
            Self::MemoryLimit { .. } => "PolicyMemoryLimit",
            Self::Aborted(_) => "PolicyAborted",
            Self::Trapped(_) => "PolicyTrapped",
            Self::MalformedAnswer(_) => "PolicyMalformedAnswer",
            Self::DataRejected(_) => "PolicyDataRejected",
        }
    }
}

/// How the host satisfies each import of the module, in import order.
#[derive(Debug, Clone)]
enum ImportKind {
    Memory,
    Abort,
    Println,
    /// `opa_builtin0..4`: this host provides no builtins; a call traps with a clear message.
    Builtin(wasmtime::FuncType),
}

/// What one evaluation used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    /// Fuel units consumed (instantiation included).
    pub fuel: u64,
    /// Size of linear memory at the end (the peak: it never shrinks).
    pub memory_bytes: usize,
}

/// Per-evaluation state.
struct State {
    limiter: Limiter,
    abort: Option<String>,
}

struct Limiter {
    max_memory: usize,
    denied: bool,
}

impl ResourceLimiter for Limiter {
    fn memory_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        let allowed = desired <= self.max_memory;
        self.denied |= !allowed;
        Ok(allowed)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= 10_000)
    }
}

/// A compiled policy module, ready to evaluate.
pub struct PolicyEngine {
    engine: Engine,
    module: Module,
    imports: Vec<ImportKind>,
    memory_min_pages: u64,
    entrypoints: BTreeMap<String, i32>,
    limits: Limits,
}

impl std::fmt::Debug for PolicyEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicyEngine").field("entrypoints", &self.entrypoints).field("limits", &self.limits).finish()
    }
}

/// One live instance of the module.
struct Session {
    store: Store<State>,
    instance: Instance,
    memory: Memory,
}

impl PolicyEngine {
    /// Loads the module embedded in this binary: its precompiled native code when this CPU can run it, otherwise
    /// compiled now from the embedded `.wasm`.
    pub fn embedded(limits: Limits) -> Result<Self, EngineError> {
        let engine = new_engine()?;
        // SAFETY: these bytes were produced by `Engine::precompile_module` in this crate's build script, with the
        // same wasmtime version and configuration, and are embedded read-only in the binary; wasmtime checks the
        // version, configuration and CPU features and refuses (we then compile) on any mismatch.
        let module = match unsafe { Module::deserialize(&engine, EMBEDDED_NATIVE) } {
            Ok(module) => module,
            Err(_) => compile(&engine, EMBEDDED_POLICY)?,
        };
        Self::from_module(engine, module, limits)
    }

    /// Loads a module from a file (`--module`).
    pub fn from_file(path: &Path, limits: Limits) -> Result<Self, EngineError> {
        let bytes = std::fs::read(path)
            .map_err(|e| EngineError::InvalidModule(format!("cannot read `{}`: {e}", path.display())))?;
        Self::from_bytes(&bytes, limits)
    }

    /// Compiles a module and checks that it speaks the OPA ABI (1.2 or later: the `opa_eval` fast path).
    pub fn from_bytes(bytes: &[u8], limits: Limits) -> Result<Self, EngineError> {
        let engine = new_engine()?;
        let module = compile(&engine, bytes)?;
        Self::from_module(engine, module, limits)
    }

    fn from_module(engine: Engine, module: Module, limits: Limits) -> Result<Self, EngineError> {
        let mut imports = Vec::new();
        let mut memory_min_pages = None;
        for import in module.imports() {
            let kind = match (import.module(), import.name(), import.ty()) {
                ("env", "memory", wasmtime::ExternType::Memory(m)) => {
                    if m.is_64() || m.is_shared() {
                        return Err(EngineError::Abi("`env.memory` must be a plain 32-bit memory".into()));
                    }
                    memory_min_pages = Some(m.minimum());
                    ImportKind::Memory
                }
                ("env", "opa_abort", wasmtime::ExternType::Func(_)) => ImportKind::Abort,
                ("env", "opa_println", wasmtime::ExternType::Func(_)) => ImportKind::Println,
                ("env", name, wasmtime::ExternType::Func(f)) if name.starts_with("opa_builtin") => {
                    ImportKind::Builtin(f)
                }
                (m, n, _) => return Err(EngineError::Abi(format!("unexpected import `{m}.{n}`"))),
            };
            imports.push(kind);
        }
        let memory_min_pages =
            memory_min_pages.ok_or_else(|| EngineError::Abi("the module does not import `env.memory`".into()))?;
        let mut this = Self { engine, module, imports, memory_min_pages, entrypoints: BTreeMap::new(), limits };

        let mut session = this.instantiate()?;
        let version = this.global_i32(&mut session, "opa_wasm_abi_version")?;
        let minor = this.global_i32(&mut session, "opa_wasm_abi_minor_version")?;
        if version != 1 || minor < 2 {
            return Err(EngineError::Abi(format!(
                "ABI version {version}.{minor}; this host needs 1.2 or later (the `opa_eval` fast path)"
            )));
        }
        let entrypoints_fn = session
            .instance
            .get_typed_func::<(), i32>(&mut session.store, "entrypoints")
            .map_err(|e| EngineError::Abi(format!("export `entrypoints`: {e}")))?;
        let dump = session
            .instance
            .get_typed_func::<i32, i32>(&mut session.store, "opa_json_dump")
            .map_err(|e| EngineError::Abi(format!("export `opa_json_dump`: {e}")))?;
        let value = entrypoints_fn.call(&mut session.store, ()).map_err(|e| this.trap(e, &session.store))?;
        let text = dump.call(&mut session.store, value).map_err(|e| this.trap(e, &session.store))?;
        let raw = read_c_string(session.memory.data(&session.store), text, this.limits.answer_bytes)?;
        this.entrypoints = serde_json::from_slice(raw)
            .map_err(|e| EngineError::Abi(format!("`entrypoints()` is not an object of ids: {e}")))?;
        Ok(this)
    }

    /// The module's entrypoints, by name.
    pub fn entrypoints(&self) -> &BTreeMap<String, i32> {
        &self.entrypoints
    }

    /// The limits of each evaluation.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Evaluates `entrypoint` on the JSON `input`; returns the JSON of the single `result`.
    pub fn evaluate(&self, entrypoint: &str, input: &[u8]) -> Result<Vec<u8>, EngineError> {
        self.evaluate_metered(entrypoint, input).map(|(answer, _)| answer)
    }

    /// Like [`PolicyEngine::evaluate`], and also reports what the evaluation used.
    pub fn evaluate_metered(&self, entrypoint: &str, input: &[u8]) -> Result<(Vec<u8>, Usage), EngineError> {
        self.evaluate_with_data(entrypoint, input, None)
    }

    /// Evaluates `entrypoint` on the JSON `input` with OPA's `data` document (JSON; `None` leaves it undefined),
    /// loaded the way OPA's SDKs load it: `opa_malloc`, `opa_json_parse`, then the heap pointer is saved above it.
    pub fn evaluate_with_data(
        &self,
        entrypoint: &str,
        input: &[u8],
        data: Option<&[u8]>,
    ) -> Result<(Vec<u8>, Usage), EngineError> {
        let id = *self.entrypoints.get(entrypoint).ok_or_else(|| EngineError::UnknownEntrypoint(entrypoint.into()))?;
        let total = input.len() + data.map_or(0, <[u8]>::len);
        if total > self.limits.input_bytes {
            return Err(EngineError::InputTooLarge { size: total, limit: self.limits.input_bytes });
        }
        let mut s = self.instantiate()?;
        let heap_ptr_get = self.func::<(), i32>(&mut s, "opa_heap_ptr_get")?;
        let opa_eval = self.func::<(i32, i32, i32, i32, i32, i32, i32), i32>(&mut s, "opa_eval")?;
        let data_addr = match data {
            Some(data) => self.load_json(&mut s, data)?,
            None => 0,
        };

        let heap = heap_ptr_get.call(&mut s.store, ()).map_err(|e| self.trap(e, &s.store))?;
        let start = usize::try_from(heap).map_err(|_| EngineError::Abi("negative heap pointer".into()))?;
        let end = start + input.len();
        let have = s.memory.data_size(&s.store);
        if end > have {
            let pages = (end - have).div_ceil(PAGE) as u64;
            s.memory.grow(&mut s.store, pages).map_err(|_| self.memory_error())?;
        }
        s.memory.write(&mut s.store, start, input).map_err(|e| EngineError::Trapped(e.to_string()))?;
        let len = i32::try_from(input.len())
            .map_err(|_| EngineError::InputTooLarge { size: input.len(), limit: self.limits.input_bytes })?;
        let result = opa_eval
            .call(&mut s.store, (0, id, data_addr, heap, len, heap + len, 0))
            .map_err(|e| self.trap(e, &s.store))?;
        let raw = read_c_string(s.memory.data(&s.store), result, self.limits.answer_bytes)?;
        let usage = Usage {
            fuel: self.limits.fuel.saturating_sub(s.store.get_fuel().unwrap_or(0)),
            memory_bytes: s.memory.data_size(&s.store),
        };
        Ok((extract_result(raw)?, usage))
    }

    /// Copies JSON into the module's heap and parses it there; returns the value address.
    fn load_json(&self, s: &mut Session, json: &[u8]) -> Result<i32, EngineError> {
        let malloc = self.func::<i32, i32>(s, "opa_malloc")?;
        let parse = self.func::<(i32, i32), i32>(s, "opa_json_parse")?;
        let len = i32::try_from(json.len())
            .map_err(|_| EngineError::InputTooLarge { size: json.len(), limit: self.limits.input_bytes })?;
        let addr = malloc.call(&mut s.store, len).map_err(|e| self.trap(e, &s.store))?;
        let start = usize::try_from(addr).map_err(|_| EngineError::Abi("negative heap address".into()))?;
        s.memory.write(&mut s.store, start, json).map_err(|e| EngineError::Trapped(e.to_string()))?;
        match parse.call(&mut s.store, (addr, len)).map_err(|e| self.trap(e, &s.store))? {
            0 => Err(EngineError::DataRejected("`opa_json_parse` returned 0: not valid JSON".into())),
            value => Ok(value),
        }
    }

    fn instantiate(&self) -> Result<Session, EngineError> {
        let mut store = Store::new(
            &self.engine,
            State { limiter: Limiter { max_memory: self.limits.memory_bytes, denied: false }, abort: None },
        );
        store.limiter(|s| &mut s.limiter);
        store.set_fuel(self.limits.fuel).map_err(|e| EngineError::Abi(e.to_string()))?;
        let memory = Memory::new(&mut store, MemoryType::new(self.memory_min_pages as u32, None))
            .map_err(|_| self.memory_error())?;
        let mut externs: Vec<Extern> = Vec::with_capacity(self.imports.len());
        for kind in &self.imports {
            let ext = match kind {
                ImportKind::Memory => memory.into(),
                ImportKind::Abort => Func::wrap(&mut store, move |mut caller: Caller<'_, State>, addr: i32| {
                    let text = read_c_string(memory.data(&caller), addr, 64 << 10)
                        .map(|b| String::from_utf8_lossy(b).into_owned())
                        .unwrap_or_else(|_| "(unreadable message)".into());
                    caller.data_mut().abort = Some(text.clone());
                    Err::<(), _>(wasmtime::Error::msg(format!("opa_abort: {text}")))
                })
                .into(),
                ImportKind::Println => Func::wrap(&mut store, |_: Caller<'_, State>, _addr: i32| {}).into(),
                ImportKind::Builtin(ty) => Func::new(&mut store, ty.clone(), |_, _: &[Val], _: &mut [Val]| {
                    Err(wasmtime::Error::msg("this host provides no OPA builtins"))
                })
                .into(),
            };
            externs.push(ext);
        }
        let instance = Instance::new(&mut store, &self.module, &externs).map_err(|e| {
            if e.downcast_ref::<Trap>().is_some() || store.data().limiter.denied {
                self.trap(e, &store)
            } else {
                EngineError::Abi(format!("instantiation failed: {e:#}"))
            }
        })?;
        Ok(Session { store, instance, memory })
    }

    fn func<P: wasmtime::WasmParams, R: wasmtime::WasmResults>(
        &self,
        s: &mut Session,
        name: &str,
    ) -> Result<wasmtime::TypedFunc<P, R>, EngineError> {
        s.instance
            .get_typed_func::<P, R>(&mut s.store, name)
            .map_err(|e| EngineError::Abi(format!("export `{name}`: {e}")))
    }

    fn global_i32(&self, s: &mut Session, name: &str) -> Result<i32, EngineError> {
        let global = s
            .instance
            .get_global(&mut s.store, name)
            .ok_or_else(|| EngineError::Abi(format!("missing exported global `{name}`")))?;
        global.get(&mut s.store).i32().ok_or_else(|| EngineError::Abi(format!("global `{name}` is not an i32")))
    }

    fn memory_error(&self) -> EngineError {
        EngineError::MemoryLimit { limit_mib: self.limits.memory_bytes >> 20 }
    }

    /// Maps a failed call to the reason it failed.
    fn trap(&self, err: wasmtime::Error, store: &Store<State>) -> EngineError {
        if store.data().limiter.denied {
            return self.memory_error();
        }
        if let Some(message) = &store.data().abort {
            return EngineError::Aborted(message.clone());
        }
        match err.downcast_ref::<Trap>() {
            Some(Trap::OutOfFuel) => EngineError::OutOfFuel { limit: self.limits.fuel },
            Some(trap) => EngineError::Trapped(trap.to_string()),
            None => EngineError::Trapped(format!("{err:#}")),
        }
    }
}

fn new_engine() -> Result<Engine, EngineError> {
    let mut config = Config::new();
    module_build::engine_config(&mut config);
    Engine::new(&config).map_err(|e| EngineError::InvalidModule(format!("wasmtime engine: {e}")))
}

fn compile(engine: &Engine, bytes: &[u8]) -> Result<Module, EngineError> {
    Module::new(engine, bytes).map_err(|e| EngineError::InvalidModule(format!("{e:#}")))
}

/// Reads the NUL-terminated string at `addr`, at most `limit` bytes long.
fn read_c_string(memory: &[u8], addr: i32, limit: usize) -> Result<&[u8], EngineError> {
    let start = usize::try_from(addr)
        .ok()
        .filter(|a| *a != 0 && *a < memory.len())
        .ok_or_else(|| EngineError::MalformedAnswer(format!("string address {addr} is outside memory")))?;
    let tail = memory.get(start..).unwrap_or_default();
    let window = tail.get(..limit.min(tail.len())).unwrap_or_default();
    let len = window.iter().position(|b| *b == 0).ok_or_else(|| {
        EngineError::MalformedAnswer(format!("no string terminator within {limit} bytes (answer too large?)"))
    })?;
    Ok(window.get(..len).unwrap_or_default())
}

/// Takes the single `result` out of an OPA result set `[{"result": ...}]` without re-serialising it.
fn extract_result(raw: &[u8]) -> Result<Vec<u8>, EngineError> {
    #[derive(Deserialize)]
    struct Binding<'a> {
        #[serde(borrow)]
        result: &'a RawValue,
    }
    let set: Vec<Binding<'_>> =
        serde_json::from_slice(raw).map_err(|e| EngineError::MalformedAnswer(format!("not an OPA result set: {e}")))?;
    match set.as_slice() {
        [one] => Ok(one.result.get().as_bytes().to_vec()),
        [] => Err(EngineError::MalformedAnswer("the result set is empty (the decision is undefined)".into())),
        _ => Err(EngineError::MalformedAnswer(format!("the result set has {} results; expected one", set.len()))),
    }
}
