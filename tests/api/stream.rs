//! `GET /api/v1/stream`: hibernating WebSockets fed by the tenant's object.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::fake_jira::FakeJira;
use crate::support::fixtures::ADMIN_TOKEN;
use crate::support::jira_client::{api_get, gate_payload};
use crate::support::ws::{
    self, connect, connect_with_ticket, frame_events, next, next_json, Frame, Socket,
};
use crate::support::TestWorker;

fn at(second: u32) -> String {
    format!("2026-12-03T13:00:{second:02}.000+00:00")
}

fn tenant(worker: &TestWorker) -> (FakeJira, String) {
    let jira = FakeJira::start("deployment-gating");
    jira.install(worker);
    let token = jira.create_token(worker, &["gates:read"]);
    (jira, token)
}

fn callback(
    worker: &TestWorker,
    jira: &FakeJira,
    pipeline: &str,
    seq: u64,
    status: &str,
    second: u32,
) {
    jira.deliver(
        worker,
        &gate_payload(pipeline, "prod", seq, status, &at(second)),
    );
}

#[test]
fn a_snapshot_then_every_update_as_it_happens() {
    let worker = TestWorker::shared();
    let (jira, token) = tenant(worker);
    callback(worker, &jira, "live", 1, "awaiting", 1);
    let mut socket = connect(worker, &token, "");
    let snapshot = next_json(&mut socket);
    assert_eq!(snapshot["type"], "snapshot");
    assert_eq!(snapshot["reset"], false);
    assert_eq!(snapshot["gates"].as_array().unwrap().len(), 1);
    assert_eq!(snapshot["gates"][0]["status"], "awaiting");
    let last = snapshot["lastEventId"].as_u64().unwrap();

    callback(worker, &jira, "live", 1, "allowed", 2);
    let frame = next_json(&mut socket);
    assert_eq!(frame["type"], "event");
    assert_eq!(frame["event"]["status"], "allowed");
    assert_eq!(frame["event"]["pipelineId"], "live");
    assert_eq!(frame["event"]["eventId"].as_u64().unwrap(), last + 1);
    // A stale delivery appends nothing, so nothing is streamed.
    callback(worker, &jira, "live", 1, "prevented", 1);
    assert!(matches!(
        next(&mut socket, Duration::from_millis(700)),
        Frame::Nothing
    ));
}

