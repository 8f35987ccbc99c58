//! An invalid setting answers every request with a 500 naming it, never a malformed descriptor.

use crate::support::TestWorker;

fn assert_every_request_names(worker: &TestWorker, setting: &str) {
    for path in ["/atlassian-connect.json", "/healthz", "/callback", "/nope"] {
        let reply = worker.get(path);
        assert_eq!(reply.status, 500, "{path}: {}", reply.body);
        assert_eq!(reply.error_code(), "invalid_configuration", "{path}");
        let message = reply.json()["message"].as_str().unwrap().to_owned();
        assert!(message.contains(setting), "{path}: {message}");
    }
}

#[test]
fn app_key_that_breaks_the_key_rule_fails_every_request() {
    let worker = TestWorker::spawn(&[("APP_KEY", "not a valid key!")]);
    assert_every_request_names(&worker, "APP_KEY");
}

#[test]
fn base_url_over_plain_http_off_loopback_fails_every_request() {
    let worker = TestWorker::spawn(&[("BASE_URL", "http://gates.example.com")]);
    assert_every_request_names(&worker, "BASE_URL");
}
