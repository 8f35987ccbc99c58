//! The live stream's protocol: what a dashboard sends and receives over `GET /api/v1/stream`.
//!
//! Server → client (JSON text frames): `snapshot` (current gates matching the socket's filters,
//! with `lastEventId`; `reset: true` when the client asked to resume from an id older than the
//! retained log), `events` (the events after `since`, in order, in bounded batches) and `event`
//! (one applied update). Client → server: `subscribe` (new filters; answered with a snapshot)
//! and `ping` (answered `pong` by the runtime without waking the object). Close codes below.

use serde::{Deserialize, Serialize};

use crate::gating::callback::GatingStatus;

/// The token behind the socket was revoked or the tenant uninstalled the app.
pub const CLOSE_UNAUTHORIZED: u16 = 4001;
pub const CLOSE_TOKEN_REVOKED: u16 = 4003;
/// The tenant already has [`MAX_SOCKETS`] open.
pub const CLOSE_OVER_CAPACITY: u16 = 4008;
/// A client frame over [`MAX_CLIENT_FRAME`] bytes, or one that is not a known message.
pub const CLOSE_POLICY: u16 = 1008;

pub const MAX_SOCKETS: usize = 20_000;
pub const MAX_CLIENT_FRAME: usize = 4096;
/// Events per `events` frame and gates per snapshot, so no frame grows without bound.
pub const MAX_BATCH: usize = 100;
pub const MAX_SNAPSHOT: usize = 1000;
/// The token id recorded for tickets of Jira users (general page), who hold no API token.
pub const JIRA_USER_TICKET: &str = "jira-user";
/// How long a stream ticket lives.
pub const TICKET_TTL_MS: i64 = 60_000;

pub const PING: &str = r#"{"type":"ping"}"#;
pub const PONG: &str = r#"{"type":"pong"}"#;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StreamFilter {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pipeline_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<GatingStatus>,
}

impl StreamFilter {
    pub fn matches(&self, pipeline: &str, environment: &str, status: &str) -> bool {
        self.pipeline_id.as_deref().is_none_or(|p| p == pipeline)
            && self
                .environment_id
                .as_deref()
                .is_none_or(|e| e == environment)
            && self.status.is_none_or(|s| s.as_str() == status)
    }

    /// From the stream URL's `pipelineId`, `environmentId`, `status`.
    pub fn from_query<'a>(
        pairs: impl Iterator<Item = (std::borrow::Cow<'a, str>, std::borrow::Cow<'a, str>)>,
    ) -> Result<Self, String> {
        let mut f = StreamFilter::default();
        for (k, v) in pairs {
            match k.as_ref() {
                "pipelineId" => f.pipeline_id = Some(v.into_owned()),
                "environmentId" => f.environment_id = Some(v.into_owned()),
                "status" => {
                    f.status = Some(GatingStatus::parse(&v).ok_or("status: not a gating status")?)
                }
                _ => {}
            }
        }
        Ok(f)
    }
}

/// What a client may send.
#[derive(Debug, Deserialize, PartialEq, Eq)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum ClientMessage {
    Subscribe {
        #[serde(default)]
        filters: StreamFilter,
    },
}

/// Kept with each socket; survives hibernation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SocketAttachment {
    pub token_id: String,
    pub filters: StreamFilter,
    #[serde(default)]
    pub subscribes: SubscribeBudget,
}

/// A `subscribe` costs the server a snapshot of up to [`MAX_SNAPSHOT`] gates for a 4 KiB frame,
/// so each socket may send at most [`MAX_SUBSCRIBES`] of them per [`SUBSCRIBE_WINDOW_MS`].
pub const MAX_SUBSCRIBES: u32 = 20;
pub const SUBSCRIBE_WINDOW_MS: f64 = 10_000.0;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SubscribeBudget {
    window_start_ms: f64,
    used: u32,
}

impl SubscribeBudget {
    /// Spends one subscribe at `now_ms`; false when the socket is over its budget.
    pub fn spend(&mut self, now_ms: f64) -> bool {
        if now_ms - self.window_start_ms >= SUBSCRIBE_WINDOW_MS {
            self.window_start_ms = now_ms;
            self.used = 0;
        }
        self.used += 1;
        self.used <= MAX_SUBSCRIBES
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_match_on_every_given_field() {
        let f = StreamFilter {
            pipeline_id: Some("p".into()),
            status: Some(GatingStatus::Allowed),
            ..StreamFilter::default()
        };
        assert!(f.matches("p", "any", "allowed"));
        assert!(!f.matches("p", "any", "awaiting"));
        assert!(!f.matches("q", "any", "allowed"));
        assert!(StreamFilter::default().matches("x", "y", "invalid"));
    }

    #[test]
    fn client_messages_are_strict() {
        let m: ClientMessage =
            serde_json::from_str(r#"{"type":"subscribe","filters":{"status":"awaiting"}}"#)
                .unwrap();
        assert_eq!(
            m,
            ClientMessage::Subscribe {
                filters: StreamFilter {
                    status: Some(GatingStatus::Awaiting),
                    ..StreamFilter::default()
                }
            }
        );
        assert!(serde_json::from_str::<ClientMessage>(r#"{"type":"subscribe","x":1}"#).is_err());
        assert!(serde_json::from_str::<ClientMessage>(r#"{"type":"delete"}"#).is_err());
        assert!(serde_json::from_str::<ClientMessage>(
            r#"{"type":"subscribe","filters":{"status":"nope"}}"#
        )
        .is_err());
    }

    #[test]
    fn subscribes_are_budgeted_per_window() {
        let mut budget = SubscribeBudget::default();
        let start = 1_000_000.0;
        for i in 0..MAX_SUBSCRIBES {
            assert!(budget.spend(start + f64::from(i)), "subscribe {i}");
        }
        assert!(!budget.spend(start + 100.0));
        assert!(!budget.spend(start + SUBSCRIBE_WINDOW_MS - 1.0));
        assert!(budget.spend(start + SUBSCRIBE_WINDOW_MS), "a new window");
    }

    #[test]
    fn query_filters() {
        let f = StreamFilter::from_query(url::form_urlencoded::parse(
            b"pipelineId=a%2Fb&status=invalid",
        ))
        .unwrap();
        assert_eq!(f.pipeline_id.as_deref(), Some("a/b"));
        assert!(StreamFilter::from_query(url::form_urlencoded::parse(b"status=x")).is_err());
    }
}
