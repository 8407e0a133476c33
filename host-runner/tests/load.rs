//! Load and fault suite: the internet-facing services (`standby-page`, `serve-preview`) and the pipeline
//! (`kratix`) as real `host-runner` processes on loopback, against the Kubernetes API stand-in, under load, API
//! faults and hostile tenants. One test per scenario; each prints its figures and appends them to
//! `target/load/report.md`.
//!
//! Two sizes: the short form (default; part of `cargo xtask test`) and the soak (`FOUNDRY_SOAK=1`, run by
//! `cargo xtask soak` on release builds), which uses the sizes of the README's figures. Every request loop is
//! bounded in count and time and targets only 127.0.0.1.
//!
//! Resource limits are emulated, not enforced: the standby page runs pinned to one core (`taskset -c 0`), its
//! CPU time is read from `/proc/<pid>/stat` over a window of page views at the allowed rate and compared with
//! the manifest's CPU limit (a CFS quota throttles only a process that uses more than its share), and its peak
//! memory (`VmHWM` in `/proc/<pid>/status`) is compared with the manifest's memory limit.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic, clippy::print_stdout)]

mod support;

use serde_json::{Value, json};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use support::{FakeApi, Fault, StandbyService, http_get, http_post, http_raw, instance_object, license_object};

/// The standby page's resource limits as its shipped manifest sets them: (CPU in cores, memory in MiB).
fn shipped_limits() -> (f64, f64) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../promises/standby-page/with-activation.yaml");
    let text = std::fs::read_to_string(path).unwrap();
    let deployment = text
        .split("\n---\n")
        .filter_map(|doc| serde_saphyr::from_str::<Value>(doc).ok())
        .find(|doc| doc["kind"] == "Deployment")
        .unwrap();
    let limits = &deployment["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"];
    let cpu = limits["cpu"].as_str().unwrap().strip_suffix('m').unwrap().parse::<f64>().unwrap() / 1000.0;
    let memory = limits["memory"].as_str().unwrap().strip_suffix("Mi").unwrap().parse::<f64>().unwrap();
    (cpu, memory)
}

fn soak() -> bool {
    std::env::var("FOUNDRY_SOAK").is_ok_and(|v| v == "1")
}

/// Short form or soak size.
fn size(short: usize, long: usize) -> usize {
    if soak() { long } else { short }
}

fn report(scenario: &str, lines: &[String]) {
    let mut text = format!("### {scenario} ({})\n\n", if soak() { "soak" } else { "short" });
    for l in lines {
        text.push_str(&format!("- {l}\n"));
    }
    println!("{text}");
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).parent().unwrap().join("load");
    std::fs::create_dir_all(&dir).unwrap();
    let mut file = std::fs::OpenOptions::new().create(true).append(true).open(dir.join("report.md")).unwrap();
    file.write_all(format!("{text}\n").as_bytes()).unwrap();
}

/// Resident and peak resident memory of a process, in MiB.
fn memory_mib(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
            / 1024.0
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// CPU time a process has used, in seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the command.
    (ticks(11) + ticks(12)) / 100.0
}

fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    if samples.is_empty() {
        return Duration::ZERO;
    }
    samples.sort();
    let index = ((samples.len() as f64 - 1.0) * p).round() as usize;
    samples[index.min(samples.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// `count` namespaces `t<i>` with one license `l<i>` under `t<i>.example.com`, `per` instances each (`i0`, ...).
fn platform(api: &FakeApi, count: usize, per: usize, activation: Value) {
    let mut objects = Vec::new();
    for t in 0..count {
        let (ns, lic) = (format!("t{t}"), format!("l{t}"));
        objects.push(license_object(&lic, &ns, &format!("t{t}.example.com"), "i0", activation.clone()));
        for i in 0..per {
            objects.push(instance_object(&format!("i{i}"), &ns, &lic, json!({"connectedPlayers": 0})));
        }
    }
    api.put_all(objects);
}

fn start(api: &FakeApi, dir: &Path, extra: &[&str]) -> StandbyService {
    let service = StandbyService::start(api, dir, extra);
    assert_eq!(http_get(&service.addr, "localhost", "/readyz").status, 200, "{}", service.log());
    service
}

/// `GET /` for `host`, timed.
fn timed_get(addr: &str, host: &str) -> (u16, Duration) {
    let started = Instant::now();
    let answer = http_get(addr, host, "/");
    (answer.status, started.elapsed())
}

#[test]
fn s1_one_tenant_cannot_blank_other_tenants_pages() {
    let api = FakeApi::start();
    api.record_requests(false);
    // Tenant `t0`: a license with one instance; tenant `t1`: a license and more instances than any bound.
    platform(&api, 2, 1, json!({"mode": "request"}));
    let flood = size(10_001, 10_001);
    let objects: Vec<Value> =
        (1..flood).map(|i| instance_object(&format!("i{i}"), "t1", "l1", json!({"connectedPlayers": 0}))).collect();
    api.put_all(objects);
    // Finished requests older than the retention (a day after their decision): the review deletes them.
    let finished = size(50, 500);
    let stale = support::ago(3 * 24 * 3600);
    api.put_all((0..finished).map(|i| {
        json!({"apiVersion": "foundry.platform/v1alpha1", "kind": "FoundryActivationRequest",
               "metadata": {"name": format!("old-{i}"), "namespace": "t0", "creationTimestamp": stale},
               "spec": {"licenseRef": {"name": "l0"}, "instanceName": "i0", "approved": false},
               "status": {"phase": "Expired", "decidedAt": stale}})
    }));
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let service = start(&api, dir.path(), &["--activation", "--review-interval", "1"]);
    let ready = started.elapsed();
    let own = http_get(&service.addr, "i0.t0.example.com", "/");
    let flooded = http_get(&service.addr, "i0.t1.example.com", "/");
    let deadline = Instant::now() + Duration::from_secs(30);
    while api.count("FoundryActivationRequest") > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let left = api.count("FoundryActivationRequest");
    let (rss, hwm) = memory_mib(service.pid());
    let (_, memory_limit) = shipped_limits();
    let log = service.log();
    report(
        "S1 one tenant blanks every tenant's page",
        &[
            format!(
                "objects: {} instances in `t1` (bound 1 000 per kind and namespace), {finished} finished requests in `t0`",
                flood
            ),
            format!("ready after {:.1} s", ready.as_secs_f64()),
            format!("other tenant's page: {}; flooding tenant's page: {}", own.status, flooded.status),
            format!("finished requests left after the review: {left} of {finished}"),
            format!("RSS {rss:.1} MiB, peak {hwm:.1} MiB (limit {memory_limit} MiB)"),
        ],
    );
    assert_eq!(own.status, 200, "another tenant's page is served: {log}");
    assert_eq!(flooded.status, 503, "the flooding tenant's own page is unavailable");
    assert!(log.contains("over the standby page's bounds") && log.contains("t1"), "a clear log line: {log}");
    assert_eq!(left, 0, "finished requests are deleted: {log}");
    assert!(hwm < memory_limit * 0.75, "peak memory {hwm:.1} MiB within the limit with margin");
}

#[test]
fn s2_a_click_keeps_the_last_good_read() {
    let api = FakeApi::start();
    platform(&api, 1, 3, json!({"mode": "auto-when-idle", "idleMinutes": 30}));
    // `i0` is active and idle for two hours: a click on `i1` switches at once.
    api.put(instance_object("i0", "t0", "l0", support::idle_status(2 * 3600)));
    let dir = tempfile::tempdir().unwrap();
    let service = start(&api, dir.path(), &["--activation"]);
    let host = "i1.t0.example.com";
    assert_eq!(http_get(&service.addr, host, "/").status, 200);
    // From now on every read of the API fails.
    api.fault("GET", "/apis/", Fault::Status(500, support::status_body(500, "InternalError", "etcd is sad")), None);
    let page = http_get(&service.addr, host, "/");
    let cookie = page.header("set-cookie").unwrap().split(';').next().unwrap().to_owned();
    let token = cookie.split_once('=').unwrap().1.to_owned();
    let click = http_post(
        &service.addr,
        host,
        &format!("Origin: https://{host}\r\nCookie: {cookie}\r\nAccept: application/json\r\n"),
        &format!("csrf={token}"),
    );
    let views: Vec<u16> = (0..size(20, 200)).map(|_| http_get(&service.addr, host, "/").status).collect();
    let served = views.iter().filter(|s| **s == 200).count();
    let after = http_get(&service.addr, host, "/");
    report(
        "S2 a click threw away the last good read",
        &[
            format!("click with every API read failing: {}", click.status),
            format!("page views after the click: {served} of {} answered 200", views.len()),
        ],
    );
    assert_eq!(click.status, 200, "{click:?}\n{}", service.log());
    assert_eq!(served, views.len(), "the last good read keeps being served: {views:?}");
    assert!(after.body.contains("already"), "the switch the service made itself is seen: {}", after.body);
}

#[test]
fn s3_a_slow_api_does_not_queue_page_views() {
    let api = FakeApi::start();
    platform(&api, 1, 3, json!({"mode": "request"}));
    let dir = tempfile::tempdir().unwrap();
    let service = start(&api, dir.path(), &[]);
    // Every read now takes 5 s (the watches reconnect through it; nothing waits for them).
    api.fault("GET", "/apis/", Fault::Delay(Duration::from_secs(5)), None);
    std::thread::sleep(Duration::from_millis(200));
    let addr = Arc::new(service.addr.clone());
    let views = size(8, 64);
    let handles: Vec<_> = (0..views)
        .map(|_| {
            let addr = addr.clone();
            std::thread::spawn(move || timed_get(&addr, "i1.t0.example.com"))
        })
        .collect();
    let results: Vec<(u16, Duration)> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let mut times: Vec<Duration> = results.iter().map(|r| r.1).collect();
    let ok = results.iter().filter(|r| r.0 == 200).count();
    let slowest = *times.iter().max().unwrap();
    report(
        "S3 a slow API queued every page view",
        &[
            format!("API reads delayed 5 s; {views} simultaneous views: {ok} answered 200"),
            format!("median {}, slowest {}", ms(percentile(&mut times, 0.5)), ms(slowest)),
        ],
    );
    assert_eq!(ok, views, "{results:?}");
    assert!(slowest < Duration::from_secs(1), "no view waits for the API: {results:?}");
}

#[test]
fn s4_a_full_rate_limiter_table_does_not_lock_out_new_visitors() {
    let api = FakeApi::start();
    platform(&api, 1, 3, json!({"mode": "request"}));
    let dir = tempfile::tempdir().unwrap();
    let service = start(&api, dir.path(), &["--activation", "--trust-forwarded-for"]);
    let flood = size(10_001, 30_000);
    let threads = 4;
    let started = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let addr = service.addr.clone();
            std::thread::spawn(move || {
                let mut limited = 0usize;
                for i in (t..flood).step_by(threads) {
                    let ip = format!("10.{}.{}.{}", (i >> 16) & 255, (i >> 8) & 255, i & 255);
                    let a = http_post(&addr, "i1.t0.example.com", &format!("X-Forwarded-For: {ip}\r\n"), "csrf=x");
                    limited += usize::from(a.status == 429);
                }
                limited
            })
        })
        .collect();
    let limited: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
    let elapsed = started.elapsed();
    // A legitimate visitor, new to the service, clicks.
    let host = "i1.t0.example.com";
    let page = http_raw(
        &service.addr,
        &format!("GET / HTTP/1.1\r\nHost: {host}\r\nX-Forwarded-For: 192.0.2.200\r\nConnection: close\r\n\r\n"),
    );
    let cookie = page.header("set-cookie").unwrap().split(';').next().unwrap().to_owned();
    let token = cookie.split_once('=').unwrap().1.to_owned();
    let click = http_post(
        &service.addr,
        host,
        &format!(
            "Origin: https://{host}\r\nCookie: {cookie}\r\nAccept: application/json\r\nX-Forwarded-For: 192.0.2.200\r\n"
        ),
        &format!("csrf={token}"),
    );
    let (_, hwm) = memory_mib(service.pid());
    report(
        "S4 a full rate-limiter table locked out every new visitor",
        &[
            format!(
                "{flood} POSTs from distinct X-Forwarded-For addresses in {:.1} s; {limited} answered 429",
                elapsed.as_secs_f64()
            ),
            format!("the first legitimate click then: {}", click.status),
            format!("peak memory {hwm:.1} MiB"),
        ],
    );
    assert_eq!(limited, 0, "no new key is refused for want of room");
    assert_eq!(click.status, 201, "{click:?}");
}

