//! Response helpers: the one place an [`AppError`] becomes an HTTP response.

use serde::Serialize;
use worker::{Headers, Request, Response, Result};

use crate::error::AppError;

/// A JSON response with `status` and extra headers.
pub fn json<T: Serialize>(status: u16, value: &T, headers: &[(&str, &str)]) -> Result<Response> {
    let mut response = Response::from_json(value)?.with_status(status);
    let h = response.headers_mut();
    for (name, value) in headers {
        h.set(name, value)?;
    }
    Ok(response)
}

/// The error's status, headers and `{"error", "message"}` body.
pub fn error(err: &AppError) -> Result<Response> {
    let headers = Headers::new();
    headers.set("Cache-Control", "no-store")?;
    for (name, value) in err.headers() {
        headers.set(name, &value)?;
    }
    Ok(Response::from_json(&err.body())?
        .with_status(err.status())
        .with_headers(headers))
}

/// The request body, refused with 413 past `limit` bytes (by `Content-Length` before reading,
/// and by the bytes actually read).
pub async fn read_body_capped(
    req: &mut Request,
    limit: usize,
) -> std::result::Result<Vec<u8>, AppError> {
    let declared = req
        .headers()
        .get("Content-Length")
        .ok()
        .flatten()
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(AppError::PayloadTooLarge { limit });
    }
    let body = req.bytes().await.map_err(|e| AppError::BadRequest {
        code: "unreadable_body",
        message: format!("the body could not be read: {e}"),
    })?;
    if body.len() > limit {
        return Err(AppError::PayloadTooLarge { limit });
    }
    Ok(body)
}

/// `204 No Content`.
pub fn no_content() -> Result<Response> {
    Ok(Response::empty()?.with_status(204))
}
