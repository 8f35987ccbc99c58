//! The worker's configuration: read once from `[vars]` into a typed, validated [`Config`].
//!
//! Covers the rules each setting must satisfy and their defaults. Leaves out where the values come
//! from: the runtime glue hands [`Config::from_lookup`] a function that reads a variable, so every
//! rule is unit-tested natively without a `worker::Env`.

use std::fmt;

use crate::gating::reconcile::{Schedule, DEFAULT_HORIZON_HOURS, DEFAULT_SCHEDULE};
use crate::https_url::HttpsUrl;

/// Default `APP_KEY`: also the Connect app key Jira stores the tenant's install under.
pub const DEFAULT_APP_KEY: &str = "deployment-gating";
pub const DEFAULT_APP_NAME: &str = "Deployment Gating";
pub const DEFAULT_TENANT_HOSTS: &str = "*.atlassian.net, *.jira-dev.com";
pub const DEFAULT_INSTALL_KEYS_URL: &str = "https://connect-install-keys.atlassian.com";
pub const DEFAULT_VENDOR_NAME: &str = "Deployment Gating";
pub const DEFAULT_VENDOR_URL: &str = "https://github.com/deployment-gating";

/// Long enough to fold a burst of callbacks into one frame, short against a human's attention.
const DEFAULT_STREAM_COALESCE_MS: u32 = 50;
const MAX_STREAM_COALESCE_MS: u32 = 5_000;

/// The seed's key rule (`^[a-zA-Z0-9-]+$`), with the 64-character bound Atlassian applies.
const APP_KEY_MAX_LEN: usize = 64;

/// The validated settings of one worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub app_key: AppKey,
    pub app_name: String,
    /// `None`: the app's base URL is the origin of each request (handy under `wrangler dev`).
    pub base_url: Option<HttpsUrl>,
    pub tenant_hosts: Vec<HostPattern>,
    pub install_keys_url: HttpsUrl,
    pub vendor_name: String,
    pub vendor_url: HttpsUrl,
    /// When the reconciler asks Jira about gates still awaiting.
    pub reconcile: Schedule,
    /// The live stream's coalescing window: updates within it reach a socket as one frame.
    pub stream_coalesce_ms: u32,
}

/// A setting that breaks its rule. Names the variable so an operator can fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub setting: &'static str,
    pub reason: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid setting {}: {}", self.setting, self.reason)
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// Builds the configuration from a variable lookup. A missing or blank variable takes its
    /// default; a present one must satisfy its rule.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let read = |name: &str| {
            lookup(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let app_key = AppKey::parse(&read("APP_KEY").unwrap_or_else(|| DEFAULT_APP_KEY.into()))
            .map_err(|reason| ConfigError {
                setting: "APP_KEY",
                reason,
            })?;
        let app_name = text_setting("APP_NAME", read("APP_NAME"), DEFAULT_APP_NAME)?;
        let base_url = read("BASE_URL")
            .map(|raw| url_setting("BASE_URL", &raw))
            .transpose()?;
        let tenant_hosts =
            HostPattern::parse_list(&read("TENANT_HOSTS").unwrap_or(DEFAULT_TENANT_HOSTS.into()))
                .map_err(|reason| ConfigError {
                setting: "TENANT_HOSTS",
                reason,
            })?;
        let install_keys_url = url_setting(
            "INSTALL_KEYS_URL",
            &read("INSTALL_KEYS_URL").unwrap_or(DEFAULT_INSTALL_KEYS_URL.into()),
        )?;
        let vendor_name = text_setting("VENDOR_NAME", read("VENDOR_NAME"), DEFAULT_VENDOR_NAME)?;
        let vendor_url = url_setting(
            "VENDOR_URL",
            &read("VENDOR_URL").unwrap_or(DEFAULT_VENDOR_URL.into()),
        )?;
        let horizon = match read("RECONCILE_HORIZON_HOURS") {
            None => DEFAULT_HORIZON_HOURS,
            Some(raw) => raw.parse().map_err(|_| ConfigError {
                setting: "RECONCILE_HORIZON_HOURS",
                reason: "must be a whole number of hours".into(),
            })?,
        };
        let reconcile = Schedule::parse(
            &read("RECONCILE_SCHEDULE").unwrap_or(DEFAULT_SCHEDULE.into()),
            horizon,
        )
        .map_err(|reason| ConfigError {
            setting: if reason.contains("horizon") {
                "RECONCILE_HORIZON_HOURS"
            } else {
                "RECONCILE_SCHEDULE"
            },
            reason,
        })?;
        let stream_coalesce_ms = match read("STREAM_COALESCE_MS") {
            None => DEFAULT_STREAM_COALESCE_MS,
            Some(raw) => raw
                .parse()
                .ok()
                .filter(|ms| *ms <= MAX_STREAM_COALESCE_MS)
                .ok_or_else(|| ConfigError {
                    setting: "STREAM_COALESCE_MS",
                    reason: format!(
                        "must be a whole number of milliseconds, 0 to {MAX_STREAM_COALESCE_MS}"
                    ),
                })?,
        };
        Ok(Config {
            app_key,
            app_name,
            base_url,
            tenant_hosts,
            install_keys_url,
            vendor_name,
            vendor_url,
            reconcile,
            stream_coalesce_ms,
        })
    }
}

