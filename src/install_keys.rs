//! Atlassian's install-signing public keys, fetched by `kid` from `INSTALL_KEYS_URL`, and the
//! RS256 check of a signed install with the runtime's WebCrypto (no RSA code in the worker).
//!
//! A key never changes under its kid, so it is cached without expiry in the isolate's memory (as
//! an imported `CryptoKey`) and, for cold isolates, in KV (`install-key/<kid>`, 30 days). A key
//! server that is down or answers garbage gives 503 so Jira retries the lifecycle hook; a 404
//! means the kid is not Atlassian's.

use std::cell::RefCell;
use std::collections::HashMap;

use web_sys::{CryptoKey, SubtleCrypto, WorkerGlobalScope};
use worker::js_sys::{Array, Object, Reflect, Uint8Array};
use worker::wasm_bindgen::{JsCast, JsValue};
use worker::wasm_bindgen_futures::JsFuture;
use worker::{Fetch, Method, Request, RequestInit};

use crate::connect::jwt::{spki_der_from_pem, AuthError, SignedParts};
use crate::error::AppError;
use crate::https_url::HttpsUrl;
use crate::tenant_store::TenantStore;

const KV_TTL_SECONDS: u64 = 30 * 24 * 3600;
/// A PEM RSA key is a few hundred bytes; anything much larger is not one.
const MAX_PEM_BYTES: usize = 16 * 1024;

thread_local! {
    static MEMORY: RefCell<HashMap<String, CryptoKey>> = RefCell::new(HashMap::new());
}

/// The key for `kid`, which the caller has validated (`jwt::validate_key_id`).
pub async fn install_key(
    keys_url: &HttpsUrl,
    kid: &str,
    store: &TenantStore,
) -> Result<CryptoKey, AppError> {
    if let Some(key) = MEMORY.with(|m| m.borrow().get(kid).cloned()) {
        return Ok(key);
    }
    let kv_key = format!("install-key/{kid}");
    let cached = store.kv().get(&kv_key).text().await.ok().flatten();
    let cached_key = match cached {
        Some(pem) => import_key(&pem).await.ok(),
        None => None,
    };
    let (key, fetched_pem) = match cached_key {
        Some(key) => (key, None),
        None => {
            let pem = fetch_pem(keys_url, kid).await?;
            let key = import_key(&pem).await.map_err(|e| key_server_down(&e))?;
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

/// Whether `parts` carry a valid RS256 signature by `key`.
pub async fn rs256_signature_valid(
    key: &CryptoKey,
    parts: &SignedParts<'_>,
) -> Result<bool, AppError> {
    let promise = subtle()?
        .verify_with_object_and_u8_array_and_u8_array(
            &algorithm()?,
            key,
            parts.signature,
            parts.signing_input,
        )
        .map_err(js_error)?;
    let verdict = JsFuture::from(promise).await.map_err(js_error)?;
    Ok(verdict.as_bool() == Some(true))
}

/// Imports a PEM SubjectPublicKeyInfo as an RSASSA-PKCS1-v1_5 / SHA-256 verification key.
async fn import_key(pem: &str) -> Result<CryptoKey, String> {
    let der = spki_der_from_pem(pem)?;
    let usages = Array::of1(&JsValue::from_str("verify"));
    let promise = subtle()
        .map_err(|e| format!("{e:?}"))?
        .import_key_with_object(
            "spki",
            &Uint8Array::from(der.as_slice()),
            &algorithm().map_err(|e| format!("{e:?}"))?,
            false,
            &usages,
        )
        .map_err(|e| format!("not an RSA public key: {e:?}"))?;
    JsFuture::from(promise)
        .await
        .map(|key| key.unchecked_into::<CryptoKey>())
        .map_err(|e| format!("not an RSA public key: {e:?}"))
}

fn algorithm() -> Result<Object, AppError> {
    let algorithm = Object::new();
    for (name, value) in [("name", "RSASSA-PKCS1-v1_5"), ("hash", "SHA-256")] {
        Reflect::set(&algorithm, &name.into(), &value.into()).map_err(js_error)?;
    }
    Ok(algorithm)
}

fn subtle() -> Result<SubtleCrypto, AppError> {
    let global: WorkerGlobalScope = worker::js_sys::global().unchecked_into();
    Ok(global.crypto().map_err(js_error)?.subtle())
}

fn js_error(e: JsValue) -> AppError {
    AppError::Internal(format!("WebCrypto: {e:?}"))
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
