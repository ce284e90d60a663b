//! Sessions and node leases: the cluster-wide record of which gateway holds which peer.
//!
//! A gateway records every session it serves (and the rooms it joins) and keeps a
//! lease alive while it runs. When a lease expires (the gateway died or was cut off)
//! the janitor (`crate::janitor`) removes that gateway's peers from their rooms. A
//! session can move between gateways (a resume); every move and every removal is a
//! compare-and-set on the session's owner, so a live session is never removed by a
//! clean-up racing its move.
//!
//! Implementations:
//! - [`memory::MemorySessionStore`]: embedded mode, one node.
//! - [`redis::RedisSessionStore`]: `<prefix>peer:{<peer>}` (hash) and `...:rooms` (set),
//!   `<prefix>node:{<node>}:lease` (expiring) and `...:peers` (set), `<prefix>nodes`.

pub mod memory;
pub mod redis;

use std::time::Duration;

use async_trait::async_trait;

use crate::error::Result;

/// One session as the cluster knows it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SessionRecord {
    pub peer_id: String,
    /// The gateway holding the session.
    pub node: String,
    /// SHA-256 (hex) of the secret in the session's resume token.
    pub secret_hash: String,
    pub identity: String,
    pub name: String,
    /// The token's room grants (`*` for any).
    pub grants: Vec<String>,
    /// While the client is away: until when (ms since the epoch) it may resume; 0 while
    /// connected.
    pub detached_until_ms: i64,
}

#[async_trait]
pub trait SessionStore: Send + Sync + 'static {
    /// Records a new session held by `record.node`.
    async fn create(&self, record: &SessionRecord) -> Result<()>;

    /// A session and its rooms.
    async fn load(&self, peer_id: &str) -> Result<Option<(SessionRecord, Vec<String>)>>;

    /// Notes that the session is in (or joining) a room, if `node` holds the session;
    /// called before the join, so a crash leaves at most a harmless extra entry.
    async fn add_room(&self, peer_id: &str, node: &str, room: &str) -> Result<bool>;

    async fn remove_room(&self, peer_id: &str, room: &str) -> Result<()>;

    /// Marks the session as away until `until_ms`, if `node` still holds it.
    async fn detach(&self, peer_id: &str, node: &str, until_ms: i64) -> Result<bool>;

    /// Marks the session as connected again with a new resume secret, if `node` holds it.
    async fn attach(&self, peer_id: &str, node: &str, secret_hash: &str) -> Result<bool>;

    /// Moves the session from `from` to `to` with a new resume secret, if `from` holds it.
    async fn take_over(&self, peer_id: &str, from: &str, to: &str, secret_hash: &str) -> Result<bool>;

    /// Deletes the session, if `node` holds it.
    async fn delete(&self, peer_id: &str, node: &str) -> Result<bool>;

    /// Starts a node's lease (`ttl`) and lists it among the nodes.
    async fn register_node(&self, node: &str, ttl: Duration) -> Result<()>;

    /// Extends a node's lease (and lists the node again, should a janitor racing its
    /// return have unlisted it); false if it had already expired (the node's state may
    /// have been cleaned up by then).
    async fn refresh_lease(&self, node: &str, ttl: Duration) -> Result<bool>;

    async fn node_alive(&self, node: &str) -> Result<bool>;

    /// Listed nodes whose lease has expired.
    async fn dead_nodes(&self) -> Result<Vec<String>>;

    /// The sessions a node has held (some may have moved on since).
    async fn node_peers(&self, node: &str) -> Result<Vec<String>>;

    /// Forgets a node: its lease, its index, its listing.
    async fn forget_node(&self, node: &str) -> Result<()>;

    /// The janitor's [`Self::forget_node`]: only if the node's lease is still gone;
    /// false if it holds one again.
    async fn forget_expired_node(&self, node: &str) -> Result<bool>;
}
