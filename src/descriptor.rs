//! The Atlassian Connect app descriptor served at `/atlassian-connect.json`.
//!
//! Covers the fields Jira reads to install a deployment-gating provider: authentication, lifecycle
//! hooks, API migrations, scopes, and the `jiraDeploymentGating` and `jiraDeploymentInfoProvider`
//! modules (the former exactly as `shared/seeds/jira-deployment-gating-module.txt` describes).
//! Leaves out page modules, which arrive with the dashboard.

use serde::Serialize;

use crate::config::Config;
use crate::https_url::HttpsUrl;

/// Module keys: unique within the app, `^[a-zA-Z0-9-]+$` like the app key.
pub const GATING_MODULE_KEY: &str = "deployment-gating";
pub const PROVIDER_MODULE_KEY: &str = "deployment-provider";

/// Paths Jira calls, relative to the base URL. The router serves exactly these.
pub const CALLBACK_PATH: &str = "/callback";
pub const INSTALLED_PATH: &str = "/installed";
pub const UNINSTALLED_PATH: &str = "/uninstalled";
pub const ENABLED_PATH: &str = "/enabled";
pub const DISABLED_PATH: &str = "/disabled";
pub const GATES_PAGE_PATH: &str = "/jira/gates";
pub const ADMIN_PAGE_PATH: &str = "/jira/admin";
pub const GATES_PAGE_KEY: &str = "deployment-gates";
pub const ADMIN_PAGE_KEY: &str = "deployment-gating-admin";

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub key: String,
    pub name: String,
    pub description: String,
    pub vendor: Vendor,
    pub base_url: String,
    pub authentication: Authentication,
    pub lifecycle: Lifecycle,
    pub api_migrations: ApiMigrations,
    pub scopes: Vec<&'static str>,
    pub modules: Modules,
}

#[derive(Debug, Serialize)]
pub struct Vendor {
    pub name: String,
    pub url: String,
}

#[derive(Debug, Serialize)]
pub struct Authentication {
    #[serde(rename = "type")]
    pub kind: &'static str,
}

#[derive(Debug, Serialize)]
pub struct Lifecycle {
    pub installed: &'static str,
    pub uninstalled: &'static str,
    pub enabled: &'static str,
    pub disabled: &'static str,
}