/// Page views of one client at `rate` per second for `window`, with `/healthz` polled alongside; returns the
/// page latencies, the health latencies and the CPU seconds the service used.
fn paced(
    service: &StandbyService,
    host: &str,
    rate: f64,
    window: Duration,
) -> (Vec<Duration>, Vec<Duration>, f64, usize) {
    let stop = Arc::new(AtomicBool::new(false));
    let addr = service.addr.clone();
    let stop_health = stop.clone();
    let health = std::thread::spawn(move || {
        let mut times = Vec::new();
        while !stop_health.load(Ordering::Relaxed) {
            let started = Instant::now();
            let a = http_get(&addr, "localhost", "/healthz");
            assert_eq!(a.status, 200);
            times.push(started.elapsed());
            std::thread::sleep(Duration::from_millis(50));
        }
        times
    });
    let cpu_before = cpu_seconds(service.pid());
    let started = Instant::now();
    let mut pages = Vec::new();
    let mut failed = 0;
    let mut n = 0u32;
    while started.elapsed() < window {
        let due = started + Duration::from_secs_f64(f64::from(n) / rate);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let (status, took) = timed_get(&service.addr, host);
        failed += usize::from(status != 200);
        pages.push(took);
        n += 1;
    }
    let cpu = cpu_seconds(service.pid()) - cpu_before;
    stop.store(true, Ordering::Relaxed);
    (pages, health.join().unwrap(), cpu, failed)
}

