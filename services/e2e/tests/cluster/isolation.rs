//! Isolation: peers reach only peers they share a room with, `from` cannot be forged,
//! and tokens are held to their rooms and expiry.

use std::time::Duration;

use gateway::auth::{Claims, mint};
use protocol::client::{Auth, Client, ClientError};
use protocol::{CloseCode, ErrorCode};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

use crate::{TestCluster, expect};

on_each_deployment!(signals_stay_inside_shared_rooms, from_is_set_by_the_server, tokens_are_enforced);

async fn signals_stay_inside_shared_rooms(cluster: &TestCluster) {
    let mut alice = cluster.connect(0, "alice", &["a"]).await;
    let mut bob = cluster.connect(1, "bob", &["a"]).await;
    let mut eve = cluster.connect(2, "eve", &["b"]).await;
    alice.join("a", None).await.unwrap();
    bob.join("a", None).await.unwrap();
    expect::peer_joined(&mut alice, "a").await;
    eve.join("b", None).await.unwrap();

    // Eve knows Bob's id but shares no room with him.
    let message = eve.request(signal("b", bob.peer_id())).await.unwrap_err();
    assert_eq!(message.code(), Some(ErrorCode::NotFound), "{message}");
    let message = eve.request(signal("a", bob.peer_id())).await.unwrap_err();
    assert_eq!(message.code(), Some(ErrorCode::Forbidden), "{message}");
    let message = eve.request(signal("b", "0000000000000000dead")).await.unwrap_err();
    assert_eq!(message.code(), Some(ErrorCode::NotFound), "{message}");
    let message = alice.request(signal("a", alice.peer_id())).await.unwrap_err();
    assert_eq!(message.code(), Some(ErrorCode::BadRequest), "a peer cannot signal itself: {message}");

    // Nothing of Eve's reached Bob: the next thing he gets is Alice's marker.
    let bob_id = bob.peer_id().to_string();
    alice.signal("a", &bob_id, "app:marker", json!(1)).await.unwrap();
    let (_, from, kind, _) = expect::signal(&mut bob).await;
    assert_eq!((from.as_str(), kind.as_str()), (alice.peer_id(), "app:marker"));
}

fn signal(room: &str, to: &str) -> protocol::Request {
    protocol::Request::Signal {
        room: room.into(),
        to: to.into(),
        kind: "offer".into(),
        data: protocol::JsonData::from_value(&json!({})),
    }
}

async fn from_is_set_by_the_server(cluster: &TestCluster) {
    let mut alice = cluster.connect(0, "alice", &["r"]).await;
    let mut bob = cluster.connect(1, "bob", &["r"]).await;
    let mut carol = cluster.connect(2, "carol", &["r"]).await;
    alice.join("r", None).await.unwrap();
    bob.join("r", None).await.unwrap();
    carol.join("r", None).await.unwrap();
    let forged = json!({
        "type": "signal", "room": "r", "to": bob.peer_id(), "kind": "offer",
        "from": carol.peer_id(), "data": {"sdp": "x"}
    });
    alice.send_raw(Message::text(forged.to_string())).await.unwrap();
    let forged_broadcast = json!({"type": "broadcast", "room": "r", "from": carol.peer_id(), "data": "hi"});
    alice.send_raw(Message::text(forged_broadcast.to_string())).await.unwrap();
    expect::peer_joined(&mut bob, "r").await; // carol
    let (_, from, _, _) = expect::signal(&mut bob).await;
    assert_eq!(from, alice.peer_id(), "the server sets `from`, whatever the sender wrote");
    let (_, from, data) = expect::broadcast(&mut bob).await;
    assert_eq!((from.as_deref(), data), (Some(alice.peer_id()), json!("hi")));
    let (_, from, _) = expect::broadcast(&mut carol).await;
    assert_eq!(from.as_deref(), Some(alice.peer_id()));
}

async fn tokens_are_enforced(cluster: &TestCluster) {
    let url = cluster.ws_url(1);
    let mut alice = cluster.connect(1, "alice", &["a"]).await;
    let error = alice.join("b", None).await.unwrap_err();
    assert_eq!(error.code(), Some(ErrorCode::Forbidden), "{error}");
    assert!(error.to_string().contains("does not grant room \"b\""), "{error}");

    let expired =
        mint(e2e::SECRET, &Claims { exp: now() - 120, ..Claims::new("late", vec!["a".into()], Duration::ZERO) });
    let wrong_key = mint("not-the-secret", &Claims::new("mallory", vec!["a".into()], Duration::from_secs(60)));
    for (token, expected) in [(expired, "expired"), (wrong_key, "signature"), ("garbage".to_string(), "malformed")] {
        assert_refused(Client::connect_with(&url, Auth::Query(token.clone())).await, expected);
        assert_refused(Client::connect_with(&url, Auth::Message(token)).await, expected);
    }
    // No token at all, with a secret configured: refused.
    assert_refused(Client::connect_with(&url, Auth::Anonymous).await, "auth");

    // The token may also come in a first `auth` message.
    let token = cluster.token("dave", &["a"]);
    let mut dave = Client::connect_with(&url, Auth::Message(token)).await.unwrap();
    assert_eq!(dave.welcome().identity, "dave");
    dave.join("a", None).await.unwrap();
}

fn assert_refused(outcome: Result<Client, ClientError>, reason: &str) {
    match outcome {
        Err(ClientError::Server { code: ErrorCode::Unauthorized, message }) => {
            assert!(message.contains(reason), "{message:?} should mention {reason:?}")
        }
        Err(ClientError::Closed { code, .. }) => assert_eq!(code, CloseCode::Unauthorized.code()),
        Err(other) => panic!("expected unauthorized, got {other}"),
        Ok(_) => panic!("a bad token was accepted"),
    }
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}
