//! Jira deployment gating provider: an Atlassian Connect app running as a Cloudflare Worker.
//!
//! Protocol and domain modules (`config`, `https_url`, `descriptor`, `routes`, `error`, `request_log`)
//! never import `worker` and are unit-tested natively. The runtime glue is `frontend` (the fetch
//! handler), `http` (responses) and one file per Durable Object (`tenant_gates_do`).

pub mod config;
pub mod connect;
pub mod descriptor;
pub mod error;
pub mod https_url;
pub mod request_log;
pub mod routes;

mod frontend;
mod http;
mod tenant_gates_do;

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
