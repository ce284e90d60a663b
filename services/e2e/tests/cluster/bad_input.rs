//! Bad input gets its documented answer and harms nobody else.

use protocol::client::Client;
use protocol::{CloseCode, ErrorCode, ServerMessage};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

use crate::bystanders::{bystanders, bystanders_still_talk};
use crate::{TestCluster, expect};

on_each_deployment!(malformed_requests_get_errors_and_the_connection_lives, oversized_frames_close_with_1009);

/// Sends `text` and returns the error it earns: (code, message, id as JSON text).
async fn error_for(client: &mut Client, text: &str) -> (ErrorCode, String, Option<String>) {
    client.send_raw(Message::text(text)).await.unwrap();
    match expect::next(client).await {
        ServerMessage::Error { code, message, id } => (code, message, id.map(|id| id.as_json().to_string())),
        other => panic!("expected an error for {text}, got {other:?}"),
    }
}

async fn malformed_requests_get_errors_and_the_connection_lives(cluster: &TestCluster) {
    let (mut alice, mut bob) = bystanders(cluster).await;
    let mut client = cluster.connect(2, "mallory", &["talk", "other"]).await;
    client.join("talk", None).await.unwrap();
    expect::peer_joined(&mut alice, "talk").await;
    expect::peer_joined(&mut bob, "talk").await;

    let cases: &[(&str, ErrorCode, &str, Option<&str>)] = &[
        ("{not json", ErrorCode::BadRequest, "malformed JSON", None),
        ("[1,2,3]", ErrorCode::BadRequest, "invalid request", None),
        (r#"{"id":5}"#, ErrorCode::BadRequest, "missing field `type`", Some("5")),
        (
            r#"{"type":"teleport","id":"t1"}"#,
            ErrorCode::BadRequest,
            "unknown message type \"teleport\"",
            Some("\"t1\""),
        ),
        (r#"{"type":"join","id":6}"#, ErrorCode::BadRequest, "missing field `room` in \"join\"", Some("6")),
        (
            r#"{"type":"signal","id":7,"room":"talk","kind":"offer"}"#,
            ErrorCode::BadRequest,
            "missing field `to`",
            Some("7"),
        ),
        (
            r#"{"type":"signal","id":8,"room":"talk","to":"x","kind":"bad kind!"}"#,
            ErrorCode::BadRequest,
            "signal kind",
            Some("8"),
        ),
        (r#"{"type":"broadcast","id":9,"room":"talk"}"#, ErrorCode::BadRequest, "missing field `data`", Some("9")),
        (r#"{"type":"join","id":10,"room":"no spaces"}"#, ErrorCode::BadRequest, "room name", Some("10")),
        (r#"{"type":"join","id":11,"room":"talk"}"#, ErrorCode::BadRequest, "already in room", Some("11")),
        (r#"{"type":"leave","id":12,"room":"elsewhere"}"#, ErrorCode::NotFound, "not in room", Some("12")),
        (r#"{"type":"auth","id":13,"token":"x"}"#, ErrorCode::BadRequest, "already authenticated", Some("13")),
        (r#"{"type":"ping","id":[1]}"#, ErrorCode::BadRequest, "`id` must be", None),
    ];
    for (text, code, fragment, id) in cases {
        let (got_code, message, got_id) = error_for(&mut client, text).await;
        assert_eq!(got_code, *code, "{text}: {message}");
        assert!(message.contains(fragment), "{text}: {message:?} should contain {fragment:?}");
        assert_eq!(got_id.as_deref(), *id, "{text}: id echoed");
    }
    let big_metadata = json!({"type": "join", "id": 14, "room": "other", "metadata": {"blob": "x".repeat(2000)}});
    let (code, message, _) = error_for(&mut client, &big_metadata.to_string()).await;
    assert_eq!(code, ErrorCode::TooLarge, "{message}");

    client.send_raw(Message::binary(vec![1, 2, 3])).await.unwrap();
    let message = expect::error(&mut client, ErrorCode::BadRequest).await;
    assert!(message.contains("binary frames are not supported"), "{message}");

    // Still connected and still in the room.
    client.ping().await.unwrap();
    let alice_id = alice.peer_id().to_string();
    client.signal("talk", &alice_id, "app:after", json!(1)).await.unwrap();
    assert_eq!(expect::signal(&mut alice).await.2, "app:after");
    bystanders_still_talk(&mut alice, &mut bob).await;
}

async fn oversized_frames_close_with_1009(cluster: &TestCluster) {
    let (mut alice, mut bob) = bystanders(cluster).await;
    let mut client = cluster.connect(1, "mallory", &["talk"]).await;
    client.join("talk", None).await.unwrap();
    let limit = client.welcome().limits.max_message_bytes;
    assert_eq!(limit, 64 * 1024, "the default limit, as documented");
    let oversized = json!({"type": "broadcast", "room": "talk", "data": "x".repeat(limit)}).to_string();
    client.send_raw(Message::text(oversized)).await.unwrap();
    let (code, _) = client.closed().await.unwrap();
    assert_eq!(code, CloseCode::TooLarge.code());
    // Its socket closed, so it left the room; nothing of the oversized message leaked.
    for peer in [&mut alice, &mut bob] {
        expect::peer_joined(peer, "talk").await;
        match expect::next(peer).await {
            ServerMessage::PeerLeft { reason, .. } => assert_eq!(reason, protocol::LeaveReason::Disconnected),
            other => panic!("expected peer_left, got {other:?}"),
        }
    }
    bystanders_still_talk(&mut alice, &mut bob).await;

    // Just under the limit is fine.
    let mut carol = cluster.connect(2, "carol", &["talk"]).await;
    carol.join("talk", None).await.unwrap();
    let fits = json!({"type": "broadcast", "room": "talk", "data": "y".repeat(limit - 100)}).to_string();
    carol.send_raw(Message::text(fits)).await.unwrap();
    for peer in [&mut alice, &mut bob] {
        expect::peer_joined(peer, "talk").await;
        let (_, _, data) = expect::broadcast(peer).await;
        assert_eq!(data.as_str().map(str::len), Some(limit - 100));
    }
    assert!(matches!(carol.ping().await, Ok(())), "the sender of a frame within the limit stays connected");
}
