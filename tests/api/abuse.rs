//! Abuse suite: one table of hostile requests against the shared worker, with two installed
//! tenants (A and B) holding gates, API tokens and a revoked token.
//!
//! Covered: oversized and chunked bodies, deeply nested JSON, invalid UTF-8, huge headers and
//! query strings (up to and past the runtime's limit), 10,000 query parameters on JWT routes,
//! path traversal and control characters in ids, forged, replayed, expired, `alg: none` and
//! algorithm-confused Connect JWTs (aimed at the routes that mint credentials), cross-tenant
//! tokens, bad bearer tokens and stream tickets, and WebSocket floods and bad frames.
//!
//! Each case must get a 4xx with the `{"error", "message"}` body (or the documented WebSocket
//! refusal or close code) without echoing a secret; after the whole corpus both tenants' gates,
//! events and tokens are what they were, Jira was never called, the tenants are still installed,
//! their tokens still work, and the worker still serves. What the other suites already assert
//! (each JWT check's code on `/api/v1/connection` in request_auth.rs, each bad callback in
//! gates.rs, forged installs in lifecycle.rs, forged and used tickets in stream.rs) is not
//! repeated here.

use serde_json::{json, Value};
use tungstenite::Message;

use crate::support::fake_jira::{qsh, FakeJira};
use crate::support::fixtures::{
    install_public_key_pem, ADMIN_TOKEN, INSTALL_KEY_ID, SITE_ADMIN_ACCOUNT,
};
use crate::support::jira_client::{
    api_get, claims, gate_payload, hmac_signed, hs256, now, unsigned,
};
use crate::support::ws::{self, Frame, Socket};
use crate::support::{raw_http, Reply, TestWorker};

/// How many cases the table holds; a case dropped by accident fails the suite.
const CASES: usize = 71;

/// What a case sends.
enum Send {
    Http {
        method: &'static str,
        path: String,
        headers: Vec<(String, String)>,
        body: Option<Vec<u8>>,
    },
    /// Bytes no URL-validating client would send: the request line and headers, then the body.
    Raw { head: Vec<u8>, body: Vec<u8> },
    /// A WebSocket upgrade to `/api/v1/stream?{query}`; `{ticket}` is replaced by a fresh
    /// ticket of A's read token.
    Upgrade { query: String },
    /// Frames on a freshly opened stream of A (after its snapshot), sent without reading.
    Frames(Vec<Message>),
}

