//! The standby page in a real headless Chromium (Debian's `chromium`, driven by `playwright-core` from
//! `tests/node`), against the running `host-runner standby-page` and the Kubernetes API stand-in: what a visitor
//! reads, what clicking the button (with the mouse, the keyboard, and without JavaScript) does to the cluster in
//! each activation mode, and that an unknown host reveals nothing. It leaves a screenshot of the page in
//! `target/screenshots/standby-page.png`.
//!
//! `cargo xtask test` installs Chromium and the npm package first and sets `FOUNDRY_BROWSER_TESTS=1`, which makes a
//! missing browser a failure. A plain `cargo test` on a machine without them skips this file with that reason.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic, clippy::print_stderr)]

mod support;

use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;
use support::{FakeApi, StandbyService, idle_status, instance_object, license_object};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// The browser and the driver, or why they are missing.
fn browser() -> Result<PathBuf, String> {
    let chromium = std::env::var_os("CHROMIUM").map(PathBuf::from).unwrap_or_else(|| "/usr/bin/chromium".into());
    if !chromium.exists() {
        return Err(format!("{} is missing (apt-get install -y chromium)", chromium.display()));
    }
    if !root().join("tests/node/node_modules/playwright-core").exists() {
        return Err("tests/node/node_modules is missing (npm ci --prefix tests/node)".into());
    }
    Ok(chromium)
}

/// Runs the browser through a plan of visits and returns what it saw per step.
fn visit(chromium: &Path, addr: &str, steps: Value) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let port = addr.rsplit_once(':').unwrap().1.parse::<u16>().unwrap();
    let plan = json!({"chromium": chromium, "port": port, "steps": steps});
    let plan_path = dir.path().join("plan.json");
    std::fs::write(&plan_path, plan.to_string()).unwrap();
    let out = Command::new("node")
        .arg(root().join("tests/node/standby.mjs"))
        .arg(&plan_path)
        .env("HOME", dir.path())
        .output()
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "the browser run failed: {}\n{stdout}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

fn platform() -> FakeApi {
    let api = FakeApi::start();
    // Request mode, with a switch held back by players (the page shows it).
    let mut guild = license_object("guild", "tabletop", "dnd.example.com", "gamma", json!({"mode": "request"}));
    guild["status"] = json!({
        "activeInstance": "alpha", "desiredInstance": "gamma", "pendingSince": support::ago(1800),
        "warnings": [{"code": "SwitchBlockedPlayersConnected",
                      "message": "switch to `gamma` is blocked: 3 players are connected to `alpha`"}],
    });
    api.put(guild);
    api.put(instance_object(
        "alpha",
        "tabletop",
        "guild",
        json!({"connectedPlayers": 3, "lastPlayerActivity": support::ago(10), "lastCheckedAt": support::ago(10)}),
    ));
    api.put(instance_object("beta", "tabletop", "guild", json!({})));
    api.put(instance_object("gamma", "tabletop", "guild", json!({})));
    api.put(instance_object("delta", "tabletop", "guild", json!({})));
    // Auto-when-idle, active instance idle for two hours.
    api.put(license_object(
        "keep",
        "keep",
        "keep.example.com",
        "home",
        json!({"mode": "auto-when-idle", "idleMinutes": 30}),
    ));
    api.put(instance_object("home", "keep", "keep", idle_status(2 * 3600)));
    api.put(instance_object("away", "keep", "keep", json!({})));
    // Disabled.
    api.put(license_object("quiet", "quiet", "quiet.example.com", "one", Value::Null));
    api.put(instance_object("one", "quiet", "quiet", json!({"connectedPlayers": 0, "lastCheckedAt": support::ago(5)})));
    api.put(instance_object("two", "quiet", "quiet", json!({})));
    api
}

