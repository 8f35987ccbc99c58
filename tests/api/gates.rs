//! The gating callback, the tenant's gate state, the query API and API tokens, against the real
//! worker, KV and Durable Objects. Callbacks are signed by the tests' own JWT code.

use std::collections::HashSet;
use std::sync::Arc;

use serde_json::{json, Value};

use crate::support::fake_jira::{qsh, FakeJira};
use crate::support::fixtures::ADMIN_TOKEN;
use crate::support::jira_client::{api_get, claims, gate_payload, hs256};
use crate::support::{Reply, TestWorker};

fn installed(worker: &TestWorker) -> FakeJira {
    let jira = FakeJira::start("deployment-gating");
    jira.install(worker);
    jira
}

fn ts(second: u32, milli: u32) -> String {
    format!("2026-12-03T10:00:{second:02}.{milli:03}+00:00")
}

fn gate(worker: &TestWorker, token: &str, pipeline: &str, env: &str, seq: u64) -> Reply {
    api_get(
        worker,
        token,
        &format!("/api/v1/gates/{pipeline}/{env}/{seq}"),
    )
}

fn last_event_id(worker: &TestWorker, token: &str) -> u64 {
    api_get(worker, token, "/api/v1/events?since=0&limit=1").json()["lastEventId"]
        .as_u64()
        .unwrap()
}

#[test]
fn newer_older_duplicate_and_tied_updates_follow_the_ordering_rule() {
    let worker = TestWorker::shared();
    let jira = installed(worker);
    let token = jira.create_token(worker, &["gates:read"]);
    let send = |status: &str, at: &str, delivery: &str| {
        let reply = jira.callback(
            worker,
            &gate_payload("pipe-1", "prod", 7, status, at),
            Some(delivery),
        );
        assert_eq!(reply.status, 204, "{status} at {at}: {}", reply.body);
    };

    send("awaiting", &ts(1, 0), "d1");
    let g = gate(worker, &token, "pipe-1", "prod", 7).json();
    assert_eq!(g["status"], "awaiting");
    assert_eq!(g["source"], "callback");
    assert_eq!(g["deploymentSequenceNumber"], 7);
    assert_eq!(g["details"][0]["issueKey"], "CHG-1");
    assert_eq!(g["history"].as_array().unwrap().len(), 1);

    send("allowed", &ts(3, 0), "d2"); // newer: applied
    send("prevented", &ts(2, 0), "d3"); // older: stale
    send("allowed", &ts(3, 0), "d2"); // Jira's retry of d2: duplicate
    send("allowed", &ts(3, 0), "d4"); // same content, new delivery id: duplicate
    let g = gate(worker, &token, "pipe-1", "prod", 7).json();
    assert_eq!(g["status"], "allowed");
    assert_eq!(g["staleDeliveries"], 1);
    assert_eq!(g["history"].as_array().unwrap().len(), 2, "{g}");

    send("prevented", &ts(3, 0), "d5"); // tie: prevented beats allowed
    send("allowed", &ts(3, 0), "d6"); // tie: allowed loses
    let g = gate(worker, &token, "pipe-1", "prod", 7).json();
    assert_eq!(g["status"], "prevented");
    let history: Vec<&str> = g["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["status"].as_str().unwrap())
        .collect();
    assert_eq!(history, ["awaiting", "allowed", "prevented"]);

    let events = api_get(worker, &token, "/api/v1/events?since=0").json();
    let ids: Vec<u64> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["eventId"].as_u64().unwrap())
        .collect();
    assert_eq!(ids.len(), 3);
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "event ids increase: {ids:?}"
    );
    assert_eq!(events["lastEventId"], ids[2]);
    let after = api_get(worker, &token, &format!("/api/v1/events?since={}", ids[0])).json();
    assert_eq!(after["events"].as_array().unwrap().len(), 2);
}