/// What the case must get.
enum Expect {
    /// The worker's error: status and stable code.
    Error(u16, &'static str),
    /// A request head the runtime refuses before the worker runs: its own 4xx, not JSON.
    Runtime(u16),
    /// The upgrade refused with the worker's error.
    UpgradeRefused(u16, &'static str),
    /// The socket closed with this code.
    Closed(u16),
    /// Every frame answered with a frame of this type, then the socket still answers a ping.
    Answered(&'static str),
    /// The first frames answered with a frame of this type, then the socket closed with a code.
    AnsweredThenClosed(&'static str, usize, u16),
}

struct Case {
    name: String,
    send: Send,
    expect: Expect,
}

struct World {
    worker: &'static TestWorker,
    a: FakeJira,
    b: FakeJira,
    read_a: String,
    write_a: String,
    read_b: String,
    revoked_a: String,
    revoked_a_id: String,
    b_token_id: String,
}

fn header(name: &str, value: impl Into<String>) -> (String, String) {
    (name.to_owned(), value.into())
}

fn bearer(token: &str) -> Vec<(String, String)> {
    vec![header("Authorization", format!("Bearer {token}"))]
}

fn jwt(token: &str) -> Vec<(String, String)> {
    vec![
        header("Authorization", format!("JWT {token}")),
        header("Content-Type", "application/json"),
    ]
}

fn http(
    method: &'static str,
    path: impl Into<String>,
    headers: Vec<(String, String)>,
    body: Option<Vec<u8>>,
) -> Send {
    Send::Http {
        method,
        path: path.into(),
        headers,
        body,
    }
}

fn case(name: impl Into<String>, send: Send, expect: Expect) -> Case {
    Case {
        name: name.into(),
        send,
        expect,
    }
}

/// `n` distinct query parameters (`0=&1=&…`, keys in base 36), about 5 bytes each.
fn many_params(n: u32) -> String {
    let base36 = |mut i: u32| {
        let mut s = Vec::new();
        loop {
            s.push(b"0123456789abcdefghijklmnopqrstuvwxyz"[(i % 36) as usize]);
            i /= 36;
            if i == 0 {
                break;
            }
        }
        String::from_utf8(s).unwrap()
    };
    (0..n)
        .map(|i| format!("{}=", base36(i)))
        .collect::<Vec<_>>()
        .join("&")
}

fn setup() -> World {
    let worker = TestWorker::shared();
    let a = FakeJira::start("deployment-gating");
    a.install(worker);
    let b = FakeJira::start("deployment-gating");
    b.install(worker);
    for (site, pipeline) in [(&a, "abuse-a"), (&b, "abuse-b")] {
        site.deliver(
            worker,
            &gate_payload(
                pipeline,
                "prod",
                1,
                "awaiting",
                "2026-12-03T14:00:00.000+00:00",
            ),
        );
        site.deliver(
            worker,
            &gate_payload(
                pipeline,
                "prod",
                2,
                "allowed",
                "2026-12-03T14:00:01.000+00:00",
            ),
        );
    }
    let read_a = a.create_token(worker, &["gates:read"]);
    let write_a = a.create_token(worker, &["deployments:write"]);
    let read_b = b.create_token(worker, &["gates:read"]);
    let token_ids = |site: &FakeJira| -> Vec<String> {
        admin(
            worker,
            "GET",
            &format!("/api/v1/tokens?clientKey={}", site.client_key),
        )
        .json()["tokens"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let kept = token_ids(&a);
    let revoked_a = a.create_token(worker, &["gates:read"]);
    let revoked_a_id = token_ids(&a)
        .into_iter()
        .find(|id| !kept.contains(id))
        .unwrap();
    let b_token_id = token_ids(&b).remove(0);
    World {
        worker,
        a,
        b,
        read_a,
        write_a,
        read_b,
        revoked_a,
        revoked_a_id,
        b_token_id,
    }
}

fn admin(worker: &TestWorker, method: &str, path: &str) -> Reply {
    worker.request(
        method,
        path,
        &[("Authorization", &format!("Bearer {ADMIN_TOKEN}"))],
        None,
    )
}

/// Revokes A's token `revoked_a` and returns a ticket minted with it just before.
fn revoke_with_ticket(w: &World) -> String {
    let ticket = ws::ticket(w.worker, &w.revoked_a);
    let reply = admin(
        w.worker,
        "DELETE",
        &format!(
            "/api/v1/tokens/{}?clientKey={}",
            w.revoked_a_id, w.a.client_key
        ),
    );
    assert_eq!(reply.status, 204, "{}", reply.body);
    assert_eq!(
        api_get(w.worker, &w.revoked_a, "/api/v1/gates").status,
        401,
        "the token meant to be revoked still works"
    );
    ticket
}

/// Everything a hostile request must not change, as the tenants' own clients see it.
fn observe(w: &World) -> Value {
    let get = |token: &str, path: &str| {
        let reply = api_get(w.worker, token, path);
        assert_eq!(reply.status, 200, "{path}: {}", reply.body);
        reply.json()
    };
    let tokens = |client_key: &str| {
        let reply = admin(
            w.worker,
            "GET",
            &format!("/api/v1/tokens?clientKey={client_key}"),
        );
        assert_eq!(reply.status, 200, "{}", reply.body);
        reply.json()
    };
    json!({
        "a": {
            "gates": get(&w.read_a, "/api/v1/gates?limit=200"),
            "events": get(&w.read_a, "/api/v1/events?since=0&limit=1000"),
            "tokens": tokens(&w.a.client_key),
            "jiraSubmissions": w.a.bulk_requests().len(),
        },
        "b": {
            "gates": get(&w.read_b, "/api/v1/gates?limit=200"),
            "events": get(&w.read_b, "/api/v1/events?since=0&limit=1000"),
            "tokens": tokens(&w.b.client_key),
            "jiraSubmissions": w.b.bulk_requests().len(),
        },
    })
}

fn corpus(w: &World, revoked_ticket: &str) -> Vec<Case> {
    use Expect::*;
    let (a, b) = (&w.a, &w.b);
    let a_secret = a.shared_secret();
    let callback_token = a.request_token("POST", "/callback");
    let context_a = hs256(claims(&a.client_key, "context-qsh", json!({})), &a_secret);
    let token_body = json!({"name": "evil", "scopes": ["gates:read", "deployments:write"]})
        .to_string()
        .into_bytes();
    let install_claims = |overrides: Value| {
        let mut c = claims(&a.client_key, &qsh("POST", "/installed"), overrides);
        c["aud"] = json!(w.worker.base_url);
        c
    };
    let mut attacker_install = a.lifecycle_payload("installed", "deployment-gating");
    attacker_install["sharedSecret"] = json!("attacker-chosen-secret-0123456789abcdef");
    let attacker_install = attacker_install.to_string().into_bytes();
    let install_token = a.lifecycle_token(w.worker, "installed", json!({}));
    let pem = install_public_key_pem();
    let nested = |n: usize| vec![b'['; n];
    let bad_utf8 = b"{\"name\":\"\xff\xfe\",\"scopes\":[\"gates:read\"]}".to_vec();
    let raw_get = |path: &[u8], token: &str| {
        let mut head = b"GET ".to_vec();
        head.extend_from_slice(path);
        head.extend_from_slice(format!(" HTTP/1.1\r\nAuthorization: Bearer {token}").as_bytes());
        Send::Raw {
            head,
            body: Vec::new(),
        }
    };
    let (ra, rb) = (w.read_a.as_str(), w.read_b.as_str());
    // A's read token routed to B: B's tenant part, A's secret part.
    let a_random = &ra[ra.rfind('_').unwrap()..];
    let a_as_b = format!("{}{a_random}", &rb[..rb.rfind('_').unwrap()]);
    let ticket_of_a = ws::ticket(w.worker, ra);

    vec![
        // Stream tickets first: the revoked token's ticket is only valid for a minute.
        case(
            "ticket of a token revoked after it was issued",
            Send::Upgrade {
                query: format!("ticket={revoked_ticket}"),
            },
            UpgradeRefused(401, "invalid_token"),
        ),
        case(
            "stream without a ticket",
            Send::Upgrade {
                query: "since=0".into(),
            },
            UpgradeRefused(401, "invalid_token"),
        ),
        case(
            "ticket with a NUL byte",
            Send::Upgrade {
                query: format!("ticket={}%00", &ticket_of_a[..ticket_of_a.len() - 1]),
            },
            UpgradeRefused(401, "invalid_token"),
        ),
        case(
            "ticket of 60 KiB",
            Send::Upgrade {
                query: format!("ticket=dgs_{}", "A".repeat(60 * 1024)),
            },
            UpgradeRefused(401, "invalid_token"),
        ),
        case(
            "valid ticket, status filter that is not a status",
            Send::Upgrade {
                query: "ticket={ticket}&status=approved".into(),
            },
            UpgradeRefused(400, "invalid_parameter"),
        ),
        case(
            "valid ticket, negative since",
            Send::Upgrade {
                query: "ticket={ticket}&since=-1".into(),
            },
            UpgradeRefused(400, "invalid_parameter"),
        ),
        // WebSocket frames.
        case(
            "text frame of 4 KiB + 1",
            Send::Frames(vec![Message::Text("x".repeat(4097))]),
            Closed(1008),
        ),
        case(
            "subscribe padded past 4 KiB",
            Send::Frames(vec![Message::Text(format!(
                r#"{{"type":"subscribe","filters":{{"pipelineId":"{}"}}}}"#,
                "p".repeat(4096)
            ))]),
            Closed(1008),
        ),
        case(
            "text frame of 2 MiB",
            Send::Frames(vec![Message::Text("x".repeat(2 * 1024 * 1024))]),
            Closed(1008),
        ),
        case(
            "binary frame",
            Send::Frames(vec![Message::Binary(br#"{"type":"ping"}"#.to_vec())]),
            Closed(1008),
        ),
        case(
            "frame that is not JSON",
            Send::Frames(vec![Message::Text("\u{0}\u{1}not json".into())]),
            Closed(1008),
        ),
        case(
            "flood: 1,000 unknown messages at once",
            Send::Frames(
                (0..1000)
                    .map(|i| Message::Text(format!(r#"{{"type":"delete","n":{i}}}"#)))
                    .collect(),
            ),
            Closed(1008),
        ),
        case(
            "flood: 2,000 pings at once",
            Send::Frames(
                (0..2000)
                    .map(|_| Message::Text(r#"{"type":"ping"}"#.into()))
                    .collect(),
            ),
            Answered("pong"),
        ),
        case(
            "flood: 300 subscribes at once",
            Send::Frames(
                (0..300)
                    .map(|_| Message::Text(r#"{"type":"subscribe","filters":{}}"#.into()))
                    .collect(),
            ),
            // Each costs a snapshot: 20 are answered, the 21st closes the socket.
            AnsweredThenClosed("snapshot", 20, 1008),
        ),
        // Bodies.
        case(
            "1 MiB deployment body",
            http(
                "POST",
                "/api/v1/deployments",
                bearer(&w.write_a),
                Some(vec![b'a'; 1024 * 1024]),
            ),
            Error(413, "payload_too_large"),
        ),
        case(
            "plain-http request naming a public origin (BASE_URL unset)",
            Send::Raw {
                head: b"GET /healthz HTTP/1.1\r\nHost: evil.example.com".to_vec(),
                body: Vec::new(),
            },
            Error(400, "origin_not_usable"),
        ),
        case(
            "100 KiB callback body sent chunked, without Content-Length",
            Send::Raw {
                head: format!(
                    "POST /callback HTTP/1.1\r\nAuthorization: JWT {callback_token}\r\n\
                     Content-Type: application/json\r\nTransfer-Encoding: chunked"
                )
                .into_bytes(),
                body: raw_http::chunked(b' ', 100 * 1024),
            },
            Error(413, "payload_too_large"),
        ),
        case(
            "9 KiB token-creation body",
            http(
                "POST",
                "/api/v1/tokens",
                jwt(&context_a),
                Some(
                    json!({"name": "x".repeat(9 * 1024), "scopes": ["gates:read"]})
                        .to_string()
                        .into_bytes(),
                ),
            ),
            Error(413, "payload_too_large"),
        ),
        case(
            "100,000 '[' as a deployment",
            http(
                "POST",
                "/api/v1/deployments",
                bearer(&w.write_a),
                Some(nested(100_000)),
            ),
            Error(413, "payload_too_large"),
        ),
        case(
            "60,000 '[' as a deployment (under the size cap)",
            http(
                "POST",
                "/api/v1/deployments",
                bearer(&w.write_a),
                Some(nested(60_000)),
            ),
            Error(400, "invalid_payload"),
        ),
        case(
            "60,000 '[' as a callback (under the size cap)",
            http(
                "POST",
                "/callback",
                jwt(&callback_token),
                Some(nested(60_000)),
            ),
            Error(400, "invalid_payload"),
        ),
        case(
            "8,000 '[' as a token creation (under the size cap)",
            http(
                "POST",
                "/api/v1/tokens",
                jwt(&context_a),
                Some(nested(8_000)),
            ),
            Error(400, "invalid_payload"),
        ),
        case(
            "60,000 '[' as a signed install (under the size cap)",
            http(
                "POST",
                "/installed",
                jwt(&install_token),
                Some(nested(60_000)),
            ),
            Error(400, "invalid_payload"),
        ),
        case(
            "invalid UTF-8 deployment body",
            http(
                "POST",
                "/api/v1/deployments",
                bearer(&w.write_a),
                Some(b"{\"pipeline\":{\"id\":\"\xc3\x28\"}}".to_vec()),
            ),
            Error(400, "invalid_payload"),
        ),
        case(
            "invalid UTF-8 token-creation body",
            http("POST", "/api/v1/tokens", jwt(&context_a), Some(bad_utf8)),
            Error(400, "invalid_payload"),
        ),
        case(
            "invalid UTF-8 signed install body",
            http(
                "POST",
                "/installed",
                jwt(&install_token),
                Some(b"{\"key\":\"\xff\"}".to_vec()),
            ),
            Error(400, "invalid_payload"),
        ),
        // Headers and query strings.
        case(
            "64 KiB bearer token",
            http(
                "GET",
                "/api/v1/gates",
                bearer(&format!("dgt_{}", "A".repeat(64 * 1024))),
                None,
            ),
            Error(401, "invalid_token"),
        ),
        case(
            "64 KiB Connect JWT on the callback",
            http(
                "POST",
                "/callback",
                jwt(&format!("{0}.{0}.{0}", "A".repeat(21 * 1024))),
                Some(b"{}".to_vec()),
            ),
            Error(401, "token_malformed"),
        ),
        case(
            "200 KiB header (past the runtime's limit)",
            http(
                "GET",
                "/api/v1/gates",
                [
                    bearer(ra),
                    vec![header("X-Padding", "p".repeat(200 * 1024))],
                ]
                .concat(),
                None,
            ),
            Runtime(431),
        ),
        case(
            "150 KiB query string (past the runtime's limit)",
            http(
                "GET",
                format!("/api/v1/gates?pipelineId={}", "q".repeat(150 * 1024)),
                bearer(ra),
                None,
            ),
            Runtime(431),
        ),
        case(
            "60 KiB pipelineId filter",
            http(
                "GET",
                format!("/api/v1/gates?pipelineId={}", "q".repeat(60 * 1024)),
                bearer(ra),
                None,
            ),
            Error(400, "invalid_parameter"),
        ),
        case(
            "60 KiB cursor",
            http(
                "GET",
                format!("/api/v1/gates?cursor={}", "djE6".repeat(15 * 1024)),
                bearer(ra),
                None,
            ),
            Error(400, "invalid_parameter"),
        ),
        case(
            "events limit past u64",
            http(
                "GET",
                "/api/v1/events?limit=99999999999999999999999",
                bearer(ra),
                None,
            ),
            Error(400, "invalid_parameter"),
        ),
        case(
            "events since 2^63",
            http(
                "GET",
                "/api/v1/events?since=9223372036854775808",
                bearer(ra),
                None,
            ),
            Error(400, "invalid_parameter"),
        ),
        case(
            "10,000 query parameters on the callback (qsh without them)",
            http(
                "POST",
                format!("/callback?{}", many_params(10_000)),
                jwt(&callback_token),
                Some(
                    gate_payload("abuse-a", "prod", 1, "prevented", "2026-12-03T15:00:00Z")
                        .to_string()
                        .into_bytes(),
                ),
            ),
            Error(401, "qsh_mismatch"),
        ),
        case(
            "10,000 query parameters on token listing (qsh without them)",
            http(
                "GET",
                format!("/api/v1/tokens?{}", many_params(10_000)),
                jwt(&a.request_token("GET", "/api/v1/tokens")),
                None,
            ),
            Error(401, "qsh_mismatch"),
        ),
        // Paths: traversal, encoded separators, control characters.
        case(
            "literal '..' climbing from a gate to the tokens route",
            raw_get(b"/api/v1/gates/../tokens", ra),
            Error(401, "invalid_token"),
        ),
        case(
            "'%2e%2e' segments",
            raw_get(b"/api/v1/gates/%2e%2e/%2e%2e/%2e%2e/healthz/x", ra),
            Error(404, "not_found"),
        ),
        case(
            "'%2F..%2F' inside a pipeline id",
            http(
                "GET",
                "/api/v1/gates/abuse-a%2F..%2F..%2Fabuse-b/prod/1",
                bearer(ra),
                None,
            ),
            Error(404, "not_found"),
        ),
        case(
            "B's pipeline reached through '%2F' from A's token",
            http(
                "GET",
                "/api/v1/gates/..%2F..%2Fabuse-b/prod/1",
                bearer(ra),
                None,
            ),
            Error(404, "not_found"),
        ),
        case(
            "NUL in a pipeline id",
            http("GET", "/api/v1/gates/abuse-a%00/prod/1", bearer(ra), None),
            Error(400, "invalid_parameter"),
        ),
        case(
            "CR LF in an environment id",
            http(
                "GET",
                "/api/v1/gates/abuse-a/prod%0d%0aX-Injected:%201/1",
                bearer(ra),
                None,
            ),
            Error(400, "invalid_parameter"),
        ),
        case(
            "percent-encoded invalid UTF-8 in a pipeline id",
            http("GET", "/api/v1/gates/%ff%fe/prod/1", bearer(ra), None),
            Error(400, "invalid_parameter"),
        ),
        case(
            // The runtime replaces each invalid byte with U+FFFD: a valid id naming no gate.
            "raw invalid UTF-8 bytes in the path",
            raw_get(b"/api/v1/gates/\xff\xfe/prod/1", ra),
            Error(404, "not_found"),
        ),
        case(
            "raw control byte in the path",
            raw_get(b"/api/v1/gates/abuse-a\x01/prod/1", ra),
            Error(400, "invalid_parameter"),
        ),
        case(
            "pipeline id of 256 characters",
            http(
                "GET",
                format!("/api/v1/gates/{}/prod/1", "p".repeat(256)),
                bearer(ra),
                None,
            ),
            Error(400, "invalid_parameter"),
        ),
        case(
            "sequence number 2^63",
            http(
                "GET",
                "/api/v1/gates/abuse-a/prod/9223372036854775808",
                bearer(ra),
                None,
            ),
            Error(400, "invalid_parameter"),
        ),
        case(
            "revoking a token id with traversal",
            http(
                "DELETE",
                format!(
                    "/api/v1/tokens/..%2F..%2Fhealthz?clientKey={}",
                    a.client_key
                ),
                bearer(ADMIN_TOKEN),
                None,
            ),
            Error(404, "not_found"),
        ),
        // Connect JWTs aimed at the routes that mint credentials or change state.
        case(
            "context token signed with a wrong secret, minting an API token",
            http(
                "POST",
                "/api/v1/tokens",
                jwt(&hs256(
                    claims(&a.client_key, "context-qsh", json!({})),
                    &"w".repeat(64),
                )),
                Some(token_body.clone()),
            ),
            Error(401, "bad_signature"),
        ),
        case(
            "callback token replayed on token creation (qsh mismatch)",
            http(
                "POST",
                "/api/v1/tokens",
                jwt(&callback_token),
                Some(token_body.clone()),
            ),
            Error(401, "qsh_mismatch"),
        ),
        case(
            "connection token replayed on token listing (qsh mismatch)",
            http(
                "GET",
                "/api/v1/tokens",
                jwt(&a.request_token("GET", "/api/v1/connection")),
                None,
            ),
            Error(401, "qsh_mismatch"),
        ),
        case(
            "callback token replayed in ?jwt= on token revocation",
            http(
                "DELETE",
                format!("/api/v1/tokens/{}?jwt={callback_token}", w.b_token_id),
                vec![],
                None,
            ),
            Error(401, "qsh_mismatch"),
        ),
        case(
            "expired context token minting an API token",
            http(
                "POST",
                "/api/v1/tokens",
                jwt(&hs256(
                    claims(
                        &a.client_key,
                        "context-qsh",
                        json!({"iat": now() - 3600, "exp": now() - 600}),
                    ),
                    &a_secret,
                )),
                Some(token_body.clone()),
            ),
            Error(401, "token_expired"),
        ),
        case(
            "expired callback token",
            http(
                "POST",
                "/callback",
                jwt(&hs256(
                    claims(
                        &a.client_key,
                        &qsh("POST", "/callback"),
                        json!({"exp": now() - 120}),
                    ),
                    &a_secret,
                )),
                Some(
                    gate_payload("abuse-a", "prod", 1, "prevented", "2026-12-03T15:00:00Z")
                        .to_string()
                        .into_bytes(),
                ),
            ),
            Error(401, "token_expired"),
        ),
        case(
            "alg none minting an API token",
            http(
                "POST",
                "/api/v1/tokens",
                jwt(&unsigned(
                    "none",
                    claims(&a.client_key, "context-qsh", json!({})),
                )),
                Some(token_body.clone()),
            ),
            Error(401, "alg_not_allowed"),
        ),
        case(
            "alg none on the callback",
            http(
                "POST",
                "/callback",
                jwt(&unsigned(
                    "none",
                    claims(&a.client_key, &qsh("POST", "/callback"), json!({})),
                )),
                Some(
                    gate_payload("abuse-a", "prod", 1, "prevented", "2026-12-03T15:00:00Z")
                        .to_string()
                        .into_bytes(),
                ),
            ),
            Error(401, "alg_not_allowed"),
        ),
        case(
            "re-install as HS256 keyed with the install public key PEM",
            http(
                "POST",
                "/installed",
                jwt(&hmac_signed(
                    json!({"alg": "HS256", "typ": "JWT", "kid": INSTALL_KEY_ID}),
                    install_claims(json!({})),
                    pem.as_bytes(),
                )),
                Some(attacker_install.clone()),
            ),
            Error(401, "alg_not_allowed"),
        ),
        case(
            "re-install with an RS256 header over an HMAC keyed with the public key PEM",
            http(
                "POST",
                "/installed",
                jwt(&hmac_signed(
                    json!({"alg": "RS256", "typ": "JWT", "kid": INSTALL_KEY_ID}),
                    install_claims(json!({})),
                    pem.as_bytes(),
                )),
                Some(attacker_install.clone()),
            ),
            Error(401, "bad_signature"),
        ),
        case(
            "A's secret signing a callback as B",
            http(
                "POST",
                "/callback",
                jwt(&hs256(
                    claims(&b.client_key, &qsh("POST", "/callback"), json!({})),
                    &a_secret,
                )),
                Some(
                    gate_payload("abuse-b", "prod", 1, "prevented", "2026-12-03T15:00:00Z")
                        .to_string()
                        .into_bytes(),
                ),
            ),
            Error(401, "bad_signature"),
        ),
        case(
            "iss of 10 KiB",
            http(
                "POST",
                "/callback",
                jwt(&hs256(
                    claims(&"i".repeat(10 * 1024), &qsh("POST", "/callback"), json!({})),
                    &a_secret,
                )),
                Some(b"{}".to_vec()),
            ),
            Error(401, "unknown_tenant"),
        ),
        case(
            "A's Connect JWT revoking B's token by id",
            http(
                "DELETE",
                format!("/api/v1/tokens/{}", w.b_token_id),
                // A's site administrator: past the admin check, B's token is still not A's.
                jwt(&hs256(
                    claims(
                        &a.client_key,
                        &qsh("DELETE", &format!("/api/v1/tokens/{}", w.b_token_id)),
                        json!({"sub": SITE_ADMIN_ACCOUNT}),
                    ),
                    &a.shared_secret(),
                )),
                None,
            ),
            Error(404, "not_found"),
        ),
        // API bearer tokens.
        case(
            "empty bearer",
            http("GET", "/api/v1/gates", bearer(""), None),
            Error(401, "invalid_token"),
        ),
        case(
            "bearer that is only the prefix",
            http("GET", "/api/v1/gates", bearer("dgt_"), None),
            Error(401, "invalid_token"),
        ),
        case(
            "A's token with its tenant part rewritten to B",
            http("GET", "/api/v1/gates", bearer(&a_as_b), None),
            Error(401, "invalid_token"),
        ),
        case(
            "revoked token",
            http("GET", "/api/v1/events?since=0", bearer(&w.revoked_a), None),
            Error(401, "invalid_token"),
        ),
        case(
            "stream ticket used as a bearer",
            http("GET", "/api/v1/gates", bearer(&ticket_of_a), None),
            Error(401, "invalid_token"),
        ),
        case(
            "ADMIN_TOKEN used as a gates bearer",
            http("GET", "/api/v1/gates", bearer(ADMIN_TOKEN), None),
            Error(401, "invalid_token"),
        ),
        case(
            "lower-case 'bearer' scheme",
            http(
                "GET",
                "/api/v1/gates",
                vec![header("Authorization", format!("bearer {ra}"))],
                None,
            ),
            Error(401, "invalid_token"),
        ),
        case(
            "wrong ADMIN_TOKEN",
            http(
                "GET",
                format!("/api/v1/tokens?clientKey={}", a.client_key),
                bearer(&format!("{ADMIN_TOKEN}x")),
                None,
            ),
            Error(401, "invalid_token"),
        ),
        case(
            "ADMIN_TOKEN with a clientKey that never installed",
            http(
                "POST",
                "/api/v1/tokens",
                bearer(ADMIN_TOKEN),
                Some(
                    json!({"name": "x", "scopes": ["gates:read"], "clientKey": "never-installed"})
                        .to_string()
                        .into_bytes(),
                ),
            ),
            Error(401, "unknown_tenant"),
        ),
        case(
            "ADMIN_TOKEN with a clientKey holding NUL and '..'",
            http(
                "GET",
                "/api/v1/tokens?clientKey=..%2F%00",
                bearer(ADMIN_TOKEN),
                None,
            ),
            Error(400, "invalid_payload"),
        ),
    ]
}

/// Sends one case and checks what came back: `Err` says how the answer broke the rule.
fn run(w: &World, case: &Case, snapshot: &Value, secrets: &[&str]) -> Result<(), String> {
    let reply = match &case.send {
        Send::Http {
            method,
            path,
            headers,
            body,
        } => {
            let headers: Vec<(&str, &str)> = headers
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            w.worker.request(method, path, &headers, body.as_deref())
        }
        Send::Raw { head, body } => raw_http::exchange(&w.worker.base_url, head, body)
            .ok_or("the connection closed without an answer")?,
        Send::Upgrade { query } => {
            let query = query.replace("{ticket}", &ws::ticket(w.worker, &w.read_a));
            let head = raw_http::upgrade_head(&format!("/api/v1/stream?{query}"));
            raw_http::exchange(&w.worker.base_url, &head, &[])
                .ok_or("the connection closed without an answer")?
        }
        Send::Frames(frames) => {
            let mut socket = ws::connect(w.worker, &w.read_a, "");
            let first = ws::next_json(&mut socket);
            if first["type"] != "snapshot" {
                return Err(format!("first frame {first}"));
            }
            for frame in frames {
                // The server may close after the first bad frame; later writes may then fail.
                if socket.send(frame.clone()).is_err() {
                    break;
                }
            }
            return check_socket(&mut socket, frames.len(), &case.expect, snapshot);
        }
    };
    if secrets.iter().any(|s| reply.body.contains(s)) {
        return Err("a secret or token was echoed".into());
    }
    let expected = match case.expect {
        Expect::Error(status, code) | Expect::UpgradeRefused(status, code) => (status, Some(code)),
        Expect::Runtime(status) => (status, None),
        Expect::Closed(_) | Expect::Answered(_) | Expect::AnsweredThenClosed(..) => {
            return Err("not a socket case".into())
        }
    };
    let body: Option<Value> = serde_json::from_str(&reply.body).ok();
    let code = body.as_ref().and_then(|b| b["error"].as_str());
    let message = body.as_ref().and_then(|b| b["message"].as_str());
    let got = (reply.status, code);
    if got != expected || (code.is_some() && message.is_none_or(str::is_empty)) {
        return Err(format!(
            "expected {expected:?}, got {} {:?}",
            reply.status,
            reply.body.chars().take(300).collect::<String>()
        ));
    }
    Ok(())
}

fn check_socket(
    socket: &mut Socket,
    sent: usize,
    expect: &Expect,
    snapshot: &Value,
) -> Result<(), String> {
    let wait = std::time::Duration::from_secs(10);
    match expect {
        Expect::Closed(code) => match ws::next(socket, wait) {
            Frame::Closed(got) if got == Some(*code) => Ok(()),
            other => Err(format!("expected close {code}, got {other:?}")),
        },
        Expect::Answered(kind) => {
            for i in 0..sent {
                match ws::next(socket, wait) {
                    Frame::Json(v)
                        if v["type"] == *kind
                            && (*kind != "snapshot"
                                || v["gates"] == snapshot["a"]["gates"]["gates"]) => {}
                    other => return Err(format!("answer {i} of {sent}: {other:?}")),
                }
            }
            ws::send(socket, r#"{"type":"ping"}"#);
            match ws::next(socket, wait) {
                Frame::Json(v) if v["type"] == "pong" => Ok(()),
                other => Err(format!("after the flood: {other:?}")),
            }
        }
        Expect::AnsweredThenClosed(kind, answered, code) => {
            for i in 0..*answered {
                match ws::next(socket, wait) {
                    Frame::Json(v) if v["type"] == *kind => {}
                    other => return Err(format!("answer {i} of {answered}: {other:?}")),
                }
            }
            match ws::next(socket, wait) {
                Frame::Closed(got) if got == Some(*code) => Ok(()),
                other => Err(format!(
                    "expected close {code} after {answered} answers, got {other:?}"
                )),
            }
        }
        _ => Err("not a socket expectation".into()),
    }
}

#[test]
fn hostile_requests_get_4xx_and_change_nothing() {
    let w = setup();
    let revoked_ticket = revoke_with_ticket(&w);
    let before = observe(&w);
    let secrets = [
        w.a.shared_secret(),
        w.b.shared_secret(),
        w.read_a.clone(),
        w.write_a.clone(),
        w.read_b.clone(),
        ADMIN_TOKEN.to_owned(),
    ];
    let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();

    let cases = corpus(&w, &revoked_ticket);
    let mut tried = 0;
    let mut failures = Vec::new();
    for case in &cases {
        if let Err(why) = run(&w, case, &before, &secrets) {
            failures.push(format!("{}: {why}", case.name));
        }
        tried += 1;
    }
    eprintln!(
        "abuse: {tried} hostile requests tried, {} answered otherwise than documented",
        failures.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(tried, cases.len());
    assert_eq!(cases.len(), CASES, "the table changed: update CASES");

    // The worker still serves, both tenants are installed, their tokens work, nothing changed.
    let health = w.worker.get("/healthz");
    assert_eq!(
        (health.status, health.body.as_str()),
        (200, r#"{"status":"ok"}"#)
    );
    for site in [&w.a, &w.b] {
        let reply = site.call(w.worker, "GET", "/api/v1/connection");
        assert_eq!(
            reply.status, 200,
            "tenant no longer installed: {}",
            reply.body
        );
    }
    assert_eq!(
        observe(&w),
        before,
        "a hostile request changed a tenant's state"
    );
    let log = w.worker.log();
    // ADMIN_TOKEN is left out: the test harness sets it as a var (a secret in production), and
    // wrangler prints the vars when it starts.
    for (i, secret) in secrets
        .iter()
        .enumerate()
        .filter(|(_, s)| **s != ADMIN_TOKEN)
    {
        if let Some(at) = log.find(secret) {
            let line_start = log[..at].rfind('\n').map_or(0, |n| n + 1);
            let line: String = log[line_start..].chars().take(400).collect();
            panic!("secret {i} reached the log: {line}");
        }
    }
}

/// The positive control of the 10,000-parameter cases: the same query under a token whose qsh
/// covers it is canonicalised and accepted, so the refusals above are the qsh check's, not a
/// limit or a crash.
#[test]
fn ten_thousand_query_parameters_under_a_matching_qsh_are_accepted() {
    let worker = TestWorker::shared();
    let jira = FakeJira::start("deployment-gating");
    jira.install(worker);
    let path = format!("/api/v1/connection?{}", many_params(10_000));
    let reply = jira.call(worker, "GET", &path);
    assert_eq!(reply.status, 200, "{}", reply.body);
}