#[test]
fn s5_a_page_view_evaluates_only_its_host_license() {
    let api = FakeApi::start();
    api.record_requests(false);
    let (tenants, per) = (size(100, 100), size(100, 100));
    platform(&api, tenants, per, json!({"mode": "request"}));
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = api.kubeconfig(dir.path());
    // One core, as a CPU limit below one core gives at most.
    let child = Command::new("taskset")
        .args(["-c", "0", env!("CARGO_BIN_EXE_host-runner"), "standby-page", "--listen", "127.0.0.1:0"])
        .args(["--page-limit", "100000", "--kubeconfig"])
        .arg(&kubeconfig)
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(dir.path().join("log")).unwrap())
        .spawn()
        .unwrap();
    let service = StandbyService::adopt(child, dir.path().join("log"));
    assert_eq!(http_get(&service.addr, "localhost", "/readyz").status, 200, "{}", service.log());
    let (_, hwm_idle) = memory_mib(service.pid());
    let host = "i7.t42.example.com";
    // Throughput: as many views as one client gets through in the window.
    let window = Duration::from_secs(size(3, 20) as u64);
    let started = Instant::now();
    let mut times = Vec::new();
    while started.elapsed() < window {
        let (status, took) = timed_get(&service.addr, host);
        assert_eq!(status, 200, "{}", service.log());
        times.push(took);
    }
    let rate = times.len() as f64 / started.elapsed().as_secs_f64();
    let p99 = percentile(&mut times, 0.99);
    let started = Instant::now();
    let mut unknown = 0usize;
    while started.elapsed() < Duration::from_secs(1) {
        assert_eq!(http_get(&service.addr, "nothing.example.org", "/").status, 404);
        unknown += 1;
    }
    // At the allowed rate of one client (300 per minute), with /healthz polled alongside.
    let (mut pages, mut health, cpu, failed) = paced(&service, host, 5.0, Duration::from_secs(size(6, 60) as u64));
    let share = cpu / (pages.len() as f64 / 5.0);
    let health_p99 = percentile(&mut health, 0.99);
    let (rss, hwm) = memory_mib(service.pid());
    let (cpu_limit, memory_limit) = shipped_limits();
    report(
        "S5 every page view evaluated the whole platform",
        &[
            format!("{} instances in {tenants} namespaces; one core (taskset -c 0)", tenants * per),
            format!("one client, back to back: {rate:.0} pages/s, p99 {}", ms(p99)),
            format!("unknown host: {unknown} answers in 1 s"),
            format!(
                "at the allowed 5 pages/s: page p99 {}, /healthz p99 {} (max {}), CPU {:.3} cores ({:.1} ms a page; limit {cpu_limit} cores)",
                ms(percentile(&mut pages, 0.99)),
                ms(health_p99),
                ms(*health.iter().max().unwrap()),
                share,
                cpu * 1000.0 / pages.len().max(1) as f64
            ),
            format!(
                "memory after listing {hwm_idle:.1} MiB peak; after the run RSS {rss:.1} MiB, peak {hwm:.1} MiB (limit {memory_limit} MiB)"
            ),
        ],
    );
    assert_eq!(failed, 0);
    assert!(rate > 40.0, "{rate:.1} pages/s");
    assert!(health_p99 < Duration::from_millis(100), "/healthz p99 {health_p99:?}");
    assert!(share < cpu_limit * 0.5, "the allowed rate uses {share:.3} cores");
    assert!(hwm < memory_limit * 0.75, "peak memory {hwm:.1} MiB");
}

/// A license workflow's pipeline directories for license `l0` of namespace `t0`.
fn pipeline_dirs(root: &Path, license: &Value) -> (PathBuf, PathBuf, PathBuf) {
    let (input, output, metadata) = (root.join("input"), root.join("output"), root.join("metadata"));
    for d in [&input, &output, &metadata] {
        std::fs::create_dir_all(d).unwrap();
    }
    std::fs::write(input.join("object.yaml"), serde_json::to_string(license).unwrap()).unwrap();
    (input, output, metadata)
}

fn kratix_command(dirs: &(PathBuf, PathBuf, PathBuf), extra: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_host-runner"));
    cmd.arg("kratix")
        .args(extra)
        .args(["--connect-to", "127.0.0.1:1", "--probe-timeout", "1"])
        .env_clear()
        .env("KRATIX_INPUT_DIR", &dirs.0)
        .env("KRATIX_OUTPUT_DIR", &dirs.1)
        .env("KRATIX_METADATA_DIR", &dirs.2);
    for (k, v) in [
        ("KRATIX_WORKFLOW_TYPE", "resource"),
        ("KRATIX_WORKFLOW_ACTION", "configure"),
        ("KRATIX_OBJECT_KIND", "FoundryLicense"),
        ("KRATIX_OBJECT_GROUP", "foundry.platform"),
        ("KRATIX_OBJECT_VERSION", "v1alpha1"),
        ("KRATIX_OBJECT_NAME", "l0"),
        ("KRATIX_OBJECT_NAMESPACE", "t0"),
        ("KRATIX_CRD_PLURAL", "foundrylicenses"),
        ("KRATIX_PROMISE_NAME", "foundry-license"),
        ("KRATIX_PIPELINE_NAME", "pipeline"),
    ] {
        cmd.env(k, v);
    }
    cmd
}

