//! Callback ingest through the local worker (wrangler dev → workerd, real KV and Durable
//! Objects), next to the no-op route `GET /healthz` of the same worker in the same run.
//!
//! Run with `scripts/bench.sh` (it builds the worker first). Prints a table and writes
//! `bench/callback-ingest.json`. Never part of the tests: no figure here is asserted.

#[path = "../tests/api/support/mod.rs"]
#[allow(unused_imports)] // The harness re-exports helpers this benchmark does not use.
mod support;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use support::fake_jira::FakeJira;
use support::jira_client::gate_payload;
use support::TestWorker;

const TENANTS: usize = 10;
const GATES_PER_TENANT: u64 = 100;

struct Run {
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

    let mut runs = Vec::new();
    for (concurrency, requests) in [(1, 400), (8, 2000), (32, 3200)] {
        for route in ["noop", "callback", "gate read"] {
            let (w, s, c, t) = (
                Arc::clone(&worker),
                Arc::clone(&sites),
                Arc::clone(&clock),
                Arc::clone(&tokens),
            );
            runs.push(load(route, concurrency, requests, move |i| {
                if route == "noop" {
                    return w.get("/healthz").status;
                }
                if route == "gate read" {
                    return support::jira_client::api_get(
                        &w,
                        &t[i % TENANTS],
                        "/api/v1/gates/bench/prod/0",
                    )
                    .status;
                }
                let site = &s[i % TENANTS];
                let tick = c.fetch_add(1, Ordering::SeqCst);
                let at = chrono::DateTime::from_timestamp_millis(1_800_000_000_000 + tick as i64)
                    .unwrap()
                    .to_rfc3339_opts(chrono::SecondsFormat::Millis, false);
                let seq = (i as u64 / TENANTS as u64) % GATES_PER_TENANT;
                site.callback(
                    &w,
                    &gate_payload("bench", "prod", seq, "allowed", &at),
                    None,
                )
                .status
            }));
        }
    }

    println!(
        "\ncallback ingest and a gate read (bearer token, one Durable Object round trip, no write) vs the no-op route, through wrangler dev's proxy, same worker, same run"
    );
    println!(
        "{:<9} {:>3} {:>6} {:>7} {:>9} {:>9} {:>9}",
        "route", "c", "reqs", "errors", "req/s", "p50 ms", "p99 ms"
    );
    for r in &runs {
        println!(
            "{:<9} {:>3} {:>6} {:>7} {:>9.0} {:>9.2} {:>9.2}",
            r.route,
            r.concurrency,
            r.requests,
            r.errors,
            r.rps(),
            r.percentile(0.5),
            r.percentile(0.99)
        );
    }
    let mut ratios = Vec::new();
    for trio in runs.chunks(3) {
        let (noop, cb) = (&trio[0], &trio[1]);
        let ratio = cb.rps() / noop.rps();
        let overhead = cb.percentile(0.5) - noop.percentile(0.5);
        println!(
            "c={:<3} callback/no-op throughput {:.2}, p50 overhead {:.2} ms",
            cb.concurrency, ratio, overhead
        );
        ratios.push(json!({"concurrency": cb.concurrency, "throughput_ratio": ratio, "p50_overhead_ms": overhead}));
    }
    let results = json!({
        "machine": {"cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0)},
        "through": "wrangler dev proxy (wrangler 4.86, workerd 2026-04-26)",
        "tenants": TENANTS, "gates_per_tenant": GATES_PER_TENANT,
        "runs": runs.iter().map(|r| json!({
            "route": r.route, "concurrency": r.concurrency, "requests": r.requests, "errors": r.errors,
            "rps": r.rps(), "p50_ms": r.percentile(0.5), "p99_ms": r.percentile(0.99)})).collect::<Vec<_>>(),
        "ratios": ratios,
    });
    let path = support::fixtures::repo_path("bench/callback-ingest.json");
    std::fs::write(&path, serde_json::to_string_pretty(&results).unwrap()).unwrap();
    println!("wrote {}", path.display());
}

/// `requests` calls of `op` spread over `concurrency` threads; a call is an error unless 2xx.
fn load(
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
        route,
        concurrency,
        requests,
        errors: samples.iter().filter(|(_, ok)| !ok).count(),
        seconds,
        latencies_ms,
    }
}
