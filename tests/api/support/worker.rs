//! The worker under test, running in real `workerd` through `wrangler dev --local`.
//!
//! Each [`TestWorker`] gets free ports, its own persistence folder, and a wrangler config derived
//! from the repository's `wrangler.toml` (same bindings and migrations; the `[build]` step dropped
//! because `scripts/test.sh` builds once before the tests). A supervisor script kills the whole
//! process group when the test process lets go of its stdin, however it ends.

use std::io::Write;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::client::{self, Reply};
use super::fake_keys::FakeKeyServer;
use super::fixtures::repo_path;

pub struct TestWorker {
    pub base_url: String,
    dir: PathBuf,
    supervisor: Child,
    stdin: Option<ChildStdin>,
}

/// Settings every test worker starts with: loopback Jira sites may install, keys come from the
/// shared fake key server. A test overrides or adds to them.
fn default_vars() -> Vec<(String, String)> {
    vec![
        ("TENANT_HOSTS".into(), "http://127.0.0.1".into()),
        (
            "INSTALL_KEYS_URL".into(),
            FakeKeyServer::shared().base_url.clone(),
        ),
        ("ADMIN_TOKEN".into(), super::fixtures::ADMIN_TOKEN.into()),
    ]
}

impl TestWorker {
    /// One worker shared by the tests that need no settings of their own. Tests stay independent
    /// by each installing its own tenant.
    pub fn shared() -> &'static TestWorker {
        static SHARED: OnceLock<TestWorker> = OnceLock::new();
        SHARED.get_or_init(|| TestWorker::spawn(&[]))
    }

    /// A fresh worker with `vars` on top of the test defaults.
    pub fn spawn(vars: &[(&str, &str)]) -> TestWorker {
        let shim = repo_path("build/worker/shim.mjs");
        assert!(
            shim.exists(),
            "{} is missing: run scripts/build.sh (scripts/test.sh does) before the tests",
            shim.display()
        );
        let dir = tempfile::Builder::new()
            .prefix("gating-test-")
            .tempdir()
            .unwrap()
            .keep();
        let mut all_vars = default_vars();
        all_vars.extend(vars.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let config = dir.join("wrangler.toml");
        std::fs::write(&config, test_config(&shim, &all_vars)).unwrap();

        let port = free_port();
        let log = dir.join("worker.log");
        let mut supervisor = Command::new("bash")
            .arg(repo_path("tests/api/support/run-until-stdin-closes.sh"))
            .arg(&dir)
            .arg(&log)
            .arg(repo_path("node_modules/.bin/wrangler"))
            .args(["dev", "--local", "--ip", "127.0.0.1"])
            .args(["--port", &port.to_string()])
            .args(["--inspector-port", &free_port().to_string()])
            .arg("--config")
            .arg(&config)
            .arg("--persist-to")
            .arg(dir.join("state"))
            .args(["--log-level", "log", "--show-interactive-dev-session=false"])
            .env("WRANGLER_SEND_METRICS", "false")
            .env("CI", "true")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("bash runs the worker supervisor");
        let stdin = supervisor.stdin.take();
        let worker = TestWorker {
            base_url: format!("http://127.0.0.1:{port}"),
            dir,
            supervisor,
            stdin,
        };
        worker.wait_until_serving();
        worker
    }

    fn wait_until_serving(&self) {
        let deadline = Instant::now() + Duration::from_secs(120);
        while Instant::now() < deadline {
            if client::answers(&self.url("/healthz")) {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!(
            "worker at {} did not start within 120 s; its log:\n{}",
            self.base_url,
            self.log()
        );
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base_url, path)
    }

    pub fn get(&self, path: &str) -> Reply {
        client::send("GET", &self.url(path), &[], None)
    }

    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Reply {
        client::send(method, &self.url(path), headers, body)
    }

    /// Kills wrangler and workerd with SIGKILL, as a crash would, and starts them again on the
    /// same port and persistence folder.
    pub fn restart(&mut self) {
        let stdin = self.stdin.as_mut().expect("supervisor stdin");
        writeln!(stdin, "restart").unwrap();
        stdin.flush().unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while client::answers(&self.url("/healthz")) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        self.wait_until_serving();
    }

    /// The worker served by its own `workerd` process, without wrangler's proxy in front: the
    /// origin a benchmark uses to tell the proxy's cost from the worker's. Found as the listening
    /// port of a process under this worker's supervisor that answers `/healthz` and is not the
    /// proxy's.
    pub fn direct_url(&self) -> String {
        let ours: Vec<u32> = descendants(self.supervisor.id());
        let proxy = self
            .base_url
            .rsplit(':')
            .next()
            .unwrap()
            .parse::<u16>()
            .unwrap();
        listening_ports(&ours)
            .into_iter()
            .filter(|port| *port != proxy)
            .map(|port| format!("http://127.0.0.1:{port}"))
            .find(|url| {
                // Some of workerd's ports are not HTTP: ask only those that answer at all.
                let health = format!("{url}/healthz");
                client::answers(&health) && {
                    let reply = client::send("GET", &health, &[], None);
                    reply.status == 200 && reply.body.contains("\"ok\"")
                }
            })
            .expect("workerd's own port")
    }

    /// The worker's private folder (config, state, log); removed when the worker is dropped.
    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }

    /// Everything wrangler and the worker printed so far (request logs included).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("worker.log")).unwrap_or_default()
    }
}