#[test]
fn concurrent_shuffled_duplicated_callbacks_end_with_the_newest_status_per_gate() {
    let worker = TestWorker::shared();
    let jira = Arc::new(installed(worker));
    let token = jira.create_token(worker, &["gates:read"]);
    let statuses = ["awaiting", "allowed", "prevented", "invalid", "allowed"];
    // 20 gates × 5 updates, each sent twice (same delivery id): 200 callbacks.
    let mut deliveries = Vec::new();
    for g in 0..20u64 {
        for (i, status) in statuses.iter().enumerate() {
            let payload = gate_payload("burst", "prod", g, status, &ts(i as u32 + 1, g as u32));
            let id = format!("burst-{g}-{i}");
            deliveries.push((payload.clone(), id.clone()));
            deliveries.push((payload, id));
        }
    }
    // A fixed pseudo-random shuffle (xorshift), so a failure reproduces.
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    for i in (1..deliveries.len()).rev() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        deliveries.swap(i, (state % (i as u64 + 1)) as usize);
    }
    let deliveries = Arc::new(deliveries);
    let threads: Vec<_> = (0..16)
        .map(|t| {
            let (jira, deliveries) = (Arc::clone(&jira), Arc::clone(&deliveries));
            std::thread::spawn(move || {
                let worker = TestWorker::shared();
                deliveries
                    .iter()
                    .skip(t)
                    .step_by(16)
                    .map(|(payload, id)| jira.callback(worker, payload, Some(id)).status)
                    .collect::<Vec<u16>>()
            })
        })
        .collect();
    let answers: Vec<u16> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    assert_eq!(answers.len(), 200);
    assert!(answers.iter().all(|&s| s == 204), "{answers:?}");

    for g in 0..20u64 {
        let body = gate(worker, &token, "burst", "prod", g).json();
        assert_eq!(body["status"], statuses[4], "gate {g}: {body}");
        assert_eq!(body["updatedTimestamp"], ts(5, g as u32), "gate {g}");
    }
    let events = api_get(worker, &token, "/api/v1/events?since=0&limit=1000").json();
    let mut seen = HashSet::new();
    for e in events["events"].as_array().unwrap() {
        let key = (
            e["deploymentSequenceNumber"].as_u64(),
            e["updatedTimestamp"].to_string(),
            e["status"].to_string(),
        );
        assert!(seen.insert(key.clone()), "duplicate event {key:?}");
    }
    assert!(
        seen.len() >= 20 && seen.len() <= 100,
        "{} events",
        seen.len()
    );
}

#[test]
fn nothing_answered_204_is_lost_when_the_worker_process_is_killed() {
    let mut worker = TestWorker::spawn(&[]);
    let jira = installed(&worker);
    let token = jira.create_token(&worker, &["gates:read"]);
    for seq in 0..10u64 {
        let reply = jira.callback(
            &worker,
            &gate_payload("crash", "prod", seq, "allowed", &ts(1, 0)),
            None,
        );
        assert_eq!(reply.status, 204);
    }
    worker.restart();
    for seq in 0..10u64 {
        let reply = gate(&worker, &token, "crash", "prod", seq);
        assert_eq!(reply.status, 200, "gate {seq} lost: {}", reply.body);
        assert_eq!(reply.json()["status"], "allowed");
    }
    // The tenant (KV) and its token (object storage) survived too; callbacks still work.
    let reply = jira.callback(
        &worker,
        &gate_payload("crash", "prod", 99, "awaiting", &ts(2, 0)),
        None,
    );
    assert_eq!(reply.status, 204);
}

