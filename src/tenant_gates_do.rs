//! `TenantGates`: one SQLite-backed Durable Object per tenant (`clientKey`), the authority on the
//! tenant's gates, their event log, delivery de-duplication and API tokens.
//!
//! Atomicity: a command reads and writes SQLite synchronously, with no `.await` between its
//! first read and last write, so the object's input gate serialises commands and their writes
//! commit together; the output gate holds the response until those writes are durable, so the
//! worker answers Jira 204 only for updates that are stored. Event ids come from an
//! AUTOINCREMENT key: monotonic and never reused, even after rows are deleted.
//!
//! The schema is created in the constructor (version 1) and migrated from `meta.schema_version`
//! (version 2 adds the pipeline-reported `deployment_state`).
//! Sequence numbers are stored as text: SQLite integers cross into JavaScript as doubles, which
//! cannot hold every int64.

use std::cell::RefCell;
use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use futures_channel::oneshot;
use futures_util::future::select;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use worker::{
    durable_object, Date, Delay, DurableObject, Env, Method, Request, Response, Result, SqlStorage,
    SqlStorageValue, State, WebSocket, WebSocketIncomingMessage,
};

use crate::api_tokens::{Scope, TokenHash};
use crate::config::Config;
use crate::connect::credentials::ClientKey;
use crate::error::AppError;
use crate::gate_fanout::Fanout;
use crate::gate_store::CLIENT_KEY_HEADER;
use crate::gate_stream;
use crate::gating::callback::{parse_callback, GateId};
use crate::gating::callback::{GateKey, GateUpdate, GatingStatus};
use crate::gating::commands::{encode_cursor, GateCommand, GateFilter, UpdateSource};
use crate::gating::ordering::{decide, Current, Decision};
use crate::gating::reconcile::{gating_status_path, Schedule};
use crate::http;
use crate::jira_client::JiraClient;
use crate::stream::{JIRA_USER_TICKET, PING, PONG, TICKET_TTL_MS};
use crate::tenant::TenantRecord;
use crate::tenant_store::TenantStore;

/// The binding name in `wrangler.toml`.
pub const BINDING: &str = "TENANT_GATES";

const SCHEMA_VERSION: i64 = 2;
/// How long a delivery id is remembered: Jira retries for well under a day.
const DELIVERY_RETENTION_MS: i64 = 48 * 3600 * 1000;

const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS gates (
        pipeline_id TEXT NOT NULL,
        environment_id TEXT NOT NULL,
        sequence TEXT NOT NULL,
        status TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        details TEXT NOT NULL,
        source TEXT NOT NULL,
        first_seen TEXT NOT NULL,
        last_seen TEXT NOT NULL,
        stale_deliveries INTEGER NOT NULL DEFAULT 0,
        last_event_id INTEGER NOT NULL,
        PRIMARY KEY (pipeline_id, environment_id, sequence))",
    "CREATE INDEX IF NOT EXISTS gates_by_event ON gates (last_event_id DESC)",
    "CREATE TABLE IF NOT EXISTS events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        pipeline_id TEXT NOT NULL,
        environment_id TEXT NOT NULL,
        sequence TEXT NOT NULL,
        status TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        details TEXT NOT NULL,
        source TEXT NOT NULL,
        recorded_at TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS events_by_gate ON events (pipeline_id, environment_id, sequence, id)",
    "CREATE TABLE IF NOT EXISTS deliveries (id TEXT PRIMARY KEY, received_ms INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS tickets (
        hash TEXT PRIMARY KEY, token_id TEXT NOT NULL, expires_ms INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS tokens (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        scopes TEXT NOT NULL,
        hash TEXT NOT NULL UNIQUE,
        created_at TEXT NOT NULL,
        revoked_at TEXT)",
];

#[durable_object]
pub struct TenantGates {
    state: State,
    env: Env,
    /// From `[vars]`, read once per object instance.
    schedule: Schedule,
    app_key: String,
    /// Requests waiting for a gate to change, by gate. In memory only: a waiter lives no longer
    /// than its request, and the object stays in memory while a request is open.
    waiters: RefCell<HashMap<String, Vec<oneshot::Sender<()>>>>,
    /// Sends appended events to the stream sockets, coalescing bursts.
    fanout: Fanout,
}

