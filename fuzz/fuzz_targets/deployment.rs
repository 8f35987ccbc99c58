//! The deployment submission parser, and the reader of Jira's bulk answer, on arbitrary bodies.
//!
//! Checks, besides "never panics": an accepted submission becomes a bulk request that keeps
//! Jira's rules (one deployment, the same gate key, an int64 sequence number, `pending` with the
//! gating command exactly when gating, 1 to 3 associations, texts of 1 to 255 characters); any
//! body under any status gets a verdict, and a 2xx is accepted only if it names this gate.
#![no_main]

use deployment_gating::deployments::{
    interpret_bulk_answer, parse_submission, Verdict, ENVIRONMENT_TYPES, STATES,
};
use deployment_gating::gating::callback::{GateId, GateKey};
use libfuzzer_sys::fuzz_target;
use serde_json::json;

const NOW_MS: i64 = 1_796_299_200_000;

fuzz_target!(|data: &[u8]| {
    if let Ok(submission) = parse_submission(data, NOW_MS) {
        assert!(STATES.contains(&submission.state));
        assert!(!submission.gate || submission.state == "pending");
        let bulk = submission.bulk_request("2026-12-03T12:00:00.000Z", "Deployment Gating");
        let deployments = bulk["deployments"].as_array().unwrap();
        assert_eq!(deployments.len(), 1);
        let d = &deployments[0];
        assert_eq!(d["pipeline"]["id"], submission.key.pipeline.as_str());
        assert_eq!(d["environment"]["id"], submission.key.environment.as_str());
        assert_eq!(
            d["deploymentSequenceNumber"].as_u64(),
            Some(submission.key.sequence)
        );
        assert!(submission.key.sequence <= i64::MAX as u64);
        assert!(d["updateSequenceNumber"]
            .as_u64()
            .is_some_and(|n| n <= i64::MAX as u64));
        assert_eq!(d["state"], submission.state);
        assert!(ENVIRONMENT_TYPES.contains(&d["environment"]["type"].as_str().unwrap()));
        assert_eq!(
            d.get("commands"),
            submission
                .gate
                .then(|| json!([{"command": "initiate_deployment_gating"}]))
                .as_ref()
        );
        let associations = d["associations"].as_array().unwrap();
        assert!((1..=3).contains(&associations.len()));
        for text in [
            &d["displayName"],
            &d["description"],
            &d["pipeline"]["displayName"],
            &d["environment"]["displayName"],
        ] {
            let chars = text.as_str().unwrap().chars().count();
            assert!((1..=255).contains(&chars));
        }
        serde_json::to_vec(&bulk).unwrap();
    }

    // Jira's answer: every status, every body, never a panic; 2xx accepted only for this gate.
    let key = GateKey {
        pipeline: GateId::parse("api-pipeline").unwrap(),
        environment: GateId::parse("prod-eu").unwrap(),
        sequence: 42,
    };
    // A JSON body's first bytes are fixed, so the length (whitespace) picks the third status.
    let any_status = 100 + (data.len() % 500) as u16;
    for status in [202, 400, any_status] {
        if let Verdict::Accepted(answer) = interpret_bulk_answer(status, data, &key) {
            assert!((200..=299).contains(&status));
            assert!(answer["acceptedDeployments"]
                .as_array()
                .unwrap()
                .iter()
                .any(|d| d["pipelineId"] == "api-pipeline"
                    && d["environmentId"] == "prod-eu"
                    && d["deploymentSequenceNumber"] == 42));
        }
    }
});
