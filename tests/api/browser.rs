//! The dashboard in a real browser (headless Chromium): it connects, shows a gate within a second
//! of Jira's callback, and after a forced reconnect shows every gate exactly once; the admin page
//! inside Jira creates, shows once and revokes a token. Also renders the screenshots in `docs/`
//! (rewritten when `UPDATE_SCREENSHOTS=1`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::support::chromium::Browser;
use crate::support::fake_jira::FakeJira;
use crate::support::fixtures::{repo_path, SITE_ADMIN_ACCOUNT};
use crate::support::jira_client::gate_payload;
use crate::support::TestWorker;

const PAGE_WAIT: Duration = Duration::from_secs(15);

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn at(minutes_ago: u64) -> String {
    let t = chrono::Utc::now() - chrono::Duration::minutes(minutes_ago as i64);
    t.format("%Y-%m-%dT%H:%M:%S%.3f+00:00").to_string()
}

/// The row of gate `pipeline/prod/seq` and its status, or null.
fn row_status(pipeline: &str, seq: u64) -> String {
    format!(
        r#"(() => {{ const r = document.querySelectorAll('tr[data-key="{pipeline}/prod/{seq}"]');
             return r.length === 1 ? r[0].querySelector('.status').textContent
                  : r.length > 1 ? "shown " + r.length + " times" : null; }})()"#
    )
}

