//! `POST /installed`, `/uninstalled`, `/enabled`, `/disabled`: Jira's lifecycle hooks.
//!
//! Every hook is signed with RS256 (the `signed-install` migration) and verified before anything
//! is stored, so a forged or replayed-elsewhere request changes nothing. All four are idempotent
//! and safe in any order (rules in `tenant::apply_event`).

use worker::{Env, Request, Response};

use crate::app_context::AppContext;
use crate::connect::jwt::{
    validate_key_id, verify_install, AuthError, InstallExpectation, UntrustedConnectToken,
};
use crate::connect::lifecycle::{parse_payload, LifecycleEvent};
use crate::connect::qsh::{qsh, RequestParts};
use crate::connect_auth::find_token;
use crate::error::AppError;
use crate::gate_store;
use crate::gating::commands::GateCommand;
use crate::http;
use crate::install_keys::{install_key, rs256_signature_valid};
use crate::tenant::{apply_event, Change, TenantState};
use crate::tenant_store::TenantStore;

/// Lifecycle payloads are a few hundred bytes.
const MAX_BODY: usize = 64 * 1024;

/// (1) Read the body, capped (413). (2) Parse it (400 naming the field). (3) Verify the RS256
/// token: algorithm, kid, Atlassian's key (503 if unreachable, so Jira retries), signature,
/// `aud`, `iss` = `clientKey`, `qsh`, `exp` (401). (4) Apply the event to the stored tenant.
/// Answers 204.
pub async fn handle(
    req: &mut Request,
    env: &Env,
    ctx: &AppContext,
    event: LifecycleEvent,
) -> Result<Response, AppError> {
    // (1) Read.
    let body = http::read_body_capped(req, MAX_BODY).await?;
    let url = req.url().map_err(|e| AppError::Internal(e.to_string()))?;

    // (2) Parse.
    let payload = parse_payload(
        &body,
        event,
        ctx.config.app_key.as_str(),
        &ctx.config.tenant_hosts,
    )?;
    ctx.set_tenant(payload.client_key.as_str());
    let store = TenantStore::open(env)?;

    // (3) Verify.
    let raw_token = match find_token(req, &url) {
        Err(AppError::Auth(AuthError::TokenMissing)) if event_without_token_is_moot(event) => {
            // Jira has been seen sending `disabled` unsigned right after an uninstall. For a
            // tenant that is gone (or never was) there is nothing to change: acknowledge it so
            // Jira stops retrying. Anything else still needs a token.
            let existing = store.get(&payload.client_key).await?;
            if existing.is_none_or(|t| t.state == TenantState::Uninstalled) {
                return http::no_content().map_err(internal);
            }
            return Err(AuthError::TokenMissing.into());
        }
        other => other?,
    };
    let token = UntrustedConnectToken::parse(&raw_token)?;
    token.require_algorithm("RS256")?;
    let kid = validate_key_id(token.unverified_key_id())?;
    let key = install_key(&ctx.config.install_keys_url, kid, &store).await?;
    let request_qsh = qsh(&RequestParts {
        method: "POST",
        path: url.path(),
        query: url.query().unwrap_or(""),
        base_path: ctx.base_url.path(),
    });
    let expect = InstallExpectation {
        audience: ctx.base_url.as_str(),
        client_key: payload.client_key.as_str(),
        qsh: &request_qsh,
    };
    let valid = rs256_signature_valid(&key, &token.rs256_signed_parts()?).await?;
    verify_install(&token, valid, expect, ctx.now)?;

    // (4) Apply.
    let existing = store.get(&payload.client_key).await?;
    if let Change::Store(record) = apply_event(existing.as_ref(), &payload, &ctx.now_rfc3339()) {
        store.put(&record).await?;
    }
    if event == LifecycleEvent::Uninstalled {
        // Also on a repeated uninstall: the object may have missed the first one, and Jira
        // retries until this answers 204.
        let answer = gate_store::send(env, &payload.client_key, &GateCommand::Uninstall).await?;
        if answer.status_code() != 204 {
            return Ok(answer);
        }
    }
    http::no_content().map_err(internal)
}

fn event_without_token_is_moot(event: LifecycleEvent) -> bool {
    matches!(
        event,
        LifecycleEvent::Disabled | LifecycleEvent::Uninstalled
    )
}

fn internal(e: worker::Error) -> AppError {
    AppError::Internal(e.to_string())
}
