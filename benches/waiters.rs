//! Concurrent long-polling waiters on one tenant, each released by its gate's callback.
//!
//! Holds WAITERS requests (`?wait=60`) on as many gates of one tenant, then sends the callbacks
//! (8 senders) and measures, per gate, the time from sending the callback to the waiter's answer
//! (the object wakes the waiter before it answers the callback, so this includes the callback's
//! own handling). Timestamps come from different client threads on a loaded 2-core machine:
//! many waiters are seen answering slightly *before* their sender's clock says it sent, so the
//! per-gate figure is clamped at 0 and only its upper percentiles mean much; the wall time from
//! the first callback to the last answer is the robust figure.
//! Run with `scripts/bench.sh`; writes `bench/tmp/waiters.json`. Never part of the tests.

#[path = "../tests/api/support/mod.rs"]
#[allow(unused_imports)] // The harness re-exports helpers this benchmark does not use.
mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use support::fake_jira::FakeJira;
use support::jira_client::{api_get, gate_payload};
use support::TestWorker;

fn main() {
    let waiters: u64 = std::env::var("WAITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let worker = Arc::new(TestWorker::spawn(&[]));
    let jira = Arc::new(FakeJira::start("deployment-gating"));
    jira.install(&worker);
    let token = Arc::new(jira.create_token(&worker, &["gates:read"]));
    for seq in 0..waiters {
        let reply = jira.callback(
            &worker,
            &gate_payload(
                "wait",
                "prod",
                seq,
                "awaiting",
                "2026-01-01T00:00:00.000+00:00",
            ),
            None,
        );
        assert_eq!(reply.status, 204);
    }

    let answered: Arc<Mutex<Vec<Option<Instant>>>> =
        Arc::new(Mutex::new(vec![None; waiters as usize]));
    let handles: Vec<_> = (0..waiters)
        .map(|seq| {
            let (worker, token, answered) = (
                Arc::clone(&worker),
                Arc::clone(&token),
                Arc::clone(&answered),
            );
            std::thread::Builder::new()
                .stack_size(256 * 1024)
                .spawn(move || {
                    let reply = api_get(
                        &worker,
                        &token,
                        &format!("/api/v1/gates/wait/prod/{seq}?wait=60"),
                    );
                    if reply.status == 200 && reply.json()["status"] == "allowed" {
                        answered.lock().unwrap()[seq as usize] = Some(Instant::now());
                    }
                })
                .unwrap()
        })
        .collect();
    // Let every waiter reach the object.
    std::thread::sleep(Duration::from_secs(5));

    let sent: Arc<Mutex<Vec<Option<Instant>>>> = Arc::new(Mutex::new(vec![None; waiters as usize]));
    let senders: Vec<_> = (0..8u64)
        .map(|t| {
            let (worker, jira, sent) = (Arc::clone(&worker), Arc::clone(&jira), Arc::clone(&sent));
            std::thread::spawn(move || {
                for seq in (t..waiters).step_by(8) {
                    let payload = gate_payload(
                        "wait",
                        "prod",
                        seq,
                        "allowed",
                        "2026-01-01T00:00:01.000+00:00",
                    );
                    if jira.callback(&worker, &payload, None).status == 204 {
                        sent.lock().unwrap()[seq as usize] = Some(Instant::now());
                    }
                }
            })
        })
        .collect();
    for s in senders {
        s.join().unwrap();
    }
    for h in handles {
        h.join().unwrap();
    }

    let (sent, answered) = (sent.lock().unwrap(), answered.lock().unwrap());
    let mut latencies: Vec<f64> = sent
        .iter()
        .zip(answered.iter())
        .filter_map(|(s, a)| {
            Some(
                a.as_ref()?
                    .saturating_duration_since(*s.as_ref()?)
                    .as_secs_f64()
                    * 1000.0,
            )
        })
        .collect();
    latencies.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let released = latencies.len();
    let pct = |p: f64| {
        latencies
            .get(((released as f64 - 1.0) * p).round() as usize)
            .copied()
            .unwrap_or(f64::NAN)
    };
    println!("\nwaiters on one tenant, through wrangler dev's proxy");
    println!("waiters held: {waiters}, released by their callback: {released}");
    println!(
        "callback sent -> waiter answered: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        pct(0.5),
        pct(0.99),
        pct(1.0)
    );
    let first_sent = sent.iter().flatten().min().copied();
    let last_answer = answered.iter().flatten().max().copied();
    let release_ms = match (first_sent, last_answer) {
        (Some(f), Some(l)) => l.saturating_duration_since(f).as_secs_f64() * 1000.0,
        _ => f64::NAN,
    };
    println!("first callback sent -> last waiter answered: {release_ms:.0} ms");
    let results = json!({
        "title": "Concurrent long-poll waiters on one tenant (through wrangler dev's proxy)",
        "rows": [
            {"metric": "waiters released by their callback", "value": released, "unit": format!("of {waiters}"),
             "goal": format!("all {waiters}"), "met": released as u64 == waiters, "note": null},
            {"metric": "first callback sent -> last waiter answered", "value": release_ms, "unit": "ms",
             "goal": null, "met": null, "note": "bounded by callback throughput (8 senders)"},
            {"metric": "callback sent -> waiter answered p99", "value": pct(0.99), "unit": "ms",
             "goal": null, "met": null, "note": format!("max {:.1} ms", pct(1.0))},
        ],
        "waiters": waiters, "released": released,
        "callback_sent_to_answer_ms": {"p50": pct(0.5), "p99": pct(0.99), "max": pct(1.0)},
        "first_callback_to_last_answer_ms": release_ms,
        "through": "wrangler dev proxy (wrangler 4.86, workerd 2026-04-26)"});
    let path = support::fixtures::repo_path("bench/tmp/waiters.json");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, serde_json::to_string_pretty(&results).unwrap()).unwrap();
    println!("wrote {}", path.display());
}
