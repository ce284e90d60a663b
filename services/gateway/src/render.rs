//! Rendering of the frames the gateway pushes to clients.
//!
//! Signals and broadcasts are the hot path: they are written directly, splicing the
//! sender's `data` in as the JSON text it arrived as, instead of building a
//! `ServerMessage` (which would copy and re-validate the data). Tests check that every
//! renderer produces exactly what `ServerMessage` would parse back.

use bus::envelope::PeerJoined;
use protocol::{JsonData, LeaveReason, PeerInfo, RequestId, ServerMessage};

use crate::outbound::Frame;

/// `{"type":"signal","room":…,"from":…,"kind":…,"data":…}`; `data` must be valid JSON.
pub fn signal(room: &str, from: &str, kind: &str, data: &str) -> Frame {
    let mut out = Vec::with_capacity(60 + room.len() + from.len() + kind.len() + data.len());
    out.extend_from_slice(br#"{"type":"signal","room":"#);
    push_str(&mut out, room);
    out.extend_from_slice(br#","from":"#);
    push_str(&mut out, from);
    out.extend_from_slice(br#","kind":"#);
    push_str(&mut out, kind);
    out.extend_from_slice(br#","data":"#);
    out.extend_from_slice(data.as_bytes());
    out.push(b'}');
    finish(out)
}

/// `{"type":"broadcast","room":…,"from":…,"data":…}`, without `from` for server data.
pub fn broadcast(room: &str, from: Option<&str>, data: &str) -> Frame {
    let mut out = Vec::with_capacity(60 + room.len() + from.map_or(0, str::len) + data.len());
    out.extend_from_slice(br#"{"type":"broadcast","room":"#);
    push_str(&mut out, room);
    if let Some(from) = from {
        out.extend_from_slice(br#","from":"#);
        push_str(&mut out, from);
    }
    out.extend_from_slice(br#","data":"#);
    out.extend_from_slice(data.as_bytes());
    out.push(b'}');
    finish(out)
}

pub fn peer_joined(room: &str, peer: &PeerJoined) -> Frame {
    let peer = PeerInfo {
        peer_id: peer.peer_id.clone(),
        identity: peer.identity.clone(),
        name: non_empty(&peer.name),
        metadata: json_or_none(&peer.metadata_json),
    };
    message(&ServerMessage::PeerJoined { room: room.to_string(), peer })
}

pub fn peer_left(room: &str, peer_id: &str, reason: LeaveReason) -> Frame {
    message(&ServerMessage::PeerLeft { room: room.to_string(), peer_id: peer_id.to_string(), reason })
}

pub fn left(id: Option<RequestId>, room: &str, reason: LeaveReason) -> Frame {
    message(&left_message(id, room, reason))
}

pub fn left_message(id: Option<RequestId>, room: &str, reason: LeaveReason) -> ServerMessage {
    ServerMessage::Left { id, room: room.to_string(), reason }
}

pub fn message(message: &ServerMessage) -> Frame {
    Frame::from(message.to_json())
}

/// A member as other members see it.
pub fn peer_info(member: &cluster_proto::room::Member) -> PeerInfo {
    PeerInfo {
        peer_id: member.peer_id.clone(),
        identity: member.identity.clone(),
        name: non_empty(&member.name),
        metadata: json_or_none(&member.metadata_json),
    }
}

/// The protocol's leave reason for the room service's.
pub fn leave_reason(reason: i32) -> LeaveReason {
    use cluster_proto::room::LeaveReason as Rpc;
    match Rpc::try_from(reason) {
        Ok(Rpc::Disconnected) => LeaveReason::Disconnected,
        Ok(Rpc::Removed) => LeaveReason::Removed,
        _ => LeaveReason::Left,
    }
}

fn non_empty(text: &str) -> Option<String> {
    (!text.is_empty()).then(|| text.to_string())
}

/// Metadata from the room store; it was validated as JSON when the member joined.
fn json_or_none(json: &str) -> Option<JsonData> {
    if json.is_empty() {
        return None;
    }
    JsonData::from_trusted_text(json.to_string()).ok()
}

fn push_str(out: &mut Vec<u8>, text: &str) {
    serde_json::to_writer(out, text).expect("writing a string into a Vec cannot fail");
}

fn finish(out: Vec<u8>) -> Frame {
    Frame::from(String::from_utf8(out).expect("rendered from UTF-8 parts"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(frame: &Frame) -> ServerMessage {
        serde_json::from_str(frame.as_str()).unwrap_or_else(|e| panic!("{e}: {}", frame.as_str()))
    }

    #[test]
    fn signal_matches_the_protocol_type() {
        let data = r#"{"sdp":"v=0\r\no=- 1 2 IN IP4 127.0.0.1","type":"offer"}"#;
        let frame = signal("room-1", "p1", "offer", data);
        let expected = ServerMessage::Signal {
            room: "room-1".into(),
            from: "p1".into(),
            kind: "offer".into(),
            data: JsonData::from_trusted_text(data.into()).unwrap(),
        };
        assert_eq!(parse(&frame), expected);
        assert_eq!(frame.as_str(), expected.to_json(), "byte for byte what serde would write");
    }

    #[test]
    fn broadcast_with_and_without_sender() {
        let from_peer = broadcast("r", Some("p1"), "[1,2]");
        let expected = ServerMessage::Broadcast {
            room: "r".into(),
            from: Some("p1".into()),
            data: JsonData::from_trusted_text("[1,2]".into()).unwrap(),
        };
        assert_eq!(from_peer.as_str(), expected.to_json());
        let from_server = broadcast("r", None, "\"hi\"");
        assert!(matches!(parse(&from_server), ServerMessage::Broadcast { from: None, .. }));
    }

    #[test]
    fn presence_frames() {
        let joined = PeerJoined {
            peer_id: "p2".into(),
            identity: "bob".into(),
            name: String::new(),
            metadata_json: r#"{"m":1}"#.into(),
            node_id: "gw".into(),
        };
        let ServerMessage::PeerJoined { room, peer } = parse(&peer_joined("r", &joined)) else { panic!() };
        assert_eq!((room.as_str(), peer.peer_id.as_str(), peer.name), ("r", "p2", None));
        assert_eq!(peer.metadata.unwrap().to_value(), serde_json::json!({"m": 1}));
        assert_eq!(leave_reason(cluster_proto::room::LeaveReason::Removed as i32), LeaveReason::Removed);
        assert_eq!(leave_reason(99), LeaveReason::Left);
    }
}
