//! API token management for a tenant's admins:
//! `POST /api/v1/tokens` (create; the token is in the answer once), `GET /api/v1/tokens` (list,
//! no secrets), `DELETE /api/v1/tokens/{id}` (revoke, effective on the next request, because the
//! tenant's object is the only place tokens are checked).
//!
//! Who may call: a Connect JWT issued by the tenant's Jira (an admin page's context token or a
//! request token) for an account Jira says is a site administrator, or the operator's `ADMIN_TOKEN` secret (`Authorization: Bearer`) together
//! with the tenant's `clientKey` (in the body for POST, `?clientKey=` otherwise). With no
//! `ADMIN_TOKEN` set, only Connect JWTs are accepted.

use serde::Deserialize;
use sha2::{Digest, Sha256};
use worker::{Env, Method, Request, Response};

use crate::api_tokens::{mint, parse_name, parse_scopes};
use crate::app_context::AppContext;
use crate::connect::credentials::ClientKey;
use crate::connect::jwt::AuthError;
use crate::connect_auth::{verify_request, TokenKind};
use crate::error::AppError;
use crate::gate_store;
use crate::gating::commands::GateCommand;
use crate::http;
use crate::jira_admin::require_site_admin;
use crate::tenant::TenantState;
use crate::tenant_store::TenantStore;

const MAX_BODY: usize = 8 * 1024;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CreateBody {
    name: String,
    scopes: Vec<String>,
    client_key: Option<String>,
}

pub async fn tokens(req: &mut Request, env: &Env, ctx: &AppContext) -> Result<Response, AppError> {
    if req.method() == Method::Get {
        let tenant = authorize(req, env, ctx, None).await?;
        return gate_store::send(env, &tenant, &GateCommand::ListTokens).await;
    }
    // (1) Read and parse the body. (2) Authorize for the tenant. (3) Mint and store.
    let body = http::read_body_capped(req, MAX_BODY).await?;
    let body: CreateBody = serde_json::from_slice(&body).map_err(|e| AppError::BadRequest {
        code: "invalid_payload",
        message: format!("body: expected {{\"name\", \"scopes\"[, \"clientKey\"]}}: {e}"),
    })?;
    let name = parse_name(&body.name).map_err(|r| invalid("name", r))?;
    let scopes = parse_scopes(&body.scopes).map_err(|r| invalid("scopes", r))?;
    let tenant = authorize(req, env, ctx, body.client_key.as_deref()).await?;

    let mut random = [0u8; 32];
    getrandom::getrandom(&mut random).map_err(|e| AppError::Internal(format!("getrandom: {e}")))?;
    let token = mint(&tenant, random);
    let command = GateCommand::CreateToken {
        id: token.id.clone(),
        name,
        scopes,
        hash: token.hash.clone(),
    };
    let mut answer = gate_store::send(env, &tenant, &command).await?;
    if answer.status_code() != 201 {
        return Ok(answer);
    }
    let mut view: serde_json::Value = answer
        .json()
        .await
        .map_err(|e| AppError::Internal(e.to_string()))?;
    view["token"] = token.plaintext.into();
    http::json(201, &view, &[("Cache-Control", "no-store")])
        .map_err(|e| AppError::Internal(e.to_string()))
}

pub async fn revoke(
    req: &Request,
    env: &Env,
    ctx: &AppContext,
    params: &[&str],
) -> Result<Response, AppError> {
    let tenant = authorize(req, env, ctx, None).await?;
    let id = params.first().copied().unwrap_or_default().to_owned();
    gate_store::send(env, &tenant, &GateCommand::RevokeToken { id }).await
}

/// The tenant the caller may manage tokens for.
async fn authorize(
    req: &Request,
    env: &Env,
    ctx: &AppContext,
    body_client_key: Option<&str>,
) -> Result<ClientKey, AppError> {
    let store = TenantStore::open(env)?;
    let header = req
        .headers()
        .get("Authorization")
        .ok()
        .flatten()
        .unwrap_or_default();
    let Some(presented) = header.strip_prefix("Bearer ") else {
        // A Connect JWT (header or ?jwt=) from the tenant's Jira.
        let verified = verify_request(req, ctx, &store, TokenKind::RequestBoundOrContext).await?;
        require_site_admin(&verified, ctx).await?;
        return Ok(verified.tenant.client_key);
    };
    let admin = env
        .secret("ADMIN_TOKEN")
        .map(|s| s.to_string())
        .unwrap_or_default();
    // Compare digests, so the comparison's timing says nothing about the secret.
    if admin.is_empty() || Sha256::digest(presented.trim()) != Sha256::digest(admin.as_str()) {
        return Err(AppError::InvalidBearer);
    }
    let url = req.url().map_err(|e| AppError::Internal(e.to_string()))?;
    let raw = match body_client_key {
        Some(k) => k.to_owned(),
        None => url
            .query_pairs()
            .find(|(k, _)| k == "clientKey")
            .map(|(_, v)| v.into_owned())
            .ok_or_else(|| invalid("clientKey", "is required with ADMIN_TOKEN".into()))?,
    };
    let client_key = ClientKey::parse(&raw).map_err(|r| invalid("clientKey", r))?;
    match store.get(&client_key).await? {
        Some(t) if t.state != TenantState::Uninstalled => {
            ctx.set_tenant(client_key.as_str());
            Ok(client_key)
        }
        _ => Err(AuthError::UnknownTenant.into()),
    }
}

fn invalid(field: &'static str, reason: String) -> AppError {
    AppError::BadRequest {
        code: "invalid_payload",
        message: format!("{field}: {reason}"),
    }
}
