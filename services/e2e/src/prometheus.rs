//! A real Prometheus (Debian's `prometheus` package) scraping the test's services, and
//! its HTTP API.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

/// One series of a range query.
#[derive(Debug, Clone)]
pub struct Series {
    pub labels: std::collections::BTreeMap<String, String>,
    pub points: Vec<(f64, f64)>,
}

/// A Prometheus server with its own configuration and storage in a fresh directory;
/// killed when dropped.
pub struct Prometheus {
    _child: Child,
    addr: SocketAddr,
    dir: PathBuf,
}

impl Prometheus {
    /// Starts Prometheus scraping `jobs` (job name → admin addresses) every second and
    /// evaluating `rule_files` every second.
    pub async fn start(jobs: &[(&str, Vec<SocketAddr>)], rule_files: &[&Path]) -> Self {
        let dir = std::env::temp_dir().join(format!("e2e-prometheus-{}-{}", std::process::id(), rand_suffix()));
        std::fs::create_dir_all(&dir).expect("create the Prometheus directory");
        let mut config = String::from("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n");
        config.push_str("rule_files:\n");
        for file in rule_files {
            config.push_str(&format!("  - {}\n", file.canonicalize().expect("a rule file").display()));
        }
        config.push_str("scrape_configs:\n");
        for (job, targets) in jobs {
            let targets: Vec<String> = targets.iter().map(|addr| format!("'{addr}'")).collect();
            config.push_str(&format!(
                "  - job_name: {job}\n    static_configs:\n      - targets: [{}]\n",
                targets.join(", ")
            ));
        }
        std::fs::write(dir.join("prometheus.yml"), config).expect("write the Prometheus configuration");
        for _ in 0..5 {
            let port =
                std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port();
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            if let Some(child) = spawn(&dir, addr).await {
                return Self { _child: child, addr, dir };
            }
        }
        panic!("prometheus did not start on any of 5 free ports");
    }

    /// Evaluates `expr` now; `Ok(results)` (the `data.result` array) or `Err(error text)`.
    pub async fn query(&self, expr: &str) -> Result<Vec<serde_json::Value>, String> {
        let data = self.data(&format!("/api/v1/query?query={}", encode(expr))).await?;
        Ok(data["result"].as_array().cloned().unwrap_or_default())
    }

    /// Evaluates `expr` over `[start, end]` (Unix seconds) every `step` seconds: each
    /// series as its labels and its `(time, value)` points.
    pub async fn query_range(&self, expr: &str, start: f64, end: f64, step: f64) -> Result<Vec<Series>, String> {
        let path = format!("/api/v1/query_range?query={}&start={start}&end={end}&step={step}", encode(expr));
        let data = self.data(&path).await?;
        let series = data["result"].as_array().cloned().unwrap_or_default();
        Ok(series
            .iter()
            .map(|series| Series {
                labels: series["metric"].as_object().map_or_else(Default::default, |labels| {
                    labels.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string())).collect()
                }),
                points: series["values"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|point| {
                        let time = point[0].as_f64()?;
                        let value = point[1].as_str()?.parse::<f64>().ok().filter(|v| v.is_finite())?;
                        Some((time, value))
                    })
                    .collect(),
            })
            .collect())
    }

    /// `GET path` on the API, as JSON.
    pub async fn api(&self, path: &str) -> serde_json::Value {
        let (status, body) = crate::http_get(&format!("http://{}", self.addr), path).await;
        assert_eq!(status, 200, "{path}: {body}");
        serde_json::from_str(&body).expect("JSON from the Prometheus API")
    }

    /// The `data` of the API's answer to `GET path`, or its error (Prometheus answers a
    /// bad query with 400 or 422 and `status: error`).
    async fn data(&self, path: &str) -> Result<serde_json::Value, String> {
        let (_, body) = crate::http_get(&format!("http://{}", self.addr), path).await;
        let mut answer: serde_json::Value = serde_json::from_str(&body).map_err(|e| format!("{e}: {body}"))?;
        if answer["status"] != "success" {
            return Err(format!("{}: {}", answer["errorType"], answer["error"]));
        }
        Ok(answer["data"].take())
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn spawn(dir: &Path, addr: SocketAddr) -> Option<Child> {
    let mut child = Command::new("prometheus")
        .arg(format!("--config.file={}", dir.join("prometheus.yml").display()))
        .arg(format!("--storage.tsdb.path={}", dir.join("data").display()))
        .arg(format!("--web.listen-address={addr}"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot run prometheus ({e}); install it (Debian: apt-get install prometheus) or run the README test command")
        });
    let stderr = child.stderr.take().expect("piped stderr");
    if !testkit::await_line(stderr, "Server is ready to receive web requests", Duration::from_secs(20)).await {
        let _ = child.kill().await;
        return None;
    }
    Some(child)
}

fn rand_suffix() -> u32 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos())
}

/// Percent-encodes a query parameter.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
