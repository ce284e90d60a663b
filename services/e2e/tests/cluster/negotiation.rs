//! A 1:1 call: offer, answer and trickle ICE between peers on two gateways.

use protocol::LeaveReason;
use protocol::client::Client;
use serde_json::json;

use crate::{TestCluster, expect};

on_each_deployment!(one_to_one_offer_answer_and_trickle_ice, a_burst_then_a_leave_arrive_in_the_order_sent);

const CANDIDATES: usize = 20;

fn candidate(from: &str, index: usize) -> serde_json::Value {
    json!({
        "candidate": format!("candidate:{index} 1 udp 2122260223 127.0.0.1 {} typ host", 40000 + index),
        "sdpMid": "0",
        "sdpMLineIndex": 0,
        "usernameFragment": from,
    })
}

fn description(kind: &str, who: &str) -> serde_json::Value {
    json!({ "type": kind, "sdp": format!("v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns={who}\r\nt=0 0\r\n") })
}

/// Reads a description and then `CANDIDATES` candidates and the end-of-candidates from
/// `from`, checking each arrives once, in order, with the server-set `from`.
async fn receive_negotiation(client: &mut Client, from: &str, from_identity: &str, kind: &str) {
    let (room, sender, got_kind, data) = expect::signal(client).await;
    assert_eq!((room.as_str(), sender.as_str(), got_kind.as_str()), ("call", from, kind));
    assert_eq!(data, description(kind, from_identity));
    for index in 0..CANDIDATES {
        let (_, sender, kind, data) = expect::signal(client).await;
        assert_eq!((sender.as_str(), kind.as_str()), (from, "candidate"));
        assert_eq!(data, candidate(from_identity, index), "candidate {index} in order");
    }
    let (_, sender, kind, data) = expect::signal(client).await;
    assert_eq!((sender.as_str(), kind.as_str(), data), (from, "end_of_candidates", serde_json::Value::Null));
}

async fn send_negotiation(client: &mut Client, to: &str, identity: &str, kind: &str) {
    client.signal("call", to, kind, description(kind, identity)).await.unwrap();
    for index in 0..CANDIDATES {
        client.signal("call", to, "candidate", candidate(identity, index)).await.unwrap();
    }
    client.signal("call", to, "end_of_candidates", serde_json::Value::Null).await.unwrap();
}

async fn one_to_one_offer_answer_and_trickle_ice(cluster: &TestCluster) {
    let mut alice = cluster.connect(0, "alice", &["call"]).await;
    let mut bob = cluster.connect(1, "bob", &["call"]).await;
    assert_ne!(alice.peer_id(), bob.peer_id());
    assert!(alice.join("call", None).await.unwrap().is_empty());
    let peers = bob.join("call", Some(json!({"role": "callee"}))).await.unwrap();
    assert_eq!(peers.len(), 1);
    assert_eq!((peers[0].peer_id.as_str(), peers[0].identity.as_str()), (alice.peer_id(), "alice"));
    let joined = expect::peer_joined(&mut alice, "call").await;
    assert_eq!((joined.peer_id.as_str(), joined.identity.as_str()), (bob.peer_id(), "bob"));
    assert_eq!(joined.metadata.unwrap().to_value(), json!({"role": "callee"}));

    let (alice_id, bob_id) = (alice.peer_id().to_string(), bob.peer_id().to_string());
    // Both sides trickle at once, as browsers do: Alice's candidates are still arriving
    // at Bob while his answer and candidates travel back.
    tokio::join!(
        async {
            send_negotiation(&mut alice, &bob_id, "alice", "offer").await;
            receive_negotiation(&mut alice, &bob_id, "bob", "answer").await;
        },
        async {
            let (_, from, kind, data) = expect::signal(&mut bob).await;
            assert_eq!(
                (from.as_str(), kind.as_str(), &data),
                (alice_id.as_str(), "offer", &description("offer", "alice"))
            );
            send_negotiation(&mut bob, &alice_id, "bob", "answer").await;
            for index in 0..CANDIDATES {
                let (_, from, kind, data) = expect::signal(&mut bob).await;
                assert_eq!(
                    (from.as_str(), kind.as_str(), data),
                    (alice_id.as_str(), "candidate", candidate("alice", index))
                );
            }
            let (_, _, kind, _) = expect::signal(&mut bob).await;
            assert_eq!(kind, "end_of_candidates");
        },
    );

    // Nothing was duplicated: the next thing each side receives is a fresh marker.
    alice.signal("call", &bob_id, "app:done", json!(1)).await.unwrap();
    bob.signal("call", &alice_id, "app:done", json!(2)).await.unwrap();
    assert_eq!(expect::signal(&mut bob).await.2, "app:done");
    assert_eq!(expect::signal(&mut alice).await.2, "app:done");

    // Acknowledged sends: a signal with an id gets an `ack` with that id.
    let ack = alice
        .request(protocol::Request::Signal {
            room: "call".into(),
            to: bob_id.clone(),
            kind: "offer".into(),
            data: protocol::JsonData::from_value(&json!({"renegotiate": true})),
        })
        .await
        .unwrap();
    assert!(matches!(ack, protocol::ServerMessage::Ack { .. }), "{ack:?}");
    assert_eq!(expect::signal(&mut bob).await.3, json!({"renegotiate": true}));
}

/// Signals and broadcasts without an `id` overlap on their way to the bus
/// (`limits.publishes_in_flight`), and any other request waits for them. Alice sends a
/// burst of both, much longer than the window, and leaves at once: Bob gets all of it,
/// in the order sent, and only then her `peer_left`.
async fn a_burst_then_a_leave_arrive_in_the_order_sent(cluster: &TestCluster) {
    const BURST: usize = 100;
    let (mut alice, mut bob) = cluster.alice_and_bob_in("call").await;
    let (alice_id, bob_id) = (alice.peer_id().to_string(), bob.peer_id().to_string());
    for index in 0..BURST {
        if index % 2 == 0 {
            alice.signal("call", &bob_id, "candidate", candidate("alice", index)).await.unwrap();
        } else {
            alice.broadcast("call", json!({ "n": index })).await.unwrap();
        }
    }
    alice.leave("call").await.unwrap();
    for index in 0..BURST {
        match expect::next(&mut bob).await {
            protocol::ServerMessage::Signal { from, data, .. } if index % 2 == 0 => {
                assert_eq!((from.as_str(), data.to_value()), (alice_id.as_str(), candidate("alice", index)));
            }
            protocol::ServerMessage::Broadcast { from, data, .. } if index % 2 == 1 => {
                assert_eq!((from.as_deref(), data.to_value()), (Some(alice_id.as_str()), json!({ "n": index })));
            }
            other => panic!("message {index} of the burst: got {other:?}"),
        }
    }
    expect::peer_left(&mut bob, "call", &alice_id, LeaveReason::Left).await;
}
