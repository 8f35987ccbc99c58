//! Connect JWTs: verifying what Jira sends, signing what the app sends to Jira.
//!
//! Covers HS256 request tokens (callbacks, page loads) verified with a tenant's shared secret,
//! RS256 signed-install tokens (whose signature the runtime checks with Atlassian's key for their
//! `kid`, through WebCrypto, and whose claims are checked here), and HS256 tokens for the app's
//! own calls to a tenant's Jira. Tokens are typed by trust: an
//! [`UntrustedConnectToken`] only tells what is needed to find the key (`iss`, `kid`), through
//! methods whose names say so; claims come only out of a verification. The caller fixes the
//! algorithm; the token's header never picks it. Leaves out fetching keys and looking up
//! tenants, which are I/O and belong to the runtime glue.

use chrono::{DateTime, Duration, Utc};
use jwt_compact::alg::{Hs256, Hs256Key};
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
pub struct UntrustedConnectToken<'a> {
    token: UntrustedToken<'a>,
    raw: &'a str,
}

#[derive(Deserialize)]
struct IssuerOnly {
    iss: Option<String>,
}

impl<'a> UntrustedConnectToken<'a> {
    pub fn parse(raw: &'a str) -> Result<Self, AuthError> {
        UntrustedToken::new(raw)
            .map(|token| UntrustedConnectToken { token, raw })
            .map_err(|_| AuthError::Malformed)
    }

    /// `iss`, read before the signature is checked: only for finding the tenant's secret.
    pub fn unverified_issuer(&self) -> Result<String, AuthError> {
        self.token
            .deserialize_claims_unchecked::<IssuerOnly>()
            .map_err(|_| AuthError::Malformed)?
            .custom
            .iss
            .filter(|iss| !iss.is_empty())
            .ok_or(AuthError::ClaimMissing("iss"))
    }

    /// `kid` from the header, unverified: only for choosing which public key to fetch.
    pub fn unverified_key_id(&self) -> Option<&str> {
        self.token.header().key_id.as_deref()
    }

    /// Refuses a token whose header names another algorithm than the caller's.
    pub fn require_algorithm(&self, expected: &'static str) -> Result<(), AuthError> {
        match self.token.algorithm() {
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
        .validate(&token.token)
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

/// What an RS256 signature covers, for the runtime to check with Atlassian's key
/// (`RSASSA-PKCS1-v1_5` with SHA-256): the `header.payload` text and the decoded signature.
pub struct SignedParts<'t> {
    pub signing_input: &'t [u8],
    pub signature: &'t [u8],
}

impl UntrustedConnectToken<'_> {
    /// The parts of an RS256 token to verify; any other algorithm is refused here, so an HS256
    /// token keyed with the public key never reaches a verifier.
    pub fn rs256_signed_parts(&self) -> Result<SignedParts<'_>, AuthError> {
        self.require_algorithm("RS256")?;
        let end = self.raw.rfind('.').ok_or(AuthError::Malformed)?;
        Ok(SignedParts {
            signing_input: &self.raw.as_bytes()[..end],
            signature: self.token.signature_bytes(),
        })
    }
}

/// PEM → the DER of a SubjectPublicKeyInfo (`BEGIN PUBLIC KEY`, what Atlassian's key server
/// publishes), for the runtime's key import. Checks only the framing; the import checks the key.
pub fn spki_der_from_pem(pem: &str) -> Result<Vec<u8>, String> {
    use base64ct::{Base64, Encoding};
    let body = pem
        .trim()
        .strip_prefix("-----BEGIN PUBLIC KEY-----")
        .and_then(|rest| rest.strip_suffix("-----END PUBLIC KEY-----"))
        .ok_or("not a PEM public key (BEGIN PUBLIC KEY)")?;
    let base64: String = body.split_whitespace().collect();
    let der = Base64::decode_vec(&base64).map_err(|_| "the PEM body is not base64")?;
    // A SubjectPublicKeyInfo is a DER SEQUENCE; RSA keys of 2048–8192 bits are 294–1062 bytes.
    if der.first() != Some(&0x30) || !(64..=2048).contains(&der.len()) {
        return Err("the PEM body is not a public key".into());
    }
    Ok(der)
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

/// Checks a signed-install token's claims, once the runtime has checked its RS256 signature
/// (`signature_valid`) over [`UntrustedConnectToken::rs256_signed_parts`].
pub fn verify_install(
    token: &UntrustedConnectToken<'_>,
    signature_valid: bool,
    expect: InstallExpectation<'_>,
    now: DateTime<Utc>,
) -> Result<VerifiedClaims, AuthError> {
    token.require_algorithm("RS256")?;
    if !signature_valid {
        return Err(AuthError::BadSignature);
    }
    let verified = token
        .token
        .deserialize_claims_unchecked::<ConnectClaims>()
        .map_err(|_| AuthError::Malformed)?;
    let claims = &verified;
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