#[derive(Debug, Serialize)]
pub struct ApiMigrations {
    #[serde(rename = "signed-install")]
    pub signed_install: bool,
    #[serde(rename = "context-qsh")]
    pub context_qsh: bool,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Modules {
    pub jira_deployment_gating: DeploymentGatingModule,
    pub jira_deployment_info_provider: DeploymentInfoProviderModule,
    pub general_pages: Vec<PageModule>,
    pub admin_pages: Vec<PageModule>,
}

/// A page Jira frames from the app (`generalPages`, `adminPages`); Jira signs each load with a
/// JWT in `?jwt=`. Admin pages are listed only to site administrators.
#[derive(Debug, Serialize)]
pub struct PageModule {
    pub key: &'static str,
    pub name: I18n,
    pub url: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<&'static str>,
}

/// An i18n property: Connect's `{ "value": ... }` wrapper for display text.
#[derive(Debug, Serialize)]
pub struct I18n {
    pub value: String,
}

#[derive(Debug, Serialize)]
pub struct DeploymentGatingModule {
    pub key: &'static str,
    pub name: I18n,
    pub callback: Callback,
}

#[derive(Debug, Serialize)]
pub struct Callback {
    /// The seed allows only `jwt`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Relative to the app's base URL, as the seed requires.
    pub url: &'static str,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentInfoProviderModule {
    pub key: &'static str,
    pub name: I18n,
    /// Required by Jira and absolute.
    pub home_url: String,
}

/// Builds the descriptor for an app living at `base_url`.
pub fn build_descriptor(config: &Config, base_url: &HttpsUrl) -> Descriptor {
    Descriptor {
        key: config.app_key.as_str().to_owned(),
        name: config.app_name.clone(),
        description: "Gates CI/CD deployments on Jira Service Management change requests: \
                      submit a gated deployment, then wait for Jira to allow or prevent it."
            .to_owned(),
        vendor: Vendor {
            name: config.vendor_name.clone(),
            url: config.vendor_url.to_string(),
        },
        base_url: base_url.to_string(),
        authentication: Authentication { kind: "jwt" },
        lifecycle: Lifecycle {
            installed: INSTALLED_PATH,
            uninstalled: UNINSTALLED_PATH,
            enabled: ENABLED_PATH,
            disabled: DISABLED_PATH,
        },
        api_migrations: ApiMigrations {
            signed_install: true,
            context_qsh: true,
        },
        scopes: vec!["READ", "WRITE"],
        modules: Modules {
            jira_deployment_gating: DeploymentGatingModule {
                key: GATING_MODULE_KEY,
                name: I18n {
                    value: config.app_name.clone(),
                },
                callback: Callback {
                    kind: "jwt",
                    url: CALLBACK_PATH,
                },
            },
            jira_deployment_info_provider: DeploymentInfoProviderModule {
                key: PROVIDER_MODULE_KEY,
                name: I18n {
                    value: config.app_name.clone(),
                },
                home_url: base_url.join("/"),
            },
            general_pages: vec![PageModule {
                key: GATES_PAGE_KEY,
                name: I18n {
                    value: "Deployment gates".into(),
                },
                url: GATES_PAGE_PATH,
                location: Some("system.top.navigation.bar"),
            }],
            admin_pages: vec![PageModule {
                key: ADMIN_PAGE_KEY,
                name: I18n {
                    value: format!("{}: API tokens", config.app_name),
                },
                url: ADMIN_PAGE_PATH,
                location: None,
            }],
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::AppKey;
    use serde_json::json;

    fn test_config() -> Config {
        Config::from_lookup(|name| match name {
            "APP_KEY" => Some("my-gates".into()),
            "APP_NAME" => Some("My Gates".into()),
            _ => None,
        })
        .unwrap()
    }

    #[test]
    fn serialises_every_connect_field() {
        let base = HttpsUrl::parse("https://gates.example.com").unwrap();
        let value = serde_json::to_value(build_descriptor(&test_config(), &base)).unwrap();
        assert_eq!(value["key"], "my-gates");
        assert_eq!(value["baseUrl"], "https://gates.example.com");
        assert_eq!(value["authentication"], json!({"type": "jwt"}));
        assert_eq!(
            value["lifecycle"],
            json!({"installed": "/installed", "uninstalled": "/uninstalled",
                   "enabled": "/enabled", "disabled": "/disabled"})
        );
        assert_eq!(
            value["apiMigrations"],
            json!({"signed-install": true, "context-qsh": true})
        );
        assert_eq!(value["scopes"], json!(["READ", "WRITE"]));
        assert_eq!(
            value["modules"]["jiraDeploymentGating"],
            json!({"key": "deployment-gating", "name": {"value": "My Gates"},
                   "callback": {"type": "jwt", "url": "/callback"}})
        );
        assert_eq!(
            value["modules"]["jiraDeploymentInfoProvider"]["homeUrl"],
            "https://gates.example.com/"
        );
        assert_eq!(
            value["modules"]["generalPages"],
            json!([{"key": "deployment-gates", "name": {"value": "Deployment gates"},
                    "url": "/jira/gates", "location": "system.top.navigation.bar"}])
        );
        assert_eq!(
            value["modules"]["adminPages"],
            json!([{"key": "deployment-gating-admin", "name": {"value": "My Gates: API tokens"},
                    "url": "/jira/admin"}])
        );
    }

    #[test]
    fn module_keys_follow_the_seed_rule() {
        for key in [
            GATING_MODULE_KEY,
            PROVIDER_MODULE_KEY,
            GATES_PAGE_KEY,
            ADMIN_PAGE_KEY,
        ] {
            assert!(AppKey::parse(key).is_ok(), "{key}");
        }
    }
}
