//! Signed installs and the other lifecycle hooks, against the real worker and KV.
//!
//! Whether a tenant is stored is observed the way a user would: through an authenticated call
//! (`GET /api/v1/connection`) with the site's secret, which also makes the app call the fake
//! Jira with its own signed token.

use serde_json::json;

use crate::support::fake_jira::{qsh, FakeJira};
use crate::support::fake_keys::FakeKeyServer;
use crate::support::fixtures::{install_signing_key_pem, repo_path, INSTALL_KEY_ID};
use crate::support::jira_client::{claims, hs256, rs256, unsigned};
use crate::support::{Reply, TestWorker};

fn site() -> FakeJira {
    FakeJira::start("deployment-gating")
}

fn connection(jira: &FakeJira, worker: &TestWorker) -> Reply {
    jira.call(worker, "GET", "/api/v1/connection")
}

fn assert_installed(jira: &FakeJira, worker: &TestWorker) {
    let reply = connection(jira, worker);
    assert_eq!(reply.status, 200, "{}", reply.body);
}

fn assert_not_installed(jira: &FakeJira, worker: &TestWorker) {
    let reply = connection(jira, worker);
    assert_eq!(reply.status, 401, "{}", reply.body);
    assert_eq!(reply.error_code(), "unknown_tenant");
}

#[test]
fn signed_install_stores_the_tenant_and_the_app_signs_its_calls_to_jira() {
    let worker = TestWorker::shared();
    let jira = site();
    jira.install(worker);

    let reply = connection(&jira, worker);
    assert_eq!(reply.status, 200, "{}", reply.body);
    let body = reply.json();
    assert_eq!(body["clientKey"], jira.client_key.as_str());
    assert_eq!(body["jiraVersion"], "1001.0.0-SNAPSHOT");
    assert_eq!(body["authenticatedBy"], "request-token");

    // The fake Jira checked the app's outbound JWT (HS256, iss = app key, exp, qsh).
    let outbound: Vec<_> = jira
        .requests()
        .into_iter()
        .filter(|r| r.received.path() == "/rest/api/3/serverInfo")
        .collect();
    assert_eq!(outbound.len(), 1);
    assert_eq!(outbound[0].auth, Ok(()), "Jira refused the app's token");
}

/// Each forgery is refused with its code, and the tenant stays unknown.
#[test]
fn forged_installs_are_refused_and_store_nothing() {
    let worker = TestWorker::shared();
    let forged_key =
        std::fs::read_to_string(repo_path("tests/fixtures/forged-signing-key.pem")).unwrap();
    let jira = site();
    let body = jira.lifecycle_payload("installed", "deployment-gating");
    let good = |overrides: serde_json::Value| jira.lifecycle_token(worker, "installed", overrides);
    let install_claims = |overrides| {
        let mut c = claims(&jira.client_key, &qsh("POST", "/installed"), overrides);
        c["aud"] = json!(worker.base_url);
        c
    };

    let cases: Vec<(&str, Option<String>, serde_json::Value, u16, &str)> = vec![
        ("no token", None, body.clone(), 401, "token_missing"),
        (
            "garbage token",
            Some("not.a.jwt".into()),
            body.clone(),
            401,
            "token_malformed",
        ),
        (
            "signed by another key",
            Some(rs256(
                install_claims(json!({})),
                INSTALL_KEY_ID,
                &forged_key,
            )),
            body.clone(),
            401,
            "bad_signature",
        ),
        (
            "aud of another app",
            Some(good(json!({"aud": "https://other-app.example.com"}))),
            body.clone(),
            401,
            "aud_mismatch",
        ),
        (
            "iss differs from clientKey",
            Some(good(json!({"iss": "someone-else"}))),
            body.clone(),
            401,
            "iss_mismatch",
        ),
        (
            "qsh of another request",
            Some(good(json!({"qsh": qsh("POST", "/uninstalled")}))),
            body.clone(),
            401,
            "qsh_mismatch",
        ),
        (
            "expired",
            Some(good(
                json!({"exp": crate::support::jira_client::now() - 120}),
            )),
            body.clone(),
            401,
            "token_expired",
        ),
        (
            "alg none",
            Some(unsigned("none", install_claims(json!({})))),
            body.clone(),
            401,
            "alg_not_allowed",
        ),
        (
            "HS256 keyed with the shared secret",
            Some(hs256(install_claims(json!({})), &jira.shared_secret())),
            body.clone(),
            401,
            "alg_not_allowed",
        ),
        (
            "unknown kid",
            Some(rs256(
                install_claims(json!({})),
                "no-such-kid",
                &install_signing_key_pem(),
            )),
            body.clone(),
            401,
            "kid_unknown",
        ),
        (
            "kid with a path",
            Some(rs256(
                install_claims(json!({})),
                "../../etc/passwd",
                &install_signing_key_pem(),
            )),
            body.clone(),
            401,
            "kid_invalid",
        ),
        (
            "tenant host not allowed",
            Some(good(json!({}))),
            {
                let mut b = body.clone();
                b["baseUrl"] = json!("https://evil.example.com");
                b
            },
            400,
            "invalid_payload",
        ),
        (
            "plain http site on a public host",
            Some(good(json!({}))),
            {
                let mut b = body.clone();
                b["baseUrl"] = json!("http://acme.atlassian.net");
                b
            },
            400,
            "invalid_payload",
        ),
        (
            "missing sharedSecret",
            Some(good(json!({}))),
            {
                let mut b = body.clone();
                b.as_object_mut().unwrap().remove("sharedSecret");
                b
            },
            400,
            "invalid_payload",
        ),
    ];
    let tried = cases.len();
    for (name, token, body, status, code) in cases {
        let reply = jira.send_lifecycle(worker, "installed", token.as_deref(), &body);
        assert_eq!(reply.status, status, "{name}: {}", reply.body);
        assert_eq!(reply.error_code(), code, "{name}");
        assert!(
            !reply.body.contains(&jira.shared_secret()),
            "{name}: secret echoed"
        );
        if let Some(t) = &token {
            assert!(!reply.body.contains(t.as_str()), "{name}: token echoed");
        }
        assert_not_installed(&jira, worker);
    }
    assert_eq!(tried, 14);
}

