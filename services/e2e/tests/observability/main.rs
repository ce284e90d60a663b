//! What the cluster tells its operators: traces that cross nodes (exported to a test
//! collector), metrics on the admin ports (checked by scraping them and through a real
//! Prometheus), the log level changed at run time. docs/observability.md describes
//! all of it.

pub use e2e::expect;

mod logs;
mod metrics;
mod prometheus;
mod traces;

/// A two-gateway cluster of processes negotiating: alice on gateway 0, bob on gateway 1,
/// in room `call`; returns them after one offer and answer went across.
pub async fn negotiate(
    cluster: &e2e::processes::ProcessCluster,
) -> (protocol::client::Client, protocol::client::Client) {
    let mut alice = cluster.connect(0, "alice", &["call"]).await;
    let mut bob = cluster.connect(1, "bob", &["call"]).await;
    alice.join("call", None).await.expect("alice joins");
    bob.join("call", None).await.expect("bob joins");
    expect::peer_joined(&mut alice, "call").await;
    let bob_id = bob.peer_id().to_string();
    alice.signal("call", &bob_id, "offer", serde_json::json!({"sdp": "v=0"})).await.expect("offer sent");
    assert_eq!(expect::signal(&mut bob).await.2, "offer");
    bob.signal("call", alice.peer_id(), "answer", serde_json::json!({"sdp": "v=0"})).await.expect("answer sent");
    assert_eq!(expect::signal(&mut alice).await.2, "answer");
    (alice, bob)
}