#[test]
fn a_visitor_reads_the_page_and_clicks_in_each_mode() {
    let chromium = match browser() {
        Ok(c) => c,
        Err(why) if std::env::var_os("FOUNDRY_BROWSER_TESTS").is_none() && std::env::var_os("CI").is_none() => {
            eprintln!("skipped: {why}; `cargo xtask test` installs it and runs this test");
            return;
        }
        Err(why) => panic!("{why}"),
    };
    let api = platform();
    let dir = tempfile::tempdir().unwrap();
    let service = StandbyService::start(&api, dir.path(), &["--activation"]);
    let shots = root().join("target/screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let shot = shots.join("standby-page.png");
    let steps = json!([
        {"name": "request-mode", "host": "beta.dnd.example.com", "js": true, "press": "mouse",
         "screenshot": shot, "screenshotAfter": shots.join("standby-page-requested.png")},
        {"name": "auto-idle", "host": "away.keep.example.com", "js": true, "press": "keyboard"},
        {"name": "disabled", "host": "two.quiet.example.com", "js": true, "press": "none"},
        {"name": "unknown", "host": "nobody.dnd.example.com", "js": true, "press": "none"},
        {"name": "other-license-domain", "host": "beta.keep.example.com", "js": true, "press": "none"},
        {"name": "no-script", "host": "delta.dnd.example.com", "js": false, "press": "mouse"},
    ]);
    let seen = visit(&chromium, &service.addr, steps);
    let log = service.log();

    // What a visitor reads on a standby host.
    let r = &seen["request-mode"];
    assert_eq!(r["status"], 200, "{log}");
    assert_eq!(r["lang"], "en");
    assert_eq!(r["landmarks"], json!({"main": 1, "header": 1, "footer": 1}));
    assert_eq!(r["h1"], "beta is on standby");
    let text = r["mainText"].as_str().unwrap();
    for fact in ["guild", "alpha", "3 players connected", "Switch pending", "gamma", "blocked: 3 players"] {
        assert!(text.contains(fact), "missing {fact:?} in {text}");
    }
    assert_eq!(r["buttonName"], "Request activation");
    assert_ne!(r["stylesheetApplied"], "rgba(0, 0, 0, 0)", "the stylesheet loads under the CSP");
    // Chromium notes that Cross-Origin-Opener-Policy needs HTTPS, which the Gateway provides and this test does not.
    let errors: Vec<&Value> = r["consoleErrors"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| !e.as_str().unwrap().contains("Cross-Origin-Opener-Policy header has been ignored"))
        .collect();
    assert!(errors.is_empty(), "no CSP violations, missing resources or script errors: {errors:?}");
    assert!(r["after"]["result"].as_str().unwrap().contains("recorded"), "{}", r["after"]);
    assert_eq!(r["after"]["buttonDisabled"], true);

    // Auto-when-idle, pressed with the keyboard: the license switches at once.
    let a = &seen["auto-idle"];
    assert_eq!(a["buttonFocused"], true, "the button is reachable with Tab");
    assert!(a["after"]["result"].as_str().unwrap().contains("becomes the game"), "{}", a["after"]);

    // Disabled: the facts, no button.
    let d = &seen["disabled"];
    assert_eq!(d["status"], 200);
    assert_eq!(d["hasButton"], false);
    assert!(d["mainText"].as_str().unwrap().contains("nobody is connected"));

    // Unknown hosts reveal nothing.
    for name in ["unknown", "other-license-domain"] {
        let u = &seen[name];
        assert_eq!(u["status"], 404, "{name}");
        let body = u["bodyText"].as_str().unwrap();
        for secret in ["guild", "keep", "quiet", "alpha", "beta", "home", "tabletop"] {
            assert!(!body.contains(secret), "{name} reveals {secret}: {body}");
        }
    }

    // Without JavaScript the page reads the same and the form posts (same-origin, token, cookie) and comes back.
    let n = &seen["no-script"];
    assert_eq!(n["status"], 200);
    assert!(n["mainText"].as_str().unwrap().contains("3 players connected"), "{}", n["mainText"]);
    assert!(n["after"]["url"].as_str().unwrap().ends_with("/?result=request"), "{}", n["after"]);
    assert!(n["after"]["result"].as_str().unwrap().contains("recorded"), "{}", n["after"]);
    assert!(n["after"]["mainText"].as_str().unwrap().contains("waits for approval"), "{}", n["after"]);

    // What the clicks did to the cluster: two requests recorded (with and without script) and one switch.
    let writes = api.writes();
    let created: Vec<_> = writes.iter().filter(|w| w.method == "POST").collect();
    assert_eq!(created.len(), 2, "{writes:#?}");
    for (request, instance) in created.iter().zip(["beta", "delta"]) {
        assert_eq!(request.path, "/apis/foundry.platform/v1alpha1/namespaces/tabletop/foundryactivationrequests");
        assert_eq!(request.json()["spec"]["instanceName"], instance);
    }
    let switches: Vec<_> = writes.iter().filter(|w| w.method == "PATCH").collect();
    assert_eq!(switches.len(), 1, "{writes:#?}");
    assert_eq!(switches[0].path, "/apis/foundry.platform/v1alpha1/namespaces/keep/foundrylicenses/keep");
    assert_eq!(switches[0].json()["spec"], json!({"activeInstanceName": "away"}));
    assert!(std::fs::metadata(&shot).map(|m| m.len() > 10_000).unwrap_or(false), "a screenshot was taken");
}
