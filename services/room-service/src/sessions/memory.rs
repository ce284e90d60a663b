//! Sessions and leases in this process (embedded mode: one node, nothing to clean up
//! after but the sessions of clients that never came back).

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use tokio::time::Instant;

use super::{SessionRecord, SessionStore};
use crate::error::Result;

#[derive(Default)]
pub struct MemorySessionStore {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    sessions: HashMap<String, (SessionRecord, BTreeSet<String>)>,
    leases: HashMap<String, Instant>,
    node_peers: HashMap<String, BTreeSet<String>>,
}

impl MemorySessionStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Applies `change` to the session if `node` holds it.
    fn if_held_by(&self, peer_id: &str, node: &str, change: impl FnOnce(&mut SessionRecord)) -> bool {
        match self.lock().sessions.get_mut(peer_id) {
            Some((record, _)) if record.node == node => {
                change(record);
                true
            }
            _ => false,
        }
    }
}

#[async_trait]
impl SessionStore for MemorySessionStore {
    async fn create(&self, record: &SessionRecord) -> Result<()> {
        let mut state = self.lock();
        state.node_peers.entry(record.node.clone()).or_default().insert(record.peer_id.clone());
        state.sessions.insert(record.peer_id.clone(), (record.clone(), BTreeSet::new()));
        Ok(())
    }

    async fn load(&self, peer_id: &str) -> Result<Option<(SessionRecord, Vec<String>)>> {
        Ok(self.lock().sessions.get(peer_id).map(|(record, rooms)| (record.clone(), rooms.iter().cloned().collect())))
    }

    async fn add_room(&self, peer_id: &str, node: &str, room: &str) -> Result<bool> {
        let mut state = self.lock();
        let Some((record, rooms)) = state.sessions.get_mut(peer_id) else { return Ok(false) };
        if record.node != node {
            return Ok(false);
        }
        rooms.insert(room.to_string());
        Ok(true)
    }

    async fn remove_room(&self, peer_id: &str, room: &str) -> Result<()> {
        if let Some((_, rooms)) = self.lock().sessions.get_mut(peer_id) {
            rooms.remove(room);
        }
        Ok(())
    }

    async fn detach(&self, peer_id: &str, node: &str, until_ms: i64) -> Result<bool> {
        Ok(self.if_held_by(peer_id, node, |record| record.detached_until_ms = until_ms))
    }

    async fn attach(&self, peer_id: &str, node: &str, secret_hash: &str) -> Result<bool> {
        Ok(self.if_held_by(peer_id, node, |record| {
            record.detached_until_ms = 0;
            record.secret_hash = secret_hash.to_string();
        }))
    }

    async fn take_over(&self, peer_id: &str, from: &str, to: &str, secret_hash: &str) -> Result<bool> {
        let moved = self.if_held_by(peer_id, from, |record| {
            record.node = to.to_string();
            record.detached_until_ms = 0;
            record.secret_hash = secret_hash.to_string();
        });
        if moved {
            let mut state = self.lock();
            state.node_peers.entry(to.to_string()).or_default().insert(peer_id.to_string());
            if let Some(peers) = state.node_peers.get_mut(from) {
                peers.remove(peer_id);
            }
        }
        Ok(moved)
    }

    async fn delete(&self, peer_id: &str, node: &str) -> Result<bool> {
        let mut state = self.lock();
        if !matches!(state.sessions.get(peer_id), Some((record, _)) if record.node == node) {
            return Ok(false);
        }
        state.sessions.remove(peer_id);
        if let Some(peers) = state.node_peers.get_mut(node) {
            peers.remove(peer_id);
        }
        Ok(true)
    }

    async fn register_node(&self, node: &str, ttl: Duration) -> Result<()> {
        self.lock().leases.insert(node.to_string(), Instant::now() + ttl);
        Ok(())
    }

    async fn refresh_lease(&self, node: &str, ttl: Duration) -> Result<bool> {
        let mut state = self.lock();
        match state.leases.get_mut(node) {
            Some(expiry) if *expiry > Instant::now() => {
                *expiry = Instant::now() + ttl;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn node_alive(&self, node: &str) -> Result<bool> {
        Ok(self.lock().leases.get(node).is_some_and(|expiry| *expiry > Instant::now()))
    }

    async fn dead_nodes(&self) -> Result<Vec<String>> {
        let now = Instant::now();
        Ok(self.lock().leases.iter().filter(|(_, expiry)| **expiry <= now).map(|(node, _)| node.clone()).collect())
    }

    async fn node_peers(&self, node: &str) -> Result<Vec<String>> {
        Ok(self.lock().node_peers.get(node).map(|peers| peers.iter().cloned().collect()).unwrap_or_default())
    }

    async fn forget_node(&self, node: &str) -> Result<()> {
        let mut state = self.lock();
        state.leases.remove(node);
        state.node_peers.remove(node);
        Ok(())
    }

    async fn forget_expired_node(&self, node: &str) -> Result<bool> {
        let mut state = self.lock();
        if state.leases.get(node).is_some_and(|expiry| *expiry > Instant::now()) {
            return Ok(false);
        }
        state.leases.remove(node);
        state.node_peers.remove(node);
        Ok(true)
    }
}
