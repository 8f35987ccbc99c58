//! A fake Jira Cloud site on loopback, for the calls the app makes to Jira.
//!
//! Like Jira, it authenticates every request by its Connect JWT (HS256 with the site's shared
//! secret, `iss` = the app key, `exp` in the future, `qsh` of the request, computed here
//! independently of the app's code) and answers 401 otherwise. It serves the deployments bulk
//! endpoint, the gating-status endpoint, the permission check (one site administrator,
//! [`super::fixtures::SITE_ADMIN_ACCOUNT`]), records every request, and can be told to answer the
//! next requests with something else (429 with `Retry-After`, 5xx, garbage).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use jwt_compact::alg::{Hs256, Hs256Key};
use jwt_compact::{AlgorithmExt, UntrustedToken};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::loopback::{Answer, LoopbackServer, Received};

/// RFC 3986 unreserved characters stay; everything else is `%XX`.
const QSH_ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// A request the site received, with Jira's verdict on its JWT.
#[derive(Debug, Clone)]
pub struct JiraRequest {
    pub received: Received,
    /// `Ok(())` when the JWT passed; otherwise why Jira refused it.
    pub auth: Result<(), String>,
}

impl JiraRequest {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.received.body).expect("request body is JSON")
    }
}

#[derive(Default)]
struct SiteState {
    requests: Vec<JiraRequest>,
    scripted: VecDeque<Answer>,
    /// Deployments by (pipelineId, environmentId, deploymentSequenceNumber).
    deployments: HashMap<(String, String, i64), Value>,
    gating: HashMap<(String, String, i64), Value>,
    /// Issue keys this site does not know (reported in `unknownIssueKeys`).
    unknown_issue_keys: Vec<String>,
    /// Accounts holding the global ADMINISTER permission.
    site_admins: Vec<String>,
}

pub struct FakeJira {
    pub base_url: String,
    pub client_key: String,
    /// The site's current secret; a re-install replaces it.
    secret: Arc<Mutex<String>>,
    state: Arc<Mutex<SiteState>>,
    _server: LoopbackServer,
}

#[derive(Deserialize)]
struct AppClaims {
    iss: String,
    qsh: String,
}

impl FakeJira {
    /// A site that expects tokens issued by `app_key`.
    pub fn start(app_key: &str) -> Self {
        let id = unique_id();
        let client_key = format!("jira-site-{id}");
        let secret = Arc::new(Mutex::new(new_secret(&id)));
        let state = Arc::new(Mutex::new(SiteState {
            site_admins: vec![super::fixtures::SITE_ADMIN_ACCOUNT.to_owned()],
            ..SiteState::default()
        }));
        let (handler_state, handler_secret, app_key) =
            (Arc::clone(&state), Arc::clone(&secret), app_key.to_owned());
        let server = LoopbackServer::start(move |received| {
            let current_secret = handler_secret.lock().unwrap().clone();
            let auth = check_jwt(&received, &current_secret, &app_key);
            let mut site = handler_state.lock().unwrap();
            site.requests.push(JiraRequest {
                received: received.clone(),
                auth: auth.clone(),
            });
            if let Some(answer) = site.scripted.pop_front() {
                return answer;
            }
            if let Err(why) = auth {
                return Answer::json(401, &json!({"message": why}));
            }
            site.serve(&received)
        });
        FakeJira {
            base_url: server.base_url.clone(),
            client_key,
            secret,
            state,
            _server: server,
        }
    }

    pub fn shared_secret(&self) -> String {
        self.secret.lock().unwrap().clone()
    }

    /// Issues a new secret, as Jira does when the app is installed again. Returns the old one.
    pub fn rotate_secret(&self) -> String {
        let mut secret = self.secret.lock().unwrap();
        std::mem::replace(&mut *secret, new_secret(&unique_id()))
    }

    /// The next request gets `answer` instead of Jira's normal handling.
    pub fn answer_next_with(&self, answer: Answer) {
        self.state.lock().unwrap().scripted.push_back(answer);
    }

    pub fn requests(&self) -> Vec<JiraRequest> {
        self.state.lock().unwrap().requests.clone()
    }

    /// Sets what the gating-status endpoint answers for a deployment.
    pub fn set_gating_status(&self, pipeline: &str, environment: &str, seq: i64, status: Value) {
        self.state
            .lock()
            .unwrap()
            .gating
            .insert((pipeline.into(), environment.into(), seq), status);
    }

