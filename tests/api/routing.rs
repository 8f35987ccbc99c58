//! Health, unknown paths, wrong methods, and the request log.

use crate::support::TestWorker;

#[test]
fn health_answers_ok() {
    let reply = TestWorker::shared().get("/healthz");
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json()["status"], "ok");
}

#[test]
fn unknown_path_is_a_json_404() {
    let reply = TestWorker::shared().get("/no/such/path");
    assert_eq!(reply.status, 404);
    assert_eq!(reply.error_code(), "not_found");
}

#[test]
fn wrong_method_is_a_405_with_allow() {
    let reply = TestWorker::shared().request("DELETE", "/atlassian-connect.json", &[], None);
    assert_eq!(reply.status, 405);
    assert_eq!(reply.error_code(), "method_not_allowed");
    assert_eq!(reply.header("allow"), Some("GET, HEAD"));
}

#[test]
fn each_request_logs_one_json_line_without_query_or_credentials() {
    let worker = TestWorker::spawn(&[]);
    let marker = "c2VjcmV0LXRva2VuLXZhbHVl";
    let reply = worker.request(
        "GET",
        &format!("/healthz?jwt={marker}"),
        &[("Authorization", &format!("JWT {marker}"))],
        None,
    );
    assert_eq!(reply.status, 200);
    assert_eq!(worker.get("/missing").status, 404);

    // wrangler flushes worker output asynchronously; wait for the line of the last request.
    let mut lines = Vec::new();
    for _ in 0..50 {
        lines = request_log_lines(&worker.log());
        if lines.iter().any(|l| l["path"] == "/missing") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let healthz = lines
        .iter()
        .find(|l| l["path"] == "/healthz")
        .unwrap_or_else(|| panic!("no log line for /healthz in:\n{}", worker.log()));
    assert_eq!(healthz["method"], "GET");
    assert_eq!(healthz["status"], 200);
    assert!(healthz["duration_ms"].is_number());
    let missing = lines.iter().find(|l| l["path"] == "/missing").unwrap();
    assert_eq!(missing["status"], 404);
    assert_eq!(missing["error"], "not_found");
    assert!(
        !worker.log().contains(marker),
        "a credential reached the log"
    );
}

/// The worker's own JSON lines among wrangler's output.
fn request_log_lines(log: &str) -> Vec<serde_json::Value> {
    log.lines()
        .filter_map(|l| l.find("{\"method\"").map(|i| &l[i..]))
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}
