//! Per-connection rate limits: a client over its message or byte rate gets
//! `rate_limited` for what it sent too fast (with the request's id), is served again once
//! it slows down, and is closed with 1008 if it keeps on; nobody else notices.

use std::time::Duration;

use gateway::GatewayConfig;
use protocol::{CloseCode, ErrorCode, LeaveReason, ServerMessage};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

use crate::bystanders::{bystanders, bystanders_still_talk};
use crate::{TestCluster, expect};

/// 20 messages at once, then 20 a second; 30 refusals in 10 s close the socket.
fn strict_message_rate(config: &mut GatewayConfig) {
    config.limits.messages_per_second = 20;
    config.limits.message_burst = 20;
    config.limits.refusals_before_close = 30;
}

/// Bursts of 4 KiB (also the largest message), then 1 KiB a second.
fn strict_byte_rate(config: &mut GatewayConfig) {
    config.ws.max_message_bytes = 4096;
    config.limits.byte_burst = 4096;
    config.limits.bytes_per_second = 1024;
}

on_each_deployment!(strict_message_rate: a_flood_is_refused_then_served_again_then_closed);
on_each_deployment!(strict_byte_rate: bytes_are_limited_apart_from_messages);

async fn a_flood_is_refused_then_served_again_then_closed(cluster: &TestCluster) {
    let (mut alice, mut bob) = bystanders(cluster).await;
    let mut mallory = cluster.connect(1, "mallory", &["talk"]).await;
    mallory.join("talk", None).await.unwrap();
    for peer in [&mut alice, &mut bob] {
        expect::peer_joined(peer, "talk").await;
    }

    // 29 pings at once: the burst (19 tokens left after the join, a few more refilled
    // meanwhile) is answered, the rest refused, each refusal echoing its ping's id.
    for id in 0..29 {
        mallory.send_raw(Message::text(json!({"type": "ping", "id": id}).to_string())).await.unwrap();
    }
    let (mut pongs, mut refused) = (Vec::new(), Vec::new());
    for _ in 0..29 {
        match expect::next(&mut mallory).await {
            ServerMessage::Pong { id } => pongs.push(id.unwrap().as_json().to_string()),
            ServerMessage::Error { code: ErrorCode::RateLimited, id, message } => {
                assert!(message.contains("more than 20 messages a second"), "{message}");
                refused.push(id.unwrap().as_json().to_string());
            }
            other => panic!("expected a pong or rate_limited, got {other:?}"),
        }
    }
    assert!((19..=23).contains(&pongs.len()), "{} answered: the burst and what refilled meanwhile", pongs.len());
    assert_eq!(pongs.len() + refused.len(), 29);
    assert_eq!(pongs, (0..pongs.len()).map(|id| id.to_string()).collect::<Vec<_>>(), "the first ones passed");

    // Slowed down, it is served again (tokens come back at 20 a second).
    let slower = async {
        loop {
            match mallory.request(protocol::Request::Ping).await {
                Ok(_) => break,
                Err(error) if error.code() == Some(ErrorCode::RateLimited) => {
                    tokio::time::sleep(Duration::from_millis(50)).await
                }
                Err(error) => panic!("{error}"),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(3), slower).await.expect("served again within 3 s");
    bystanders_still_talk(&mut alice, &mut bob).await;

    // Keeping on: closed with 1008 once refused 30 times in the window (the earlier
    // refusals count), and its session ends: it leaves the room at once.
    let flood = json!({"type": "broadcast", "room": "talk", "data": "spam"}).to_string();
    let mut sent = 0;
    while mallory.send_raw(Message::text(flood.clone())).await.is_ok() && sent < 200 {
        sent += 1;
    }
    let (code, reason) = tokio::time::timeout(Duration::from_secs(5), mallory.closed()).await.unwrap().unwrap();
    assert_eq!((code, reason.as_str()), (CloseCode::PolicyViolation.code(), "rate limit exceeded"));

    // Its room-mates got what passed the limit, then saw it go, and still talk.
    let mallory_id = mallory.peer_id().to_string();
    for peer in [&mut alice, &mut bob] {
        let reason = loop {
            match expect::next(peer).await {
                ServerMessage::Broadcast { .. } => continue,
                ServerMessage::PeerLeft { peer_id, reason, .. } if peer_id == mallory_id => break reason,
                other => panic!("expected mallory's broadcasts then peer_left, got {other:?}"),
            }
        };
        assert_eq!(reason, LeaveReason::Disconnected, "the session ended with the socket, not kept for a resume");
    }
    bystanders_still_talk(&mut alice, &mut bob).await;
}

async fn bytes_are_limited_apart_from_messages(cluster: &TestCluster) {
    let (mut alice, mut bob) = bystanders(cluster).await;
    let big = |text: &str| json!({"type": "broadcast", "id": text, "room": "talk", "data": "x".repeat(3000)});
    alice.send_raw(Message::text(big("first").to_string())).await.unwrap();
    assert!(matches!(expect::next(&mut alice).await, ServerMessage::Ack { .. }));
    assert_eq!(expect::broadcast(&mut bob).await.2.as_str().map(str::len), Some(3000));
    alice.send_raw(Message::text(big("second").to_string())).await.unwrap();
    match expect::next(&mut alice).await {
        ServerMessage::Error { code: ErrorCode::RateLimited, id, message } => {
            assert_eq!(id.unwrap().as_json(), "\"second\"");
            assert!(message.contains("more than 1024 bytes a second"), "{message}");
        }
        other => panic!("expected rate_limited, got {other:?}"),
    }
    // Small messages still fit what is left of the burst.
    alice.ping().await.unwrap();
    bystanders_still_talk(&mut alice, &mut bob).await;
}
