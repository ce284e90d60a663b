//! The janitor: cleans up after gateways that died.
//!
//! A gateway keeps a lease alive while it runs. Once a lease has expired, the janitor
//! takes each session that gateway still held out of its rooms (the other members see
//! `peer_left` with reason `disconnected`) and forgets it. It runs wherever the room
//! logic runs over Redis: in every room-service replica, or in every gateway when the
//! rooms run in the gateways. Any number of janitors may sweep at once: each removal is
//! conditional on the dead node still holding the member, so each happens exactly once,
//! and a session that moved to a live gateway (a resume) is never touched.

use std::sync::Arc;
use std::time::Duration;

use cluster_proto::room::LeaveReason;

use crate::Rooms;
use crate::error::Result;
use crate::sessions::SessionStore;

pub struct Janitor {
    rooms: Arc<Rooms>,
    sessions: Arc<dyn SessionStore>,
}

/// What one sweep did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Sweep {
    /// Dead nodes cleaned up.
    pub nodes: usize,
    /// Members removed from rooms.
    pub members: usize,
}

impl Janitor {
    pub fn new(rooms: Arc<Rooms>, sessions: Arc<dyn SessionStore>) -> Self {
        Self { rooms, sessions }
    }

    /// Cleans up after every node whose lease has expired.
    pub async fn sweep(&self) -> Result<Sweep> {
        let mut sweep = Sweep::default();
        for node in self.sessions.dead_nodes().await? {
            let peers = self.sessions.node_peers(&node).await?;
            // A gateway cut off for longer than its lease cleans up after itself before
            // it takes a new lease; once it has one, the sessions it lists are live. (If
            // it came back after this check, it cleaned these same sessions first: the
            // removals below are then no-ops.)
            if self.sessions.node_alive(&node).await? {
                continue;
            }
            let mut members = 0;
            for peer in peers {
                members += self.clean_session(&node, &peer).await?;
            }
            if !self.sessions.forget_expired_node(&node).await? {
                continue;
            }
            tracing::info!(node, members, "cleaned up after a node whose lease expired");
            crate::metrics::lease_cleanup(members);
            sweep.nodes += 1;
            sweep.members += members;
        }
        Ok(sweep)
    }

    /// Removes one session of a dead node from its rooms, unless it moved on.
    async fn clean_session(&self, node: &str, peer: &str) -> Result<usize> {
        let Some((record, rooms)) = self.sessions.load(peer).await? else { return Ok(0) };
        if record.node != node {
            return Ok(0);
        }
        let mut removed = 0;
        for room in rooms {
            if self.rooms.leave_if_owner(&room, peer, Some(node), LeaveReason::Disconnected).await? {
                removed += 1;
            }
        }
        self.sessions.delete(peer, node).await?;
        Ok(removed)
    }

    /// Sweeps every `period` until `shutdown` resolves. Failures (Redis unreachable) are
    /// logged and the next period tries again.
    pub async fn run(self, period: Duration, shutdown: impl Future<Output = ()>) {
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => return,
                _ = tick.tick() => {}
            }
            if let Err(error) = self.sweep().await {
                tracing::warn!(%error, "janitor sweep failed; retrying next period");
            }
        }
    }
}