#[test]
fn bad_callbacks_get_their_code_and_change_nothing() {
    let worker = TestWorker::shared();
    let jira = installed(worker);
    let token = jira.create_token(worker, &["gates:read"]);
    jira.deliver(
        worker,
        &gate_payload("bad", "prod", 1, "awaiting", &ts(1, 0)),
    );
    let before = last_event_id(worker, &token);

    let good = gate_payload("bad", "prod", 1, "allowed", &ts(9, 0));
    let with = |field: &str, value: Value| {
        let mut p = good.clone();
        p[field] = value;
        p.to_string().into_bytes()
    };
    let callback_token = jira.request_token("POST", "/callback");
    let secret = jira.shared_secret();
    let cases: Vec<(&str, String, Vec<u8>, u16, &str)> = vec![
        (
            "no token",
            String::new(),
            good.to_string().into_bytes(),
            401,
            "token_malformed",
        ),
        (
            "wrong secret",
            hs256(
                claims(&jira.client_key, &qsh("POST", "/callback"), json!({})),
                &"z".repeat(40),
            ),
            good.to_string().into_bytes(),
            401,
            "bad_signature",
        ),
        (
            "qsh of GET",
            hs256(
                claims(&jira.client_key, &qsh("GET", "/callback"), json!({})),
                &secret,
            ),
            good.to_string().into_bytes(),
            401,
            "qsh_mismatch",
        ),
        (
            "context token",
            hs256(claims(&jira.client_key, "context-qsh", json!({})), &secret),
            good.to_string().into_bytes(),
            403,
            "context_token_not_allowed",
        ),
        (
            "bad JSON",
            callback_token.clone(),
            b"{\"gatingStatus\":".to_vec(),
            400,
            "invalid_payload",
        ),
        (
            "array body",
            callback_token.clone(),
            b"[]".to_vec(),
            400,
            "invalid_payload",
        ),
        (
            "unknown status",
            callback_token.clone(),
            with("gatingStatus", json!("approved")),
            400,
            "invalid_payload",
        ),
        (
            "status of wrong type",
            callback_token.clone(),
            with("gatingStatus", json!(3)),
            400,
            "invalid_payload",
        ),
        (
            "timestamp without offset",
            callback_token.clone(),
            with("updatedTimestamp", json!("2026-12-03T10:00:09")),
            400,
            "invalid_payload",
        ),
        (
            "sequence as string",
            callback_token.clone(),
            with("deploymentSequenceNumber", json!("1")),
            400,
            "invalid_payload",
        ),
        (
            "sequence as float",
            callback_token.clone(),
            with("deploymentSequenceNumber", json!(1.5)),
            400,
            "invalid_payload",
        ),
        (
            "sequence 2^63",
            callback_token.clone(),
            good.to_string()
                .replace(
                    "\"deploymentSequenceNumber\":1",
                    "\"deploymentSequenceNumber\":9223372036854775808",
                )
                .into_bytes(),
            400,
            "invalid_payload",
        ),
        (
            "id too long",
            callback_token.clone(),
            with("pipelineId", json!("p".repeat(256))),
            400,
            "invalid_payload",
        ),
        (
            "oversized",
            callback_token.clone(),
            with("details", json!([{"type": "x", "pad": "x".repeat(70_000)}])),
            413,
            "payload_too_large",
        ),
        (
            "invalid UTF-8",
            callback_token.clone(),
            b"{\"gatingStatus\":\"\xff\"}".to_vec(),
            400,
            "invalid_payload",
        ),
    ];
    for (name, token, body, status, code) in &cases {
        let reply = if token.is_empty() {
            worker.request(
                "POST",
                "/callback",
                &[("Authorization", "JWT ")],
                Some(body),
            )
        } else {
            jira.callback_with(worker, token, body, None)
        };
        assert_eq!(reply.status, *status, "{name}: {}", reply.body);
        assert_eq!(reply.error_code(), *code, "{name}");
    }
    assert_eq!(
        last_event_id(worker, &token),
        before,
        "a refused callback changed state"
    );
    assert_eq!(
        gate(worker, &token, "bad", "prod", 1).json()["status"],
        "awaiting"
    );
    assert_eq!(cases.len(), 15);
}

#[test]
fn the_largest_sequence_number_round_trips_exactly() {
    let worker = TestWorker::shared();
    let jira = installed(worker);
    let token = jira.create_token(worker, &["gates:read"]);
    let max = i64::MAX as u64;
    jira.deliver(
        worker,
        &gate_payload("big", "prod", max, "allowed", &ts(1, 0)),
    );
    let reply = gate(worker, &token, "big", "prod", max);
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(reply.body.contains("9223372036854775807"), "{}", reply.body);
    assert_eq!(gate(worker, &token, "big", "prod", max - 1).status, 404);
}

