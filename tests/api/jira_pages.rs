//! The pages Jira frames: `/jira/gates` (the live dashboard, signed in by Jira) and `/jira/admin`
//! (API tokens), and the context-JWT paths they use: stream tickets for any signed-in user, token
//! management only for accounts Jira says are site administrators.

use serde_json::{json, Value};

use crate::support::client::Reply;
use crate::support::fake_jira::FakeJira;
use crate::support::fixtures::{PLAIN_USER_ACCOUNT, SITE_ADMIN_ACCOUNT};
use crate::support::jira_client::{claims, gate_payload, hs256};
use crate::support::loopback::Answer;
use crate::support::ws::{connect_with_ticket, next, next_json, Frame};
use crate::support::TestWorker;

fn installed(worker: &TestWorker) -> FakeJira {
    let jira = FakeJira::start("deployment-gating");
    jira.install(worker);
    jira
}

/// Loads a page as Jira's iframe does: the URL carries Jira's parameters and a JWT bound to them.
fn load_page(worker: &TestWorker, jira: &FakeJira, path: &str) -> Reply {
    let page = format!("{path}?xdm_e=https%3A%2F%2Fsite.atlassian.net&cp=&lic=none&cv=1001.0.0");
    let token = jira.request_token("GET", &page);
    worker.get(&format!("{page}&jwt={token}"))
}

fn with_jwt(
    worker: &TestWorker,
    method: &str,
    path: &str,
    jwt: &str,
    body: Option<Value>,
) -> Reply {
    let body = body.map(|b| b.to_string());
    worker.request(
        method,
        path,
        &[
            ("Authorization", &format!("JWT {jwt}")),
            ("Content-Type", "application/json"),
        ],
        body.as_deref().map(str::as_bytes),
    )
}

#[test]
fn the_descriptor_declares_both_pages_at_routes_the_worker_serves() {
    let worker = TestWorker::shared();
    let jira = installed(worker);
    let d = worker.get("/atlassian-connect.json").json();
    let general = &d["modules"]["generalPages"][0];
    let admin = &d["modules"]["adminPages"][0];
    assert_eq!(general["name"]["value"], "Deployment gates");
    for page in [general, admin] {
        let url = page["url"].as_str().unwrap();
        assert_eq!(load_page(worker, &jira, url).status, 200, "{url}");
    }
}

