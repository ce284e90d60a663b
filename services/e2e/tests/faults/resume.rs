//! Reconnect with resume: same peer id, same rooms, everything sent meanwhile delivered
//! once and in order, or a gap reported.

use std::time::Duration;

use e2e::processes::ProcessCluster;
use protocol::client::{Auth, Client, ClientError, Start};
use protocol::{ErrorCode, ServerMessage};
use serde_json::json;

use crate::{TestCluster, expect};

fn candidate(index: usize) -> serde_json::Value {
    json!({"candidate": format!("candidate:{index} 1 udp 2122260223 127.0.0.1 {} typ host", 40000 + index), "sdpMid": "0"})
}

/// Alice (gateway 0) loses her TCP connection in the middle of Bob's offer and trickle;
/// Bob (gateway 1) keeps trickling; Alice resumes on gateway 2. She gets everything she
/// had not read, once, in order, then answers, as the same peer; Bob sees no leave.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_connection_resumes_on_a_third_gateway_without_loss_or_duplicates() {
    let cluster = TestCluster::redis(3).await;
    let (mut alice, mut bob) = cluster.alice_and_bob_in("call").await;
    let (alice_id, bob_id) = (alice.peer_id().to_string(), bob.peer_id().to_string());

    bob.signal("call", &alice_id, "offer", json!({"type": "offer", "sdp": "v=0"})).await.unwrap();
    for index in 0..5 {
        bob.signal("call", &alice_id, "candidate", candidate(index)).await.unwrap();
    }
    assert_eq!(expect::signal(&mut alice).await.2, "offer");
    assert_eq!(expect::signal(&mut alice).await.3, candidate(0));
    assert_eq!(expect::signal(&mut alice).await.3, candidate(1));
    let (token, last_seq) = (alice.resume_token().unwrap().to_string(), alice.last_seq());
    alice.abandon(); // the TCP connection goes, without a close frame

    for index in 5..20 {
        bob.signal("call", &alice_id, "candidate", candidate(index)).await.unwrap();
    }
    bob.signal("call", &alice_id, "end_of_candidates", serde_json::Value::Null).await.unwrap();

    let (mut alice, start) = Client::resume(&cluster.ws_url(2), &token, last_seq, Auth::Anonymous).await.unwrap();
    assert_eq!(start, Start::Resumed { gap: false, rooms: vec!["call".into()] });
    assert_eq!(alice.peer_id(), alice_id, "the same peer");
    assert_ne!(alice.welcome().server.node, "gw-0", "on another gateway");
    for index in 2..20 {
        let (room, from, kind, data) = expect::signal(&mut alice).await;
        assert_eq!((room.as_str(), from.as_str(), kind.as_str()), ("call", bob_id.as_str(), "candidate"));
        assert_eq!(data, candidate(index), "candidate {index}, once, in order");
    }
    assert_eq!(expect::signal(&mut alice).await.2, "end_of_candidates");
    assert!(alice.sequence_errors().is_empty(), "{:?}", alice.sequence_errors());

    // The call goes on, both ways, as if nothing happened: Bob saw no leave or join.
    alice.signal("call", &bob_id, "answer", json!({"type": "answer", "sdp": "v=0"})).await.unwrap();
    let (_, from, kind, _) = expect::signal(&mut bob).await;
    assert_eq!((from.as_str(), kind.as_str()), (alice_id.as_str(), "answer"));
    bob.signal("call", &alice_id, "app:after", json!(1)).await.unwrap();
    assert_eq!(expect::signal(&mut alice).await.2, "app:after", "nothing more was queued before it");
    cluster.shutdown().await;
}

