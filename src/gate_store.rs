//! The worker's side of the `TenantGates` protocol: one stub per tenant, commands as JSON.

use worker::{Env, Headers, Method, Request, RequestInit, Response};

use crate::connect::credentials::ClientKey;
use crate::error::AppError;
use crate::gating::commands::GateCommand;
use crate::tenant_gates_do::BINDING;

/// Names the tenant on every command, so the object knows whose Jira to ask.
pub const CLIENT_KEY_HEADER: &str = "X-Client-Key";

/// Sends `command` to the tenant's object. Its answer (success or a JSON error) is returned as
/// is; an object that cannot be reached is a 503 so callers (Jira included) retry.
/// Hands a request (a WebSocket upgrade) to the tenant's object as it is.
pub async fn forward(
    env: &Env,
    tenant: &ClientKey,
    request: Request,
) -> Result<Response, AppError> {
    stub(env, tenant)?
        .fetch_with_request(request)
        .await
        .map_err(unreachable)
}

fn stub(env: &Env, tenant: &ClientKey) -> Result<worker::Stub, AppError> {
    env.durable_object(BINDING)
        .and_then(|ns| ns.get_by_name(tenant.as_str()))
        .map_err(|e| AppError::Internal(format!("gate store stub: {e}")))
}

fn unreachable(e: worker::Error) -> AppError {
    worker::console_error!("gate store unreachable: {e}");
    AppError::Unavailable {
        code: "gate_store_unavailable",
        message: "the tenant's gate store is unavailable; retry later".into(),
    }
}

pub async fn send(
    env: &Env,
    tenant: &ClientKey,
    command: &GateCommand,
) -> Result<Response, AppError> {
    let stub = stub(env, tenant)?;
    let body = serde_json::to_string(command).map_err(|e| AppError::Internal(e.to_string()))?;
    let headers = Headers::new();
    headers
        .set(CLIENT_KEY_HEADER, tenant.as_str())
        .map_err(|e| AppError::Internal(e.to_string()))?;
    let mut init = RequestInit::new();
    init.with_method(Method::Post)
        .with_headers(headers)
        .with_body(Some(body.into()));
    let request = Request::new_with_init("https://tenant-gates/command", &init)
        .map_err(|e| AppError::Internal(e.to_string()))?;
    stub.fetch_with_request(request).await.map_err(unreachable)
}