    /// Makes the site report `key` as an unknown issue key.
    pub fn forget_issue_key(&self, key: &str) {
        self.state
            .lock()
            .unwrap()
            .unknown_issue_keys
            .push(key.into());
    }

    /// The gating-status requests the site answered, in order.
    pub fn gating_status_requests(&self) -> Vec<JiraRequest> {
        self.requests()
            .into_iter()
            .filter(|r| r.received.path().ends_with("/gating-status"))
            .collect()
    }

    /// The bulk requests the site accepted or refused, in order.
    pub fn bulk_requests(&self) -> Vec<JiraRequest> {
        self.requests()
            .into_iter()
            .filter(|r| r.received.path() == "/rest/deployments/0.1/bulk")
            .collect()
    }

    pub fn deployment(&self, pipeline: &str, environment: &str, seq: i64) -> Option<Value> {
        self.state
            .lock()
            .unwrap()
            .deployments
            .get(&(pipeline.into(), environment.into(), seq))
            .cloned()
    }
}

impl SiteState {
    fn serve(&mut self, req: &Received) -> Answer {
        let path = req.path();
        if path == "/rest/deployments/0.1/bulk" {
            return match req.method.as_str() {
                "POST" => self.submit(req),
                _ => Answer::new(405, ""),
            };
        }
        if path == "/rest/api/3/serverInfo" && req.method == "GET" {
            return Answer::json(
                200,
                &json!({"baseUrl": "https://test-site.atlassian.net", "version": "1001.0.0-SNAPSHOT",
                        "deploymentType": "Cloud"}),
            );
        }
        if path == "/rest/api/3/permissions/check" && req.method == "POST" {
            return self.check_permissions(req);
        }
        if let Some(key) = gating_status_key(path) {
            return match (req.method.as_str(), self.gating.get(&key)) {
                ("GET", Some(status)) => Answer::json(200, status),
                ("GET", None) => Answer::json(404, &json!({"message": "No gating status"})),
                _ => Answer::new(405, ""),
            };
        }
        Answer::json(404, &json!({"message": "Not Found"}))
    }

    /// `POST /rest/api/3/permissions/check`: which of the requested global permissions the
    /// account holds (Connect apps may ask for any account).
    fn check_permissions(&self, req: &Received) -> Answer {
        let Ok(body) = serde_json::from_slice::<Value>(&req.body) else {
            return Answer::json(400, &json!({"errorMessages": ["Malformed JSON"]}));
        };
        let admin = body["accountId"]
            .as_str()
            .is_some_and(|a| self.site_admins.iter().any(|s| s == a));
        let granted: Vec<&Value> = body["globalPermissions"]
            .as_array()
            .map(|p| p.iter().filter(|p| admin && *p == "ADMINISTER").collect())
            .unwrap_or_default();
        Answer::json(
            200,
            &json!({"globalPermissions": granted, "projectPermissions": []}),
        )
    }

