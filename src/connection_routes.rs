//! `GET /api/v1/connection`: proves, end to end, that the app can call the tenant's Jira.
//!
//! Authenticated by the tenant's Connect JWT (a page's context token is accepted, so the admin
//! page can show it). Calls Jira's `GET /rest/api/3/serverInfo` with the app's own signed token
//! and reports what Jira answered. 200 when Jira accepts the app's token; 502 with
//! `jira_refused` (401/403: the secret or scopes no longer match) or `jira_unreachable`.

use serde::Serialize;
use worker::{Method, Response};

use crate::app_context::AppContext;
use crate::connect_auth::Verified;
use crate::error::AppError;
use crate::http;
use crate::jira_client::JiraClient;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Connection<'a> {
    client_key: &'a str,
    base_url: &'a str,
    /// `context-token` (an app page) or `request-token`.
    authenticated_by: &'static str,
    jira_status: u16,
    jira_version: Option<String>,
}

pub async fn check(verified: Verified, ctx: &AppContext) -> Result<Response, AppError> {
    let tenant = &verified.tenant;
    let client = JiraClient::new(ctx.config.app_key.as_str(), tenant);
    let answer = client
        .send(Method::Get, "/rest/api/3/serverInfo", None, ctx.now)
        .await?;
    match answer.status {
        200..=299 => {}
        401 | 403 => {
            return Err(AppError::BadGateway {
                code: "jira_refused",
                message: format!("Jira refused the app's token ({})", answer.status),
            })
        }
        status => {
            return Err(AppError::BadGateway {
                code: "jira_error",
                message: format!("Jira answered {status}"),
            })
        }
    }
    let info: serde_json::Value = serde_json::from_slice(&answer.body).unwrap_or_default();
    let body = Connection {
        client_key: tenant.client_key.as_str(),
        base_url: &tenant.base_url,
        authenticated_by: if verified.claims.context_token {
            "context-token"
        } else {
            "request-token"
        },
        jira_status: answer.status,
        jira_version: info["version"].as_str().map(str::to_owned),
    };
    http::json(200, &body, &[("Cache-Control", "no-store")])
        .map_err(|e| AppError::Internal(e.to_string()))
}
