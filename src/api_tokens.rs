//! API tokens for pipelines and dashboards: format, hashing, scopes.
//!
//! A token is `dgt_<base64url(clientKey)>_<64 hex random>`: the tenant part routes the request to
//! that tenant's Durable Object, which holds the only record of the token (its SHA-256, never the
//! token) and so is the authority on revocation. The random part is 256 bits from the runtime's
//! CSPRNG, passed in as a parameter. A plain SHA-256 suffices for storage because the token is
//! high-entropy, not a password.

use base64ct::{Base64UrlUnpadded, Encoding};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::connect::credentials::ClientKey;

const PREFIX: &str = "dgt_";
/// Stream tickets share the format with their own prefix, so one can never pass for the other.
const TICKET_PREFIX: &str = "dgs_";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Scope {
    #[serde(rename = "gates:read")]
    GatesRead,
    #[serde(rename = "deployments:write")]
    DeploymentsWrite,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::GatesRead => "gates:read",
            Scope::DeploymentsWrite => "deployments:write",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "gates:read" => Some(Scope::GatesRead),
            "deployments:write" => Some(Scope::DeploymentsWrite),
            _ => None,
        }
    }
}

/// The SHA-256 of a token, hex: what the tenant's object stores and looks tokens up by.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenHash(pub String);

/// A freshly minted token: the plaintext is shown to its creator once.
pub struct NewToken {
    pub plaintext: String,
    pub hash: TokenHash,
    /// A short public id for listing and revoking (derived from the random part, not the secret).
    pub id: String,
}

pub fn mint(client_key: &ClientKey, random: [u8; 32]) -> NewToken {
    mint_with(PREFIX, client_key, random)
}

/// A short-lived, single-use ticket for opening a stream (so no long-lived token goes in a URL).
pub fn mint_ticket(client_key: &ClientKey, random: [u8; 32]) -> NewToken {
    mint_with(TICKET_PREFIX, client_key, random)
}

fn mint_with(prefix: &str, client_key: &ClientKey, random: [u8; 32]) -> NewToken {
    let tenant = Base64UrlUnpadded::encode_string(client_key.as_str().as_bytes());
    let plaintext = format!("{prefix}{tenant}_{}", hex::encode(random));
    let id = format!(
        "tok_{}",
        &hex::encode(Sha256::digest([b"id".as_slice(), &random].concat()))[..16]
    );
    NewToken {
        hash: hash(&plaintext),
        plaintext,
        id,
    }
}

pub fn hash(token: &str) -> TokenHash {
    TokenHash(hex::encode(Sha256::digest(token.as_bytes())))
}

/// A bearer token's tenant and hash. Only the format is checked here; whether the token exists
/// is the tenant object's call.
pub fn parse_bearer(token: &str) -> Option<(ClientKey, TokenHash)> {
    parse_with(PREFIX, token)
}

pub fn parse_ticket(ticket: &str) -> Option<(ClientKey, TokenHash)> {
    parse_with(TICKET_PREFIX, ticket)
}

fn parse_with(prefix: &str, token: &str) -> Option<(ClientKey, TokenHash)> {
    let rest = token.strip_prefix(prefix)?;
    let (tenant, secret) = rest.rsplit_once('_')?;
    if secret.len() != 64 || !secret.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let client_key = Base64UrlUnpadded::decode_vec(tenant).ok()?;
    let client_key = ClientKey::parse(std::str::from_utf8(&client_key).ok()?).ok()?;
    Some((client_key, hash(token)))
}

/// A token's display name: 1 to 100 printable characters.
pub fn parse_name(raw: &str) -> Result<String, String> {
    let n = raw.chars().count();
    if n == 0 || n > 100 || raw.chars().any(char::is_control) {
        return Err("must be 1 to 100 printable characters".into());
    }
    Ok(raw.to_owned())
}

/// At least one scope, each known, no repeats.
pub fn parse_scopes(raw: &[String]) -> Result<Vec<Scope>, String> {
    let mut scopes = Vec::new();
    for s in raw {
        let scope = Scope::parse(s).ok_or_else(|| format!("unknown scope {s:?}"))?;
        if !scopes.contains(&scope) {
            scopes.push(scope);
        }
    }
    if scopes.is_empty() {
        return Err("must name at least one of gates:read, deployments:write".into());
    }
    Ok(scopes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client() -> ClientKey {
        ClientKey::parse("0e50fccb-239d-4991-a5db-dc850ba3f236").unwrap()
    }

    #[test]
    fn a_minted_token_parses_back_to_its_tenant_and_hash() {
        let t = mint(&client(), [7; 32]);
        assert!(t.plaintext.starts_with("dgt_"));
        let (tenant, hash) = parse_bearer(&t.plaintext).unwrap();
        assert_eq!(tenant, client());
        assert_eq!(hash, t.hash);
        assert!(
            !t.id.contains(&hex::encode([7u8; 32])),
            "the id must not reveal the secret"
        );
    }

    #[test]
    fn different_randomness_gives_different_tokens_and_ids() {
        let a = mint(&client(), [1; 32]);
        let b = mint(&client(), [2; 32]);
        assert_ne!(a.plaintext, b.plaintext);
        assert_ne!(a.id, b.id);
        assert_ne!(a.hash, b.hash);
    }

    #[test]
    fn malformed_bearers_are_refused() {
        let good = mint(&client(), [3; 32]).plaintext;
        for bad in [
            "",
            "dgt_",
            &good[..good.len() - 1],
            &good.replace("dgt_", "xyz_"),
            "dgt_Li4vZXRj_0000000000000000000000000000000000000000000000000000000000000000",
            "dgt_!!!_0000000000000000000000000000000000000000000000000000000000000000",
        ] {
            assert!(parse_bearer(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn tickets_and_tokens_are_not_interchangeable() {
        let ticket = mint_ticket(&client(), [5; 32]);
        assert!(parse_ticket(&ticket.plaintext).is_some());
        assert!(parse_bearer(&ticket.plaintext).is_none());
        assert!(parse_ticket(&mint(&client(), [5; 32]).plaintext).is_none());
    }

    #[test]
    fn scopes_and_names() {
        assert_eq!(
            parse_scopes(&["gates:read".into(), "gates:read".into()]).unwrap(),
            vec![Scope::GatesRead]
        );
        assert!(parse_scopes(&[]).is_err());
        assert!(parse_scopes(&["admin".into()]).is_err());
        assert!(parse_name("ci").is_ok());
        assert!(parse_name("").is_err());
        assert!(parse_name("a\nb").is_err());
    }
}