#[test]
fn payload_errors_name_the_field() {
    let worker = TestWorker::shared();
    let jira = site();
    let token = jira.lifecycle_token(worker, "installed", json!({}));
    let mut body = jira.lifecycle_payload("installed", "deployment-gating");
    body["clientKey"] = json!("not/a/key");
    let reply = jira.send_lifecycle(worker, "installed", Some(&token), &body);
    assert_eq!(reply.status, 400);
    assert_eq!(reply.error_code(), "invalid_payload");
    assert!(reply.json()["message"]
        .as_str()
        .unwrap()
        .starts_with("clientKey"));

    let huge = json!({"pad": "x".repeat(70 * 1024)});
    let reply = jira.send_lifecycle(worker, "installed", Some(&token), &huge);
    assert_eq!(reply.status, 413);
    assert_eq!(reply.error_code(), "payload_too_large");
    assert_not_installed(&jira, worker);
}

#[test]
fn reinstall_rotates_the_secret_and_the_old_one_stops_working() {
    let worker = TestWorker::shared();
    let jira = site();
    jira.install(worker);
    let connection_qsh = qsh("GET", "/api/v1/connection");
    let token_signed_with =
        |secret: &str| hs256(claims(&jira.client_key, &connection_qsh, json!({})), secret);

    // A forged re-install carrying an attacker's secret must not replace the real one.
    let attacker_secret = "attacker-chosen-secret-0123456789abcdef";
    let forged_key =
        std::fs::read_to_string(repo_path("tests/fixtures/forged-signing-key.pem")).unwrap();
    let mut forged_claims = claims(&jira.client_key, &qsh("POST", "/installed"), json!({}));
    forged_claims["aud"] = json!(worker.base_url);
    let forged = rs256(forged_claims, INSTALL_KEY_ID, &forged_key);
    let mut body = jira.lifecycle_payload("installed", "deployment-gating");
    body["sharedSecret"] = json!(attacker_secret);
    assert_eq!(
        jira.send_lifecycle(worker, "installed", Some(&forged), &body)
            .status,
        401
    );
    let reply = jira.connection_with(worker, &token_signed_with(attacker_secret));
    assert_eq!(
        reply.error_code(),
        "bad_signature",
        "the forged install rotated the secret"
    );
    assert_installed(&jira, worker);

    // A genuine re-install with a new secret: the old secret stops working at once.
    let old_secret = jira.rotate_secret();
    jira.install(worker);
    let reply = jira.connection_with(worker, &token_signed_with(&old_secret));
    assert_eq!(reply.status, 401);
    assert_eq!(reply.error_code(), "bad_signature");
    assert_installed(&jira, worker);
}

