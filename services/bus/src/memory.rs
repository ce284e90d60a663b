//! The in-memory bus of the embedded mode: every node of one process shares a
//! [`MemoryHub`]. It gives the same guarantees as the Redis bus within one process and
//! nothing across processes; a cluster needs Redis.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;
use tokio::sync::{mpsc, watch};

use crate::{Bus, BusError, Incoming, Keyspace, Publishing, RoomGaps, Topic};

/// Channel names inside a hub (which has no prefix to share with anyone).
fn channel(topic: Topic<'_>) -> String {
    Keyspace::new("").channel(topic)
}

struct NodeQueue {
    sender: mpsc::Sender<Bytes>,
    /// Counts the envelopes dropped because the queue was full.
    interruptions: watch::Sender<u64>,
}

/// The shared switchboard of the in-memory bus. Clones share one hub.
#[derive(Clone, Default)]
pub struct MemoryHub {
    state: Arc<Mutex<HubState>>,
}

#[derive(Default)]
struct HubState {
    next_node: u64,
    nodes: HashMap<u64, NodeQueue>,
    subscribers: HashMap<String, HashSet<u64>>,
}

impl MemoryHub {
    pub fn new() -> Self {
        Self::default()
    }

    /// A new node on this hub, with an incoming queue of `queue_len` envelopes. When a
    /// node's queue is full, further envelopes for it are dropped (logged, and counted
    /// as an interruption), as a Redis server drops a subscriber that falls behind.
    pub fn node(&self, queue_len: usize) -> (MemoryBus, Incoming) {
        let (sender, receiver) = mpsc::channel(queue_len.max(1));
        let mut state = self.lock();
        let node = state.next_node;
        state.next_node += 1;
        state.nodes.insert(node, NodeQueue { sender, interruptions: watch::Sender::new(0) });
        (MemoryBus { hub: self.clone(), node }, receiver)
    }

    /// Publishes synchronously. The room store calls this while it holds its own lock,
    /// so that the order of presence events on a channel is the order of the membership
    /// changes; the hub's lock is held while the envelope is queued to every subscriber,
    /// so all of them see one order.
    pub fn publish_now(&self, topic: Topic<'_>, envelope: Bytes) {
        let state = self.lock();
        let Some(subscribers) = state.subscribers.get(&channel(topic)) else { return };
        for node in subscribers {
            if let Some(queue) = state.nodes.get(node)
                && let Err(mpsc::error::TrySendError::Full(_)) = queue.sender.try_send(envelope.clone())
            {
                tracing::warn!(?topic, node, "memory bus queue full: envelope dropped");
                queue.interruptions.send_modify(|count| *count += 1);
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HubState> {
        // A panic while holding this lock cannot leave the maps half-updated in a way
        // that matters more than losing the process, so poisoning is ignored.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// One node's handle on a [`MemoryHub`].
pub struct MemoryBus {
    hub: MemoryHub,
    node: u64,
}

impl MemoryBus {
    pub fn hub(&self) -> &MemoryHub {
        &self.hub
    }
}

#[async_trait]
impl Bus for MemoryBus {
    fn publish(&self, topic: Topic<'_>, envelope: Bytes) -> Publishing<'_> {
        self.hub.publish_now(topic, envelope);
        Box::pin(std::future::ready(Ok(())))
    }

    async fn subscribe(&self, topic: Topic<'_>) -> Result<(), BusError> {
        self.hub.lock().subscribers.entry(channel(topic)).or_default().insert(self.node);
        Ok(())
    }

    async fn unsubscribe(&self, topic: Topic<'_>) -> Result<(), BusError> {
        let mut state = self.hub.lock();
        let channel = channel(topic);
        if let Some(nodes) = state.subscribers.get_mut(&channel) {
            nodes.remove(&self.node);
            if nodes.is_empty() {
                state.subscribers.remove(&channel);
            }
        }
        Ok(())
    }

    async fn is_heard(&self, topic: Topic<'_>) -> Result<bool, BusError> {
        Ok(self.hub.lock().subscribers.get(&channel(topic)).is_some_and(|nodes| !nodes.is_empty()))
    }

    async fn check(&self) -> Result<(), BusError> {
        Ok(())
    }

    fn interruptions(&self) -> watch::Receiver<u64> {
        match self.hub.lock().nodes.get(&self.node) {
            Some(queue) => queue.interruptions.subscribe(),
            None => watch::Sender::new(0).subscribe(),
        }
    }

    /// One process loses no room's messages alone: the stream is closed at once.
    fn room_gaps(&self) -> RoomGaps {
        tokio::sync::broadcast::channel(1).1
    }
}

impl Drop for MemoryBus {
    fn drop(&mut self) {
        let mut state = self.hub.lock();
        state.nodes.remove(&self.node);
        state.subscribers.retain(|_, nodes| {
            nodes.remove(&self.node);
            !nodes.is_empty()
        });
    }
}
