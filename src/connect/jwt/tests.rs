use base64ct::{Base64UrlUnpadded, Encoding};
use chrono::TimeZone;
use jwt_compact::alg::{Rsa, RsaPrivateKey, RsaPublicKey};
use rsa::pkcs8::{DecodePrivateKey, DecodePublicKey};
use serde_json::{json, Value};

use super::*;

const SIGNING_KEY_PEM: &str = include_str!("../../../tests/fixtures/install-signing-key.pem");
const PUBLIC_KEY_PEM: &str = include_str!("../../../tests/fixtures/install-signing-key.pub.pem");
const FORGED_KEY_PEM: &str = include_str!("../../../tests/fixtures/forged-signing-key.pem");
const CALLBACK_QSH: &str = "68eb4171c15669ca90cbbb154a5c0ee54f31b20995473773d0bf3f464198a883";
const APP_BASE: &str = "https://gates.example.com";

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 3, 12, 0, 0).unwrap()
}

fn secret() -> SharedSecret {
    SharedSecret::parse("tenant-secret-0123456789abcdefghijklmnop").unwrap()
}

fn claims_json(overrides: Value) -> Value {
    let mut claims = json!({
        "iss": "client-1",
        "iat": now().timestamp() - 5,
        "exp": now().timestamp() + 175,
        "qsh": CALLBACK_QSH,
    });
    for (k, v) in overrides.as_object().unwrap() {
        if v.is_null() {
            claims.as_object_mut().unwrap().remove(k);
        } else {
            claims[k] = v.clone();
        }
    }
    claims
}

/// Mints a token from raw JSON with jwt-compact directly, not with the code under test.
fn hs256(claims: Value, key: &[u8]) -> String {
    let claims: Claims<Value> = Claims::new(claims);
    Hs256
        .token(&Header::empty(), &claims, &Hs256Key::new(key))
        .unwrap()
}

fn rs256(claims: Value, kid: &str) -> String {
    let key = RsaPrivateKey::from_pkcs8_pem(SIGNING_KEY_PEM).unwrap();
    Rsa::rs256()
        .token(
            &Header::empty().with_key_id(kid),
            &Claims::new(claims),
            &key,
        )
        .unwrap()
}

fn unsigned(alg: &str, claims: Value) -> String {
    let header =
        Base64UrlUnpadded::encode_string(json!({"alg": alg, "typ": "JWT"}).to_string().as_bytes());
    let body = Base64UrlUnpadded::encode_string(claims.to_string().as_bytes());
    format!("{header}.{body}.")
}

fn verify(token: &str, rule: QshRule<'_>) -> Result<VerifiedClaims, AuthError> {
    let token = UntrustedConnectToken::parse(token)?;
    verify_hs256(&token, &secret(), rule, now())
}

fn callback(token: &str) -> Result<VerifiedClaims, AuthError> {
    verify(token, QshRule::Request(CALLBACK_QSH))
}

#[test]
fn accepts_a_well_formed_callback_token() {
    let token = hs256(
        claims_json(json!({"sub": "acct-1"})),
        secret().expose_bytes(),
    );
    let claims = callback(&token).unwrap();
    assert_eq!(claims.issuer, "client-1");
    assert_eq!(claims.subject.as_deref(), Some("acct-1"));
    assert!(!claims.context_token);
}

#[test]
fn rejects_token_signed_with_another_secret() {
    let token = hs256(
        claims_json(json!({})),
        b"another-secret-0123456789abcdefghijkl",
    );
    assert_eq!(callback(&token), Err(AuthError::BadSignature));
}

#[test]
fn rejects_tampered_claims() {
    let token = hs256(claims_json(json!({})), secret().expose_bytes());
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    parts[1] = Base64UrlUnpadded::encode_string(
        claims_json(json!({"iss": "client-2"}))
            .to_string()
            .as_bytes(),
    );
    assert_eq!(callback(&parts.join(".")), Err(AuthError::BadSignature));
}

#[test]
fn rejects_alg_none() {
    let err = callback(&unsigned("none", claims_json(json!({})))).unwrap_err();
    assert_eq!(err.code(), "alg_not_allowed");
}

#[test]
fn rejects_rs256_token_where_hs256_is_expected() {
    let token = rs256(claims_json(json!({})), "k1");
    assert!(matches!(
        callback(&token),
        Err(AuthError::AlgNotAllowed {
            expected: "HS256",
            ..
        })
    ));
}

