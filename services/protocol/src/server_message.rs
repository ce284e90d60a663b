//! Messages the gateway sends to clients.

use serde::{Deserialize, Serialize};

use crate::{ErrorCode, JsonData, RequestId};

/// One message from the gateway. On the wire it is a JSON object whose `type` field
/// names the variant in snake_case. Replies carry the `id` of their request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    /// First message after a successful connect.
    Welcome(Welcome),
    /// First message after a successful resume: the session, its rooms, and whether
    /// messages may have been lost while the client was away. The messages it missed
    /// follow, with their original sequence numbers.
    Resumed(Resumed),
    /// The gateway asks the client to reconnect (to any gateway) and resume, then closes
    /// the socket: it is draining for a restart, or lost its cluster state.
    Reconnect {
        reason: String,
    },
    /// Reply to `join`: the room's other members at the moment of joining. Every later
    /// change arrives as `peer_joined` / `peer_left`.
    Joined {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
        room: String,
        peers: Vec<PeerInfo>,
    },
    /// The client is no longer in the room: the reply to `leave` (with its `id` and
    /// reason `left`) or a removal by the server (reason `removed`, no `id`).
    Left {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
        room: String,
        reason: LeaveReason,
    },
    PeerJoined {
        room: String,
        peer: PeerInfo,
    },
    PeerLeft {
        room: String,
        peer_id: String,
        reason: LeaveReason,
    },
    /// A signal from another peer of `room`; `from` is set by the server.
    Signal {
        room: String,
        from: String,
        kind: String,
        data: JsonData,
    },
    /// App data for the whole room; `from` is absent when the server sent it.
    Broadcast {
        room: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        from: Option<String>,
        data: JsonData,
    },
    /// Reply to a `signal` or `broadcast` that carried an `id`: accepted for delivery.
    Ack {
        id: RequestId,
    },
    Pong {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
    },
    Error {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
        code: ErrorCode,
        message: String,
    },
}

/// A server message as received: every message after `welcome`/`resumed` carries the
/// session's sequence number `seq` (1, 2, ...), which continues across resumes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sequenced {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    #[serde(flatten)]
    pub message: ServerMessage,
}

impl ServerMessage {
    /// The JSON text of the message.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("server messages always serialize")
    }

    /// The `id` of the request this message answers, if any.
    pub fn reply_to(&self) -> Option<&RequestId> {
        match self {
            Self::Joined { id, .. } | Self::Left { id, .. } | Self::Pong { id } | Self::Error { id, .. } => id.as_ref(),
            Self::Ack { id } => Some(id),
            _ => None,
        }
    }

    pub fn error(id: Option<RequestId>, code: ErrorCode, message: impl Into<String>) -> Self {
        Self::Error { id, code, message: message.into() }
    }
}

/// The first message of every session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Welcome {
    /// Server-assigned id of this peer, unique in the cluster; others address it by this.
    pub peer_id: String,
    /// The identity from the token (its subject).
    pub identity: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Protocol version, 1.
    pub protocol: u32,
    pub server: ServerInfo,
    /// STUN/TURN servers in the shape of WebRTC's `RTCIceServer`, ready to pass to
    /// `new RTCPeerConnection({iceServers})`.
    pub ice_servers: Vec<IceServer>,
    pub limits: Limits,
    /// Presented (as `?resume=`) on a new connection within `resume_window_ms` of losing
    /// this one, it resumes the session: same peer id, same rooms, missed messages
    /// delivered. Absent when the gateway does not offer resume.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resume_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resume_window_ms: Option<u64>,
}

/// The reply to a resume.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Resumed {
    /// The session as a `welcome` would describe it (a new resume token included).
    #[serde(flatten)]
    pub session: Welcome,
    /// The rooms the session is in.
    pub rooms: Vec<String>,
    /// True if messages sent to this client while it was away may have been lost (its
    /// old gateway died, or more were sent than the gateway keeps): the app should
    /// re-synchronise, e.g. restart ICE.
    pub gap: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerInfo {
    /// Version of the gateway software.
    pub version: String,
    /// The gateway node the client is connected to (for diagnostics).
    pub node: String,
}

/// One ICE server, as WebRTC's `RTCIceServer` dictionary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IceServer {
    pub urls: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

/// The limits that apply to this connection, so clients need not guess them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Limits {
    /// Largest text frame the gateway accepts, in bytes.
    pub max_message_bytes: usize,
    /// Most rooms one connection may be in at once.
    pub max_rooms: usize,
}

/// A member of a room as other members see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeerInfo {
    pub peer_id: String,
    pub identity: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<JsonData>,
}

/// Why a peer is no longer in a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeaveReason {
    /// It sent `leave`.
    Left,
    /// Its socket closed.
    Disconnected,
    /// The server removed it.
    Removed,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signal_relays_data_text_verbatim() {
        let data = JsonData::from_trusted_text(r#"{"candidate":"a=1","sdpMid":"0"}"#.into()).unwrap();
        let message = ServerMessage::Signal { room: "r".into(), from: "p1".into(), kind: "candidate".into(), data };
        assert_eq!(
            message.to_json(),
            r#"{"type":"signal","room":"r","from":"p1","kind":"candidate","data":{"candidate":"a=1","sdpMid":"0"}}"#
        );
        assert_eq!(serde_json::from_str::<ServerMessage>(&message.to_json()).unwrap(), message);
    }

    #[test]
    fn replies_echo_ids() {
        let error = ServerMessage::error(Some(RequestId::number(4)), ErrorCode::RoomFull, "room \"r\" is full");
        let json = error.to_json();
        assert_eq!(json, r#"{"type":"error","id":4,"code":"room_full","message":"room \"r\" is full"}"#);
        let back: ServerMessage = serde_json::from_str(&json).unwrap();
        assert_eq!(back.reply_to().unwrap().as_json(), "4");
    }
}
