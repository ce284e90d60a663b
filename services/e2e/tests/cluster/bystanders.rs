//! Two well-behaved peers who share a room with a misbehaving one, and must not notice.

use protocol::client::Client;
use serde_json::json;

use crate::{TestCluster, expect};

/// Two peers on different gateways in room "talk", who keep talking throughout.
pub async fn bystanders(cluster: &TestCluster) -> (Client, Client) {
    let mut alice = cluster.connect(0, "alice", &["talk"]).await;
    let mut bob = cluster.connect(1, "bob", &["talk"]).await;
    alice.join("talk", None).await.unwrap();
    bob.join("talk", None).await.unwrap();
    expect::peer_joined(&mut alice, "talk").await;
    (alice, bob)
}

pub async fn bystanders_still_talk(alice: &mut Client, bob: &mut Client) {
    let bob_id = bob.peer_id().to_string();
    alice.signal("talk", &bob_id, "offer", json!({"sdp": "still fine"})).await.unwrap();
    let (_, from, kind, _) = expect::signal(bob).await;
    assert_eq!((from.as_str(), kind.as_str()), (alice.peer_id(), "offer"));
}
