//! The lifecycle payload parser on arbitrary bodies, at each of the four hooks.
//!
//! Checks, besides "never panics": an accepted payload was sent to that hook, carries a secret of
//! 32 to 1024 bytes exactly when it is an install, a `clientKey` safe in a KV key and a log line, a
//! short `productType`, and a `baseUrl` on a host `TENANT_HOSTS` allows (here `*.atlassian.net`,
//! and plain http only for `localhost`).
#![no_main]

use deployment_gating::config::HostPattern;
use deployment_gating::connect::lifecycle::{parse_payload, LifecycleEvent};
use libfuzzer_sys::fuzz_target;

const APP_KEY: &str = "deployment-gating";

fuzz_target!(|data: &[u8]| {
    let hosts = HostPattern::parse_list("*.atlassian.net, http://localhost").unwrap();
    for event in [
        LifecycleEvent::Installed,
        LifecycleEvent::Uninstalled,
        LifecycleEvent::Enabled,
        LifecycleEvent::Disabled,
    ] {
        let Ok(payload) = parse_payload(data, event, APP_KEY, &hosts) else {
            continue;
        };
        assert_eq!(payload.event, event);
        match &payload.shared_secret {
            Some(secret) => {
                assert_eq!(event, LifecycleEvent::Installed);
                assert!((32..=1024).contains(&secret.expose_bytes().len()));
            }
            None => assert_ne!(event, LifecycleEvent::Installed),
        }
        let client_key = payload.client_key.as_str();
        assert!((1..=255).contains(&client_key.len()));
        assert!(client_key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':')));
        assert!(!payload.product_type.is_empty() && payload.product_type.len() <= 64);

        let origin = payload.base_url.origin();
        let allowed = match origin.strip_prefix("https://") {
            Some(host_port) => {
                let host = host_port.split(':').next().unwrap();
                host.ends_with(".atlassian.net") && host.len() > ".atlassian.net".len()
            }
            None => origin == "http://localhost" || origin.starts_with("http://localhost:"),
        };
        assert!(
            allowed,
            "baseUrl {} is not an allowed site",
            payload.base_url
        );
        assert!(!payload.base_url.as_str().ends_with('/'));
        if let Some(display) = &payload.display_url {
            assert!(!display.as_str().contains(['?', '#']));
        }
    }
});
