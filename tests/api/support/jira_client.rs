//! Jira's side of the Connect protocol, for tests: lifecycle hooks signed with RS256 by the test
//! install key, and HS256 request tokens signed with a site's shared secret. Tokens are minted
//! with jwt-compact directly and hashed with the fake's own qsh, never with the app's signer.

use jwt_compact::alg::{Hs256, Hs256Key, Rsa, RsaPrivateKey};
use jwt_compact::{AlgorithmExt, Claims, Header};
use rsa::pkcs8::DecodePrivateKey;
use serde_json::{json, Value};

use super::client::{self, Reply};
use super::fake_jira::{qsh, FakeJira};
use super::fixtures::{install_signing_key_pem, INSTALL_KEY_ID};
use super::worker::TestWorker;

pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Claims a Connect token carries by default; `overrides` replaces or (with `null`) removes.
pub fn claims(iss: &str, qsh_value: &str, overrides: Value) -> Value {
    let mut c = json!({"iss": iss, "iat": now() - 1, "exp": now() + 180, "qsh": qsh_value});
    for (k, v) in overrides.as_object().expect("overrides is an object") {
        if v.is_null() {
            c.as_object_mut().unwrap().remove(k);
        } else {
            c[k] = v.clone();
        }
    }
    c
}

pub fn hs256(claims: Value, secret: &str) -> String {
    Hs256
        .token(
            &Header::empty(),
            &Claims::new(claims),
            &Hs256Key::new(secret.as_bytes()),
        )
        .unwrap()
}

pub fn rs256(claims: Value, kid: &str, private_pem: &str) -> String {
    let key = RsaPrivateKey::from_pkcs8_pem(private_pem).unwrap();
    Rsa::rs256()
        .token(
            &Header::empty().with_key_id(kid),
            &Claims::new(claims),
            &key,
        )
        .unwrap()
}

/// An unsigned token with any `alg` in its header.
pub fn unsigned(alg: &str, claims: Value) -> String {
    use base64ct::{Base64UrlUnpadded, Encoding};
    let enc = |v: Value| Base64UrlUnpadded::encode_string(v.to_string().as_bytes());
    format!(
        "{}.{}.",
        enc(json!({"alg": alg, "typ": "JWT"})),
        enc(claims)
    )
}

/// A token with any header, HMAC-SHA256-signed with `key`: for algorithm-confusion attacks (an
/// `HS256` or `RS256` header over an HMAC keyed with the public key PEM).
pub fn hmac_signed(header: Value, claims: Value, key: &[u8]) -> String {
    use base64ct::{Base64UrlUnpadded, Encoding};
    use jwt_compact::{Algorithm, AlgorithmSignature};
    let enc = |bytes: &[u8]| Base64UrlUnpadded::encode_string(bytes);
    let signing_input = format!(
        "{}.{}",
        enc(header.to_string().as_bytes()),
        enc(claims.to_string().as_bytes())
    );
    let signature = Hs256.sign(&Hs256Key::new(key), signing_input.as_bytes());
    format!("{signing_input}.{}", enc(&signature.as_bytes()))
}

impl FakeJira {
    /// The lifecycle payload Jira sends for `event`.
    pub fn lifecycle_payload(&self, event: &str, app_key: &str) -> Value {
        json!({
            "key": app_key,
            "clientKey": self.client_key,
            "sharedSecret": self.shared_secret(),
            "baseUrl": self.base_url,
            "displayUrl": self.base_url,
            "productType": "jira",
            "description": "Atlassian JIRA (test site)",
            "serviceEntitlementNumber": "SEN-0",
            "eventType": event,
            "pluginsVersion": "1001.0.0",
        })
    }

    /// The RS256 token Jira signs a lifecycle request to `worker` with.
    pub fn lifecycle_token(&self, worker: &TestWorker, event: &str, overrides: Value) -> String {
        let c = claims(
            &self.client_key,
            &qsh("POST", &format!("/{event}")),
            json!({"aud": worker.base_url}),
        );
        let mut c = c;
        for (k, v) in overrides.as_object().unwrap() {
            c[k] = v.clone();
        }
        rs256(c, INSTALL_KEY_ID, &install_signing_key_pem())
    }

    /// Sends a lifecycle hook with the given token (`None`: no Authorization header) and body.
    pub fn send_lifecycle(
        &self,
        worker: &TestWorker,
        event: &str,
        token: Option<&str>,
        body: &Value,
    ) -> Reply {
        let auth = token.map(|t| format!("JWT {t}"));
        let mut headers = vec![("Content-Type", "application/json")];
        if let Some(a) = auth.as_deref() {
            headers.push(("Authorization", a));
        }
        worker.request(
            "POST",
            &format!("/{event}"),
            &headers,
            Some(body.to_string().as_bytes()),
        )
    }

    /// A correctly signed lifecycle hook, as Jira sends it.
    pub fn lifecycle(&self, worker: &TestWorker, event: &str) -> Reply {
        let token = self.lifecycle_token(worker, event, json!({}));
        let body = self.lifecycle_payload(event, "deployment-gating");
        self.send_lifecycle(worker, event, Some(&token), &body)
    }

