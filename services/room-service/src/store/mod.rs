//! The room store: where membership lives, behind one trait with two implementations.
//!
//! - [`memory::MemoryRoomStore`]: a map in this process, publishing on the in-memory
//!   bus. The embedded default; single node only.
//! - [`redis::RedisRoomStore`]: Redis hashes changed by Lua scripts, publishing on the
//!   room's Redis channel. Any number of room-service replicas can share it.
//!
//! # Contract
//! - `join` and `leave` are atomic: the capacity check, the change and the publication
//!   of the presence event happen as one step. Two joins racing for the last seat admit
//!   exactly one. The event is published on the room's channel in the order of the
//!   changes, so a node that subscribed before calling `join` sees, after its own
//!   `peer_joined`, exactly the changes that the returned member list does not include.
//! - Both are idempotent: joining again with the same peer id returns the current
//!   members without publishing anything; leaving a room one is not in returns `false`
//!   and publishes nothing.
//! - A room exists from its first join until its last member leaves; its capacity is
//!   fixed when it is created.
//! - Every member has an owner, the gateway node holding its session (`member.node_id`
//!   at join). A leave can be made conditional on the owner, and `move_member` changes
//!   the owner and publishes a `session_moved` marker in one atomic step, so that a
//!   clean-up and a resume racing over the same member cannot both win.

pub mod memory;
pub mod redis;

use async_trait::async_trait;
use bytes::Bytes;
use cluster_proto::room::{Member, Room};

use crate::error::Result;

/// What a successful join returns.
#[derive(Debug, Clone, PartialEq)]
pub struct JoinOutcome {
    pub room: Room,
    /// Every member after the join, the joiner included, in no particular order.
    pub members: Vec<Member>,
}

/// A page of rooms.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RoomPage {
    pub rooms: Vec<Room>,
    /// Where the next page starts; `None` when this was the last one.
    pub next_page_token: Option<String>,
}

#[async_trait]
pub trait RoomStore: Send + Sync + 'static {
    /// Adds `member` unless the room is full, creating the room with `capacity` if it
    /// does not exist, and publishes `joined_event` on the room's channel.
    async fn join(&self, room: &str, member: &Member, capacity: u32, joined_event: Bytes) -> Result<JoinOutcome>;

    /// Removes the member if present (and, with `owner`, held by that node), publishing
    /// `left_event`; deletes the room when it becomes empty. Returns whether it removed.
    async fn leave(&self, room: &str, peer_id: &str, owner: Option<&str>, left_event: Bytes) -> Result<bool>;

    /// Makes `to` the owner of a member that `from` holds, publishing `moved_event`.
    /// Returns whether it moved. A member `to` already holds counts as moved (nothing is
    /// published): the call can be retried after an unanswered attempt.
    async fn move_member(&self, room: &str, peer_id: &str, from: &str, to: &str, moved_event: Bytes) -> Result<bool>;

    /// The members of a room, `node_id` set to the current owner; empty if there is no
    /// room.
    async fn members(&self, room: &str) -> Result<Vec<Member>>;

    /// A room, if it exists.
    async fn room(&self, room: &str) -> Result<Option<Room>>;

    /// Rooms in an order stable enough to page through with `page_token`. A page holds
    /// about `limit` rooms (Redis SCAN may return somewhat more or fewer).
    async fn list_rooms(&self, limit: u32, page_token: Option<&str>) -> Result<RoomPage>;

    /// Publishes `event` on the room's channel if the room exists; returns whether it
    /// did.
    async fn publish_if_exists(&self, room: &str, event: Bytes) -> Result<bool>;

    /// Whether the store is reachable (for health checks).
    async fn check(&self) -> Result<()>;
}