#[test]
fn filters_apply_from_the_url_and_can_change_at_any_time() {
    let worker = TestWorker::shared();
    let (jira, token) = tenant(worker);
    let mut socket = connect(worker, &token, "pipelineId=a");
    assert_eq!(next_json(&mut socket)["type"], "snapshot");
    callback(worker, &jira, "b", 1, "awaiting", 1);
    callback(worker, &jira, "a", 1, "awaiting", 1);
    let frame = next_json(&mut socket);
    assert_eq!(
        frame["event"]["pipelineId"], "a",
        "only a's events: {frame}"
    );

    ws::send(
        &mut socket,
        r#"{"type":"subscribe","filters":{"pipelineId":"b"}}"#,
    );
    let snapshot = next_json(&mut socket);
    assert_eq!(snapshot["type"], "snapshot");
    let pipelines: Vec<&Value> = snapshot["gates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| &g["pipelineId"])
        .collect();
    assert_eq!(pipelines, [&json!("b")]);
    callback(worker, &jira, "a", 1, "allowed", 2);
    callback(worker, &jira, "b", 1, "prevented", 2);
    assert_eq!(next_json(&mut socket)["event"]["pipelineId"], "b");

    ws::send(
        &mut socket,
        r#"{"type":"subscribe","filters":{"status":"nope"}}"#,
    );
    assert!(matches!(
        next(&mut socket, Duration::from_secs(5)),
        Frame::Closed(Some(1008))
    ));
}

#[test]
fn since_resumes_with_exactly_the_missed_events_also_after_a_restart() {
    let mut worker = TestWorker::spawn(&[]);
    let (jira, token) = tenant(&worker);
    callback(&worker, &jira, "r", 1, "awaiting", 1);
    let mut socket = connect(&worker, &token, "");
    let last = next_json(&mut socket)["lastEventId"].as_u64().unwrap();
    drop(socket);

    for (seq, second) in [(1, 2), (2, 2), (3, 2)] {
        callback(
            &worker,
            &jira,
            "r",
            seq,
            if seq == 1 { "allowed" } else { "awaiting" },
            second,
        );
    }
    let mut resumed = connect(&worker, &token, &format!("since={last}"));
    let frame = next_json(&mut resumed);
    assert_eq!(frame["type"], "events", "no snapshot on resume: {frame}");
    let ids: Vec<u64> = frame["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["eventId"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, [last + 1, last + 2, last + 3]);
    drop(resumed);

    worker.restart();
    callback(&worker, &jira, "r", 4, "awaiting", 3);
    let mut after_restart = connect(&worker, &token, &format!("since={}", last + 3));
    let frame = next_json(&mut after_restart);
    let ids: Vec<u64> = frame["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["eventId"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, [last + 4]);
}

#[test]
fn a_resume_longer_than_one_frame_can_itself_be_resumed_from_any_frame() {
    let worker = TestWorker::shared();
    let (jira, token) = tenant(worker);
    let mut socket = connect(worker, &token, "");
    let since = next_json(&mut socket)["lastEventId"].as_u64().unwrap();
    drop(socket);
    burst(worker, &jira, "long-resume", 130);
    let end = last_event_id(worker, &token);

    let mut resumed = connect(worker, &token, &format!("since={since}"));
    let frames = frames_until(&mut resumed, end);
    let mut ids = Vec::new();
    for frame in &frames {
        assert_eq!(frame["type"], "events");
        let events = frame_events(frame);
        ids.extend(events.iter().map(|e| e["eventId"].as_u64().unwrap()));
        // A client that stops here and resumes from lastEventId misses nothing.
        let covered = frame["lastEventId"].as_u64().unwrap();
        assert_eq!(covered, *ids.last().unwrap(), "{} events", events.len());
    }
    assert_eq!(ids, (since + 1..=end).collect::<Vec<_>>());
    assert!(frames.len() >= 2, "130 events need two frames");
}

#[test]
fn ping_is_answered_with_pong() {
    let worker = TestWorker::shared();
    let (_jira, token) = tenant(worker);
    let mut socket = connect(worker, &token, "");
    assert_eq!(next_json(&mut socket)["type"], "snapshot");
    ws::send(&mut socket, r#"{"type":"ping"}"#);
    assert_eq!(next_json(&mut socket), json!({"type": "pong"}));
}

#[test]
fn revoking_the_token_closes_its_sockets_at_once() {
    let worker = TestWorker::shared();
    let (jira, token) = tenant(worker);
    let mut socket = connect(worker, &token, "");
    assert_eq!(next_json(&mut socket)["type"], "snapshot");
    let list = worker.request(
        "GET",
        &format!("/api/v1/tokens?clientKey={}", jira.client_key),
        &[("Authorization", &format!("Bearer {ADMIN_TOKEN}"))],
        None,
    );
    let id = list.json()["tokens"][0]["id"].as_str().unwrap().to_owned();
    let revoke = worker.request(
        "DELETE",
        &format!("/api/v1/tokens/{id}?clientKey={}", jira.client_key),
        &[("Authorization", &format!("Bearer {ADMIN_TOKEN}"))],
        None,
    );
    assert_eq!(revoke.status, 204);
    assert!(matches!(
        next(&mut socket, Duration::from_secs(5)),
        Frame::Closed(Some(4003))
    ));
}

#[test]
fn a_tenants_stream_carries_only_its_own_gates() {
    let worker = TestWorker::shared();
    let (jira_a, token_a) = tenant(worker);
    let (jira_b, token_b) = tenant(worker);
    callback(worker, &jira_b, "b-only", 1, "awaiting", 1);
    let mut a = connect(worker, &token_a, "");
    let mut b = connect(worker, &token_b, "");
    assert_eq!(
        next_json(&mut a)["gates"],
        json!([]),
        "A sees none of B's gates"
    );
    assert_eq!(next_json(&mut b)["gates"][0]["pipelineId"], "b-only");

    callback(worker, &jira_b, "b-only", 1, "allowed", 2);
    callback(worker, &jira_a, "a-only", 1, "awaiting", 2);
    assert_eq!(next_json(&mut a)["event"]["pipelineId"], "a-only");
    assert_eq!(next_json(&mut b)["event"]["pipelineId"], "b-only");
    for socket in [&mut a, &mut b] {
        assert!(matches!(
            next(socket, Duration::from_millis(700)),
            Frame::Nothing
        ));
    }
}

#[test]
fn tickets_are_single_use_tenant_bound_and_refused_before_the_upgrade() {
    let worker = TestWorker::shared();
    let (_a, token_a) = tenant(worker);
    let (_b, token_b) = tenant(worker);
    let ticket_a = ws::ticket(worker, &token_a);
    let ticket_b = ws::ticket(worker, &token_b);
    // A's tenant part with B's secret part names no ticket of A.
    let forged = format!(
        "{}{}",
        &ticket_a[..ticket_a.len() - 64],
        &ticket_b[ticket_b.len() - 64..]
    );
    assert_eq!(connect_with_ticket(worker, &forged, "").err(), Some(401));
    assert_eq!(
        connect_with_ticket(worker, "dgs_bogus", "").err(),
        Some(401)
    );
    // An API token is not a ticket.
    assert_eq!(connect_with_ticket(worker, &token_a, "").err(), Some(401));
    // A refused parameter does not spend the ticket.
    assert_eq!(
        connect_with_ticket(worker, &ticket_a, "since=-1").err(),
        Some(400)
    );
    assert!(connect_with_ticket(worker, &ticket_a, "").is_ok());
    assert_eq!(
        connect_with_ticket(worker, &ticket_a, "").err(),
        Some(401),
        "a ticket is single-use"
    );
    let plain = worker.get("/api/v1/stream");
    assert_eq!(
        (plain.status, plain.error_code().as_str()),
        (400, "websocket_required")
    );
}

#[test]
fn a_thousand_sockets_on_one_tenant_all_receive_every_update() {
    let worker = TestWorker::spawn(&[]);
    let (jira, token) = tenant(&worker);
    let mut sockets: Vec<_> = (0..1000).map(|_| connect(&worker, &token, "")).collect();
    for socket in sockets.iter_mut() {
        assert_eq!(next_json(socket)["type"], "snapshot");
    }
    callback(&worker, &jira, "fan", 1, "awaiting", 1);
    callback(&worker, &jira, "fan", 1, "allowed", 2);
    for (i, socket) in sockets.iter_mut().enumerate() {
        let first = next_json(socket);
        let second = next_json(socket);
        assert_eq!(
            (
                first["event"]["status"].as_str(),
                second["event"]["status"].as_str()
            ),
            (Some("awaiting"), Some("allowed")),
            "socket {i}"
        );
    }
}

#[test]
fn the_dashboard_is_one_self_contained_page() {
    let reply = TestWorker::shared().get("/dashboard");
    assert_eq!(reply.status, 200);
    assert!(reply
        .header("content-type")
        .unwrap()
        .starts_with("text/html"));
    let csp = reply.header("content-security-policy").unwrap();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    // Self-contained: no script, style or font from anywhere else.
    assert!(!reply.body.contains("src=\"http"), "an external resource");
    assert!(!reply.body.contains("<link"), "an external stylesheet");
    assert!(reply.body.contains("api/v1/stream-tickets") && reply.body.contains("since"));
}

/// Posts one `awaiting` callback for each of `gates` new gates of `pipeline`, from 16 threads.
/// Answers how long the burst took to post.
fn burst(worker: &TestWorker, jira: &FakeJira, pipeline: &str, gates: u64) -> Duration {
    let started = Instant::now();
    std::thread::scope(|scope| {
        for lane in 0..16 {
            scope.spawn(move || {
                for seq in (1..=gates).filter(|seq| seq % 16 == lane) {
                    callback(worker, jira, pipeline, seq, "awaiting", 1);
                }
            });
        }
    });
    started.elapsed()
}

/// Reads frames until the socket has seen event `until`; the frames in order.
fn frames_until(socket: &mut Socket, until: u64) -> Vec<Value> {
    let mut frames = Vec::new();
    loop {
        let frame = next_json(socket);
        let seen = match frame["type"].as_str() {
            Some("snapshot") | Some("events") => frame["lastEventId"].as_u64(),
            _ => frame["event"]["eventId"].as_u64(),
        };
        frames.push(frame);
        if seen >= Some(until) {
            return frames;
        }
    }
}

fn last_event_id(worker: &TestWorker, token: &str) -> u64 {
    api_get(worker, token, "/api/v1/events?limit=1").json()["lastEventId"]
        .as_u64()
        .unwrap()
}

/// A coalescing window long enough that a burst posted from this machine lands inside it.
const WINDOW_MS: u64 = 3000;

#[test]
fn a_burst_reaches_a_socket_in_few_frames_with_every_event_once() {
    let worker = TestWorker::spawn(&[("STREAM_COALESCE_MS", &WINDOW_MS.to_string())]);
    let (jira, token) = tenant(&worker);
    let mut socket = connect(&worker, &token, "");
    let first = next_json(&mut socket)["lastEventId"].as_u64().unwrap();

    let took = burst(&worker, &jira, "burst", 40);
    let last = last_event_id(&worker, &token);
    assert_eq!(last, first + 40);
    let frames = frames_until(&mut socket, last);
    let ids: Vec<u64> = frames
        .iter()
        .flat_map(frame_events)
        .map(|e| e["eventId"].as_u64().unwrap())
        .collect();
    assert_eq!(
        ids,
        (first + 1..=last).collect::<Vec<_>>(),
        "in order, none missing or twice"
    );
    // The first event goes out at once; after that at most one frame per window.
    let windows = took.as_millis() as u64 / WINDOW_MS + 1;
    assert!(
        frames.len() as u64 <= 1 + windows,
        "{} frames for 40 events posted in {took:?}",
        frames.len()
    );
}

#[test]
fn a_backlog_larger_than_a_frame_arrives_as_a_bounded_snapshot() {
    let worker = TestWorker::spawn(&[("STREAM_COALESCE_MS", &WINDOW_MS.to_string())]);
    let (jira, token) = tenant(&worker);
    let mut socket = connect(&worker, &token, "");
    assert_eq!(next_json(&mut socket)["type"], "snapshot");

    let took = burst(&worker, &jira, "backlog", 150);
    let last = last_event_id(&worker, &token);
    let frames = frames_until(&mut socket, last);

    // What a dashboard would show, rebuilt from the frames, is what the server holds.
    let mut view = BTreeMap::new();
    let mut reset = false;
    for frame in &frames {
        if frame["type"] == "snapshot" {
            assert_eq!(frame["reset"], true, "a backlog snapshot says so");
            reset = true;
            view.clear();
            for g in frame["gates"].as_array().unwrap() {
                view.insert(
                    g["deploymentSequenceNumber"].as_u64().unwrap(),
                    g["status"].clone(),
                );
            }
        } else {
            let events = frame_events(frame);
            assert!(events.len() <= 100, "a frame of {} events", events.len());
            for e in events {
                view.insert(
                    e["deploymentSequenceNumber"].as_u64().unwrap(),
                    e["status"].clone(),
                );
            }
        }
    }
    let expected: BTreeMap<u64, Value> = (1..=150).map(|seq| (seq, json!("awaiting"))).collect();
    assert_eq!(view, expected);
    // Posted within one window, the 149 pending events exceed a frame's 100.
    if took.as_millis() < u128::from(WINDOW_MS) {
        assert!(reset, "149 pending events should have become a snapshot");
    }
}