#[test]
fn ids_are_percent_encoded_path_segments() {
    let worker = TestWorker::shared();
    let jira = installed(worker);
    let token = jira.create_token(worker, &["gates:read"]);
    let payload = gate_payload("team/api svc", "prod-eu?x", 3, "allowed", &ts(1, 0));
    jira.deliver(worker, &payload);
    let reply = gate(worker, &token, "team%2Fapi%20svc", "prod-eu%3Fx", 3);
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.json()["pipelineId"], "team/api svc");
    let bad = gate(worker, &token, "p", "e", 0).status;
    assert_eq!(bad, 404);
    let reply = api_get(worker, &token, "/api/v1/gates/p/e/-1");
    assert_eq!(
        (reply.status, reply.error_code().as_str()),
        (400, "invalid_parameter")
    );
}

#[test]
fn gate_list_is_newest_first_filtered_and_paginated() {
    let worker = TestWorker::shared();
    let jira = installed(worker);
    let token = jira.create_token(worker, &["gates:read"]);
    for seq in 0..5u64 {
        let status = if seq % 2 == 0 { "allowed" } else { "awaiting" };
        jira.deliver(
            worker,
            &gate_payload("list", "prod", seq, status, &ts(1, 0)),
        );
    }
    jira.deliver(
        worker,
        &gate_payload("other", "stage", 1, "allowed", &ts(1, 0)),
    );

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/gates?pipelineId=list&limit=2&cursor={c}"),
            None => "/api/v1/gates?pipelineId=list&limit=2".to_owned(),
        };
        let page = api_get(worker, &token, &path).json();
        let gates = page["gates"].as_array().unwrap();
        assert!(gates.len() <= 2);
        seen.extend(
            gates
                .iter()
                .map(|g| g["deploymentSequenceNumber"].as_u64().unwrap()),
        );
        match page["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, [4, 3, 2, 1, 0], "newest first, every gate once");

    let allowed = api_get(
        worker,
        &token,
        "/api/v1/gates?pipelineId=list&status=allowed",
    )
    .json();
    let seqs: Vec<u64> = allowed["gates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["deploymentSequenceNumber"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, [4, 2, 0]);
    let stage = api_get(worker, &token, "/api/v1/gates?environmentId=stage").json();
    assert_eq!(stage["gates"].as_array().unwrap().len(), 1);
    let reply = api_get(worker, &token, "/api/v1/gates?status=approved");
    assert_eq!(
        (reply.status, reply.error_code().as_str()),
        (400, "invalid_parameter")
    );
}

#[test]
fn tokens_are_scoped_isolated_listed_without_secrets_and_revoked_at_once() {
    let worker = TestWorker::shared();
    let a = installed(worker);
    let b = installed(worker);
    a.deliver(
        worker,
        &gate_payload("iso", "prod", 1, "allowed", &ts(1, 0)),
    );
    let read_a = a.create_token(worker, &["gates:read"]);
    let write_a = a.create_token(worker, &["deployments:write"]);
    let read_b = b.create_token(worker, &["gates:read"]);

    assert_eq!(gate(worker, &read_a, "iso", "prod", 1).status, 200);
    let reply = gate(worker, &write_a, "iso", "prod", 1);
    assert_eq!(
        (reply.status, reply.error_code().as_str()),
        (403, "insufficient_scope")
    );
    // B's token only ever reaches B's data.
    assert_eq!(gate(worker, &read_b, "iso", "prod", 1).status, 404);
    // A token naming tenant A but carrying B's secret part is not a token of A.
    let forged = format!(
        "{}{}",
        &read_a[..read_a.len() - 64],
        &read_b[read_b.len() - 64..]
    );
    let reply = gate(worker, &forged, "iso", "prod", 1);
    assert_eq!(
        (reply.status, reply.error_code().as_str()),
        (401, "invalid_token")
    );
    for bad in ["", "Bearer", "dgt_nope"] {
        assert_eq!(gate(worker, bad, "iso", "prod", 1).status, 401);
    }

    // The admin's list shows names and scopes, never a token.
    let list = worker.request(
        "GET",
        &format!("/api/v1/tokens?clientKey={}", a.client_key),
        &[("Authorization", &format!("Bearer {ADMIN_TOKEN}"))],
        None,
    );
    assert_eq!(list.status, 200, "{}", list.body);
    assert!(!list.body.contains(&read_a) && !list.body.contains(&read_a[read_a.len() - 64..]));
    let tokens = list.json()["tokens"].as_array().unwrap().clone();
    assert_eq!(tokens.len(), 2);
    let read_id = tokens
        .iter()
        .find(|t| t["scopes"] == json!(["gates:read"]))
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // Revocation takes effect on the very next request.
    let revoke = worker.request(
        "DELETE",
        &format!("/api/v1/tokens/{read_id}?clientKey={}", a.client_key),
        &[("Authorization", &format!("Bearer {ADMIN_TOKEN}"))],
        None,
    );
    assert_eq!(revoke.status, 204, "{}", revoke.body);
    let reply = gate(worker, &read_a, "iso", "prod", 1);
    assert_eq!(
        (reply.status, reply.error_code().as_str()),
        (401, "invalid_token")
    );
    let again = worker.request(
        "DELETE",
        &format!("/api/v1/tokens/{read_id}?clientKey={}", a.client_key),
        &[("Authorization", &format!("Bearer {ADMIN_TOKEN}"))],
        None,
    );
    assert_eq!(again.status, 404);
}

#[test]
fn token_management_requires_the_tenant_or_the_operator() {
    let worker = TestWorker::shared();
    let jira = installed(worker);
    let body = |client_key: &str| {
        json!({"name": "ops", "scopes": ["gates:read"], "clientKey": client_key}).to_string()
    };
    let post = |auth: &str, body: String| {
        worker.request(
            "POST",
            "/api/v1/tokens",
            &[
                ("Authorization", auth),
                ("Content-Type", "application/json"),
            ],
            Some(body.as_bytes()),
        )
    };
    let created = post(&format!("Bearer {ADMIN_TOKEN}"), body(&jira.client_key));
    assert_eq!(created.status, 201, "{}", created.body);
    let created = created.json();
    assert!(created["token"].as_str().unwrap().starts_with("dgt_"));
    assert_eq!(created["scopes"], json!(["gates:read"]));

    let wrong = post("Bearer not-the-admin-token", body(&jira.client_key));
    assert_eq!(
        (wrong.status, wrong.error_code().as_str()),
        (401, "invalid_token")
    );
    let unknown = post(&format!("Bearer {ADMIN_TOKEN}"), body("no-such-tenant"));
    assert_eq!(
        (unknown.status, unknown.error_code().as_str()),
        (401, "unknown_tenant")
    );
    let none = worker.request(
        "POST",
        "/api/v1/tokens",
        &[],
        Some(body(&jira.client_key).as_bytes()),
    );
    assert_eq!(
        (none.status, none.error_code().as_str()),
        (401, "token_missing")
    );
    let bad_scope = post(
        &format!("Bearer {ADMIN_TOKEN}"),
        json!({"name": "x", "scopes": ["root"], "clientKey": jira.client_key}).to_string(),
    );
    assert_eq!(
        (bad_scope.status, bad_scope.error_code().as_str()),
        (400, "invalid_payload")
    );
    // A gate-reading token cannot manage tokens.
    let reader = jira.create_token(worker, &["gates:read"]);
    let list = worker.request(
        "GET",
        "/api/v1/tokens",
        &[("Authorization", &format!("Bearer {reader}"))],
        None,
    );
    assert_eq!(list.status, 401);
}

#[test]
fn uninstall_stops_tokens_and_callbacks() {
    let worker = TestWorker::shared();
    let jira = installed(worker);
    let token = jira.create_token(worker, &["gates:read"]);
    jira.deliver(
        worker,
        &gate_payload("gone", "prod", 1, "allowed", &ts(1, 0)),
    );
    assert_eq!(jira.lifecycle(worker, "uninstalled").status, 204);
    let reply = gate(worker, &token, "gone", "prod", 1);
    assert_eq!(
        (reply.status, reply.error_code().as_str()),
        (401, "invalid_token")
    );
    let reply = jira.callback(
        worker,
        &gate_payload("gone", "prod", 1, "prevented", &ts(2, 0)),
        None,
    );
    assert_eq!(
        (reply.status, reply.error_code().as_str()),
        (401, "tenant_uninstalled")
    );

    // Installing again starts from nothing: the old data is not reachable.
    jira.rotate_secret();
    jira.install(worker);
    let fresh = jira.create_token(worker, &["gates:read"]);
    assert_eq!(gate(worker, &fresh, "gone", "prod", 1).status, 404);
}
