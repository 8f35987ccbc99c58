//! The app's HTML pages, embedded in the worker: the stand-alone dashboard (`/dashboard`) and the
//! two pages Jira frames (`/jira/gates`, the same dashboard signed in by Jira; `/jira/admin`,
//! API token management).
//!
//! Jira requires framed pages to load Atlassian's `all.js` from its CDN; that script is the only
//! thing not served by the worker, and only the Jira pages allow it. A Jira page load carries a
//! JWT from the tenant's Jira (`?jwt=`), verified before the page is served. The pages hold no
//! tenant data: what they show comes from API calls made with fresh context JWTs.

use worker::{Env, Request, Response};

use crate::app_context::AppContext;
use crate::connect_auth::{verify_request, TokenKind};
use crate::error::AppError;
use crate::tenant_store::TenantStore;

const DASHBOARD: &str = include_str!("dashboard.html");
const ADMIN: &str = include_str!("admin.html");
const CONNECT_JS_SLOT: &str = "<!--connect-js-->";
const CONNECT_JS: &str = r#"<script src="https://connect-cdn.atl-paas.net/all.js" data-options="sizeToParent:true"></script>"#;
const CONNECT_CDN: &str = "https://connect-cdn.atl-paas.net";

#[derive(Debug, Clone, Copy)]
pub enum JiraPage {
    Gates,
    Admin,
}

/// The dashboard outside Jira: nothing but the worker itself, and no one may frame it.
pub fn dashboard() -> Result<Response, AppError> {
    html(DASHBOARD, &csp("", "'none'"))
}

pub async fn jira_page(
    req: &Request,
    env: &Env,
    ctx: &AppContext,
    page: JiraPage,
) -> Result<Response, AppError> {
    let store = TenantStore::open(env)?;
    verify_request(req, ctx, &store, TokenKind::RequestBoundOrContext).await?;
    let body = match page {
        // The page lives one level down (`/jira/gates`): its API root is `../`.
        JiraPage::Gates => DASHBOARD.replace(CONNECT_JS_SLOT, CONNECT_JS).replace(
            r#"<meta name="app-root" content="./">"#,
            r#"<meta name="app-root" content="../">"#,
        ),
        JiraPage::Admin => ADMIN.replace(CONNECT_JS_SLOT, CONNECT_JS),
    };
    let ancestors: Vec<String> = ctx
        .config
        .tenant_hosts
        .iter()
        .map(|h| h.csp_source())
        .collect();
    html(&body, &csp(CONNECT_CDN, &ancestors.join(" ")))
}

fn csp(extra_script: &str, frame_ancestors: &str) -> String {
    format!(
        "default-src 'none'; script-src 'unsafe-inline' {extra_script}; \
         style-src 'unsafe-inline'; connect-src 'self' ws: wss:; img-src 'self' data:; \
         base-uri 'none'; form-action 'none'; frame-ancestors {frame_ancestors}"
    )
}

fn html(body: &str, csp: &str) -> Result<Response, AppError> {
    let internal = |e: worker::Error| AppError::Internal(e.to_string());
    let mut response = Response::from_html(body).map_err(internal)?;
    let headers = response.headers_mut();
    headers.set("Cache-Control", "no-cache").map_err(internal)?;
    headers
        .set("Content-Security-Policy", csp)
        .map_err(internal)?;
    headers
        .set("Referrer-Policy", "no-referrer")
        .map_err(internal)?;
    Ok(response)
}
