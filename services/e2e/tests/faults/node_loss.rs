//! Node loss: a gateway killed with SIGKILL. Its members leave their rooms within the
//! lease TTL plus one refresh period, exactly once, and nobody else does.

use std::collections::BTreeSet;
use std::time::Duration;

use cluster_proto::room::ListMembersRequest;
use e2e::processes::ProcessCluster;
use protocol::client::Client;
use protocol::{LeaveReason, ServerMessage};

use crate::expect;

const LEASE_TTL: Duration = Duration::from_secs(2);
const LEASE_REFRESH: Duration = Duration::from_millis(500);

/// How long the survivors may wait: TTL plus one refresh (the janitor sweeps as often),
/// plus a second for process scheduling on a loaded test machine.
const BOUND: Duration = Duration::from_millis(2_000 + 500 + 1_000);

async fn member_ids(cluster: &ProcessCluster, room: &str) -> BTreeSet<String> {
    let mut api = cluster.room_service_client().await;
    match api.list_members(ListMembersRequest { room: room.into() }).await {
        Ok(reply) => reply.into_inner().members.into_iter().map(|m| m.peer_id).collect(),
        Err(_) => BTreeSet::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_of_a_killed_gateway_leave_within_the_lease_and_only_they() {
    let env = [("GATEWAY_LEASE__TTL", "2s"), ("GATEWAY_LEASE__REFRESH", "500ms")];
    let mut cluster = ProcessCluster::start(3, &env, "500ms").await;
    assert_eq!((LEASE_TTL, LEASE_REFRESH), (Duration::from_secs(2), Duration::from_millis(500)));
    // Room r1 spans all three gateways, r2 gateways 0 and 2; gateway 0 holds two peers.
    let mut doomed = [cluster.connect(0, "d1", &["r1", "r2"]).await, cluster.connect(0, "d2", &["r1"]).await];
    let mut s1 = cluster.connect(1, "s1", &["r1"]).await;
    let mut s2 = cluster.connect(2, "s2", &["r1", "r2"]).await;
    doomed[0].join("r1", None).await.unwrap();
    doomed[0].join("r2", None).await.unwrap();
    doomed[1].join("r1", None).await.unwrap();
    s1.join("r1", None).await.unwrap();
    s2.join("r1", None).await.unwrap();
    s2.join("r2", None).await.unwrap();
    expect::peer_joined(&mut s1, "r1").await; // s2
    let (d1, d2) = (doomed[0].peer_id().to_string(), doomed[1].peer_id().to_string());

    cluster.take_gateway(0).kill().await;
    let killed_at = tokio::time::Instant::now();

    // s1 (r1 only) sees d1 and d2 leave r1; s2 sees both leave r1 and d1 leave r2.
    s1.set_reply_timeout(BOUND);
    s2.set_reply_timeout(BOUND);
    let mut seen_by_s1 = BTreeSet::new();
    for _ in 0..2 {
        match expect::next(&mut s1).await {
            ServerMessage::PeerLeft { room, peer_id, reason: LeaveReason::Disconnected } => {
                seen_by_s1.insert((room, peer_id));
            }
            other => panic!("s1: expected peer_left, got {other:?}"),
        }
    }
    assert_eq!(seen_by_s1, BTreeSet::from([("r1".into(), d1.clone()), ("r1".into(), d2.clone())]));
    let mut seen_by_s2 = BTreeSet::new();
    for _ in 0..3 {
        match expect::next(&mut s2).await {
            ServerMessage::PeerLeft { room, peer_id, reason: LeaveReason::Disconnected } => {
                seen_by_s2.insert((room, peer_id));
            }
            other => panic!("s2: expected peer_left, got {other:?}"),
        }
    }
    assert_eq!(
        seen_by_s2,
        BTreeSet::from([("r1".into(), d1.clone()), ("r1".into(), d2.clone()), ("r2".into(), d1.clone())])
    );
    let took = killed_at.elapsed();
    eprintln!("peer_left at the survivors {took:?} after the kill (bound {BOUND:?})");

    // The room service agrees, and nothing else happened: a marker comes next.
    assert_eq!(member_ids(&cluster, "r1").await, BTreeSet::from([s1.peer_id().to_string(), s2.peer_id().to_string()]));
    assert_eq!(member_ids(&cluster, "r2").await, BTreeSet::from([s2.peer_id().to_string()]));
    s2.signal("r1", s1.peer_id(), "app:marker", serde_json::json!(1)).await.unwrap();
    assert_eq!(expect::signal(&mut s1).await.2, "app:marker");

    // New joins work, on the survivors and on a gateway started afterwards.
    let fresh_gateway = cluster.add_gateway().await;
    let mut newcomer: Client = cluster.connect(fresh_gateway, "new", &["r1"]).await;
    let present: BTreeSet<String> = newcomer.join("r1", None).await.unwrap().into_iter().map(|p| p.peer_id).collect();
    assert_eq!(present, BTreeSet::from([s1.peer_id().to_string(), s2.peer_id().to_string()]));
    assert_eq!(expect::peer_joined(&mut s1, "r1").await.peer_id, newcomer.peer_id());
}
