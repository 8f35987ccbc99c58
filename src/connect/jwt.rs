//! Connect JWTs: verifying what Jira sends, signing what the app sends to Jira.
//!
//! Covers HS256 request tokens (callbacks, page loads) verified with a tenant's shared secret,
//! RS256 signed-install tokens verified with Atlassian's key for their `kid`, and HS256 tokens
//! for the app's own calls to a tenant's Jira. Tokens are typed by trust: an
//! [`UntrustedConnectToken`] only tells what is needed to find the key (`iss`, `kid`), through
//! methods whose names say so; claims come only out of a verification. The caller fixes the
//! algorithm; the token's header never picks it. Leaves out fetching keys and looking up
//! tenants, which are I/O and belong to the runtime glue.

use chrono::{DateTime, Duration, Utc};
use jwt_compact::alg::{Hs256, Hs256Key, Rsa, RsaPublicKey};
use jwt_compact::{AlgorithmExt, Claims, Header, UntrustedToken, ValidationError};
use serde::{Deserialize, Serialize};

use super::credentials::SharedSecret;

/// Clock skew tolerated on `exp`, `iat` and `nbf`.
pub const LEEWAY: Duration = Duration::seconds(30);
/// Lifetime of the app's outbound tokens.
pub const OUTBOUND_LIFETIME: Duration = Duration::seconds(180);
/// The `qsh` of a context token, issued to an app page by Jira's browser API.
pub const CONTEXT_QSH: &str = "context-qsh";

/// Why a token was refused. Each variant has a stable code for the JSON error body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthError {
    TokenMissing,
    /// A token both in `Authorization` and in `?jwt=`: which one was meant is ambiguous.
    TokenInTwoPlaces,
    Malformed,
    AlgNotAllowed {
        expected: &'static str,
        actual: String,
    },
    KeyIdInvalid,
    KeyIdUnknown,
    UnknownTenant,
    TenantUninstalled,
    BadSignature,
    ClaimMissing(&'static str),
    Expired,
    NotYetValid,
    QshMismatch,
    ContextTokenNotAllowed,
    AudienceMismatch,
    IssuerMismatch,
}

impl AuthError {
    /// 401 for a bad or missing token; 403 for a good token used where it is not allowed.
    pub fn status(&self) -> u16 {
        match self {
            AuthError::ContextTokenNotAllowed => 403,
            _ => 401,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            AuthError::TokenMissing => "token_missing",
            AuthError::TokenInTwoPlaces => "token_ambiguous",
            AuthError::Malformed => "token_malformed",
            AuthError::AlgNotAllowed { .. } => "alg_not_allowed",
            AuthError::KeyIdInvalid => "kid_invalid",
            AuthError::KeyIdUnknown => "kid_unknown",
            AuthError::UnknownTenant => "unknown_tenant",
            AuthError::TenantUninstalled => "tenant_uninstalled",
            AuthError::BadSignature => "bad_signature",
            AuthError::ClaimMissing(_) => "claim_missing",
            AuthError::Expired => "token_expired",
            AuthError::NotYetValid => "token_not_yet_valid",
            AuthError::QshMismatch => "qsh_mismatch",
            AuthError::ContextTokenNotAllowed => "context_token_not_allowed",
            AuthError::AudienceMismatch => "aud_mismatch",
            AuthError::IssuerMismatch => "iss_mismatch",
        }
    }

    /// Human text; never quotes the token or any claim value a client could use.
    pub fn message(&self) -> String {
        match self {
            AuthError::TokenMissing => {
                "a Connect JWT is required (Authorization: JWT <token>, or ?jwt=)".into()
            }
            AuthError::TokenInTwoPlaces => {
                "send the token either in Authorization or in ?jwt=, not both".into()
            }
            AuthError::Malformed => "the token is not a well-formed JWT".into(),
            AuthError::AlgNotAllowed { expected, actual } => {
                format!("this endpoint accepts {expected} tokens, not {actual}")
            }
            AuthError::KeyIdInvalid => "the token's kid is missing or malformed".into(),
            AuthError::KeyIdUnknown => "no install key is published for the token's kid".into(),
            AuthError::UnknownTenant => "the token's issuer is not an installed tenant".into(),
            AuthError::TenantUninstalled => "the tenant has uninstalled the app".into(),
            AuthError::BadSignature => "the token's signature does not verify".into(),
            AuthError::ClaimMissing(claim) => format!("the token lacks the {claim} claim"),
            AuthError::Expired => "the token has expired".into(),
            AuthError::NotYetValid => "the token is dated in the future".into(),
            AuthError::QshMismatch => "the token's qsh does not match this request".into(),
            AuthError::ContextTokenNotAllowed => {
                "a context token (qsh: context-qsh) is not accepted here".into()
            }
            AuthError::AudienceMismatch => "the token's aud is not this app's base URL".into(),
            AuthError::IssuerMismatch => "the token's iss is not the payload's clientKey".into(),
        }
    }
}

