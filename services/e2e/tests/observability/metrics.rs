//! The admin ports' `/metrics`: what a negotiation across two gateways shows there, and
//! that docs/observability.md names exactly the metrics the services export.

use std::collections::BTreeSet;

use e2e::processes::ProcessCluster;
use e2e::scrape::Scrape;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_negotiation_shows_on_both_gateways_and_the_room_service() {
    let mut cluster = ProcessCluster::start(2, &[], "2s").await;
    let (alice, bob) = crate::negotiate(&cluster).await;
    let sender = Scrape::of(cluster.gateway(0).admin_addr()).await;
    let receiver = Scrape::of(cluster.gateway(1).admin_addr()).await;
    let rooms = Scrape::of(cluster.room_service(0).admin_addr()).await;

    assert_eq!(sender.value("switchboard_gateway_messages_received_total{type=\"signal\"}"), 1.0, "alice's offer");
    assert_eq!(sender.value("switchboard_gateway_routed_messages_total{type=\"signal\",path=\"bus\"}"), 1.0);
    assert_eq!(receiver.value("switchboard_gateway_messages_sent_total{type=\"signal\"}"), 1.0, "bob got the offer");
    assert_eq!(
        receiver.value("switchboard_gateway_signal_delivery_seconds_count"),
        1.0,
        "one signal came over the bus"
    );
    assert!(receiver.value("switchboard_gateway_signal_delivery_seconds_sum") > 0.0);
    assert_eq!(sender.value("switchboard_gateway_connections"), 1.0, "alice is connected");
    // A refused token, for the auth failures (counted before the refusal is sent;
    // the refused connection itself closes asynchronously, hence after the scrape
    // above).
    let refused = protocol::client::Client::connect(&cluster.ws_url(0), Some("not-a-jwt")).await;
    assert!(refused.is_err(), "a malformed token is refused");
    let after_refusal = Scrape::of(cluster.gateway(0).admin_addr()).await;
    assert_eq!(after_refusal.value("switchboard_gateway_auth_failures_total{reason=\"malformed\"}"), 1.0);
    assert!(sender.value("switchboard_gateway_received_bytes_total") > 0.0);
    assert!(sender.value("switchboard_gateway_sent_bytes_total") > 0.0);
    assert!(sender.value("switchboard_bus_published_total") >= 1.0);
    assert_eq!(sender.value("switchboard_grpc_client_requests_total{method=\"Join\",code=\"OK\"}"), 1.0);
    assert_eq!(rooms.value("switchboard_grpc_server_requests_total{method=\"Join\",code=\"OK\"}"), 2.0, "two joins");
    assert!(rooms.value("switchboard_grpc_server_request_duration_seconds_count{method=\"Join\"}") >= 2.0);
    assert!(sender.value("process_resident_memory_bytes") > 0.0);
    assert!(sender.value("process_cpu_seconds_total") > 0.0);
    // Labels come from small fixed sets: never a room, peer or node id.
    const LABELS: &[&str] =
        &["type", "path", "code", "reason", "outcome", "direction", "method", "service", "version", "limit", "le"];
    for scrape in [&sender, &receiver, &rooms] {
        for label in scrape.label_names() {
            assert!(LABELS.contains(&label.as_str()), "unexpected label {label}");
        }
    }
    drop((alice, bob));
}

/// Every metric the gateway and the room service export is documented, and every
/// documented one is exported (after the traffic of a negotiation).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_documented_metrics_are_the_exported_ones() {
    let mut cluster = ProcessCluster::start(2, &[], "2s").await;
    let _clients = crate::negotiate(&cluster).await;
    let mut exported = Scrape::of(cluster.gateway(1).admin_addr()).await.names();
    exported.extend(Scrape::of(cluster.room_service(0).admin_addr()).await.names());

    let doc = std::fs::read_to_string(e2e::repository_path("docs/observability.md")).expect("docs/observability.md");
    let documented: BTreeSet<String> = doc
        .lines()
        .filter_map(|line| line.strip_prefix("| `"))
        .filter_map(|rest| rest.split('`').next())
        .filter(|name| name.starts_with("switchboard_") || name.starts_with("process_"))
        .map(str::to_string)
        .collect();
    let undocumented: Vec<_> = exported.difference(&documented).collect();
    let missing: Vec<_> = documented.difference(&exported).collect();
    assert!(undocumented.is_empty(), "exported but not in docs/observability.md: {undocumented:?}");
    assert!(missing.is_empty(), "documented but not exported: {missing:?}");
}
