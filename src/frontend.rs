//! The fetch handler: configuration, routing, dispatch, and the per-request log line.
//!
//! Handlers are thin adapters: they parse the request, call protocol code, and map the result.
//! Every error goes through [`crate::http::error`]; nothing here builds an error body by hand.

use worker::{console_log, Date, Env, Request, Response, Result};

use crate::config::{Config, ConfigError};
use crate::descriptor::build_descriptor;
use crate::error::AppError;
use crate::http;
use crate::https_url::HttpsUrl;
use crate::request_log::RequestLog;
use crate::routes::{self, Route};

/// What a handler knows about the request beyond the request itself.
struct Ctx {
    config: Config,
    /// The app's base URL: `BASE_URL`, or the request's origin when it is unset.
    base_url: HttpsUrl,
}

pub async fn handle(req: Request, env: Env) -> Result<Response> {
    let started = Date::now().as_millis();
    let method = req.method().to_string();
    let path = req.path();

    let outcome = route_and_handle(&req, &env, &method, &path).await;
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
            tenant: None,
            error,
        }
        .to_line()
    );
    Ok(response)
}

async fn route_and_handle(
    req: &Request,
    env: &Env,
    method: &str,
    path: &str,
) -> std::result::Result<Response, AppError> {
    let ctx = load_ctx(req, env)?;
    let relative = routes::relative_path(ctx.base_url.path(), path).ok_or(AppError::NotFound)?;
    let route = routes::resolve(method, relative)?;
    let response = match route {
        Route::Descriptor => descriptor(&ctx),
        Route::Health => http::json(200, &serde_json::json!({"status": "ok"}), &[]),
    };
    response.map_err(|e| AppError::Internal(e.to_string()))
}

/// Reads `[vars]` into a [`Config`] and settles the base URL.
fn load_ctx(req: &Request, env: &Env) -> std::result::Result<Ctx, AppError> {
    let config = Config::from_lookup(|name| env.var(name).ok().map(|v| v.to_string()))?;
    let base_url = match &config.base_url {
        Some(url) => url.clone(),
        None => {
            let url = req.url().map_err(|e| AppError::Internal(e.to_string()))?;
            HttpsUrl::parse(&url.origin().ascii_serialization()).map_err(|reason| ConfigError {
                setting: "BASE_URL",
                reason: format!("unset, and the request origin is not usable: {reason}"),
            })?
        }
    };
    Ok(Ctx { config, base_url })
}

fn descriptor(ctx: &Ctx) -> Result<Response> {
    let descriptor = build_descriptor(&ctx.config, &ctx.base_url);
    // Short-lived: Jira re-reads the descriptor on install and upgrade, operators change vars.
    http::json(200, &descriptor, &[("Cache-Control", "public, max-age=60")])
}
