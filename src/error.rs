//! The worker's one error type and its mapping to HTTP.
//!
//! Every handler returns `Result<_, AppError>`; only [`AppError::status`] and [`AppError::body`]
//! decide what a client sees. Internal detail (`Internal`) is logged by the edge and answered
//! opaquely, so storage or runtime messages never leak into a response.

use serde::Serialize;

use crate::config::ConfigError;
use crate::connect::jwt::AuthError;
use crate::connect::lifecycle::PayloadError;
use crate::gating::callback::CallbackError;

#[derive(Debug)]
pub enum AppError {
    /// No route for the path.
    NotFound,
    /// The path exists but not for this method; `allow` lists the methods that do.
    MethodNotAllowed { allow: Vec<&'static str> },
    /// A `[vars]` setting breaks its rule: every request fails until the operator fixes it.
    InvalidConfig(ConfigError),
    /// The request is malformed; `code` is stable, `message` says what to fix.
    BadRequest { code: &'static str, message: String },
    /// A body field breaks its rule.
    InvalidPayload(PayloadError),
    /// The body is larger than the endpoint accepts.
    PayloadTooLarge { limit: usize },
    /// The request's token failed a check (401), or is good but not allowed here (403).
    Auth(AuthError),
    /// The bearer token is missing, malformed, unknown or revoked.
    InvalidBearer,
    /// The bearer token lacks the scope the endpoint needs.
    InsufficientScope { needed: &'static str },
    /// The caller is who they say but may not do this (`code` says why).
    Forbidden { code: &'static str, message: String },
    /// A dependency is down; the client should retry (Jira does on 503).
    Unavailable { code: &'static str, message: String },
    /// The request is well formed but the tenant's Jira would not take it.
    Unprocessable { code: &'static str, message: String },
    /// The tenant's Jira refused or failed a call the app made for this request.
    BadGateway { code: &'static str, message: String },
    /// Something on our side failed; the detail goes to the log only.
    Internal(String),
}

/// The JSON body of every error response.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct ErrorBody {
    pub error: &'static str,
    pub message: String,
}

impl AppError {
    pub fn status(&self) -> u16 {
        match self {
            AppError::NotFound => 404,
            AppError::MethodNotAllowed { .. } => 405,
            AppError::BadRequest { .. } | AppError::InvalidPayload(_) => 400,
            AppError::PayloadTooLarge { .. } => 413,
            AppError::Auth(e) => e.status(),
            AppError::InvalidBearer => 401,
            AppError::InsufficientScope { .. } | AppError::Forbidden { .. } => 403,
            AppError::Unavailable { .. } => 503,
            AppError::BadGateway { .. } => 502,
            AppError::Unprocessable { .. } => 422,
            AppError::InvalidConfig(_) | AppError::Internal(_) => 500,
        }
    }

    pub fn body(&self) -> ErrorBody {
        let (error, message) = match self {
            AppError::NotFound => ("not_found", "no such resource".to_owned()),
            AppError::MethodNotAllowed { allow } => (
                "method_not_allowed",
                format!("this resource allows {}", allow.join(", ")),
            ),
            AppError::InvalidConfig(e) => ("invalid_configuration", e.to_string()),
            AppError::BadRequest { code, message }
            | AppError::Forbidden { code, message }
            | AppError::Unavailable { code, message }
            | AppError::BadGateway { code, message }
            | AppError::Unprocessable { code, message } => (*code, message.clone()),
            AppError::InvalidPayload(e) => {
                ("invalid_payload", format!("{}: {}", e.field, e.reason))
            }
            AppError::PayloadTooLarge { limit } => (
                "payload_too_large",
                format!("the body must be at most {limit} bytes"),
            ),
            AppError::Auth(e) => (e.code(), e.message()),
            AppError::InvalidBearer => (
                "invalid_token",
                "an active API token is required (Authorization: Bearer <token>)".to_owned(),
            ),
            AppError::InsufficientScope { needed } => (
                "insufficient_scope",
                format!("this API token lacks the {needed} scope"),
            ),
            AppError::Internal(_) => (
                "internal_error",
                "the server failed to handle the request".to_owned(),
            ),
        };
        ErrorBody { error, message }
    }

    /// Extra headers the status requires (`Allow` on a 405).
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        match self {
            AppError::MethodNotAllowed { allow } => vec![("Allow", allow.join(", "))],
            AppError::Auth(e) if e.status() == 401 => vec![("WWW-Authenticate", "JWT".to_owned())],
            AppError::InvalidBearer => vec![("WWW-Authenticate", "Bearer".to_owned())],
            AppError::Unavailable { .. } => vec![("Retry-After", "5".to_owned())],
            _ => Vec::new(),
        }
    }

    /// What the request log records: the detail of an internal error, the code otherwise.
    pub fn log_detail(&self) -> String {
        match self {
            AppError::Internal(detail) => detail.clone(),
            other => other.body().error.to_owned(),
        }
    }
}

impl From<AuthError> for AppError {
    fn from(e: AuthError) -> Self {
        AppError::Auth(e)
    }
}

impl From<CallbackError> for AppError {
    fn from(e: CallbackError) -> Self {
        AppError::InvalidPayload(PayloadError {
            field: e.field,
            reason: e.reason,
        })
    }
}

impl From<PayloadError> for AppError {
    fn from(e: PayloadError) -> Self {
        AppError::InvalidPayload(e)
    }
}

impl From<ConfigError> for AppError {
    fn from(e: ConfigError) -> Self {
        AppError::InvalidConfig(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_detail_stays_out_of_the_body() {
        let e = AppError::Internal("kv put failed: secret=abc".into());
        assert_eq!(e.status(), 500);
        assert!(!e.body().message.contains("secret"));
        assert!(e.log_detail().contains("kv put failed"));
    }

    #[test]
    fn method_not_allowed_names_the_allowed_methods() {
        let e = AppError::MethodNotAllowed {
            allow: vec!["GET", "HEAD"],
        };
        assert_eq!(e.status(), 405);
        assert_eq!(e.headers(), vec![("Allow", "GET, HEAD".to_owned())]);
    }

    #[test]
    fn config_errors_name_the_setting() {
        let e = AppError::from(ConfigError {
            setting: "BASE_URL",
            reason: "must use https".into(),
        });
        assert_eq!(e.status(), 500);
        assert_eq!(e.body().error, "invalid_configuration");
        assert!(e.body().message.contains("BASE_URL"));
    }
}
