//! Atlassian's install-signing public keys, fetched by `kid` from `INSTALL_KEYS_URL`.
//!
//! A key never changes under its kid, so it is cached without expiry in the isolate's memory and,
//! for cold isolates, in KV (`install-key/<kid>`, 30 days). A key server that is down or answers
//! garbage gives 503 so Jira retries the lifecycle hook; a 404 means the kid is not Atlassian's.

use std::cell::RefCell;
use std::collections::HashMap;

use worker::{Fetch, Method, Request, RequestInit};

use crate::connect::jwt::{AuthError, InstallKey};
use crate::error::AppError;
use crate::https_url::HttpsUrl;
use crate::tenant_store::TenantStore;

const KV_TTL_SECONDS: u64 = 30 * 24 * 3600;
/// A PEM RSA key is a few hundred bytes; anything much larger is not one.
const MAX_PEM_BYTES: usize = 16 * 1024;

thread_local! {
    static MEMORY: RefCell<HashMap<String, InstallKey>> = RefCell::new(HashMap::new());
}

/// The key for `kid`, which the caller has validated (`jwt::validate_key_id`).
pub async fn install_key(
    keys_url: &HttpsUrl,
    kid: &str,
    store: &TenantStore,
) -> Result<InstallKey, AppError> {
    if let Some(key) = MEMORY.with(|m| m.borrow().get(kid).cloned()) {
        return Ok(key);
    }
    let kv_key = format!("install-key/{kid}");
    let cached = store.kv().get(&kv_key).text().await.ok().flatten();
    let (key, fetched_pem) = match cached.and_then(|pem| InstallKey::from_pem(&pem).ok()) {
        Some(key) => (key, None),
        None => {
            let pem = fetch_pem(keys_url, kid).await?;
            let key = InstallKey::from_pem(&pem).map_err(|e| key_server_down(&e))?;
            (key, Some(pem))
        }
    };
    if let Some(pem) = fetched_pem {
        // Best effort: a failed cache write only costs a refetch on the next cold isolate.
        if let Ok(put) = store.kv().put(&kv_key, pem) {
            let _ = put.expiration_ttl(KV_TTL_SECONDS).execute().await;
        }
    }
    MEMORY.with(|m| m.borrow_mut().insert(kid.to_owned(), key.clone()));
    Ok(key)
}

async fn fetch_pem(keys_url: &HttpsUrl, kid: &str) -> Result<String, AppError> {
    let url = keys_url.join(&format!("/{kid}"));
    let mut init = RequestInit::new();
    init.with_method(Method::Get);
    let request =
        Request::new_with_init(&url, &init).map_err(|e| key_server_down(&e.to_string()))?;
    let mut response = Fetch::Request(request)
        .send()
        .await
        .map_err(|e| key_server_down(&e.to_string()))?;
    match response.status_code() {
        200 => {}
        404 => return Err(AuthError::KeyIdUnknown.into()),
        status => return Err(key_server_down(&format!("status {status}"))),
    }
    let body = response
        .bytes()
        .await
        .map_err(|e| key_server_down(&e.to_string()))?;
    if body.len() > MAX_PEM_BYTES {
        return Err(key_server_down("oversized key"));
    }
    String::from_utf8(body).map_err(|_| key_server_down("key is not UTF-8"))
}

fn key_server_down(detail: &str) -> AppError {
    worker::console_error!("install key server: {detail}");
    AppError::Unavailable {
        code: "install_keys_unavailable",
        message: "the install-keys server could not be reached; retry later".into(),
    }
}
