//! `GET /atlassian-connect.json` as Jira reads it.

use serde_json::json;

use crate::support::TestWorker;

fn is_module_key(key: &str) -> bool {
    !key.is_empty() && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

#[test]
fn descriptor_has_every_connect_field_and_follows_the_seed() {
    let worker = TestWorker::shared();
    let reply = worker.get("/atlassian-connect.json");
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(reply
        .header("content-type")
        .is_some_and(|t| t.starts_with("application/json")));
    let cache = reply.header("cache-control").unwrap_or_default();
    assert!(cache.contains("max-age="), "short-lived caching: {cache}");

    let d = reply.json();
    assert_eq!(d["key"], "deployment-gating");
    assert_eq!(d["name"], "Deployment Gating");
    assert!(d["description"].as_str().is_some_and(|s| !s.is_empty()));
    assert!(d["vendor"]["name"].as_str().is_some_and(|s| !s.is_empty()));
    assert!(d["vendor"]["url"]
        .as_str()
        .is_some_and(|s| s.starts_with("https://")));
    // BASE_URL is unset in the test config: the base URL is the request's origin.
    assert_eq!(d["baseUrl"], worker.base_url.as_str());
    assert_eq!(d["authentication"], json!({"type": "jwt"}));
    assert_eq!(
        d["lifecycle"],
        json!({"installed": "/installed", "uninstalled": "/uninstalled",
               "enabled": "/enabled", "disabled": "/disabled"})
    );
    assert_eq!(
        d["apiMigrations"],
        json!({"signed-install": true, "context-qsh": true})
    );
    assert_eq!(d["scopes"], json!(["READ", "WRITE"]));

    let gating = &d["modules"]["jiraDeploymentGating"];
    assert!(is_module_key(gating["key"].as_str().unwrap()), "{gating}");
    assert!(gating["name"]["value"]
        .as_str()
        .is_some_and(|s| !s.is_empty()));
    assert_eq!(gating["callback"]["type"], "jwt");
    let callback_url = gating["callback"]["url"].as_str().unwrap();
    assert!(
        callback_url.starts_with('/') && !callback_url.contains("://"),
        "callback url must be relative to baseUrl: {callback_url}"
    );
    assert_eq!(callback_url, "/callback");

    let provider = &d["modules"]["jiraDeploymentInfoProvider"];
    assert!(is_module_key(provider["key"].as_str().unwrap()));
    assert_ne!(
        provider["key"], gating["key"],
        "module keys are unique in the app"
    );
    assert!(provider["name"]["value"]
        .as_str()
        .is_some_and(|s| !s.is_empty()));
    assert_eq!(provider["homeUrl"], format!("{}/", worker.base_url));
}

#[test]
fn descriptor_follows_app_key_and_base_url_settings() {
    let worker = TestWorker::spawn(&[
        ("APP_KEY", "acme-gates-2"),
        ("APP_NAME", "Acme Gates"),
        ("BASE_URL", "https://gates.acme.example/connect/"),
    ]);
    // The app lives under the base URL's path; requests outside it have no route.
    assert_eq!(worker.get("/atlassian-connect.json").status, 404);
    let reply = worker.get("/connect/atlassian-connect.json");
    assert_eq!(reply.status, 200, "{}", reply.body);
    let d = reply.json();
    assert_eq!(d["key"], "acme-gates-2");
    assert_eq!(d["name"], "Acme Gates");
    assert_eq!(d["baseUrl"], "https://gates.acme.example/connect");
    assert_eq!(
        d["modules"]["jiraDeploymentGating"]["callback"]["url"],
        "/callback"
    );
    assert_eq!(
        d["modules"]["jiraDeploymentInfoProvider"]["homeUrl"],
        "https://gates.acme.example/connect/"
    );
    assert_eq!(worker.get("/connect/healthz").status, 200);
}
