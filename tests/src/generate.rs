//! Random, valid routing calls for property and differential tests.
//!
//! A generated call has a license with any combination of desired instance (an instance, a missing one, or
//! none), current instance (an instance, a deleted one, or none), switch mode, grace period and pending time;
//! up to eight instances, some scheduled for deletion (in the future or already due), some belonging to another
//! license, most with a workload configured for their generation (some not yet, some for an older generation);
//! and observations with counts, errors or nothing for each instance.

use proptest::prelude::*;
use serde_json::{Value, json};

const NAMES: [&str; 8] = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"];

/// One instance: name index, scheduled for deletion (none, in the future, due), belongs to another license, its
/// workload (configured, not configured, configured for an older generation).
fn instance() -> impl Strategy<Value = (usize, u8, bool, u8)> {
    (
        0..NAMES.len(),
        prop_oneof![8 => Just(0u8), 1 => Just(1u8), 1 => Just(2u8)],
        prop::bool::weighted(0.1),
        prop_oneof![8 => Just(0u8), 1 => Just(1u8), 1 => Just(2u8)],
    )
}

/// A name that may be an instance, a missing instance, or nothing.
fn reference() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        3 => (0..NAMES.len()).prop_map(|i| NAMES.get(i).map(|n| (*n).to_owned())),
        1 => Just(Some("ghost".to_owned())),
        1 => Just(None),
    ]
}

/// A player observation: a count, an error, or none.
fn players() -> impl Strategy<Value = Option<Result<u32, String>>> {
    prop_oneof![
        2 => (0u32..4).prop_map(|n| Some(Ok(n))),
        1 => Just(Some(Err("connection refused".to_owned()))),
        1 => Just(None),
    ]
}

/// A valid `foundry/license/route` call.
pub fn route_call() -> impl Strategy<Value = Value> {
    (
        prop::collection::vec(instance(), 0..8),
        reference(),
        reference(),
        prop::bool::ANY,
        prop::option::of(prop_oneof![Just("30m"), Just("1h"), Just("0s")]),
        prop::option::of(0i64..7200),
        prop::collection::vec(players(), NAMES.len()),
        prop::bool::ANY,
    )
        .prop_map(|(instances, desired, current, force, grace, pending_ago, observed, dns)| {
            let now = 1_795_000_000i64;
            let mut spec = json!({
                "licenseSecretRef": {"name": "license", "key": "key"},
                "switchMode": if force { "force" } else { "block" },
                "gateway": {"baseDomain": "play.example.org", "parentRef": {"name": "gw"}},
            });
            if let Some(d) = desired {
                spec["activeInstanceName"] = json!(d);
            }
            if let Some(g) = grace {
                spec["switchGracePeriod"] = json!(g);
            }
            if dns {
                spec["gateway"]["dnsTargets"] = json!(["192.0.2.1"]);
            }
            let mut status = json!({});
            if let Some(c) = current {
                status["activeInstance"] = json!(c);
            }
            if let Some(ago) = pending_ago {
                status["pendingSince"] = json!(format_time(now - ago));
            }
            let mut seen = std::collections::BTreeSet::new();
            let instances: Vec<Value> = instances
                .into_iter()
                .filter(|(i, _, _, _)| seen.insert(*i))
                .map(|(i, scheduled, foreign, workload)| {
                    let mut meta = json!({"name": NAMES.get(i).copied().unwrap_or("alpha"), "namespace": "games"});
                    match scheduled {
                        1 => {
                            meta["annotations"] =
                                json!({"foundry.platform/scheduled-delete-at": format_time(now + 86_400)})
                        }
                        2 => {
                            meta["annotations"] = json!({"foundry.platform/scheduled-delete-at": format_time(now - 60)})
                        }
                        _ => {}
                    }
                    meta["generation"] = json!(2);
                    let status = match workload {
                        0 => json!({"configuredGeneration": 2, "conditions": [{"type": "Ready", "status": "True"}]}),
                        1 => json!({}),
                        _ => json!({"configuredGeneration": 1, "conditions": [{"type": "Ready", "status": "True"}]}),
                    };
                    json!({
                        "apiVersion": "foundry.platform/v1alpha1",
                        "kind": "FoundryInstance",
                        "metadata": meta,
                        "spec": {"licenseRef": {"name": if foreign { "other" } else { "guild" }}},
                        "status": status,
                    })
                })
                .collect();
            let players: Vec<Value> = NAMES
                .iter()
                .zip(observed)
                .filter_map(|(name, o)| match o? {
                    Ok(n) => Some(json!({"instance": name, "connected": n})),
                    Err(e) => Some(json!({"instance": name, "error": e})),
                })
                .collect();
            json!({
                "license": {
                    "apiVersion": "foundry.platform/v1alpha1",
                    "kind": "FoundryLicense",
                    "metadata": {"name": "guild", "namespace": "games", "generation": 3},
                    "spec": spec,
                    "status": status,
                },
                "instances": instances,
                "observations": {"players": players},
                "now": format_time(now),
            })
        })
}

/// RFC 3339 in UTC for Unix seconds (the generator's own, independent of the policy's).
fn format_time(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (proleptic Gregorian).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, (rem % 3600) / 60, rem % 60)
}
