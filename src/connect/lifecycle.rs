//! Lifecycle payloads (`installed`, `uninstalled`, `enabled`, `disabled`) parsed into typed values.
//!
//! Covers the fields the app keeps and their rules: the app key, `clientKey`, `sharedSecret`
//! (installs only), a `baseUrl` that is https and on an allowed host, `displayUrl`,
//! `productType`, and an `eventType` that matches the hook it was sent to. Unknown fields are
//! tolerated, as Jira adds fields over time. Leaves out verifying the request's signature
//! (`jwt::verify_install`) and storing the tenant.

use serde::Deserialize;

use super::credentials::{ClientKey, SharedSecret};
use crate::config::HostPattern;
use crate::https_url::HttpsUrl;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LifecycleEvent {
    Installed,
    Uninstalled,
    Enabled,
    Disabled,
}

impl LifecycleEvent {
    pub fn as_str(self) -> &'static str {
        match self {
            LifecycleEvent::Installed => "installed",
            LifecycleEvent::Uninstalled => "uninstalled",
            LifecycleEvent::Enabled => "enabled",
            LifecycleEvent::Disabled => "disabled",
        }
    }
}

/// A lifecycle payload that passed every field rule.
#[derive(Debug, Clone)]
pub struct LifecyclePayload {
    pub event: LifecycleEvent,
    pub client_key: ClientKey,
    /// Present (and required) on `installed` only: the other hooks never change the secret.
    pub shared_secret: Option<SharedSecret>,
    pub base_url: HttpsUrl,
    pub display_url: Option<HttpsUrl>,
    pub product_type: String,
}

/// A field that breaks its rule; the message names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayloadError {
    pub field: &'static str,
    pub reason: String,
}

impl PayloadError {
    fn new(field: &'static str, reason: impl Into<String>) -> Self {
        PayloadError {
            field,
            reason: reason.into(),
        }
    }
}

/// The wire form: every field optional so that a missing one is reported by name.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawPayload {
    key: Option<String>,
    client_key: Option<String>,
    shared_secret: Option<String>,
    base_url: Option<String>,
    display_url: Option<String>,
    product_type: Option<String>,
    event_type: Option<String>,
}

/// Parses and checks a payload sent to the `event` hook of the app `app_key`.
pub fn parse_payload(
    body: &[u8],
    event: LifecycleEvent,
    app_key: &str,
    tenant_hosts: &[HostPattern],
) -> Result<LifecyclePayload, PayloadError> {
    let raw: RawPayload = serde_json::from_slice(body).map_err(|e| {
        PayloadError::new(
            "body",
            format!("not a JSON object of the lifecycle shape: {e}"),
        )
    })?;
    let required = |field: &'static str, value: Option<String>| {
        value
            .filter(|v| !v.is_empty())
            .ok_or_else(|| PayloadError::new(field, "is required"))
    };

    if required("key", raw.key)? != app_key {
        return Err(PayloadError::new("key", "is not this app's key"));
    }
    let event_type = required("eventType", raw.event_type)?;
    if event_type != event.as_str() {
        return Err(PayloadError::new(
            "eventType",
            format!("must be {} at this hook", event.as_str()),
        ));
    }
    let client_key = ClientKey::parse(&required("clientKey", raw.client_key)?)
        .map_err(|r| PayloadError::new("clientKey", r))?;
    let shared_secret = match event {
        LifecycleEvent::Installed => Some(
            SharedSecret::parse(&required("sharedSecret", raw.shared_secret)?)
                .map_err(|r| PayloadError::new("sharedSecret", r))?,
        ),
        _ => None,
    };
    let base_url = parse_site_url(&required("baseUrl", raw.base_url)?, tenant_hosts)
        .map_err(|r| PayloadError::new("baseUrl", r))?;
    let display_url = raw
        .display_url
        .filter(|u| !u.is_empty())
        .map(|u| HttpsUrl::parse(&u).map_err(|r| PayloadError::new("displayUrl", r)))
        .transpose()?;
    let product_type = required("productType", raw.product_type)?;
    if product_type.len() > 64
        || !product_type
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        return Err(PayloadError::new(
            "productType",
            "must be a short product name such as jira",
        ));
    }
    Ok(LifecyclePayload {
        event,
        client_key,
        shared_secret,
        base_url,
        display_url,
        product_type,
    })
}

