use serde_json::{json, Value};

use super::*;

fn body(overrides: Value) -> Vec<u8> {
    let mut b = json!({
        "pipeline": {"id": "api-pipeline", "displayName": "API", "url": "https://ci.example.com/api"},
        "environment": {"id": "prod-eu", "displayName": "Production EU", "type": "production"},
        "deploymentSequenceNumber": 42,
        "displayName": "API #42",
        "url": "https://ci.example.com/api/42",
        "description": "Release 42",
        "issueKeys": ["OPS-7", "CHG_2-15"],
    });
    for (k, v) in overrides.as_object().unwrap() {
        if v.is_null() {
            b.as_object_mut().unwrap().remove(k);
        } else {
            b[k] = v.clone();
        }
    }
    serde_json::to_vec(&b).unwrap()
}

fn refused(overrides: Value) -> &'static str {
    parse_submission(&body(overrides), 1_700_000_000_000)
        .expect_err("should be refused")
        .field
}

#[test]
fn builds_the_bulk_request_jira_expects() {
    let s = parse_submission(&body(json!({})), 1_700_000_000_000).unwrap();
    assert!(s.gate);
    assert_eq!(s.state, "pending");
    let bulk = s.bulk_request("2026-12-03T10:00:00.000Z", "Deployment Gating");
    let d = &bulk["deployments"][0];
    assert_eq!(d["deploymentSequenceNumber"], 42);
    assert_eq!(d["updateSequenceNumber"], 1_700_000_000_000u64);
    assert_eq!(d["state"], "pending");
    assert_eq!(d["lastUpdated"], "2026-12-03T10:00:00.000Z");
    assert_eq!(d["schemaVersion"], "1.0");
    assert_eq!(
        d["commands"],
        json!([{"command": "initiate_deployment_gating"}])
    );
    assert_eq!(d["pipeline"]["id"], "api-pipeline");
    assert_eq!(d["environment"]["type"], "production");
    assert_eq!(
        d["associations"],
        json!([{"associationType": "issueIdOrKeys", "values": ["OPS-7", "CHG_2-15"]}])
    );
    assert_eq!(bulk["providerMetadata"]["product"], "Deployment Gating");
}

#[test]
fn reports_without_gating_carry_no_command() {
    let s = parse_submission(
        &body(json!({"gate": false, "state": "successful", "updateSequenceNumber": 5})),
        0,
    )
    .unwrap();
    let d = &s.bulk_request("t", "p")["deployments"][0];
    assert!(d.get("commands").is_none());
    assert_eq!(d["state"], "successful");
    assert_eq!(d["updateSequenceNumber"], 5);
}

#[test]
fn every_jira_rule_names_its_field() {
    assert_eq!(refused(json!({"state": "successful"})), "state");
    assert_eq!(refused(json!({"state": "done", "gate": false})), "state");
    assert_eq!(
        refused(json!({"environment": {"id": "p", "displayName": "P", "type": "prod"}})),
        "environment.type"
    );
    assert_eq!(
        refused(json!({"pipeline": {"id": "", "displayName": "A", "url": "https://x"}})),
        "pipeline.id"
    );
    assert_eq!(
        refused(json!({"pipeline": {"id": "a", "displayName": "A", "url": "ftp://x"}})),
        "pipeline.url"
    );
    assert_eq!(
        refused(json!({"displayName": "x".repeat(256)})),
        "displayName"
    );
    assert_eq!(refused(json!({"description": ""})), "description");
    assert_eq!(refused(json!({"label": "l".repeat(256)})), "label");
    assert_eq!(
        refused(json!({"url": format!("https://x.example/{}", "a".repeat(2000))})),
        "url"
    );
    assert_eq!(
        refused(json!({"deploymentSequenceNumber": -1})),
        "deploymentSequenceNumber"
    );
    assert_eq!(
        refused(json!({"deploymentSequenceNumber": 1.5})),
        "deploymentSequenceNumber"
    );
    assert_eq!(
        refused(json!({"updateSequenceNumber": "5"})),
        "updateSequenceNumber"
    );
    assert_eq!(refused(json!({"issueKeys": []})), "issueKeys");
    assert_eq!(refused(json!({"issueKeys": ["ops-1"]})), "issueKeys");
    assert_eq!(refused(json!({"issueKeys": ["OPS-01"]})), "issueKeys");
    assert_eq!(refused(json!({"issueKeys": ["OPS"]})), "issueKeys");
    let many: Vec<String> = (1..=101).map(|n| format!("OPS-{n}")).collect();
    assert_eq!(refused(json!({"issueKeys": many})), "issueKeys");
    assert_eq!(refused(json!({"issueKeys": null})), "issueKeys");
    assert_eq!(refused(json!({"unexpected": true})), "body");
    assert_eq!(refused(json!({"pipeline": null})), "body");
}

#[test]
fn service_ids_alone_are_an_association() {
    let s = parse_submission(
        &body(json!({"issueKeys": null, "serviceIds": ["svc-1"]})),
        0,
    )
    .unwrap();
    assert_eq!(
        s.bulk_request("t", "p")["deployments"][0]["associations"][0]["associationType"],
        "serviceIdOrKeys"
    );
}

fn key() -> GateKey {
    parse_submission(&body(json!({})), 0).unwrap().key
}

#[test]
fn reads_jiras_answers() {
    let accepted = json!({"acceptedDeployments": [{"pipelineId": "api-pipeline", "environmentId": "prod-eu", "deploymentSequenceNumber": 42}],
                          "rejectedDeployments": [], "unknownIssueKeys": [], "unknownAssociations": []});
    assert!(matches!(
        interpret_bulk_answer(202, accepted.to_string().as_bytes(), &key()),
        Verdict::Accepted(_)
    ));
    let rejected = json!({"acceptedDeployments": [], "rejectedDeployments": [{"key": {}, "errors": [{"message": "bad state"}]}],
                          "unknownIssueKeys": ["OPS-7"]});
    assert_eq!(
        interpret_bulk_answer(202, rejected.to_string().as_bytes(), &key()),
        Verdict::Rejected(vec!["bad state".into(), "unknown issue keys: OPS-7".into()])
    );
    assert_eq!(
        interpret_bulk_answer(401, b"", &key()),
        Verdict::Refused(401)
    );
    assert_eq!(
        interpret_bulk_answer(403, b"{}", &key()),
        Verdict::Refused(403)
    );
    assert_eq!(
        interpret_bulk_answer(429, b"", &key()),
        Verdict::Retryable(429)
    );
    assert_eq!(
        interpret_bulk_answer(503, b"<html>", &key()),
        Verdict::Retryable(503)
    );
    for garbage in [
        &b"garbage"[..],
        b"",
        b"[1,2]",
        br#"{"acceptedDeployments":"all"}"#,
    ] {
        assert_eq!(
            interpret_bulk_answer(202, garbage, &key()),
            Verdict::Unreadable(202),
            "{}",
            String::from_utf8_lossy(garbage)
        );
    }
    // Well formed, but not naming this deployment: Jira did not take it.
    assert_eq!(
        interpret_bulk_answer(202, br#"{"acceptedDeployments":[]}"#, &key()),
        Verdict::Rejected(vec!["Jira did not accept the deployment".into()])
    );
    assert_eq!(
        interpret_bulk_answer(
            400,
            json!({"errors": [{"message": "Invalid"}]})
                .to_string()
                .as_bytes(),
            &key()
        ),
        Verdict::Rejected(vec!["Invalid".into()])
    );
    assert_eq!(
        interpret_bulk_answer(404, b"", &key()),
        Verdict::Unexpected(404)
    );
}
