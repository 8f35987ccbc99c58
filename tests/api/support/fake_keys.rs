//! A fake of Atlassian's install-keys server (`connect-install-keys.atlassian.com`): serves PEM
//! public keys at `/<kid>`, 404 for an unknown kid, and can be taken down (503) to test that the
//! app answers Jira with a retryable error.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use super::fixtures::{install_public_key_pem, INSTALL_KEY_ID};
use super::loopback::{Answer, LoopbackServer};

#[derive(Default)]
struct KeyState {
    keys: Mutex<HashMap<String, String>>,
    down: AtomicBool,
    fetches: AtomicUsize,
}

pub struct FakeKeyServer {
    pub base_url: String,
    state: Arc<KeyState>,
    _server: LoopbackServer,
}

impl FakeKeyServer {
    /// A server holding the test install key under [`INSTALL_KEY_ID`].
    pub fn start() -> Self {
        let state = Arc::new(KeyState::default());
        state
            .keys
            .lock()
            .unwrap()
            .insert(INSTALL_KEY_ID.into(), install_public_key_pem());
        let handler_state = Arc::clone(&state);
        let server = LoopbackServer::start(move |req| {
            handler_state.fetches.fetch_add(1, Ordering::SeqCst);
            if handler_state.down.load(Ordering::SeqCst) {
                return Answer::new(503, "unavailable");
            }
            if req.method != "GET" {
                return Answer::new(405, "");
            }
            let kid = req.path().trim_start_matches('/');
            match handler_state.keys.lock().unwrap().get(kid) {
                Some(pem) => {
                    Answer::new(200, pem.clone()).with_header("Content-Type", "text/plain")
                }
                None => Answer::new(404, "Not Found"),
            }
        });
        FakeKeyServer {
            base_url: server.base_url.clone(),
            state,
            _server: server,
        }
    }

    /// The server the shared test configuration points `INSTALL_KEYS_URL` at.
    pub fn shared() -> &'static FakeKeyServer {
        static SHARED: OnceLock<FakeKeyServer> = OnceLock::new();
        SHARED.get_or_init(FakeKeyServer::start)
    }

    pub fn set_down(&self, down: bool) {
        self.state.down.store(down, Ordering::SeqCst);
    }

    pub fn add_key(&self, kid: &str, pem: &str) {
        self.state
            .keys
            .lock()
            .unwrap()
            .insert(kid.into(), pem.into());
    }

    /// How many requests the server has answered.
    pub fn fetches(&self) -> usize {
        self.state.fetches.load(Ordering::SeqCst)
    }
}
