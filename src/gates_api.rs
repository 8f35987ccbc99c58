//! The gate query API, authenticated by an API token with `gates:read`:
//! `GET /api/v1/gates/{pipelineId}/{environmentId}/{deploymentSequenceNumber}`,
//! `GET /api/v1/gates?pipelineId=&environmentId=&status=&limit=&cursor=`,
//! `GET /api/v1/events?since=&limit=`.
//!
//! The worker checks the token's format and routes to the tenant named in it; the tenant's
//! object checks that the token exists, is not revoked and has the scope, so a token can only
//! ever reach its own tenant's data.

use worker::{Env, Request, Response};

use crate::api_tokens::{mint_ticket, parse_bearer, parse_ticket, TokenHash};
use crate::app_context::AppContext;
use crate::connect::credentials::ClientKey;
use crate::connect_auth::{verify_request, TokenKind};
use crate::error::AppError;
use crate::gate_store;
use crate::gating::callback::{GateId, GateKey};
use crate::gating::commands::{parse_events_query, parse_gate_filter, parse_wait, GateCommand};
use crate::tenant_store::TenantStore;

/// `Authorization: Bearer <API token>` → the tenant it belongs to and its hash.
pub fn bearer(req: &Request) -> Result<(ClientKey, TokenHash), AppError> {
    req.headers()
        .get("Authorization")
        .ok()
        .flatten()
        .as_deref()
        .and_then(|h| h.strip_prefix("Bearer "))
        .and_then(|t| parse_bearer(t.trim()))
        .ok_or(AppError::InvalidBearer)
}

/// With `?wait=N` (up to 60 s) an `awaiting` gate's answer is held until the gate changes or the
/// wait ends; the tenant's object wakes the request, nothing polls.
pub async fn gate(req: &Request, env: &Env, params: &[&str]) -> Result<Response, AppError> {
    let (tenant, bearer) = bearer(req)?;
    let key = parse_gate_key(params)?;
    let url = req.url().map_err(|e| AppError::Internal(e.to_string()))?;
    let wait_seconds = parse_wait(url.query_pairs()).map_err(bad_query)?;
    let command = GateCommand::GetGate {
        bearer,
        key,
        wait_seconds,
    };
    gate_store::send(env, &tenant, &command).await
}

pub async fn list(req: &Request, env: &Env) -> Result<Response, AppError> {
    let (tenant, bearer) = bearer(req)?;
    let url = req.url().map_err(|e| AppError::Internal(e.to_string()))?;
    let filter = parse_gate_filter(url.query_pairs()).map_err(bad_query)?;
    gate_store::send(env, &tenant, &GateCommand::ListGates { bearer, filter }).await
}

pub async fn events(req: &Request, env: &Env) -> Result<Response, AppError> {
    let (tenant, bearer) = bearer(req)?;
    let url = req.url().map_err(|e| AppError::Internal(e.to_string()))?;
    let (since, limit) = parse_events_query(url.query_pairs()).map_err(bad_query)?;
    gate_store::send(
        env,
        &tenant,
        &GateCommand::Events {
            bearer,
            since,
            limit,
        },
    )
    .await
}

/// Path segments are percent-decoded once; ids follow the callback's rules.
fn parse_gate_key(params: &[&str]) -> Result<GateKey, AppError> {
    let [pipeline, environment, sequence] = params else {
        return Err(AppError::NotFound);
    };
    let segment = |name: &'static str, raw: &str| {
        percent_encoding::percent_decode_str(raw)
            .decode_utf8()
            .map_err(|_| bad_query((name, "is not UTF-8 once percent-decoded".into())))
            .map(|s| s.into_owned())
    };
    let id = |name: &'static str, raw: &str| {
        GateId::parse(&segment(name, raw)?).map_err(|r| bad_query((name, r)))
    };
    let sequence = sequence
        .parse::<u64>()
        .ok()
        .filter(|&n| n <= i64::MAX as u64)
        .ok_or_else(|| {
            bad_query((
                "deploymentSequenceNumber",
                "must be an integer from 0 to 2^63-1".into(),
            ))
        })?;
    Ok(GateKey {
        pipeline: id("pipelineId", pipeline)?,
        environment: id("environmentId", environment)?,
        sequence,
    })
}

fn bad_query((param, reason): (&'static str, String)) -> AppError {
    AppError::BadRequest {
        code: "invalid_parameter",
        message: format!("{param}: {reason}"),
    }
}

/// `POST /api/v1/stream-tickets`: a single-use ticket, valid for a minute, for opening
/// `/api/v1/stream` from a browser without putting the API token in a URL.
/// `POST /api/v1/stream-tickets`: with a `gates:read` API token (`Authorization: Bearer`), or
/// with a Connect JWT from the tenant's Jira (the "Deployment gates" page inside Jira).
pub async fn create_ticket(
    req: &Request,
    env: &Env,
    ctx: &AppContext,
) -> Result<Response, AppError> {
    let mut random = [0u8; 32];
    getrandom::getrandom(&mut random).map_err(|e| AppError::Internal(format!("getrandom: {e}")))?;
    let is_bearer = req
        .headers()
        .get("Authorization")
        .ok()
        .flatten()
        .is_some_and(|h| h.starts_with("Bearer "));
    let (tenant, ticket, command) = if is_bearer {
        let (tenant, bearer) = bearer(req)?;
        let ticket = mint_ticket(&tenant, random);
        let hash = ticket.hash.clone();
        (tenant, ticket, GateCommand::CreateTicket { bearer, hash })
    } else {
        let store = TenantStore::open(env)?;
        let verified = verify_request(req, ctx, &store, TokenKind::RequestBoundOrContext).await?;
        let tenant = verified.tenant.client_key;
        let ticket = mint_ticket(&tenant, random);
        let hash = ticket.hash.clone();
        (tenant, ticket, GateCommand::CreateJiraTicket { hash })
    };
    let mut answer = gate_store::send(env, &tenant, &command).await?;
    if answer.status_code() != 201 {
        return Ok(answer);
    }
    let mut body: serde_json::Value = answer
        .json()
        .await
        .map_err(|e| AppError::Internal(e.to_string()))?;
    body["ticket"] = ticket.plaintext.into();
    crate::http::json(201, &body, &[("Cache-Control", "no-store")])
        .map_err(|e| AppError::Internal(e.to_string()))
}

/// `GET /api/v1/stream?ticket=…`: the WebSocket upgrade is handed to the ticket's tenant object,
/// which consumes the ticket and accepts the socket (or answers 401 before upgrading).
pub async fn stream(req: &Request, env: &Env) -> Result<Response, AppError> {
    let upgrade = req
        .headers()
        .get("Upgrade")
        .ok()
        .flatten()
        .unwrap_or_default();
    if !upgrade.eq_ignore_ascii_case("websocket") {
        return Err(AppError::BadRequest {
            code: "websocket_required",
            message: "this endpoint is a WebSocket: send Upgrade: websocket".into(),
        });
    }
    let url = req.url().map_err(|e| AppError::Internal(e.to_string()))?;
    let (tenant, _) = url
        .query_pairs()
        .find(|(k, _)| k == "ticket")
        .and_then(|(_, v)| parse_ticket(&v))
        .ok_or(AppError::InvalidBearer)?;
    let forwarded = req.clone().map_err(|e| AppError::Internal(e.to_string()))?;
    gate_store::forward(env, &tenant, forwarded).await
}
