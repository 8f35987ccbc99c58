//! Live-stream fan-out: SOCKETS WebSockets held on one tenant, then CALLBACKS callbacks one after
//! another (spaced past the coalescing window, so each is its own frame); for every delivery, the
//! time from sending the callback to the frame arriving (this includes the callback's own
//! handling) and from the callback's 204, and per callback the time to its last delivery. Runs
//! 1,000 then 10,000 sockets (`FANOUT_SOCKETS=1000,10000`).
//!
//! The tenant's object sends to every socket before it answers the callback, so most deliveries
//! arrive before the 204: those count as 0 ms from the answer. Readers poll non-blocking sockets, so a figure can
//! be late by one sweep of a reader's share of sockets (reported as `sweep_ms`).
//! Run with `scripts/bench.sh`; writes `bench/tmp/fanout.json`. Never part of the tests.

#[path = "../tests/api/support/mod.rs"]
#[allow(unused_imports)] // The harness re-exports helpers this benchmark does not use.
mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::fake_jira::FakeJira;
use support::jira_client::gate_payload;
use support::ws::{self, Socket};
use support::TestWorker;
use tungstenite::stream::MaybeTlsStream;
use tungstenite::Message;

const CALLBACKS: usize = 20;
const READERS: usize = 8;
const CONNECTORS: usize = 16;

fn main() {
    let counts: Vec<usize> = std::env::var("FANOUT_SOCKETS")
        .unwrap_or_else(|_| "1000,10000".into())
        .split(',')
        .filter_map(|n| n.trim().parse().ok())
        .collect();
    let mut results = Vec::new();
    for sockets in counts {
        results.push(run(sockets));
    }
    let mut rows = Vec::new();
    for r in &results {
        let n = r["sockets"].as_u64().unwrap();
        let p99 = r["callback_sent_to_delivery_ms"]["p99"]
            .as_f64()
            .unwrap_or(f64::NAN);
        let clean = r["held"] == r["sockets"]
            && r["closed_during_run"] == 0
            && r["deliveries"] == r["deliveries_expected"];
        rows.push(json!({"metric": format!("{n} sockets held, every update delivered"),
            "value": r["deliveries"], "unit": format!("of {} deliveries", r["deliveries_expected"]),
            "goal": if n >= 10_000 { json!("no errors") } else { Value::Null },
            "met": if n >= 10_000 { json!(clean) } else { Value::Null },
            "note": format!("{} connect failures, {} closed", r["connect_failures"], r["closed_during_run"])}));
        rows.push(
            json!({"metric": format!("callback sent -> delivery p99, {n} sockets"),
            "value": p99, "unit": "ms",
            "goal": if n == 1000 { json!("< 250") } else { Value::Null },
            "met": if n == 1000 { json!(p99 < 250.0) } else { Value::Null },
            "note": format!("p50 {:.1} ms; last delivery per callback p50 {:.1} / p99 {:.1} ms",
                r["callback_sent_to_delivery_ms"]["p50"].as_f64().unwrap_or(f64::NAN),
                r["callback_sent_to_last_delivery_ms"]["p50"].as_f64().unwrap_or(f64::NAN),
                r["callback_sent_to_last_delivery_ms"]["p99"].as_f64().unwrap_or(f64::NAN))}),
        );
    }
    let out = json!({
        "title": "Live-stream fan-out on one tenant (sockets on workerd's own port)",
        "rows": rows,
        "runs": results,
    });
    let path = support::fixtures::repo_path("bench/tmp/fanout.json");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, serde_json::to_string_pretty(&out).unwrap()).unwrap();
    println!("wrote {}", path.display());
}

