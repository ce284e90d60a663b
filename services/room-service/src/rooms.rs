//! The room service's logic: validation, policy and presence events over a room store.
//! The gRPC service and the gateway's in-process mode both call this.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use bus::envelope::{self, Body, Broadcast, PeerJoined, PeerLeft, SessionMoved};
use cluster_proto::room::{LeaveReason, Member, Room};
use protocol::names::{validate_peer_id, validate_room_name};
use serde::{Deserialize, Serialize};

use crate::error::{Result, RoomError};
use crate::store::{JoinOutcome, RoomPage, RoomStore};

/// Room policy settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RoomsConfig {
    /// Most members a room may have; fixed for a room when it is created.
    pub default_capacity: u32,
    /// Largest `metadata` a member may carry, in bytes of JSON.
    pub max_metadata_bytes: usize,
    /// Largest `data` of SendData, in bytes of JSON.
    pub max_data_bytes: usize,
}

impl Default for RoomsConfig {
    fn default() -> Self {
        Self { default_capacity: 16, max_metadata_bytes: 1024, max_data_bytes: 64 * 1024 }
    }
}

/// Most rooms one ListRooms page returns.
pub const MAX_LIST_LIMIT: u32 = 1000;

pub struct Rooms {
    store: Arc<dyn RoomStore>,
    /// Stamped as the origin of the events this service publishes.
    node_id: String,
    config: RoomsConfig,
}

impl Rooms {
    pub fn new(store: Arc<dyn RoomStore>, node_id: impl Into<String>, config: RoomsConfig) -> Self {
        Self { store, node_id: node_id.into(), config }
    }

    pub fn config(&self) -> &RoomsConfig {
        &self.config
    }

    /// Adds a member to a room (see `RoomStore::join`). Stamps `joined_at_ms`.
    pub async fn join(&self, room: &str, mut member: Member) -> Result<JoinOutcome> {
        validate_room(room)?;
        validate_peer(&member.peer_id)?;
        if member.identity.is_empty() {
            return Err(RoomError::InvalidArgument("member.identity must not be empty".into()));
        }
        self.validate_json("member.metadata_json", &member.metadata_json, self.config.max_metadata_bytes)?;
        member.joined_at_ms = now_ms();
        let event = envelope::encode(&envelope::new(
            room,
            &self.node_id,
            Body::PeerJoined(PeerJoined {
                peer_id: member.peer_id.clone(),
                identity: member.identity.clone(),
                name: member.name.clone(),
                metadata_json: member.metadata_json.clone(),
                node_id: member.node_id.clone(),
            }),
        ));
        self.store.join(room, &member, self.config.default_capacity, event).await
    }

    /// Removes a member; `Ok(false)` if it was not in the room.
    pub async fn leave(&self, room: &str, peer_id: &str, reason: LeaveReason) -> Result<bool> {
        self.leave_if_owner(room, peer_id, None, reason).await
    }

    /// Removes a member only if `owner` (when given) is the gateway node holding it, so
    /// that a gateway (or a clean-up) never removes a member that has moved elsewhere.
    pub async fn leave_if_owner(
        &self,
        room: &str,
        peer_id: &str,
        owner: Option<&str>,
        reason: LeaveReason,
    ) -> Result<bool> {
        validate_room(room)?;
        validate_peer(peer_id)?;
        let reason = if reason == LeaveReason::Unspecified { LeaveReason::Left } else { reason };
        let event = envelope::encode(&envelope::new(
            room,
            &self.node_id,
            Body::PeerLeft(PeerLeft { peer_id: peer_id.to_string(), reason: reason as i32 }),
        ));
        self.store.leave(room, peer_id, owner.filter(|owner| !owner.is_empty()), event).await
    }

    /// Hands a member from gateway node `from` to `to` (a resumed session), publishing
    /// the `session_moved` marker on the room's channel. False if `from` no longer holds
    /// it (it left, was removed, or moved already).
    pub async fn move_member(&self, room: &str, peer_id: &str, from: &str, to: &str) -> Result<bool> {
        validate_room(room)?;
        validate_peer(peer_id)?;
        let event = envelope::encode(&envelope::new(
            room,
            &self.node_id,
            Body::SessionMoved(SessionMoved {
                peer_id: peer_id.to_string(),
                from_node: from.to_string(),
                to_node: to.to_string(),
            }),
        ));
        self.store.move_member(room, peer_id, from, to, event).await
    }

    /// Members of an existing room, in order of joining.
    pub async fn members(&self, room: &str) -> Result<Vec<Member>> {
        validate_room(room)?;
        let mut members = self.store.members(room).await?;
        if members.is_empty() {
            return Err(no_room(room));
        }
        members.sort_by(|a, b| (a.joined_at_ms, &a.peer_id).cmp(&(b.joined_at_ms, &b.peer_id)));
        Ok(members)
    }

    pub async fn room(&self, room: &str) -> Result<Room> {
        validate_room(room)?;
        self.store.room(room).await?.ok_or_else(|| no_room(room))
    }

    pub async fn list_rooms(&self, limit: u32, page_token: Option<&str>) -> Result<RoomPage> {
        let limit = if limit == 0 { 100 } else { limit.min(MAX_LIST_LIMIT) };
        self.store.list_rooms(limit, page_token.filter(|token| !token.is_empty())).await
    }

    /// Server-side kick: the peer's gateway tells it, the others see it leave.
    pub async fn remove_peer(&self, room: &str, peer_id: &str) -> Result<()> {
        if self.leave(room, peer_id, LeaveReason::Removed).await? {
            Ok(())
        } else {
            Err(RoomError::NotFound(format!("peer {peer_id:?} is not in room {room:?}")))
        }
    }

    /// Sends `data_json` to every member of a room, as a broadcast without a sender.
    pub async fn send_data(&self, room: &str, data_json: &str) -> Result<()> {
        validate_room(room)?;
        self.validate_json("data_json", data_json, self.config.max_data_bytes)?;
        if data_json.is_empty() {
            return Err(RoomError::InvalidArgument("data_json must not be empty".into()));
        }
        let event = envelope::encode(&envelope::new(
            room,
            &self.node_id,
            Body::Broadcast(Broadcast { from_peer: String::new(), data_json: data_json.to_string(), loopback: false }),
        ));
        if self.store.publish_if_exists(room, event).await? { Ok(()) } else { Err(no_room(room)) }
    }

    pub async fn check(&self) -> Result<()> {
        self.store.check().await
    }

    /// Empty is allowed (no value); anything else must be JSON within `max` bytes.
    fn validate_json(&self, field: &str, json: &str, max: usize) -> Result<()> {
        if json.len() > max {
            return Err(RoomError::InvalidArgument(format!("{field} is larger than {max} bytes")));
        }
        if !json.is_empty() && serde_json::from_str::<serde::de::IgnoredAny>(json).is_err() {
            return Err(RoomError::InvalidArgument(format!("{field} is not valid JSON")));
        }
        Ok(())
    }
}

fn validate_room(room: &str) -> Result<()> {
    validate_room_name(room).map_err(RoomError::InvalidArgument)
}

fn validate_peer(peer_id: &str) -> Result<()> {
    validate_peer_id(peer_id).map_err(RoomError::InvalidArgument)
}

fn no_room(room: &str) -> RoomError {
    RoomError::NotFound(format!("no room {room:?}"))
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}