/// A resume on the same gateway, and a resume token that is no longer good.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_on_the_same_gateway_and_after_the_window() {
    let cluster = TestCluster::embedded_with(|config| config.session.resume_window = Duration::from_millis(500)).await;
    let mut alice = cluster.connect(0, "alice", &["r"]).await;
    let mut bob = cluster.connect(0, "bob", &["r"]).await;
    alice.join("r", None).await.unwrap();
    bob.join("r", None).await.unwrap();
    expect::peer_joined(&mut alice, "r").await;
    let alice_id = alice.peer_id().to_string();
    let (token, last_seq) = (alice.resume_token().unwrap().to_string(), alice.last_seq());
    alice.abandon();
    bob.signal("r", &alice_id, "app:while-away", json!(1)).await.unwrap();
    let (mut alice, start) = Client::resume(&cluster.ws_url(0), &token, last_seq, Auth::Anonymous).await.unwrap();
    assert_eq!(start, Start::Resumed { gap: false, rooms: vec!["r".into()] });
    assert_eq!(expect::signal(&mut alice).await.2, "app:while-away");

    // The old token was replaced; a tampered or reused one is refused.
    let refused = Client::resume(&cluster.ws_url(0), &token, 0, Auth::Anonymous).await.err().unwrap();
    assert!(matches!(refused, ClientError::Server { code: ErrorCode::NotFound, .. }), "{refused}");

    // Lost again, and not back within the window: the session ends, Bob sees Alice go.
    let token = alice.resume_token().unwrap().to_string();
    alice.abandon();
    expect::peer_left(&mut bob, "r", &alice_id, protocol::LeaveReason::Disconnected).await;
    let refused = Client::resume(&cluster.ws_url(0), &token, 0, Auth::Anonymous).await.err().unwrap();
    assert!(matches!(refused, ClientError::Server { code: ErrorCode::NotFound, .. }), "{refused}");
    // With a token as well, a failed resume starts a new session instead.
    let fallback = Auth::Query(cluster.token("alice", &["r"]));
    let (fresh, start) = Client::resume(&cluster.ws_url(0), &token, 0, fallback).await.unwrap();
    assert_eq!(start, Start::Fresh);
    assert_ne!(fresh.peer_id(), alice_id);
    cluster.shutdown().await;
}

/// Alice's gateway is killed with SIGKILL: whatever it held for her is gone, so her
/// resume on another gateway says `gap: true`; from then on nothing is lost. The resume
/// does not wait for a handover from the dead gateway: its lease still runs, but its
/// node channel is heard by nobody (the handover timeout is 30 s here; the resume is
/// given 10).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_after_the_gateway_was_killed_reports_a_gap() {
    let mut cluster = ProcessCluster::start(3, &[("GATEWAY_SESSION__HANDOVER_TIMEOUT", "30s")], "500ms").await;
    let mut alice = cluster.connect(0, "alice", &["call"]).await;
    let mut bob = cluster.connect(1, "bob", &["call"]).await;
    alice.join("call", None).await.unwrap();
    bob.join("call", None).await.unwrap();
    expect::peer_joined(&mut alice, "call").await;
    let alice_id = alice.peer_id().to_string();
    bob.signal("call", &alice_id, "offer", json!({"sdp": "o"})).await.unwrap();
    assert_eq!(expect::signal(&mut alice).await.2, "offer");
    let (token, last_seq) = (alice.resume_token().unwrap().to_string(), alice.last_seq());

    cluster.take_gateway(0).kill().await;
    let (code, _) = alice.closed().await.unwrap();
    assert_eq!(code, 1006, "the connection broke without a close frame");

    let url = cluster.ws_url(2);
    let resuming = Client::resume(&url, &token, last_seq, Auth::Anonymous);
    let resumed = tokio::time::timeout(Duration::from_secs(10), resuming).await;
    let (mut alice, start) = resumed.expect("resumed without waiting for the dead gateway").unwrap();
    assert_eq!(start, Start::Resumed { gap: true, rooms: vec!["call".into()] }, "the client is told");
    assert_eq!(alice.peer_id(), alice_id);
    bob.signal("call", &alice_id, "offer", json!({"sdp": "restart"})).await.unwrap();
    let (_, _, kind, data) = expect::signal(&mut alice).await;
    assert_eq!((kind.as_str(), data), ("offer", json!({"sdp": "restart"})));
    // Bob saw no leave: the next thing he gets is Alice's answer.
    alice.signal("call", bob.peer_id(), "answer", json!({})).await.unwrap();
    assert!(matches!(expect::next(&mut bob).await, ServerMessage::Signal { kind, .. } if kind == "answer"));
}