/// A token as received: parsed, nothing verified.
pub struct UntrustedConnectToken<'a>(UntrustedToken<'a>);

#[derive(Deserialize)]
struct IssuerOnly {
    iss: Option<String>,
}

impl<'a> UntrustedConnectToken<'a> {
    pub fn parse(raw: &'a str) -> Result<Self, AuthError> {
        UntrustedToken::new(raw)
            .map(UntrustedConnectToken)
            .map_err(|_| AuthError::Malformed)
    }

    /// `iss`, read before the signature is checked: only for finding the tenant's secret.
    pub fn unverified_issuer(&self) -> Result<String, AuthError> {
        self.0
            .deserialize_claims_unchecked::<IssuerOnly>()
            .map_err(|_| AuthError::Malformed)?
            .custom
            .iss
            .filter(|iss| !iss.is_empty())
            .ok_or(AuthError::ClaimMissing("iss"))
    }

    /// `kid` from the header, unverified: only for choosing which public key to fetch.
    pub fn unverified_key_id(&self) -> Option<&str> {
        self.0.header().key_id.as_deref()
    }

    /// Refuses a token whose header names another algorithm than the caller's.
    pub fn require_algorithm(&self, expected: &'static str) -> Result<(), AuthError> {
        match self.0.algorithm() {
            actual if actual == expected => Ok(()),
            actual => Err(AuthError::AlgNotAllowed {
                expected,
                actual: actual.chars().take(16).collect(),
            }),
        }
    }
}

/// Claims Connect puts in its tokens. `aud` is a string or an array.
#[derive(Debug, Deserialize, Serialize)]
struct ConnectClaims {
    #[serde(default)]
    iss: Option<String>,
    #[serde(default)]
    sub: Option<String>,
    #[serde(default)]
    qsh: Option<String>,
    #[serde(default)]
    aud: Option<Audience>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

/// What a verified token proves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedClaims {
    pub issuer: String,
    /// The Atlassian account the token was issued for, when Jira says.
    pub subject: Option<String>,
    /// True for a context token (`qsh: context-qsh`), accepted only where [`QshRule`] allows.
    pub context_token: bool,
    pub expires_at: DateTime<Utc>,
}

/// Which `qsh` an endpoint accepts.
#[derive(Debug, Clone, Copy)]
pub enum QshRule<'a> {
    /// Only the hash of this request (callbacks, lifecycle).
    Request(&'a str),
    /// The hash of this request or `context-qsh` (endpoints called from app pages).
    RequestOrContext(&'a str),
}

/// Verifies an HS256 token from a tenant's Jira: algorithm, signature (constant-time, by the
/// HMAC crate's `CtOutput` comparison), `exp`/`iat`/`nbf` with [`LEEWAY`], and `qsh`.
pub fn verify_hs256(
    token: &UntrustedConnectToken<'_>,
    secret: &SharedSecret,
    rule: QshRule<'_>,
    now: DateTime<Utc>,
) -> Result<VerifiedClaims, AuthError> {
    token.require_algorithm("HS256")?;
    let key = Hs256Key::new(secret.expose_bytes());
    let verified = Hs256
        .validator::<ConnectClaims>(&key)
        .validate(&token.0)
        .map_err(signature_error)?;
    let claims = verified.claims();
    let expires_at = check_times(claims, now)?;
    let context_token = check_qsh(claims.custom.qsh.as_deref(), rule)?;
    Ok(VerifiedClaims {
        issuer: claims
            .custom
            .iss
            .clone()
            .ok_or(AuthError::ClaimMissing("iss"))?,
        subject: claims.custom.sub.clone(),
        context_token,
        expires_at,
    })
}

/// Atlassian's public key for one `kid`, parsed from the PEM its key server publishes.
#[derive(Clone)]
pub struct InstallKey(RsaPublicKey);

impl InstallKey {
    /// Accepts SubjectPublicKeyInfo (`BEGIN PUBLIC KEY`, what Atlassian serves) or PKCS#1.
    pub fn from_pem(pem: &str) -> Result<Self, String> {
        use rsa::pkcs1::DecodeRsaPublicKey;
        use rsa::pkcs8::DecodePublicKey;
        RsaPublicKey::from_public_key_pem(pem.trim())
            .or_else(|_| RsaPublicKey::from_pkcs1_pem(pem.trim()))
            .map(InstallKey)
            .map_err(|e| format!("not an RSA public key: {e}"))
    }
}

/// A `kid` safe to put in the key server's URL: 1 to 128 of `A-Z a-z 0-9 - _ .`, not starting
/// with a dot (so never `.` or `..`).
pub fn validate_key_id(kid: Option<&str>) -> Result<&str, AuthError> {
    let kid = kid.ok_or(AuthError::KeyIdInvalid)?;
    let well_formed = (1..=128).contains(&kid.len())
        && !kid.starts_with('.')
        && kid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    well_formed.then_some(kid).ok_or(AuthError::KeyIdInvalid)
}

/// What a signed lifecycle request must prove.
#[derive(Debug, Clone, Copy)]
pub struct InstallExpectation<'a> {
    /// The app's base URL; `aud` must equal it, trailing `/` ignored.
    pub audience: &'a str,
    /// The payload's `clientKey`; `iss` must equal it.
    pub client_key: &'a str,
    /// The hash of this request.
    pub qsh: &'a str,
}

