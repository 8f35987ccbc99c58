//! Native micro-benchmarks of the Connect protocol hot paths (no criterion: a plain timing loop
//! keeps the test build light). Each figure is the median of 9 rounds; run with
//! `cargo bench --bench protocol`. The operations and their inputs live in
//! `benches/shared/protocol_ops.rs`, which the wasm build of the same loop
//! (`benches/wasm-protocol`, `scripts/bench-wasm.sh`) shares. Besides the printed table, the
//! figures land in `bench/tmp/protocol-native.json` for the wasm comparison and the report.

use std::time::Instant;

use serde_json::{json, Value};

#[path = "shared/protocol_ops.rs"]
mod protocol_ops;

use protocol_ops::{Fixtures, Op, ITERATIONS, ROUNDS};

/// Verifying a callback's token is on every request Jira sends; it should stay well inside the
/// per-request CPU budget.
const VERIFY_GOAL_US: f64 = 5.0;

fn median_ns_per_op(iterations: u32, mut op: impl FnMut()) -> f64 {
    for _ in 0..iterations / 10 {
        op(); // warm-up
    }
    let mut rounds: Vec<f64> = (0..ROUNDS)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..iterations {
                op();
            }
            start.elapsed().as_nanos() as f64 / f64::from(iterations)
        })
        .collect();
    rounds.sort_by(|a, b| a.partial_cmp(b).unwrap());
    rounds[ROUNDS / 2]
}

fn report(name: &str, ns: f64) {
    println!("{name:<52} {:>10.2} µs/op", ns / 1000.0);
}

fn row(metric: &str, value: f64, unit: &str, goal: Option<&str>, met: Option<bool>) -> Value {
    json!({ "metric": metric, "value": value, "unit": unit, "goal": goal, "met": met, "note": null })
}

fn rustc_version() -> Option<String> {
    let out = std::process::Command::new("rustc")
        .arg("--version")
        .output()
        .ok()?;
    Some(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

fn main() {
    let fixtures = Fixtures::new();
    let mut rows = Vec::new();
    let mut verify_us = None;
    for op in Op::ALL {
        let ns = median_ns_per_op(ITERATIONS, || fixtures.run(op));
        report(op.label(), ns);
        rows.push(row(op.label(), ns.round() / 1000.0, "µs/op", None, None));
        if op == Op::VerifyCallbackToken {
            verify_us = Some(ns.round() / 1000.0);
        }
    }
    let verify_us = verify_us.expect("verification is one of the operations");
    rows.push(row(
        "goal: verify a callback token natively",
        verify_us,
        "µs/op",
        Some("under 5 µs"),
        Some(verify_us < VERIFY_GOAL_US),
    ));

    let doc = json!({
        "title": "Protocol micro-benchmarks, native",
        "rows": rows,
        "machine": {
            "arch": std::env::consts::ARCH,
            "os": std::env::consts::OS,
            "cores": std::thread::available_parallelism().map(|n| n.get()).ok(),
        },
        "versions": { "rustc": rustc_version(), "profile": "bench (opt-level 3)" },
        "method": format!("median of {ROUNDS} rounds of {ITERATIONS} operations, after {} warm-up operations", ITERATIONS / 10),
    });
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/tmp");
    let path = dir.join("protocol-native.json");
    std::fs::create_dir_all(&dir)
        .and_then(|()| std::fs::write(&path, serde_json::to_vec_pretty(&doc).unwrap()))
        .unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
}
