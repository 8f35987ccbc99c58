//! The reconciler: with no callback ever sent, the tenant's object asks Jira's gating-status
//! endpoint on its schedule (shortened to 1 s here) and a waiting pipeline is released.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::fake_jira::FakeJira;
use crate::support::jira_client::{api_get, gate_payload};
use crate::support::TestWorker;

fn submit_gated(worker: &TestWorker, token: &str, seq: u64) {
    let body = json!({
        "pipeline": {"id": "rec", "displayName": "Rec", "url": "https://ci.example.com/rec"},
        "environment": {"id": "prod", "displayName": "Prod", "type": "production"},
        "deploymentSequenceNumber": seq,
        "displayName": "Rec", "url": "https://ci.example.com/rec/1", "description": "d",
        "issueKeys": ["OPS-1"],
    });
    let reply = worker.request(
        "POST",
        "/api/v1/deployments",
        &[
            ("Authorization", &format!("Bearer {token}")),
            ("Content-Type", "application/json"),
        ],
        Some(body.to_string().as_bytes()),
    );
    assert_eq!(reply.status, 202, "{}", reply.body);
}

#[test]
fn a_lost_callback_is_recovered_from_jiras_gating_status_and_the_waiter_returns() {
    let worker = Arc::new(TestWorker::spawn(&[("RECONCILE_SCHEDULE", "1")]));
    let jira = FakeJira::start("deployment-gating");
    jira.install(&worker);
    let write = jira.create_token(&worker, &["deployments:write"]);
    let read = Arc::new(jira.create_token(&worker, &["gates:read"]));
    submit_gated(&worker, &write, 1);

    let waiter = {
        let (worker, read) = (Arc::clone(&worker), Arc::clone(&read));
        std::thread::spawn(move || {
            let started = Instant::now();
            let reply = api_get(&worker, &read, "/api/v1/gates/rec/prod/1?wait=20");
            (reply, started.elapsed())
        })
    };
    // Jira decides, but the callback is lost: only the gating-status endpoint knows.
    std::thread::sleep(Duration::from_millis(1500));
    let decided_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, false);
    jira.set_gating_status(
        "rec",
        "prod",
        1,
        json!({"gatingStatus": "allowed", "pipelineId": "rec", "environmentId": "prod",
               "deploymentSequenceNumber": 1, "updatedTimestamp": decided_at,
               "details": [{"type": "issue", "issueKey": "CHG-9"}]}),
    );
    let (reply, waited) = waiter.join().unwrap();
    assert_eq!(reply.status, 200, "{}", reply.body);
    let gate = reply.json();
    assert_eq!(gate["status"], "allowed", "{gate}");
    assert_eq!(gate["source"], "reconciled");
    assert!(
        waited < Duration::from_secs(15),
        "the waiter ran out its wait: {waited:?}"
    );
    let checks = jira.gating_status_requests();
    assert!(!checks.is_empty());
    assert!(
        checks.iter().all(|r| r.auth.is_ok()),
        "Jira refused the reconciler's token"
    );
    assert!(checks[0]
        .received
        .path()
        .ends_with("/pipelines/rec/environments/prod/deployments/1/gating-status"));

    // Decided: the reconciler stops asking.
    let asked = jira.gating_status_requests().len();
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(
        jira.gating_status_requests().len(),
        asked,
        "a decided gate is still being checked"
    );
}

#[test]
fn a_404_from_jira_leaves_the_gate_as_it_is_and_shows_in_its_history() {
    let worker = TestWorker::spawn(&[("RECONCILE_SCHEDULE", "1")]);
    let jira = FakeJira::start("deployment-gating");
    jira.install(&worker);
    let read = jira.create_token(&worker, &["gates:read"]);
    // A gate Jira told us about but no longer knows.
    let payload = gate_payload(
        "ghost",
        "prod",
        5,
        "awaiting",
        "2026-12-03T12:00:00.000+00:00",
    );
    jira.deliver(&worker, &payload);

    let deadline = Instant::now() + Duration::from_secs(20);
    let gate = loop {
        let gate = api_get(&worker, &read, "/api/v1/gates/ghost/prod/5").json();
        let noted = gate["history"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["note"].as_str().is_some_and(|n| n.contains("404")));
        if noted || Instant::now() > deadline {
            break gate;
        }
        std::thread::sleep(Duration::from_millis(300));
    };
    assert_eq!(gate["status"], "awaiting");
    assert!(
        gate["reconcilerChecks"].as_u64().unwrap() >= 1,
        "{gate}\n{}",
        worker.log()
    );
    assert!(
        gate["nextCheck"].is_string(),
        "an awaiting gate keeps being checked: {gate}"
    );
    let notes: Vec<&str> = gate["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["note"].as_str())
        .collect();
    assert!(notes.iter().any(|n| n.contains("404")), "{gate}");
}
