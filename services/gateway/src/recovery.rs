//! Losing and regaining this gateway's standing in the cluster.
//!
//! A gateway can no longer vouch for what it holds when its lease is gone (expired
//! while it was cut off from Redis: the janitor may be removing its sessions right now)
//! or when the bus may have dropped messages for it (the subscriber reconnected, or fell
//! behind: its peers' views and message streams have holes). Then it *loses its state*:
//! it stops serving, tells every client to reconnect (`reconnect`, reason `state_lost`;
//! their resume on another gateway reports a gap, or starts a new session) and ends its
//! sessions. It *rejoins* once Redis answers: it removes whatever of its old sessions
//! is still recorded, then takes a new lease, so the janitor, which only touches nodes
//! without a lease, never meets a session of the new standing.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use protocol::CloseCode;
use room_service::RoomError;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{RwLock, RwLockReadGuard};

use crate::config::Mode;
use crate::{Gateway, lifecycle, metrics, render};

/// How often a reset looks whether every socket has finished its last request.
const POLL: Duration = Duration::from_millis(50);

/// Whether this gateway serves (losing and rejoining take turns), and what it could not
/// remove from the cluster when it should have.
pub struct Standing {
    serving: AtomicBool,
    /// Held exclusively while the standing is lost or regained, shared while a session
    /// starts: see [`Standing::admit`].
    changing: RwLock<()>,
    leftovers: std::sync::Mutex<BTreeSet<Leftover>>,
}

/// Something of this gateway's still recorded in the cluster that should not be.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Leftover {
    /// A session that ended here, whose rooms or record could not all be removed.
    Session(String),
    /// A join whose call failed without an answer: it may have happened all the same,
    /// which would leave a member nobody serves.
    Membership { peer: String, room: String },
}

impl Default for Standing {
    fn default() -> Self {
        Self { serving: AtomicBool::new(true), changing: RwLock::new(()), leftovers: Default::default() }
    }
}

impl Standing {
    /// False between losing the state and rejoining: new connections, resumes and joins
    /// are refused as `unavailable`, and `/readyz` fails.
    pub fn serving(&self) -> bool {
        self.serving.load(Ordering::Acquire)
    }

    /// Lets a session start (a resume, or a new session once authenticated) if this
    /// gateway serves, and holds off losing the standing until the guard is dropped:
    /// a session is then either attached before the state is lost, and told to
    /// reconnect with all the others, or refused. Without it a resume that was half-way
    /// when the state was lost completed afterwards, unseen by the reset, and its
    /// records were removed by the rejoin under it (a connected client in no room).
    pub async fn admit(&self) -> Option<RwLockReadGuard<'_, ()>> {
        let guard = self.changing.read().await;
        self.serving().then_some(guard)
    }

    /// Notes something to clean up later: on every lease tick until it succeeds. (Should
    /// the gateway die first, its lease expires and the janitor does it.)
    pub fn note_leftover(&self, leftover: Leftover) {
        self.lock_leftovers().insert(leftover);
    }

    pub fn has_leftovers(&self) -> bool {
        !self.lock_leftovers().is_empty()
    }

    fn lock_leftovers(&self) -> std::sync::MutexGuard<'_, BTreeSet<Leftover>> {
        self.leftovers.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Retries the clean-up of what [`Standing::note_leftover`] noted; called on every
/// lease tick.
pub async fn clean_leftovers(gateway: &Gateway) {
    let leftovers: Vec<Leftover> = gateway.standing.lock_leftovers().iter().cloned().collect();
    for leftover in leftovers {
        let cleaned = match &leftover {
            Leftover::Session(peer) => end_leftover(gateway, peer).await,
            // Joined again since: that join owns the membership now.
            Leftover::Membership { peer, room } if gateway.registry.has_membership(peer, room) => Ok(()),
            Leftover::Membership { peer, room } => gateway
                .rooms
                .leave(room, peer, &gateway.node_id, cluster_proto::room::LeaveReason::Disconnected)
                .await
                .map(drop),
        };
        match cleaned {
            Ok(()) => {
                gateway.standing.lock_leftovers().remove(&leftover);
                tracing::info!(?leftover, "cleaned up after an outage");
            }
            Err(error) => tracing::debug!(?leftover, %error, "still cannot clean up"),
        }
    }
}

/// Drops everything this gateway holds; `why` is logged.
pub async fn lose_state(gateway: &Gateway, why: &str) {
    let _turn = gateway.standing.changing.write().await;
    let was_serving = gateway.standing.serving.swap(false, Ordering::AcqRel);
    let sessions = gateway.registry.peer_count();
    tracing::error!(why, was_serving, sessions, "this gateway lost its state: clients are told to reconnect");
    metrics::state_lost();
    let reconnect = render::reconnect("state_lost");
    for (_, sender) in gateway.registry.attached() {
        sender.send(reconnect.clone());
        sender.closer().close(CloseCode::GoingAway);
    }
    // A request still running (a join half-way through the room service) could record
    // a membership after the session's end removed them: wait until every socket's
    // reader is done, which is after its last request.
    let deadline = tokio::time::Instant::now() + longest_request(gateway);
    while !gateway.registry.attached().is_empty() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(POLL).await;
    }
    let sessions = gateway.registry.sessions();
    futures_util::future::join_all(sessions.iter().map(|peer| lifecycle::end(gateway, peer))).await;
}

