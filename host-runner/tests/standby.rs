//! `host-runner standby-page` over real HTTP, against the Kubernetes API stand-in: what each host gets, what an
//! attacker gets (path traversal, Host header tricks, cross-site and replayed POSTs, floods), and the exact API
//! requests each activation mode leads to.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

mod support;

use serde_json::{Value, json};
use std::time::{Duration, Instant};
use support::{
    FakeApi, Fault, HttpAnswer, StandbyService, http_get, http_post, http_raw, idle_status, instance_object,
    license_object, status_body,
};

/// License `guild` (namespace `tabletop`, `dnd.example.com`) with `activation`; `alpha` active and idle for two
/// hours, `beta` and `gamma` (scheduled for deletion) on standby; license `rivals` (namespace `rivals`,
/// `rivals.example.com`) with `delta`.
fn platform(activation: Value) -> FakeApi {
    let api = FakeApi::start();
    api.put(license_object("guild", "tabletop", "dnd.example.com", "alpha", activation));
    api.put(instance_object("alpha", "tabletop", "guild", idle_status(2 * 3600)));
    api.put(instance_object("beta", "tabletop", "guild", json!({})));
    let mut gamma = instance_object("gamma", "tabletop", "guild", json!({}));
    gamma["metadata"]["annotations"] = json!({"foundry.platform/scheduled-delete-at": "2026-12-24T18:00:00Z"});
    api.put(gamma);
    api.put(license_object("rivals", "rivals", "rivals.example.com", "delta", json!({"mode": "request"})));
    api.put(instance_object("delta", "rivals", "rivals", json!({"connectedPlayers": 5})));
    api
}

fn start(api: &FakeApi, extra: &[&str]) -> (StandbyService, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    (StandbyService::start(api, dir.path(), extra), dir)
}

/// The CSRF token and cookie of the page for `host`.
fn page_token(service: &StandbyService, host: &str) -> (String, String) {
    let page = http_get(&service.addr, host, "/");
    assert_eq!(page.status, 200, "{page:?}");
    let cookie = page.header("set-cookie").unwrap().split(';').next().unwrap().to_owned();
    let value = cookie.split_once('=').unwrap().1.to_owned();
    // A page without the button has no form; a forged POST can still send the cookie's token.
    if let Some(field) = page.body.split("name=\"csrf\" value=\"").nth(1) {
        assert_eq!(field.split('"').next().unwrap(), value, "the form and the cookie carry the same token");
    }
    (value, cookie)
}

/// A POST a browser on the page for `host` sends.
fn click(service: &StandbyService, host: &str, extra: &str) -> HttpAnswer {
    let (token, cookie) = page_token(service, host);
    http_post(
        &service.addr,
        host,
        &format!("Origin: https://{host}\r\nCookie: {cookie}\r\nAccept: application/json\r\n{extra}"),
        &format!("csrf={token}"),
    )
}

