//! The gating callback payload (seed: jira-deployment-gating-module.txt; connect-protocol.md §5)
//! parsed strictly into typed values.
//!
//! Covers `gatingStatus` (one of four), `updatedTimestamp` (RFC 3339 with an offset), the gate's
//! ids (strings of 1 to 255 characters, no control characters), `deploymentSequenceNumber` (an
//! integer from 0 to 2^63−1, never a float, never rounded) and `details` (objects with a string
//! `type`; unknown types kept verbatim). Leaves out authentication and storage.

use chrono::{DateTime, FixedOffset};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Jira's ids are at most 255 characters.
pub const MAX_ID_CHARS: usize = 255;
/// More details than this is not a gate Jira would describe.
pub const MAX_DETAILS: usize = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GatingStatus {
    Awaiting,
    Allowed,
    Prevented,
    Invalid,
}

impl GatingStatus {
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "awaiting" => Some(GatingStatus::Awaiting),
            "allowed" => Some(GatingStatus::Allowed),
            "prevented" => Some(GatingStatus::Prevented),
            "invalid" => Some(GatingStatus::Invalid),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            GatingStatus::Awaiting => "awaiting",
            GatingStatus::Allowed => "allowed",
            GatingStatus::Prevented => "prevented",
            GatingStatus::Invalid => "invalid",
        }
    }

    /// A change request has decided the gate (a pipeline may stop waiting).
    pub fn is_decided(self) -> bool {
        self != GatingStatus::Awaiting
    }
}

/// A pipeline or environment id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct GateId(String);

impl GateId {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let chars = raw.chars().count();
        if chars == 0 || chars > MAX_ID_CHARS {
            return Err(format!("must be 1 to {MAX_ID_CHARS} characters"));
        }
        if raw.chars().any(char::is_control) {
            return Err("must not contain control characters".into());
        }
        Ok(GateId(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for GateId {
    type Error = String;
    fn try_from(raw: String) -> Result<Self, String> {
        GateId::parse(&raw)
    }
}

impl From<GateId> for String {
    fn from(id: GateId) -> String {
        id.0
    }
}

/// Identifies one gated deployment, as Jira keys it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct GateKey {
    pub pipeline: GateId,
    pub environment: GateId,
    /// 0 to 2^63−1 (Jira's int64).
    pub sequence: u64,
}

/// One status update of one gate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GateUpdate {
    pub key: GateKey,
    pub status: GatingStatus,
    pub updated_at: DateTime<FixedOffset>,
    /// `updatedTimestamp` exactly as Jira sent it, for display.
    pub updated_timestamp: String,
    /// Each an object with a string `type`, kept as sent.
    pub details: Vec<Map<String, Value>>,
}

/// A field that breaks its rule; the message names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackError {
    pub field: &'static str,
    pub reason: String,
}

fn invalid(field: &'static str, reason: impl Into<String>) -> CallbackError {
    CallbackError {
        field,
        reason: reason.into(),
    }
}

pub fn parse_callback(body: &[u8]) -> Result<GateUpdate, CallbackError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| invalid("body", format!("is not valid JSON: {e}")))?;
    let Value::Object(mut fields) = value else {
        return Err(invalid("body", "must be a JSON object"));
    };
    let mut take_string = |field: &'static str| match fields.remove(field) {
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(invalid(field, "must be a string")),
        None => Err(invalid(field, "is required")),
    };
    let status_raw = take_string("gatingStatus")?;
    let status = GatingStatus::parse(&status_raw).ok_or_else(|| {
        invalid(
            "gatingStatus",
            "must be awaiting, allowed, prevented or invalid",
        )
    })?;
    let updated_timestamp = take_string("updatedTimestamp")?;
    let updated_at = DateTime::parse_from_rfc3339(&updated_timestamp).map_err(|_| {
        invalid(
            "updatedTimestamp",
            "must be an RFC 3339 time with an offset",
        )
    })?;
    let pipeline =
        GateId::parse(&take_string("pipelineId")?).map_err(|r| invalid("pipelineId", r))?;
    let environment =
        GateId::parse(&take_string("environmentId")?).map_err(|r| invalid("environmentId", r))?;
    let sequence = match fields.remove("deploymentSequenceNumber") {
        // `as_u64` is `Some` only for a JSON integer that fits exactly: floats and
        // out-of-range numbers never get rounded into a different gate.
        Some(Value::Number(n)) => {
            n.as_u64()
                .filter(|&n| n <= i64::MAX as u64)
                .ok_or_else(|| {
                    invalid(
                        "deploymentSequenceNumber",
                        "must be an integer from 0 to 2^63-1",
                    )
                })?
        }
        Some(_) => return Err(invalid("deploymentSequenceNumber", "must be an integer")),
        None => return Err(invalid("deploymentSequenceNumber", "is required")),
    };
    let details = match fields.remove("details") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => parse_details(items)?,
        Some(_) => return Err(invalid("details", "must be an array")),
    };
    Ok(GateUpdate {
        key: GateKey {
            pipeline,
            environment,
            sequence,
        },
        status,
        updated_at,
        updated_timestamp,
        details,
    })
}

