//! The fetch handler: configuration, routing, dispatch, and the per-request log line.
//!
//! Handlers are thin adapters: they parse the request, call protocol code, and map the result.
//! Every error goes through [`crate::http::error`]; nothing here builds an error body by hand.

use chrono::{DateTime, Utc};
use worker::{console_log, Date, Env, Request, Response, Result};

use crate::app_context::AppContext;
use crate::config::Config;
use crate::connect_auth::{verify_request, TokenKind};
use crate::descriptor::build_descriptor;
use crate::error::AppError;
use crate::https_url::HttpsUrl;
use crate::pages::JiraPage;
use crate::request_log::RequestLog;
use crate::routes::{self, Route};
use crate::tenant_store::TenantStore;
use crate::{
    callback_routes, connection_routes, deployments_api, gates_api, http, lifecycle_routes, pages,
    tokens_api,
};

pub async fn handle(mut req: Request, env: Env) -> Result<Response> {
    let started = Date::now().as_millis();
    let method = req.method().to_string();
    let path = req.path();

    let mut tenant = None;
    let outcome = match load_context(&req, &env, started) {
        Ok(ctx) => {
            let outcome = dispatch(&mut req, &env, &ctx, &method, &path).await;
            tenant = ctx.tenant();
            outcome
        }
        Err(e) => Err(e),
    };
    let (response, error) = match outcome {
        Ok(response) => (response, None),
        Err(err) => (http::error(&err)?, Some(err.log_detail())),
    };

    console_log!(
        "{}",
        RequestLog {
            method: &method,
            path: &path,
            status: response.status_code(),
            duration_ms: (Date::now().as_millis() - started) as f64,
            tenant: tenant.as_deref(),
            error,
        }
        .to_line()
    );
    Ok(response)
}

async fn dispatch(
    req: &mut Request,
    env: &Env,
    ctx: &AppContext,
    method: &str,
    path: &str,
) -> std::result::Result<Response, AppError> {
    let relative = routes::relative_path(ctx.base_url.path(), path).ok_or(AppError::NotFound)?;
    let (route, params) = routes::resolve(method, relative)?;
    match route {
        Route::Descriptor => descriptor(ctx).map_err(internal),
        Route::Health => {
            http::json(200, &serde_json::json!({"status": "ok"}), &[]).map_err(internal)
        }
        Route::Lifecycle(event) => lifecycle_routes::handle(req, env, ctx, event).await,
        Route::Connection => {
            let store = TenantStore::open(env)?;
            let verified =
                verify_request(req, ctx, &store, TokenKind::RequestBoundOrContext).await?;
            connection_routes::check(verified, ctx).await
        }
        Route::Callback => callback_routes::handle(req, env, ctx).await,
        Route::Gate => gates_api::gate(req, env, &params).await,
        Route::Gates => gates_api::list(req, env).await,
        Route::Events => gates_api::events(req, env).await,
        Route::Tokens => tokens_api::tokens(req, env, ctx).await,
        Route::Token => tokens_api::revoke(req, env, ctx, &params).await,
        Route::Deployments => deployments_api::submit(req, env, ctx).await,
        Route::StreamTickets => gates_api::create_ticket(req, env, ctx).await,
        Route::Stream => gates_api::stream(req, env).await,
        Route::Dashboard => pages::dashboard(),
        Route::JiraGatesPage => pages::jira_page(req, env, ctx, JiraPage::Gates).await,
        Route::JiraAdminPage => pages::jira_page(req, env, ctx, JiraPage::Admin).await,
    }
}

/// Reads `[vars]` into a [`Config`] and settles the base URL.
fn load_context(
    req: &Request,
    env: &Env,
    now_ms: u64,
) -> std::result::Result<AppContext, AppError> {
    let config = Config::from_lookup(|name| env.var(name).ok().map(|v| v.to_string()))?;
    let base_url = match &config.base_url {
        Some(url) => url.clone(),
        None => {
            // Without BASE_URL the app lives at whatever origin the request names: a request
            // with an origin the app cannot use (plain http off loopback) is the client's error.
            let url = req.url().map_err(|e| AppError::Internal(e.to_string()))?;
            HttpsUrl::parse(&url.origin().ascii_serialization()).map_err(|reason| {
                AppError::BadRequest {
                    code: "origin_not_usable",
                    message: format!(
                        "BASE_URL is unset, so the app is served at the request's origin, \
                         which it cannot use: {reason}"
                    ),
                }
            })?
        }
    };
    let now = DateTime::<Utc>::from_timestamp_millis(now_ms as i64).unwrap_or_default();
    Ok(AppContext::new(config, base_url, now))
}

fn descriptor(ctx: &AppContext) -> Result<Response> {
    let descriptor = build_descriptor(&ctx.config, &ctx.base_url);
    // Short-lived: Jira re-reads the descriptor on install and upgrade, operators change vars.
    http::json(200, &descriptor, &[("Cache-Control", "public, max-age=60")])
}

fn internal(e: worker::Error) -> AppError {
    AppError::Internal(e.to_string())
}