impl Drop for TestWorker {
    fn drop(&mut self) {
        // Closing stdin tells the supervisor to kill wrangler and workerd and remove the folder.
        if let Some(mut stdin) = self.stdin.take() {
            let _ = stdin.flush();
        }
        let _ = self.supervisor.wait();
    }
}

/// The repository's wrangler.toml with an absolute `main`, no `[build]`, and the given vars.
fn test_config(shim: &std::path::Path, vars: &[(String, String)]) -> String {
    let text = std::fs::read_to_string(repo_path("wrangler.toml")).unwrap();
    let mut config: toml::Table = text.parse().expect("wrangler.toml parses");
    config.remove("build");
    config.insert("main".into(), shim.display().to_string().into());
    let table = config
        .entry("vars")
        .or_insert_with(|| toml::Table::new().into())
        .as_table_mut()
        .expect("[vars] is a table");
    for (name, value) in vars {
        table.insert(name.clone(), value.clone().into());
    }
    toml::to_string(&config).unwrap()
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Every process below `root` (by parent pid, from /proc).
fn descendants(root: u32) -> Vec<u32> {
    let parents: Vec<(u32, u32)> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            // The field after the parenthesised name is the state, then the parent pid.
            let ppid = stat
                .rsplit(')')
                .next()?
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()?;
            Some((pid, ppid))
        })
        .collect();
    let mut found = vec![root];
    let mut i = 0;
    while i < found.len() {
        let parent = found[i];
        found.extend(
            parents
                .iter()
                .filter(|(_, p)| *p == parent)
                .map(|(c, _)| *c),
        );
        i += 1;
    }
    found
}

/// TCP ports in LISTEN state whose sockets belong to `pids`.
fn listening_ports(pids: &[u32]) -> Vec<u16> {
    let inodes: Vec<String> = pids
        .iter()
        .filter_map(|pid| std::fs::read_dir(format!("/proc/{pid}/fd")).ok())
        .flat_map(|fds| fds.flatten())
        .filter_map(|fd| {
            let target = std::fs::read_link(fd.path()).ok()?;
            let t = target.to_str()?;
            Some(t.strip_prefix("socket:[")?.strip_suffix(']')?.to_owned())
        })
        .collect();
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            // local_address is HEXIP:HEXPORT, st 0A is LISTEN, inode is the tenth field.
            let listening = f.get(3) == Some(&"0A");
            let inode = f.get(9)?;
            if !listening || !inodes.iter().any(|i| i == inode) {
                return None;
            }
            u16::from_str_radix(f.get(1)?.rsplit(':').next()?, 16).ok()
        })
        .collect()
}