fn assert_security_headers(a: &HttpAnswer) {
    let csp = a.header("content-security-policy").unwrap_or_default();
    assert!(csp.contains("default-src 'none'") && csp.contains("script-src 'self'"), "{csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert_eq!(a.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(a.header("referrer-policy"), Some("same-origin"));
    assert_eq!(a.header("x-frame-options"), Some("DENY"));
}

#[test]
fn the_page_shows_the_standby_instance_and_its_license_only() {
    let api = platform(json!({"mode": "request"}));
    let (service, _dir) = start(&api, &["--activation"]);
    let page = http_get(&service.addr, "beta.dnd.example.com", "/");
    assert_eq!(page.status, 200, "{}", service.log());
    assert_security_headers(&page);
    assert_eq!(page.header("content-type"), Some("text/html; charset=utf-8"));
    assert_eq!(page.header("cache-control"), Some("no-store"));
    let cookie = page.header("set-cookie").unwrap();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"), "{cookie}");
    assert!(!cookie.contains("Secure"), "plain HTTP cannot keep a Secure cookie");
    let behind_tls = http_raw(
        &service.addr,
        "GET / HTTP/1.1\r\nHost: beta.dnd.example.com\r\nX-Forwarded-Proto: https\r\nConnection: close\r\n\r\n",
    );
    assert!(behind_tls.header("set-cookie").unwrap().contains("; Secure"), "behind TLS the cookie is Secure");
    let body = &page.body;
    for fact in [
        "<code>beta</code> is on standby",
        "<dt>License</dt><dd><code>guild</code>",
        "href=\"https://alpha.dnd.example.com/\"><code>alpha</code>",
        "nobody is connected",
        "Idle since",
        "(2h ago)",
        "Request activation",
    ] {
        assert!(body.contains(fact), "missing {fact:?} in\n{body}");
    }
    for secret in ["foundry-license", "license-key", "rivals", "delta", "tabletop"] {
        assert!(!body.contains(secret), "the page reveals {secret:?}");
    }
    assert!(!body.contains("<script>") && !body.contains("style="), "no inline script or style");

    let gamma = http_get(&service.addr, "gamma.dnd.example.com", "/");
    assert!(gamma.body.contains("Scheduled for deletion"), "{}", gamma.body);
    assert!(gamma.body.contains("2026-12-24 18:00 UTC"), "{}", gamma.body);
    assert!(!gamma.body.contains("Request activation"), "a doomed instance cannot be requested");
}

#[test]
fn hosts_that_name_no_instance_get_one_identical_404_and_learn_nothing() {
    let api = platform(json!({"mode": "request"}));
    let (service, _dir) = start(&api, &["--activation"]);
    let reference = http_get(&service.addr, "nothing.example.org", "/");
    assert_eq!(reference.status, 404);
    assert_security_headers(&reference);
    for host in [
        "omega.dnd.example.com",      // not an instance
        "beta.rivals.example.com",    // an instance of another license under that license's domain
        "delta.dnd.example.com",      // another license's instance under this domain
        "beta.dnd.example.com.",      // trailing dot
        "x.beta.dnd.example.com",     // deeper name
        "dnd.example.com",            // the base domain itself
        "127.0.0.1",                  // an IP
        "127.0.0.1:8080",             // an IP with a port
        "[::1]:8080",                 // an IPv6 literal
        "beta.dnd.example.com:99999", // not a port
        "beta.dnd.example.com:80:80", // two ports
        "beta.dnd.example.com%2f..",  // encoded junk
        "beta..dnd.example.com",      // empty label
    ] {
        let answer = http_get(&service.addr, host, "/");
        assert_eq!(answer.status, 404, "{host}");
        assert_eq!(answer.body, reference.body, "{host}: the 404 page is the same whatever was asked");
        assert!(answer.header("set-cookie").is_none(), "{host}");
    }
    // A missing Host header, and two of them.
    let none = http_raw(&service.addr, "GET / HTTP/1.1\r\nConnection: close\r\n\r\n");
    assert!(none.status == 404 || none.status == 400, "{none:?}");
    assert!(!none.body.contains("guild"));
    let two = http_raw(
        &service.addr,
        "GET / HTTP/1.1\r\nHost: beta.dnd.example.com\r\nHost: evil.example\r\nConnection: close\r\n\r\n",
    );
    assert!(two.status == 404 || two.status == 400, "{two:?}");
    assert!(!two.body.contains("guild"));
}

#[test]
fn case_and_a_port_in_the_host_are_accepted() {
    let api = platform(json!({"mode": "request"}));
    let (service, _dir) = start(&api, &["--activation"]);
    for host in ["BETA.Dnd.Example.COM", "beta.dnd.example.com:443", "beta.dnd.example.com:8080"] {
        let page = http_get(&service.addr, host, "/");
        assert_eq!(page.status, 200, "{host}");
        assert!(page.body.contains("<code>beta</code> is on standby"), "{host}");
    }
}

#[test]
fn only_the_page_and_its_embedded_assets_are_served() {
    let api = platform(json!({"mode": "request"}));
    let (service, _dir) = start(&api, &["--activation"]);
    let css = http_get(&service.addr, "beta.dnd.example.com", "/assets/standby.css");
    assert_eq!(css.status, 200);
    assert_eq!(css.header("content-type"), Some("text/css; charset=utf-8"));
    let js = http_get(&service.addr, "beta.dnd.example.com", "/assets/standby.js");
    assert_eq!(js.header("content-type"), Some("text/javascript; charset=utf-8"));
    assert_security_headers(&js);
    for path in [
        "/../../../../etc/passwd",
        "/assets/../../../../etc/passwd",
        "/assets/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        "/assets/..%2f..%2f..%2fetc%2fpasswd",
        "/%2e%2e/%2e%2e/etc/hostname",
        "//etc/passwd",
        "/assets/standby.css/../../../etc/passwd",
        "/assets/",
        "/assets/standby.css%00.html",
        "/index.html",
        "/Cargo.toml",
        "/src/standby/assets/standby.css",
        "/api/status",
        "/activate/../etc/passwd",
    ] {
        let raw = format!("GET {path} HTTP/1.1\r\nHost: beta.dnd.example.com\r\nConnection: close\r\n\r\n");
        let answer = http_raw(&service.addr, &raw);
        assert!(answer.status == 404 || answer.status == 400, "{path}: {}", answer.status);
        assert!(!answer.body.contains("root:") && !answer.body.contains("[package]"), "{path}");
    }
    let put = http_raw(
        &service.addr,
        "PUT / HTTP/1.1\r\nHost: beta.dnd.example.com\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(put.status, 405);
}

#[test]
fn posts_without_same_origin_and_a_valid_token_are_refused_and_change_nothing() {
    let api = platform(json!({"mode": "request"}));
    let (service, _dir) = start(&api, &["--activation", "--token-lifetime", "1", "--client-limit", "100"]);
    let host = "beta.dnd.example.com";
    let (token, cookie) = page_token(&service, host);
    let (other_token, other_cookie) = page_token(&service, "gamma.dnd.example.com");
    let cases: Vec<(&str, String, String)> = vec![
        ("no origin or referer", format!("Cookie: {cookie}\r\n"), format!("csrf={token}")),
        ("a foreign origin", format!("Origin: https://evil.example\r\nCookie: {cookie}\r\n"), format!("csrf={token}")),
        (
            "a lookalike origin",
            format!("Origin: https://{host}.evil.example\r\nCookie: {cookie}\r\n"),
            format!("csrf={token}"),
        ),
        ("a null origin", format!("Origin: null\r\nCookie: {cookie}\r\n"), format!("csrf={token}")),
        (
            "a foreign referer",
            format!("Referer: https://evil.example/{host}/\r\nCookie: {cookie}\r\n"),
            format!("csrf={token}"),
        ),
        ("no token", format!("Origin: https://{host}\r\nCookie: {cookie}\r\n"), String::new()),
        ("no cookie", format!("Origin: https://{host}\r\n"), format!("csrf={token}")),
        (
            "a forged token",
            format!("Origin: https://{host}\r\nCookie: foundry_standby_csrf=1.00\r\n"),
            "csrf=1.00".into(),
        ),
        ("a mismatched pair", format!("Origin: https://{host}\r\nCookie: {cookie}\r\n"), format!("csrf={other_token}")),
        (
            "another host's token",
            format!("Origin: https://{host}\r\nCookie: {}\r\n", other_cookie),
            format!("csrf={other_token}"),
        ),
    ];
    for (what, headers, body) in &cases {
        let answer = http_post(&service.addr, host, &format!("{headers}Accept: application/json\r\n"), body);
        assert_eq!(answer.status, 403, "{what}: {answer:?}");
        assert_security_headers(&answer);
    }
    // A referer on the same host is accepted in place of an origin (a browser that omits Origin).
    let (token, cookie) = page_token(&service, host);
    let ok = http_post(
        &service.addr,
        host,
        &format!("Referer: https://{host}/\r\nCookie: {cookie}\r\nAccept: application/json\r\n"),
        &format!("csrf={token}"),
    );
    assert_eq!(ok.status, 201, "{ok:?} {}", service.log());
    // A stale token: issued more than two lifetimes ago.
    let (stale, stale_cookie) = page_token(&service, "gamma.dnd.example.com");
    std::thread::sleep(Duration::from_millis(2100));
    let answer = http_post(
        &service.addr,
        "gamma.dnd.example.com",
        &format!("Origin: https://gamma.dnd.example.com\r\nCookie: {stale_cookie}\r\nAccept: application/json\r\n"),
        &format!("csrf={stale}"),
    );
    assert_eq!(answer.status, 403, "a stale token: {answer:?}");
    assert_eq!(api.writes().len(), 1, "only the valid POST wrote: {:#?}", api.writes());
}

#[test]
fn clients_and_instances_are_rate_limited() {
    let api = platform(json!({"mode": "request"}));
    let (service, _dir) =
        start(&api, &["--activation", "--client-limit", "3", "--instance-limit", "1", "--trust-forwarded-for"]);
    let host = "gamma.dnd.example.com";
    for i in 0..3 {
        let answer = click(&service, host, "X-Forwarded-For: 203.0.113.7\r\n");
        assert_eq!(answer.status, 409, "click {i}: {answer:?}");
    }
    let limited = click(&service, host, "X-Forwarded-For: 203.0.113.7\r\n");
    assert_eq!(limited.status, 429, "{limited:?}");
    assert!(limited.header("retry-after").is_some());
    // Another client (the Gateway appends the client's address last) is not affected.
    let other = click(&service, host, "X-Forwarded-For: 203.0.113.7, 198.51.100.9\r\n");
    assert_eq!(other.status, 409, "{other:?}");

    // Per instance: while the API refuses to record a request, the instance is not hammered.
    api.fault(
        "POST",
        "/apis/foundry.platform/v1alpha1/namespaces/tabletop/foundryactivationrequests",
        Fault::Status(500, status_body(500, "InternalError", "etcd is sad")),
        None,
    );
    let first = click(&service, "beta.dnd.example.com", "X-Forwarded-For: 192.0.2.1\r\n");
    assert_eq!(first.status, 502, "{first:?}");
    assert!(!first.body.contains("etcd"), "API details never reach the page: {}", first.body);
    let second = click(&service, "beta.dnd.example.com", "X-Forwarded-For: 192.0.2.2\r\n");
    assert_eq!(second.status, 429, "{second:?}");
    let posts = api.requests().into_iter().filter(|r| r.method == "POST").count();
    assert_eq!(posts, 1, "the second click never reached the API");
}

#[test]
fn page_views_are_rate_limited_per_client() {
    let api = platform(json!({"mode": "request"}));
    let (service, _dir) = start(&api, &["--page-limit", "3", "--trust-forwarded-for"]);
    let view = |client: &str| {
        http_raw(
            &service.addr,
            &format!(
                "GET / HTTP/1.1\r\nHost: beta.dnd.example.com\r\nX-Forwarded-For: {client}\r\nConnection: close\r\n\r\n"
            ),
        )
    };
    for _ in 0..3 {
        assert_eq!(view("203.0.113.7").status, 200);
    }
    let limited = view("203.0.113.7");
    assert_eq!(limited.status, 429);
    assert!(limited.header("retry-after").is_some());
    assert!(!limited.body.contains("beta"));
    assert_eq!(view("203.0.113.8").status, 200, "another client is served");
}

#[test]
fn oversized_posts_are_refused_before_reading_them() {
    let api = platform(json!({"mode": "request"}));
    let (service, _dir) = start(&api, &["--activation"]);
    let (token, cookie) = page_token(&service, "beta.dnd.example.com");
    let body = format!("csrf={token}&pad={}", "x".repeat(10_000));
    let answer = http_post(
        &service.addr,
        "beta.dnd.example.com",
        &format!("Origin: https://beta.dnd.example.com\r\nCookie: {cookie}\r\nAccept: application/json\r\n"),
        &body,
    );
    assert_eq!(answer.status, 413, "{answer:?}");
    let huge_header = format!(
        "GET / HTTP/1.1\r\nHost: beta.dnd.example.com\r\nX-Junk: {}\r\nConnection: close\r\n\r\n",
        "y".repeat(64 * 1024)
    );
    let answer = http_raw(&service.addr, &huge_header);
    assert!(answer.status == 431 || answer.status == 400 || answer.status == 0, "{}", answer.status);
    assert!(api.writes().is_empty());
}

#[test]
fn request_mode_records_a_request_and_an_approval_switches_the_license() {
    let api = platform(json!({"mode": "request", "requestTTL": "1h"}));
    let (service, _dir) = start(&api, &["--activation", "--review-interval", "1"]);
    let answer = click(&service, "beta.dnd.example.com", "");
    assert_eq!(answer.status, 201, "{answer:?}\n{}", service.log());
    let created: Vec<_> = api.requests().into_iter().filter(|r| r.method == "POST").collect();
    assert_eq!(created.len(), 1);
    assert_eq!(created[0].path, "/apis/foundry.platform/v1alpha1/namespaces/tabletop/foundryactivationrequests");
    let body = created[0].json();
    assert_eq!(body["kind"], "FoundryActivationRequest");
    assert_eq!(body["spec"]["licenseRef"]["name"], "guild");
    assert_eq!(body["spec"]["instanceName"], "beta");
    assert_eq!(body["spec"]["approved"], false);

    // A second click points at the waiting request instead of making another.
    let again = click(&service, "beta.dnd.example.com", "");
    assert_eq!(again.status, 200);
    assert_eq!(serde_json::from_str::<Value>(&again.body).unwrap()["outcome"], "pending");
    assert_eq!(api.requests().iter().filter(|r| r.method == "POST").count(), 1);
    let page = http_get(&service.addr, "beta.dnd.example.com", "/");
    assert!(page.body.contains("waits for approval"), "{}", page.body);
    assert!(!page.body.contains("id=\"activate\""), "no button while a request waits");

    // The review marks it pending; nothing switches before an operator approves.
    let name = body["metadata"]["name"].as_str().unwrap().to_owned();
    wait_for(|| api.object("FoundryActivationRequest", "tabletop", &name).unwrap()["status"]["phase"] == "Pending");
    assert_eq!(api.object("FoundryLicense", "tabletop", "guild").unwrap()["spec"]["activeInstanceName"], "alpha");

    // An operator approves (`kubectl patch ... spec.approved=true`).
    let mut request = api.object("FoundryActivationRequest", "tabletop", &name).unwrap();
    request["spec"]["approved"] = json!(true);
    api.put(request);
    wait_for(|| api.object("FoundryLicense", "tabletop", "guild").unwrap()["spec"]["activeInstanceName"] == "beta");
    let switch = api
        .requests()
        .into_iter()
        .find(|r| {
            r.method == "PATCH" && r.path == "/apis/foundry.platform/v1alpha1/namespaces/tabletop/foundrylicenses/guild"
        })
        .unwrap();
    assert_eq!(switch.headers["content-type"], "application/merge-patch+json");
    assert_eq!(
        switch.json()["spec"],
        json!({"activeInstanceName": "beta"}),
        "the switch only sets the desired instance"
    );
    assert!(switch.json()["metadata"]["resourceVersion"].is_string(), "guarded by the version read");
    wait_for(|| api.object("FoundryActivationRequest", "tabletop", &name).unwrap()["status"]["phase"] == "Applied");
    let writes = api.writes();
    assert!(
        writes.iter().all(|w| w.path.ends_with("/foundryactivationrequests")
            || w.path.ends_with(&format!("/foundryactivationrequests/{name}/status"))
            || w.path.ends_with("/foundrylicenses/guild")),
        "{writes:#?}"
    );
    assert_eq!(writes.iter().filter(|w| w.path.ends_with("/foundrylicenses/guild")).count(), 1, "one switch");
}

#[test]
fn auto_when_idle_switches_at_once_and_busy_instances_only_get_a_request() {
    let api = platform(json!({"mode": "auto-when-idle", "idleMinutes": 30}));
    let (service, _dir) = start(&api, &["--activation"]);
    let answer = click(&service, "beta.dnd.example.com", "");
    assert_eq!(answer.status, 200, "{answer:?}\n{}", service.log());
    assert_eq!(serde_json::from_str::<Value>(&answer.body).unwrap()["outcome"], "switch");
    let writes = api.writes();
    assert_eq!(writes.len(), 1, "{writes:#?}");
    assert_eq!(writes[0].method, "PATCH");
    assert_eq!(writes[0].path, "/apis/foundry.platform/v1alpha1/namespaces/tabletop/foundrylicenses/guild");
    assert_eq!(writes[0].json()["spec"], json!({"activeInstanceName": "beta"}));

    // Players on the active instance: the click becomes a request.
    let api = platform(json!({"mode": "auto-when-idle", "idleMinutes": 30}));
    api.put(instance_object(
        "alpha",
        "tabletop",
        "guild",
        json!({"connectedPlayers": 4, "lastCheckedAt": support::ago(5)}),
    ));
    let (service, _dir) = start(&api, &["--activation"]);
    let page = http_get(&service.addr, "beta.dnd.example.com", "/");
    assert!(page.body.contains("4 players connected"), "{}", page.body);
    let answer = click(&service, "beta.dnd.example.com", "");
    assert_eq!(answer.status, 201, "{answer:?}");
    let writes = api.writes();
    assert_eq!(writes.len(), 1);
    assert_eq!(writes[0].method, "POST");
    assert!(writes[0].path.ends_with("/namespaces/tabletop/foundryactivationrequests"));
}

#[test]
fn without_activation_the_page_only_reads_and_offers_no_button() {
    let api = platform(json!({"mode": "request"}));
    let (service, _dir) = start(&api, &[]);
    let page = http_get(&service.addr, "beta.dnd.example.com", "/");
    assert_eq!(page.status, 200);
    assert!(!page.body.contains("id=\"activate\""), "{}", page.body);
    let answer = click(&service, "beta.dnd.example.com", "");
    assert_eq!(answer.status, 409);
    assert!(api.writes().is_empty());
    assert!(
        api.requests().iter().all(|r| !r.path.contains("foundryactivationrequests")),
        "the read-only service never touches requests (its RBAC does not allow it)"
    );

    // A license in `disabled` mode shows no button even on a service that may activate.
    let api = platform(Value::Null);
    let (service, _dir) = start(&api, &["--activation"]);
    let page = http_get(&service.addr, "beta.dnd.example.com", "/");
    assert!(!page.body.contains("Request activation"), "{}", page.body);
    assert_eq!(click(&service, "beta.dnd.example.com", "").status, 409);
    assert!(api.writes().is_empty());
}

#[test]
fn a_failing_api_gives_a_generic_unavailable_page() {
    let api = platform(json!({"mode": "request"}));
    api.fault(
        "GET",
        "/apis/foundry.platform/v1alpha1/foundrylicenses",
        Fault::Status(403, status_body(403, "Forbidden", "system:serviceaccount:foundry-vtt:x cannot list")),
        None,
    );
    let dir = tempfile::tempdir().unwrap();
    let service = StandbyService::spawn(&api, dir.path(), &[]);
    wait_for(|| service.log().contains("403"));
    let page = http_get(&service.addr, "beta.dnd.example.com", "/");
    assert_eq!(page.status, 503);
    assert!(!page.body.contains("serviceaccount") && !page.body.contains("Forbidden"), "{}", page.body);
    assert!(service.log().contains("403"), "the log says why: {}", service.log());
}

#[test]
fn unanswered_requests_expire_and_switch_nothing() {
    let api = platform(json!({"mode": "request", "requestTTL": "2s"}));
    let (service, _dir) = start(&api, &["--activation", "--review-interval", "1"]);
    let answer = click(&service, "beta.dnd.example.com", "");
    assert_eq!(answer.status, 201, "{answer:?}");
    let name = api.objects("FoundryActivationRequest")[0]["metadata"]["name"].as_str().unwrap().to_owned();
    wait_for(|| api.object("FoundryActivationRequest", "tabletop", &name).unwrap()["status"]["phase"] == "Expired");
    let status = api.object("FoundryActivationRequest", "tabletop", &name).unwrap()["status"].clone();
    assert_eq!(status["reason"], "Expired");
    assert!(api.writes().iter().all(|w| !w.path.contains("/foundrylicenses/")), "no switch");
    // Approving it now changes nothing: it is finished.
    let mut request = api.object("FoundryActivationRequest", "tabletop", &name).unwrap();
    request["spec"]["approved"] = json!(true);
    api.put(request);
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(api.object("FoundryLicense", "tabletop", "guild").unwrap()["spec"]["activeInstanceName"], "alpha");
    // And the instance can be requested again.
    assert_eq!(click(&service, "beta.dnd.example.com", "").status, 201);
}

fn wait_for(mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < Duration::from_secs(15), "timed out");
        std::thread::sleep(Duration::from_millis(100));
    }
}
