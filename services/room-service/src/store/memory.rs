//! The in-memory room store of the embedded mode. Single node: state lives in this
//! process and presence events go to the in-memory bus.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::sync::Mutex;

use async_trait::async_trait;
use bus::{MemoryHub, Topic};
use bytes::Bytes;
use cluster_proto::room::{Member, Room};

use super::{JoinOutcome, RoomPage, RoomStore};
use crate::error::Result;

pub struct MemoryRoomStore {
    hub: MemoryHub,
    /// Ordered by name so that listing can page by the last name seen.
    rooms: Mutex<BTreeMap<String, RoomState>>,
}

struct RoomState {
    capacity: u32,
    created_at_ms: i64,
    members: HashMap<String, Member>,
}

impl RoomState {
    fn info(&self, name: &str) -> Room {
        Room {
            name: name.to_string(),
            member_count: self.members.len() as u32,
            capacity: self.capacity,
            created_at_ms: self.created_at_ms,
        }
    }
}

impl MemoryRoomStore {
    /// A store publishing its presence events on `hub`.
    pub fn new(hub: MemoryHub) -> Self {
        Self { hub, rooms: Mutex::new(BTreeMap::new()) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, RoomState>> {
        self.rooms.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[async_trait]
impl RoomStore for MemoryRoomStore {
    async fn join(&self, room: &str, member: &Member, capacity: u32, joined_event: Bytes) -> Result<JoinOutcome> {
        let mut rooms = self.lock();
        let state = rooms.entry(room.to_string()).or_insert_with(|| RoomState {
            capacity,
            created_at_ms: member.joined_at_ms,
            members: HashMap::new(),
        });
        if !state.members.contains_key(&member.peer_id) {
            if state.members.len() >= state.capacity as usize {
                let capacity = state.capacity;
                if state.members.is_empty() {
                    rooms.remove(room);
                }
                return Err(crate::RoomError::room_full(room, capacity));
            }
            state.members.insert(member.peer_id.clone(), member.clone());
            // Published under the lock: events leave in the order of the changes.
            self.hub.publish_now(Topic::Room(room), joined_event);
        }
        Ok(JoinOutcome { room: state.info(room), members: state.members.values().cloned().collect() })
    }

    async fn leave(&self, room: &str, peer_id: &str, owner: Option<&str>, left_event: Bytes) -> Result<bool> {
        let mut rooms = self.lock();
        let Some(state) = rooms.get_mut(room) else { return Ok(false) };
        match state.members.get(peer_id) {
            Some(member) if owner.is_none_or(|owner| owner == member.node_id) => {}
            _ => return Ok(false),
        }
        state.members.remove(peer_id);
        self.hub.publish_now(Topic::Room(room), left_event);
        if state.members.is_empty() {
            rooms.remove(room);
        }
        Ok(true)
    }

    async fn move_member(&self, room: &str, peer_id: &str, from: &str, to: &str, moved_event: Bytes) -> Result<bool> {
        let mut rooms = self.lock();
        let Some(member) = rooms.get_mut(room).and_then(|state| state.members.get_mut(peer_id)) else {
            return Ok(false);
        };
        if member.node_id == to {
            return Ok(true);
        }
        if member.node_id != from {
            return Ok(false);
        }
        member.node_id = to.to_string();
        self.hub.publish_now(Topic::Room(room), moved_event);
        Ok(true)
    }

    async fn members(&self, room: &str) -> Result<Vec<Member>> {
        Ok(self.lock().get(room).map(|state| state.members.values().cloned().collect()).unwrap_or_default())
    }

    async fn room(&self, room: &str) -> Result<Option<Room>> {
        Ok(self.lock().get(room).map(|state| state.info(room)))
    }

    async fn list_rooms(&self, limit: u32, page_token: Option<&str>) -> Result<RoomPage> {
        let rooms = self.lock();
        let start = page_token.map_or(Bound::Unbounded, |after| Bound::Excluded(after.to_string()));
        let mut page: Vec<Room> = rooms
            .range((start, Bound::Unbounded))
            .take(limit as usize + 1)
            .map(|(name, state)| state.info(name))
            .collect();
        let next_page_token = if page.len() > limit as usize {
            page.truncate(limit as usize);
            page.last().map(|room| room.name.clone())
        } else {
            None
        };
        Ok(RoomPage { rooms: page, next_page_token })
    }

    async fn publish_if_exists(&self, room: &str, event: Bytes) -> Result<bool> {
        let rooms = self.lock();
        if !rooms.contains_key(room) {
            return Ok(false);
        }
        self.hub.publish_now(Topic::Room(room), event);
        Ok(true)
    }

    async fn check(&self) -> Result<()> {
        Ok(())
    }
}