/// Runs a child to its end (at most `limit`), returning its exit code, output, time and peak memory (MiB).
fn run_bounded(mut cmd: Command, limit: Duration) -> (Option<i32>, String, Duration, f64) {
    let started = Instant::now();
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let pid = child.id();
    let mut peak = 0.0f64;
    let code = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status.code();
        }
        peak = peak.max(memory_mib(pid).1);
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut out = String::new();
    let _ = child.stdout.take().unwrap().read_to_string(&mut out);
    let _ = child.stderr.take().unwrap().read_to_string(&mut out);
    (code, out, started.elapsed(), peak)
}

#[test]
fn s6_list_paging_stops() {
    // The pipeline: an API that never stops paging, and a namespace far larger than the policy accepts.
    let api = FakeApi::start();
    api.record_requests(true);
    let license = license_object("l0", "t0", "t0.example.com", "i0", Value::Null);
    api.put(license.clone());
    api.put(instance_object("i0", "t0", "l0", json!({})));
    api.fault("GET", "/apis/foundry.platform/v1alpha1/namespaces/t0/foundryinstances", Fault::EndlessContinue, None);
    let root = tempfile::tempdir().unwrap();
    let dirs = pipeline_dirs(root.path(), &license);
    let kubeconfig = api.kubeconfig(root.path());
    let cmd = kratix_command(&dirs, &["--kubeconfig", kubeconfig.to_str().unwrap()]);
    let (endless_code, endless_out, endless_time, endless_peak) = run_bounded(cmd, Duration::from_secs(60));
    let endless_pages = api.requests().iter().filter(|r| r.path.ends_with("/foundryinstances")).count();

    let big = FakeApi::start();
    big.record_requests(true);
    big.put(license.clone());
    let many = size(20_000, 100_000);
    big.put_all((0..many).map(|i| instance_object(&format!("i{i}"), "t0", "l0", json!({}))));
    let kubeconfig = big.kubeconfig(root.path());
    let cmd = kratix_command(&dirs, &["--kubeconfig", kubeconfig.to_str().unwrap()]);
    let (big_code, big_out, big_time, big_peak) = run_bounded(cmd, Duration::from_secs(120));
    let read: usize = big.requests().iter().filter(|r| r.path.ends_with("/foundryinstances")).count();

    // The standby page: an API whose lists never stop paging.
    let endless = FakeApi::start();
    endless.record_requests(false);
    platform(&endless, 1, 2, json!({"mode": "request"}));
    endless.fault("GET", "/apis/foundry.platform/v1alpha1/foundryinstances", Fault::EndlessContinue, None);
    let dir = tempfile::tempdir().unwrap();
    let service = StandbyService::spawn(&endless, dir.path(), &["--list-limit", "5000", "--list-deadline", "5"]);
    let started = Instant::now();
    while !service.log().contains("abandoned") && started.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(100));
    }
    let abandoned = started.elapsed();
    let health = http_get(&service.addr, "localhost", "/healthz").status;
    let page = http_get(&service.addr, "i1.t0.example.com", "/").status;
    let (_, hwm) = memory_mib(service.pid());
    report(
        "S6 list paging never stopped",
        &[
            format!(
                "kratix, endless `continue`: exit {endless_code:?} after {:.1} s and {endless_pages} list requests, peak {endless_peak:.0} MiB",
                endless_time.as_secs_f64()
            ),
            format!(
                "kratix, {many} instances in the namespace: exit {big_code:?} after {:.1} s, {read} list requests, peak {big_peak:.0} MiB",
                big_time.as_secs_f64()
            ),
            format!(
                "standby-page, endless `continue` (list bounds 5 000 objects, 5 s): abandoned after {:.1} s; /healthz {health}, page {page}, peak {hwm:.0} MiB",
                abandoned.as_secs_f64()
            ),
        ],
    );
    assert_ne!(endless_code, Some(0), "{endless_out}");
    assert!(endless_code.is_some(), "the pipeline stopped by itself");
    assert!(endless_out.contains("kept paging") || endless_out.contains("longer than"), "{endless_out}");
    assert!(endless_pages <= 30, "{endless_pages} pages");
    assert_eq!(big_code, Some(3), "too many instances is invalid input: {big_out}");
    assert!(read <= 30, "the list stopped soon after the policy's bound: {read} pages");
    assert!(service.log().contains("abandoned"), "{}", service.log());
    assert_eq!(health, 200);
    assert_eq!(page, 503, "nothing was read completely, so nothing is served");
    assert!(hwm < 96.0, "{hwm:.1} MiB");
}