/// Cleans up what is left of this gateway's old sessions in the cluster and takes a new
/// lease; serves again on success.
pub async fn rejoin(gateway: &Gateway) -> Result<(), RoomError> {
    let _turn = gateway.standing.changing.write().await;
    if gateway.mode != Mode::Embedded {
        for peer in gateway.sessions.node_peers(&gateway.node_id).await? {
            end_leftover(gateway, &peer).await?;
        }
        gateway.sessions.forget_node(&gateway.node_id).await?;
        gateway.sessions.register_node(&gateway.node_id, gateway.config.lease.ttl).await?;
    }
    gateway.standing.lock_leftovers().clear();
    gateway.standing.serving.store(true, Ordering::Release);
    tracing::info!("this gateway serves again");
    Ok(())
}

/// Loses the state whenever the bus reports it may have dropped messages for this node;
/// an embedded gateway (no lease to renew) serves again at once.
pub async fn watch_bus(gateway: std::sync::Arc<Gateway>) {
    let mut interruptions = gateway.bus.interruptions();
    while interruptions.changed().await.is_ok() {
        lose_state_for_the_bus(&gateway, "the message bus may have dropped messages for this gateway").await;
    }
}

async fn lose_state_for_the_bus(gateway: &Gateway, why: &str) {
    lose_state(gateway, why).await;
    if gateway.mode == Mode::Embedded
        && let Err(error) = rejoin(gateway).await
    {
        tracing::error!(%error, "could not serve again");
    }
}

/// Repairs each room the bus reports it may have dropped messages of while the other
/// rooms' arrived (a Redis Cluster slot moved): the gateway keeps serving, and only the
/// room's local members are told (`reconnect`, `state_lost`; their resume reports a
/// gap). The room's view, which may have missed joins and leaves, is read again.
/// Whatever cannot be repaired that way (the room service does not answer, or the
/// reports fell behind and no longer say which rooms) loses the whole state instead.
pub async fn watch_room_gaps(gateway: std::sync::Arc<Gateway>) {
    let mut gaps = gateway.bus.room_gaps();
    loop {
        match gaps.recv().await {
            Ok(rooms) => {
                for room in rooms.iter() {
                    if let Err(error) = repair_room(&gateway, room).await {
                        tracing::error!(room, %error, "could not read a room again after its messages were lost");
                        lose_state_for_the_bus(&gateway, "a room's view could not be read again").await;
                        break;
                    }
                }
            }
            Err(RecvError::Lagged(_)) => {
                lose_state_for_the_bus(&gateway, "the rooms whose messages the bus lost are not known").await;
            }
            Err(RecvError::Closed) => return,
        }
    }
}

async fn repair_room(gateway: &Gateway, room: &str) -> Result<(), RoomError> {
    if gateway.registry.local_members(room) == 0 {
        return Ok(());
    }
    let reconnect = render::reconnect("state_lost");
    let sessions = gateway.registry.lose_room_messages(room, &reconnect);
    tracing::warn!(
        room,
        sessions,
        "the bus may have lost some of a room's messages: its sessions are told to reconnect"
    );
    metrics::room_repaired();
    let rebuilding = gateway.registry.begin_view_rebuild(room);
    let members = match gateway.rooms.members(room).await {
        Ok(members) => members,
        Err(error) => {
            if rebuilding {
                gateway.registry.abandon_view_rebuild(room);
            }
            return Err(error);
        }
    };
    let here: Vec<String> = members
        .iter()
        .filter(|member| *member.node_id == *gateway.node_id)
        .map(|member| member.peer_id.clone())
        .collect();
    gateway.registry.fire_echoes_recorded_here(room, &here);
    if rebuilding {
        let ids: Vec<String> = members.into_iter().map(|member| member.peer_id).collect();
        gateway.registry.complete_view_rebuild(room, &ids);
    }
    Ok(())
}

/// Removes a session this gateway once held from its rooms and forgets it, unless it
/// has moved to another gateway since.
async fn end_leftover(gateway: &Gateway, peer: &str) -> Result<(), RoomError> {
    let node = &*gateway.node_id;
    let Some((record, rooms)) = gateway.sessions.load(peer).await? else { return Ok(()) };
    if record.node != node {
        return Ok(());
    }
    for room in rooms {
        gateway.rooms.leave(&room, peer, node, cluster_proto::room::LeaveReason::Disconnected).await?;
    }
    gateway.sessions.delete(peer, node).await?;
    Ok(())
}

/// The longest a client's request can take: its room-service call, its Redis commands,
/// and waiting for its echo on the bus.
fn longest_request(gateway: &Gateway) -> Duration {
    let config = &gateway.config;
    config.room_service.timeout + config.redis.command_timeout * 2 + config.bus.echo_timeout
}
