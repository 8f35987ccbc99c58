//! HS256 verification of requests from a tenant's Jira, on `GET /api/v1/connection`.

use serde_json::json;

use crate::support::fake_jira::{qsh, FakeJira};
use crate::support::jira_client::{claims, hs256, now, unsigned};
use crate::support::loopback::Answer;
use crate::support::TestWorker;

const PATH: &str = "/api/v1/connection";

fn installed_site() -> (FakeJira, &'static TestWorker) {
    let worker = TestWorker::shared();
    let jira = FakeJira::start("deployment-gating");
    jira.install(worker);
    (jira, worker)
}

fn token_with(jira: &FakeJira, overrides: serde_json::Value) -> String {
    hs256(
        claims(&jira.client_key, &qsh("GET", PATH), overrides),
        &jira.shared_secret(),
    )
}

#[test]
fn every_token_check_gives_its_own_code() {
    let (jira, worker) = installed_site();
    let stranger = FakeJira::start("deployment-gating"); // never installed
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "expired",
            token_with(&jira, json!({"exp": now() - 60})),
            "token_expired",
        ),
        (
            "issued in the future",
            token_with(&jira, json!({"iat": now() + 300})),
            "token_not_yet_valid",
        ),
        (
            "no exp",
            token_with(&jira, json!({"exp": null})),
            "claim_missing",
        ),
        (
            "no qsh",
            token_with(&jira, json!({"qsh": null})),
            "claim_missing",
        ),
        (
            "qsh of another path",
            token_with(&jira, json!({"qsh": qsh("GET", "/api/v1/other")})),
            "qsh_mismatch",
        ),
        (
            "qsh of another method",
            token_with(&jira, json!({"qsh": qsh("POST", PATH)})),
            "qsh_mismatch",
        ),
        (
            "wrong secret",
            hs256(
                claims(&jira.client_key, &qsh("GET", PATH), json!({})),
                &"x".repeat(40),
            ),
            "bad_signature",
        ),
        (
            "unknown tenant",
            stranger.request_token("GET", PATH),
            "unknown_tenant",
        ),
        (
            "alg none",
            unsigned(
                "none",
                claims(&jira.client_key, &qsh("GET", PATH), json!({})),
            ),
            "alg_not_allowed",
        ),
        (
            "RS256 header",
            unsigned(
                "RS256",
                claims(&jira.client_key, &qsh("GET", PATH), json!({})),
            ),
            "alg_not_allowed",
        ),
        ("not a JWT", "garbage".into(), "token_malformed"),
    ];
    for (name, token, code) in &cases {
        let reply = jira.connection_with(worker, token);
        assert_eq!(reply.status, 401, "{name}: {}", reply.body);
        assert_eq!(reply.error_code(), *code, "{name}");
        assert_eq!(reply.header("www-authenticate"), Some("JWT"), "{name}");
    }
    let missing = worker.get(PATH);
    assert_eq!(
        (missing.status, missing.error_code().as_str()),
        (401, "token_missing")
    );
    assert!(
        jira.requests()
            .iter()
            .all(|r| r.received.path() != "/rest/api/3/serverInfo"),
        "a refused request reached Jira"
    );
}

#[test]
fn token_in_header_and_query_at_once_is_refused() {
    let (jira, worker) = installed_site();
    let token = jira.request_token("GET", PATH);
    let reply = worker.request(
        "GET",
        &format!("{PATH}?jwt={token}"),
        &[("Authorization", &format!("JWT {token}"))],
        None,
    );
    assert_eq!(reply.status, 401);
    assert_eq!(reply.error_code(), "token_ambiguous");
}

#[test]
fn query_token_and_context_token_are_accepted_where_pages_call() {
    let (jira, worker) = installed_site();
    let query_token = jira.request_token("GET", PATH);
    let reply = worker.get(&format!("{PATH}?jwt={query_token}"));
    assert_eq!(reply.status, 200, "{}", reply.body);

    let context = token_with(&jira, json!({"qsh": "context-qsh", "sub": "557058:abc"}));
    let reply = jira.connection_with(worker, &context);
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.json()["authenticatedBy"], "context-token");
}

#[test]
fn tokens_of_one_tenant_do_not_open_another() {
    let (a, worker) = installed_site();
    let (b, _) = installed_site();
    // B's claims signed with A's secret: B's secret does not verify it.
    let forged = hs256(
        claims(&b.client_key, &qsh("GET", PATH), json!({})),
        &a.shared_secret(),
    );
    let reply = a.connection_with(worker, &forged);
    assert_eq!(reply.status, 401);
    assert_eq!(reply.error_code(), "bad_signature");
}

#[test]
fn jira_refusing_the_apps_token_is_reported_as_a_bad_gateway() {
    let (jira, worker) = installed_site();
    jira.answer_next_with(Answer::json(401, &json!({"message": "Unauthorized"})));
    let reply = jira.call(worker, "GET", PATH);
    assert_eq!(reply.status, 502);
    assert_eq!(reply.error_code(), "jira_refused");
    jira.answer_next_with(Answer::new(500, "oops"));
    let reply = jira.call(worker, "GET", PATH);
    assert_eq!(
        (reply.status, reply.error_code().as_str()),
        (502, "jira_error")
    );
}