    /// `POST /rest/deployments/0.1/bulk`: accepts well-formed deployments, as Jira's 202 says.
    fn submit(&mut self, req: &Received) -> Answer {
        let Ok(body) = serde_json::from_slice::<Value>(&req.body) else {
            return Answer::json(400, &json!({"errors": [{"message": "Malformed JSON"}]}));
        };
        let Some(deployments) = body["deployments"]
            .as_array()
            .filter(|d| (1..=100).contains(&d.len()))
        else {
            return Answer::json(
                400,
                &json!({"errors": [{"message": "deployments must hold 1 to 100 entries"}]}),
            );
        };
        let mut accepted = Vec::new();
        let mut rejected: Vec<Value> = Vec::new();
        let mut unknown: Vec<String> = Vec::new();
        for d in deployments {
            let key = (
                d["pipeline"]["id"].as_str().unwrap_or_default().to_owned(),
                d["environment"]["id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                d["deploymentSequenceNumber"].as_i64().unwrap_or_default(),
            );
            let gated = d["commands"].as_array().is_some_and(|c| {
                c.iter()
                    .any(|c| c["command"] == "initiate_deployment_gating")
            });
            let keys: Vec<String> = d["associations"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|a| a["associationType"] == "issueIdOrKeys")
                .flat_map(|a| a["values"].as_array().cloned().unwrap_or_default())
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect();
            let key_json = json!({"pipelineId": key.0, "environmentId": key.1,
                                  "deploymentSequenceNumber": key.2});
            if gated && d["state"] != "pending" {
                rejected.push(json!({"key": key_json, "errors": [{"message":
                    "Deployment gating can only be initiated for deployments in the pending state"}]}));
                continue;
            }
            let missing: Vec<String> = keys
                .iter()
                .filter(|k| self.unknown_issue_keys.contains(k))
                .cloned()
                .collect();
            if !missing.is_empty() {
                unknown.extend(missing);
                if keys.iter().all(|k| self.unknown_issue_keys.contains(k)) {
                    rejected.push(json!({"key": key_json, "errors": [{"message":
                        "None of the associated issues exist"}]}));
                    continue;
                }
            }
            if gated {
                self.gating.entry(key.clone()).or_insert_with(|| {
                    json!({"gatingStatus": "awaiting", "pipelineId": key.0, "environmentId": key.1,
                           "deploymentSequenceNumber": key.2, "details": [],
                           "updatedTimestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, false)})
                });
            }
            accepted.push(json!({"pipelineId": key.0, "environmentId": key.1,
                                 "deploymentSequenceNumber": key.2}));
            self.deployments.insert(key, d.clone());
        }
        Answer::json(
            202,
            &json!({"acceptedDeployments": accepted, "rejectedDeployments": rejected,
                    "unknownIssueKeys": unknown, "unknownAssociations": []}),
        )
    }
}

fn gating_status_key(path: &str) -> Option<(String, String, i64)> {
    let rest = path.strip_prefix("/rest/deployments/0.1/pipelines/")?;
    let parts: Vec<&str> = rest.split('/').collect();
    match parts.as_slice() {
        [p, "environments", e, "deployments", n, "gating-status"] => Some((
            percent_encoding::percent_decode_str(p)
                .decode_utf8()
                .ok()?
                .into_owned(),
            percent_encoding::percent_decode_str(e)
                .decode_utf8()
                .ok()?
                .into_owned(),
            n.parse().ok()?,
        )),
        _ => None,
    }
}

/// Jira's check of an app's request: HS256 only, the site's secret, `iss`, `exp`, `qsh`.
fn check_jwt(req: &Received, secret: &str, app_key: &str) -> Result<(), String> {
    let token = req
        .header("authorization")
        .and_then(|h| h.strip_prefix("JWT "))
        .ok_or("no JWT in the Authorization header")?;
    let untrusted = UntrustedToken::new(token).map_err(|e| format!("malformed JWT: {e}"))?;
    if untrusted.algorithm() != "HS256" {
        return Err(format!("unexpected alg {}", untrusted.algorithm()));
    }
    let verified = Hs256
        .validator::<AppClaims>(&Hs256Key::new(secret.as_bytes()))
        .validate(&untrusted)
        .map_err(|e| format!("bad signature: {e}"))?;
    let claims = verified.claims();
    let now = chrono::Utc::now();
    match claims.expiration {
        Some(exp) if exp > now => {}
        _ => return Err("expired or missing exp".into()),
    }
    if claims.custom.iss != app_key {
        return Err(format!("iss {} is not the app key", claims.custom.iss));
    }
    let expected = qsh(&req.method, &req.url);
    if claims.custom.qsh != expected {
        return Err(format!("qsh mismatch for {} {}", req.method, req.url));
    }
    Ok(())
}

/// The query string hash of a request to the site's root (section 4 of connect-protocol.md).
pub fn qsh(method: &str, url: &str) -> String {
    let (path, query) = url.split_once('?').unwrap_or((url, ""));
    let mut path = path.replace('&', "%26");
    if path.len() > 1 && path.ends_with('/') {
        path.pop();
    }
    if path.is_empty() {
        path.push('/');
    }
    let mut params: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
        if k != "jwt" {
            params
                .entry(k.into_owned())
                .or_default()
                .push(v.into_owned());
        }
    }
    let query = params
        .into_iter()
        .map(|(k, mut values)| {
            values.sort();
            let values: Vec<String> = values
                .iter()
                .map(|v| utf8_percent_encode(v, QSH_ENCODE).to_string())
                .collect();
            format!(
                "{}={}",
                utf8_percent_encode(&k, QSH_ENCODE),
                values.join(",")
            )
        })
        .collect::<Vec<_>>()
        .join("&");
    let canonical = format!("{}&{}&{}", method.to_uppercase(), path, query);
    hex::encode(Sha256::digest(canonical.as_bytes()))
}

fn new_secret(seed: &str) -> String {
    hex::encode(Sha256::digest(format!("shared-secret-{seed}")))
}

/// Distinct across tests and across concurrent test processes.
pub fn unique_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "{}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst),
        nanos % 1_000_000_007
    )
}