impl DurableObject for TenantGates {
    fn new(state: State, env: Env) -> Self {
        let sql = state.storage().sql();
        for statement in SCHEMA {
            if let Err(e) = sql.exec(statement, None) {
                worker::console_error!("TenantGates schema: {e}");
            }
        }
        if let Err(e) = migrate(&sql) {
            worker::console_error!("TenantGates migration: {e:?}");
        }
        // `ping` is answered by the runtime, so an idle dashboard never wakes the object.
        match worker::worker_sys::WebSocketRequestResponsePair::new(PING, PONG) {
            Ok(pair) => state.set_websocket_auto_response(&pair),
            Err(e) => worker::console_error!("TenantGates auto-response: {e:?}"),
        }
        let config = Config::from_lookup(|name| env.var(name).ok().map(|v| v.to_string()));
        let (schedule, app_key, coalesce_ms) = match config {
            Ok(c) => (
                c.reconcile,
                c.app_key.as_str().to_owned(),
                c.stream_coalesce_ms,
            ),
            // The worker refuses every request with an invalid config; nothing reaches us then.
            Err(e) => {
                worker::console_error!("TenantGates config: {e}");
                (Schedule::default(), String::new(), 0)
            }
        };
        TenantGates {
            state,
            env,
            schedule,
            app_key,
            waiters: RefCell::new(HashMap::new()),
            fanout: Fanout::new(coalesce_ms),
        }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let upgrade = req.headers().get("Upgrade")?;
        if upgrade.is_some_and(|u| u.eq_ignore_ascii_case("websocket")) {
            let sql = self.state.storage().sql();
            return gate_stream::open(&self.state, &self.fanout, &sql, &req)
                .or_else(|e| http::error(&e));
        }
        // Parsed by serde_json, not the runtime's JSON.parse: int64 sequence numbers must not
        // pass through a JavaScript double.
        let text = req.text().await?;
        let command: GateCommand = match serde_json::from_str(&text) {
            Ok(c) => c,
            Err(e) => return http::error(&AppError::Internal(format!("bad gate command: {e}"))),
        };
        let sql = self.state.storage().sql();
        // The object's name is its tenant's clientKey; the reconciler needs it to find the tenant.
        if let Ok(Some(client_key)) = req.headers().get(CLIENT_KEY_HEADER) {
            let _ = sql.exec(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('client_key', ?)",
                vec![client_key.into()],
            );
        }
        if let GateCommand::GetGate {
            bearer,
            key,
            wait_seconds,
        } = &command
        {
            if *wait_seconds > 0 {
                if let Err(e) = self
                    .wait_while_awaiting(&sql, bearer, key, *wait_seconds)
                    .await
                {
                    return http::error(&e);
                }
            }
        }
        let now_ms = Date::now().as_millis() as i64;
        let revoking = match &command {
            GateCommand::RevokeToken { id } => Some(id.clone()),
            _ => None,
        };
        let uninstalling = matches!(command, GateCommand::Uninstall);
        let outcome = run(&sql, command, now_ms, &self.schedule);
        if let Ok((response, effects)) = &outcome {
            if let Some(key) = &effects.changed {
                self.wake(key);
            }
            if let Some(event_id) = effects.appended {
                self.fanout.appended(&self.state, event_id);
            }
            if response.status_code() == 204 {
                if let Some(token_id) = &revoking {
                    gate_stream::close_for_token(&self.state, token_id);
                }
                if uninstalling {
                    gate_stream::close_all(&self.state);
                }
            }
            if effects.rearm {
                self.arm_alarm(&sql).await;
            }
        }
        match outcome {
            Ok((response, _)) => Ok(response),
            Err(e) => {
                if let AppError::Internal(detail) = &e {
                    worker::console_error!("TenantGates: {detail}");
                }
                http::error(&e)
            }
        }
    }

    async fn websocket_message(
        &self,
        ws: WebSocket,
        message: WebSocketIncomingMessage,
    ) -> Result<()> {
        let sql = self.state.storage().sql();
        gate_stream::on_message(&self.state, &self.fanout, &sql, &ws, message);
        Ok(())
    }

    async fn websocket_close(
        &self,
        ws: WebSocket,
        code: usize,
        _reason: String,
        _was_clean: bool,
    ) -> Result<()> {
        // Complete the closing handshake the client started (1005 and 1006 cannot be sent).
        let code = match code {
            1005 | 1006 => 1000,
            c if (1000..5000).contains(&c) => c as u16,
            _ => 1000,
        };
        let _ = ws.close(Some(code), Some("closing"));
        Ok(())
    }

    async fn websocket_error(&self, ws: WebSocket, _error: worker::Error) -> Result<()> {
        let _ = ws.close(Some(1011), Some("error"));
        Ok(())
    }

    /// Forgets delivery ids past the retention window, asks Jira about gates due for a check,
    /// and re-arms for whichever comes next.
    async fn alarm(&self) -> Result<Response> {
        let now_ms = Date::now().as_millis() as i64;
        let sql = self.state.storage().sql();
        sql.exec(
            "DELETE FROM deliveries WHERE received_ms < ?",
            vec![SqlStorageValue::from(
                (now_ms - DELIVERY_RETENTION_MS) as f64,
            )],
        )?;
        if let Err(e) = self.reconcile_due(&sql, now_ms).await {
            worker::console_error!("TenantGates reconcile: {e:?}");
        }
        self.arm_alarm(&sql).await;
        Response::empty()
    }
}

impl TenantGates {
    /// Holds a gate request while the gate is `awaiting`, until an update to it is applied or
    /// `seconds` pass. The token is checked first, so an invalid one cannot hold a connection.
    async fn wait_while_awaiting(
        &self,
        sql: &SqlStorage,
        bearer: &TokenHash,
        key: &GateKey,
        seconds: u32,
    ) -> std::result::Result<(), AppError> {
        authorize(sql, bearer, Scope::GatesRead)?;
        if gate_status(sql, key)? != Some(GatingStatus::Awaiting) {
            return Ok(());
        }
        let (sender, receiver) = oneshot::channel();
        self.waiters
            .borrow_mut()
            .entry(waiter_key(key))
            .or_default()
            .push(sender);
        let timeout = Delay::from(Duration::from_secs(u64::from(seconds)));
        let _ = select(receiver, timeout).await;
        Ok(())
    }

    fn wake(&self, key: &GateKey) {
        let waiting = self.waiters.borrow_mut().remove(&waiter_key(key));
        for sender in waiting.into_iter().flatten() {
            let _ = sender.send(());
        }
    }

