//! The log filter, changed at run time through the admin port.

use std::time::Duration;

use e2e::otlp::Collector;
use e2e::processes::{ProcessCluster, ServiceProcess};
use protocol::ServerMessage;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_filter_changes_at_run_time_and_bad_ones_are_refused() {
    let gateway = ServiceProcess::start("gateway", &[], &[], "gateway ready").await;
    let url = format!("http://{}", gateway.admin_addr());
    assert_eq!(e2e::http_get(&url, "/log-level").await.0, 200);
    assert_eq!(
        e2e::http_request("PUT", &url, "/log-level", "debug,tower=warn").await,
        (200, "debug,tower=warn\n".to_string())
    );
    assert_eq!(e2e::http_get(&url, "/log-level").await.1, "debug,tower=warn\n");
    let (status, message) = e2e::http_request("PUT", &url, "/log-level", "debug,=bogus=").await;
    assert_eq!(status, 400);
    assert!(message.contains("invalid log filter"), "{message}");
    assert_eq!(e2e::http_get(&url, "/log-level").await.1, "debug,tower=warn\n", "a bad filter changes nothing");
}

/// While traces are exported, a log line written while handling a request carries the
/// request's trace id, peer and room (JSON logs: in the line's `span` object).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_lines_of_a_request_carry_its_trace_id_peer_and_room() {
    let collector = Collector::start().await;
    let env = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", collector.endpoint()),
        ("OTEL_BSP_SCHEDULE_DELAY", "100".to_string()),
        ("GATEWAY_TELEMETRY__LOG_FILTER", "info,gateway::session=debug".to_string()),
    ];
    let gateway_env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let cluster = ProcessCluster::start_with_env(1, &gateway_env, &[], 1).await;
    let mut log = cluster.gateway(0).watch_log();
    let mut alice = cluster.connect(0, "alice", &["call"]).await;
    // A signal in a room alice is not in: refused, and logged as such.
    alice.signal("call", "p-nobody", "offer", serde_json::json!({})).await.unwrap();
    let refusal = crate::expect::next(&mut alice).await;
    assert!(matches!(refusal, ServerMessage::Error { .. }), "{refusal:?}");

    let line = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let line = log.recv().await.expect("the gateway's log");
            let record: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
            if record["fields"]["message"] == "request refused" {
                return record;
            }
        }
    })
    .await
    .expect("the refusal is logged within 10 s");
    let span = &line["span"];
    assert_eq!(span["name"], "signal");
    assert_eq!(span["peer"], alice.peer_id());
    assert_eq!(span["room"], "call");
    let trace_id = span["trace_id"].as_str().expect("a trace id");
    assert_eq!(trace_id.len(), 32, "a W3C trace id: {trace_id}");
    let spans = collector
        .wait_for(Duration::from_secs(10), |spans| spans.iter().any(|s| s.name == "signal" && s.trace_id == trace_id))
        .await;
    assert!(spans.is_ok(), "the log's trace id is the exported trace's");
}
