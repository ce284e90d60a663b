//! Runs the load tester as a child process against a test cluster, as a user would.

#![allow(dead_code, reason = "each test file uses its own part")]

use std::process::Stdio;
use std::time::Duration;

use e2e::processes::ProcessCluster;
use serde_json::Value;
use testkit::LogLines;
use tokio::io::AsyncReadExt;

/// A running tester: its standard error line by line, its standard output whole.
pub struct Tester {
    child: tokio::process::Child,
    stderr: LogLines,
}

impl Tester {
    /// `switchboard-loadtest <scenario>` against both gateways of `cluster`, with `args`.
    pub fn start(scenario: &str, cluster: &ProcessCluster, args: &[&str]) -> Self {
        Self::spawn(&[scenario], cluster, args)
    }

    /// `switchboard-loadtest run <file>` against both gateways of `cluster`, with `args`
    /// after the file's.
    pub fn run_file(file: &std::path::Path, cluster: &ProcessCluster, args: &[&str]) -> Self {
        Self::spawn(&["run", &file.to_string_lossy()], cluster, args)
    }

    fn spawn(command: &[&str], cluster: &ProcessCluster, args: &[&str]) -> Self {
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_switchboard-loadtest"))
            .args(command)
            .args(["--gateway", &cluster.ws_url(0), "--gateway", &cluster.ws_url(1)])
            .args(["--jwt-secret", e2e::SECRET])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let stderr = LogLines::read(child.stderr.take().unwrap());
        Self { child, stderr }
    }

    pub async fn wait_for(&mut self, needle: &str) {
        assert!(self.stderr.wait_for(needle, Duration::from_secs(30)).await, "the tester never said {needle:?}");
    }

    /// Waits for the end; whether it passed and its report (the last line of output).
    pub async fn finish(mut self) -> (bool, Value) {
        let mut stdout = String::new();
        let mut out = self.child.stdout.take().unwrap();
        let ended = async {
            out.read_to_string(&mut stdout).await.unwrap();
            self.child.wait().await.unwrap()
        };
        let status = tokio::time::timeout(Duration::from_secs(60), ended).await.expect("the tester ends by itself");
        let report = serde_json::from_str(stdout.lines().last().expect("a report")).expect("the report is JSON");
        (status.success(), report)
    }
}

pub fn count(report: &Value, path: &[&str]) -> u64 {
    path.iter().fold(report, |value, key| &value[*key]).as_u64().unwrap_or_else(|| panic!("{path:?} in {report}"))
}
