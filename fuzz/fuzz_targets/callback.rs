//! The gating callback parser on arbitrary bodies.
//!
//! Checks, besides "never panics": an accepted update keeps every rule of `gating::callback`
//! (status one of four, ids of 1 to 255 characters without control characters, a sequence number
//! that fits an int64, at most 100 details each with a string `type`, a timestamp that reads back
//! to the same instant), and re-sending it as Jira would yields the same update.
#![no_main]

use chrono::DateTime;
use deployment_gating::gating::callback::{
    parse_callback, GatingStatus, MAX_DETAILS, MAX_ID_CHARS,
};
use libfuzzer_sys::fuzz_target;
use serde_json::{json, Value};

fuzz_target!(|data: &[u8]| {
    let Ok(update) = parse_callback(data) else {
        return;
    };
    assert_eq!(
        GatingStatus::parse(update.status.as_str()),
        Some(update.status)
    );
    for id in [&update.key.pipeline, &update.key.environment] {
        let chars = id.as_str().chars().count();
        assert!((1..=MAX_ID_CHARS).contains(&chars));
        assert!(!id.as_str().chars().any(char::is_control));
    }
    assert!(update.key.sequence <= i64::MAX as u64);
    assert!(update.details.len() <= MAX_DETAILS);
    assert!(update.details.iter().all(|d| d["type"].is_string()));
    assert_eq!(
        DateTime::parse_from_rfc3339(&update.updated_timestamp).ok(),
        Some(update.updated_at)
    );

    // The same update re-sent as Jira would send it parses to the same gate, status and time.
    // (Details are compared by count only: serde_json does not promise float round trips.)
    let resent = json!({
        "gatingStatus": update.status.as_str(),
        "updatedTimestamp": update.updated_timestamp,
        "pipelineId": update.key.pipeline.as_str(),
        "environmentId": update.key.environment.as_str(),
        "deploymentSequenceNumber": update.key.sequence,
        "details": update.details.iter().cloned().map(Value::Object).collect::<Vec<_>>(),
    });
    let again =
        parse_callback(&serde_json::to_vec(&resent).unwrap()).expect("re-sent update parses");
    assert_eq!(again.key, update.key);
    assert_eq!(again.status, update.status);
    assert_eq!(again.updated_at, update.updated_at);
    assert_eq!(again.updated_timestamp, update.updated_timestamp);
    assert_eq!(again.details.len(), update.details.len());
});
