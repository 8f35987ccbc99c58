//! Fault suite: the worker killed mid-traffic, and a tenant's Jira that is slow, failing,
//! rate-limiting, answering garbage or hanging up.
//!
//! - SIGKILL of wrangler and workerd while several threads post callbacks and stream clients are
//!   connected: every callback answered 204 is in the gates after the restart, retried
//!   deliveries add no event, and each stream client, reconnecting with `since=<last id it
//!   saw>`, ends with exactly the ids of `GET /api/v1/events` (no gap, no duplicate).
//! - Deployment submission against a Jira that stalls (the app keeps answering health checks,
//!   gate reads and nothing is recorded until Jira answers), that rate-limits every attempt,
//!   that answers garbage of several kinds or an unexpected status, or that closes the
//!   connection: bounded attempts (counted at the fake) and the documented error.
//! - The reconciler against a Jira that stalls, fails and answers garbage: the tenant's object
//!   keeps serving while its check waits, nothing but Jira's real answer changes the gate.
//!
//! Not repeated here: 429-then-success, 5xx three times, 400, 401/403 and a non-JSON 202 on
//! submission (deployments.rs), and the key server down during install (503
//! `install_keys_unavailable`, nothing stored: lifecycle.rs,
//! `install_keys_are_cached_and_a_key_server_outage_is_a_retryable_503`).

use std::collections::BTreeMap;
use std::io::Read;
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::deployments::{pipeline, submission, submit};
use crate::support::client;
use crate::support::fake_jira::FakeJira;
use crate::support::jira_client::{api_get, gate_payload};
use crate::support::loopback::{Answer, Hold};
use crate::support::ws::{self, Frame};
use crate::support::TestWorker;

