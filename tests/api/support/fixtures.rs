//! Fixed test keys and the app settings every test worker starts with.

use std::path::PathBuf;

pub fn repo_path(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(relative)
}

/// The private key that plays Atlassian's install-signing key.
pub fn install_signing_key_pem() -> String {
    std::fs::read_to_string(repo_path("tests/fixtures/install-signing-key.pem")).unwrap()
}

/// Its public half, as the fake key server serves it.
pub fn install_public_key_pem() -> String {
    std::fs::read_to_string(repo_path("tests/fixtures/install-signing-key.pub.pem")).unwrap()
}

/// The `kid` the fake key server serves the public key under.
pub const INSTALL_KEY_ID: &str = "test-install-key-1";

/// The operator secret test workers run with (a var here; a wrangler secret in production).
pub const ADMIN_TOKEN: &str = "test-admin-token-7c1f0d2e9b8a4c3d";

/// The Atlassian account the fake Jira sites treat as their site administrator.
pub const SITE_ADMIN_ACCOUNT: &str = "557058:0f1e2d3c-site-admin";
/// An ordinary user of the fake sites.
pub const PLAIN_USER_ACCOUNT: &str = "557058:9a8b7c6d-plain-user";
