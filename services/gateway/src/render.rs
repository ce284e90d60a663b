//! Rendering of the frames the gateway pushes to clients.
//!
//! Signals and broadcasts are the hot path: they are written directly, splicing the
//! sender's `data` in as the JSON text it arrived as, instead of building a
//! `ServerMessage` (which would copy and re-validate the data). Tests check that every
//! renderer produces exactly what `ServerMessage` would parse back.

use std::fmt::Write;

use bus::envelope::PeerJoined;
use protocol::{JsonData, LeaveReason, PeerInfo, RequestId, ServerMessage};

use crate::outbound::Frame;

/// `{"type":"signal","room":…,"from":…,"kind":…,"data":…}`; `data` must be valid JSON.
pub fn signal(room: &str, from: &str, kind: &str, data: &str) -> Frame {
    const FIXED: usize = r#"{"type":"signal","room":,"from":,"kind":,"data":}"#.len();
    let mut out = String::with_capacity(FIXED + quoted_len(room) + quoted_len(from) + quoted_len(kind) + data.len());
    out.push_str(r#"{"type":"signal","room":"#);
    push_str(&mut out, room);
    out.push_str(r#","from":"#);
    push_str(&mut out, from);
    out.push_str(r#","kind":"#);
    push_str(&mut out, kind);
    out.push_str(r#","data":"#);
    out.push_str(data);
    out.push('}');
    finish(out)
}

/// `{"type":"broadcast","room":…,"from":…,"data":…}`, without `from` for server data.
pub fn broadcast(room: &str, from: Option<&str>, data: &str) -> Frame {
    const FIXED: usize = r#"{"type":"broadcast","room":,"data":}"#.len();
    let from_len = from.map_or(0, |from| r#","from":"#.len() + quoted_len(from));
    let mut out = String::with_capacity(FIXED + quoted_len(room) + from_len + data.len());
    out.push_str(r#"{"type":"broadcast","room":"#);
    push_str(&mut out, room);
    if let Some(from) = from {
        out.push_str(r#","from":"#);
        push_str(&mut out, from);
    }
    out.push_str(r#","data":"#);
    out.push_str(data);
    out.push('}');
    finish(out)
}

/// Made at exactly their length (unless a name needed escaping): a `Frame` takes over a
/// full buffer as it is, where a partly used one gets a second allocation to share it.
fn finish(out: String) -> Frame {
    debug_assert!(out.len() == out.capacity() || out.contains('\\'), "{out}");
    Frame::from(out)
}

/// The length of `text` as a JSON string when nothing in it needs escaping, as names
/// never do.
fn quoted_len(text: &str) -> usize {
    text.len() + 2
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

/// `reconnect` with its reason (`draining`, `state_lost`; docs/protocol.md). Not
/// numbered: it concerns the connection, not the session.
pub fn reconnect(reason: &str) -> Frame {
    message(&ServerMessage::Reconnect { reason: reason.to_string() })
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

/// `text` as a JSON string, escaped as serde_json does. Written into the `String`
/// directly: building bytes and checking them as UTF-8 afterwards cost more than the
/// rest of the rendering.
fn push_str(out: &mut String, text: &str) {
    out.push('"');
    let mut plain_from = 0;
    for (at, byte) in text.bytes().enumerate() {
        let escaped = match byte {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0..0x20 => "",
            _ => continue,
        };
        // Only ASCII bytes end a run, so the run is whole characters.
        out.push_str(&text[plain_from..at]);
        if escaped.is_empty() {
            let _ = write!(out, "\\u{byte:04x}");
        } else {
            out.push_str(escaped);
        }
        plain_from = at + 1;
    }
    out.push_str(&text[plain_from..]);
    out.push('"');
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

    /// Names from the bus are not checked again: whatever they hold, the frame is the
    /// JSON serde would write.
    #[test]
    fn strings_are_escaped_as_serde_escapes_them() {
        for room in ["plain", "quote\"back\\slash", "lines\n\r\t\u{8}\u{c}", "ctl\u{1}\u{1f}\u{7f}", "é🎉"] {
            let frame = signal(room, "p1", "k", "null");
            let expected = ServerMessage::Signal {
                room: room.into(),
                from: "p1".into(),
                kind: "k".into(),
                data: JsonData::from_trusted_text("null".into()).unwrap(),
            };
            assert_eq!(frame.as_str(), expected.to_json(), "{room:?}");
        }
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