fn url_setting(setting: &'static str, raw: &str) -> Result<HttpsUrl, ConfigError> {
    HttpsUrl::parse(raw).map_err(|reason| ConfigError { setting, reason })
}

/// Display text goes into the descriptor; Jira shows at most 255 characters of a name.
fn text_setting(
    setting: &'static str,
    value: Option<String>,
    default: &str,
) -> Result<String, ConfigError> {
    let value = value.unwrap_or_else(|| default.to_owned());
    if value.chars().count() > 255 || value.chars().any(char::is_control) {
        return Err(ConfigError {
            setting,
            reason: "must be at most 255 characters with no control characters".into(),
        });
    }
    Ok(value)
}

/// A Connect app key: `^[a-zA-Z0-9-]+$`, 1 to 64 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppKey(String);

impl AppKey {
    pub fn parse(raw: &str) -> Result<Self, String> {
        if raw.is_empty() || raw.len() > APP_KEY_MAX_LEN {
            return Err(format!("must be 1 to {APP_KEY_MAX_LEN} characters"));
        }
        if !raw.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Err("may contain only letters, digits and dashes (^[a-zA-Z0-9-]+$)".into());
        }
        Ok(AppKey(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// One entry of `TENANT_HOSTS`: which Jira sites may install the app.
///
/// `example.atlassian.net` matches that host; `*.atlassian.net` matches any host below it (not the
/// bare domain). Sites must be https, except an entry written `http://<loopback host>`, which a test
/// uses to let a loopback fake Jira install over http.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPattern {
    /// Lower-case; for a wildcard, the suffix including its leading dot (`.atlassian.net`).
    host: String,
    wildcard: bool,
    allow_http: bool,
}

impl HostPattern {
    pub fn parse_list(raw: &str) -> Result<Vec<Self>, String> {
        let patterns = raw
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(Self::parse)
            .collect::<Result<Vec<_>, _>>()?;
        if patterns.is_empty() {
            return Err("must name at least one host pattern".into());
        }
        Ok(patterns)
    }

    pub fn parse(raw: &str) -> Result<Self, String> {
        let (allow_http, rest) = match raw.strip_prefix("http://") {
            Some(rest) => (true, rest),
            None => (false, raw.strip_prefix("https://").unwrap_or(raw)),
        };
        let rest = rest.to_ascii_lowercase();
        let (wildcard, host) = match rest.strip_prefix("*.") {
            Some(suffix) => (true, suffix.to_owned()),
            None => (false, rest),
        };
        if !is_hostname(&host) {
            return Err(format!("{raw:?} is not a host name or *.domain pattern"));
        }
        if allow_http && (wildcard || !crate::https_url::is_loopback_host(&host)) {
            return Err(format!("{raw:?}: http is allowed only for a loopback host"));
        }
        if wildcard && !host.contains('.') {
            return Err(format!("{raw:?}: a wildcard needs a domain with a dot"));
        }
        let host = if wildcard { format!(".{host}") } else { host };
        Ok(HostPattern {
            host,
            wildcard,
            allow_http,
        })
    }

    /// The pattern as a CSP source (`frame-ancestors`): the sites that may frame the app's pages.
    pub fn csp_source(&self) -> String {
        let scheme = if self.allow_http { "http" } else { "https" };
        let host = if self.wildcard {
            format!("*{}", self.host)
        } else {
            self.host.clone()
        };
        // Loopback test sites listen on arbitrary ports.
        let port = if self.allow_http { ":*" } else { "" };
        format!("{scheme}://{host}{port}")
    }

    /// Whether a site at `scheme://host` is allowed. `host` is compared without its port.
    pub fn matches(&self, scheme: &str, host: &str) -> bool {
        let scheme_ok = scheme == "https" || (scheme == "http" && self.allow_http);
        let host = host.to_ascii_lowercase();
        let host_ok = if self.wildcard {
            host.len() > self.host.len() && host.ends_with(&self.host)
        } else {
            host == self.host
        };
        scheme_ok && host_ok
    }
}

/// Letters, digits, dashes and dots, as DNS names and IPv4 addresses are written.
fn is_hostname(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|name| vars.get(name).cloned())
    }