#[test]
fn s7_no_credential_is_ever_printed() {
    const TOKEN: &str = "s3cr3t-token-0123456789abcdef";
    let dir = tempfile::tempdir().unwrap();
    let api = FakeApi::start();
    platform(&api, 1, 1, json!({"mode": "request"}));
    let license = api.object("FoundryLicense", "t0", "l0").unwrap();
    // A kubeconfig that is not valid YAML, with the token near the error.
    let broken = dir.path().join("broken");
    std::fs::write(
        &broken,
        format!(
            "apiVersion: v1\nkind: Config\nusers:\n- name: x\n  user:\n    token: {TOKEN}\n    : [unclosed {TOKEN}\n"
        ),
    )
    .unwrap();
    // A hostile API that quotes the Authorization header back in every answer.
    api.fault("GET", "/", Fault::EchoAuthorization, None);
    api.fault("PATCH", "/", Fault::EchoAuthorization, None);
    let good = dir.path().join("good");
    std::fs::create_dir_all(&good).unwrap();
    let kubeconfig = api.kubeconfig_with_token(&good, TOKEN);
    let dirs = pipeline_dirs(&dir.path().join("pipeline"), &license);
    let mut outputs = Vec::new();
    for config in [&broken, &kubeconfig] {
        let path = config.to_str().unwrap();
        let (_, out, _, _) = run_bounded(kratix_command(&dirs, &["--kubeconfig", path]), Duration::from_secs(60));
        outputs.push(("kratix", out));
        let mut monitor = Command::new(env!("CARGO_BIN_EXE_host-runner"));
        monitor.args(["monitor", "--instance", "i0", "--namespace", "t0", "--iterations", "1", "--kubeconfig", path]);
        monitor.args(["--status-url", &format!("http://{}/api/status", support::refused_addr())]);
        let (_, out, _, _) = run_bounded(monitor, Duration::from_secs(60));
        outputs.push(("monitor", out));
        let mut standby = Command::new(env!("CARGO_BIN_EXE_host-runner"));
        standby.args(["standby-page", "--listen", "127.0.0.1:0", "--kubeconfig", path]);
        // It serves for ever: three seconds of its output are enough for the watches to fail several times.
        let (_, out, _, _) = run_bounded(standby, Duration::from_secs(3));
        outputs.push(("standby-page", out));
    }
    let api_saw =
        api.requests().iter().filter(|r| r.headers.get("authorization").is_some_and(|a| a.contains(TOKEN))).count();
    let leaks: Vec<&str> = outputs.iter().filter(|(_, out)| out.contains(TOKEN)).map(|(what, _)| *what).collect();
    report(
        "S7 a malformed kubeconfig or a hostile API printed the bearer token",
        &[
            format!(
                "runs: kratix, monitor, standby-page, each with a broken kubeconfig and against an API echoing Authorization ({api_saw} requests carried the token)"
            ),
            format!("outputs holding the token: {leaks:?}"),
        ],
    );
    assert!(api_saw > 0, "the hostile API was reached");
    for (what, out) in &outputs {
        assert!(!out.contains(TOKEN), "{what} printed the token:\n{out}");
        assert!(!out.is_empty(), "{what} said something");
    }
    assert!(outputs[0].1.contains("content is not shown"), "{}", outputs[0].1);
}

