//! Assertions on what a client receives. Every wait is bounded by the client's reply
//! timeout, so a missing message fails the test instead of hanging it.

use protocol::client::Client;
use protocol::{LeaveReason, PeerInfo, ServerMessage};

/// The next message, which must be a signal: `(room, from, kind, data)`.
pub async fn signal(client: &mut Client) -> (String, String, String, serde_json::Value) {
    match next(client).await {
        ServerMessage::Signal { room, from, kind, data } => (room, from, kind, data.to_value()),
        other => panic!("{}: expected a signal, got {other:?}", client.peer_id()),
    }
}

/// The next message, which must be `peer_joined`.
pub async fn peer_joined(client: &mut Client, room: &str) -> PeerInfo {
    match next(client).await {
        ServerMessage::PeerJoined { room: got, peer } if got == room => peer,
        other => panic!("{}: expected peer_joined in {room}, got {other:?}", client.peer_id()),
    }
}

/// The next message, which must be `peer_left` of `peer_id` with `reason`.
pub async fn peer_left(client: &mut Client, room: &str, peer_id: &str, reason: LeaveReason) {
    match next(client).await {
        ServerMessage::PeerLeft { room: got_room, peer_id: got_peer, reason: got_reason }
            if got_room == room && got_peer == peer_id && got_reason == reason => {}
        other => panic!("{}: expected peer_left of {peer_id} ({reason:?}) in {room}, got {other:?}", client.peer_id()),
    }
}

/// The next message, which must be a broadcast: `(room, from, data)`.
pub async fn broadcast(client: &mut Client) -> (String, Option<String>, serde_json::Value) {
    match next(client).await {
        ServerMessage::Broadcast { room, from, data } => (room, from, data.to_value()),
        other => panic!("{}: expected a broadcast, got {other:?}", client.peer_id()),
    }
}

/// The next message, which must be an error with `code`; returns its message.
pub async fn error(client: &mut Client, code: protocol::ErrorCode) -> String {
    match next(client).await {
        ServerMessage::Error { code: got, message, .. } if got == code => message,
        other => panic!("{}: expected error {code}, got {other:?}", client.peer_id()),
    }
}

pub async fn next(client: &mut Client) -> ServerMessage {
    let peer = client.peer_id().to_string();
    client.next_message().await.unwrap_or_else(|error| panic!("{peer}: {error}"))
}
