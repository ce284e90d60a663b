//! `switchboard-loadtest smoke` against real processes: Redis, a room service and two
//! gateways. It passes on a working cluster and fails, saying why, when it is pointed
//! at one gateway, at a dead address, or with the wrong secret.

use std::time::Duration;

use e2e::processes::ProcessCluster;

struct Run {
    success: bool,
    report: serde_json::Value,
    stderr: String,
}

async fn smoke(args: &[&str]) -> Run {
    let run = tokio::process::Command::new(env!("CARGO_BIN_EXE_switchboard-loadtest"))
        .arg("smoke")
        .args(args)
        .args(["--timeout", "20s"])
        .env_remove("SWITCHBOARD_JWT_SECRET")
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(30), run).await.expect("the check ends by itself").unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let last = stdout
        .lines()
        .last()
        .unwrap_or_else(|| panic!("no report; stderr: {}", String::from_utf8_lossy(&output.stderr)));
    Run {
        success: output.status.success(),
        report: serde_json::from_str(last).expect("the last line is the JSON report"),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

#[tokio::test]
async fn smoke_check_passes_across_two_gateways_and_explains_its_failures() {
    let cluster = ProcessCluster::start(2, &[], "1s").await;
    let (a, b) = (cluster.ws_url(0), cluster.ws_url(1));
    let secret = ["--jwt-secret", e2e::SECRET];

    let passed = smoke(&[&["--gateway", &a, "--gateway", &b][..], &secret].concat()).await;
    assert!(passed.success, "{}", passed.stderr);
    assert_eq!(passed.report["ok"], true);
    let nodes = passed.report["nodes"].as_array().unwrap();
    assert_ne!(nodes[0], nodes[1], "two different gateways");
    assert!(passed.report["negotiation_ms"].as_f64().unwrap() > 0.0);

    // A headless Service's name resolving to one address: one gateway is not enough.
    let dns = cluster.gateway_addr(0).to_string();
    let alone = smoke(&[&["--gateway-dns", &dns][..], &secret].concat()).await;
    assert!(!alone.success);
    assert!(alone.report["error"].as_str().unwrap().contains("only one gateway"), "{}", alone.report);
    let allowed = smoke(&[&["--gateway-dns", &dns, "--allow-same-gateway"][..], &secret].concat()).await;
    assert!(allowed.success, "{}", allowed.stderr);

    let wrong_secret = smoke(&["--gateway", &a, "--gateway", &b, "--jwt-secret", "not-the-secret"]).await;
    assert!(!wrong_secret.success);
    assert!(wrong_secret.report["error"].as_str().unwrap().contains("smoke-alice connects"), "{}", wrong_secret.report);

    let dead = smoke(&[&["--gateway", &a, "--gateway", "ws://127.0.0.1:9/ws"][..], &secret].concat()).await;
    assert!(!dead.success);
    assert!(dead.report["error"].as_str().unwrap().contains("127.0.0.1:9"), "{}", dead.report);
}