    /// Sets the alarm for the earliest of: the oldest delivery id expiring, the next gate check.
    async fn arm_alarm(&self, sql: &SqlStorage) {
        #[derive(Deserialize)]
        struct Next {
            next: Option<f64>,
        }
        let next = query::<Next>(
            sql,
            &format!(
                "SELECT MIN(t) AS next FROM (
                   SELECT MIN(received_ms) + {DELIVERY_RETENTION_MS} AS t FROM deliveries
                   UNION ALL SELECT MIN(next_check_ms) FROM gates)"
            ),
            vec![],
        )
        .ok()
        .and_then(|rows| rows.first().and_then(|r| r.next));
        // An i64 would be taken as an offset from now; the alarm time is absolute.
        let at = next.and_then(|ms| DateTime::<Utc>::from_timestamp_millis(ms as i64));
        if let Some(at) = at {
            if let Err(e) = self.state.storage().set_alarm(at).await {
                worker::console_error!("TenantGates alarm: {e}");
            }
        }
    }

    /// Asks Jira for the gating status of every gate due for a check (at most 25 per alarm) and
    /// applies what it says exactly as a callback would (source `reconciled`). A 404 or an error
    /// leaves the gate as it is, with a note in its history. Waiters are woken by applied
    /// updates.
    async fn reconcile_due(
        &self,
        sql: &SqlStorage,
        now_ms: i64,
    ) -> std::result::Result<(), AppError> {
        #[derive(Deserialize)]
        struct Due {
            pipeline_id: String,
            environment_id: String,
            sequence: String,
            first_seen: String,
            checks: f64,
        }
        let due: Vec<Due> = query(
            sql,
            "SELECT pipeline_id, environment_id, sequence, first_seen, checks FROM gates
             WHERE next_check_ms IS NOT NULL AND next_check_ms <= ? ORDER BY next_check_ms LIMIT 25",
            vec![SqlStorageValue::from(now_ms as f64)],
        )?;
        if due.is_empty() {
            return Ok(());
        }
        let tenant = self.tenant(sql).await;
        let now = DateTime::<Utc>::from_timestamp_millis(now_ms).unwrap_or_default();
        for gate in due {
            let key = GateKey {
                pipeline: GateId::parse(&gate.pipeline_id).map_err(|_| corrupt("pipeline_id"))?,
                environment: GateId::parse(&gate.environment_id)
                    .map_err(|_| corrupt("environment_id"))?,
                sequence: gate.sequence.parse().map_err(|_| corrupt("sequence"))?,
            };
            let note = match &tenant {
                None => {
                    Some("not checked: the tenant has no shared secret (uninstalled?)".to_owned())
                }
                Some(tenant) => {
                    let client = JiraClient::new(&self.app_key, tenant);
                    match client
                        .send(Method::Get, &gating_status_path(&key), None, now)
                        .await
                    {
                        Ok(answer) if answer.status == 200 => match parse_callback(&answer.body) {
                            Ok(update) if update.key == key => {
                                let (_, effects) = apply_update(
                                    sql,
                                    &update,
                                    None,
                                    UpdateSource::Reconciled,
                                    &rfc3339(now_ms),
                                    now_ms,
                                    &self.schedule,
                                )?;
                                if effects.changed.is_some() {
                                    self.wake(&key);
                                }
                                if let Some(event_id) = effects.appended {
                                    self.fanout.appended(&self.state, event_id);
                                }
                                None
                            }
                            Ok(_) => {
                                Some("Jira answered with another deployment's status".to_owned())
                            }
                            Err(e) => Some(format!(
                                "Jira's gating status was unreadable ({}: {})",
                                e.field, e.reason
                            )),
                        },
                        Ok(answer) if answer.status == 404 => {
                            Some("Jira has no gating status for this deployment (404)".to_owned())
                        }
                        Ok(answer) => Some(format!("Jira answered {}", answer.status)),
                        Err(_) => Some("Jira could not be reached".to_owned()),
                    }
                }
            };
            let still_awaiting = gate_status(sql, &key)? == Some(GatingStatus::Awaiting);
            let checks = gate.checks as u32 + 1;
            let first_seen_ms = DateTime::parse_from_rfc3339(&gate.first_seen)
                .map(|t| t.timestamp_millis())
                .unwrap_or(now_ms);
            let next = still_awaiting
                .then(|| self.schedule.next_check_ms(checks, first_seen_ms, now_ms))
                .flatten();
            let note = match (note, still_awaiting && next.is_none()) {
                (Some(n), true) => Some(format!("{n}; reconciler stopped: horizon reached")),
                (None, true) => Some("reconciler stopped: horizon reached".to_owned()),
                (n, false) => n,
            };
            if let Some(note) = note {
                add_note(sql, &key, &note, &rfc3339(now_ms))?;
            }
            let mut params = vec![
                SqlStorageValue::from(f64::from(checks)),
                next.map_or(SqlStorageValue::Null, |n| SqlStorageValue::from(n as f64)),
            ];
            params.extend(key_params(&key));
            exec(
                sql,
                "UPDATE gates SET checks = ?, next_check_ms = ?
                 WHERE pipeline_id = ? AND environment_id = ? AND sequence = ?",
                params,
            )?;
        }
        Ok(())
    }

    /// The tenant's record, found by the clientKey the worker stamps on its commands.
    async fn tenant(&self, sql: &SqlStorage) -> Option<TenantRecord> {
        #[derive(Deserialize)]
        struct Meta {
            value: String,
        }
        let client_key = query::<Meta>(
            sql,
            "SELECT value FROM meta WHERE key = 'client_key'",
            vec![],
        )
        .ok()?
        .into_iter()
        .next()?;
        let client_key = ClientKey::parse(&client_key.value).ok()?;
        let store = TenantStore::open(&self.env).ok()?;
        store
            .get(&client_key)
            .await
            .ok()
            .flatten()
            .filter(|t| t.shared_secret.is_some())
    }
}

