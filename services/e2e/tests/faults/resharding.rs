//! A Redis Cluster moves a room's hash slot to another master under live rooms (what
//! `redis-cli --cluster reshard` does slot by slot). docs/redis-cluster.md.

use std::time::Duration;

use protocol::ServerMessage;
use protocol::client::{Auth, Client, Start};
use serde_json::json;

use crate::{TestCluster, expect};

/// How often gateway 1 reads the slot map; gateway 0 reads it rarely, so that a join
/// made through gateway 1 right after the move is one gateway 0 does not hear.
const QUICK: Duration = Duration::from_millis(100);
const SLOW: Duration = Duration::from_secs(3);

/// Alice (gateway 0) and Bob (gateway 1) are in room "moving", Carol and Dave in a room
/// whose slot stays. The slot of "moving" goes to another master. Gateway 1 notices
/// first: Bob is told to reconnect, then Erin joins "moving" through gateway 1, which
/// gateway 0, still subscribed where the slot was, does not hear (unless its check,
/// every 3 s, falls in those few milliseconds). Bob resumes on gateway 0, as a client
/// falling back on another gateway would: the marker of his move is published while
/// gateway 0 is deaf too, and his resume completes when gateway 0 notices and repairs
/// the room. Alice, told to reconnect then, resumes on gateway 1. Both resume with a
/// gap and signal each other and Erin (gateway 0's view of the room has her only if it
/// was read again); Carol and Dave notice nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_moved_room_recovers_and_the_other_rooms_notice_nothing() {
    tokio::time::timeout(Duration::from_secs(60), moved_room()).await.expect("done within 60 s");
}

async fn moved_room() {
    let cluster = TestCluster::redis_cluster_with(2, Default::default(), |config| {
        config.redis.cluster_check_interval = if config.node_id.as_deref() == Some("gw-0") { SLOW } else { QUICK };
    })
    .await;
    let redis = cluster.redis_cluster();
    let staying = redis.name_elsewhere("sb:room:{moving}", |room| format!("sb:room:{{{room}}}")).await;
    let (alice, bob) = cluster.alice_and_bob_in("moving").await;
    let (mut carol, mut dave) =
        (cluster.connect(0, "carol", &[&staying]).await, cluster.connect(1, "dave", &[&staying]).await);
    carol.join(&staying, None).await.unwrap();
    dave.join(&staying, None).await.unwrap();
    expect::peer_joined(&mut carol, &staying).await;

    redis.move_slot_of("sb:room:{moving}").await;
    let mut bob = told_to_reconnect(bob).await;
    let mut erin = cluster.connect(1, "erin", &["moving"]).await;
    erin.join("moving", None).await.unwrap();
    let mut bob = resume_with_gap(&cluster, 0, &mut bob).await;
    let mut alice = told_to_reconnect(alice).await;
    let mut alice = resume_with_gap(&cluster, 1, &mut alice).await;

    let (alice_id, bob_id, erin_id) =
        (alice.peer_id().to_string(), bob.peer_id().to_string(), erin.peer_id().to_string());
    // Gateway 0 lets Bob signal Erin only if its view of the room has her.
    bob.signal("moving", &erin_id, "offer", json!({"to": "erin"})).await.unwrap();
    let (_, from, _, data) = next_signal(&mut erin).await;
    assert_eq!((from.as_str(), data), (bob_id.as_str(), json!({"to": "erin"})));
    alice.signal("moving", &bob_id, "offer", json!({"to": "bob"})).await.unwrap();
    assert_eq!(next_signal(&mut bob).await.3, json!({"to": "bob"}));
    bob.signal("moving", &alice_id, "answer", json!({"to": "alice"})).await.unwrap();
    assert_eq!(next_signal(&mut alice).await.3, json!({"to": "alice"}));

    // Both gateways have repaired "moving" by now; the other room was not touched: the
    // next thing Dave gets is Carol's signal, no `reconnect`.
    carol.signal(&staying, dave.peer_id(), "offer", json!({"undisturbed": true})).await.unwrap();
    assert_eq!(expect::signal(&mut dave).await.3, json!({"undisturbed": true}));
    assert!(carol.sequence_errors().is_empty() && dave.sequence_errors().is_empty());
}

/// Reads the client's messages until `reconnect`, which must say `state_lost`. Only
/// presence may come before it (a gateway that heard Erin's join first).
async fn told_to_reconnect(mut client: Client) -> Client {
    loop {
        match expect::next(&mut client).await {
            ServerMessage::Reconnect { reason } => {
                assert_eq!(reason, "state_lost");
                return client;
            }
            ServerMessage::PeerJoined { .. } => continue,
            other => panic!("{}: expected reconnect, got {other:?}", client.peer_id()),
        }
    }
}

/// Resumes the session of `old` on gateway `index`: the resume must report a gap.
async fn resume_with_gap(cluster: &TestCluster, index: usize, old: &mut Client) -> Client {
    let token = old.resume_token().expect("a resume token").to_string();
    let (client, start) = Client::resume(&cluster.ws_url(index), &token, old.last_seq(), Auth::Anonymous)
        .await
        .expect("the session resumes");
    assert_eq!(start, Start::Resumed { gap: true, rooms: vec!["moving".into()] }, "{}", old.peer_id());
    client
}

/// The next signal, after any presence the client may get first.
async fn next_signal(client: &mut Client) -> (String, String, String, serde_json::Value) {
    loop {
        match expect::next(client).await {
            ServerMessage::Signal { room, from, kind, data } => return (room, from, kind, data.to_value()),
            ServerMessage::PeerJoined { .. } => continue,
            other => panic!("{}: expected a signal, got {other:?}", client.peer_id()),
        }
    }
}