#[test]
fn rejects_install_signed_with_hs256_over_the_public_key() {
    // RS/HS confusion: an attacker who knows the public key signs HS256 with it.
    let claims = claims_json(json!({"aud": APP_BASE, "qsh": "q"}));
    let token = hs256(claims, PUBLIC_KEY_PEM.as_bytes());
    let err = install(&token, "client-1", "q").unwrap_err();
    assert!(
        matches!(
            err,
            AuthError::AlgNotAllowed {
                expected: "RS256",
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn expiry_allows_thirty_seconds_of_skew_and_no_more() {
    let within = hs256(
        claims_json(json!({"exp": now().timestamp() - 29})),
        secret().expose_bytes(),
    );
    assert!(callback(&within).is_ok());
    let beyond = hs256(
        claims_json(json!({"exp": now().timestamp() - 31})),
        secret().expose_bytes(),
    );
    assert_eq!(callback(&beyond), Err(AuthError::Expired));
}

#[test]
fn accepts_exp_at_the_last_representable_second() {
    // Adding the leeway to this exp used to panic (found with fuzz/fuzz_targets/token.rs).
    let last = DateTime::<Utc>::MAX_UTC.timestamp();
    let token = hs256(claims_json(json!({"exp": last})), secret().expose_bytes());
    assert_eq!(callback(&token).unwrap().expires_at.timestamp(), last);
}

#[test]
fn rejects_token_without_exp() {
    let token = hs256(claims_json(json!({"exp": null})), secret().expose_bytes());
    assert_eq!(callback(&token), Err(AuthError::ClaimMissing("exp")));
}

#[test]
fn rejects_token_issued_in_the_future() {
    let soon = hs256(
        claims_json(json!({"iat": now().timestamp() + 25})),
        secret().expose_bytes(),
    );
    assert!(callback(&soon).is_ok());
    let later = hs256(
        claims_json(json!({"iat": now().timestamp() + 60})),
        secret().expose_bytes(),
    );
    assert_eq!(callback(&later), Err(AuthError::NotYetValid));
}

#[test]
fn rejects_token_without_qsh_or_with_another_requests_qsh() {
    let none = hs256(claims_json(json!({"qsh": null})), secret().expose_bytes());
    assert_eq!(callback(&none), Err(AuthError::ClaimMissing("qsh")));
    let other = hs256(
        claims_json(json!({"qsh": "0".repeat(64)})),
        secret().expose_bytes(),
    );
    assert_eq!(callback(&other), Err(AuthError::QshMismatch));
}

#[test]
fn context_tokens_only_where_pages_are_allowed() {
    let token = hs256(
        claims_json(json!({"qsh": CONTEXT_QSH})),
        secret().expose_bytes(),
    );
    assert_eq!(callback(&token), Err(AuthError::ContextTokenNotAllowed));
    assert_eq!(AuthError::ContextTokenNotAllowed.status(), 403);
    let claims = verify(&token, QshRule::RequestOrContext(CALLBACK_QSH)).unwrap();
    assert!(claims.context_token);
}

#[test]
fn rejects_garbage_as_malformed() {
    for raw in ["", "abc", "a.b.c", "....", "eyJhbGciOiJIUzI1NiJ9.%%%.sig"] {
        assert!(
            matches!(
                callback(raw),
                Err(AuthError::Malformed | AuthError::BadSignature)
            ),
            "{raw:?}"
        );
    }
}

#[test]
fn unverified_issuer_is_read_without_trusting_the_token() {
    let token = hs256(
        claims_json(json!({})),
        b"whatever-key-whatever-key-whatever",
    );
    let untrusted = UntrustedConnectToken::parse(&token).unwrap();
    assert_eq!(untrusted.unverified_issuer().unwrap(), "client-1");
    let no_iss = hs256(claims_json(json!({"iss": null})), secret().expose_bytes());
    let untrusted = UntrustedConnectToken::parse(&no_iss).unwrap();
    assert_eq!(
        untrusted.unverified_issuer(),
        Err(AuthError::ClaimMissing("iss"))
    );
}

/// What the worker does with WebCrypto, with a native RSA verifier standing in for it.
fn install(token: &str, client_key: &str, qsh: &str) -> Result<VerifiedClaims, AuthError> {
    let untrusted = UntrustedConnectToken::parse(token)?;
    let parts = untrusted.rs256_signed_parts()?;
    let valid = rs256_valid(&parts);
    let expect = InstallExpectation {
        audience: APP_BASE,
        client_key,
        qsh,
    };
    verify_install(&untrusted, valid, expect, now())
}

/// RSASSA-PKCS1-v1_5 / SHA-256 over exactly the parts the worker hands to WebCrypto.
fn rs256_valid(parts: &SignedParts<'_>) -> bool {
    let key = RsaPublicKey::from_public_key_pem(PUBLIC_KEY_PEM).unwrap();
    let signing_input = std::str::from_utf8(parts.signing_input).unwrap();
    let token = format!(
        "{signing_input}.{}",
        Base64UrlUnpadded::encode_string(parts.signature)
    );
    Rsa::rs256()
        .validator::<Value>(&key)
        .validate(&UntrustedToken::new(&token).unwrap())
        .is_ok()
}

fn install_claims(overrides: Value) -> Value {
    let mut base = json!({"aud": APP_BASE, "qsh": "install-qsh"});
    for (k, v) in overrides.as_object().unwrap() {
        base[k] = v.clone();
    }
    claims_json(base)
}

#[test]
fn accepts_a_signed_install() {
    let token = rs256(install_claims(json!({})), "k1");
    assert_eq!(
        UntrustedConnectToken::parse(&token)
            .unwrap()
            .unverified_key_id(),
        Some("k1")
    );
    assert_eq!(
        install(&token, "client-1", "install-qsh").unwrap().issuer,
        "client-1"
    );
}

#[test]
fn install_audience_may_be_a_one_element_array_with_a_trailing_slash() {
    let token = rs256(
        install_claims(json!({"aud": [format!("{APP_BASE}/")]})),
        "k1",
    );
    assert!(install(&token, "client-1", "install-qsh").is_ok());
    let two = rs256(
        install_claims(json!({"aud": [APP_BASE, "https://other"]})),
        "k1",
    );
    assert_eq!(
        install(&two, "client-1", "install-qsh"),
        Err(AuthError::AudienceMismatch)
    );
}

#[test]
fn rejects_install_when_aud_is_another_app() {
    let token = rs256(
        install_claims(json!({"aud": "https://evil.example.com"})),
        "k1",
    );
    assert_eq!(
        install(&token, "client-1", "install-qsh"),
        Err(AuthError::AudienceMismatch)
    );
}

#[test]
fn rejects_install_when_iss_differs_from_client_key() {
    let token = rs256(install_claims(json!({})), "k1");
    assert_eq!(
        install(&token, "client-2", "install-qsh"),
        Err(AuthError::IssuerMismatch)
    );
}

#[test]
fn rejects_install_with_another_requests_qsh() {
    let token = rs256(install_claims(json!({})), "k1");
    assert_eq!(
        install(&token, "client-1", "other-qsh"),
        Err(AuthError::QshMismatch)
    );
}

#[test]
fn rejects_install_signed_by_another_key() {
    let forged = RsaPrivateKey::from_pkcs8_pem(FORGED_KEY_PEM).unwrap();
    let token = Rsa::rs256()
        .token(
            &Header::empty().with_key_id("k1"),
            &Claims::new(install_claims(json!({}))),
            &forged,
        )
        .unwrap();
    assert_eq!(
        install(&token, "client-1", "install-qsh"),
        Err(AuthError::BadSignature)
    );
}

#[test]
fn key_ids_are_checked_before_they_reach_a_url() {
    assert_eq!(
        validate_key_id(Some("0e50fccb-239d-4991-a5db-dc850ba3f236")),
        Ok("0e50fccb-239d-4991-a5db-dc850ba3f236")
    );
    assert_eq!(validate_key_id(Some("key_v2.pem")), Ok("key_v2.pem"));
    for bad in [
        "",
        ".",
        "..",
        "../keys",
        "a/b",
        "a?b",
        "a%2F",
        "a b",
        "k\n",
        &"k".repeat(129),
    ] {
        assert_eq!(
            validate_key_id(Some(bad)),
            Err(AuthError::KeyIdInvalid),
            "{bad:?}"
        );
    }
    assert_eq!(validate_key_id(None), Err(AuthError::KeyIdInvalid));
}

#[test]
fn outbound_tokens_carry_app_key_qsh_and_a_three_minute_lifetime() {
    let token = sign_outbound("my-app", &secret(), "abc123", now());
    let untrusted = UntrustedConnectToken::parse(&token).unwrap();
    let verified = Hs256
        .validator::<Value>(&Hs256Key::new(secret().expose_bytes()))
        .validate(&untrusted.token)
        .unwrap();
    let claims = verified.claims();
    assert_eq!(claims.custom["iss"], "my-app");
    assert_eq!(claims.custom["qsh"], "abc123");
    assert_eq!(claims.issued_at, Some(now()));
    assert_eq!(claims.expiration, Some(now() + Duration::seconds(180)));
    assert_eq!(untrusted.token.algorithm(), "HS256");
}

#[test]
fn install_key_pem_gives_the_spki_der_webcrypto_imports() {
    let der = spki_der_from_pem(PUBLIC_KEY_PEM).unwrap();
    let key = RsaPublicKey::from_public_key_der(&der).expect("the DER is the same key");
    assert_eq!(
        key,
        RsaPublicKey::from_public_key_pem(PUBLIC_KEY_PEM).unwrap()
    );
    for bad in [
        "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----",
        "-----BEGIN PUBLIC KEY-----\n!!!!\n-----END PUBLIC KEY-----",
        "-----BEGIN RSA PUBLIC KEY-----\nMAoCAwEAAQIDAQAB\n-----END RSA PUBLIC KEY-----",
        "not a key",
    ] {
        assert!(spki_der_from_pem(bad).is_err(), "{bad}");
    }
}

#[test]
fn only_rs256_tokens_have_parts_to_verify() {
    let hs = hs256(claims_json(json!({})), PUBLIC_KEY_PEM.as_bytes());
    assert!(matches!(
        UntrustedConnectToken::parse(&hs)
            .unwrap()
            .rs256_signed_parts(),
        Err(AuthError::AlgNotAllowed { .. })
    ));
    let rs = rs256(install_claims(json!({})), "k1");
    let untrusted = UntrustedConnectToken::parse(&rs).unwrap();
    let parts = untrusted.rs256_signed_parts().unwrap();
    assert_eq!(
        parts.signing_input,
        rs.rsplit_once('.').unwrap().0.as_bytes()
    );
    assert_eq!(parts.signature.len(), 256, "a 2048-bit signature");
}
