//! Response helpers: the one place an [`AppError`] becomes an HTTP response.

use serde::Serialize;
use worker::{Headers, Response, Result};

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