/// A Jira site URL on a host `TENANT_HOSTS` allows, so the app can never be pointed at an
/// arbitrary host.
fn parse_site_url(raw: &str, tenant_hosts: &[HostPattern]) -> Result<HttpsUrl, String> {
    let url = HttpsUrl::parse(raw)?;
    let parsed = url::Url::parse(url.as_str()).map_err(|e| e.to_string())?;
    let host = parsed.host_str().unwrap_or_default();
    if tenant_hosts
        .iter()
        .any(|p| p.matches(parsed.scheme(), host))
    {
        Ok(url)
    } else {
        Err(format!("host {host} is not allowed by TENANT_HOSTS"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn hosts() -> Vec<HostPattern> {
        HostPattern::parse_list("*.atlassian.net").unwrap()
    }

    fn payload(overrides: Value) -> Vec<u8> {
        let mut p = json!({
            "key": "deployment-gating",
            "clientKey": "0e50fccb-239d-4991-a5db-dc850ba3f236",
            "sharedSecret": "a-long-shared-secret-0123456789-abcdef",
            "baseUrl": "https://acme.atlassian.net",
            "displayUrl": "https://jira.acme.com",
            "productType": "jira",
            "description": "Atlassian JIRA at https://acme.atlassian.net",
            "serviceEntitlementNumber": "SEN-1",
            "eventType": "installed",
            "someFutureField": {"nested": true}
        });
        for (k, v) in overrides.as_object().unwrap() {
            if v.is_null() {
                p.as_object_mut().unwrap().remove(k);
            } else {
                p[k] = v.clone();
            }
        }
        serde_json::to_vec(&p).unwrap()
    }

    fn field_error(overrides: Value, event: LifecycleEvent) -> &'static str {
        parse_payload(&payload(overrides), event, "deployment-gating", &hosts())
            .expect_err("payload should be refused")
            .field
    }

    #[test]
    fn parses_an_install_and_tolerates_unknown_fields() {
        let p = parse_payload(
            &payload(json!({})),
            LifecycleEvent::Installed,
            "deployment-gating",
            &hosts(),
        )
        .unwrap();
        assert_eq!(
            p.client_key.as_str(),
            "0e50fccb-239d-4991-a5db-dc850ba3f236"
        );
        assert_eq!(p.base_url.as_str(), "https://acme.atlassian.net");
        assert!(p.shared_secret.is_some());
        assert_eq!(p.product_type, "jira");
    }

    #[test]
    fn names_each_missing_or_bad_field() {
        use LifecycleEvent::*;
        assert_eq!(
            field_error(json!({"clientKey": null}), Installed),
            "clientKey"
        );
        assert_eq!(
            field_error(json!({"clientKey": "a/b"}), Installed),
            "clientKey"
        );
        assert_eq!(
            field_error(json!({"sharedSecret": null}), Installed),
            "sharedSecret"
        );
        assert_eq!(
            field_error(json!({"sharedSecret": "short"}), Installed),
            "sharedSecret"
        );
        assert_eq!(field_error(json!({"baseUrl": null}), Installed), "baseUrl");
        assert_eq!(
            field_error(json!({"productType": null}), Installed),
            "productType"
        );
        assert_eq!(field_error(json!({"key": "other-app"}), Installed), "key");
        assert_eq!(
            field_error(json!({"eventType": "enabled"}), Installed),
            "eventType"
        );
        assert_eq!(
            field_error(json!({"displayUrl": "javascript:alert(1)"}), Installed),
            "displayUrl"
        );
        assert_eq!(field_error(json!({"clientKey": 5}), Installed), "body");
    }

    #[test]
    fn rejects_install_when_base_url_is_not_an_allowed_https_host() {
        use LifecycleEvent::Installed;
        for bad in [
            "http://acme.atlassian.net",
            "https://evil.example.com",
            "https://atlassian.net.evil.com",
            "https://acme.atlassian.net.evil.com",
            "https://169.254.169.254",
            "not a url",
        ] {
            assert_eq!(
                field_error(json!({"baseUrl": bad}), Installed),
                "baseUrl",
                "{bad}"
            );
        }
    }

    #[test]
    fn other_hooks_do_not_need_or_keep_the_secret() {
        let p = parse_payload(
            &payload(json!({"eventType": "uninstalled", "sharedSecret": null})),
            LifecycleEvent::Uninstalled,
            "deployment-gating",
            &hosts(),
        )
        .unwrap();
        assert!(p.shared_secret.is_none());
    }

    #[test]
    fn refuses_non_objects() {
        for body in [&b"[]"[..], b"null", b"", b"{", b"\xff\xfe"] {
            assert!(parse_payload(
                body,
                LifecycleEvent::Installed,
                "deployment-gating",
                &hosts()
            )
            .is_err());
        }
    }
}