/// Polls `done` every 50 ms until it holds or `limit` passes; says whether it held.
fn eventually(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if done() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

// ---------------------------------------------------------------------------------------------
// The worker killed while callbacks are posted and streams are open.

const POSTERS: usize = 4;
const PER_POSTER: u64 = 40;

/// What one stream client saw, and what the test tells it once the log is final.
#[derive(Default)]
struct StreamClient {
    /// `lastEventId` of its first snapshot: it expects every event after this one.
    start: Mutex<Option<u64>>,
    /// The last event id (of its filter) it must reach before it stops.
    target: Mutex<Option<u64>>,
}

/// Reads the stream, reconnecting with `since=<last id seen>` whenever the connection breaks,
/// until it has seen `target`. Returns the ids it saw, in order, and how often it reconnected.
fn follow(base: &str, token: &str, filter: &str, me: &StreamClient) -> (Vec<u64>, usize) {
    let deadline = Instant::now() + Duration::from_secs(180);
    let mut socket = ws::try_connect(base, token, filter).expect("first stream connection");
    let first = ws::next_json(&mut socket);
    assert_eq!(first["type"], "snapshot", "{first}");
    let mut last = first["lastEventId"].as_u64().unwrap();
    *me.start.lock().unwrap() = Some(last);
    let (mut seen, mut reconnects) = (Vec::new(), 0);
    while Instant::now() < deadline {
        if me.target.lock().unwrap().is_some_and(|t| last >= t) {
            break;
        }
        let ids: Vec<u64> = match ws::next(&mut socket, Duration::from_millis(500)) {
            Frame::Json(v) if v["type"] == "event" => vec![v["event"]["eventId"].as_u64().unwrap()],
            Frame::Json(v) if v["type"] == "events" => v["events"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["eventId"].as_u64().unwrap())
                .collect(),
            Frame::Json(v) => panic!("unexpected frame on resume (a gap?): {v}"),
            Frame::Nothing => continue,
            Frame::Closed(_) | Frame::Broken(_) => {
                let query = format!("since={last}&{filter}");
                socket = loop {
                    match ws::try_connect(base, token, query.trim_end_matches('&')) {
                        Ok(s) => break s,
                        Err(_) if Instant::now() < deadline => {
                            std::thread::sleep(Duration::from_millis(100))
                        }
                        Err(e) => panic!("could not reconnect: {e}"),
                    }
                };
                reconnects += 1;
                continue;
            }
        };
        for id in ids {
            seen.push(id);
            last = last.max(id);
        }
    }
    (seen, reconnects)
}

/// Posts one callback until the worker answers 204, as Jira retries (same delivery id).
/// Returns how many attempts failed because the worker was down or unavailable.
fn deliver_through_outage(base: &str, jira: &FakeJira, payload: &Value, delivery: &str) -> usize {
    let deadline = Instant::now() + Duration::from_secs(180);
    let body = payload.to_string();
    let mut failed = 0;
    loop {
        let auth = format!("JWT {}", jira.request_token("POST", "/callback"));
        let headers = [
            ("Authorization", auth.as_str()),
            ("Content-Type", "application/json"),
            ("X-Atlassian-Webhook-Identifier", delivery),
        ];
        match client::try_send(
            "POST",
            &format!("{base}/callback"),
            &headers,
            Some(body.as_bytes()),
        ) {
            Ok(reply) if reply.status == 204 => return failed,
            Ok(reply) if reply.status == 503 => {}
            Ok(reply) => panic!("callback {delivery}: {} {}", reply.status, reply.body),
            Err(_) => {}
        }
        failed += 1;
        assert!(
            Instant::now() < deadline,
            "callback {delivery} never delivered"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn status_for(seq: u64) -> &'static str {
    if seq.is_multiple_of(3) {
        "prevented"
    } else {
        "allowed"
    }
}

#[test]
fn a_killed_worker_keeps_every_acknowledged_callback_and_streams_resume_exactly() {
    let mut worker = TestWorker::spawn(&[]);
    let jira = FakeJira::start("deployment-gating");
    jira.install(&worker);
    let read = jira.create_token(&worker, &["gates:read"]);
    let base = worker.base_url.clone();
    let filters = ["", "", "pipelineId=poster-0"];
    let clients: Vec<StreamClient> = filters.iter().map(|_| StreamClient::default()).collect();
    let acked = AtomicUsize::new(0);
    let acked_before_kill = AtomicUsize::new(0);
    let failed_attempts = AtomicUsize::new(0);
    let killed = AtomicBool::new(false);

    let outcomes = std::thread::scope(|s| {
        let followers: Vec<_> = filters
            .iter()
            .zip(&clients)
            .map(|(filter, me)| {
                let (base, read) = (&base, &read);
                s.spawn(move || follow(base, read, filter, me))
            })
            .collect();
        assert!(
            eventually(Duration::from_secs(30), || clients.iter().all(|c| c
                .start
                .lock()
                .unwrap()
                .is_some())),
            "stream clients did not connect"
        );
        let posters: Vec<_> = (0..POSTERS)
            .map(|p| {
                let (base, jira) = (&base, &jira);
                let (acked, acked_before_kill, failed_attempts, killed) =
                    (&acked, &acked_before_kill, &failed_attempts, &killed);
                s.spawn(move || {
                    for seq in 0..PER_POSTER {
                        let payload = gate_payload(
                            &format!("poster-{p}"),
                            "prod",
                            seq,
                            status_for(seq),
                            "2026-12-03T16:00:00.000+00:00",
                        );
                        let failed = deliver_through_outage(
                            base,
                            jira,
                            &payload,
                            &format!("kill-{p}-{seq}"),
                        );
                        failed_attempts.fetch_add(failed, Ordering::SeqCst);
                        acked.fetch_add(1, Ordering::SeqCst);
                        if !killed.load(Ordering::SeqCst) {
                            acked_before_kill.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                })
            })
            .collect();

        // Kill once a quarter of the callbacks are acknowledged, with the rest in flight.
        let total = POSTERS * PER_POSTER as usize;
        assert!(eventually(Duration::from_secs(60), || acked
            .load(Ordering::SeqCst)
            >= total / 4));
        killed.store(true, Ordering::SeqCst);
        worker.restart();
        for poster in posters {
            poster.join().unwrap();
        }

        // The log is final: tell each client the last id of its filter, then collect.
        let log = api_get(&worker, &read, "/api/v1/events?since=0&limit=1000").json();
        let log: Vec<(u64, String)> = log["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["eventId"].as_u64().unwrap(),
                    e["pipelineId"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        let expected: Vec<Vec<u64>> = filters
            .iter()
            .zip(&clients)
            .map(|(filter, me)| {
                let start = me.start.lock().unwrap().unwrap();
                let pipeline = filter.strip_prefix("pipelineId=");
                log.iter()
                    .filter(|(id, p)| *id > start && pipeline.is_none_or(|want| want == p))
                    .map(|(id, _)| *id)
                    .collect()
            })
            .collect();
        for (me, ids) in clients.iter().zip(&expected) {
            let start = me.start.lock().unwrap().unwrap();
            *me.target.lock().unwrap() = Some(ids.last().copied().unwrap_or(start));
        }
        let seen: Vec<(Vec<u64>, usize)> =
            followers.into_iter().map(|f| f.join().unwrap()).collect();
        (log, expected, seen)
    });
    let (log, expected, seen) = outcomes;

    let total = POSTERS * PER_POSTER as usize;
    let before = acked_before_kill.load(Ordering::SeqCst);
    let failed = failed_attempts.load(Ordering::SeqCst);
    eprintln!(
        "faults: {before} of {total} callbacks acknowledged before the kill, {failed} attempts \
         failed during the outage, reconnects per stream client: {:?}",
        seen.iter().map(|(_, r)| r).collect::<Vec<_>>()
    );
    assert!(
        before > 0 && before < total,
        "the kill did not fall mid-traffic"
    );
    assert!(failed > 0, "no callback was in flight during the outage");

    // Every acknowledged callback is in its gate; retried deliveries appended nothing.
    for p in 0..POSTERS {
        let gates = api_get(
            &worker,
            &read,
            &format!("/api/v1/gates?pipelineId=poster-{p}&limit=200"),
        )
        .json();
        let stored: BTreeMap<u64, String> = gates["gates"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| {
                (
                    g["deploymentSequenceNumber"].as_u64().unwrap(),
                    g["status"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        let wanted: BTreeMap<u64, String> = (0..PER_POSTER)
            .map(|seq| (seq, status_for(seq).to_owned()))
            .collect();
        assert_eq!(
            stored, wanted,
            "poster-{p}: an acknowledged callback was lost"
        );
    }
    assert_eq!(
        log.iter().filter(|(_, p)| p.starts_with("poster-")).count(),
        total,
        "one event per callback, none for a retried delivery"
    );

    // Each client saw exactly the log after its start: no gap, no duplicate, in order.
    for (i, ((ids, reconnects), want)) in seen.iter().zip(&expected).enumerate() {
        assert!(*reconnects >= 1, "client {i} never lost its connection");
        assert_eq!(ids, want, "client {i} ({:?})", filters[i]);
    }
}

// ---------------------------------------------------------------------------------------------
// Jira misbehaving during deployment submission.

fn accepted(seq: u64) -> Value {
    json!({"acceptedDeployments": [{"pipelineId": "web", "environmentId": "production",
           "deploymentSequenceNumber": seq}],
           "rejectedDeployments": [], "unknownIssueKeys": [], "unknownAssociations": []})
}

#[test]
fn a_stalled_jira_holds_only_the_submission_waiting_on_it() {
    let worker = TestWorker::shared();
    let p = Arc::new(pipeline(worker));
    p.jira.deliver(
        worker,
        &gate_payload(
            "web",
            "production",
            1,
            "allowed",
            "2026-12-03T16:00:00.000+00:00",
        ),
    );
    let hold = Hold::default();
    p.jira
        .answer_next_with(Answer::json(202, &accepted(50)).held_by(&hold));
    let submitting = {
        let p = Arc::clone(&p);
        std::thread::spawn(move || submit(worker, &p.write, &submission(50, json!({}))))
    };
    assert!(
        eventually(Duration::from_secs(30), || p.jira.bulk_requests().len()
            == 1),
        "the submission never reached Jira"
    );

    // Jira stalls for several seconds; meanwhile the app answers everything else, and records
    // nothing for the deployment Jira has not accepted yet.
    let stalled = Instant::now();
    let mut probes = 0;
    while stalled.elapsed() < Duration::from_secs(5) {
        let health = worker.get("/healthz");
        assert_eq!(health.status, 200);
        let gate = api_get(worker, &p.read, "/api/v1/gates/web/production/1");
        assert_eq!(
            (gate.status, gate.json()["status"].as_str()),
            (200, Some("allowed"))
        );
        let pending = api_get(worker, &p.read, "/api/v1/gates/web/production/50");
        assert_eq!(pending.status, 404, "recorded before Jira answered");
        probes += 1;
    }
    assert!(
        !submitting.is_finished(),
        "the submission returned while Jira was still holding its answer"
    );
    hold.release();
    let reply = submitting.join().unwrap();
    assert_eq!(reply.status, 202, "{}", reply.body);
    assert_eq!(reply.json()["gate"]["status"], "awaiting");
    assert_eq!(p.jira.bulk_requests().len(), 1, "a slow answer was retried");
    eprintln!("faults: {probes} rounds of probes answered while Jira stalled");
}

#[test]
fn garbage_and_unexpected_answers_from_jira_are_not_taken_for_acceptance_nor_retried() {
    let worker = TestWorker::shared();
    let p = pipeline(worker);
    let cases: Vec<(&str, Answer, u16, &str)> = vec![
        (
            "202 with an HTML page",
            Answer::new(202, "<html><body>502 Bad Gateway</body></html>")
                .with_header("Content-Type", "text/html"),
            502,
            "jira_error",
        ),
        ("202 with no body", Answer::new(202, ""), 502, "jira_error"),
        (
            "202 with a JSON array",
            Answer::json(202, &json!([1, 2])),
            502,
            "jira_error",
        ),
        (
            "202 with fields of the wrong type",
            Answer::json(202, &json!({"acceptedDeployments": "all"})),
            502,
            "jira_error",
        ),
        (
            "202 accepting another deployment",
            Answer::json(202, &accepted(999)),
            422,
            "jira_rejected",
        ),
        (
            "200 with truncated JSON",
            Answer::new(200, r#"{"acceptedDeployments":[{"pipelineId":"web""#)
                .with_header("Content-Type", "application/json"),
            502,
            "jira_error",
        ),
        (
            "202 with 1 MiB of noise",
            Answer::new(202, vec![b'#'; 1024 * 1024]),
            502,
            "jira_error",
        ),
        (
            "an unexpected status (418)",
            Answer::json(418, &json!({"message": "teapot"})),
            502,
            "jira_error",
        ),
    ];
    for (i, (name, answer, status, code)) in cases.into_iter().enumerate() {
        let seq = 100 + i as u64;
        let before = p.jira.bulk_requests().len();
        p.jira.answer_next_with(answer);
        let reply = submit(worker, &p.write, &submission(seq, json!({})));
        assert_eq!(
            (reply.status, reply.error_code().as_str()),
            (status, code),
            "{name}: {}",
            reply.body
        );
        assert!(
            !reply.body.contains('#') && !reply.body.contains("<html"),
            "{name}: echoed"
        );
        assert_eq!(p.jira.bulk_requests().len() - before, 1, "{name}: retried");
        let gate = api_get(
            worker,
            &p.read,
            &format!("/api/v1/gates/web/production/{seq}"),
        );
        assert_eq!(gate.status, 404, "{name}: a gate was recorded");
    }
    assert_eq!(worker.get("/healthz").status, 200);
}

#[test]
fn rate_limiting_on_every_attempt_ends_in_a_retryable_503_after_three_attempts() {
    let worker = TestWorker::shared();
    let p = pipeline(worker);
    for _ in 0..3 {
        p.jira.answer_next_with(
            Answer::json(429, &json!({"message": "slow down"})).with_header("Retry-After", "1"),
        );
    }
    let reply = submit(worker, &p.write, &submission(1, json!({})));
    assert_eq!(
        (reply.status, reply.error_code().as_str()),
        (503, "jira_unavailable"),
        "{}",
        reply.body
    );
    assert!(reply.header("retry-after").is_some());
    assert_eq!(p.jira.bulk_requests().len(), 3);

    // A Retry-After that is not a number of seconds still leads to one bounded retry.
    p.jira.answer_next_with(
        Answer::json(429, &json!({"message": "slow down"}))
            .with_header("Retry-After", "Wed, 21 Oct 2015 07:28:00 GMT"),
    );
    let reply = submit(worker, &p.write, &submission(2, json!({})));
    assert_eq!(reply.status, 202, "{}", reply.body);
    assert_eq!(p.jira.bulk_requests().len(), 5);
}

/// A "Jira" that reads each request and closes the connection without answering.
struct HangUp {
    base_url: String,
    connections: Arc<AtomicUsize>,
}

impl HangUp {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base_url = format!("http://{}", listener.local_addr().unwrap());
        let connections = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&connections);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                counter.fetch_add(1, Ordering::SeqCst);
                let mut stream = stream;
                stream
                    .set_read_timeout(Some(Duration::from_millis(500)))
                    .unwrap();
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf);
                drop(stream);
            }
        });
        HangUp {
            base_url,
            connections,
        }
    }
}

#[test]
fn a_jira_that_hangs_up_gets_a_clear_502_without_retries() {
    let worker = TestWorker::shared();
    let hang_up = HangUp::start();
    // A site installed with its baseUrl on the listener that hangs up.
    let site = FakeJira::start("deployment-gating");
    let token = site.lifecycle_token(worker, "installed", json!({}));
    let mut body = site.lifecycle_payload("installed", "deployment-gating");
    body["baseUrl"] = json!(hang_up.base_url);
    body["displayUrl"] = json!(hang_up.base_url);
    let reply = site.send_lifecycle(worker, "installed", Some(&token), &body);
    assert_eq!(reply.status, 204, "{}", reply.body);
    // Not through the admin page: that asks this site's Jira, which hangs up.
    let write = site.create_token_by_operator(worker, &["deployments:write"]);
    let read = site.create_token_by_operator(worker, &["gates:read"]);

    let reply = submit(worker, &write, &submission(1, json!({})));
    assert_eq!(
        (reply.status, reply.error_code().as_str()),
        (502, "jira_unreachable"),
        "{}",
        reply.body
    );
    assert_eq!(hang_up.connections.load(Ordering::SeqCst), 1, "retried");
    assert_eq!(
        api_get(worker, &read, "/api/v1/gates/web/production/1").status,
        404
    );
    assert_eq!(worker.get("/healthz").status, 200);
}

// ---------------------------------------------------------------------------------------------
// The reconciler against a misbehaving Jira.

#[test]
fn the_reconciler_survives_a_stalled_failing_and_garbled_jira() {
    let worker = TestWorker::spawn(&[("RECONCILE_SCHEDULE", "1")]);
    let p = pipeline(&worker);
    let reply = submit(&worker, &p.write, &submission(1, json!({})));
    assert_eq!(reply.status, 202, "{}", reply.body);

    // The first check stalls, then fails; then garbage; then another deployment's status.
    let hold = Hold::default();
    p.jira
        .answer_next_with(Answer::new(503, "unavailable").held_by(&hold));
    p.jira.answer_next_with(Answer::new(200, "<html>"));
    p.jira.answer_next_with(Answer::json(
        200,
        &json!({"gatingStatus": "prevented", "pipelineId": "web", "environmentId": "production",
                "deploymentSequenceNumber": 2, "details": [],
                "updatedTimestamp": "2026-12-03T16:00:00.000+00:00"}),
    ));
    let decided = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, false);
    p.jira.set_gating_status(
        "web",
        "production",
        1,
        json!({"gatingStatus": "allowed", "pipelineId": "web", "environmentId": "production",
               "deploymentSequenceNumber": 1, "details": [], "updatedTimestamp": decided}),
    );
    assert!(
        eventually(Duration::from_secs(30), || !p
            .jira
            .gating_status_requests()
            .is_empty()),
        "the reconciler never asked Jira"
    );

    // While the tenant's object waits on Jira, it still takes callbacks and answers reads.
    p.jira.deliver(
        &worker,
        &gate_payload(
            "other",
            "production",
            9,
            "allowed",
            "2026-12-03T16:00:00.000+00:00",
        ),
    );
    let other = api_get(&worker, &p.read, "/api/v1/gates/other/production/9");
    assert_eq!(other.status, 200, "{}", other.body);
    let waiting = api_get(&worker, &p.read, "/api/v1/gates/web/production/1").json();
    assert_eq!(waiting["status"], "awaiting");
    hold.release();

    // Only Jira's real answer decides the gate; the failures are in its history.
    let mut gate = Value::Null;
    let decided = eventually(Duration::from_secs(30), || {
        gate = api_get(&worker, &p.read, "/api/v1/gates/web/production/1").json();
        let status = gate["status"].as_str().unwrap().to_owned();
        assert!(
            status == "awaiting" || status == "allowed",
            "garbage changed the gate: {gate}"
        );
        status == "allowed"
    });
    assert!(
        decided,
        "the reconciler never applied Jira's answer: {gate}"
    );
    assert_eq!(gate["source"], "reconciled");
    let notes: Vec<&str> = gate["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["note"].as_str())
        .collect();
    for expected in ["503", "unreadable", "another deployment"] {
        assert!(
            notes.iter().any(|n| n.contains(expected)),
            "no note about {expected}: {notes:?}"
        );
    }
    assert!(p.jira.gating_status_requests().len() >= 4);
}
