//! Deployment submissions from pipelines, checked as Jira would before anything is sent, turned
//! into Jira's bulk request, and Jira's answer read back.
//!
//! Covers the compact submission body of `POST /api/v1/deployments`, every limit of the
//! Deployments API (connect-protocol.md §6) with a 400 naming the field, the bulk request (with
//! `initiate_deployment_gating` when gating), and the verdict on Jira's answer. Leaves out
//! sending, retrying and storing, which are I/O.

use serde::Deserialize;
use serde_json::{json, Value};

use crate::gating::callback::{GateId, GateKey};

const MAX_TEXT: usize = 255;
const MAX_URL: usize = 2000;
const MAX_KEYS: usize = 100;
const MAX_ASSOCIATION_VALUES: usize = 500;

pub const STATES: &[&str] = &[
    "unknown",
    "pending",
    "in_progress",
    "cancelled",
    "failed",
    "rolled_back",
    "successful",
];
pub const ENVIRONMENT_TYPES: &[&str] = &[
    "unmapped",
    "development",
    "testing",
    "staging",
    "production",
];

/// A field that breaks a rule; the message names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: &'static str,
    pub reason: String,
}

fn invalid(field: &'static str, reason: impl Into<String>) -> FieldError {
    FieldError {
        field,
        reason: reason.into(),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawSubmission {
    pipeline: RawNamed,
    environment: RawEnvironment,
    deployment_sequence_number: Value,
    update_sequence_number: Option<Value>,
    display_name: String,
    url: String,
    description: String,
    label: Option<String>,
    state: Option<String>,
    issue_keys: Option<Vec<String>>,
    service_ids: Option<Vec<String>>,
    gate: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawNamed {
    id: String,
    display_name: String,
    url: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawEnvironment {
    id: String,
    display_name: String,
    #[serde(rename = "type")]
    kind: String,
}

/// A submission that passed every rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Submission {
    pub key: GateKey,
    pub state: &'static str,
    pub gate: bool,
    /// The deployment as Jira's bulk API takes it (without `lastUpdated`, set when sent).
    deployment: Value,
}

/// Parses a submission body; `now_ms` is the default `updateSequenceNumber`.
pub fn parse_submission(body: &[u8], now_ms: i64) -> Result<Submission, FieldError> {
    let raw: RawSubmission =
        serde_json::from_slice(body).map_err(|e| invalid("body", e.to_string()))?;
    let pipeline_id = GateId::parse(&raw.pipeline.id).map_err(|r| invalid("pipeline.id", r))?;
    let environment_id =
        GateId::parse(&raw.environment.id).map_err(|r| invalid("environment.id", r))?;
    let sequence = int64(&raw.deployment_sequence_number).ok_or_else(|| {
        invalid(
            "deploymentSequenceNumber",
            "must be an integer from 0 to 2^63-1",
        )
    })?;
    let update_sequence = match &raw.update_sequence_number {
        None => now_ms as u64,
        Some(v) => int64(v).ok_or_else(|| {
            invalid(
                "updateSequenceNumber",
                "must be an integer from 0 to 2^63-1",
            )
        })?,
    };
    let state = match raw.state.as_deref() {
        None => "pending",
        Some(s) => STATES
            .iter()
            .find(|&&known| known == s)
            .copied()
            .ok_or_else(|| invalid("state", format!("must be one of {}", STATES.join(", "))))?,
    };
    let gate = raw.gate.unwrap_or(true);
    if gate && state != "pending" {
        return Err(invalid(
            "state",
            "must be pending when gate is true (Jira gates only pending deployments)",
        ));
    }
    let kind = ENVIRONMENT_TYPES
        .iter()
        .find(|&&t| t == raw.environment.kind)
        .copied()
        .ok_or_else(|| {
            invalid(
                "environment.type",
                format!("must be one of {}", ENVIRONMENT_TYPES.join(", ")),
            )
        })?;

    let mut associations = Vec::new();
    let mut values = 0;
    if let Some(keys) = &raw.issue_keys {
        check_count("issueKeys", keys.len())?;
        if let Some(bad) = keys.iter().find(|k| !is_issue_key(k)) {
            return Err(invalid(
                "issueKeys",
                format!("{bad:?} is not an issue key such as ABC-123"),
            ));
        }
        values += keys.len();
        associations.push(json!({"associationType": "issueIdOrKeys", "values": keys}));
    }
    if let Some(ids) = &raw.service_ids {
        check_count("serviceIds", ids.len())?;
        if ids
            .iter()
            .any(|s| s.is_empty() || s.chars().count() > MAX_TEXT)
        {
            return Err(invalid("serviceIds", "each must be 1 to 255 characters"));
        }
        values += ids.len();
        associations.push(json!({"associationType": "serviceIdOrKeys", "values": ids}));
    }
    if associations.is_empty() {
        return Err(invalid(
            "issueKeys",
            "a deployment needs issueKeys or serviceIds",
        ));
    }
    if values > MAX_ASSOCIATION_VALUES {
        return Err(invalid(
            "issueKeys",
            "at most 500 issue keys and service ids in all",
        ));
    }

    let mut deployment = json!({
        "schemaVersion": "1.0",
        "deploymentSequenceNumber": sequence,
        "updateSequenceNumber": update_sequence,
        "displayName": text("displayName", &raw.display_name)?,
        "url": url("url", &raw.url)?,
        "description": text("description", &raw.description)?,
        "state": state,
        "pipeline": {
            "id": pipeline_id.as_str(),
            "displayName": text("pipeline.displayName", &raw.pipeline.display_name)?,
            "url": url("pipeline.url", &raw.pipeline.url)?,
        },
        "environment": {
            "id": environment_id.as_str(),
            "displayName": text("environment.displayName", &raw.environment.display_name)?,
            "type": kind,
        },
        "associations": associations,
    });
    if let Some(label) = &raw.label {
        deployment["label"] = text("label", label)?.into();
    }
    if gate {
        deployment["commands"] = json!([{"command": "initiate_deployment_gating"}]);
    }
    Ok(Submission {
        key: GateKey {
            pipeline: pipeline_id,
            environment: environment_id,
            sequence,
        },
        state,
        gate,
        deployment,
    })
}

impl Submission {
    /// The body of `POST /rest/deployments/0.1/bulk`.
    pub fn bulk_request(&self, now_rfc3339: &str, product: &str) -> Value {
        let mut deployment = self.deployment.clone();
        deployment["lastUpdated"] = now_rfc3339.into();
        json!({"deployments": [deployment], "providerMetadata": {"product": product}})
    }
}

/// What Jira's answer to the bulk request means for the caller.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Accepted; Jira's summary is passed on.
    Accepted(Value),
    /// Jira refused the deployment or its issue keys: 422 with Jira's messages.
    Rejected(Vec<String>),
    /// 401/403: the app lacks a scope or module, or the tenant is gone.
    Refused(u16),
    /// 429/5xx: worth retrying.
    Retryable(u16),
    /// Anything else Jira said.
    Unexpected(u16),
    /// A 2xx whose body is not Jira's answer: Jira may have recorded the deployment or not.
    Unreadable(u16),
}

pub fn interpret_bulk_answer(status: u16, body: &[u8], key: &GateKey) -> Verdict {
    let answer: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    match status {
        // Jira's answer lists accepted and rejected deployments; a body with neither says
        // nothing about what Jira recorded, so it is neither acceptance nor rejection.
        200..=299
            if !answer["acceptedDeployments"].is_array()
                && !answer["rejectedDeployments"].is_array() =>
        {
            Verdict::Unreadable(status)
        }
        200..=299 => {
            let accepted = answer["acceptedDeployments"]
                .as_array()
                .is_some_and(|list| {
                    list.iter().any(|d| {
                        d["pipelineId"] == key.pipeline.as_str()
                            && d["environmentId"] == key.environment.as_str()
                            && d["deploymentSequenceNumber"].as_u64() == Some(key.sequence)
                    })
                });
            let mut messages: Vec<String> = answer["rejectedDeployments"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|r| r["errors"].as_array().cloned().unwrap_or_default())
                .filter_map(|e| e["message"].as_str().map(str::to_owned))
                .collect();
            let unknown: Vec<String> = answer["unknownIssueKeys"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|k| k.as_str().map(str::to_owned))
                .collect();
            if !unknown.is_empty() {
                messages.push(format!("unknown issue keys: {}", unknown.join(", ")));
            }
            if accepted && messages.is_empty() {
                Verdict::Accepted(answer)
            } else if messages.is_empty() {
                Verdict::Rejected(vec!["Jira did not accept the deployment".into()])
            } else {
                Verdict::Rejected(messages)
            }
        }
        400 | 413 => Verdict::Rejected(
            answer["errors"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|e| e["message"].as_str().map(str::to_owned))
                .chain(answer["message"].as_str().map(str::to_owned))
                .collect(),
        ),
        401 | 403 => Verdict::Refused(status),
        429 | 500..=599 => Verdict::Retryable(status),
        other => Verdict::Unexpected(other),
    }
}

fn int64(v: &Value) -> Option<u64> {
    v.as_u64().filter(|&n| n <= i64::MAX as u64)
}

fn text<'a>(field: &'static str, value: &'a str) -> Result<&'a str, FieldError> {
    let n = value.chars().count();
    if n == 0 || n > MAX_TEXT || value.chars().any(char::is_control) {
        return Err(invalid(field, "must be 1 to 255 printable characters"));
    }
    Ok(value)
}

fn url<'a>(field: &'static str, value: &'a str) -> Result<&'a str, FieldError> {
    let parsed = url::Url::parse(value).map_err(|_| invalid(field, "must be an absolute URL"))?;
    if !matches!(parsed.scheme(), "http" | "https") || value.len() > MAX_URL {
        return Err(invalid(
            field,
            "must be an http(s) URL of at most 2000 characters",
        ));
    }
    Ok(value)
}

fn check_count(field: &'static str, n: usize) -> Result<(), FieldError> {
    if n == 0 || n > MAX_KEYS {
        return Err(invalid(field, "must hold 1 to 100 entries"));
    }
    Ok(())
}

/// `ABC-123`: a project key (a capital letter, then capitals, digits or `_`) and a number.
fn is_issue_key(key: &str) -> bool {
    let Some((project, number)) = key.split_once('-') else {
        return false;
    };
    let mut project_chars = project.chars();
    project_chars.next().is_some_and(|c| c.is_ascii_uppercase())
        && project_chars.all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        && !number.is_empty()
        && !number.starts_with('0')
        && number.bytes().all(|b| b.is_ascii_digit())
        && key.len() <= MAX_TEXT
}

#[cfg(test)]
mod tests;