    /// Installs the app from this site, asserting Jira would see it succeed.
    pub fn install(&self, worker: &TestWorker) {
        let reply = self.lifecycle(worker, "installed");
        assert_eq!(reply.status, 204, "install failed: {}", reply.body);
    }

    /// An HS256 token from this site for `method path_and_query` on the app.
    pub fn request_token(&self, method: &str, path_and_query: &str) -> String {
        hs256(
            claims(&self.client_key, &qsh(method, path_and_query), json!({})),
            &self.shared_secret(),
        )
    }

    /// A request to the app carrying this site's token in `Authorization`.
    pub fn call(&self, worker: &TestWorker, method: &str, path_and_query: &str) -> Reply {
        let token = self.request_token(method, path_and_query);
        worker.request(
            method,
            path_and_query,
            &[("Authorization", &format!("JWT {token}"))],
            None,
        )
    }

    /// `GET /api/v1/connection` with a token: the end-to-end proof a tenant is usable.
    pub fn connection_with(&self, worker: &TestWorker, token: &str) -> Reply {
        client::send(
            "GET",
            &worker.url("/api/v1/connection"),
            &[("Authorization", &format!("JWT {token}"))],
            None,
        )
    }
}

impl FakeJira {
    /// Jira's gating callback: HS256 for `POST /callback`, with a delivery id when given.
    pub fn callback(
        &self,
        worker: &TestWorker,
        payload: &Value,
        delivery_id: Option<&str>,
    ) -> Reply {
        let token = self.request_token("POST", "/callback");
        self.callback_with(worker, &token, payload.to_string().as_bytes(), delivery_id)
    }

    /// Sends a gating callback that must be delivered (204), as most tests need.
    pub fn deliver(&self, worker: &TestWorker, payload: &Value) {
        let reply = self.callback(worker, payload, None);
        assert_eq!(reply.status, 204, "callback not delivered: {}", reply.body);
    }

    pub fn callback_with(
        &self,
        worker: &TestWorker,
        token: &str,
        body: &[u8],
        delivery_id: Option<&str>,
    ) -> Reply {
        let auth = format!("JWT {token}");
        let mut headers = vec![
            ("Authorization", auth.as_str()),
            ("Content-Type", "application/json"),
        ];
        if let Some(id) = delivery_id {
            headers.push(("X-Atlassian-Webhook-Identifier", id));
        }
        worker.request("POST", "/callback", &headers, Some(body))
    }

    /// A context JWT, as `AP.context.getToken()` gives a page of the app, for `account`.
    pub fn context_token(&self, account: &str) -> String {
        hs256(
            claims(&self.client_key, "context-qsh", json!({"sub": account})),
            &self.shared_secret(),
        )
    }

    /// Creates an API token with the operator's `ADMIN_TOKEN`, without asking this site anything
    /// (for sites that cannot answer the app's permission check).
    pub fn create_token_by_operator(&self, worker: &TestWorker, scopes: &[&str]) -> String {
        let reply = worker.request(
            "POST",
            "/api/v1/tokens",
            &[
                (
                    "Authorization",
                    &format!("Bearer {}", super::fixtures::ADMIN_TOKEN),
                ),
                ("Content-Type", "application/json"),
            ],
            Some(
                json!({"name": "ops", "scopes": scopes, "clientKey": self.client_key})
                    .to_string()
                    .as_bytes(),
            ),
        );
        assert_eq!(reply.status, 201, "token creation failed: {}", reply.body);
        reply.json()["token"].as_str().unwrap().to_owned()
    }

    /// Creates an API token as the tenant's admin page would (a site admin's context JWT).
    pub fn create_token(&self, worker: &TestWorker, scopes: &[&str]) -> String {
        let context = self.context_token(super::fixtures::SITE_ADMIN_ACCOUNT);
        let reply = worker.request(
            "POST",
            "/api/v1/tokens",
            &[
                ("Authorization", &format!("JWT {context}")),
                ("Content-Type", "application/json"),
            ],
            Some(
                json!({"name": "ci", "scopes": scopes})
                    .to_string()
                    .as_bytes(),
            ),
        );
        assert_eq!(reply.status, 201, "token creation failed: {}", reply.body);
        reply.json()["token"].as_str().unwrap().to_owned()
    }
}

/// A gating callback payload.
pub fn gate_payload(
    pipeline: &str,
    environment: &str,
    seq: u64,
    status: &str,
    updated: &str,
) -> Value {
    json!({
        "updatedTimestamp": updated,
        "gatingStatus": status,
        "details": [{"type": "issue", "issueKey": "CHG-1", "issueLink": "https://example.atlassian.net/browse/CHG-1"}],
        "pipelineId": pipeline,
        "environmentId": environment,
        "deploymentSequenceNumber": seq,
    })
}

/// `GET path` with an API token.
pub fn api_get(worker: &TestWorker, token: &str, path: &str) -> Reply {
    worker.request(
        "GET",
        path,
        &[("Authorization", &format!("Bearer {token}"))],
        None,
    )
}