#[test]
fn the_dashboard_shows_gates_live_and_once_across_a_forced_reconnect() {
    let worker = TestWorker::shared();
    let jira = FakeJira::start("deployment-gating");
    jira.install(worker);
    let token = jira.create_token(worker, &["gates:read"]);
    let mut browser = Browser::launch();
    browser.navigate(&worker.url(&format!("/dashboard#token={token}")));
    browser.wait_for(
        r#"document.getElementById("conn").textContent === "Live""#,
        PAGE_WAIT,
        "the dashboard to connect",
    );
    assert_eq!(
        browser.eval(r#"getComputedStyle(document.getElementById("token-form")).display"#),
        "none",
        "the token form is out of the way once connected"
    );
    // When the row appears, the page notes the time (same machine clock as the test).
    browser.eval(
        r#"window.rowSeenAt = null;
           new MutationObserver(() => {
             if (!window.rowSeenAt && document.querySelector('tr[data-key="web/prod/1"]')) window.rowSeenAt = Date.now();
           }).observe(document.getElementById("rows"), { childList: true, subtree: true }); true"#,
    );

    let posted = now_ms();
    jira.deliver(worker, &gate_payload("web", "prod", 1, "awaiting", &at(0)));
    assert_eq!(
        browser.wait_for(&row_status("web", 1), PAGE_WAIT, "the gate's row"),
        "awaiting"
    );
    let seen = browser.eval("window.rowSeenAt").as_u64().unwrap();
    let latency = seen.saturating_sub(posted);
    eprintln!("callback posted -> row on screen: {latency} ms");
    assert!(latency < 1000, "the gate took {latency} ms to show");

    // Force a reconnect; while the page is away, Jira decides and another gate appears.
    browser.eval("window.gatesDashboard.drop(); true");
    browser.wait_for(
        r#"document.getElementById("conn").textContent !== "Live""#,
        PAGE_WAIT,
        "the page to notice the drop",
    );
    jira.deliver(worker, &gate_payload("web", "prod", 1, "allowed", &at(0)));
    jira.deliver(worker, &gate_payload("api", "prod", 7, "prevented", &at(0)));
    browser.wait_for(
        "window.gatesDashboard.connections() === 2",
        PAGE_WAIT,
        "the page to reconnect",
    );
    assert_eq!(
        browser.wait_for(
            &format!("{0} === 'allowed' && {0}", row_status("web", 1)),
            PAGE_WAIT,
            "the missed decision"
        ),
        "allowed"
    );
    assert_eq!(
        browser.wait_for(&row_status("api", 7), PAGE_WAIT, "the missed gate"),
        "prevented"
    );
    assert_eq!(
        browser.eval("document.querySelectorAll('#rows tr').length"),
        2
    );
}

#[test]
fn a_site_admin_creates_and_revokes_a_token_on_the_admin_page_inside_jira() {
    let worker = TestWorker::shared();
    let jira = FakeJira::start("deployment-gating");
    jira.install(worker);
    let mut browser = Browser::launch();
    // Jira's side of the frame: all.js (from Atlassian's CDN, out of reach here) would hand the
    // page a context JWT for the signed-in user; the stand-in hands out the site admin's.
    let context = jira.context_token(SITE_ADMIN_ACCOUNT);
    browser.before_each_document(&format!(
        "window.AP = {{ context: {{ getToken: (cb) => cb({context:?}) }} }}; window.confirm = () => true;"
    ));
    let page = "/jira/admin?xdm_e=https%3A%2F%2Fsite.atlassian.net&cp=";
    let jwt = jira.request_token("GET", page);
    browser.navigate(&worker.url(&format!("{page}&jwt={jwt}")));
    browser.wait_for(
        r#"document.getElementById("none").hidden === false"#,
        PAGE_WAIT,
        "the empty token list",
    );

    browser.eval(
        r#"document.getElementById("name").value = "github-prod";
           document.querySelector('input[value="deployments:write"]').checked = true;
           document.querySelector('#create button').click(); true"#,
    );
    let shown = browser.wait_for(
        r#"document.getElementById("created-token").textContent"#,
        PAGE_WAIT,
        "the new token",
    );
    let token = shown.as_str().unwrap().to_owned();
    assert!(token.starts_with("dgt_"), "{token}");
    assert_eq!(
        browser.wait_for(
            "document.querySelector('#tokens tr td:nth-child(2)')?.textContent",
            PAGE_WAIT,
            "the token in the list",
        ),
        "gates:read, deployments:write"
    );
    // The token the page showed works, until the page revokes it.
    let events = |t: &str| crate::support::jira_client::api_get(worker, t, "/api/v1/events").status;
    assert_eq!(events(&token), 200);
    // The picture in docs/ shows no usable secret, even of a throwaway test worker.
    browser.eval(
        r#"const t = document.getElementById("created-token");
           t.textContent = t.textContent.slice(0, 40) + "…"; true"#,
    );
    screenshot(&mut browser, "admin-page.png", 1000, 440, false);
    browser.eval("document.querySelector('#tokens button').click(); true");
    browser.wait_for(
        "document.querySelector('#tokens tr.revoked') !== null",
        PAGE_WAIT,
        "the revoked row",
    );
    assert_eq!(events(&token), 401);
}

#[test]
fn screenshots_at_desktop_and_phone_widths() {
    let worker = TestWorker::shared();
    let jira = FakeJira::start("deployment-gating");
    jira.install(worker);
    let token = jira.create_token(worker, &["gates:read"]);
    for (pipeline, env, seq, status, age) in [
        ("payments-api", "production", 412, "awaiting", 2),
        ("checkout-web", "production", 1088, "allowed", 9),
        ("search-indexer", "production", 57, "prevented", 26),
        ("mobile-bff", "staging", 230, "allowed", 74),
        ("ledger", "production", 19, "invalid", 190),
    ] {
        let mut payload = gate_payload(pipeline, env, seq, status, &at(age));
        payload["details"][0]["issueKey"] = format!("CHG-{}", 100 + seq % 90).into();
        jira.deliver(worker, &payload);
    }
    let mut browser = Browser::launch();
    browser.navigate(&worker.url(&format!("/dashboard#token={token}")));
    browser.wait_for(
        "document.querySelectorAll('#rows tr').length === 5",
        PAGE_WAIT,
        "five gates",
    );
    screenshot(&mut browser, "dashboard-desktop.png", 1200, 460, false);
    screenshot(&mut browser, "dashboard-phone.png", 390, 844, true);
}

/// Writes a PNG of the page to `target/screenshots/`, or to `docs/` with `UPDATE_SCREENSHOTS=1`.
fn screenshot(browser: &mut Browser, name: &str, width: u32, height: u32, mobile: bool) {
    let png = browser.screenshot(width, height, mobile);
    assert!(png.starts_with(b"\x89PNG"), "{name} is a PNG");
    let dir = if std::env::var("UPDATE_SCREENSHOTS").is_ok_and(|v| v == "1") {
        repo_path("docs")
    } else {
        repo_path("target/screenshots")
    };
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(name), png).unwrap();
}
