//! `cargo xtask bench`: the routing decision measured four ways in one run, with the results as ratios.
//!
//! For N = 1, 10, 100, 1 000 and 10 000 instances of one license it times the same call through native
//! `policy-core`, through the embedded `.wasm` in our wasmtime host (a fresh store per evaluation, as in
//! production), through the same rules in Rego evaluated by `regorus`, and through the `host-runner kratix` process running
//! the license workflow offline on equivalent YAML files (the pipeline container's program). Before timing, it checks that all four agree on the decision. It then reports time per
//! decision, ratios, time per instance (cost must grow linearly), peak memory, the module's size, compile and
//! instantiate time, and the start-to-exit time of `preview` on the example platform, and checks the targets.
//!
//! This is a measuring tool, not a test: timings depend on the machine, so they are compared only with each
//! other within one run.

// A command-line report: it prints, and a broken setup should stop it loudly.
#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use bench::rego::RegoRouter;
use bench::{facts, workload};
use host_runner::engine::{EMBEDDED_POLICY, Limits, PolicyEngine};
use std::alloc::{GlobalAlloc, Layout, System};
use std::fmt::Write as _;
use std::hint::black_box;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering::Relaxed};
use std::time::{Duration, Instant};

const ROUTE: &str = "foundry/license/route";

/// Counts heap bytes while `COUNTING` is on, so the peak of one evaluation can be read. Off while timing.
struct CountingAlloc;

static COUNTING: AtomicBool = AtomicBool::new(false);
static CURRENT: AtomicI64 = AtomicI64::new(0);
static PEAK: AtomicI64 = AtomicI64::new(0);

// SAFETY: forwards every call to the system allocator unchanged; the counters only observe sizes.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Relaxed) {
            let now = CURRENT.fetch_add(layout.size() as i64, Relaxed) + layout.size() as i64;
            PEAK.fetch_max(now, Relaxed);
        }
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if COUNTING.load(Relaxed) {
            CURRENT.fetch_sub(layout.size() as i64, Relaxed);
        }
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.load(Relaxed) {
            let now = CURRENT.fetch_add(new_size as i64 - layout.size() as i64, Relaxed) + new_size as i64
                - layout.size() as i64;
            PEAK.fetch_max(now, Relaxed);
        }
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

/// Runs `f` once and returns its result and the peak heap it used above what was live before.
fn heap_peak<R>(f: impl FnOnce() -> R) -> (R, u64) {
    CURRENT.store(0, Relaxed);
    PEAK.store(0, Relaxed);
    COUNTING.store(true, Relaxed);
    let r = f();
    COUNTING.store(false, Relaxed);
    (r, PEAK.load(Relaxed).max(0) as u64)
}

/// The median of repeated runs of `f` (after one warm-up run), run until `budget` is spent and at least `min` runs.
fn median_time(budget: Duration, min: usize, mut f: impl FnMut()) -> Duration {
    f();
    let started = Instant::now();
    let mut samples = Vec::new();
    while samples.len() < min || (started.elapsed() < budget && samples.len() < 10_000) {
        let t = Instant::now();
        f();
        samples.push(t.elapsed());
    }
    samples.sort();
    samples[samples.len() / 2]
}

/// A child process's wall time and peak resident memory.
struct ProcessRun {
    wall: Duration,
    max_rss: u64,
    status: i32,
}

/// Runs a command to its end, measuring wall time and, through `wait4`, the peak RSS of that one process.
///
/// Linux records the spawning process's peak RSS into the child's when the child calls `exec` (the child starts
/// on the parent's memory), so a large parent inflates the figure. The bench is large (Rego, the module, the
/// workloads), so it runs the command through a fresh small copy of itself (`--measure`), which does the spawn and
/// reports the numbers.
fn run_process(cmd: &Command) -> ProcessRun {
    let mut helper = Command::new(std::env::current_exe().expect("the bench knows its path"));
    helper.arg("--measure").arg(cmd.get_program()).args(cmd.get_args());
    if let Some(dir) = cmd.get_current_dir() {
        helper.current_dir(dir);
    }
    let out = helper.stderr(Stdio::inherit()).output().expect("the measuring helper runs");
    let text = String::from_utf8_lossy(&out.stdout);
    let fields: Vec<u64> = text.split_whitespace().filter_map(|f| f.parse().ok()).collect();
    assert_eq!(fields.len(), 3, "the measuring helper said `{text}`");
    ProcessRun { wall: Duration::from_nanos(fields[0]), max_rss: fields[1], status: fields[2] as i32 }
}

