//! What every handler knows beyond the request: the validated configuration, the app's base
//! URL, the time the request arrived, and (once authenticated) the tenant, for the request log.

use std::cell::RefCell;

use chrono::{DateTime, SecondsFormat, Utc};

use crate::config::Config;
use crate::https_url::HttpsUrl;

pub struct AppContext {
    pub config: Config,
    /// `BASE_URL`, or the request's origin when it is unset.
    pub base_url: HttpsUrl,
    /// Read once at the edge; protocol code takes it as a parameter.
    pub now: DateTime<Utc>,
    tenant: RefCell<Option<String>>,
}

impl AppContext {
    pub fn new(config: Config, base_url: HttpsUrl, now: DateTime<Utc>) -> Self {
        AppContext {
            config,
            base_url,
            now,
            tenant: RefCell::new(None),
        }
    }

    pub fn now_rfc3339(&self) -> String {
        self.now.to_rfc3339_opts(SecondsFormat::Millis, true)
    }

    /// Records which tenant the request was for (a clientKey, never a secret).
    pub fn set_tenant(&self, client_key: &str) {
        *self.tenant.borrow_mut() = Some(client_key.to_owned());
    }

    pub fn tenant(&self) -> Option<String> {
        self.tenant.borrow().clone()
    }
}
