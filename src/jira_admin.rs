//! Token management from inside Jira is for site administrators only. A context JWT proves who
//! the user is (`sub`), not what they may do, and every user of the site can get one from any of
//! the app's pages; so the app asks the tenant's Jira, with its own signed token, whether that
//! account holds the global `ADMINISTER` permission (Connect apps may ask this for any user).

use serde_json::json;
use worker::Method;

use crate::app_context::AppContext;
use crate::connect_auth::Verified;
use crate::error::AppError;
use crate::jira_client::JiraClient;

pub const PERMISSIONS_CHECK_PATH: &str = "/rest/api/3/permissions/check";

pub async fn require_site_admin(verified: &Verified, ctx: &AppContext) -> Result<(), AppError> {
    let not_admin = || AppError::Forbidden {
        code: "jira_admin_required",
        message: "managing API tokens needs the Jira administrator permission".into(),
    };
    let account = verified.claims.subject.as_deref().ok_or_else(not_admin)?;
    let client = JiraClient::new(ctx.config.app_key.as_str(), &verified.tenant);
    let body = json!({"accountId": account, "globalPermissions": ["ADMINISTER"]});
    let answer = client
        .send(Method::Post, PERMISSIONS_CHECK_PATH, Some(&body), ctx.now)
        .await?;
    match answer.status {
        200 if grants_administer(&answer.body) => Ok(()),
        200 => Err(not_admin()),
        401 | 403 => Err(AppError::BadGateway {
            code: "jira_refused",
            message: format!(
                "Jira refused the app's permission check ({})",
                answer.status
            ),
        }),
        status => Err(AppError::BadGateway {
            code: "jira_error",
            message: format!("Jira answered the permission check with {status}"),
        }),
    }
}

/// Jira's answer lists the requested global permissions the account holds.
fn grants_administer(body: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| {
            v["globalPermissions"]
                .as_array()
                .map(|p| p.iter().any(|p| p == "ADMINISTER"))
        })
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::grants_administer;

    #[test]
    fn only_a_listed_administer_permission_counts() {
        assert!(grants_administer(
            br#"{"globalPermissions":["ADMINISTER"],"projectPermissions":[]}"#
        ));
        assert!(!grants_administer(br#"{"globalPermissions":[]}"#));
        assert!(!grants_administer(br#"{"globalPermissions":"ADMINISTER"}"#));
        assert!(!grants_administer(b"<html>"));
    }
}
