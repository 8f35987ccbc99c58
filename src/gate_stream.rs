//! The stream side of `TenantGates`: opening hibernating WebSockets, the first frames (snapshot
//! or resume), filter changes, and closing sockets whose token was revoked. Live events go out
//! through `crate::gate_fanout`.
//!
//! Sockets are accepted with the hibernation API: the runtime keeps them open while the object
//! sleeps, and each socket's token id and filters live in its attachment, so they survive
//! hibernation. The protocol itself is in `crate::stream`.

use serde::Deserialize;
use serde_json::Value;
use worker::{
    Date, Request, Response, SqlStorage, SqlStorageValue, State, WebSocket,
    WebSocketIncomingMessage, WebSocketPair,
};

use crate::api_tokens::parse_ticket;
use crate::error::AppError;
use crate::gate_fanout::Fanout;
use crate::stream::{self, event_frames};
use crate::stream::{
    ClientMessage, SocketAttachment, StreamFilter, SubscribeBudget, CLOSE_OVER_CAPACITY,
    CLOSE_POLICY, CLOSE_TOKEN_REVOKED, CLOSE_UNAUTHORIZED, JIRA_USER_TICKET, MAX_BATCH,
    MAX_CLIENT_FRAME, MAX_SNAPSHOT, MAX_SOCKETS, MAX_SUBSCRIBES, SUBSCRIBE_WINDOW_MS,
};
use crate::tenant_gates_do::{last_event_id, query, EventView, GateView, StoredEvent, StoredGate};

/// (1) Read filters and `since` (400). (2) Consume the single-use ticket (401 before the upgrade
/// if it is unknown, expired, used, or its token was revoked). (3) Accept the socket for
/// hibernation with its attachment, then send the snapshot or the missed events.
pub fn open(
    state: &State,
    fanout: &Fanout,
    sql: &SqlStorage,
    req: &Request,
) -> Result<Response, AppError> {
    let url = req.url().map_err(|e| AppError::Internal(e.to_string()))?;
    let ticket = url
        .query_pairs()
        .find(|(k, _)| k == "ticket")
        .and_then(|(_, v)| parse_ticket(&v))
        .ok_or(AppError::InvalidBearer)?
        .1;

    // (1) Filters and resume point, before the ticket is spent on a request that fails.
    let bad = |message: String| AppError::BadRequest {
        code: "invalid_parameter",
        message,
    };
    let filters = StreamFilter::from_query(url.query_pairs()).map_err(bad)?;
    let since = match url.query_pairs().find(|(k, _)| k == "since") {
        None => None,
        Some((_, v)) => Some(
            v.parse::<i64>()
                .ok()
                .and_then(|id| u64::try_from(id).ok())
                .ok_or_else(|| bad("since: must be an event id".into()))?,
        ),
    };

    // (2) Ticket.
    #[derive(Deserialize)]
    struct Ticket {
        token_id: String,
    }
    let now_ms = Date::now().as_millis() as f64;
    let token_id = query::<Ticket>(
        sql,
        "DELETE FROM tickets WHERE hash = ? AND expires_ms >= ? RETURNING token_id",
        vec![ticket.0.into(), SqlStorageValue::from(now_ms)],
    )?
    .into_iter()
    .next()
    .ok_or(AppError::InvalidBearer)?
    .token_id;
    if token_id != JIRA_USER_TICKET {
        let active: Vec<Value> = query(
            sql,
            "SELECT id FROM tokens WHERE id = ? AND revoked_at IS NULL",
            vec![token_id.clone().into()],
        )?;
        if active.is_empty() {
            return Err(AppError::InvalidBearer);
        }
    }

    // (3) Accept, after sending what is pending to the others: the first frame of this socket
    // already covers it.
    fanout.flush_now(state);
    let pair = WebSocketPair::new().map_err(internal)?;
    state.accept_web_socket(&pair.server);
    pair.server
        .serialize_attachment(SocketAttachment {
            token_id,
            filters: filters.clone(),
            subscribes: SubscribeBudget::default(),
        })
        .map_err(internal)?;
    if state.get_websockets().len() > MAX_SOCKETS {
        let _ = pair
            .server
            .close(Some(CLOSE_OVER_CAPACITY), Some("over capacity"));
    } else {
        send_initial(sql, &pair.server, &filters, since)?;
    }
    Response::from_websocket(pair.client).map_err(internal)
}

/// `since` within the retained log: the events after it (possibly none), in batches. Otherwise
/// a snapshot, marked `reset` when the client asked for events the log no longer has.
fn send_initial(
    sql: &SqlStorage,
    ws: &WebSocket,
    filters: &StreamFilter,
    since: Option<u64>,
) -> Result<(), AppError> {
    #[derive(Deserialize)]
    struct Bounds {
        first: Option<f64>,
        last: Option<f64>,
    }
    let bounds = query::<Bounds>(
        sql,
        "SELECT MIN(id) AS first, MAX(id) AS last FROM events",
        vec![],
    )?
    .into_iter()
    .next();
    let (first, last) = bounds
        .map(|b| (b.first.map(|f| f as u64), b.last.unwrap_or(0.0) as u64))
        .unwrap_or((None, 0));
    match since {
        Some(since) if first.is_none_or(|first| since.saturating_add(1) >= first) => {
            let mut after = since;
            loop {
                let events: Vec<StoredEvent> = query(
                    sql,
                    "SELECT * FROM events WHERE id > ? AND note IS NULL ORDER BY id LIMIT ?",
                    vec![
                        SqlStorageValue::from(after as f64),
                        SqlStorageValue::from(MAX_BATCH as f64),
                    ],
                )?;
                let full = events.len() == MAX_BATCH;
                after = events.last().map_or(after, |e| e.id as u64);
                let matching = event_jsons(
                    events
                        .iter()
                        .filter(|e| filters.matches(&e.pipeline_id, &e.environment_id, &e.status)),
                );
                // A page's frames end at its last scanned event; the final page's at the log's.
                for frame in event_frames(&matching, if full { after } else { last }) {
                    let _ = ws.send_with_str(frame);
                }
                if !full {
                    return Ok(());
                }
            }
        }
        _ => send_snapshot(sql, ws, filters, since.is_some(), last),
    }
}

