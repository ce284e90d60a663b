//! Real headless Chromium, driven over WebDriver: one `chromedriver` per test, one
//! browser (with its own profile directory) per page.
//!
//! Chromium and ChromeDriver come from Debian's `chromium` and `chromium-driver`
//! packages (`./test.sh` installs them); `CHROMIUM` and `CHROMEDRIVER` override the
//! paths. Without them the tests fail at once with a message saying so.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};
use tokio::process::{Child, Command};

/// Flags that make headless Chromium work on a closed loopback-only machine, with a
/// fake camera and microphone and no permission prompt.
const CHROMIUM_FLAGS: &[&str] = &[
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--allow-loopback-in-peer-connection",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    "--autoplay-policy=no-user-gesture-required",
    "--ignore-certificate-errors",
    "--window-size=1280,800",
];

/// How long a page may take to load, and a script to run.
const PAGE_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest a script (such as a wait for the page's state) may run.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(120);

pub struct Browsers {
    driver: Child,
    driver_url: String,
    chromium: PathBuf,
    profiles: PathBuf,
    opened: AtomicUsize,
}

impl Browsers {
    /// Starts chromedriver on a free port and waits until it says it is ready.
    pub async fn start() -> Self {
        let chromium = executable("CHROMIUM", &["/usr/bin/chromium", "/usr/bin/chromium-browser"]);
        let chromedriver = executable("CHROMEDRIVER", &["/usr/bin/chromedriver"]);
        let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port();
        let mut driver = Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            // Its own process group, so that dropping it takes every browser with it.
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", chromedriver.display()));
        let stdout = driver.stdout.take().expect("piped stdout");
        let started = testkit::await_line(stdout, "started successfully", Duration::from_secs(20)).await;
        assert!(started, "chromedriver did not start within 20 s");
        let profiles = std::env::temp_dir().join(format!("e2e-chromium-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&profiles).expect("a profile directory");
        Self { driver, driver_url: format!("http://127.0.0.1:{port}"), chromium, profiles, opened: AtomicUsize::new(0) }
    }

    /// Opens `url` in a new browser.
    pub async fn open(&self, name: &str, url: &str) -> Page {
        let profile = self.profiles.join(self.opened.fetch_add(1, Ordering::Relaxed).to_string());
        let mut args: Vec<String> = CHROMIUM_FLAGS.iter().map(|flag| flag.to_string()).collect();
        args.push(format!("--user-data-dir={}", profile.display()));
        let capabilities = json!({
            "browserName": "chrome",
            "acceptInsecureCerts": true,
            "timeouts": { "script": SCRIPT_TIMEOUT.as_millis() as u64, "pageLoad": PAGE_TIMEOUT.as_millis() as u64 },
            "goog:chromeOptions": { "binary": self.chromium, "args": args },
        });
        let Value::Object(capabilities) = capabilities else { unreachable!() };
        let client = tokio::time::timeout(
            PAGE_TIMEOUT,
            ClientBuilder::new(HttpConnector::new()).capabilities(capabilities).connect(&self.driver_url),
        )
        .await
        .unwrap_or_else(|_| panic!("{name}: no browser session within {PAGE_TIMEOUT:?}"))
        .unwrap_or_else(|e| panic!("{name}: cannot start a browser session: {e}"));
        client.goto(url).await.unwrap_or_else(|e| panic!("{name}: cannot open {url}: {e}"));
        Page { client, name: name.to_string() }
    }
}

impl Drop for Browsers {
    fn drop(&mut self) {
        if let Some(pid) = self.driver.id() {
            crate::processes::kill_group(pid);
        }
        let _ = std::fs::remove_dir_all(&self.profiles);
    }
}

fn executable(variable: &str, candidates: &[&str]) -> PathBuf {
    find_executable(variable, std::env::var_os(variable).map(PathBuf::from), candidates)
}

/// The override if given, else the first candidate that exists; panics saying how to
/// install the browser otherwise.
pub fn find_executable(variable: &str, override_path: Option<PathBuf>, candidates: &[&str]) -> PathBuf {
    if let Some(path) = override_path {
        assert!(path.exists(), "{variable}={} does not exist", path.display());
        return path;
    }
    candidates.iter().map(Path::new).find(|path| path.exists()).map(Path::to_path_buf).unwrap_or_else(|| {
        panic!(
            "{} not found (set {variable} to override): install Debian's chromium and chromium-driver packages, \
             or run ./test.sh, which does",
            candidates[0]
        )
    })
}

/// One browser showing the demo app.
pub struct Page {
    client: Client,
    pub name: String,
}

impl Page {
    /// Waits until `check`, a JavaScript expression over the demo's snapshot `s`, holds;
    /// returns the snapshot. The page re-evaluates it on every change of its state, and
    /// gives up after `timeout`, in which case the test fails showing the snapshot.
    pub async fn wait_for(&self, check: &str, timeout: Duration) -> Value {
        Page::wait_all(&[self], check, timeout).await.remove(0)
    }

    /// Like [`Page::wait_for`] on every page; when one fails, the snapshots of all of
    /// them are shown (a negotiation has two sides).
    pub async fn wait_all(pages: &[&Page], check: &str, timeout: Duration) -> Vec<Value> {
        let script = format!(
            "const done = arguments[arguments.length - 1];
             const go = () => window.demo
                 ? window.demo.waitFor((s) => ({check}), {ms}).then(done, (e) => done({{scriptError: String(e)}}))
                 : setTimeout(go, 20);
             go();",
            ms = timeout.as_millis()
        );
        let mut snapshots = Vec::new();
        for page in pages {
            let result = page.execute_async(&script).await;
            if result.get("timeout").is_some() || result.get("scriptError").is_some() {
                let mut all = String::new();
                for other in pages {
                    all.push_str(&format!("\n--- {} ---\n{:#}", other.name, other.snapshot().await));
                }
                panic!("{}: `{check}` did not hold within {timeout:?}; every page:{all}", page.name);
            }
            snapshots.push(result);
        }
        snapshots
    }

    /// Runs an async script; the last argument is the callback that ends it.
    pub async fn execute_async(&self, script: &str) -> Value {
        self.client
            .execute_async(script, Vec::new())
            .await
            .unwrap_or_else(|e| panic!("{}: script failed: {e}", self.name))
    }

    pub async fn execute(&self, script: &str) -> Value {
        self.client.execute(script, Vec::new()).await.unwrap_or_else(|e| panic!("{}: script failed: {e}", self.name))
    }

    pub async fn snapshot(&self) -> Value {
        self.execute("return window.demo.snapshot();").await
    }

    /// Bytes of video received from `peer_id`, after waiting until more than `above`
    /// have arrived (bounded by `timeout`).
    pub async fn video_bytes_above(&self, peer_id: &str, above: u64, timeout: Duration) -> u64 {
        let script = format!(
            "const done = arguments[arguments.length - 1];
             const deadline = Date.now() + {ms};
             const poll = async () => {{
                 const bytes = await window.demo.videoBytesFrom({peer});
                 if (bytes > {above} || Date.now() > deadline) done(bytes); else setTimeout(poll, 100);
             }};
             poll();",
            ms = timeout.as_millis(),
            peer = json!(peer_id),
        );
        let bytes = self.execute_async(&script).await.as_u64().unwrap_or(0);
        assert!(bytes > above, "{}: video bytes from {peer_id} stayed at {bytes} (<= {above})", self.name);
        bytes
    }

    pub async fn screenshot(&self) -> Vec<u8> {
        self.client.screenshot().await.unwrap_or_else(|e| panic!("{}: screenshot failed: {e}", self.name))
    }

    /// Closes the browser (its sockets close with it).
    pub async fn close(self) {
        let _ = tokio::time::timeout(PAGE_TIMEOUT, self.client.close()).await;
    }
}
