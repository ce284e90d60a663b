//! `switchboard-loadtest storm` against real processes: Redis, a room service and two
//! gateways; the disruption is a real signal to a gateway process. Drained (SIGTERM),
//! every member on it resumes on the other gateway and nothing is lost, duplicated or
//! reordered. Killed (SIGKILL), its members resume with a gap: the gateway could hand
//! nothing over.

mod support;

use e2e::processes::ProcessCluster;
use support::{Tester, count};

fn storm_args(disrupt: &str) -> Vec<String> {
    let args = ["--pairs", "6", "--rate", "300", "--duration", "3s", "--disrupt-at", "1s", "--settle", "5s"];
    let mut args: Vec<String> = args.iter().map(|arg| arg.to_string()).collect();
    args.extend(["--disrupt".to_string(), disrupt.to_string()]);
    args
}

#[tokio::test]
async fn a_drained_gateway_loses_nothing() {
    let cluster = ProcessCluster::start(2, &[("GATEWAY_DRAIN__CLIENT_GRACE", "1s")], "1s").await;
    let pid = cluster.gateway(0).pid().expect("gateway 0 runs");
    let args = storm_args(&format!("kill -TERM {pid}"));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (passed, report) = Tester::start("storm", &cluster, &args).finish().await;
    assert!(passed, "{report}");
    assert_eq!(report["scenario"], "storm");
    let sent = count(&report, &["messages", "sent"]);
    assert!(sent >= 700, "about 900 messages in 3 s at 300/s: {report}");
    assert_eq!(count(&report, &["messages", "received"]), sent, "{report}");
    // Each pair has one member on the drained gateway.
    assert_eq!(count(&report, &["reconnections", "members"]), 6, "{report}");
    assert_eq!(count(&report, &["reconnections", "resumed"]), 6, "{report}");
    assert_eq!(count(&report, &["reconnections", "time_us", "count"]), 6);
    let timeline = report["timeline"].as_array().expect("a timeline");
    assert!(timeline.len() >= 3, "a point a second over 3 s and the settling: {report}");
}

#[tokio::test]
async fn a_killed_gateway_is_followed_by_resumes_with_a_gap() {
    let cluster = ProcessCluster::start(2, &[], "1s").await;
    let pid = cluster.gateway(0).pid().expect("gateway 0 runs");
    let args = storm_args(&format!("kill -KILL {pid}"));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (_, report) = Tester::start("storm", &cluster, &args).finish().await;
    let (sent, received) = (count(&report, &["messages", "sent"]), count(&report, &["messages", "received"]));
    assert_eq!(count(&report, &["messages", "lost"]), sent - received, "{report}");
    assert_eq!(count(&report, &["reconnections", "members"]), 6, "{report}");
    assert_eq!(count(&report, &["members_failed"]), 0, "{report}");
    let gaps =
        count(&report, &["reconnections", "resumed_with_gap"]) + count(&report, &["reconnections", "new_sessions"]);
    assert_eq!(gaps, 6, "no handover from a crashed gateway: {report}");
    assert_eq!(count(&report, &["messages", "duplicated"]), 0, "{report}");
}