/// Events as `(id, JSON)`, the form [`event_frames`] takes.
pub(crate) fn event_jsons<'a>(events: impl Iterator<Item = &'a StoredEvent>) -> Vec<(u64, String)> {
    events
        .map(|e| {
            let json = serde_json::to_string(&EventView::from(e.clone())).unwrap_or_default();
            (e.id as u64, json)
        })
        .collect()
}

fn send_snapshot(
    sql: &SqlStorage,
    ws: &WebSocket,
    filters: &StreamFilter,
    reset: bool,
    last: u64,
) -> Result<(), AppError> {
    let _ = ws.send_with_str(snapshot_frame(sql, filters, reset, last)?);
    Ok(())
}

/// The current gates matching `filters`, newest change first, bounded by
/// [`crate::stream::snapshot_frame`].
pub(crate) fn snapshot_frame(
    sql: &SqlStorage,
    filters: &StreamFilter,
    reset: bool,
    last: u64,
) -> Result<String, AppError> {
    // The filters go into the query, so matching gates are never cut off by others.
    let mut conditions = Vec::new();
    let mut params = Vec::new();
    for (column, value) in [
        ("pipeline_id", filters.pipeline_id.as_deref()),
        ("environment_id", filters.environment_id.as_deref()),
        ("status", filters.status.map(|s| s.as_str())),
    ] {
        if let Some(value) = value {
            conditions.push(format!("{column} = ?"));
            params.push(SqlStorageValue::from(value.to_owned()));
        }
    }
    let filter = if conditions.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", conditions.join(" AND "))
    };
    params.push(SqlStorageValue::from((MAX_SNAPSHOT + 1) as f64));
    let gates: Vec<StoredGate> = query(
        sql,
        &format!("SELECT * FROM gates {filter} ORDER BY last_event_id DESC LIMIT ?"),
        params,
    )?;
    let gates = gates
        .into_iter()
        .map(|g| serde_json::to_string(&GateView::from(g)).unwrap_or_default());
    Ok(stream::snapshot_frame(gates, reset, last))
}

/// A client frame: `subscribe` replaces the socket's filters and answers with a snapshot.
pub fn on_message(
    state: &State,
    fanout: &Fanout,
    sql: &SqlStorage,
    ws: &WebSocket,
    message: WebSocketIncomingMessage,
) {
    let text = match message {
        WebSocketIncomingMessage::String(text) if text.len() <= MAX_CLIENT_FRAME => text,
        _ => {
            let _ = ws.close(
                Some(CLOSE_POLICY),
                Some("frames are JSON text of at most 4 KiB"),
            );
            return;
        }
    };
    let Ok(ClientMessage::Subscribe { filters }) = serde_json::from_str::<ClientMessage>(&text)
    else {
        let _ = ws.close(Some(CLOSE_POLICY), Some("unknown message"));
        return;
    };
    let Ok(Some(mut attachment)) = ws.deserialize_attachment::<SocketAttachment>() else {
        let _ = ws.close(Some(CLOSE_UNAUTHORIZED), Some("unauthorized"));
        return;
    };
    if !attachment.subscribes.spend(Date::now().as_millis() as f64) {
        let _ = ws.close(
            Some(CLOSE_POLICY),
            Some(&format!(
                "too many subscribes: at most {MAX_SUBSCRIBES} per {} s",
                SUBSCRIBE_WINDOW_MS / 1000.0
            )),
        );
        return;
    }
    // Pending events go out under the old filters; the snapshot below covers them.
    fanout.flush_now(state);
    attachment.filters = filters.clone();
    if ws.serialize_attachment(attachment).is_err() {
        return;
    }
    let last = last_event_id(sql).ok().flatten().unwrap_or(0);
    let _ = send_snapshot(sql, ws, &filters, false, last);
}

/// Revoking a token closes its sockets at once.
pub fn close_for_token(state: &State, token_id: &str) {
    for ws in state.get_websockets() {
        if let Ok(Some(a)) = ws.deserialize_attachment::<SocketAttachment>() {
            if a.token_id == token_id {
                let _ = ws.close(Some(CLOSE_TOKEN_REVOKED), Some("token revoked"));
            }
        }
    }
}

/// The tenant uninstalled: every socket closes.
pub fn close_all(state: &State) {
    for ws in state.get_websockets() {
        let _ = ws.close(Some(CLOSE_UNAUTHORIZED), Some("tenant uninstalled"));
    }
}

fn internal(e: worker::Error) -> AppError {
    AppError::Internal(e.to_string())
}