/// Verifies an RS256 signed-install token against Atlassian's key for its `kid`.
pub fn verify_install(
    token: &UntrustedConnectToken<'_>,
    key: &InstallKey,
    expect: InstallExpectation<'_>,
    now: DateTime<Utc>,
) -> Result<VerifiedClaims, AuthError> {
    token.require_algorithm("RS256")?;
    let verified = Rsa::rs256()
        .validator::<ConnectClaims>(&key.0)
        .validate(&token.0)
        .map_err(signature_error)?;
    let claims = verified.claims();
    let expires_at = check_times(claims, now)?;
    let audience_ok = match &claims.custom.aud {
        Some(Audience::One(aud)) => same_base_url(aud, expect.audience),
        Some(Audience::Many(auds)) => auds.len() == 1 && same_base_url(&auds[0], expect.audience),
        None => return Err(AuthError::ClaimMissing("aud")),
    };
    if !audience_ok {
        return Err(AuthError::AudienceMismatch);
    }
    let issuer = claims
        .custom
        .iss
        .clone()
        .ok_or(AuthError::ClaimMissing("iss"))?;
    if issuer != expect.client_key {
        return Err(AuthError::IssuerMismatch);
    }
    check_qsh(claims.custom.qsh.as_deref(), QshRule::Request(expect.qsh))?;
    Ok(VerifiedClaims {
        issuer,
        subject: claims.custom.sub.clone(),
        context_token: false,
        expires_at,
    })
}

/// Signs a request from the app to a tenant's Jira: `iss` = app key, `iat` = now,
/// `exp` = now + [`OUTBOUND_LIFETIME`], `qsh` of the outgoing request.
pub fn sign_outbound(
    app_key: &str,
    secret: &SharedSecret,
    request_qsh: &str,
    now: DateTime<Utc>,
) -> String {
    let mut claims = Claims::new(ConnectClaims {
        iss: Some(app_key.to_owned()),
        sub: None,
        qsh: Some(request_qsh.to_owned()),
        aud: None,
    });
    claims.issued_at = Some(now);
    claims.expiration = Some(now + OUTBOUND_LIFETIME);
    Hs256
        .token(
            &Header::empty().with_token_type("JWT"),
            &claims,
            &Hs256Key::new(secret.expose_bytes()),
        )
        // Serialising a fixed struct of strings and timestamps cannot fail.
        .expect("HS256 token serialises")
}

fn signature_error(e: ValidationError) -> AuthError {
    match e {
        ValidationError::AlgorithmMismatch { expected, actual } => AuthError::AlgNotAllowed {
            expected: if expected == "RS256" {
                "RS256"
            } else {
                "HS256"
            },
            actual: actual.chars().take(16).collect(),
        },
        ValidationError::InvalidSignature | ValidationError::MalformedSignature(_) => {
            AuthError::BadSignature
        }
        _ => AuthError::Malformed,
    }
}

fn check_times(
    claims: &Claims<ConnectClaims>,
    now: DateTime<Utc>,
) -> Result<DateTime<Utc>, AuthError> {
    let expires_at = claims.expiration.ok_or(AuthError::ClaimMissing("exp"))?;
    // Arithmetic on `now` only: `exp + LEEWAY` panics for an `exp` near chrono's last second.
    if expires_at <= now - LEEWAY {
        return Err(AuthError::Expired);
    }
    let future = |t: Option<DateTime<Utc>>| t.is_some_and(|t| t > now + LEEWAY);
    if future(claims.issued_at) || future(claims.not_before) {
        return Err(AuthError::NotYetValid);
    }
    Ok(expires_at)
}

/// Returns whether the token is a context token.
fn check_qsh(qsh: Option<&str>, rule: QshRule<'_>) -> Result<bool, AuthError> {
    let qsh = qsh.ok_or(AuthError::ClaimMissing("qsh"))?;
    match rule {
        QshRule::RequestOrContext(_) if qsh == CONTEXT_QSH => Ok(true),
        QshRule::Request(_) if qsh == CONTEXT_QSH => Err(AuthError::ContextTokenNotAllowed),
        QshRule::Request(expected) | QshRule::RequestOrContext(expected) if qsh == expected => {
            Ok(false)
        }
        _ => Err(AuthError::QshMismatch),
    }
}

fn same_base_url(a: &str, b: &str) -> bool {
    a.trim_end_matches('/') == b.trim_end_matches('/')
}

#[cfg(test)]
mod tests;
