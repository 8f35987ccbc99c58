//! Native micro-benchmarks of the Connect protocol hot paths (no criterion: a plain timing loop
//! keeps the test build light). Each figure is the median of 9 rounds; run with
//! `cargo bench --bench protocol`.

use std::hint::black_box;
use std::time::Instant;

use chrono::{TimeZone, Utc};
use deployment_gating::connect::credentials::SharedSecret;
use deployment_gating::connect::jwt::{
    sign_outbound, verify_hs256, QshRule, UntrustedConnectToken,
};
use deployment_gating::connect::qsh::{canonical_request, qsh, RequestParts};

fn median_ns_per_op(iterations: u32, mut op: impl FnMut()) -> f64 {
    for _ in 0..iterations / 10 {
        op(); // warm-up
    }
    let mut rounds: Vec<f64> = (0..9)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..iterations {
                op();
            }
            start.elapsed().as_nanos() as f64 / f64::from(iterations)
        })
        .collect();
    rounds.sort_by(|a, b| a.partial_cmp(b).unwrap());
    rounds[4]
}

fn report(name: &str, ns: f64) {
    println!("{name:<52} {:>10.2} µs/op", ns / 1000.0);
}

fn main() {
    let now = Utc.with_ymd_and_hms(2026, 12, 3, 12, 0, 0).unwrap();
    let secret = SharedSecret::parse("AbCdEfGhIjKlMnOpQrStUvWxYz0123456789+/AbCdEfGhIjKl").unwrap();

    // A callback token as Jira would send it (signed here with the same HS256 scheme).
    let callback_qsh = qsh(&RequestParts::new("POST", "/callback", ""));
    let token = sign_outbound(
        "0e50fccb-239d-4991-a5db-dc850ba3f236",
        &secret,
        &callback_qsh,
        now,
    );

    let verify = median_ns_per_op(20_000, || {
        let untrusted = UntrustedConnectToken::parse(black_box(&token)).unwrap();
        let _iss = untrusted.unverified_issuer().unwrap();
        let expected = qsh(&RequestParts::new("POST", black_box("/callback"), ""));
        let claims = verify_hs256(&untrusted, &secret, QshRule::Request(&expected), now).unwrap();
        black_box(claims);
    });
    report(
        "verify callback token (parse, iss, qsh, HS256, claims)",
        verify,
    );

    let query: String = (0..20)
        .map(|i| format!("param{:02}=value+{i}%20with%2Fescapes&", 19 - i))
        .collect();
    let url = format!("/rest/api/3/search?{query}jwt=abc");
    let canonical = median_ns_per_op(20_000, || {
        black_box(canonical_request(&RequestParts::new(
            "GET",
            black_box(&url),
            "",
        )));
    });
    report("canonicalise a 20-parameter query", canonical);

    let hash = median_ns_per_op(20_000, || {
        black_box(qsh(&RequestParts::new("GET", black_box(&url), "")));
    });
    report("qsh of a 20-parameter query (canonicalise + SHA-256)", hash);

    let sign = median_ns_per_op(20_000, || {
        black_box(sign_outbound(
            "deployment-gating",
            &secret,
            &callback_qsh,
            now,
        ));
    });
    report("sign an outbound token", sign);
}