#[test]
fn pages_load_atlassians_script_may_be_framed_by_jira_only_and_need_jiras_jwt() {
    let worker = TestWorker::shared();
    let jira = installed(worker);
    for path in ["/jira/gates", "/jira/admin"] {
        let page = load_page(worker, &jira, path);
        assert_eq!(page.status, 200, "{path}: {}", page.body);
        assert!(page
            .body
            .contains(r#"<script src="https://connect-cdn.atl-paas.net/all.js""#));
        let csp = page.header("content-security-policy").unwrap();
        assert!(
            csp.contains("script-src 'unsafe-inline' https://connect-cdn.atl-paas.net;"),
            "{csp}"
        );
        // TENANT_HOSTS of the test worker is http://127.0.0.1, where the fake sites live.
        assert!(csp.contains("frame-ancestors http://127.0.0.1:*"), "{csp}");
        assert_eq!(page.header("referrer-policy"), Some("no-referrer"));

        let bare = worker.get(path);
        assert_eq!(
            (bare.status, bare.error_code().as_str()),
            (401, "token_missing")
        );
        let other_page = jira.request_token("GET", "/jira/elsewhere");
        let replayed = worker.get(&format!("{path}?jwt={other_page}"));
        assert_eq!(
            (replayed.status, replayed.error_code().as_str()),
            (401, "qsh_mismatch")
        );
    }
    // Inside Jira the dashboard's API root is one level up.
    assert!(load_page(worker, &jira, "/jira/gates")
        .body
        .contains(r#"<meta name="app-root" content="../">"#));
    // Outside Jira, nothing external and no framing.
    let plain = worker.get("/dashboard");
    assert!(!plain.body.contains("connect-cdn"));
    assert!(plain
        .header("content-security-policy")
        .unwrap()
        .contains("frame-ancestors 'none'"));
}

#[test]
fn any_signed_in_jira_user_gets_a_stream_ticket_for_their_own_site() {
    let worker = TestWorker::shared();
    let jira = installed(worker);
    jira.deliver(
        worker,
        &gate_payload(
            "inside-jira",
            "prod",
            1,
            "awaiting",
            "2026-12-03T12:00:00.000+00:00",
        ),
    );
    let reply = with_jwt(
        worker,
        "POST",
        "/api/v1/stream-tickets",
        &jira.context_token(PLAIN_USER_ACCOUNT),
        None,
    );
    assert_eq!(reply.status, 201, "{}", reply.body);
    let ticket = reply.json()["ticket"].as_str().unwrap().to_owned();
    let mut socket = connect_with_ticket(worker, &ticket, "").expect("upgrade");
    let snapshot = next_json(&mut socket);
    assert_eq!(snapshot["type"], "snapshot");
    assert_eq!(snapshot["gates"][0]["pipelineId"], "inside-jira");
    jira.deliver(
        worker,
        &gate_payload(
            "inside-jira",
            "prod",
            1,
            "allowed",
            "2026-12-03T12:00:05.000+00:00",
        ),
    );
    assert_eq!(next_json(&mut socket)["event"]["status"], "allowed");

    // A context token signed with another site's secret gets nothing.
    let other = installed(worker);
    let forged = hs256(
        claims(
            &jira.client_key,
            "context-qsh",
            json!({"sub": PLAIN_USER_ACCOUNT}),
        ),
        &other.shared_secret(),
    );
    let refused = with_jwt(worker, "POST", "/api/v1/stream-tickets", &forged, None);
    assert_eq!(
        (refused.status, refused.error_code().as_str()),
        (401, "bad_signature")
    );

    // Uninstalling the app closes the Jira user's stream.
    assert_eq!(jira.lifecycle(worker, "uninstalled").status, 204);
    assert!(matches!(
        next(&mut socket, std::time::Duration::from_secs(5)),
        Frame::Closed(Some(4001))
    ));
}

#[test]
fn only_site_administrators_manage_tokens_from_inside_jira() {
    let worker = TestWorker::shared();
    let jira = installed(worker);
    let admin = || jira.context_token(SITE_ADMIN_ACCOUNT);
    let body = json!({"name": "github-prod", "scopes": ["deployments:write", "gates:read"]});

    let created = with_jwt(
        worker,
        "POST",
        "/api/v1/tokens",
        &admin(),
        Some(body.clone()),
    );
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.json()["id"].as_str().unwrap().to_owned();
    let listed = with_jwt(worker, "GET", "/api/v1/tokens", &admin(), None);
    assert_eq!(listed.json()["tokens"][0]["name"], "github-prod");
    // The app asked Jira about the account in the token, with its own signed token.
    let checks: Vec<_> = jira
        .requests()
        .into_iter()
        .filter(|r| r.received.path() == "/rest/api/3/permissions/check")
        .collect();
    assert_eq!(checks.len(), 2);
    assert!(checks.iter().all(|c| c.auth.is_ok()));
    assert_eq!(
        checks[0].json(),
        json!({"accountId": SITE_ADMIN_ACCOUNT, "globalPermissions": ["ADMINISTER"]})
    );

    let user = jira.context_token(PLAIN_USER_ACCOUNT);
    let no_sub = hs256(
        claims(&jira.client_key, "context-qsh", json!({})),
        &jira.shared_secret(),
    );
    for (who, jwt) in [("plain user", &user), ("no account", &no_sub)] {
        for (method, path) in [
            ("POST", "/api/v1/tokens".to_owned()),
            ("GET", "/api/v1/tokens".to_owned()),
            ("DELETE", format!("/api/v1/tokens/{id}")),
        ] {
            let reply = with_jwt(worker, method, &path, jwt, Some(body.clone()));
            assert_eq!(
                (reply.status, reply.error_code().as_str()),
                (403, "jira_admin_required"),
                "{who} {method} {path}"
            );
        }
    }
    // Jira failing the check refuses too, and says where the problem is.
    jira.answer_next_with(Answer::json(500, &json!({"message": "boom"})));
    let failed = with_jwt(
        worker,
        "POST",
        "/api/v1/tokens",
        &admin(),
        Some(body.clone()),
    );
    assert_eq!(
        (failed.status, failed.error_code().as_str()),
        (502, "jira_error")
    );

    // None of that created or revoked anything.
    let tokens = with_jwt(worker, "GET", "/api/v1/tokens", &admin(), None).json();
    assert_eq!(tokens["tokens"].as_array().unwrap().len(), 1);
    assert!(tokens["tokens"][0]["revokedAt"].is_null());
    let revoked = with_jwt(
        worker,
        "DELETE",
        &format!("/api/v1/tokens/{id}"),
        &admin(),
        None,
    );
    assert_eq!(revoked.status, 204);
}