fn parse_details(items: Vec<Value>) -> Result<Vec<Map<String, Value>>, CallbackError> {
    if items.len() > MAX_DETAILS {
        return Err(invalid(
            "details",
            format!("must have at most {MAX_DETAILS} entries"),
        ));
    }
    items
        .into_iter()
        .map(|item| match item {
            Value::Object(map) if map.get("type").is_some_and(Value::is_string) => Ok(map),
            _ => Err(invalid(
                "details",
                "each entry must be an object with a string type",
            )),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The seed's example payload.
    fn seed_example() -> Value {
        json!({
            "updatedTimestamp": "2020-08-25T06:04:50.239+00:00",
            "gatingStatus": "awaiting",
            "details": [{
                "type": "issue",
                "issueKey": "ITSM-1",
                "issueLink": "https://YOUR_SUBDOMAIN.atlassian.net/servicedesk/customer/portal/1/ITDSM-1"
            }],
            "pipelineId": "e9c906a7-451f-4fa6-ae1a-c389e2e2d87c",
            "environmentId": "8ec94d72-a4fc-4ac0-b31d-c5a595f373ba",
            "deploymentSequenceNumber": 100
        })
    }

    fn with(field: &str, value: Value) -> Vec<u8> {
        let mut p = seed_example();
        if value.is_null() {
            p.as_object_mut().unwrap().remove(field);
        } else {
            p[field] = value;
        }
        serde_json::to_vec(&p).unwrap()
    }

    fn refused_field(field: &str, value: Value) -> &'static str {
        parse_callback(&with(field, value))
            .expect_err("should be refused")
            .field
    }

    #[test]
    fn parses_the_seed_example() {
        let u = parse_callback(&serde_json::to_vec(&seed_example()).unwrap()).unwrap();
        assert_eq!(u.status, GatingStatus::Awaiting);
        assert_eq!(u.key.sequence, 100);
        assert_eq!(
            u.key.pipeline.as_str(),
            "e9c906a7-451f-4fa6-ae1a-c389e2e2d87c"
        );
        assert_eq!(u.updated_at.timestamp_millis(), 1_598_335_490_239);
        assert_eq!(u.details[0]["issueKey"], "ITSM-1");
    }

    #[test]
    fn unknown_detail_types_are_kept_verbatim() {
        let detail = json!({"type": "change-request", "id": 7, "nested": {"a": [1, 2]}});
        let u = parse_callback(&with("details", json!([detail.clone()]))).unwrap();
        assert_eq!(Value::Object(u.details[0].clone()), detail);
    }

    #[test]
    fn status_must_be_one_of_four() {
        assert_eq!(
            refused_field("gatingStatus", json!("approved")),
            "gatingStatus"
        );
        assert_eq!(
            refused_field("gatingStatus", json!("ALLOWED")),
            "gatingStatus"
        );
        assert_eq!(refused_field("gatingStatus", json!(1)), "gatingStatus");
        assert_eq!(refused_field("gatingStatus", Value::Null), "gatingStatus");
    }

    #[test]
    fn timestamp_needs_an_offset() {
        assert_eq!(
            refused_field("updatedTimestamp", json!("2020-08-25T06:04:50")),
            "updatedTimestamp"
        );
        assert_eq!(
            refused_field("updatedTimestamp", json!("yesterday")),
            "updatedTimestamp"
        );
        assert_eq!(
            refused_field("updatedTimestamp", json!(1598335490)),
            "updatedTimestamp"
        );
        let u = parse_callback(&with(
            "updatedTimestamp",
            json!("2020-08-25T08:04:50.239+02:00"),
        ))
        .unwrap();
        assert_eq!(u.updated_at.timestamp_millis(), 1_598_335_490_239);
    }

    #[test]
    fn sequence_number_is_an_exact_int64() {
        let max = parse_callback(&with("deploymentSequenceNumber", json!(i64::MAX))).unwrap();
        assert_eq!(max.key.sequence, i64::MAX as u64);
        let body = String::from_utf8(with("deploymentSequenceNumber", json!(0)))
            .unwrap()
            .replace(
                "\"deploymentSequenceNumber\":0",
                "\"deploymentSequenceNumber\":9223372036854775808",
            );
        assert_eq!(
            parse_callback(body.as_bytes()).unwrap_err().field,
            "deploymentSequenceNumber"
        );
        for bad in [
            json!(-1),
            json!(1.5),
            json!(1e3),
            json!("100"),
            json!(u64::MAX),
        ] {
            assert_eq!(
                refused_field("deploymentSequenceNumber", bad.clone()),
                "deploymentSequenceNumber",
                "{bad}"
            );
        }
    }

    #[test]
    fn ids_are_bounded_printable_strings() {
        assert_eq!(refused_field("pipelineId", json!("")), "pipelineId");
        assert_eq!(
            refused_field("pipelineId", json!("x".repeat(256))),
            "pipelineId"
        );
        assert_eq!(
            refused_field("environmentId", json!("a\u{0}b")),
            "environmentId"
        );
        assert_eq!(refused_field("environmentId", json!(5)), "environmentId");
        let u = parse_callback(&with("pipelineId", json!("é".repeat(255)))).unwrap();
        assert_eq!(u.key.pipeline.as_str().chars().count(), 255);
    }

    #[test]
    fn details_are_objects_with_a_type() {
        assert_eq!(
            refused_field("details", json!({"type": "issue"})),
            "details"
        );
        assert_eq!(
            refused_field("details", json!([{"issueKey": "A-1"}])),
            "details"
        );
        assert_eq!(refused_field("details", json!(["issue"])), "details");
        assert!(parse_callback(&with("details", Value::Null))
            .unwrap()
            .details
            .is_empty());
    }

    #[test]
    fn non_objects_and_bad_json_are_refused() {
        for body in [&b""[..], b"[]", b"null", b"{\"gatingStatus\":", b"\xff"] {
            assert_eq!(parse_callback(body).unwrap_err().field, "body");
        }
    }
}
