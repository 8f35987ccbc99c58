//! Tenants in Workers KV, keyed `tenant/<clientKey>`.
//!
//! KV is eventually consistent across locations (up to ~60 s): an uninstall reaches every edge
//! location within that window, not at once. Within one location reads see the last write.

use worker::{Env, KvStore};

use crate::connect::credentials::ClientKey;
use crate::error::AppError;
use crate::tenant::TenantRecord;

/// The binding name in `wrangler.toml`.
pub const BINDING: &str = "TENANTS";

pub struct TenantStore(KvStore);

impl TenantStore {
    pub fn open(env: &Env) -> Result<Self, AppError> {
        env.kv(BINDING)
            .map(TenantStore)
            .map_err(|e| AppError::Internal(format!("KV binding {BINDING}: {e}")))
    }

    pub fn kv(&self) -> &KvStore {
        &self.0
    }

    pub async fn get(&self, client_key: &ClientKey) -> Result<Option<TenantRecord>, AppError> {
        self.0
            .get(&key(client_key))
            .json::<TenantRecord>()
            .await
            .map_err(|e| unavailable(format!("KV get: {e}")))
    }

    pub async fn put(&self, record: &TenantRecord) -> Result<(), AppError> {
        self.0
            .put(&key(&record.client_key), record)
            .map_err(|e| AppError::Internal(format!("KV put: {e}")))?
            .execute()
            .await
            .map_err(|e| unavailable(format!("KV put: {e}")))
    }
}

fn key(client_key: &ClientKey) -> String {
    format!("tenant/{client_key}")
}

/// Storage trouble is worth a retry by Jira, so it is a 503, with detail only in the log.
fn unavailable(detail: String) -> AppError {
    worker::console_error!("tenant store: {detail}");
    AppError::Unavailable {
        code: "storage_unavailable",
        message: "tenant storage is unavailable; retry later".into(),
    }
}
