//! The serde-typed protocol between the worker and a tenant's `TenantGates` object, and the
//! query parameters of the gate API that become its commands.
//!
//! Every command that reads gates carries the bearer token's hash: the object, which holds the
//! tenant's tokens, decides whether it is valid, so revocation takes effect on the next request.

use base64ct::{Base64UrlUnpadded, Encoding};
use serde::{Deserialize, Serialize};

use super::callback::{GateId, GateKey, GateUpdate, GatingStatus};
use crate::api_tokens::{Scope, TokenHash};

pub const DEFAULT_PAGE: u32 = 50;
/// The longest a gate request may wait for a decision.
pub const MAX_WAIT_SECONDS: u32 = 60;
pub const MAX_PAGE: u32 = 200;
pub const DEFAULT_EVENTS: u32 = 100;
pub const MAX_EVENTS: u32 = 1000;

/// Where a gate's status came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UpdateSource {
    Callback,
    Submitted,
    Reconciled,
}

impl UpdateSource {
    pub fn as_str(self) -> &'static str {
        match self {
            UpdateSource::Callback => "callback",
            UpdateSource::Submitted => "submitted",
            UpdateSource::Reconciled => "reconciled",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum GateCommand {
    ApplyUpdate {
        update: GateUpdate,
        /// `X-Atlassian-Webhook-Identifier`, the same across Jira's retries of one delivery.
        delivery_id: Option<String>,
        source: UpdateSource,
    },
    GetGate {
        bearer: TokenHash,
        key: GateKey,
        /// Hold the answer up to this long while the gate is `awaiting` (0: answer at once).
        #[serde(default)]
        wait_seconds: u32,
    },
    ListGates {
        bearer: TokenHash,
        filter: GateFilter,
    },
    Events {
        bearer: TokenHash,
        since: u64,
        limit: u32,
    },
    CreateToken {
        id: String,
        name: String,
        scopes: Vec<Scope>,
        hash: TokenHash,
    },
    ListTokens,
    RevokeToken {
        id: String,
    },
    /// The tenant uninstalled: drop its tokens and gate data.
    Uninstall,
    /// Stores a stream ticket (its hash) for the bearer's token, valid for a minute, single use.
    CreateTicket {
        bearer: TokenHash,
        hash: TokenHash,
    },
    /// Stores a stream ticket for a Jira user the worker authenticated by a Connect JWT (the
    /// "Deployment gates" page inside Jira). Its sockets close when the tenant uninstalls.
    CreateJiraTicket {
        hash: TokenHash,
    },
    /// Checks a bearer token for a scope (before the worker acts on the tenant's behalf).
    Authorize {
        bearer: TokenHash,
        scope: Scope,
    },
    /// Jira accepted a deployment this app submitted: record the gate (as `awaiting`, until
    /// anything from Jira supersedes it) or the pipeline's reported state.
    RecordSubmission {
        key: GateKey,
        gated: bool,
        state: String,
    },
}

impl GateCommand {
    /// The scope a bearer needs for this command, if it carries one.
    pub fn bearer_scope(&self) -> Option<(&TokenHash, Scope)> {
        match self {
            GateCommand::GetGate { bearer, .. }
            | GateCommand::ListGates { bearer, .. }
            | GateCommand::Events { bearer, .. }
            | GateCommand::CreateTicket { bearer, .. } => Some((bearer, Scope::GatesRead)),
            GateCommand::Authorize { bearer, scope } => Some((bearer, *scope)),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GateFilter {
    pub pipeline: Option<GateId>,
    pub environment: Option<GateId>,
    pub status: Option<GatingStatus>,
    pub limit: u32,
    /// From the cursor: only gates whose last event is older than this.
    pub before_event: Option<u64>,
}

/// Parses `pipelineId`, `environmentId`, `status`, `limit`, `cursor`; the error names the
/// parameter.
pub fn parse_gate_filter<'a>(
    pairs: impl Iterator<Item = (std::borrow::Cow<'a, str>, std::borrow::Cow<'a, str>)>,
) -> Result<GateFilter, (&'static str, String)> {
    let mut filter = GateFilter {
        limit: DEFAULT_PAGE,
        ..GateFilter::default()
    };
    for (key, value) in pairs {
        match key.as_ref() {
            "pipelineId" => {
                filter.pipeline = Some(GateId::parse(&value).map_err(|r| ("pipelineId", r))?)
            }
            "environmentId" => {
                filter.environment = Some(GateId::parse(&value).map_err(|r| ("environmentId", r))?)
            }
            "status" => {
                filter.status = Some(GatingStatus::parse(&value).ok_or((
                    "status",
                    "must be awaiting, allowed, prevented or invalid".to_owned(),
                ))?)
            }
            "limit" => filter.limit = parse_limit(&value, MAX_PAGE).map_err(|r| ("limit", r))?,
            "cursor" => {
                filter.before_event = Some(
                    decode_cursor(&value)
                        .ok_or(("cursor", "is not a cursor this API issued".to_owned()))?,
                )
            }
            _ => {}
        }
    }
    Ok(filter)
}

/// Parses `since` (default 0) and `limit` of the events API.
pub fn parse_events_query<'a>(
    pairs: impl Iterator<Item = (std::borrow::Cow<'a, str>, std::borrow::Cow<'a, str>)>,
) -> Result<(u64, u32), (&'static str, String)> {
    let (mut since, mut limit) = (0, DEFAULT_EVENTS);
    for (key, value) in pairs {
        match key.as_ref() {
            "since" => {
                since = value
                    .parse::<u64>()
                    .ok()
                    .filter(|&n| n <= i64::MAX as u64)
                    .ok_or((
                        "since",
                        "must be an event id (a non-negative integer)".to_owned(),
                    ))?
            }
            "limit" => limit = parse_limit(&value, MAX_EVENTS).map_err(|r| ("limit", r))?,
            _ => {}
        }
    }
    Ok((since, limit))
}

/// Parses `wait` (seconds, 0 to [`MAX_WAIT_SECONDS`]; absent: 0).
pub fn parse_wait<'a>(
    mut pairs: impl Iterator<Item = (std::borrow::Cow<'a, str>, std::borrow::Cow<'a, str>)>,
) -> Result<u32, (&'static str, String)> {
    match pairs.find(|(k, _)| k == "wait") {
        None => Ok(0),
        Some((_, v)) => v
            .parse::<u32>()
            .ok()
            .filter(|&n| n <= MAX_WAIT_SECONDS)
            .ok_or(("wait", format!("must be 0 to {MAX_WAIT_SECONDS} seconds"))),
    }
}

fn parse_limit(raw: &str, max: u32) -> Result<u32, String> {
    raw.parse::<u32>()
        .ok()
        .filter(|n| (1..=max).contains(n))
        .ok_or_else(|| format!("must be an integer from 1 to {max}"))
}

/// An opaque page cursor: the last event id of the page's last gate.
pub fn encode_cursor(before_event: u64) -> String {
    Base64UrlUnpadded::encode_string(format!("v1:{before_event}").as_bytes())
}

pub fn decode_cursor(cursor: &str) -> Option<u64> {
    let raw = Base64UrlUnpadded::decode_vec(cursor).ok()?;
    std::str::from_utf8(&raw)
        .ok()?
        .strip_prefix("v1:")?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(
        q: &str,
    ) -> impl Iterator<Item = (std::borrow::Cow<'_, str>, std::borrow::Cow<'_, str>)> {
        url::form_urlencoded::parse(q.as_bytes())
    }

    #[test]
    fn filters_parse_and_errors_name_the_parameter() {
        let f = parse_gate_filter(pairs("pipelineId=p%201&status=allowed&limit=10")).unwrap();
        assert_eq!(f.pipeline.unwrap().as_str(), "p 1");
        assert_eq!(f.status, Some(GatingStatus::Allowed));
        assert_eq!(f.limit, 10);
        assert_eq!(parse_gate_filter(pairs("")).unwrap().limit, DEFAULT_PAGE);
        assert_eq!(
            parse_gate_filter(pairs("status=ok")).unwrap_err().0,
            "status"
        );
        assert_eq!(parse_gate_filter(pairs("limit=0")).unwrap_err().0, "limit");
        assert_eq!(
            parse_gate_filter(pairs("limit=201")).unwrap_err().0,
            "limit"
        );
        assert_eq!(
            parse_gate_filter(pairs("cursor=abc")).unwrap_err().0,
            "cursor"
        );
    }

    #[test]
    fn wait_is_bounded() {
        assert_eq!(parse_wait(pairs("")).unwrap(), 0);
        assert_eq!(parse_wait(pairs("wait=60")).unwrap(), 60);
        assert_eq!(parse_wait(pairs("wait=61")).unwrap_err().0, "wait");
        assert_eq!(parse_wait(pairs("wait=-1")).unwrap_err().0, "wait");
    }

    #[test]
    fn cursors_round_trip() {
        let c = encode_cursor(42);
        let f = parse_gate_filter(pairs(&format!("cursor={c}"))).unwrap();
        assert_eq!(f.before_event, Some(42));
    }

    #[test]
    fn events_query() {
        assert_eq!(parse_events_query(pairs("")).unwrap(), (0, DEFAULT_EVENTS));
        assert_eq!(
            parse_events_query(pairs("since=7&limit=5")).unwrap(),
            (7, 5)
        );
        assert_eq!(
            parse_events_query(pairs("since=-1")).unwrap_err().0,
            "since"
        );
        assert_eq!(
            parse_events_query(pairs("limit=1001")).unwrap_err().0,
            "limit"
        );
    }

    #[test]
    fn commands_round_trip_through_json() {
        let cmd = GateCommand::Events {
            bearer: TokenHash("ab".into()),
            since: 3,
            limit: 9,
        };
        let json = serde_json::to_string(&cmd).unwrap();
        assert!(json.contains("\"op\":\"events\""));
        assert!(matches!(
            serde_json::from_str::<GateCommand>(&json).unwrap(),
            GateCommand::Events {
                since: 3,
                limit: 9,
                ..
            }
        ));
    }
}
