//! `switchboard-loadtest connect` against real processes: Redis, a room service and two
//! gateways. Connections spread over two source addresses are all held, and the
//! gateways' own numbers come with the report; a gateway at its connection cap makes
//! the run fail with the reason.

mod support;

use e2e::processes::ProcessCluster;
use support::{Tester, count};

fn metrics_urls(cluster: &ProcessCluster) -> [String; 2] {
    [0, 1].map(|index| format!("http://{}/metrics", cluster.gateway(index).admin_addr()))
}

#[tokio::test]
async fn connections_from_two_source_addresses_are_held_and_measured() {
    let cluster = ProcessCluster::start(2, &[], "1s").await;
    let [metrics_0, metrics_1] = metrics_urls(&cluster);
    let args = [
        "--connections",
        "200",
        "--rate",
        "400",
        "--hold",
        "1s",
        "--source-ip",
        "127.0.0.2",
        "--source-ip",
        "127.0.0.3",
        "--metrics",
        &metrics_0,
        "--metrics",
        &metrics_1,
    ];
    let (passed, report) = Tester::start("connect", &cluster, &args).finish().await;
    assert!(passed, "{report}");
    assert_eq!(report["scenario"], "connect");
    assert_eq!(count(&report, &["joined"]), 200);
    assert_eq!(count(&report, &["connect_us", "count"]), 200);
    assert_eq!(count(&report, &["join_us", "count"]), 200);
    let servers = report["servers"].as_array().unwrap();
    let held: f64 = servers.iter().map(|server| server["after"]["connections"].as_f64().unwrap()).sum();
    assert_eq!(held, 200.0, "the gateways counted every connection, 100 each");
    assert!(servers.iter().all(|server| server["after"]["resident_bytes"].as_f64().unwrap() > 0.0));
    assert!(report["server_kib_per_connection"].is_f64(), "{report}");
    assert!(report["server_cpu_us_per_connection"].as_f64().unwrap() > 0.0, "{report}");
    let joined_per_second: f64 =
        report["timeline"].as_array().expect("a timeline").iter().map(|point| point["per_s"].as_f64().unwrap()).sum();
    assert!(joined_per_second > 0.0, "{report}");
}

#[tokio::test]
async fn a_gateway_at_its_cap_fails_the_run_with_the_reason() {
    let cluster = ProcessCluster::start(2, &[("GATEWAY_LIMITS__MAX_CONNECTIONS", "30")], "1s").await;
    let (passed, report) = Tester::start("connect", &cluster, &["--connections", "80", "--hold", "0s"]).finish().await;
    assert!(!passed, "{report}");
    assert_eq!(count(&report, &["joined"]), 60, "30 on each gateway");
    assert_eq!(count(&report, &["errors"]), 20);
    assert!(report["error_samples"].to_string().contains("503"), "{report}");
}
