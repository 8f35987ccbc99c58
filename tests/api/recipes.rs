//! The pipeline recipe script `ci/deployment-gate.sh`, run as a pipeline would run it, against
//! the local worker: exit 0 when Jira allows, 1 when it prevents, 2 on timeout, 3 on failure.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::fake_jira::FakeJira;
use crate::support::fixtures::repo_path;
use crate::support::jira_client::{api_get, gate_payload};
use crate::support::TestWorker;

struct Site {
    jira: FakeJira,
    token: String,
    read: String,
}

fn site(worker: &TestWorker) -> Site {
    let jira = FakeJira::start("deployment-gating");
    jira.install(worker);
    let token = jira.create_token(worker, &["deployments:write", "gates:read"]);
    let read = jira.create_token(worker, &["gates:read"]);
    Site { jira, token, read }
}

fn run_recipe(worker: &TestWorker, token: &str, pipeline: &str, seq: u64, timeout: u32) -> Child {
    Command::new("sh")
        .arg(repo_path("ci/deployment-gate.sh"))
        .env("GATE_URL", &worker.base_url)
        .env("GATE_TOKEN", token)
        .env("PIPELINE_ID", pipeline)
        .env("PIPELINE_NAME", "Checkout service")
        .env("PIPELINE_URL", "https://ci.example.com/checkout")
        .env("ENVIRONMENT_ID", "prod eu")
        .env("ENVIRONMENT_NAME", "Production \"EU\"")
        .env("ENVIRONMENT_TYPE", "production")
        .env("SEQUENCE", seq.to_string())
        .env(
            "DEPLOYMENT_URL",
            format!("https://ci.example.com/checkout/{seq}"),
        )
        .env("ISSUE_KEYS", "OPS-1 OPS-2")
        .env("GATE_TIMEOUT_SECONDS", timeout.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sh runs the recipe")
}

/// Waits until the recipe has submitted (the gate exists), then Jira decides by callback.
fn decide(worker: &TestWorker, site: &Site, pipeline: &str, seq: u64, status: &str) {
    let path = format!(
        "/api/v1/gates/{}/prod%20eu/{seq}",
        pipeline.replace('/', "%2F")
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while api_get(worker, &site.read, &path).status != 200 {
        assert!(Instant::now() < deadline, "the recipe never submitted");
        std::thread::sleep(Duration::from_millis(200));
    }
    let at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, false);
    let reply = site.jira.callback(
        worker,
        &gate_payload(pipeline, "prod eu", seq, status, &at),
        None,
    );
    assert_eq!(reply.status, 204);
}

fn exit_code(child: Child) -> (i32, String) {
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_recipe_exits_0_when_jira_allows() {
    let worker = TestWorker::shared();
    let site = site(worker);
    let child = run_recipe(worker, &site.token, "shop/checkout", 11, 60);
    decide(worker, &site, "shop/checkout", 11, "allowed");
    let (code, stderr) = exit_code(child);
    assert_eq!(code, 0, "{stderr}");
    // The recipe's submission reached Jira as a gated deployment.
    let bulk = site.jira.bulk_requests();
    assert_eq!(bulk.len(), 1);
    let d = &bulk[0].json()["deployments"][0];
    assert_eq!(d["environment"]["displayName"], "Production \"EU\"");
    assert_eq!(d["commands"][0]["command"], "initiate_deployment_gating");
}

#[test]
fn the_recipe_exits_1_when_jira_prevents() {
    let worker = TestWorker::shared();
    let site = site(worker);
    let child = run_recipe(worker, &site.token, "shop/checkout", 12, 60);
    decide(worker, &site, "shop/checkout", 12, "prevented");
    let (code, stderr) = exit_code(child);
    assert_eq!(code, 1, "{stderr}");
}

#[test]
fn the_recipe_exits_2_when_no_decision_comes_in_time() {
    let worker = TestWorker::shared();
    let site = site(worker);
    let (code, stderr) = exit_code(run_recipe(worker, &site.token, "shop/checkout", 13, 3));
    assert_eq!(code, 2, "{stderr}");
}

#[test]
fn the_recipe_exits_3_when_the_submission_fails() {
    let worker = TestWorker::shared();
    let site = site(worker);
    let (code, stderr) = exit_code(run_recipe(worker, &site.read, "shop/checkout", 14, 10));
    assert_eq!(code, 3, "{stderr}");
    assert!(stderr.contains("403"), "{stderr}");
}

#[test]
fn the_recipe_submits_again_when_the_app_could_not_tell_whether_jira_took_it() {
    let worker = TestWorker::shared();
    let site = site(worker);
    // First submission: Jira's 2xx is garbled, so the app answers 502 jira_error.
    site.jira
        .answer_next_with(crate::support::loopback::Answer::new(202, "<html>"));
    let child = run_recipe(worker, &site.token, "shop/checkout", 15, 60);
    decide(worker, &site, "shop/checkout", 15, "allowed");
    let (code, stderr) = exit_code(child);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(site.jira.bulk_requests().len(), 2, "submitted twice");
}