/// The files of a directory (relative path, content), sorted.
fn tree(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for e in entries.flatten() {
            let path = e.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let rel = path.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
                out.push((rel, std::fs::read(&path).unwrap_or_default()));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn s8_output_is_replaced_in_one_step() {
    let root = tempfile::tempdir().unwrap();
    let count = size(3_000, 3_000);
    // Instance documents, in files of at most 1 000 (the loader's bound on documents per file).
    let snapshot = |prefix: &str| -> Vec<String> {
        let docs: Vec<String> = (0..count)
            .map(|i| {
                let instance = instance_object(&format!("{prefix}{i}"), "t0", "l0", json!({"connectedPlayers": 0}));
                serde_json::to_string(&instance).unwrap()
            })
            .collect();
        docs.chunks(1_000).map(|c| c.join("\n---\n")).collect()
    };
    let license = license_object("l0", "t0", "t0.example.com", "a0", Value::Null);
    let run = |snap: &[String], dirs: &(PathBuf, PathBuf, PathBuf), kill_after: Option<Duration>| {
        let snapshot_dir = root.path().join("snapshot");
        let _ = std::fs::remove_dir_all(&snapshot_dir);
        std::fs::create_dir_all(&snapshot_dir).unwrap();
        std::fs::write(snapshot_dir.join("license.yaml"), serde_json::to_string(&license).unwrap()).unwrap();
        for (i, part) in snap.iter().enumerate() {
            std::fs::write(snapshot_dir.join(format!("instances-{i}.yaml")), part).unwrap();
        }
        let mut cmd = kratix_command(dirs, &["--offline", "--snapshot", snapshot_dir.to_str().unwrap()]);
        let mut child = cmd.stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
        // Wait for the staged copy to appear beside the output; then kill a little later (during the staging or
        // the swap), or measure how long writing takes.
        let staged = dirs.1.parent().unwrap().join(".output.foundry-new");
        let started = Instant::now();
        while !staged.exists() && started.elapsed() < Duration::from_secs(30) {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        let writing = Instant::now();
        match kill_after {
            Some(d) => {
                std::thread::sleep(d);
                let _ = child.kill();
                (child.wait().unwrap().code(), writing.elapsed())
            }
            None => (child.wait().unwrap().code(), writing.elapsed()),
        }
    };
    let dirs = pipeline_dirs(&root.path().join("p"), &license);
    let (snap_a, snap_b) = (snapshot("a"), snapshot("b"));
    let started = Instant::now();
    let (code, writing) = run(&snap_b, &dirs, None);
    assert_eq!(code, Some(0));
    let duration = started.elapsed();
    let (out_b, status_b) = (tree(&dirs.1), std::fs::read(dirs.2.join("status.yaml")).unwrap());
    assert_eq!(run(&snap_a, &dirs, None).0, Some(0));
    let (out_a, status_a) = (tree(&dirs.1), std::fs::read(dirs.2.join("status.yaml")).unwrap());
    assert!(out_a.len() > 10 && out_a != out_b);
    let kills = size(10, 50);
    let (mut partial, mut old, mut new) = (0, 0, 0);
    for k in 0..kills {
        // Kills spread over the time writing takes (and a little past it).
        let at = writing.mul_f64(1.2 * k as f64 / kills as f64);
        run(&snap_b, &dirs, Some(at));
        let out = tree(&dirs.1);
        if out == out_a {
            old += 1;
        } else if out == out_b {
            new += 1;
        } else {
            partial += 1;
        }
        // Back to A for the next attempt.
        assert_eq!(run(&snap_a, &dirs, None).0, Some(0));
        assert_eq!(tree(&dirs.1), out_a, "a rerun replaces whatever a killed run left");
    }
    let leftovers: Vec<String> = [dirs.1.parent().unwrap(), dirs.2.as_path()]
        .iter()
        .flat_map(|d| std::fs::read_dir(d).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()))
        .filter(|n| n.starts_with('.'))
        .collect();
    // A full metadata disk: a 16 KiB tmpfs (root only; the reason is printed otherwise).
    let full = root.path().join("full");
    std::fs::create_dir_all(&full).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=16k", "tmpfs"])
        .arg(&full)
        .status()
        .is_ok_and(|s| s.success());
    let mut full_disk = String::from("not run: a tmpfs could not be mounted (needs root)");
    if mounted {
        std::fs::write(full.join("filler"), vec![b'x'; 12 * 1024]).ok();
        let full_dirs = (dirs.0.clone(), dirs.1.clone(), full.clone());
        let code = run(&snap_b, &full_dirs, None).0;
        let left: Vec<String> =
            std::fs::read_dir(&full).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        let intact = tree(&dirs.1) == out_a;
        let _ = Command::new("umount").arg(&full).status();
        full_disk = format!("exit {code:?}, old output intact: {intact}, metadata left: {left:?}");
        assert_ne!(code, Some(0));
        assert!(intact, "the old output is intact");
        assert_eq!(left, ["filler"], "no temporary status left");
    }
    report(
        "S8 output was not replaced atomically",
        &[
            format!(
                "{count} instances, a run takes {:.2} s, of which {:.0} ms writing; {kills} runs killed (SIGKILL) spread over 1.2 times the writing",
                duration.as_secs_f64(),
                writing.as_secs_f64() * 1000.0
            ),
            format!("after the kill: old output {old}, new output {new}, partial {partial}"),
            format!("full metadata disk: {full_disk}"),
        ],
    );
    assert_eq!(partial, 0, "never a partial output");
    assert!(old > 0 && new > 0, "kills landed before and after the swap: {old} old, {new} new");
    assert!(leftovers.is_empty(), "a successful run leaves nothing hidden behind: {leftovers:?}");
    assert!(!status_a.is_empty() && !status_b.is_empty());
}

/// Opens `n` connections that send a request head one byte a second and never finish it.
fn trickle(addr: &str, n: usize, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<usize> {
    let addr = addr.to_owned();
    std::thread::spawn(move || {
        let mut conns: Vec<TcpStream> = (0..n).filter_map(|_| TcpStream::connect(&addr).ok()).collect();
        let head = b"GET / HTTP/1.1\r\nHost: i1.t0.example.com\r\nX-Slow: ";
        for c in &mut conns {
            let _ = c.write_all(head);
        }
        while !stop.load(Ordering::Relaxed) {
            conns.retain_mut(|c| c.write_all(b"a").is_ok());
            std::thread::sleep(Duration::from_secs(1));
        }
        conns.len()
    })
}

#[test]
fn s9_slow_clients_do_not_hold_every_connection() {
    // The standby page: 400 connections trickling their heads.
    let api = FakeApi::start();
    platform(&api, 1, 3, json!({"mode": "request"}));
    let dir = tempfile::tempdir().unwrap();
    let service = start(&api, dir.path(), &[]);
    let stop = Arc::new(AtomicBool::new(false));
    let slow = trickle(&service.addr, size(400, 400), stop.clone());
    std::thread::sleep(Duration::from_secs(1));
    let mut times = Vec::new();
    let probe_until = Instant::now() + Duration::from_secs(size(8, 30) as u64);
    while Instant::now() < probe_until {
        let (status, took) = timed_get(&service.addr, "i1.t0.example.com");
        assert_eq!(status, 200);
        times.push(took);
        std::thread::sleep(Duration::from_millis(200));
    }
    stop.store(true, Ordering::Relaxed);
    let still_open = slow.join().unwrap();
    let standby_worst = *times.iter().max().unwrap();

    // serve-preview: slow heads, and many clients fetching a large file without reading it.
    let site = tempfile::tempdir().unwrap();
    std::fs::write(site.path().join("index.html"), "<p>preview").unwrap();
    std::fs::write(site.path().join("big.bin"), vec![7u8; 40 << 20]).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_host-runner"))
        .args(["serve-preview", "--listen", "127.0.0.1:0", "--dir"])
        .arg(site.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.take().unwrap()), &mut line).unwrap();
    let addr = line.split("http://").nth(1).unwrap().split('/').next().unwrap().to_owned();
    let stop = Arc::new(AtomicBool::new(false));
    let slow = trickle(&addr, 32, stop.clone());
    std::thread::sleep(Duration::from_secs(1));
    let mut preview_times = Vec::new();
    for _ in 0..size(10, 40) {
        let started = Instant::now();
        let a = http_raw(&addr, "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n");
        assert_eq!(a.status, 200);
        preview_times.push(started.elapsed());
        std::thread::sleep(Duration::from_millis(200));
    }
    // A head trickled for longer than the head deadline is cut, whatever it still sends.
    let started = Instant::now();
    let mut c = TcpStream::connect(&addr).unwrap();
    c.write_all(b"GET / HTTP/1.1\r\nX-Slow: ").unwrap();
    let mut cut_after = None;
    while started.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(500));
        if c.write_all(b"a").is_err() {
            cut_after = Some(started.elapsed());
            break;
        }
        c.set_read_timeout(Some(Duration::from_millis(10))).unwrap();
        let mut buf = [0u8; 64];
        if c.read(&mut buf).is_ok() {
            cut_after = Some(started.elapsed());
            break;
        }
    }
    stop.store(true, Ordering::Relaxed);
    slow.join().unwrap();
    let readers: Vec<TcpStream> = (0..32)
        .map(|_| {
            let mut s = TcpStream::connect(&addr).unwrap();
            s.write_all(b"GET /big.bin HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
            s
        })
        .collect();
    std::thread::sleep(Duration::from_secs(3));
    let (_, preview_hwm) = memory_mib(child.id());
    drop(readers);
    let _ = child.kill();
    let _ = child.wait();
    report(
        "S9 slow clients held every connection slot",
        &[
            format!(
                "standby-page with 400 connections trickling their heads: slowest of {} page views {} ({still_open} slow connections still open at the end)",
                times.len(),
                ms(standby_worst)
            ),
            format!(
                "serve-preview with 32 slow connections: slowest of {} requests {}",
                preview_times.len(),
                ms(*preview_times.iter().max().unwrap())
            ),
            format!(
                "serve-preview: a trickled head is cut after {:.1} s",
                cut_after.map_or(f64::NAN, |d| d.as_secs_f64())
            ),
            format!("serve-preview with 32 clients fetching a 40 MiB file without reading: peak {preview_hwm:.0} MiB"),
        ],
    );
    assert!(standby_worst < Duration::from_secs(1), "{times:?}");
    assert!(*preview_times.iter().max().unwrap() < Duration::from_secs(1), "{preview_times:?}");
    assert!(cut_after.is_some_and(|d| d < Duration::from_secs(8)), "{cut_after:?}");
    assert!(preview_hwm < 64.0, "{preview_hwm:.0} MiB");
}
