//! `POST /api/v1/deployments`: a pipeline submits a (gated) deployment, or reports a later state.
//!
//! (1) API token (`deployments:write`, checked by the tenant's object). (2) Body capped at
//! 64 KiB and checked against every Jira rule (400 naming the field) before Jira is called.
//! (3) Signed bulk request to the tenant's Jira; 429 and 5xx are retried up to three attempts,
//! honouring `Retry-After` (capped), other 4xx never. (4) Jira's verdict: accepted → recorded in
//! the tenant's object, 202 with the gate and Jira's summary; rejected → 422 with Jira's
//! messages; 401/403 → 502; still failing → 503 with `Retry-After`.

use std::time::Duration;

use serde_json::json;
use worker::{Delay, Env, Method, Request, Response};

use crate::api_tokens::Scope;
use crate::app_context::AppContext;
use crate::connect::jwt::AuthError;
use crate::deployments::{interpret_bulk_answer, parse_submission, Verdict};
use crate::error::AppError;
use crate::gate_store;
use crate::gates_api::bearer;
use crate::gating::commands::GateCommand;
use crate::http;
use crate::jira_client::JiraClient;
use crate::tenant_store::TenantStore;

const MAX_BODY: usize = 64 * 1024;
const ATTEMPTS: u32 = 3;
/// The longest one `Retry-After` may hold a pipeline's request.
const MAX_RETRY_WAIT_SECONDS: u64 = 10;

pub async fn submit(req: &mut Request, env: &Env, ctx: &AppContext) -> Result<Response, AppError> {
    // (1) Token.
    let (tenant_key, token) = bearer(req)?;
    ctx.set_tenant(tenant_key.as_str());
    let authorize = GateCommand::Authorize {
        bearer: token,
        scope: Scope::DeploymentsWrite,
    };
    let answer = gate_store::send(env, &tenant_key, &authorize).await?;
    if answer.status_code() != 204 {
        return Ok(answer);
    }

    // (2) Body.
    let body = http::read_body_capped(req, MAX_BODY).await?;
    let submission =
        parse_submission(&body, ctx.now.timestamp_millis()).map_err(|e| AppError::BadRequest {
            code: "invalid_payload",
            message: format!("{}: {}", e.field, e.reason),
        })?;
    let tenant = TenantStore::open(env)?
        .get(&tenant_key)
        .await?
        .filter(|t| t.shared_secret.is_some())
        .ok_or(AuthError::TenantUninstalled)?;

    // (3) Jira.
    let request = submission.bulk_request(&ctx.now_rfc3339(), &ctx.config.app_name);
    let client = JiraClient::new(ctx.config.app_key.as_str(), &tenant);
    let mut attempt = 0;
    let verdict = loop {
        attempt += 1;
        let answer = client
            .send(
                Method::Post,
                "/rest/deployments/0.1/bulk",
                Some(&request),
                ctx.now,
            )
            .await?;
        let verdict = interpret_bulk_answer(answer.status, &answer.body, &submission.key);
        match verdict {
            Verdict::Retryable(status) if attempt < ATTEMPTS => {
                let wait = answer
                    .retry_after
                    .unwrap_or(u64::from(attempt))
                    .min(MAX_RETRY_WAIT_SECONDS);
                worker::console_log!("jira bulk answered {status}; retrying in {wait} s");
                Delay::from(Duration::from_secs(wait)).await;
            }
            _ => break verdict,
        }
    };

    // (4) Verdict.
    match verdict {
        Verdict::Accepted(summary) => {
            let record = GateCommand::RecordSubmission {
                key: submission.key.clone(),
                gated: submission.gate,
                state: submission.state.to_owned(),
            };
            let mut recorded = gate_store::send(env, &tenant_key, &record).await?;
            if recorded.status_code() != 200 {
                return Ok(recorded);
            }
            let recorded: serde_json::Value = recorded
                .json()
                .await
                .map_err(|e| AppError::Internal(e.to_string()))?;
            let body = json!({"gate": recorded["gate"], "gated": submission.gate, "jira": summary});
            http::json(202, &body, &[("Cache-Control", "no-store")]).map_err(|e| AppError::Internal(e.to_string()))
        }
        Verdict::Rejected(messages) => Err(AppError::Unprocessable {
            code: "jira_rejected",
            message: if messages.is_empty() {
                "Jira rejected the deployment".into()
            } else {
                format!("Jira rejected the deployment: {}", messages.join("; "))
            },
        }),
        Verdict::Refused(status) => Err(AppError::BadGateway {
            code: "jira_refused",
            message: format!(
                "Jira refused the app ({status}): the app may lack the WRITE scope or the deployment \
                 provider module, or the site has uninstalled it"
            ),
        }),
        Verdict::Retryable(status) => Err(AppError::Unavailable {
            code: "jira_unavailable",
            message: format!("Jira answered {status} {ATTEMPTS} times; retry later"),
        }),
        Verdict::Unexpected(status) => Err(AppError::BadGateway {
            code: "jira_error",
            message: format!("Jira answered {status}"),
        }),
        Verdict::Unreadable(status) => Err(AppError::BadGateway {
            code: "jira_error",
            message: format!(
                "Jira answered {status} with a body that is not its deployments answer, so whether \
                 it recorded the deployment is unknown; submitting the same body again is safe"
            ),
        }),
    }
}
