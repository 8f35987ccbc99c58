//! The operations the protocol micro-benchmarks time, and their inputs: one definition shared by
//! the native benchmark (`benches/protocol.rs`) and the wasm build of the same loop
//! (`benches/wasm-protocol`), so both time exactly the same code on the same data.
//!
//! No clock and no I/O here: each runner brings its own timer.

use std::hint::black_box;

use chrono::{DateTime, TimeZone, Utc};
use deployment_gating::config::HostPattern;
use deployment_gating::connect::credentials::SharedSecret;
use deployment_gating::connect::jwt::{
    sign_outbound, verify_hs256, QshRule, UntrustedConnectToken,
};
use deployment_gating::connect::lifecycle::{parse_payload, LifecycleEvent};
use deployment_gating::connect::qsh::{canonical_request, qsh, RequestParts};
use deployment_gating::gating::callback::parse_callback;

/// Operations per timed round; each figure is the median of `ROUNDS` rounds.
pub const ITERATIONS: u32 = 20_000;
pub const ROUNDS: usize = 9;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    VerifyCallbackToken,
    CanonicaliseQuery,
    QshOfQuery,
    SignOutbound,
    ParseCallbackPayload,
    ParseInstalledPayload,
}

impl Op {
    pub const ALL: [Op; 6] = [
        Op::VerifyCallbackToken,
        Op::CanonicaliseQuery,
        Op::QshOfQuery,
        Op::SignOutbound,
        Op::ParseCallbackPayload,
        Op::ParseInstalledPayload,
    ];

    /// The label printed and written as the row's `metric`.
    pub fn label(self) -> &'static str {
        match self {
            Op::VerifyCallbackToken => "verify callback token (parse, iss, qsh, HS256, claims)",
            Op::CanonicaliseQuery => "canonicalise a 20-parameter query",
            Op::QshOfQuery => "qsh of a 20-parameter query (canonicalise + SHA-256)",
            Op::SignOutbound => "sign an outbound token",
            Op::ParseCallbackPayload => "parse a gating callback payload (seed example)",
            Op::ParseInstalledPayload => "parse an installed lifecycle payload",
        }
    }
}

/// The inputs, built once outside the timed loops.
pub struct Fixtures {
    now: DateTime<Utc>,
    secret: SharedSecret,
    callback_qsh: String,
    token: String,
    url: String,
    callback_body: Vec<u8>,
    installed_body: Vec<u8>,
    tenant_hosts: Vec<HostPattern>,
}

impl Fixtures {
    pub fn new() -> Self {
        let now = Utc.with_ymd_and_hms(2026, 12, 3, 12, 0, 0).unwrap();
        let secret =
            SharedSecret::parse("AbCdEfGhIjKlMnOpQrStUvWxYz0123456789+/AbCdEfGhIjKl").unwrap();
        // A callback token as Jira would send it (signed here with the same HS256 scheme).
        let callback_qsh = qsh(&RequestParts::new("POST", "/callback", ""));
        let token = sign_outbound(
            "0e50fccb-239d-4991-a5db-dc850ba3f236",
            &secret,
            &callback_qsh,
            now,
        );
        let query: String = (0..20)
            .map(|i| format!("param{:02}=value+{i}%20with%2Fescapes&", 19 - i))
            .collect();
        let url = format!("/rest/api/3/search?{query}jwt=abc");
        // The seed's example callback (jira-deployment-gating-module.txt).
        let callback_body = br#"{"updatedTimestamp":"2020-08-25T06:04:50.239+00:00","gatingStatus":"awaiting","details":[{"type":"issue","issueKey":"ITSM-1","issueLink":"https://YOUR_SUBDOMAIN.atlassian.net/servicedesk/customer/portal/1/ITDSM-1"}],"pipelineId":"e9c906a7-451f-4fa6-ae1a-c389e2e2d87c","environmentId":"8ec94d72-a4fc-4ac0-b31d-c5a595f373ba","deploymentSequenceNumber":100}"#.to_vec();
        let installed_body = br#"{"key":"deployment-gating","clientKey":"0e50fccb-239d-4991-a5db-dc850ba3f236","sharedSecret":"a-long-shared-secret-0123456789-abcdef","baseUrl":"https://acme.atlassian.net","displayUrl":"https://jira.acme.com","productType":"jira","description":"Atlassian JIRA at https://acme.atlassian.net","serviceEntitlementNumber":"SEN-1","eventType":"installed"}"#.to_vec();
        let tenant_hosts = HostPattern::parse_list("*.atlassian.net, *.jira-dev.com").unwrap();
        Fixtures {
            now,
            secret,
            callback_qsh,
            token,
            url,
            callback_body,
            installed_body,
            tenant_hosts,
        }
    }

    /// Runs `op` once on the fixtures; panics if the operation fails, so a broken input cannot
    /// pass for a fast one.
    pub fn run(&self, op: Op) {
        match op {
            Op::VerifyCallbackToken => {
                let untrusted = UntrustedConnectToken::parse(black_box(&self.token)).unwrap();
                let _iss = untrusted.unverified_issuer().unwrap();
                let expected = qsh(&RequestParts::new("POST", black_box("/callback"), ""));
                let claims = verify_hs256(
                    &untrusted,
                    &self.secret,
                    QshRule::Request(&expected),
                    self.now,
                )
                .unwrap();
                black_box(claims);
            }
            Op::CanonicaliseQuery => {
                black_box(canonical_request(&RequestParts::new(
                    "GET",
                    black_box(&self.url),
                    "",
                )));
            }
            Op::QshOfQuery => {
                black_box(qsh(&RequestParts::new("GET", black_box(&self.url), "")));
            }
            Op::SignOutbound => {
                black_box(sign_outbound(
                    "deployment-gating",
                    &self.secret,
                    &self.callback_qsh,
                    self.now,
                ));
            }
            Op::ParseCallbackPayload => {
                black_box(parse_callback(black_box(&self.callback_body)).unwrap());
            }
            Op::ParseInstalledPayload => {
                black_box(
                    parse_payload(
                        black_box(&self.installed_body),
                        LifecycleEvent::Installed,
                        "deployment-gating",
                        &self.tenant_hosts,
                    )
                    .unwrap(),
                );
            }
        }
    }
}

impl Default for Fixtures {
    fn default() -> Self {
        Self::new()
    }
}
