//! The dashboard and the alert rules against a real Prometheus scraping a cluster under
//! load: every query of the dashboard and every rule is valid and returns data; the
//! rule files pass `promtool check rules` and their unit tests (`promtool test rules`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use e2e::processes::ProcessCluster;
use e2e::prometheus::Prometheus;
use serde_json::json;

/// How long the load may run at most, whatever happens to the test.
const LOAD_LIMIT: Duration = Duration::from_secs(90);
/// The window the dashboard's rate queries get here (Grafana's `$__rate_interval`).
const RATE_INTERVAL: &str = "10s";

/// Every query of the dashboard, with Grafana's variables replaced as Grafana would for
/// "all gateways".
fn dashboard_queries() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(e2e::repository_path("helm/switchboard/files/grafana-dashboard.json"))
        .expect("dashboard");
    let dashboard: serde_json::Value = serde_json::from_str(&text).expect("the dashboard is JSON");
    let mut queries = Vec::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"].as_str().expect("a target has an expression");
            let expr = expr.replace("$__rate_interval", RATE_INTERVAL).replace("$instance", ".*");
            queries.push((format!("{} / {}", panel["title"].as_str().unwrap_or("?"), target["legendFormat"]), expr));
        }
    }
    queries
}

/// Runs every dashboard query and checks every rule; returns what failed.
async fn check_queries(prometheus: &Prometheus) -> Vec<String> {
    let mut failures = Vec::new();
    for (panel, expr) in dashboard_queries() {
        match prometheus.query(&expr).await {
            Ok(result) if result.is_empty() => failures.push(format!("{panel}: no data for {expr}")),
            Ok(_) => {}
            Err(error) => failures.push(format!("{panel}: {error} in {expr}")),
        }
    }
    let rules = prometheus.api("/api/v1/rules").await;
    let groups = rules["data"]["groups"].as_array().cloned().unwrap_or_default();
    if groups.len() != 2 {
        failures.push(format!("expected 2 rule groups, Prometheus has {}", groups.len()));
    }
    for rule in groups.iter().flat_map(|group| group["rules"].as_array().cloned().unwrap_or_default()) {
        let name = rule["name"].as_str().unwrap_or("?").to_string();
        if rule["health"] != "ok" {
            failures.push(format!("rule {name}: health {} {}", rule["health"], rule["lastError"]));
        }
        if rule["type"] == "recording" && prometheus.query(&name).await.map_or(true, |result| result.is_empty()) {
            failures.push(format!("recording rule {name}: no data"));
        }
    }
    if let Ok(targets) = prometheus.query("up == 0").await.map(|r| r.len())
        && targets > 0
    {
        failures.push(format!("{targets} targets are down"));
    }
    failures
}

/// Pairs of clients, one on each gateway, negotiating until `stop` (or the limit).
async fn load(cluster: &ProcessCluster, pairs: usize, stop: Arc<AtomicBool>) -> Vec<tokio::task::JoinHandle<u64>> {
    let mut tasks = Vec::new();
    for pair in 0..pairs {
        let room = format!("load-{pair}");
        let mut a = cluster.connect(0, &format!("a{pair}"), &[&room]).await;
        let mut b = cluster.connect(1, &format!("b{pair}"), &[&room]).await;
        a.join(&room, None).await.expect("join");
        b.join(&room, None).await.expect("join");
        crate::expect::peer_joined(&mut a, &room).await;
        let stop = stop.clone();
        tasks.push(tokio::spawn(async move {
            let started = tokio::time::Instant::now();
            let (a_id, b_id) = (a.peer_id().to_string(), b.peer_id().to_string());
            let mut rounds = 0;
            while !stop.load(Ordering::Relaxed) && started.elapsed() < LOAD_LIMIT {
                a.signal(&room, &b_id, "candidate", json!({"candidate": "candidate:1 1 udp 1 127.0.0.1 9 typ host"}))
                    .await
                    .unwrap();
                crate::expect::signal(&mut b).await;
                b.signal(&room, &a_id, "candidate", json!({"candidate": "candidate:2 1 udp 1 127.0.0.1 9 typ host"}))
                    .await
                    .unwrap();
                crate::expect::signal(&mut a).await;
                if rounds % 20 == 0 {
                    a.broadcast(&room, json!({"chat": rounds})).await.unwrap();
                    crate::expect::broadcast(&mut b).await;
                }
                rounds += 1;
                // Pacing, not synchronisation: a steady rate instead of a saturating one.
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            rounds
        }));
    }
    tasks
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_dashboard_query_and_rule_returns_data_from_a_real_prometheus() {
    let mut cluster = ProcessCluster::start(2, &[], "2s").await;
    let gateways = vec![cluster.gateway(0).admin_addr(), cluster.gateway(1).admin_addr()];
    let rooms = vec![cluster.room_service(0).admin_addr()];
    let rules = e2e::repository_path("helm/switchboard/files/prometheus-rules.yaml");
    let prometheus =
        Prometheus::start(&[("switchboard-gateway", gateways), ("switchboard-room-service", rooms)], &[&rules]).await;

    let stop = Arc::new(AtomicBool::new(false));
    let tasks = load(&cluster, 3, stop.clone()).await;
    assert!(protocol::client::Client::connect(&cluster.ws_url(0), Some("expired-or-bad")).await.is_err());

    // Scrapes and rule evaluations happen every second, with no event to await: the
    // queries are retried until all of them answer with data, for at most 30 s.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let failures = loop {
        let failures = check_queries(&prometheus).await;
        if failures.is_empty() || tokio::time::Instant::now() > deadline {
            break failures;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        assert!(task.await.expect("a load task") > 0, "every pair negotiated");
    }
    assert!(failures.is_empty(), "{} of the queries failed:\n{}", failures.len(), failures.join("\n"));
}

/// `promtool check rules` and `promtool test rules` (the alerts' unit tests).
#[tokio::test]
async fn the_rules_pass_promtool() {
    let within = Duration::from_secs(60);
    e2e::run_tool("promtool", &["check", "rules", "helm/switchboard/files/prometheus-rules.yaml"], within).await;
    e2e::run_tool("promtool", &["test", "rules", "docs/observability/alerts.test.yaml"], within).await;
}
