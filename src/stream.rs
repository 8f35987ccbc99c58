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
/// Bytes per frame: gate details can be long (a callback body may have 64 KiB), so counts alone
/// do not bound a frame.
pub const MAX_FRAME_BYTES: usize = 1 << 20;
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

/// `events` frames for `events` (id and JSON, in order), each at most [`MAX_BATCH`] events and
/// [`MAX_FRAME_BYTES`] bytes. A frame's `lastEventId` is its last event's id; the final frame's is
/// `end`, which also covers the events the socket's filters left out. So a client that stops
/// after any frame and resumes from its `lastEventId` misses nothing. No events: one empty frame.
pub fn event_frames(events: &[(u64, String)], end: u64) -> Vec<String> {
    let mut frames = Vec::new();
    let mut rest = events;
    loop {
        let mut bytes = 0;
        let take = rest
            .iter()
            .take(MAX_BATCH)
            .take_while(|(_, json)| {
                bytes += json.len() + 1;
                bytes <= MAX_FRAME_BYTES - 64
            })
            .count()
            .max(rest.len().min(1));
        let (batch, after) = rest.split_at(take);
        let last_id = if after.is_empty() {
            end
        } else {
            batch.last().map_or(end, |(id, _)| *id)
        };
        let body: Vec<&str> = batch.iter().map(|(_, json)| json.as_str()).collect();
        frames.push(format!(
            r#"{{"type":"events","events":[{}],"lastEventId":{last_id}}}"#,
            body.join(",")
        ));
        if after.is_empty() {
            return frames;
        }
        rest = after;
    }
}

/// A `snapshot` frame from gates (JSON, newest change first): as many as fit in [`MAX_SNAPSHOT`]
/// gates and [`MAX_FRAME_BYTES`] bytes; `truncated` says more gates match than were sent (the
/// REST list pages through all of them).
pub fn snapshot_frame(gates: impl IntoIterator<Item = String>, reset: bool, last: u64) -> String {
    let mut body = Vec::new();
    let mut bytes = 0;
    let mut truncated = false;
    for gate in gates {
        bytes += gate.len() + 1;
        if body.len() == MAX_SNAPSHOT || bytes > MAX_FRAME_BYTES - 128 {
            truncated = true;
            break;
        }
        body.push(gate);
    }
    format!(
        r#"{{"type":"snapshot","reset":{reset},"truncated":{truncated},"gates":[{}],"lastEventId":{last}}}"#,
        body.join(",")
    )
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

    fn parse(frame: &str) -> serde_json::Value {
        serde_json::from_str(frame).expect("frames are JSON")
    }

    #[test]
    fn event_frames_are_bounded_and_resumable_from_any_frame() {
        let small: Vec<(u64, String)> = (1..=250)
            .map(|id| (id, format!(r#"{{"eventId":{id}}}"#)))
            .collect();
        let frames: Vec<_> = event_frames(&small, 300).iter().map(|f| parse(f)).collect();
        let sizes: Vec<usize> = frames
            .iter()
            .map(|f| f["events"].as_array().unwrap().len())
            .collect();
        assert_eq!(sizes, [100, 100, 50]);
        let ends: Vec<u64> = frames
            .iter()
            .map(|f| f["lastEventId"].as_u64().unwrap())
            .collect();
        assert_eq!(ends, [100, 200, 300], "the last frame covers the whole log");

        // Large events: bytes bound the frame before the count does.
        let big: Vec<(u64, String)> = (1..=40)
            .map(|id| {
                (
                    id,
                    format!(r#"{{"eventId":{id},"d":"{}"}}"#, "x".repeat(60_000)),
                )
            })
            .collect();
        let frames = event_frames(&big, 40);
        assert!(
            frames.iter().all(|f| f.len() <= MAX_FRAME_BYTES),
            "within the byte cap"
        );
        let ids: Vec<u64> = frames
            .iter()
            .flat_map(|f| parse(f)["events"].as_array().unwrap().clone())
            .map(|e| e["eventId"].as_u64().unwrap())
            .collect();
        assert_eq!(
            ids,
            (1..=40).collect::<Vec<_>>(),
            "every event once, in order"
        );

        assert_eq!(
            parse(&event_frames(&[], 7)[0]),
            serde_json::json!(
                {"type": "events", "events": [], "lastEventId": 7}
            )
        );
    }

    #[test]
    fn snapshots_are_bounded_and_say_when_they_are_cut() {
        let gate = |i: usize| format!(r#"{{"n":{i}}}"#);
        let all = parse(&snapshot_frame((0..10).map(gate), false, 9));
        assert_eq!(all["gates"].as_array().unwrap().len(), 10);
        assert_eq!(all["truncated"], false);
        let cut = parse(&snapshot_frame((0..MAX_SNAPSHOT + 1).map(gate), true, 9));
        assert_eq!(cut["gates"].as_array().unwrap().len(), MAX_SNAPSHOT);
        assert_eq!(
            (cut["truncated"].as_bool(), cut["reset"].as_bool()),
            (Some(true), Some(true))
        );
        let big = snapshot_frame(
            (0..100).map(|_| format!("\"{}\"", "x".repeat(60_000))),
            false,
            9,
        );
        assert!(big.len() <= MAX_FRAME_BYTES && parse(&big)["truncated"] == true);
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
