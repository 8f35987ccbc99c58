//! Coalesced fan-out of appended events to the tenant's stream sockets.
//!
//! The first event after a quiet spell goes out at once; events appended within the coalescing
//! window after a flush wait for one timer and reach each socket as a single frame. A burst of
//! callbacks therefore costs a dashboard at most one frame per window (more only when the
//! window's events pass [`crate::stream::MAX_FRAME_BYTES`]), and past [`MAX_BATCH`] pending
//! events a socket gets a fresh, bounded snapshot instead of the backlog.
//!
//! Pending events are not held in memory: they are the rows of `events` after the last id
//! flushed, so a flush reads them once and each socket's attachment is read once per flush, not
//! once per event.

use std::cell::Cell;
use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

use worker::wasm_bindgen::{JsCast, JsValue};
use worker::wasm_bindgen_futures::spawn_local;
use worker::worker_sys::DurableObjectState;
use worker::{Date, Delay, SqlStorageValue, State};

use crate::gate_stream;
use crate::stream::{event_frames, SocketAttachment, MAX_BATCH};
use crate::tenant_gates_do::{last_event_id, query, StoredEvent};

pub struct Fanout {
    window_ms: u32,
    inner: Rc<Pending>,
}

#[derive(Default)]
struct Pending {
    /// Every event up to this id has been sent; `None` until the first append of this instance.
    flushed: Cell<Option<u64>>,
    last_flush_ms: Cell<f64>,
    timer_armed: Cell<bool>,
}

impl Fanout {
    pub fn new(window_ms: u32) -> Self {
        Fanout {
            window_ms,
            inner: Rc::default(),
        }
    }

    /// Event `event_id` was appended (committed in this same turn).
    pub fn appended(&self, state: &State, event_id: u64) {
        let pending = &self.inner;
        if pending.flushed.get().is_none() {
            // A fresh instance: earlier events went out before it started (or their sockets
            // resume with `since`).
            pending.flushed.set(Some(event_id.saturating_sub(1)));
        }
        if pending.timer_armed.get() {
            return;
        }
        let quiet_for = Date::now().as_millis() as f64 - pending.last_flush_ms.get();
        let window = f64::from(self.window_ms);
        if quiet_for >= window {
            flush(state, pending);
            return;
        }
        pending.timer_armed.set(true);
        let wait = Duration::from_millis((window - quiet_for).ceil() as u64);
        // `State` is not `Clone`; the timer needs its own handle on the same JavaScript object.
        let raw: &JsValue = state.as_raw().as_ref();
        let state = State::from(raw.clone().unchecked_into::<DurableObjectState>());
        let pending = Rc::clone(pending);
        spawn_local(async move {
            Delay::from(wait).await;
            pending.timer_armed.set(false);
            flush(&state, &pending);
        });
    }

    /// Sends whatever is pending now: before a socket gets a snapshot, so the snapshot and the
    /// next frame never carry the same event.
    pub fn flush_now(&self, state: &State) {
        if self.inner.flushed.get().is_some() {
            flush(state, &self.inner);
        }
    }
}

fn flush(state: &State, pending: &Pending) {
    let Some(after) = pending.flushed.get() else {
        return;
    };
    pending.last_flush_ms.set(Date::now().as_millis() as f64);
    let sql = state.storage().sql();
    let Ok(events) = query::<StoredEvent>(
        &sql,
        "SELECT * FROM events WHERE id > ? ORDER BY id LIMIT ?",
        vec![
            SqlStorageValue::from(after as f64),
            SqlStorageValue::from((MAX_BATCH + 1) as f64),
        ],
    ) else {
        return;
    };
    let Some(last) = events.last().map(|e| e.id as u64) else {
        return;
    };
    let overflow = events.len() > MAX_BATCH;
    let last = if overflow {
        last_event_id(&sql).ok().flatten().unwrap_or(last)
    } else {
        last
    };
    pending.flushed.set(Some(last));
    // Reconciler notes change no gate: they stay in the history, not on the stream.
    let events: Vec<StoredEvent> = events.into_iter().filter(|e| e.note.is_none()).collect();
    // A backlog goes out as a snapshot: its events are never serialised.
    let jsons = if overflow {
        Vec::new()
    } else {
        gate_stream::event_jsons(events.iter())
    };
    // Sockets with the same filters usually match the same events: build each frame once.
    let mut frames: HashMap<Vec<usize>, Vec<String>> = HashMap::new();
    let mut snapshots: HashMap<String, String> = HashMap::new();

    for ws in state.get_websockets() {
        let Ok(Some(attachment)) = ws.deserialize_attachment::<SocketAttachment>() else {
            continue;
        };
        let filters = &attachment.filters;
        if overflow {
            let key = serde_json::to_string(filters).unwrap_or_default();
            let frame = match snapshots.entry(key) {
                Entry::Occupied(frame) => frame.into_mut(),
                Entry::Vacant(slot) => match gate_stream::snapshot_frame(&sql, filters, true, last)
                {
                    Ok(frame) => slot.insert(frame),
                    Err(_) => continue,
                },
            };
            let _ = ws.send_with_str(frame.as_str());
            continue;
        }
        let matching: Vec<usize> = (0..events.len())
            .filter(|&i| {
                let e = &events[i];
                filters.matches(&e.pipeline_id, &e.environment_id, &e.status)
            })
            .collect();
        if matching.is_empty() {
            continue;
        }
        let batch =
            frames
                .entry(matching)
                .or_insert_with_key(|matching| match matching.as_slice() {
                    [one] => vec![format!(r#"{{"type":"event","event":{}}}"#, jsons[*one].1)],
                    many => {
                        let chosen: Vec<(u64, String)> =
                            many.iter().map(|&i| jsons[i].clone()).collect();
                        event_frames(&chosen, last)
                    }
                });
        for frame in batch.iter() {
            let _ = ws.send_with_str(frame.as_str());
        }
    }
}
