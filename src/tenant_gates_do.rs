//! `TenantGates`: the Durable Object that will own one tenant's gate state (one object per
//! `clientKey`, SQLite-backed).
//!
//! A stub for now: it creates its schema-version table so the SQLite storage and the migration
//! are exercised from the start, and answers every request with 501 until the gating issue fills
//! it in.

use worker::{durable_object, DurableObject, Env, Request, Response, Result, State};

#[durable_object]
pub struct TenantGates {
    state: State,
}

impl DurableObject for TenantGates {
    fn new(state: State, _env: Env) -> Self {
        // Synchronous SQLite: the schema exists before the first event is delivered.
        let _ = state.storage().sql().exec(
            "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)",
            None,
        );
        TenantGates { state }
    }

    async fn fetch(&self, _req: Request) -> Result<Response> {
        let _ = &self.state;
        Response::error("TenantGates is not implemented yet", 501)
    }
}
