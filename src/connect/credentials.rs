//! A tenant's identity (`clientKey`) and its HS256 secret (`sharedSecret`), parsed at the edge.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Jira's id for one installation of the app (a UUID on Jira Cloud). Limited to characters that
/// are safe in a KV key and a log line.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ClientKey(String);

impl ClientKey {
    pub const MAX_LEN: usize = 255;

    pub fn parse(raw: &str) -> Result<Self, String> {
        if raw.is_empty() || raw.len() > Self::MAX_LEN {
            return Err(format!("must be 1 to {} characters", Self::MAX_LEN));
        }
        if !raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
        {
            return Err("may contain only letters, digits and - _ . :".into());
        }
        Ok(ClientKey(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ClientKey {
    type Error = String;
    fn try_from(raw: String) -> Result<Self, String> {
        ClientKey::parse(&raw)
    }
}

impl From<ClientKey> for String {
    fn from(key: ClientKey) -> String {
        key.0
    }
}

impl fmt::Display for ClientKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The HS256 secret Jira issued to a tenant at install. A credential: `Debug` redacts it and it
/// has no `Display`, so it cannot reach a log or a response by formatting.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SharedSecret(String);

impl SharedSecret {
    /// Jira's secrets are long random strings; anything shorter than 32 bytes is not one of them.
    pub const MIN_LEN: usize = 32;
    pub const MAX_LEN: usize = 1024;

    pub fn parse(raw: &str) -> Result<Self, String> {
        if raw.len() < Self::MIN_LEN || raw.len() > Self::MAX_LEN {
            return Err(format!(
                "must be {} to {} bytes",
                Self::MIN_LEN,
                Self::MAX_LEN
            ));
        }
        Ok(SharedSecret(raw.to_owned()))
    }

    /// The HMAC key bytes. The name says what it exposes.
    pub fn expose_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl TryFrom<String> for SharedSecret {
    type Error = String;
    fn try_from(raw: String) -> Result<Self, String> {
        SharedSecret::parse(&raw)
    }
}

impl From<SharedSecret> for String {
    fn from(secret: SharedSecret) -> String {
        secret.0
    }
}

impl fmt::Debug for SharedSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SharedSecret(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_secret_debug_is_redacted() {
        let secret = SharedSecret::parse(&"s3cr3t".repeat(8)).unwrap();
        assert_eq!(format!("{secret:?}"), "SharedSecret(<redacted>)");
    }

    #[test]
    fn client_keys_are_kv_and_log_safe() {
        assert!(ClientKey::parse("a3b4c5d6-1111-2222-3333-444455556666").is_ok());
        assert!(ClientKey::parse("jira:1234").is_ok());
        assert!(ClientKey::parse("").is_err());
        assert!(ClientKey::parse("../other").is_err());
        assert!(ClientKey::parse("a b").is_err());
        assert!(ClientKey::parse("a\nb").is_err());
        assert!(ClientKey::parse(&"k".repeat(256)).is_err());
    }

    #[test]
    fn short_secrets_are_refused() {
        assert!(SharedSecret::parse("short").is_err());
        assert!(SharedSecret::parse(&"x".repeat(32)).is_ok());
    }
}
