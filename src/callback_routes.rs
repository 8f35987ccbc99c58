//! `POST /callback`: Jira reports a gated deployment's new status.
//!
//! (1) Verify the Connect JWT (request-bound: qsh of `POST /callback`; context tokens 403).
//! (2) Read the body, capped at 64 KiB (413). (3) Parse it strictly (400 naming the field).
//! (4) Apply it in the tenant's object, which de-duplicates by `X-Atlassian-Webhook-Identifier`
//! and orders by `updatedTimestamp` (`gating::ordering`). 204 once stored, whether the update
//! was applied, stale or a duplicate (Jira must stop retrying in every case); 503 when the object
//! cannot be reached, so Jira retries.

use worker::{Env, Request, Response};

use crate::app_context::AppContext;
use crate::connect_auth::{verify_request, TokenKind};
use crate::error::AppError;
use crate::gate_store;
use crate::gating::callback::parse_callback;
use crate::gating::commands::{GateCommand, UpdateSource};
use crate::http;
use crate::tenant_store::TenantStore;

const MAX_BODY: usize = 64 * 1024;
/// Jira's delivery ids are UUIDs; anything longer is not one and is not kept.
const MAX_DELIVERY_ID: usize = 128;

pub async fn handle(req: &mut Request, env: &Env, ctx: &AppContext) -> Result<Response, AppError> {
    // (1) Verify.
    let store = TenantStore::open(env)?;
    let verified = verify_request(req, ctx, &store, TokenKind::RequestBound).await?;

    // (2) Read. (3) Parse.
    let body = http::read_body_capped(req, MAX_BODY).await?;
    let update = parse_callback(&body)?;
    let delivery_id = req
        .headers()
        .get("X-Atlassian-Webhook-Identifier")
        .ok()
        .flatten()
        .filter(|id| !id.is_empty() && id.len() <= MAX_DELIVERY_ID);

    // (4) Apply.
    let command = GateCommand::ApplyUpdate {
        update,
        delivery_id,
        source: UpdateSource::Callback,
    };
    let answer = gate_store::send(env, &verified.tenant.client_key, &command).await?;
    match answer.status_code() {
        200 => http::no_content().map_err(|e| AppError::Internal(e.to_string())),
        _ => Ok(answer),
    }
}
