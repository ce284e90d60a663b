//! A network partition: one gateway is cut off from Redis and from the room service (its
//! connections to both run through [`Link`]s that stop passing bytes, without resets).
//! Its peers are removed from their rooms by the janitor once its lease expires; it
//! tells its clients to reconnect elsewhere; clients of the healthy gateways keep
//! signaling throughout. When the partition heals it rejoins the cluster by itself.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use e2e::http_get;
use e2e::link::Link;
use e2e::processes::ProcessCluster;
use protocol::{LeaveReason, ServerMessage};
use serde_json::json;

use crate::expect;

const LEASE_TTL: Duration = Duration::from_secs(2);
const JANITOR_PERIOD: Duration = Duration::from_millis(500);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_cut_off_is_cleaned_up_and_rejoins_after_healing() {
    tokio::time::timeout(Duration::from_secs(90), partition()).await.expect("done within 90 s");
}

async fn partition() {
    let env = [("GATEWAY_LEASE__TTL", "2s"), ("GATEWAY_LEASE__REFRESH", "500ms")];
    let mut cluster = ProcessCluster::start(2, &env, "500ms").await;
    let to_redis = Link::start(([127, 0, 0, 1], cluster.redis.port()).into()).await;
    let to_rooms = Link::start(cluster.room_service(0).addr()).await;
    let cut_off = cluster
        .add_gateway_with(&[
            ("GATEWAY_REDIS__URL", format!("redis://{}", to_redis.addr())),
            ("GATEWAY_ROOM_SERVICE__URL", format!("http://{}", to_rooms.addr())),
        ])
        .await;

    let mut healthy = [cluster.connect(0, "h0", &["r"]).await, cluster.connect(1, "h1", &["r"]).await];
    let mut stranded = cluster.connect(cut_off, "stranded", &["r"]).await;
    for client in healthy.iter_mut().chain([&mut stranded]) {
        client.join("r", None).await.unwrap();
    }
    let stranded_id = stranded.peer_id().to_string();
    expect::peer_joined(&mut healthy[0], "r").await; // h1
    expect::peer_joined(&mut healthy[0], "r").await; // stranded
    expect::peer_joined(&mut healthy[1], "r").await; // stranded
    let [mut h0, mut h1] = healthy;

    // h0 signals h1 without pause; h1 checks each arrives, once, in order, and notes
    // when it sees the stranded peer leave.
    let stop = Arc::new(AtomicBool::new(false));
    let h1_id = h1.peer_id().to_string();
    let sender = tokio::spawn({
        let stop = stop.clone();
        async move {
            let mut sent = 0u64;
            while !stop.load(Ordering::Relaxed) {
                h0.signal("r", &h1_id, "app:tick", json!(sent)).await.expect("h0 keeps sending");
                sent += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            (h0, sent)
        }
    });

    to_redis.cut();
    to_rooms.cut();
    let cut_at = tokio::time::Instant::now();
    let mut received = 0u64;
    let mut left_after = None;
    while left_after.is_none() {
        match expect::next(&mut h1).await {
            ServerMessage::Signal { data, .. } => {
                assert_eq!(data.to_value(), json!(received), "h1 receives every tick once, in order");
                received += 1;
            }
            ServerMessage::PeerLeft { peer_id, reason: LeaveReason::Disconnected, .. } if peer_id == stranded_id => {
                left_after = Some(cut_at.elapsed());
            }
            other => panic!("h1: unexpected {other:?}"),
        }
    }
    let left_after = left_after.expect("seen");
    eprintln!(
        "the stranded peer left {left_after:?} after the cut (lease {LEASE_TTL:?}, janitor every {JANITOR_PERIOD:?})"
    );
    let bound = LEASE_TTL + JANITOR_PERIOD + Duration::from_secs(2);
    assert!(left_after < bound, "cleaned up within the lease plus a sweep and margin ({bound:?})");

    // The cut-off gateway noticed too: it told its client to reconnect elsewhere.
    match expect::next(&mut stranded).await {
        ServerMessage::Reconnect { reason } => assert_eq!(reason, "state_lost"),
        other => panic!("stranded: expected reconnect, got {other:?}"),
    }
    assert_eq!(http_get(&cluster.http_url(cut_off), "/readyz").await.0, 503);
    let members = member_ids(&cluster).await;
    assert!(!members.contains(&stranded_id), "the room service no longer lists the stranded peer: {members:?}");

    // Long enough for the cut-off gateway to give its Redis connections up as
    // unresponsive and keep failing to reconnect.
    while cut_at.elapsed() < Duration::from_secs(6) {
        let (_, _, _, data) = expect::signal(&mut h1).await;
        assert_eq!(data, json!(received), "h1 receives every tick once, in order");
        received += 1;
    }
    to_redis.heal();
    to_rooms.heal();
    testkit::eventually("the gateway rejoins", Duration::from_secs(20), || async {
        (http_get(&cluster.http_url(cut_off), "/readyz").await.0 == 200).then_some(())
    })
    .await;
    let mut back = cluster.connect(cut_off, "back", &["r"]).await;
    back.join("r", None).await.unwrap();
    let back_id = back.peer_id().to_string();
    loop {
        match expect::next(&mut h1).await {
            ServerMessage::Signal { data, .. } => {
                assert_eq!(data.to_value(), json!(received), "h1 receives every tick once, in order");
                received += 1;
            }
            ServerMessage::PeerJoined { peer, .. } if peer.peer_id == back_id => break,
            other => panic!("h1: unexpected {other:?}"),
        }
    }
    h1.signal("r", &back_id, "offer", json!("welcome back")).await.unwrap();
    assert_eq!(expect::signal(&mut back).await.3, json!("welcome back"));

    stop.store(true, Ordering::Relaxed);
    let (_h0, sent) = sender.await.expect("the sender");
    while received < sent {
        let (_, _, _, data) = expect::signal(&mut h1).await;
        assert_eq!(data, json!(received));
        received += 1;
    }
    eprintln!("{received} signals between healthy gateways, none lost, through the partition");
}

async fn member_ids(cluster: &ProcessCluster) -> BTreeSet<String> {
    let mut rooms = cluster.room_service_client().await;
    let request = cluster_proto::room::ListMembersRequest { room: "r".into() };
    rooms.list_members(request).await.unwrap().into_inner().members.into_iter().map(|m| m.peer_id).collect()
}