/// `--measure PROGRAM ARGS...`: runs the program with output discarded and prints `wall_ns max_rss_bytes status`.
fn measure_child(program: &str, args: &[String]) {
    let started = Instant::now();
    let child = Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the process starts");
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: an all-zero `rusage` is a valid value of the plain C struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `pid` is our own unwaited child; both pointers are valid for writes.
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let wall = started.elapsed();
    assert_eq!(waited, pid, "wait4 failed");
    // The process is reaped; `child` must not wait again, so it is forgotten.
    std::mem::forget(child);
    println!("{} {} {}", wall.as_nanos(), usage.ru_maxrss as u64 * 1024, libc::WEXITSTATUS(status));
}

fn fmt_time(d: Duration) -> String {
    let ns = d.as_nanos() as f64;
    if ns < 1e3 {
        format!("{ns:.0} ns")
    } else if ns < 1e6 {
        format!("{:.1} µs", ns / 1e3)
    } else if ns < 1e9 {
        format!("{:.2} ms", ns / 1e6)
    } else {
        format!("{:.2} s", ns / 1e9)
    }
}

fn fmt_bytes(b: u64) -> String {
    let b = b as f64;
    if b < 1024.0 * 1024.0 { format!("{:.0} KiB", b / 1024.0) } else { format!("{:.1} MiB", b / 1024.0 / 1024.0) }
}

fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64()
}

struct Options {
    host_runner: PathBuf,
    root: PathBuf,
    sizes: Vec<usize>,
    budget: Duration,
    out: Option<PathBuf>,
    module: Option<PathBuf>,
}

fn options() -> Options {
    let mut args = std::env::args().skip(1);
    let mut o = Options {
        host_runner: PathBuf::from("target/release/host-runner"),
        root: PathBuf::from("."),
        sizes: vec![1, 10, 100, 1_000, 10_000],
        budget: Duration::from_millis(1500),
        out: None,
        module: None,
    };
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--host-runner" => o.host_runner = args.next().expect("--host-runner PATH").into(),
            "--root" => o.root = args.next().expect("--root DIR").into(),
            "--out" => o.out = Some(args.next().expect("--out FILE").into()),
            "--module" => o.module = Some(args.next().expect("--module FILE").into()),
            "--quick" => {
                o.sizes = vec![1, 10, 100, 1_000];
                o.budget = Duration::from_millis(300);
            }
            other => panic!(
                "unknown argument `{other}`; usage: bench [--quick] [--host-runner PATH] [--root DIR] [--out FILE] [--module FILE]"
            ),
        }
    }
    o
}

struct Row {
    n: usize,
    native: Duration,
    wasm: Duration,
    wasm_unmetered: Duration,
    rego: Duration,
    process: Duration,
    native_heap: u64,
    wasm_linear: u64,
    wasm_host_heap: u64,
    rego_heap: u64,
    process_rss: u64,
}

