//! Jira deployment gating provider: an Atlassian Connect app running as a Cloudflare Worker.
//!
//! Protocol and domain modules (`connect`, `config`, `https_url`, `descriptor`, `tenant`,
//! `routes`, `error`, `request_log`) never import `worker` and are unit-tested natively. The
//! runtime glue: `frontend` (fetch handler), `http` (responses), `app_context`, `connect_auth`
//! (verifies Jira's tokens), `lifecycle_routes`, `connection_routes`, `install_keys`,
//! `jira_client` (signed outbound calls), `tenant_store` (KV), and one file per Durable Object
//! (`tenant_gates_do`).

pub mod api_tokens;
pub mod config;
pub mod connect;
pub mod deployments;
pub mod descriptor;
pub mod error;
pub mod gating;
pub mod https_url;
pub mod request_log;
pub mod routes;
pub mod stream;
pub mod tenant;

mod app_context;
mod callback_routes;
mod connect_auth;
mod connection_routes;
mod deployments_api;
mod frontend;
mod gate_fanout;
mod gate_store;
mod gate_stream;
mod gates_api;
mod http;
mod install_keys;
mod jira_admin;
mod jira_client;
mod lifecycle_routes;
mod pages;
mod tenant_gates_do;
mod tenant_store;
mod tokens_api;

pub use tenant_gates_do::TenantGates;

use worker::{event, Context, Env, Request, Response, Result};

#[event(start)]
fn start() {
    console_error_panic_hook::set_once();
}

#[event(fetch)]
async fn fetch(req: Request, env: Env, _ctx: Context) -> Result<Response> {
    frontend::handle(req, env).await
}