/// Brings a version-1 schema (or a fresh one) up to [`SCHEMA_VERSION`].
fn migrate(sql: &SqlStorage) -> std::result::Result<(), AppError> {
    exec(
        sql,
        "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', '1')",
        vec![],
    )?;
    #[derive(Deserialize)]
    struct Version {
        value: String,
    }
    let version: i64 = query::<Version>(
        sql,
        "SELECT value FROM meta WHERE key = 'schema_version'",
        vec![],
    )?
    .first()
    .and_then(|v| v.value.parse().ok())
    .unwrap_or(1);
    if version < 2 {
        exec(
            sql,
            "ALTER TABLE gates ADD COLUMN deployment_state TEXT",
            vec![],
        )?;
        exec(
            sql,
            "ALTER TABLE events ADD COLUMN deployment_state TEXT",
            vec![],
        )?;
        exec(
            sql,
            "ALTER TABLE gates ADD COLUMN next_check_ms INTEGER",
            vec![],
        )?;
        exec(
            sql,
            "ALTER TABLE gates ADD COLUMN checks INTEGER NOT NULL DEFAULT 0",
            vec![],
        )?;
        exec(sql, "ALTER TABLE events ADD COLUMN note TEXT", vec![])?;
    }
    exec(
        sql,
        "UPDATE meta SET value = ? WHERE key = 'schema_version'",
        vec![SCHEMA_VERSION.to_string().into()],
    )
}

/// What the async shell must follow up on after a command.
#[derive(Debug, Default)]
struct Effects {
    /// A delivery id or a gate check was scheduled: re-arm the alarm.
    rearm: bool,
    /// An update gave this gate a new status: wake its waiters.
    changed: Option<GateKey>,
    /// An event was appended: stream it to matching sockets.
    appended: Option<u64>,
}

type Outcome = std::result::Result<(Response, Effects), AppError>;

/// An `awaiting` gate gets its first reconciler check (unless one is planned); a decided gate
/// needs none.
fn plan_check(
    sql: &SqlStorage,
    key: &GateKey,
    now_ms: i64,
    schedule: &Schedule,
) -> std::result::Result<(), AppError> {
    let first = schedule
        .next_check_ms(0, now_ms, now_ms)
        .map_or(SqlStorageValue::Null, |t| SqlStorageValue::from(t as f64));
    let mut params = vec![first];
    params.extend(key_params(key));
    exec(
        sql,
        "UPDATE gates SET next_check_ms = CASE WHEN status = 'awaiting'
           THEN COALESCE(next_check_ms, ?) ELSE NULL END
         WHERE pipeline_id = ? AND environment_id = ? AND sequence = ?",
        params,
    )
}

/// A history entry that changes nothing: what the reconciler learned (or failed to).
fn add_note(
    sql: &SqlStorage,
    key: &GateKey,
    note: &str,
    now: &str,
) -> std::result::Result<(), AppError> {
    let mut params = key_params(key);
    params.extend([
        SqlStorageValue::from(note),
        UpdateSource::Reconciled.as_str().into(),
        now.into(),
    ]);
    params.extend(key_params(key));
    exec(
        sql,
        "INSERT INTO events (pipeline_id, environment_id, sequence, status, updated_at, details, note, source, recorded_at)
         SELECT ?, ?, ?, status, updated_at, '[]', ?, ?, ? FROM gates
         WHERE pipeline_id = ? AND environment_id = ? AND sequence = ?",
        params,
    )
}

fn waiter_key(key: &GateKey) -> String {
    format!(
        "{}\u{0}{}\u{0}{}",
        key.pipeline.as_str(),
        key.environment.as_str(),
        key.sequence
    )
}

fn gate_status(
    sql: &SqlStorage,
    key: &GateKey,
) -> std::result::Result<Option<GatingStatus>, AppError> {
    #[derive(Deserialize)]
    struct Row {
        status: String,
    }
    let rows: Vec<Row> = query(
        sql,
        "SELECT status FROM gates WHERE pipeline_id = ? AND environment_id = ? AND sequence = ?",
        key_params(key),
    )?;
    Ok(rows.first().and_then(|r| GatingStatus::parse(&r.status)))
}

