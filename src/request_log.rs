//! One structured JSON log line per request.
//!
//! Records what an operator needs to follow a request (method, path, status, duration, tenant)
//! and nothing a client sent as a credential: the query string, which may carry `?jwt=`, and all
//! headers are left out by construction.

use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct RequestLog<'a> {
    pub method: &'a str,
    /// The path only; never the query string.
    pub path: &'a str,
    pub status: u16,
    pub duration_ms: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant: Option<&'a str>,
    /// The error code, or an internal error's detail (which never contains request secrets).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl RequestLog<'_> {
    pub fn to_line(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{\"log\":\"unserialisable\"}".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_is_one_json_object_without_absent_fields() {
        let line = RequestLog {
            method: "GET",
            path: "/healthz",
            status: 200,
            duration_ms: 1.5,
            tenant: None,
            error: None,
        }
        .to_line();
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["status"], 200);
        assert!(v.get("tenant").is_none());
        assert!(!line.contains('\n'));
    }
}
