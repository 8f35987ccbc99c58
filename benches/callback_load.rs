//! Callback ingest through the local worker (real workerd, KV and Durable Objects): signed
//! callbacks across 50 tenants and 1,000 gates at concurrency 1, 8 and 32, next to the no-op route
//! `GET /healthz` and a gate read of the same worker in the same run. Measured twice: through
//! wrangler dev's proxy (what `wrangler dev` users hit) and on workerd's own port (the proxy's
//! cost removed).
//!
//! Run with `scripts/bench.sh` (it builds the worker first). Prints a table and writes
//! `bench/tmp/callback-ingest.json`. Never part of the tests: no figure here is asserted.

#[path = "../tests/api/support/mod.rs"]
#[allow(unused_imports)] // The harness re-exports helpers this benchmark does not use.
mod support;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use support::fake_jira::FakeJira;
use support::jira_client::gate_payload;
use support::{client, TestWorker};

const TENANTS: usize = 50;
const GATES_PER_TENANT: u64 = 20;

struct Run {
    origin: &'static str,
    route: &'static str,
    concurrency: usize,
    requests: usize,
    errors: usize,
    seconds: f64,
    latencies_ms: Vec<f64>,
}

impl Run {
    fn rps(&self) -> f64 {
        self.requests as f64 / self.seconds
    }
    fn percentile(&self, p: f64) -> f64 {
        let i = ((self.latencies_ms.len() as f64 - 1.0) * p).round() as usize;
        self.latencies_ms[i]
    }
}

