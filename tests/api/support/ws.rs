//! A blocking WebSocket client for the gate stream.

use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::Value;
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

use super::client;
use super::worker::TestWorker;

pub type Socket = WebSocket<MaybeTlsStream<TcpStream>>;

/// A fresh stream ticket for `token`.
pub fn ticket(worker: &TestWorker, token: &str) -> String {
    let reply = client::send(
        "POST",
        &worker.url("/api/v1/stream-tickets"),
        &[("Authorization", &format!("Bearer {token}"))],
        None,
    );
    assert_eq!(reply.status, 201, "ticket: {}", reply.body);
    reply.json()["ticket"].as_str().unwrap().to_owned()
}

/// Opens `/api/v1/stream?ticket=…&{query}`; `Err(status)` when the upgrade is refused.
pub fn connect_with_ticket(worker: &TestWorker, ticket: &str, query: &str) -> Result<Socket, u16> {
    connect_at(&worker.base_url, ticket, query)
}

/// Like [`connect_with_ticket`], at another origin of the same worker (its workerd port).
pub fn connect_at(base_url: &str, ticket: &str, query: &str) -> Result<Socket, u16> {
    let url = format!(
        "{}/api/v1/stream?ticket={ticket}{}{query}",
        base_url.replace("http://", "ws://"),
        if query.is_empty() { "" } else { "&" }
    );
    match tungstenite::connect(url) {
        Ok((socket, _)) => Ok(socket),
        Err(tungstenite::Error::Http(response)) => Err(response.status().as_u16()),
        Err(e) => panic!("stream connection failed: {e}"),
    }
}

/// Opens a stream for `token` on the worker at `base_url`, or says why it could not (the worker
/// down, the ticket or the upgrade refused): for clients that reconnect through an outage.
pub fn try_connect(base_url: &str, token: &str, query: &str) -> Result<Socket, String> {
    let reply = client::try_send(
        "POST",
        &format!("{base_url}/api/v1/stream-tickets"),
        &[("Authorization", &format!("Bearer {token}"))],
        None,
    )?;
    if reply.status != 201 {
        return Err(format!("ticket: {} {}", reply.status, reply.body));
    }
    let ticket = reply.json()["ticket"].as_str().unwrap().to_owned();
    let url = format!(
        "{}/api/v1/stream?ticket={ticket}{}{query}",
        base_url.replace("http://", "ws://"),
        if query.is_empty() { "" } else { "&" }
    );
    tungstenite::connect(url)
        .map(|(socket, _)| socket)
        .map_err(|e| e.to_string())
}

pub fn connect(worker: &TestWorker, token: &str, query: &str) -> Socket {
    connect_with_ticket(worker, &ticket(worker, token), query).expect("stream upgrade")
}

/// What the next frame was.
#[derive(Debug)]
pub enum Frame {
    Json(Value),
    Closed(Option<u16>),
    Nothing,
    /// The connection failed without a close frame (reset, as when the worker is killed).
    Broken(String),
}

/// The next text frame as JSON, a close, or nothing within `timeout`.
pub fn next(socket: &mut Socket, timeout: Duration) -> Frame {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Frame::Nothing;
        }
        if let MaybeTlsStream::Plain(stream) = socket.get_mut() {
            stream.set_read_timeout(Some(left)).unwrap();
        }
        match socket.read() {
            Ok(Message::Text(text)) => return Frame::Json(serde_json::from_str(&text).unwrap()),
            Ok(Message::Close(frame)) => return Frame::Closed(frame.map(|f| f.code.into())),
            Ok(_) => continue,
            Err(tungstenite::Error::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Frame::Nothing
            }
            Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {
                return Frame::Closed(None)
            }
            Err(e) => return Frame::Broken(e.to_string()),
        }
    }
}

/// The next frame, which must be JSON.
pub fn next_json(socket: &mut Socket) -> Value {
    match next(socket, Duration::from_secs(10)) {
        Frame::Json(v) => v,
        other => panic!("expected a JSON frame, got {other:?}"),
    }
}

/// The events a live frame carries: one for `event`, several for a coalesced `events`.
pub fn frame_events(frame: &Value) -> Vec<Value> {
    match frame["type"].as_str() {
        Some("event") => vec![frame["event"].clone()],
        Some("events") => frame["events"].as_array().unwrap().clone(),
        _ => panic!("expected an event frame, got {frame}"),
    }
}

pub fn send(socket: &mut Socket, text: &str) {
    socket.send(Message::Text(text.into())).unwrap();
}
