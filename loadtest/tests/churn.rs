//! `switchboard-loadtest churn` against real processes: Redis, a room service and two
//! gateways. Clients join, leave and reconnect for a few seconds; every step is timed
//! and nobody is left in a room. A member that stays (here, one the test holds in a
//! room) fails the run.

mod support;

use e2e::processes::ProcessCluster;
use support::{Tester, count};

const CHURN: [&str; 10] =
    ["--clients", "20", "--rate", "100", "--rooms", "4", "--reconnect-every", "3", "--duration", "3s"];

#[tokio::test]
async fn clients_churn_through_rooms_and_leave_nothing_behind() {
    let cluster = ProcessCluster::start(2, &[], "1s").await;
    let metrics = format!("http://{}/metrics", cluster.gateway(0).admin_addr());
    let mut args = CHURN.to_vec();
    args.extend(["--metrics", &metrics]);
    let (passed, report) = Tester::start("churn", &cluster, &args).finish().await;
    assert!(passed, "{report}");
    assert_eq!(report["scenario"], "churn");
    let cycles = count(&report, &["cycles"]);
    assert!(cycles >= 150, "about 300 cycles in 3 s at 100/s: {report}");
    assert_eq!(count(&report, &["join_us", "count"]), cycles);
    assert_eq!(count(&report, &["leave_us", "count"]), cycles);
    // A first connection each, then a new one after every third cycle.
    let connects = count(&report, &["connect_us", "count"]);
    assert!(connects > 20 && connects <= 20 + cycles / 3, "{connects} connects: {report}");
    assert_eq!(count(&report, &["leftover_members"]), 0);
    assert!(report["server_cpu_us_per_cycle"].as_f64().unwrap() > 0.0, "{report}");
    let timeline = report["timeline"].as_array().expect("a timeline");
    assert!(timeline.len() >= 2 && timeline.iter().any(|point| point["p99_us"].as_u64() > Some(0)), "{report}");
}

/// A scenario file names the scenario and its options; options after it override it.
#[tokio::test]
async fn a_scenario_file_runs_with_its_options_and_the_overrides() {
    let cluster = ProcessCluster::start(2, &[], "1s").await;
    let file = std::env::temp_dir().join(format!("loadtest-churn-{}.toml", std::process::id()));
    let text = "scenario = \"churn\"\nclients = 8\nrate = 40\nrooms = 2\nreconnect_every = 2\nduration = \"30s\"\n";
    std::fs::write(&file, text).unwrap();
    let (passed, report) = Tester::run_file(&file, &cluster, &["--duration", "1s"]).finish().await;
    let _ = std::fs::remove_file(&file);
    assert!(passed, "{report}");
    assert_eq!(report["scenario"], "churn");
    let settings = &report["settings"];
    assert_eq!((settings["clients"].as_u64(), settings["rooms"].as_u64()), (Some(8), Some(2)), "{report}");
    assert_eq!(settings["duration_s"].as_f64(), Some(1.0), "the command line's duration overrides the file's");
    assert!(count(&report, &["cycles"]) >= 20, "about 40 cycles in 1 s: {report}");
}

#[tokio::test]
async fn a_member_left_in_a_room_fails_the_run() {
    let cluster = ProcessCluster::start(2, &[], "1s").await;
    let mut stayer = cluster.connect(1, "stayer", &["churn-test-2"]).await;
    stayer.join("churn-test-2", None).await.unwrap();
    let mut args = CHURN.to_vec();
    args.extend(["--room-prefix", "churn-test", "--duration", "1s", "--settle-timeout", "1s"]);
    let (passed, report) = Tester::start("churn", &cluster, &args).finish().await;
    assert!(!passed, "{report}");
    assert_eq!(count(&report, &["leftover_members"]), 1, "{report}");
    assert_eq!(count(&report, &["errors"]), 0, "{report}");
}
