//! `switchboard-loadtest negotiate` against real processes: Redis, a room service and
//! two gateways. A healthy cluster passes with every message accounted for; the offered
//! rate caps what is sent; a gateway killed mid-run fails the run with the reason
//! instead of hanging it.

use std::process::Stdio;
use std::time::Duration;

use e2e::processes::ProcessCluster;
use serde_json::Value;
use testkit::LogLines;
use tokio::io::AsyncReadExt;

/// A running tester: its standard error line by line, its standard output whole.
struct Tester {
    child: tokio::process::Child,
    stderr: LogLines,
}

impl Tester {
    fn start(cluster: &ProcessCluster, args: &[&str]) -> Self {
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_switchboard-loadtest"))
            .arg("negotiate")
            .args(["--gateway", &cluster.ws_url(0), "--gateway", &cluster.ws_url(1)])
            .args(["--jwt-secret", e2e::SECRET, "--message-timeout", "3s"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let stderr = LogLines::read(child.stderr.take().unwrap());
        Self { child, stderr }
    }

    async fn wait_for(&mut self, needle: &str) {
        assert!(self.stderr.wait_for(needle, Duration::from_secs(30)).await, "the tester never said {needle:?}");
    }

    /// Waits for the end; whether it passed and its report (the last line of output).
    async fn finish(mut self) -> (bool, Value) {
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

fn count(report: &Value, path: &[&str]) -> u64 {
    path.iter().fold(report, |value, key| &value[*key]).as_u64().unwrap_or_else(|| panic!("{path:?} in {report}"))
}

#[tokio::test]
async fn mesh_rooms_across_two_gateways_account_for_every_message() {
    let cluster = ProcessCluster::start(2, &[], "1s").await;
    let per_room = 6;
    let args = ["--rooms", "3", "--room-size", "3", "--candidates", "4", "--negotiations-per-room", "6"];
    let (passed, report) = Tester::start(&cluster, &[&args[..], &["--duration", "60s"]].concat()).finish().await;
    assert!(passed, "{report}");
    assert_eq!(report["scenario"], "negotiate");
    assert_eq!(count(&report, &["connections"]), 9);
    assert_eq!(report["nodes"].as_array().unwrap().len(), 2, "members on both gateways");
    // Three pairs per room take turns: each negotiated twice.
    assert_eq!(count(&report, &["negotiations"]), 3 * per_room);
    let sent = count(&report, &["messages", "sent"]);
    assert_eq!(sent, 3 * per_room * 2 * (4 + 2), "description, 4 candidates, end-of-candidates each way");
    assert_eq!(count(&report, &["messages", "received"]), sent);
    assert_eq!(count(&report, &["latency_us", "count"]), sent, "a latency per message");
    for wrong in ["lost", "duplicated", "out_of_order", "altered", "late", "unexpected"] {
        assert_eq!(count(&report, &["messages", wrong]), 0, "{wrong}");
    }
}

#[tokio::test]
async fn the_offered_rate_caps_what_is_sent() {
    let cluster = ProcessCluster::start(2, &[], "1s").await;
    // 4 rooms, 20 messages a negotiation, 400 messages a second: each room's turn
    // comes every 200 ms, so 2 s hold at most 10 negotiations a room.
    let (passed, report) =
        Tester::start(&cluster, &["--rooms", "4", "--rate", "400", "--duration", "2s"]).finish().await;
    assert!(passed, "{report}");
    let negotiations = count(&report, &["negotiations"]);
    assert!((1..=40).contains(&negotiations), "{negotiations} negotiations");
    assert_eq!(count(&report, &["messages", "sent"]), negotiations * 20);
    assert_eq!(report["settings"]["rate_msgs_per_s"], 400.0);
}

#[tokio::test]
async fn a_gateway_killed_mid_run_fails_the_run_with_the_reason() {
    let mut cluster = ProcessCluster::start(2, &[], "1s").await;
    let mut tester = Tester::start(&cluster, &["--rooms", "4", "--duration", "20s"]);
    tester.wait_for("rooms ready").await;
    cluster.take_gateway(1).kill().await;
    let (passed, report) = tester.finish().await;
    assert!(!passed, "{report}");
    assert_eq!(report["ok"], false);
    assert!(count(&report, &["errors"]) >= 1, "{report}");
    let samples = report["error_samples"].to_string();
    assert!(samples.contains("room "), "the rooms that stopped say so: {samples}");
}
