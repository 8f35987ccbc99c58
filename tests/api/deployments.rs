//! `POST /api/v1/deployments` against the real worker and the fake Jira.

use serde_json::{json, Value};

use crate::support::fake_jira::{qsh, FakeJira};
use crate::support::jira_client::{api_get, gate_payload};
use crate::support::loopback::Answer;
use crate::support::{Reply, TestWorker};

pub(crate) fn submission(seq: u64, overrides: Value) -> Value {
    let mut b = json!({
        "pipeline": {"id": "web", "displayName": "Web", "url": "https://ci.example.com/web"},
        "environment": {"id": "production", "displayName": "Production", "type": "production"},
        "deploymentSequenceNumber": seq,
        "displayName": format!("Web #{seq}"),
        "url": format!("https://ci.example.com/web/{seq}"),
        "description": "Release",
        "issueKeys": ["OPS-1"],
    });
    for (k, v) in overrides.as_object().unwrap() {
        b[k] = v.clone();
    }
    b
}

pub(crate) fn submit(worker: &TestWorker, token: &str, body: &Value) -> Reply {
    worker.request(
        "POST",
        "/api/v1/deployments",
        &[
            ("Authorization", &format!("Bearer {token}")),
            ("Content-Type", "application/json"),
        ],
        Some(body.to_string().as_bytes()),
    )
}

pub(crate) struct Pipeline {
    pub jira: FakeJira,
    pub write: String,
    pub read: String,
}

pub(crate) fn pipeline(worker: &TestWorker) -> Pipeline {
    let jira = FakeJira::start("deployment-gating");
    jira.install(worker);
    let write = jira.create_token(worker, &["deployments:write"]);
    let read = jira.create_token(worker, &["gates:read"]);
    Pipeline { jira, write, read }
}

#[test]
fn a_gated_submission_sends_jira_exactly_the_bulk_request_and_records_the_gate() {
    let worker = TestWorker::shared();
    let p = pipeline(worker);
    let reply = submit(
        worker,
        &p.write,
        &submission(42, json!({"label": "v1.4.2"})),
    );
    assert_eq!(reply.status, 202, "{}", reply.body);
    let body = reply.json();
    assert_eq!(body["gate"]["status"], "awaiting");
    assert_eq!(body["gate"]["source"], "submitted");
    assert_eq!(body["gate"]["deploymentState"], "pending");
    assert_eq!(
        body["jira"]["acceptedDeployments"][0]["deploymentSequenceNumber"],
        42
    );

    let bulk = p.jira.bulk_requests();
    assert_eq!(bulk.len(), 1);
    assert_eq!(bulk[0].auth, Ok(()), "the fake Jira refused the app's JWT");
    let token = bulk[0]
        .received
        .header("authorization")
        .unwrap()
        .strip_prefix("JWT ")
        .unwrap()
        .to_owned();
    let claims: Value = {
        use base64ct::{Base64UrlUnpadded, Encoding};
        let part = token.split('.').nth(1).unwrap();
        serde_json::from_slice(&Base64UrlUnpadded::decode_vec(part).unwrap()).unwrap()
    };
    assert_eq!(claims["iss"], "deployment-gating");
    assert_eq!(claims["qsh"], qsh("POST", "/rest/deployments/0.1/bulk"));
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        180
    );

    let sent = bulk[0].json();
    let d = &sent["deployments"][0];
    assert_eq!(sent["deployments"].as_array().unwrap().len(), 1);
    assert_eq!(
        d["commands"],
        json!([{"command": "initiate_deployment_gating"}])
    );
    assert_eq!(d["state"], "pending");
    assert_eq!(d["schemaVersion"], "1.0");
    assert_eq!(d["deploymentSequenceNumber"], 42);
    assert!(d["updateSequenceNumber"].as_u64().unwrap() > 1_700_000_000_000);
    assert_eq!(d["label"], "v1.4.2");
    assert_eq!(
        d["pipeline"],
        json!({"id": "web", "displayName": "Web", "url": "https://ci.example.com/web"})
    );
    assert_eq!(d["environment"]["type"], "production");
    assert_eq!(
        d["associations"],
        json!([{"associationType": "issueIdOrKeys", "values": ["OPS-1"]}])
    );
    assert!(chrono::DateTime::parse_from_rfc3339(d["lastUpdated"].as_str().unwrap()).is_ok());

    let gate = api_get(worker, &p.read, "/api/v1/gates/web/production/42").json();
    assert_eq!(gate["status"], "awaiting");

    // Jira's first word supersedes the placeholder, even with a timestamp before the submission.
    let early = gate_payload(
        "web",
        "production",
        42,
        "allowed",
        "2000-01-01T00:00:00.000+00:00",
    );
    p.jira.deliver(worker, &early);
    let gate = api_get(worker, &p.read, "/api/v1/gates/web/production/42").json();
    assert_eq!(gate["status"], "allowed");
    assert_eq!(gate["source"], "callback");
}