    fn failing_setting(vars: &[(&str, &str)]) -> &'static str {
        config(vars)
            .expect_err("configuration should be refused")
            .setting
    }

    #[test]
    fn defaults_apply_when_nothing_is_set() {
        let c = config(&[]).unwrap();
        assert_eq!(c.app_key.as_str(), "deployment-gating");
        assert_eq!(c.app_name, DEFAULT_APP_NAME);
        assert_eq!(c.base_url, None);
        assert_eq!(
            c.install_keys_url.as_str(),
            "https://connect-install-keys.atlassian.com"
        );
        assert_eq!(c.tenant_hosts.len(), 2);
        assert!(c.tenant_hosts[0].matches("https", "acme.atlassian.net"));
        assert!(c.tenant_hosts[1].matches("https", "acme.jira-dev.com"));
    }

    #[test]
    fn blank_values_take_the_default() {
        let c = config(&[("APP_KEY", "  "), ("BASE_URL", "")]).unwrap();
        assert_eq!(c.app_key.as_str(), DEFAULT_APP_KEY);
        assert_eq!(c.base_url, None);
    }

    #[test]
    fn app_key_must_follow_the_module_key_rule() {
        assert_eq!(failing_setting(&[("APP_KEY", "has space")]), "APP_KEY");
        assert_eq!(failing_setting(&[("APP_KEY", "under_score")]), "APP_KEY");
        assert_eq!(failing_setting(&[("APP_KEY", "dot.ted")]), "APP_KEY");
        assert_eq!(failing_setting(&[("APP_KEY", "ünïcode")]), "APP_KEY");
        assert_eq!(failing_setting(&[("APP_KEY", &"a".repeat(65))]), "APP_KEY");
        let c = config(&[("APP_KEY", &"a-B-9".repeat(12))]).unwrap();
        assert_eq!(c.app_key.as_str().len(), 60);
    }

    #[test]
    fn base_url_must_be_absolute_https_or_loopback_http() {
        assert_eq!(failing_setting(&[("BASE_URL", "example.com")]), "BASE_URL");
        assert_eq!(failing_setting(&[("BASE_URL", "/relative")]), "BASE_URL");
        assert_eq!(
            failing_setting(&[("BASE_URL", "http://example.com")]),
            "BASE_URL"
        );
        assert_eq!(
            failing_setting(&[("BASE_URL", "ftp://x.example")]),
            "BASE_URL"
        );
        assert_eq!(
            failing_setting(&[("BASE_URL", "https://x.example/?q=1")]),
            "BASE_URL"
        );
        let c = config(&[("BASE_URL", "https://gates.example.com/app/")]).unwrap();
        assert_eq!(
            c.base_url.unwrap().as_str(),
            "https://gates.example.com/app"
        );
        let c = config(&[("BASE_URL", "http://127.0.0.1:8787")]).unwrap();
        assert_eq!(c.base_url.unwrap().as_str(), "http://127.0.0.1:8787");
    }

    #[test]
    fn install_keys_url_follows_the_url_rule() {
        assert_eq!(
            failing_setting(&[("INSTALL_KEYS_URL", "http://keys.example.com")]),
            "INSTALL_KEYS_URL"
        );
        let c = config(&[("INSTALL_KEYS_URL", "http://localhost:9000/keys/")]).unwrap();
        assert_eq!(c.install_keys_url.as_str(), "http://localhost:9000/keys");
    }

    #[test]
    fn tenant_hosts_match_subdomains_not_lookalikes() {
        let c = config(&[("TENANT_HOSTS", "*.atlassian.net,jira.example.com")]).unwrap();
        let allowed = |scheme, host| c.tenant_hosts.iter().any(|p| p.matches(scheme, host));
        assert!(allowed("https", "acme.atlassian.net"));
        assert!(allowed("https", "ACME.Atlassian.NET"));
        assert!(allowed("https", "jira.example.com"));
        assert!(!allowed("https", "atlassian.net"));
        assert!(!allowed("https", "evilatlassian.net"));
        assert!(!allowed("https", "acme.atlassian.net.evil.com"));
        assert!(!allowed("http", "acme.atlassian.net"));
        assert!(!allowed("https", "sub.jira.example.com"));
    }

    #[test]
    fn tenant_hosts_allow_http_only_for_loopback() {
        let c = config(&[("TENANT_HOSTS", "http://127.0.0.1")]).unwrap();
        assert!(c.tenant_hosts[0].matches("http", "127.0.0.1"));
        assert!(!c.tenant_hosts[0].matches("http", "127.0.0.2"));
        assert_eq!(
            failing_setting(&[("TENANT_HOSTS", "http://jira.example.com")]),
            "TENANT_HOSTS"
        );
        assert_eq!(
            failing_setting(&[("TENANT_HOSTS", "http://*.example.com")]),
            "TENANT_HOSTS"
        );
        assert_eq!(
            failing_setting(&[("TENANT_HOSTS", "*.com/evil")]),
            "TENANT_HOSTS"
        );
        assert_eq!(failing_setting(&[("TENANT_HOSTS", " , ")]), "TENANT_HOSTS");
        assert_eq!(
            failing_setting(&[("TENANT_HOSTS", "*.net")]),
            "TENANT_HOSTS"
        );
    }

    #[test]
    fn app_name_must_be_printable() {
        assert_eq!(failing_setting(&[("APP_NAME", "bad\nname")]), "APP_NAME");
        assert_eq!(
            failing_setting(&[("APP_NAME", &"n".repeat(256))]),
            "APP_NAME"
        );
    }

    #[test]
    fn host_patterns_become_csp_sources() {
        let sources: Vec<String> =
            HostPattern::parse_list("*.atlassian.net, jira.example.com, http://127.0.0.1")
                .unwrap()
                .iter()
                .map(HostPattern::csp_source)
                .collect();
        assert_eq!(
            sources,
            [
                "https://*.atlassian.net",
                "https://jira.example.com",
                "http://127.0.0.1:*"
            ]
        );
    }

    #[test]
    fn stream_coalescing_window_is_validated() {
        assert_eq!(config(&[]).unwrap().stream_coalesce_ms, 50);
        assert_eq!(
            config(&[("STREAM_COALESCE_MS", "0")])
                .unwrap()
                .stream_coalesce_ms,
            0
        );
        for bad in ["-1", "5001", "fast", "1.5"] {
            assert_eq!(
                failing_setting(&[("STREAM_COALESCE_MS", bad)]),
                "STREAM_COALESCE_MS"
            );
        }
    }

    #[test]
    fn reconcile_settings_are_validated() {
        assert_eq!(config(&[]).unwrap().reconcile, Schedule::default());
        assert_eq!(
            failing_setting(&[("RECONCILE_SCHEDULE", "soon")]),
            "RECONCILE_SCHEDULE"
        );
        assert_eq!(
            failing_setting(&[("RECONCILE_HORIZON_HOURS", "-1")]),
            "RECONCILE_HORIZON_HOURS"
        );
        assert_eq!(
            failing_setting(&[("RECONCILE_HORIZON_HOURS", "0")]),
            "RECONCILE_HORIZON_HOURS"
        );
        assert!(config(&[
            ("RECONCILE_SCHEDULE", "1,2"),
            ("RECONCILE_HORIZON_HOURS", "1")
        ])
        .is_ok());
    }

    #[test]
    fn the_error_names_the_setting() {
        let err = config(&[("BASE_URL", "http://example.com")]).unwrap_err();
        assert!(err.to_string().contains("BASE_URL"), "{err}");
    }
}
