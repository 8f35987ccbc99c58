//! Calls from the app to a tenant's Jira, each signed with a Connect JWT (`connect::jwt::
//! sign_outbound`) whose `qsh` covers the method, the path relative to the site's base path, and
//! the query. Every outgoing call goes through [`JiraClient::send`].

use chrono::{DateTime, Utc};
use worker::{Fetch, Headers, Method, Request, RequestInit};

use crate::connect::jwt::sign_outbound;
use crate::connect::qsh::{qsh, RequestParts};
use crate::error::AppError;
use crate::https_url::HttpsUrl;
use crate::tenant::TenantRecord;

pub struct JiraClient<'a> {
    app_key: &'a str,
    tenant: &'a TenantRecord,
}

/// Jira's answer: status, `Retry-After` (seconds) when given, and the body.
pub struct JiraResponse {
    pub status: u16,
    pub retry_after: Option<u64>,
    pub body: Vec<u8>,
}

impl<'a> JiraClient<'a> {
    pub fn new(app_key: &'a str, tenant: &'a TenantRecord) -> Self {
        JiraClient { app_key, tenant }
    }

    /// Sends `method path_and_query` (relative to the site, starting with `/`) with an optional
    /// JSON body. A network failure is a 502; Jira's own statuses are returned for the caller
    /// to interpret.
    pub async fn send(
        &self,
        method: Method,
        path_and_query: &str,
        json_body: Option<&serde_json::Value>,
        now: DateTime<Utc>,
    ) -> Result<JiraResponse, AppError> {
        let secret = self
            .tenant
            .shared_secret
            .as_ref()
            .ok_or(AppError::BadGateway {
                code: "tenant_uninstalled",
                message: "the tenant has uninstalled the app".into(),
            })?;
        let site = HttpsUrl::parse(&self.tenant.base_url).map_err(AppError::Internal)?;
        let full_path = format!("{}{}", site.path(), path_and_query);
        let request_qsh = qsh(&RequestParts::new(method.as_ref(), &full_path, site.path()));
        let token = sign_outbound(self.app_key, secret, &request_qsh, now);

        let headers = Headers::new();
        let set = |name: &str, value: &str| headers.set(name, value).map_err(internal);
        set("Authorization", &format!("JWT {token}"))?;
        set("Accept", "application/json")?;
        let mut init = RequestInit::new();
        init.with_method(method);
        if let Some(body) = json_body {
            set("Content-Type", "application/json")?;
            init.with_body(Some(body.to_string().into()));
        }
        init.with_headers(headers);
        let url = format!("{}{}", site.origin(), full_path);
        let request = Request::new_with_init(&url, &init).map_err(internal)?;
        let mut response = Fetch::Request(request).send().await.map_err(|e| {
            worker::console_error!("jira call failed: {e}");
            AppError::BadGateway {
                code: "jira_unreachable",
                message: "the tenant's Jira could not be reached".into(),
            }
        })?;
        Ok(JiraResponse {
            status: response.status_code(),
            retry_after: response
                .headers()
                .get("Retry-After")
                .ok()
                .flatten()
                .and_then(|v| v.trim().parse().ok()),
            body: response.bytes().await.unwrap_or_default(),
        })
    }
}

fn internal(e: worker::Error) -> AppError {
    AppError::Internal(e.to_string())
}
