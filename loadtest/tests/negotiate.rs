//! `switchboard-loadtest negotiate` against real processes: Redis, a room service and
//! two gateways. A healthy cluster passes with every message accounted for; the offered
//! rate caps what is sent; a gateway killed mid-run fails the run with the reason
//! instead of hanging it.

mod support;

use e2e::processes::ProcessCluster;
use support::{Tester, count};

/// The `negotiate` scenario with `args`, missing messages counted as lost after 3 s.
fn negotiate(cluster: &ProcessCluster, args: &[&str]) -> Tester {
    Tester::start("negotiate", cluster, &[&["--message-timeout", "3s"], args].concat())
}

#[tokio::test]
async fn mesh_rooms_across_two_gateways_account_for_every_message() {
    let cluster = ProcessCluster::start(2, &[], "1s").await;
    let per_room = 6;
    let args = ["--rooms", "3", "--room-size", "3", "--candidates", "4", "--negotiations-per-room", "6"];
    let (passed, report) = negotiate(&cluster, &[&args[..], &["--duration", "60s"]].concat()).finish().await;
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
    let metrics = [0, 1].map(|index| format!("http://{}/metrics", cluster.gateway(index).admin_addr()));
    let plot = std::env::temp_dir().join(format!("loadtest-negotiate-{}.svg", std::process::id()));
    let plot_arg = plot.to_string_lossy().to_string();
    let args = [
        ["--rooms", "4", "--rate", "400", "--duration", "2s"].as_slice(),
        &["--metrics", &metrics[0], "--metrics", &metrics[1], "--plot", &plot_arg],
    ]
    .concat();
    let (passed, report) = negotiate(&cluster, &args).finish().await;
    assert!(passed, "{report}");
    // The timeline: a point a second, together the messages received.
    let timeline = report["timeline"].as_array().expect("a timeline");
    assert!((2..=3).contains(&timeline.len()), "{report}");
    let seconds_received: f64 = timeline.iter().map(|point| point["per_s"].as_f64().unwrap()).sum();
    assert!(seconds_received > 0.0 && timeline.iter().all(|point| point["p99_us"].is_u64()), "{report}");
    let svg = std::fs::read_to_string(&plot).expect("the plot was written");
    let _ = std::fs::remove_file(&plot);
    assert!(
        svg.starts_with("<svg") && svg.contains("p99") && svg.contains("messages received a second"),
        "{}",
        &svg[..200.min(svg.len())]
    );
    assert_eq!(report["servers"].as_array().unwrap().len(), 2, "both gateways sampled");
    assert!(report["server_cpu_us_per_message"].as_f64().unwrap() > 0.0, "{report}");
    let negotiations = count(&report, &["negotiations"]);
    assert!((1..=40).contains(&negotiations), "{negotiations} negotiations");
    assert_eq!(count(&report, &["messages", "sent"]), negotiations * 20);
    assert_eq!(report["settings"]["rate_msgs_per_s"], 400.0);
}

#[tokio::test]
async fn a_gateway_killed_mid_run_fails_the_run_with_the_reason() {
    let mut cluster = ProcessCluster::start(2, &[], "1s").await;
    let mut tester = negotiate(&cluster, &["--rooms", "4", "--duration", "20s"]);
    tester.wait_for("rooms ready").await;
    cluster.take_gateway(1).kill().await;
    let (passed, report) = tester.finish().await;
    assert!(!passed, "{report}");
    assert_eq!(report["ok"], false);
    assert!(count(&report, &["errors"]) >= 1, "{report}");
    let samples = report["error_samples"].to_string();
    assert!(samples.contains("room "), "the rooms that stopped say so: {samples}");
}