fn measure(
    n: usize,
    o: &Options,
    engine: &PolicyEngine,
    unmetered: &Unmetered,
    rego: &mut RegoRouter,
    scratch: &Path,
) -> Row {
    let call = serde_json::to_vec(&workload::route_call(n)).unwrap();
    let call_text = std::str::from_utf8(&call).unwrap().to_owned();

    // The four ways must agree before they are compared.
    let native_answer = policy_core::call(ROUTE, &call);
    let (wasm_answer, usage) = engine.evaluate_metered(ROUTE, &call).expect("the module decides");
    assert_eq!(native_answer.as_bytes(), wasm_answer.as_slice(), "wasm and native differ at N = {n}");
    let native_value: serde_json::Value = serde_json::from_str(&native_answer).unwrap();
    assert_eq!(native_value["outcome"], "success", "N = {n}: {native_answer:.300}");
    let rego_decision: serde_json::Value = serde_json::from_str(&rego.decide(&call_text).unwrap()).unwrap();
    assert_eq!(facts::of(&rego_decision), facts::of(&native_value["decision"]), "Rego differs at N = {n}");
    let dir = scratch.join(format!("n{n}"));
    let (platform, observations) = workload::write_preview_files(n, &dir).unwrap();
    // The license workflow exactly as a pipeline container runs it (the process that gets Kratix's 256 MiB), offline:
    // the license is the input object and the instances come from a snapshot instead of the API. (`preview` would
    // also render every instance's workload, about 16 KiB of manifests each: not the routing decision.)
    let pipeline_dir = dir.join("kratix");
    for sub in ["input", "output", "metadata"] {
        std::fs::create_dir_all(pipeline_dir.join(sub)).unwrap();
    }
    std::fs::copy(platform.join("license.yaml"), pipeline_dir.join("input/object.yaml")).unwrap();
    let mut pipeline = Command::new(&o.host_runner);
    pipeline
        .arg("kratix")
        .arg("--offline")
        .arg("--snapshot")
        .arg(platform.join("instances.yaml"))
        .arg("--observations")
        .arg(&observations)
        .arg("--input-dir")
        .arg(pipeline_dir.join("input"))
        .arg("--output-dir")
        .arg(pipeline_dir.join("output"))
        .arg("--metadata-dir")
        .arg(pipeline_dir.join("metadata"));
    let first = run_process(&pipeline);
    assert_eq!(first.status, 0, "host-runner kratix (license workflow, offline) failed at N = {n}");

    let (_, native_heap) = heap_peak(|| black_box(policy_core::call(ROUTE, &call)));
    let (_, wasm_host_heap) = heap_peak(|| black_box(engine.evaluate(ROUTE, &call).unwrap()));
    let (_, rego_heap) = heap_peak(|| black_box(rego.decide(&call_text).unwrap()));

    let native = median_time(o.budget, 5, || {
        black_box(policy_core::call(ROUTE, black_box(&call)));
    });
    let wasm = median_time(o.budget, 5, || {
        black_box(engine.evaluate(ROUTE, black_box(&call)).unwrap());
    });
    let result_set = unmetered.evaluate(&call);
    assert_eq!(
        result_set,
        format!(r#"[{{"result":{native_answer}}}]"#).into_bytes(),
        "unmetered wasm differs at N = {n}"
    );
    let wasm_unmetered = median_time(o.budget, 5, || {
        black_box(unmetered.evaluate(black_box(&call)));
    });
    let rego_time = median_time(o.budget, 3, || {
        black_box(rego.decide(black_box(&call_text)).unwrap());
    });
    let mut runs = Vec::new();
    let started = Instant::now();
    while runs.len() < 5 || (started.elapsed() < o.budget && runs.len() < 200) {
        runs.push(run_process(&pipeline));
    }
    let process_rss = runs.iter().map(|r| r.max_rss).max().unwrap_or(0);
    let mut walls: Vec<Duration> = runs.iter().map(|r| r.wall).collect();
    walls.sort();
    Row {
        n,
        native,
        wasm,
        wasm_unmetered,
        rego: rego_time,
        process: walls[walls.len() / 2],
        native_heap,
        wasm_linear: usage.memory_bytes as u64,
        wasm_host_heap,
        rego_heap,
        process_rss,
    }
}

/// Compile and instantiate times of the module, measured with the host's engine configuration.
fn module_costs(bytes: &[u8], budget: Duration) -> (Duration, Duration) {
    let mut config = wasmtime::Config::new();
    config.consume_fuel(true);
    let engine = wasmtime::Engine::new(&config).unwrap();
    let compile = median_time(budget, 3, || {
        black_box(wasmtime::Module::new(&engine, bytes).unwrap());
    });
    let module = wasmtime::Module::new(&engine, bytes).unwrap();
    let pages = module
        .imports()
        .find_map(|i| match i.ty() {
            wasmtime::ExternType::Memory(m) => Some(m.minimum() as u32),
            _ => None,
        })
        .unwrap();
    let instantiate = median_time(budget, 100, || {
        let mut store = wasmtime::Store::new(&engine, ());
        store.set_fuel(u64::MAX).unwrap();
        let memory = wasmtime::Memory::new(&mut store, wasmtime::MemoryType::new(pages, None)).unwrap();
        let abort = wasmtime::Func::wrap(&mut store, |_: i32| {});
        let imports: Vec<wasmtime::Extern> = module
            .imports()
            .map(|i| match i.ty() {
                wasmtime::ExternType::Memory(_) => memory.into(),
                _ => abort.into(),
            })
            .collect();
        black_box(wasmtime::Instance::new(&mut store, &module, &imports).unwrap());
    });
    (compile, instantiate)
}

/// The module driven like the host drives it (fresh store, the OPA fast path), but in an engine without fuel
/// metering: the difference to the host's time is what the fuel budget costs.
struct Unmetered {
    engine: wasmtime::Engine,
    module: wasmtime::Module,
    pages: u32,
    entrypoint: i32,
}

impl Unmetered {
    fn new(bytes: &[u8], entrypoint: i32) -> Self {
        let engine = wasmtime::Engine::new(&wasmtime::Config::new()).unwrap();
        let module = wasmtime::Module::new(&engine, bytes).unwrap();
        let pages = module
            .imports()
            .find_map(|i| match i.ty() {
                wasmtime::ExternType::Memory(m) => Some(m.minimum() as u32),
                _ => None,
            })
            .unwrap();
        Self { engine, module, pages, entrypoint }
    }

    fn evaluate(&self, input: &[u8]) -> Vec<u8> {
        let mut store = wasmtime::Store::new(&self.engine, ());
        let memory = wasmtime::Memory::new(&mut store, wasmtime::MemoryType::new(self.pages, None)).unwrap();
        let abort = wasmtime::Func::wrap(&mut store, |_: i32| {});
        let imports: Vec<wasmtime::Extern> = self
            .module
            .imports()
            .map(|i| match i.ty() {
                wasmtime::ExternType::Memory(_) => memory.into(),
                _ => abort.into(),
            })
            .collect();
        let instance = wasmtime::Instance::new(&mut store, &self.module, &imports).unwrap();
        let heap =
            instance.get_typed_func::<(), i32>(&mut store, "opa_heap_ptr_get").unwrap().call(&mut store, ()).unwrap();
        let start = heap as usize;
        let end = start + input.len();
        let have = memory.data_size(&store);
        if end > have {
            memory.grow(&mut store, (end - have).div_ceil(65_536) as u64).unwrap();
        }
        memory.write(&mut store, start, input).unwrap();
        let eval = instance.get_typed_func::<(i32, i32, i32, i32, i32, i32, i32), i32>(&mut store, "opa_eval").unwrap();
        let len = input.len() as i32;
        let at = eval.call(&mut store, (0, self.entrypoint, 0, heap, len, heap + len, 0)).unwrap() as usize;
        let data = memory.data(&store);
        let n = data[at..].iter().position(|b| *b == 0).unwrap();
        data[at..at + n].to_vec()
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [flag, program, rest @ ..] = args.as_slice()
        && flag == "--measure"
    {
        measure_child(program, rest);
        return;
    }
    // `--native-loop N ITERATIONS`: only the native decision, for a profiler (e.g. valgrind --tool=callgrind).
    if let [flag, n, iterations] = args.as_slice()
        && flag == "--native-loop"
    {
        let call = serde_json::to_vec(&workload::route_call(n.parse().expect("N"))).unwrap();
        for _ in 0..iterations.parse::<usize>().expect("ITERATIONS") {
            black_box(policy_core::call(ROUTE, black_box(&call)));
        }
        return;
    }
    let o = options();
    let scratch = std::env::temp_dir().join(format!("foundry-bench-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).unwrap();
    // `--module` measures another build of the policy in-process (the `preview` process keeps its embedded one).
    let module_bytes = match &o.module {
        Some(path) => std::fs::read(path).expect("the module file is readable"),
        None => EMBEDDED_POLICY.to_vec(),
    };
    let engine = PolicyEngine::from_bytes(&module_bytes, Limits::default()).expect("the module loads");
    let mut rego = RegoRouter::new().expect("route.rego loads");
    let route_id = *engine.entrypoints().get(ROUTE).expect("the module routes");
    let unmetered = Unmetered::new(&module_bytes, route_id);

    let mut rows = Vec::new();
    for &n in &o.sizes {
        eprintln!("bench: N = {n} ...");
        rows.push(measure(n, &o, &engine, &unmetered, &mut rego, &scratch));
    }

    eprintln!("bench: module and process costs ...");
    let raw = module_bytes.len() as u64;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&module_bytes).unwrap();
    let gzip = gz.finish().unwrap().len() as u64;
    let (compile, instantiate) = module_costs(&module_bytes, o.budget);
    let load_embedded = median_time(o.budget, 10, || {
        black_box(PolicyEngine::embedded(Limits::default()).unwrap());
    });
    let mut example = Command::new(&o.host_runner);
    example.current_dir(&o.root).args(["preview", "examples/platform", "--observations", "examples/observations.yaml"]);
    assert_eq!(run_process(&example).status, 0, "preview of the example platform failed");
    let mut example_runs: Vec<ProcessRun> = (0..30).map(|_| run_process(&example)).collect();
    example_runs.sort_by_key(|r| r.wall);
    let example_median = example_runs[example_runs.len() / 2].wall;
    let example_max = example_runs.last().map(|r| r.wall).unwrap_or_default();
    let example_rss = example_runs.iter().map(|r| r.max_rss).max().unwrap_or(0);
    let _ = std::fs::remove_dir_all(&scratch);

    let report =
        render(&rows, raw, gzip, compile, instantiate, load_embedded, example_median, example_max, example_rss);
    print!("{}", report.text);
    if let Some(out) = &o.out {
        if let Some(parent) = out.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(out, &report.text).unwrap();
    }
    if report.missed > 0 {
        eprintln!("bench: {} target(s) missed", report.missed);
        std::process::exit(1);
    }
}

struct Report {
    text: String,
    missed: usize,
}

#[allow(clippy::too_many_arguments)]
fn render(
    rows: &[Row],
    raw: u64,
    gzip: u64,
    compile: Duration,
    instantiate: Duration,
    load_embedded: Duration,
    example_median: Duration,
    example_max: Duration,
    example_rss: u64,
) -> Report {
    let mut t = String::new();
    let _ = writeln!(t, "Routing decision for one license with N instances (median time per decision):\n");
    let _ = writeln!(
        t,
        "| N | native | wasm (fresh store) | wasm ÷ native | Rego (regorus) | Rego ÷ native | Rego ÷ wasm | pipeline process |"
    );
    let _ = writeln!(t, "|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in rows {
        let _ = writeln!(
            t,
            "| {} | {} | {} | {:.2}× | {} | {:.1}× | {:.1}× | {} |",
            r.n,
            fmt_time(r.native),
            fmt_time(r.wasm),
            ratio(r.wasm, r.native),
            fmt_time(r.rego),
            ratio(r.rego, r.native),
            ratio(r.rego, r.wasm),
            fmt_time(r.process),
        );
    }
    let _ = writeln!(t, "\nWhat the wasm time is made of: the same evaluation in an engine without fuel metering:\n");
    let _ = writeln!(t, "| N | wasm (host, fuel) | wasm without fuel | fuel's share | no fuel ÷ native |");
    let _ = writeln!(t, "|---:|---:|---:|---:|---:|");
    for r in rows {
        let _ = writeln!(
            t,
            "| {} | {} | {} | {:.0} % | {:.2}× |",
            r.n,
            fmt_time(r.wasm),
            fmt_time(r.wasm_unmetered),
            100.0 * (1.0 - ratio(r.wasm_unmetered, r.wasm)),
            ratio(r.wasm_unmetered, r.native),
        );
    }
    let _ = writeln!(t, "\nCost per instance (time ÷ N; flat means linear growth):\n");
    let _ = writeln!(t, "| N | native | wasm | Rego | pipeline process |");
    let _ = writeln!(t, "|---:|---:|---:|---:|---:|");
    for r in rows {
        let per = |d: Duration| fmt_time(d / r.n as u32);
        let _ = writeln!(t, "| {} | {} | {} | {} | {} |", r.n, per(r.native), per(r.wasm), per(r.rego), per(r.process));
    }
    let _ = writeln!(t, "\nPeak memory of one decision:\n");
    let _ = writeln!(t, "| N | native heap | wasm linear memory | wasm host heap | Rego heap | pipeline max RSS |");
    let _ = writeln!(t, "|---:|---:|---:|---:|---:|---:|");
    for r in rows {
        let _ = writeln!(
            t,
            "| {} | {} | {} | {} | {} | {} |",
            r.n,
            fmt_bytes(r.native_heap),
            fmt_bytes(r.wasm_linear),
            fmt_bytes(r.wasm_host_heap),
            fmt_bytes(r.rego_heap),
            fmt_bytes(r.process_rss),
        );
    }
    let _ = writeln!(t, "\nThe module and the process:\n");
    let _ = writeln!(t, "| what | value |");
    let _ = writeln!(t, "|---|---:|");
    let _ = writeln!(t, "| `.wasm` size, raw | {raw} bytes ({:.1} KiB) |", raw as f64 / 1024.0);
    let _ = writeln!(t, "| `.wasm` size, gzip -9 | {gzip} bytes ({:.1} KiB) |", gzip as f64 / 1024.0);
    let _ = writeln!(t, "| compile the `.wasm` (cranelift) | {} |", fmt_time(compile));
    let _ = writeln!(
        t,
        "| load the embedded precompiled module (`PolicyEngine::embedded`) | {} |",
        fmt_time(load_embedded)
    );
    let _ = writeln!(t, "| instantiate (fresh store and memory) | {} |", fmt_time(instantiate));
    let _ = writeln!(
        t,
        "| `host-runner preview` of `examples/platform`, start to exit | {} (median of 30; slowest {}) |",
        fmt_time(example_median),
        fmt_time(example_max)
    );
    let _ = writeln!(t, "| its peak RSS | {} |", fmt_bytes(example_rss));

    let at = |n: usize| rows.iter().find(|r| r.n == n);
    let mut missed = 0;
    let mut check = |t: &mut String, ok: Option<bool>, what: String| {
        let mark = match ok {
            Some(true) => "met",
            Some(false) => {
                missed += 1;
                "MISSED"
            }
            None => "not measured in this run",
        };
        let _ = writeln!(t, "| {what} | {mark} |");
    };
    let _ = writeln!(t, "\nTargets:\n");
    let _ = writeln!(t, "| target | result |");
    let _ = writeln!(t, "|---|---|");
    check(
        &mut t,
        at(1000).map(|r| ratio(r.wasm, r.native) <= 1.5),
        format!("wasm within 1.5× of native at N = 1 000 ({:.2}×)", at(1000).map_or(0.0, |r| ratio(r.wasm, r.native))),
    );
    check(
        &mut t,
        at(1000).map(|r| ratio(r.rego, r.wasm) >= 20.0),
        format!(
            "wasm at least 20× faster than Rego at N = 1 000 ({:.1}×)",
            at(1000).map_or(0.0, |r| ratio(r.rego, r.wasm))
        ),
    );
    check(&mut t, Some(raw < 300 * 1024), format!("`.wasm` under 300 KiB ({:.1} KiB)", raw as f64 / 1024.0));
    check(
        &mut t,
        Some(example_median < Duration::from_millis(20)),
        format!("`preview` of the example platform under 20 ms ({})", fmt_time(example_median)),
    );
    check(
        &mut t,
        at(10_000).map(|r| r.process_rss < 128 << 20 && r.wasm_linear < 128 << 20),
        format!(
            "memory at N = 10 000 well under 256 MiB: under 128 MiB of RSS and of linear memory ({}, {})",
            at(10_000).map_or("-".into(), |r| fmt_bytes(r.process_rss)),
            at(10_000).map_or("-".into(), |r| fmt_bytes(r.wasm_linear)),
        ),
    );
    Report { text: t, missed }
}