fn run(count: usize) -> Value {
    let worker = Arc::new(TestWorker::spawn(&[]));
    let jira = FakeJira::start("deployment-gating");
    jira.install(&worker);
    let token = Arc::new(jira.create_token(&worker, &["gates:read"]));
    // Sockets go to workerd's own port: through wrangler's proxy every socket costs the proxy two
    // descriptors, and 10,000 would pass this machine's limit of 20,000 open files a process.
    let direct = Arc::new(worker.direct_url());

    // Open the sockets (ticket + upgrade each), each past its snapshot.
    let opened = Instant::now();
    let failed = Arc::new(AtomicUsize::new(0));
    let sockets: Vec<Socket> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..CONNECTORS)
            .map(|lane| {
                let (worker, token, failed, direct) = (&worker, &token, &failed, &direct);
                scope.spawn(move || {
                    let mut mine = Vec::new();
                    for _ in (lane..count).step_by(CONNECTORS) {
                        let ticket = ws::ticket(worker, token);
                        match ws::connect_at(direct, &ticket, "") {
                            Ok(mut socket) => {
                                match ws::next(&mut socket, Duration::from_secs(30)) {
                                    ws::Frame::Json(v) if v["type"] == "snapshot" => {
                                        mine.push(socket)
                                    }
                                    _ => {
                                        failed.fetch_add(1, Ordering::Relaxed);
                                    }
                                }
                            }
                            Err(_) => {
                                failed.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                    mine
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    let open_seconds = opened.elapsed().as_secs_f64();
    let held = sockets.len();
    println!(
        "\n{count} sockets: {held} open ({} failed) in {open_seconds:.1} s",
        failed.load(Ordering::Relaxed)
    );

    // Readers: each polls its share of sockets and notes when each event id arrives.
    let arrivals: Arc<Mutex<Vec<(u64, Instant)>>> = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicUsize::new(0));
    let closed = Arc::new(AtomicUsize::new(0));
    let sweep_ns = Arc::new(AtomicUsize::new(0));
    let count_seen = Arc::new(AtomicUsize::new(0));
    let mut shares: Vec<Vec<Socket>> = (0..READERS).map(|_| Vec::new()).collect();
    for (i, socket) in sockets.into_iter().enumerate() {
        if let MaybeTlsStream::Plain(stream) = socket.get_ref() {
            stream.set_nonblocking(true).unwrap();
        }
        shares[i % READERS].push(socket);
    }
    let readers: Vec<_> = shares
        .into_iter()
        .map(|mut share| {
            let (arrivals, stop, closed, sweep_ns, count_seen) = (
                Arc::clone(&arrivals),
                Arc::clone(&stop),
                Arc::clone(&closed),
                Arc::clone(&sweep_ns),
                Arc::clone(&count_seen),
            );
            std::thread::spawn(move || {
                let mut seen = Vec::new();
                let mut open = vec![true; share.len()];
                while stop.load(Ordering::Relaxed) == 0 {
                    let sweep = Instant::now();
                    let mut idle = true;
                    for (i, socket) in share.iter_mut().enumerate() {
                        if !open[i] {
                            continue;
                        }
                        loop {
                            match socket.read() {
                                Ok(Message::Text(text)) => {
                                    idle = false;
                                    let at = Instant::now();
                                    // Event ids only: a full parse per frame would slow the
                                    // sweep and late-stamp the frames behind it.
                                    for id in event_ids(&text) {
                                        seen.push((id, at));
                                        count_seen.fetch_add(1, Ordering::Relaxed);
                                    }
                                }
                                Ok(_) => {}
                                Err(tungstenite::Error::Io(e))
                                    if e.kind() == std::io::ErrorKind::WouldBlock =>
                                {
                                    break
                                }
                                Err(_) => {
                                    open[i] = false;
                                    closed.fetch_add(1, Ordering::Relaxed);
                                    break;
                                }
                            }
                        }
                    }
                    let ns = sweep.elapsed().as_nanos() as usize;
                    sweep_ns.fetch_max(ns, Ordering::Relaxed);
                    if idle {
                        std::thread::sleep(Duration::from_micros(200));
                    }
                }
                arrivals.lock().unwrap().extend(seen);
            })
        })
        .collect();

    // Callbacks, one at a time; the event id of each is the next in the tenant's log.
    let (mut sent, mut answered) = (Vec::new(), Vec::new());
    for i in 0..CALLBACKS {
        let payload = gate_payload(
            "fanout",
            "prod",
            i as u64,
            "awaiting",
            "2026-12-03T12:00:00.000+00:00",
        );
        sent.push(Instant::now());
        let reply = jira.callback(&worker, &payload, None);
        let at = Instant::now();
        if reply.status != 204 {
            let log = worker.log();
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            panic!(
                "callback {i} answered {}: {}\nworker log (last lines, newest first):\n{}",
                reply.status,
                reply.body,
                tail.join("\n")
            );
        }
        answered.push(at);
        std::thread::sleep(Duration::from_millis(300));
    }
    // Let the last deliveries land (or give up after 30 s), then stop the readers.
    let deadline = Instant::now() + Duration::from_secs(30);
    while count_seen.load(Ordering::Relaxed) < held * CALLBACKS && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    stop.store(1, Ordering::Relaxed);
    for r in readers {
        r.join().unwrap();
    }

    // Event ids: the first callback's id is the smallest seen.
    let arrivals = arrivals.lock().unwrap();
    let first_id = arrivals.iter().map(|(id, _)| *id).min().unwrap_or(1);
    let mut per_delivery = Vec::new();
    let mut from_sent = Vec::new();
    let mut last_per_callback = [0.0f64; CALLBACKS];
    let mut delivered = [0usize; CALLBACKS];
    for (id, at) in arrivals.iter() {
        let k = (id - first_id) as usize;
        if k >= CALLBACKS {
            continue;
        }
        let ms = at.saturating_duration_since(sent[k]).as_secs_f64() * 1000.0;
        from_sent.push(ms);
        per_delivery.push(at.saturating_duration_since(answered[k]).as_secs_f64() * 1000.0);
        delivered[k] += 1;
        last_per_callback[k] = last_per_callback[k].max(ms);
    }
    let expected = held * CALLBACKS;
    let got: usize = delivered.iter().sum();
    let p = |v: &mut Vec<f64>, q: f64| {
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        v.get(((v.len() as f64 - 1.0) * q).round() as usize)
            .copied()
            .unwrap_or(f64::NAN)
    };
    let mut last = last_per_callback.to_vec();
    let summary = json!({
        "sockets": count,
        "held": held,
        "connect_failures": failed.load(Ordering::Relaxed),
        "closed_during_run": closed.load(Ordering::Relaxed),
        "open_seconds": open_seconds,
        "callbacks": CALLBACKS,
        "deliveries_expected": expected,
        "deliveries": got,
        "callback_sent_to_delivery_ms": {"p50": p(&mut from_sent, 0.5), "p99": p(&mut from_sent, 0.99),
                        "max": p(&mut from_sent, 1.0)},
        "callback_answered_to_delivery_ms": {"p50": p(&mut per_delivery, 0.5), "p99": p(&mut per_delivery, 0.99),
                        "max": p(&mut per_delivery, 1.0)},
        "callback_sent_to_last_delivery_ms": {"p50": p(&mut last, 0.5), "p99": p(&mut last, 0.99),
                             "max": p(&mut last, 1.0)},
        "sweep_ms": sweep_ns.load(Ordering::Relaxed) as f64 / 1e6,
    });
    println!("{summary:#}");
    summary
}

fn event_ids(frame: &str) -> impl Iterator<Item = u64> + '_ {
    frame.split("\"eventId\":").skip(1).filter_map(|rest| {
        let end = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        rest[..end].parse().ok()
    })
}
