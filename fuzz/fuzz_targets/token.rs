//! The Connect JWT parser and verifiers on arbitrary tokens.
//!
//! Each input is used three ways: (1) as a raw token (UTF-8, lossily); (2) split at its first
//! newline into a header and a claims text, which the target signs with the fixed secret, so the
//! claim checks behind the signature are reached too; (3) the same two texts as app key and qsh of
//! an outbound token. Checks, besides "never panics": a token verifies only if an independent
//! HMAC-SHA256 over its first two parts with the fixed secret matches its signature; a verified
//! token's `iss`/`qsh`/`exp` are what its claims say and what the call site required; a callback
//! never accepts a context token; a `kid` that passes validation is URL-safe; the app's outbound
//! tokens verify with the same secret.
#![no_main]

use base64ct::{Base64UrlUnpadded, Encoding};
use chrono::{DateTime, TimeZone, Utc};
use deployment_gating::connect::credentials::SharedSecret;
use deployment_gating::connect::jwt::{
    sign_outbound, validate_key_id, verify_hs256, verify_install, AuthError, InstallExpectation,
    QshRule, UntrustedConnectToken, CONTEXT_QSH, LEEWAY,
};
use hmac::{Hmac, Mac};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use sha2::Sha256;

const SECRET: &str = "fuzz-tenant-secret-0123456789abcdefghij";
/// The qsh of `POST /callback` (connect-protocol.md §4).
const CALLBACK_QSH: &str = "68eb4171c15669ca90cbbb154a5c0ee54f31b20995473773d0bf3f464198a883";

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 3, 12, 0, 0).unwrap()
}

fn secret() -> SharedSecret {
    SharedSecret::parse(SECRET).unwrap()
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    check_token(&text, None);

    let (first, second) = text.split_once('\n').unwrap_or((&text, ""));
    let signed = sign_hs256(first, second);
    check_token(&signed, serde_json::from_str::<Value>(second).ok().as_ref());

    check_outbound(first, second);
});

fn check_token(raw: &str, signed_claims: Option<&Value>) {
    let Ok(token) = UntrustedConnectToken::parse(raw) else {
        return;
    };
    let _ = token.unverified_issuer();
    if let Ok(kid) = validate_key_id(token.unverified_key_id()) {
        assert!(!kid.starts_with('.') && (1..=128).contains(&kid.len()));
        assert!(kid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')));
    }

    let callback = verify_hs256(&token, &secret(), QshRule::Request(CALLBACK_QSH), now());
    let page = verify_hs256(
        &token,
        &secret(),
        QshRule::RequestOrContext(CALLBACK_QSH),
        now(),
    );
    if callback.is_ok() || page.is_ok() {
        assert!(
            signed_with_secret(raw),
            "verified a token not signed with the secret: {raw:?}"
        );
    }
    if let Ok(claims) = &page {
        assert!(claims.expires_at > now() - LEEWAY);
        if let Some(json) = signed_claims {
            assert_eq!(json["iss"].as_str(), Some(claims.issuer.as_str()));
            let qsh = json["qsh"].as_str();
            assert_eq!(claims.context_token, qsh == Some(CONTEXT_QSH));
            assert!(claims.context_token || qsh == Some(CALLBACK_QSH));
        }
    }
    match &callback {
        Ok(claims) => {
            assert!(!claims.context_token);
            assert_eq!(Ok(claims), page.as_ref());
        }
        Err(AuthError::ContextTokenNotAllowed) => {
            // The qsh is checked before `iss`, so a context token without `iss` lands here too.
            assert!(
                page.as_ref().is_ok_and(|c| c.context_token)
                    || page == Err(AuthError::ClaimMissing("iss"))
            );
        }
        Err(_) => {}
    }

    // The install path on the same token. The RS256 signature is the runtime's (WebCrypto) to
    // check; whatever it says, only an RS256 token is accepted, a failed signature never is,
    // and a token that passes as an install cannot also pass as an HS256 request token.
    let expect = InstallExpectation {
        audience: "https://gates.example.com",
        client_key: "client-1",
        qsh: CALLBACK_QSH,
    };
    let vouched = verify_install(&token, true, expect, now());
    match token.rs256_signed_parts() {
        Ok(parts) => {
            assert!(raw.as_bytes().starts_with(parts.signing_input));
            assert_eq!(
                verify_install(&token, false, expect, now()).err(),
                Some(AuthError::BadSignature)
            );
        }
        Err(_) => assert!(vouched.is_err(), "only RS256 tokens pass as installs"),
    }
    if vouched.is_ok() {
        assert!(callback.is_err() && page.is_err());
    }
}

/// The token the fixed secret gives `header.claims`, built without the code under test.
fn sign_hs256(header: &str, claims: &str) -> String {
    let signing_input = format!(
        "{}.{}",
        Base64UrlUnpadded::encode_string(header.as_bytes()),
        Base64UrlUnpadded::encode_string(claims.as_bytes())
    );
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(signing_input.as_bytes());
    let signature = Base64UrlUnpadded::encode_string(&mac.finalize().into_bytes());
    format!("{signing_input}.{signature}")
}

fn signed_with_secret(raw: &str) -> bool {
    let Some((signing_input, signature)) = raw.rsplit_once('.') else {
        return false;
    };
    let Ok(signature) = Base64UrlUnpadded::decode_vec(signature) else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(signing_input.as_bytes());
    mac.verify_slice(&signature).is_ok()
}

/// The app's own tokens verify with the secret they were signed with, for any key and qsh.
fn check_outbound(app_key: &str, request_qsh: &str) {
    let token = sign_outbound(app_key, &secret(), request_qsh, now());
    let untrusted = UntrustedConnectToken::parse(&token).expect("own token parses");
    match untrusted.unverified_issuer() {
        Ok(iss) => assert_eq!(iss, app_key),
        Err(e) => assert!(app_key.is_empty() && e == AuthError::ClaimMissing("iss")),
    }
    let verified = verify_hs256(&untrusted, &secret(), QshRule::Request(request_qsh), now());
    if request_qsh == CONTEXT_QSH {
        assert_eq!(verified, Err(AuthError::ContextTokenNotAllowed));
    } else {
        let claims = verified.expect("own token verifies");
        assert_eq!(claims.issuer, app_key);
        assert!(!claims.context_token);
    }
}