#[test]
fn reporting_a_result_updates_jira_and_the_gate_history() {
    let worker = TestWorker::shared();
    let p = pipeline(worker);
    assert_eq!(
        submit(worker, &p.write, &submission(7, json!({}))).status,
        202
    );
    let report = submission(7, json!({"gate": false, "state": "successful"}));
    let reply = submit(worker, &p.write, &report);
    assert_eq!(reply.status, 202, "{}", reply.body);
    assert_eq!(reply.json()["gated"], false);

    let bulk = p.jira.bulk_requests();
    assert_eq!(bulk.len(), 2);
    let d = &bulk[1].json()["deployments"][0];
    assert!(
        d.get("commands").is_none(),
        "a report must not ask for gating again"
    );
    assert_eq!(d["state"], "successful");
    assert!(
        d["updateSequenceNumber"].as_u64()
            >= bulk[0].json()["deployments"][0]["updateSequenceNumber"].as_u64(),
        "updateSequenceNumber must grow for Jira to take the update"
    );
    let gate = api_get(worker, &p.read, "/api/v1/gates/web/production/7").json();
    assert_eq!(
        gate["status"], "awaiting",
        "a report does not change the gating status"
    );
    assert_eq!(gate["deploymentState"], "successful");
    let states: Vec<Value> = gate["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["deploymentState"].clone())
        .collect();
    assert_eq!(states, [json!("pending"), json!("successful")]);
}

#[test]
fn invalid_submissions_are_refused_before_jira_is_called() {
    let worker = TestWorker::shared();
    let p = pipeline(worker);
    let cases = [
        (json!({"state": "successful"}), "state"),
        (json!({"issueKeys": ["not-a-key"]}), "issueKeys"),
        (
            json!({"environment": {"id": "x", "displayName": "X", "type": "prod"}}),
            "environment.type",
        ),
        (
            json!({"deploymentSequenceNumber": -3}),
            "deploymentSequenceNumber",
        ),
        (json!({"displayName": "d".repeat(256)}), "displayName"),
        (json!({"url": "not a url"}), "url"),
    ];
    for (overrides, field) in &cases {
        let reply = submit(worker, &p.write, &submission(1, overrides.clone()));
        assert_eq!(reply.status, 400, "{field}: {}", reply.body);
        assert_eq!(reply.error_code(), "invalid_payload");
        assert!(
            reply.json()["message"].as_str().unwrap().starts_with(field),
            "{field}: {}",
            reply.body
        );
    }
    assert!(
        p.jira.bulk_requests().is_empty(),
        "Jira was called for an invalid submission"
    );

    let reply = submit(worker, &p.read, &submission(1, json!({})));
    assert_eq!(
        (reply.status, reply.error_code().as_str()),
        (403, "insufficient_scope")
    );
    let reply = submit(worker, "dgt_nope", &submission(1, json!({})));
    assert_eq!(
        (reply.status, reply.error_code().as_str()),
        (401, "invalid_token")
    );
    assert!(p.jira.bulk_requests().is_empty());
}

#[test]
fn jira_rejections_and_failures_get_clear_answers() {
    let worker = TestWorker::shared();
    let p = pipeline(worker);

    p.jira.forget_issue_key("OPS-404");
    let reply = submit(
        worker,
        &p.write,
        &submission(1, json!({"issueKeys": ["OPS-404"]})),
    );
    assert_eq!(
        (reply.status, reply.error_code().as_str()),
        (422, "jira_rejected")
    );
    assert!(reply.body.contains("OPS-404"), "{}", reply.body);
    assert_eq!(
        api_get(worker, &p.read, "/api/v1/gates/web/production/1").status,
        404
    );

    for status in [401, 403] {
        p.jira
            .answer_next_with(Answer::json(status, &json!({"message": "nope"})));
        let reply = submit(worker, &p.write, &submission(2, json!({})));
        assert_eq!(
            (reply.status, reply.error_code().as_str()),
            (502, "jira_refused"),
            "{status}"
        );
    }

    // 429 with Retry-After, then success: one retry, then 202.
    let before = p.jira.bulk_requests().len();
    p.jira.answer_next_with(
        Answer::json(429, &json!({"message": "slow down"})).with_header("Retry-After", "1"),
    );
    let reply = submit(worker, &p.write, &submission(3, json!({})));
    assert_eq!(reply.status, 202, "{}", reply.body);
    assert_eq!(p.jira.bulk_requests().len() - before, 2);

    // 5xx three times: bounded retries, then 503 with Retry-After for the pipeline.
    let before = p.jira.bulk_requests().len();
    for _ in 0..3 {
        p.jira
            .answer_next_with(Answer::new(503, "<html>maintenance</html>"));
    }
    let reply = submit(worker, &p.write, &submission(4, json!({})));
    assert_eq!(
        (reply.status, reply.error_code().as_str()),
        (503, "jira_unavailable")
    );
    assert!(reply.header("retry-after").is_some());
    assert_eq!(p.jira.bulk_requests().len() - before, 3);

    // A 400 is never retried.
    let before = p.jira.bulk_requests().len();
    p.jira.answer_next_with(Answer::json(
        400,
        &json!({"errors": [{"message": "Invalid deployment"}]}),
    ));
    let reply = submit(worker, &p.write, &submission(5, json!({})));
    assert_eq!(
        (reply.status, reply.error_code().as_str()),
        (422, "jira_rejected")
    );
    assert!(reply.body.contains("Invalid deployment"));
    assert_eq!(p.jira.bulk_requests().len() - before, 1);

    // Garbage from Jira is neither acceptance nor rejection.
    p.jira.answer_next_with(Answer::new(202, "not json"));
    let reply = submit(worker, &p.write, &submission(6, json!({})));
    assert_eq!(
        (reply.status, reply.error_code().as_str()),
        (502, "jira_error"),
        "{}",
        reply.body
    );
}