/// Runs one command synchronously against SQLite.
fn run(sql: &SqlStorage, command: GateCommand, now_ms: i64, schedule: &Schedule) -> Outcome {
    let token_id = match command.bearer_scope() {
        Some((bearer, scope)) => Some(authorize(sql, bearer, scope)?),
        None => None,
    };
    let now = rfc3339(now_ms);
    match command {
        GateCommand::ApplyUpdate {
            update,
            delivery_id,
            source,
        } => apply_update(
            sql,
            &update,
            delivery_id.as_deref(),
            source,
            &now,
            now_ms,
            schedule,
        ),
        GateCommand::GetGate { key, .. } => get_gate(sql, &key).map(plain),
        GateCommand::ListGates { filter, .. } => list_gates(sql, &filter).map(plain),
        GateCommand::Events { since, limit, .. } => events(sql, since, limit).map(plain),
        GateCommand::CreateToken {
            id,
            name,
            scopes,
            hash,
        } => create_token(sql, &id, &name, &scopes, &hash, &now).map(plain),
        GateCommand::ListTokens => list_tokens(sql).map(plain),
        GateCommand::RevokeToken { id } => revoke_token(sql, &id, &now).map(plain),
        GateCommand::Authorize { .. } => Ok(plain(empty(204)?)),
        GateCommand::CreateTicket { hash, .. } => {
            let token_id =
                token_id.ok_or_else(|| AppError::Internal("ticket without token".into()))?;
            store_ticket(sql, &token_id, hash, now_ms).map(plain)
        }
        GateCommand::CreateJiraTicket { hash } => {
            store_ticket(sql, JIRA_USER_TICKET, hash, now_ms).map(plain)
        }
        GateCommand::RecordSubmission { key, gated, state } => {
            let response = record_submission(sql, &key, gated, &state, &now)?;
            plan_check(sql, &key, now_ms, schedule)?;
            Ok((
                response,
                Effects {
                    rearm: true,
                    changed: None,
                    appended: last_event_id(sql)?,
                },
            ))
        }
        GateCommand::Uninstall => {
            for table in ["tokens", "tickets", "gates", "events", "deliveries"] {
                exec(sql, &format!("DELETE FROM {table}"), vec![])?;
            }
            Ok(plain(empty(204)?))
        }
    }
}

fn plain(response: Response) -> (Response, Effects) {
    (response, Effects::default())
}

/// The id of the active token with this hash, if it has the scope.
fn authorize(
    sql: &SqlStorage,
    bearer: &TokenHash,
    needed: Scope,
) -> std::result::Result<String, AppError> {
    #[derive(Deserialize)]
    struct Row {
        id: String,
        scopes: String,
    }
    let rows: Vec<Row> = query(
        sql,
        "SELECT id, scopes FROM tokens WHERE hash = ? AND revoked_at IS NULL",
        vec![bearer.0.clone().into()],
    )?;
    let row = rows.into_iter().next().ok_or(AppError::InvalidBearer)?;
    let scopes: Vec<Scope> = serde_json::from_str(&row.scopes).unwrap_or_default();
    if scopes.contains(&needed) {
        Ok(row.id)
    } else {
        Err(AppError::InsufficientScope {
            needed: needed.as_str(),
        })
    }
}

#[derive(Deserialize)]
pub(crate) struct StoredGate {
    pub(crate) pipeline_id: String,
    pub(crate) environment_id: String,
    pub(crate) sequence: String,
    pub(crate) status: String,
    pub(crate) updated_at: String,
    pub(crate) details: String,
    pub(crate) source: String,
    pub(crate) first_seen: String,
    pub(crate) last_seen: String,
    pub(crate) stale_deliveries: f64,
    pub(crate) last_event_id: f64,
    pub(crate) deployment_state: Option<String>,
    pub(crate) next_check_ms: Option<f64>,
    pub(crate) checks: Option<f64>,
}

fn load_gate(sql: &SqlStorage, key: &GateKey) -> std::result::Result<Option<StoredGate>, AppError> {
    Ok(query(
        sql,
        "SELECT * FROM gates WHERE pipeline_id = ? AND environment_id = ? AND sequence = ?",
        key_params(key),
    )?
    .into_iter()
    .next())
}

fn key_params(key: &GateKey) -> Vec<SqlStorageValue> {
    vec![
        key.pipeline.as_str().into(),
        key.environment.as_str().into(),
        key.sequence.to_string().into(),
    ]
}

