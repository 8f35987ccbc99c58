//! `GET /api/v1/gates/…?wait=N`: long-polling woken by the tenant's object.
//!
//! The bounds below tell "woken by the update" from "ran out its wait" (30 s); they are not
//! performance claims (those are in the benchmarks).

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::fake_jira::FakeJira;
use crate::support::jira_client::{api_get, gate_payload};
use crate::support::TestWorker;

fn ts(second: u32) -> String {
    format!("2026-12-03T11:00:{second:02}.000+00:00")
}

#[test]
fn a_waiting_request_is_woken_by_the_callback() {
    let worker = TestWorker::shared();
    let jira = Arc::new(FakeJira::start("deployment-gating"));
    jira.install(worker);
    let token = Arc::new(jira.create_token(worker, &["gates:read"]));
    jira.deliver(worker, &gate_payload("wait", "prod", 1, "awaiting", &ts(1)));

    let waiter = {
        let token = Arc::clone(&token);
        std::thread::spawn(move || {
            let started = Instant::now();
            let reply = api_get(
                TestWorker::shared(),
                &token,
                "/api/v1/gates/wait/prod/1?wait=30",
            );
            (reply, Instant::now(), started.elapsed())
        })
    };
    std::thread::sleep(Duration::from_millis(800));
    jira.deliver(worker, &gate_payload("wait", "prod", 1, "allowed", &ts(2)));
    let called_back = Instant::now();
    let (reply, answered, waited) = waiter.join().unwrap();
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.json()["status"], "allowed");
    assert!(
        waited >= Duration::from_millis(700),
        "answered before the callback: {waited:?}"
    );
    assert!(
        answered.duration_since(called_back) < Duration::from_secs(10),
        "not woken by the callback"
    );
}

#[test]
fn decided_gates_answer_at_once_and_awaiting_ones_time_out_with_their_status() {
    let worker = TestWorker::shared();
    let jira = FakeJira::start("deployment-gating");
    jira.install(worker);
    let token = jira.create_token(worker, &["gates:read"]);
    jira.deliver(worker, &gate_payload("w2", "prod", 1, "prevented", &ts(1)));
    jira.deliver(worker, &gate_payload("w2", "prod", 2, "awaiting", &ts(1)));

    let started = Instant::now();
    let decided = api_get(worker, &token, "/api/v1/gates/w2/prod/1?wait=30");
    assert_eq!(decided.json()["status"], "prevented");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "a decided gate was held"
    );

    let started = Instant::now();
    let timed_out = api_get(worker, &token, "/api/v1/gates/w2/prod/2?wait=1");
    assert_eq!(timed_out.status, 200);
    assert_eq!(timed_out.json()["status"], "awaiting");
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "the wait was not held"
    );

    let reply = api_get(worker, &token, "/api/v1/gates/w2/prod/2?wait=61");
    assert_eq!(
        (reply.status, reply.error_code().as_str()),
        (400, "invalid_parameter")
    );
    let reply = api_get(worker, "dgt_bogus", "/api/v1/gates/w2/prod/2?wait=5");
    assert_eq!(reply.status, 401);
}

#[test]
fn many_waiters_on_one_tenant_are_each_released_by_their_gate() {
    let worker = TestWorker::shared();
    let jira = Arc::new(FakeJira::start("deployment-gating"));
    jira.install(worker);
    let token = Arc::new(jira.create_token(worker, &["gates:read"]));
    const GATES: u64 = 40;
    for seq in 0..GATES {
        jira.deliver(
            worker,
            &gate_payload("many", "prod", seq, "awaiting", &ts(1)),
        );
    }
    let waiters: Vec<_> = (0..GATES)
        .map(|seq| {
            let token = Arc::clone(&token);
            std::thread::spawn(move || {
                api_get(
                    TestWorker::shared(),
                    &token,
                    &format!("/api/v1/gates/many/prod/{seq}?wait=30"),
                )
                .json()
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(1000));
    for seq in 0..GATES {
        let status = if seq % 2 == 0 { "allowed" } else { "prevented" };
        jira.deliver(worker, &gate_payload("many", "prod", seq, status, &ts(2)));
    }
    for (seq, waiter) in waiters.into_iter().enumerate() {
        let gate = waiter.join().unwrap();
        let expected = if seq % 2 == 0 { "allowed" } else { "prevented" };
        assert_eq!(gate["status"], expected, "gate {seq}");
    }
}
