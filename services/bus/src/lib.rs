//! The cluster's message bus: how signaling messages travel between nodes.
//!
//! Every room has one channel, and every node one more for control messages addressed
//! to it (a session handover). A gateway subscribes to the channel of each room in
//! which it holds at least one member, and publishes there what its clients send to
//! peers held elsewhere; the room store publishes presence changes there in the same
//! atomic step that changes membership. No channel carries traffic for more than one
//! room, so a gateway's bus traffic grows with its own rooms, not with the cluster.
//!
//! Layout:
//! - [`envelope`]: the versioned binary form of what crosses the bus.
//! - [`keys`]: names of channels and Redis keys, shared with the room store.
//! - [`memory`]: the in-process bus of the embedded (single-node) mode.
//! - [`redis`]: Redis pub/sub, for clusters.
//! - [`metered`]: either of them, measured.
//!
//! # Guarantees every implementation gives
//! - Per channel, all subscribers see messages in one order, the order in which the bus
//!   accepted the publishes. In particular, messages one publisher publishes on one
//!   channel, one after the other, arrive in that order.
//! - At most once: a message is delivered to each node subscribed when it was published,
//!   or, when the bus fails or a node falls too far behind, not at all. Nothing is
//!   retried by the bus itself, but a node is told when it may have missed messages:
//!   [`Bus::interruptions`] counts up; or, when only some rooms' channels were
//!   affected (a Redis Cluster slot moved to another master), [`Bus::room_gaps`] names
//!   those rooms.
//! - `subscribe` returns once the subscription is active: anything published after it
//!   returns reaches this node. (The gateway's joins depend on it; fred's own
//!   `subscribe` does not promise it, see `RedisBus::subscribe`.)
//! - A node receives its own publications too (callers that already delivered them
//!   locally skip them by origin).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;

pub mod envelope;
pub mod keys;
pub mod memory;
pub mod metered;
pub mod redis;

pub use envelope::{Envelope, EnvelopeError};
pub use keys::Keyspace;
pub use memory::{MemoryBus, MemoryHub};
pub use metered::Metered;
pub use redis::{RedisBus, RedisConfig};

/// The stream of encoded envelopes arriving on a node's subscriptions.
pub type Incoming = tokio::sync::mpsc::Receiver<Bytes>;

/// Batches of rooms whose messages a node may have missed ([`Bus::room_gaps`]).
pub type RoomGaps = tokio::sync::broadcast::Receiver<Arc<[String]>>;

/// A publish under way ([`Bus::publish`]).
pub type Publishing<'a> = Pin<Box<dyn Future<Output = Result<(), BusError>> + Send + 'a>>;

/// What a channel carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Topic<'a> {
    /// One room's messages: signals, broadcasts, presence.
    Room(&'a str),
    /// Control messages for one node (by node id).
    Node(&'a str),
}

#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// The bus cannot be reached or did not answer in time; retryable.
    #[error("message bus unavailable: {0}")]
    Unavailable(String),
}

/// A node's handle on the message bus. Cheap to share (`Arc<dyn Bus>`).
#[async_trait]
pub trait Bus: Send + Sync + 'static {
    /// Publishes an encoded envelope on a topic's channel.
    ///
    /// Not an `async fn`: the channel is named from `topic` at once, so the future
    /// borrows only the bus, and a caller can keep it beside whatever owns the topic's
    /// name (the signal path keeps a publish and its room in the connection's task).
    fn publish(&self, topic: Topic<'_>, envelope: Bytes) -> Publishing<'_>;

    /// Starts receiving a topic's channel on this node's [`Incoming`] stream. Calling it
    /// for a topic already subscribed is harmless; subscriptions are not counted.
    async fn subscribe(&self, topic: Topic<'_>) -> Result<(), BusError>;

    /// Stops receiving a topic's channel.
    async fn unsubscribe(&self, topic: Topic<'_>) -> Result<(), BusError>;

    /// Whether any node listens on a topic's channel right now. A node hears its own
    /// channel ([`Topic::Node`]) for as long as it lives and its bus connection holds:
    /// a crashed node's is heard by nobody, which a peer can tell at once instead of
    /// waiting for its lease to run out.
    async fn is_heard(&self, topic: Topic<'_>) -> Result<bool, BusError>;

    /// Whether the bus is reachable right now (for readiness probes).
    async fn check(&self) -> Result<(), BusError>;

    /// How many times this node may have missed messages: its subscriptions were
    /// re-established after a lost connection, or it fell too far behind. Whatever a
    /// node derives from the messages it received is suspect after each increment.
    fn interruptions(&self) -> tokio::sync::watch::Receiver<u64>;

    /// Rooms on whose channel this node may have missed messages while its other
    /// channels held, in batches: in a Redis Cluster, the slot of their channel moved
    /// to another master (a resharding, a failover), which drops the channel's
    /// subscribers until the node subscribes again there. A receiver that falls behind
    /// gets `Lagged` and no longer knows which rooms: every room is then suspect, as
    /// after an interruption. Closed when the bus has no such partial losses (memory).
    fn room_gaps(&self) -> RoomGaps;
}