fn apply_update(
    sql: &SqlStorage,
    update: &GateUpdate,
    delivery_id: Option<&str>,
    source: UpdateSource,
    now: &str,
    now_ms: i64,
    schedule: &Schedule,
) -> Outcome {
    let mut effects = Effects::default();
    if let Some(id) = delivery_id {
        let seen: Vec<Value> = query(
            sql,
            "SELECT id FROM deliveries WHERE id = ?",
            vec![id.into()],
        )?;
        if !seen.is_empty() {
            return Ok(plain(outcome_response("duplicate", None)?));
        }
        exec(
            sql,
            "INSERT INTO deliveries (id, received_ms) VALUES (?, ?)",
            vec![id.into(), SqlStorageValue::from(now_ms as f64)],
        )?;
        effects.rearm = true;
    }

    let stored = load_gate(sql, &update.key)?;
    let stored_details: Vec<Map<String, Value>> = stored
        .as_ref()
        .and_then(|g| serde_json::from_str(&g.details).ok())
        .unwrap_or_default();
    // A gate recorded at submission is a placeholder: anything Jira says supersedes it.
    let current = match stored
        .as_ref()
        .filter(|g| g.source != UpdateSource::Submitted.as_str())
    {
        Some(g) => Some(Current {
            status: GatingStatus::parse(&g.status).ok_or_else(|| corrupt("status"))?,
            updated_at: DateTime::parse_from_rfc3339(&g.updated_at)
                .map_err(|_| corrupt("updated_at"))?,
            details: &stored_details,
        }),
        None => None,
    };
    let incoming = Current {
        status: update.status,
        updated_at: update.updated_at,
        details: &update.details,
    };
    let decision = decide(current, incoming);
    let response = match decision {
        Decision::Apply => {
            let details = serde_json::to_string(&update.details)
                .map_err(|e| AppError::Internal(e.to_string()))?;
            let updated_at = update.updated_timestamp.clone();
            #[derive(Deserialize)]
            struct Inserted {
                id: f64,
            }
            let mut params = key_params(&update.key);
            params.extend([
                update.status.as_str().into(),
                updated_at.clone().into(),
                details.clone().into(),
                source.as_str().into(),
                now.into(),
            ]);
            let event_id = query::<Inserted>(
                sql,
                "INSERT INTO events (pipeline_id, environment_id, sequence, status, updated_at, details, source, recorded_at)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                params,
            )?
            .first()
            .map(|r| r.id)
            .ok_or_else(|| AppError::Internal("event insert returned no id".into()))?;
            let mut params = key_params(&update.key);
            params.extend([
                update.status.as_str().into(),
                updated_at.into(),
                details.into(),
                source.as_str().into(),
                now.into(),
                now.into(),
                SqlStorageValue::from(event_id),
            ]);
            exec(
                sql,
                "INSERT INTO gates (pipeline_id, environment_id, sequence, status, updated_at, details, source, first_seen, last_seen, last_event_id)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                 ON CONFLICT (pipeline_id, environment_id, sequence) DO UPDATE SET
                   status = excluded.status, updated_at = excluded.updated_at, details = excluded.details,
                   source = excluded.source, last_seen = excluded.last_seen, last_event_id = excluded.last_event_id",
                params,
            )?;
            plan_check(sql, &update.key, now_ms, schedule)?;
            effects.rearm = true;
            effects.appended = Some(event_id as u64);
            // Waiters wait for a new status, not for any new record of the same one.
            let previous = stored.as_ref().and_then(|g| GatingStatus::parse(&g.status));
            if previous != Some(update.status) {
                effects.changed = Some(update.key.clone());
            }
            outcome_response("applied", Some(event_id as u64))?
        }
        Decision::Stale | Decision::Duplicate => {
            let column = if decision == Decision::Stale {
                ", stale_deliveries = stale_deliveries + 1"
            } else {
                ""
            };
            let mut params = vec![SqlStorageValue::from(now)];
            params.extend(key_params(&update.key));
            exec(
                sql,
                &format!(
                    "UPDATE gates SET last_seen = ?{column}
                     WHERE pipeline_id = ? AND environment_id = ? AND sequence = ?"
                ),
                params,
            )?;
            outcome_response(
                if decision == Decision::Stale {
                    "stale"
                } else {
                    "duplicate"
                },
                None,
            )?
        }
    };
    Ok((response, effects))
}