#[test]
fn uninstall_makes_the_tenants_tokens_fail_and_every_hook_is_idempotent() {
    let worker = TestWorker::shared();
    let jira = site();
    jira.install(worker);
    assert_eq!(
        jira.lifecycle(worker, "installed").status,
        204,
        "install delivered twice"
    );
    assert_eq!(jira.lifecycle(worker, "enabled").status, 204);
    assert_eq!(jira.lifecycle(worker, "enabled").status, 204);
    assert_eq!(jira.lifecycle(worker, "disabled").status, 204);
    assert_installed(&jira, worker);

    assert_eq!(jira.lifecycle(worker, "uninstalled").status, 204);
    let reply = connection(&jira, worker);
    assert_eq!(reply.status, 401);
    assert_eq!(reply.error_code(), "tenant_uninstalled");

    // Late and repeated deliveries: acknowledged, nothing revived.
    assert_eq!(jira.lifecycle(worker, "uninstalled").status, 204);
    assert_eq!(jira.lifecycle(worker, "enabled").status, 204);
    assert_eq!(jira.lifecycle(worker, "disabled").status, 204);
    let body = jira.lifecycle_payload("disabled", "deployment-gating");
    assert_eq!(
        jira.send_lifecycle(worker, "disabled", None, &body).status,
        204,
        "unsigned disabled after uninstall is acknowledged"
    );
    assert_eq!(connection(&jira, worker).error_code(), "tenant_uninstalled");

    // Installing again brings the tenant back.
    jira.rotate_secret();
    jira.install(worker);
    assert_installed(&jira, worker);
}

#[test]
fn unsigned_lifecycle_for_a_live_tenant_is_refused() {
    let worker = TestWorker::shared();
    let jira = site();
    jira.install(worker);
    for event in ["disabled", "uninstalled", "enabled"] {
        let body = jira.lifecycle_payload(event, "deployment-gating");
        let reply = jira.send_lifecycle(worker, event, None, &body);
        assert_eq!(reply.status, 401, "{event}");
        assert_eq!(reply.error_code(), "token_missing");
    }
    assert_installed(&jira, worker);
}

#[test]
fn install_keys_are_cached_and_a_key_server_outage_is_a_retryable_503() {
    let keys = FakeKeyServer::start();
    let worker = TestWorker::spawn(&[("INSTALL_KEYS_URL", &keys.base_url)]);
    let jira = site();
    jira.install(&worker);
    let other = site();
    other.install(&worker);
    assert_eq!(keys.fetches(), 1, "the key for a kid is fetched once");

    keys.set_down(true);
    let third = site();
    third.install(&worker); // cached kid: the outage does not matter

    // A kid the worker has never seen needs the key server: 503 so Jira retries, nothing stored.
    keys.add_key(
        "rotated-key-2",
        &crate::support::fixtures::install_public_key_pem(),
    );
    let fourth = site();
    let mut c = claims(&fourth.client_key, &qsh("POST", "/installed"), json!({}));
    c["aud"] = json!(worker.base_url);
    let token = rs256(c, "rotated-key-2", &install_signing_key_pem());
    let body = fourth.lifecycle_payload("installed", "deployment-gating");
    let reply = fourth.send_lifecycle(&worker, "installed", Some(&token), &body);
    assert_eq!(reply.status, 503, "{}", reply.body);
    assert_eq!(reply.error_code(), "install_keys_unavailable");
    assert!(reply.header("retry-after").is_some());
    assert_not_installed(&fourth, &worker);

    keys.set_down(false);
    let reply = fourth.send_lifecycle(&worker, "installed", Some(&token), &body);
    assert_eq!(reply.status, 204, "{}", reply.body);
    assert_installed(&fourth, &worker);
}

#[test]
fn secrets_and_tokens_never_reach_the_log() {
    let worker = TestWorker::spawn(&[]);
    let jira = site();
    jira.install(&worker);
    let token = jira.request_token("GET", "/api/v1/connection");
    assert_eq!(jira.connection_with(&worker, &token).status, 200);
    let query_token = jira.request_token("GET", "/api/v1/connection");
    worker.get(&format!("/api/v1/connection?jwt={query_token}"));
    // wrangler flushes worker output asynchronously: wait for both connection lines.
    let mut log = String::new();
    for _ in 0..50 {
        log = worker.log();
        if log.matches("\"path\":\"/api/v1/connection\"").count() >= 2 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(log.contains(&jira.client_key), "the tenant is logged");
    assert!(
        !log.contains(&jira.shared_secret()),
        "the shared secret reached the log"
    );
    assert!(!log.contains(&token), "a token reached the log");
    assert!(!log.contains(&query_token), "a query token reached the log");
}