fn main() {
    let worker = Arc::new(TestWorker::spawn(&[]));
    let sites: Arc<Vec<FakeJira>> = Arc::new(
        (0..TENANTS)
            .map(|_| {
                let jira = FakeJira::start("deployment-gating");
                jira.install(&worker);
                jira
            })
            .collect(),
    );
    let tokens: Arc<Vec<String>> = Arc::new(
        sites
            .iter()
            .map(|s| s.create_token(&worker, &["gates:read"]))
            .collect(),
    );
    for site in sites.iter() {
        let reply = site.callback(
            &worker,
            &gate_payload(
                "bench",
                "prod",
                0,
                "awaiting",
                "2020-01-01T00:00:00.000+00:00",
            ),
            None,
        );
        assert_eq!(reply.status, 204, "seeding a gate: {}", reply.body);
    }
    // Strictly increasing timestamps so every callback is applied (the expensive path).
    let clock = Arc::new(AtomicU64::new(0));

    let origins = [
        ("proxy", worker.base_url.clone()),
        ("workerd", worker.direct_url()),
    ];
    let mut runs = Vec::new();
    for (origin, base) in origins {
        for (concurrency, requests) in [(1, 400), (8, 2000), (32, 3200)] {
            for route in ["noop", "callback", "gate read"] {
                let (base, s, c, t) = (
                    base.clone(),
                    Arc::clone(&sites),
                    Arc::clone(&clock),
                    Arc::clone(&tokens),
                );
                let op = move |i: usize| {
                    let site = &s[i % TENANTS];
                    match route {
                        "noop" => client::send("GET", &format!("{base}/healthz"), &[], None).status,
                        "gate read" => {
                            let auth = format!("Bearer {}", t[i % TENANTS]);
                            let url = format!("{base}/api/v1/gates/bench/prod/0");
                            client::send("GET", &url, &[("Authorization", &auth)], None).status
                        }
                        _ => {
                            let tick = c.fetch_add(1, Ordering::SeqCst);
                            let at = chrono::DateTime::from_timestamp_millis(
                                1_800_000_000_000 + tick as i64,
                            )
                            .unwrap()
                            .to_rfc3339_opts(chrono::SecondsFormat::Millis, false);
                            let seq = (i as u64 / TENANTS as u64) % GATES_PER_TENANT;
                            let body = gate_payload("bench", "prod", seq, "allowed", &at);
                            let auth = format!("JWT {}", site.request_token("POST", "/callback"));
                            client::send(
                                "POST",
                                &format!("{base}/callback"),
                                &[
                                    ("Authorization", &auth),
                                    ("Content-Type", "application/json"),
                                ],
                                Some(body.to_string().as_bytes()),
                            )
                            .status
                        }
                    }
                };
                runs.push(load(origin, route, concurrency, requests, op));
            }
        }
    }

    println!(
        "\ncallback ingest (50 tenants, 1,000 gates) and a gate read (bearer token, one Durable Object round trip, no write) vs the no-op route; same worker, same run"
    );
    println!(
        "{:<8} {:<9} {:>3} {:>6} {:>7} {:>9} {:>9} {:>9}",
        "origin", "route", "c", "reqs", "errors", "req/s", "p50 ms", "p99 ms"
    );
    for r in &runs {
        println!(
            "{:<8} {:<9} {:>3} {:>6} {:>7} {:>9.0} {:>9.2} {:>9.2}",
            r.origin,
            r.route,
            r.concurrency,
            r.requests,
            r.errors,
            r.rps(),
            r.percentile(0.5),
            r.percentile(0.99)
        );
    }
    let mut rows = Vec::new();
    for trio in runs.chunks(3) {
        let (noop, cb, read) = (&trio[0], &trio[1], &trio[2]);
        let ratio = cb.rps() / noop.rps();
        let overhead = cb.percentile(0.5) - noop.percentile(0.5);
        println!(
            "{} c={:<3} callback/no-op throughput {:.2}, p50 overhead {:.2} ms, callback errors {}",
            cb.origin, cb.concurrency, ratio, overhead, cb.errors
        );
        let at = format!("{}, c={}", cb.origin, cb.concurrency);
        rows.push(json!({"metric": format!("callback req/s ({at})"), "value": cb.rps(), "unit": "req/s",
            "goal": null, "met": null, "note": format!("no-op {:.0} req/s, {} errors", noop.rps(), cb.errors)}));
        rows.push(json!({"metric": format!("callback / no-op throughput ({at})"), "value": ratio, "unit": "ratio",
            "goal": ">= 0.5", "met": ratio >= 0.5, "note": null}));
        rows.push(json!({"metric": format!("callback p50 overhead over no-op ({at})"), "value": overhead, "unit": "ms",
            "goal": "< 1", "met": overhead < 1.0,
            "note": format!("callback p50 {:.2} / p99 {:.2} ms", cb.percentile(0.5), cb.percentile(0.99))}));
        // The floor under any callback: one Durable Object round trip that writes nothing.
        rows.push(json!({"metric": format!("gate read (object round trip) p50 overhead over no-op ({at})"),
            "value": read.percentile(0.5) - noop.percentile(0.5), "unit": "ms", "goal": null, "met": null,
            "note": format!("gate read {:.0} req/s", read.rps())}));
    }
    let results = json!({
        "title": "Callback ingest vs the no-op route (50 tenants, 1,000 gates)",
        "rows": rows,
        "tenants": TENANTS, "gates_per_tenant": GATES_PER_TENANT,
        "runs": runs.iter().map(|r| json!({
            "origin": r.origin, "route": r.route, "concurrency": r.concurrency, "requests": r.requests,
            "errors": r.errors, "rps": r.rps(), "p50_ms": r.percentile(0.5),
            "p99_ms": r.percentile(0.99)})).collect::<Vec<_>>(),
    });
    let path = support::fixtures::repo_path("bench/tmp/callback-ingest.json");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, serde_json::to_string_pretty(&results).unwrap()).unwrap();
    println!("wrote {}", path.display());
}

/// `requests` calls of `op` spread over `concurrency` threads; a call is an error unless 2xx.
fn load(
    origin: &'static str,
    route: &'static str,
    concurrency: usize,
    requests: usize,
    op: impl Fn(usize) -> u16 + Send + Sync + 'static,
) -> Run {
    let op = Arc::new(op);
    // Warm-up, not measured.
    for i in 0..20 {
        op(requests + i);
    }
    let started = Instant::now();
    let threads: Vec<_> = (0..concurrency)
        .map(|t| {
            let op = Arc::clone(&op);
            std::thread::spawn(move || {
                (t..requests)
                    .step_by(concurrency)
                    .map(|i| {
                        let start = Instant::now();
                        let status = op(i);
                        (start.elapsed(), (200..300).contains(&status))
                    })
                    .collect::<Vec<(Duration, bool)>>()
            })
        })
        .collect();
    let samples: Vec<(Duration, bool)> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    let seconds = started.elapsed().as_secs_f64();
    let mut latencies_ms: Vec<f64> = samples
        .iter()
        .map(|(d, _)| d.as_secs_f64() * 1000.0)
        .collect();
    latencies_ms.sort_by(|a, b| a.partial_cmp(b).unwrap());
    Run {
        origin,
        route,
        concurrency,
        requests,
        errors: samples.iter().filter(|(_, ok)| !ok).count(),
        seconds,
        latencies_ms,
    }
}