fn outcome_response(
    outcome: &str,
    event_id: Option<u64>,
) -> std::result::Result<Response, AppError> {
    http::json(200, &json!({"outcome": outcome, "eventId": event_id}), &[]).map_err(internal)
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct GateView {
    pipeline_id: String,
    environment_id: String,
    deployment_sequence_number: u64,
    status: String,
    updated_timestamp: String,
    details: Value,
    source: String,
    first_seen: String,
    last_seen: String,
    stale_deliveries: u64,
    last_event_id: u64,
    /// The last state the pipeline reported through `POST /api/v1/deployments`.
    deployment_state: Option<String>,
    /// When the reconciler will next ask Jira (only while `awaiting`), and how often it has.
    next_check: Option<String>,
    reconciler_checks: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    history: Option<Vec<EventView>>,
}

impl From<StoredGate> for GateView {
    fn from(g: StoredGate) -> Self {
        GateView {
            deployment_sequence_number: g.sequence.parse().unwrap_or_default(),
            pipeline_id: g.pipeline_id,
            environment_id: g.environment_id,
            status: g.status,
            updated_timestamp: g.updated_at,
            details: serde_json::from_str(&g.details).unwrap_or(Value::Array(vec![])),
            source: g.source,
            first_seen: g.first_seen,
            last_seen: g.last_seen,
            stale_deliveries: g.stale_deliveries as u64,
            last_event_id: g.last_event_id as u64,
            deployment_state: g.deployment_state,
            next_check: g.next_check_ms.map(|ms| rfc3339(ms as i64)),
            reconciler_checks: g.checks.unwrap_or(0.0) as u64,
            history: None,
        }
    }
}

#[derive(Clone, Deserialize)]
pub(crate) struct StoredEvent {
    pub(crate) id: f64,
    pub(crate) pipeline_id: String,
    pub(crate) environment_id: String,
    pub(crate) sequence: String,
    pub(crate) status: String,
    pub(crate) updated_at: String,
    pub(crate) details: String,
    pub(crate) source: String,
    pub(crate) recorded_at: String,
    pub(crate) deployment_state: Option<String>,
    pub(crate) note: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct EventView {
    event_id: u64,
    pipeline_id: String,
    environment_id: String,
    deployment_sequence_number: u64,
    status: String,
    updated_timestamp: String,
    details: Value,
    source: String,
    recorded_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    deployment_state: Option<String>,
    /// What the reconciler learned when it changed nothing.
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<String>,
}

impl From<StoredEvent> for EventView {
    fn from(e: StoredEvent) -> Self {
        EventView {
            event_id: e.id as u64,
            deployment_sequence_number: e.sequence.parse().unwrap_or_default(),
            pipeline_id: e.pipeline_id,
            environment_id: e.environment_id,
            status: e.status,
            updated_timestamp: e.updated_at,
            details: serde_json::from_str(&e.details).unwrap_or(Value::Array(vec![])),
            source: e.source,
            recorded_at: e.recorded_at,
            deployment_state: e.deployment_state,
            note: e.note,
        }
    }
}

/// Records a submission Jira accepted. A new gated deployment becomes an `awaiting` gate
/// (source `submitted`); a report on a known gate updates its `deploymentState` and adds it to the
/// history; a report on an unknown, ungated deployment records nothing. Answers the gate or null.
fn record_submission(
    sql: &SqlStorage,
    key: &GateKey,
    gated: bool,
    state: &str,
    now: &str,
) -> std::result::Result<Response, AppError> {
    let status = gate_status(sql, key)?;
    let event_status = match (status, gated) {
        (Some(current), _) => current,
        (None, true) => GatingStatus::Awaiting,
        (None, false) => {
            return http::json(200, &json!({"gate": null}), &[]).map_err(internal);
        }
    };
    #[derive(Deserialize)]
    struct Inserted {
        id: f64,
    }
    let mut params = key_params(key);
    params.extend([
        event_status.as_str().into(),
        now.into(),
        "[]".into(),
        UpdateSource::Submitted.as_str().into(),
        now.into(),
        state.into(),
    ]);
    let event_id = query::<Inserted>(
        sql,
        "INSERT INTO events (pipeline_id, environment_id, sequence, status, updated_at, details, source, recorded_at, deployment_state)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        params,
    )?
    .first()
    .map(|r| r.id)
    .ok_or_else(|| AppError::Internal("event insert returned no id".into()))?;
    if status.is_some() {
        let mut params = vec![
            SqlStorageValue::from(state),
            now.into(),
            SqlStorageValue::from(event_id),
        ];
        params.extend(key_params(key));
        exec(
            sql,
            "UPDATE gates SET deployment_state = ?, last_seen = ?, last_event_id = ?
             WHERE pipeline_id = ? AND environment_id = ? AND sequence = ?",
            params,
        )?;
    } else {
        let mut params = key_params(key);
        params.extend([
            GatingStatus::Awaiting.as_str().into(),
            now.into(),
            "[]".into(),
            UpdateSource::Submitted.as_str().into(),
            now.into(),
            now.into(),
            SqlStorageValue::from(event_id),
            state.into(),
        ]);
        exec(
            sql,
            "INSERT INTO gates (pipeline_id, environment_id, sequence, status, updated_at, details, source, first_seen, last_seen, last_event_id, deployment_state)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            params,
        )?;
    }
    let gate =
        load_gate(sql, key)?.ok_or_else(|| AppError::Internal("recorded gate vanished".into()))?;
    http::json(200, &json!({"gate": GateView::from(gate)}), &[]).map_err(internal)
}

fn get_gate(sql: &SqlStorage, key: &GateKey) -> std::result::Result<Response, AppError> {
    let gate = load_gate(sql, key)?.ok_or(AppError::NotFound)?;
    let history: Vec<StoredEvent> = query(
        sql,
        "SELECT * FROM events WHERE pipeline_id = ? AND environment_id = ? AND sequence = ? ORDER BY id",
        key_params(key),
    )?;
    let mut view = GateView::from(gate);
    view.history = Some(history.into_iter().map(EventView::from).collect());
    http::json(200, &view, &[("Cache-Control", "no-store")]).map_err(internal)
}

fn list_gates(sql: &SqlStorage, filter: &GateFilter) -> std::result::Result<Response, AppError> {
    let mut clauses = Vec::new();
    let mut params: Vec<SqlStorageValue> = Vec::new();
    if let Some(p) = &filter.pipeline {
        clauses.push("pipeline_id = ?");
        params.push(p.as_str().into());
    }
    if let Some(e) = &filter.environment {
        clauses.push("environment_id = ?");
        params.push(e.as_str().into());
    }
    if let Some(s) = filter.status {
        clauses.push("status = ?");
        params.push(s.as_str().into());
    }
    if let Some(before) = filter.before_event {
        clauses.push("last_event_id < ?");
        params.push(SqlStorageValue::from(before as f64));
    }
    let where_clause = if clauses.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", clauses.join(" AND "))
    };
    params.push(SqlStorageValue::from(f64::from(filter.limit + 1)));
    let mut gates: Vec<StoredGate> = query(
        sql,
        &format!("SELECT * FROM gates {where_clause} ORDER BY last_event_id DESC LIMIT ?"),
        params,
    )?;
    let more = gates.len() > filter.limit as usize;
    gates.truncate(filter.limit as usize);
    let next_cursor = more
        .then(|| gates.last().map(|g| encode_cursor(g.last_event_id as u64)))
        .flatten();
    let gates: Vec<GateView> = gates.into_iter().map(GateView::from).collect();
    http::json(
        200,
        &json!({"gates": gates, "nextCursor": next_cursor}),
        &[("Cache-Control", "no-store")],
    )
    .map_err(internal)
}

/// The log of applied updates, as the stream sends it: reconciler notes (which change no gate)
/// stay in each gate's history only, so a client can check the stream against this log.
fn events(sql: &SqlStorage, since: u64, limit: u32) -> std::result::Result<Response, AppError> {
    let events: Vec<StoredEvent> = query(
        sql,
        "SELECT * FROM events WHERE id > ? AND note IS NULL ORDER BY id LIMIT ?",
        vec![
            SqlStorageValue::from(since as f64),
            SqlStorageValue::from(f64::from(limit)),
        ],
    )?;
    let last = last_event_id(sql)?.unwrap_or(0);
    let events: Vec<EventView> = events.into_iter().map(EventView::from).collect();
    http::json(
        200,
        &json!({"events": events, "lastEventId": last}),
        &[("Cache-Control", "no-store")],
    )
    .map_err(internal)
}

#[derive(Deserialize)]
struct StoredToken {
    id: String,
    name: String,
    scopes: String,
    created_at: String,
    revoked_at: Option<String>,
}

fn token_view(t: StoredToken) -> Value {
    json!({
        "id": t.id,
        "name": t.name,
        "scopes": serde_json::from_str::<Value>(&t.scopes).unwrap_or(Value::Array(vec![])),
        "createdAt": t.created_at,
        "revokedAt": t.revoked_at,
    })
}

fn create_token(
    sql: &SqlStorage,
    id: &str,
    name: &str,
    scopes: &[Scope],
    hash: &TokenHash,
    now: &str,
) -> std::result::Result<Response, AppError> {
    let scopes = serde_json::to_string(scopes).map_err(|e| AppError::Internal(e.to_string()))?;
    exec(
        sql,
        "INSERT INTO tokens (id, name, scopes, hash, created_at) VALUES (?, ?, ?, ?, ?)",
        vec![
            id.into(),
            name.into(),
            scopes.clone().into(),
            hash.0.clone().into(),
            now.into(),
        ],
    )?;
    let view = token_view(StoredToken {
        id: id.to_owned(),
        name: name.to_owned(),
        scopes,
        created_at: now.to_owned(),
        revoked_at: None,
    });
    http::json(201, &view, &[("Cache-Control", "no-store")]).map_err(internal)
}

fn list_tokens(sql: &SqlStorage) -> std::result::Result<Response, AppError> {
    let tokens: Vec<StoredToken> = query(
        sql,
        "SELECT id, name, scopes, created_at, revoked_at FROM tokens ORDER BY created_at, id",
        vec![],
    )?;
    let tokens: Vec<Value> = tokens.into_iter().map(token_view).collect();
    http::json(
        200,
        &json!({"tokens": tokens}),
        &[("Cache-Control", "no-store")],
    )
    .map_err(internal)
}

fn revoke_token(sql: &SqlStorage, id: &str, now: &str) -> std::result::Result<Response, AppError> {
    let revoked: Vec<Value> = query(
        sql,
        "UPDATE tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL RETURNING id",
        vec![now.into(), id.into()],
    )?;
    if revoked.is_empty() {
        return Err(AppError::NotFound);
    }
    empty(204)
}

/// A single-use stream ticket, valid [`TICKET_TTL_MS`], for `token_id`'s sockets.
fn store_ticket(
    sql: &SqlStorage,
    token_id: &str,
    hash: TokenHash,
    now_ms: i64,
) -> std::result::Result<Response, AppError> {
    exec(
        sql,
        "DELETE FROM tickets WHERE expires_ms < ?",
        vec![SqlStorageValue::from(now_ms as f64)],
    )?;
    exec(
        sql,
        "INSERT INTO tickets (hash, token_id, expires_ms) VALUES (?, ?, ?)",
        vec![
            hash.0.into(),
            token_id.into(),
            SqlStorageValue::from((now_ms + TICKET_TTL_MS) as f64),
        ],
    )?;
    let body = json!({"expiresAt": rfc3339(now_ms + TICKET_TTL_MS)});
    http::json(201, &body, &[("Cache-Control", "no-store")]).map_err(internal)
}

fn empty(status: u16) -> std::result::Result<Response, AppError> {
    Ok(Response::empty().map_err(internal)?.with_status(status))
}

pub(crate) fn query<T: for<'de> Deserialize<'de>>(
    sql: &SqlStorage,
    statement: &str,
    params: Vec<SqlStorageValue>,
) -> std::result::Result<Vec<T>, AppError> {
    sql.exec(statement, params)
        .and_then(|cursor| cursor.to_array::<T>())
        .map_err(|e| AppError::Internal(format!("sql: {e}")))
}

fn exec(
    sql: &SqlStorage,
    statement: &str,
    params: Vec<SqlStorageValue>,
) -> std::result::Result<(), AppError> {
    sql.exec(statement, params)
        .map(|_| ())
        .map_err(|e| AppError::Internal(format!("sql: {e}")))
}

pub(crate) fn last_event_id(sql: &SqlStorage) -> std::result::Result<Option<u64>, AppError> {
    #[derive(Deserialize)]
    struct Last {
        last: Option<f64>,
    }
    Ok(
        query::<Last>(sql, "SELECT MAX(id) AS last FROM events", vec![])?
            .first()
            .and_then(|l| l.last)
            .map(|l| l as u64),
    )
}

fn corrupt(column: &str) -> AppError {
    AppError::Internal(format!("stored gate has an unreadable {column}"))
}

pub(crate) fn rfc3339(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn internal(e: worker::Error) -> AppError {
    AppError::Internal(e.to_string())
}
