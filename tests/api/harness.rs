//! The harness itself: fixtures pinned to each other, fakes that behave like the real servers,
//! and workers that leave nothing behind.

use jwt_compact::alg::{Hs256, Hs256Key};
use jwt_compact::{AlgorithmExt, Claims, Header, TimeOptions};
use rsa::pkcs8::{DecodePrivateKey, DecodePublicKey};
use serde_json::json;

use crate::support::fake_jira::{qsh, FakeJira};
use crate::support::fake_keys::FakeKeyServer;
use crate::support::fixtures::{install_public_key_pem, install_signing_key_pem, INSTALL_KEY_ID};
use crate::support::{client, TestWorker};

#[test]
fn fake_key_server_serves_the_public_half_of_the_test_signing_key() {
    let private = rsa::RsaPrivateKey::from_pkcs8_pem(&install_signing_key_pem()).unwrap();
    let keys = FakeKeyServer::start();
    let reply = client::send(
        "GET",
        &format!("{}/{INSTALL_KEY_ID}", keys.base_url),
        &[],
        None,
    );
    assert_eq!(reply.status, 200);
    let served = rsa::RsaPublicKey::from_public_key_pem(&reply.body).unwrap();
    assert_eq!(served, private.to_public_key());
    assert_eq!(reply.body, install_public_key_pem());

    assert_eq!(
        client::send("GET", &format!("{}/unknown-kid", keys.base_url), &[], None).status,
        404
    );
    keys.set_down(true);
    let down = client::send(
        "GET",
        &format!("{}/{INSTALL_KEY_ID}", keys.base_url),
        &[],
        None,
    );
    assert_eq!(down.status, 503);
    assert_eq!(keys.fetches(), 3);
}

/// Qsh vectors from connect-protocol.md section 4, so the fake's independent hash is pinned.
#[test]
fn fake_jira_qsh_matches_the_documented_vectors() {
    assert_eq!(
        qsh("POST", "/rest/deployments/0.1/bulk"),
        "e50a1fc975925dfc3652c2ea120c1d37f5581e16d5a167a5adbeda3bda7ab589"
    );
    assert_eq!(
        qsh("GET", "/test?ids=-1&ids=1&ids=10&ids=2&ids=20"),
        "a646c48741faaeb649f9ca7888ae029ead432e3806f56c4a57b80b3e2ac628a9"
    );
    assert_eq!(
        qsh("GET", "/test?param=some+spaces+in+this+parameter"),
        "ef4097d05395eaf1a133956f140116a9c411afad768d4f06daac9e305764265d"
    );
    assert_eq!(
        qsh("GET", "/endsWithDelimiter/?a=b"),
        "8f77c6a0e6bf25041121ee44480d3c97ae9cca4b7a007ea6e1d648d9a26e5d1d"
    );
}

fn app_token(iss: &str, qsh_value: &str, secret: &str) -> String {
    #[derive(serde::Serialize)]
    struct C<'a> {
        iss: &'a str,
        qsh: &'a str,
    }
    let claims = Claims::new(C {
        iss,
        qsh: qsh_value,
    })
    .set_duration_and_issuance(
        &TimeOptions::new(chrono::Duration::zero(), chrono::Utc::now),
        chrono::Duration::seconds(180),
    );
    Hs256
        .token(&Header::empty(), &claims, &Hs256Key::new(secret.as_bytes()))
        .unwrap()
}

#[test]
fn fake_jira_accepts_only_correctly_signed_requests() {
    let jira = FakeJira::start("deployment-gating");
    let url = format!("{}/rest/deployments/0.1/bulk", jira.base_url);
    let body = json!({"deployments": [{
        "pipeline": {"id": "p1"}, "environment": {"id": "prod"}, "deploymentSequenceNumber": 7,
        "state": "pending", "commands": [{"command": "initiate_deployment_gating"}]
    }]})
    .to_string();
    let send = |token: &str| {
        client::send(
            "POST",
            &url,
            &[
                ("Authorization", &format!("JWT {token}")),
                ("Content-Type", "application/json"),
            ],
            Some(body.as_bytes()),
        )
    };
    let good_qsh = qsh("POST", "/rest/deployments/0.1/bulk");

    assert_eq!(
        client::send("POST", &url, &[], Some(body.as_bytes())).status,
        401
    );
    assert_eq!(
        send(&app_token("deployment-gating", &good_qsh, "wrong")).status,
        401
    );
    assert_eq!(
        send(&app_token("other-app", &good_qsh, &jira.shared_secret())).status,
        401
    );
    let wrong_qsh = qsh("POST", "/rest/other");
    assert_eq!(
        send(&app_token(
            "deployment-gating",
            &wrong_qsh,
            &jira.shared_secret()
        ))
        .status,
        401
    );
    assert!(
        jira.deployment("p1", "prod", 7).is_none(),
        "refused requests change nothing"
    );

    let ok = send(&app_token(
        "deployment-gating",
        &good_qsh,
        &jira.shared_secret(),
    ));
    assert_eq!(ok.status, 202, "{}", ok.body);
    assert_eq!(
        ok.json()["acceptedDeployments"][0]["deploymentSequenceNumber"],
        7
    );
    assert!(jira.deployment("p1", "prod", 7).is_some());

    let status_path =
        "/rest/deployments/0.1/pipelines/p1/environments/prod/deployments/7/gating-status";
    let status = client::send(
        "GET",
        &format!("{}{status_path}", jira.base_url),
        &[(
            "Authorization",
            &format!(
                "JWT {}",
                app_token(
                    "deployment-gating",
                    &qsh("GET", status_path),
                    &jira.shared_secret()
                )
            ),
        )],
        None,
    );
    assert_eq!(status.status, 200);
    assert_eq!(status.json()["gatingStatus"], "awaiting");

    jira.answer_next_with(
        crate::support::loopback::Answer::json(429, &json!({"message": "slow down"}))
            .with_header("Retry-After", "3"),
    );
    let limited = send(&app_token(
        "deployment-gating",
        &good_qsh,
        &jira.shared_secret(),
    ));
    assert_eq!(limited.status, 429);
    assert_eq!(limited.header("retry-after"), Some("3"));
    assert_eq!(jira.requests().len(), 7);
    assert!(jira.requests()[0].auth.is_err());
}

#[test]
fn a_dropped_worker_leaves_no_process_or_folder_behind() {
    let worker = TestWorker::spawn(&[]);
    assert_eq!(worker.get("/healthz").status, 200);
    let url = worker.url("/healthz");
    let dir = worker.dir().to_owned();
    assert!(
        dir.join("state").exists(),
        "state persists under the worker's folder"
    );
    drop(worker);
    assert!(
        !client::answers(&url),
        "workerd still serves after the worker was dropped"
    );
    assert!(!dir.exists(), "the worker's folder outlived it");
}
