//! What this gateway knows: its sessions (peers, whether their socket is attached),
//! the rooms they are in, and, for each such room, the room's membership across the
//! cluster (the *view*).
//!
//! # How a join stays consistent without locking the cluster
//! The room store publishes every membership change on the room's channel in the same
//! atomic step as the change, so the channel carries the changes in order. A joining
//! peer's gateway subscribes to the channel first, then joins; its own `peer_joined`
//! coming back on the channel (the *echo*) marks the exact point from which the
//! channel carries everything the join's member list does not include. Until the echo
//! the gateway ignores the room's traffic for that peer; from the echo until the join
//! call has returned it buffers it; then it sends `joined` followed by the buffer. So
//! a client sees every change of the room exactly once, after `joined`, and never a
//! signal from a peer it has not been told about.
//!
//! A session resumed on another gateway moves the same way: the room store changes the
//! member's owner and publishes `session_moved` atomically; on the new gateway that
//! marker is the echo, on the old one it is the point after which the room's traffic is
//! no longer its to deliver. What the old gateway kept until then is handed over.
//!
//! # Sessions outlive sockets
//! Every frame for a peer is numbered and kept in its [`Replay`] until acknowledged, and
//! goes to its socket when one is attached. A session whose socket was lost is kept,
//! detached, for the resume window.
//!
//! All state sits behind one mutex that is never held across an await; the dispatcher
//! of bus messages and the connection tasks only take it for short, non-blocking
//! updates and `try_send`s.
//!
//! Files: [`joins`] (join and leave), [`routing`] (signals and broadcasts, with
//! [`in_flight`]), [`sessions`] (attach, detach, resume, handover), [`dispatch`]
//! (envelopes from the bus), [`gaps`] (a room whose messages the bus lost).

mod dispatch;
mod gaps;
mod in_flight;
mod joins;
mod peer_rooms;
mod routing;
mod sessions;

use std::collections::{HashMap, HashSet, hash_map::Entry};
use std::sync::{Arc, Mutex, MutexGuard};

use protocol::ErrorCode;
use tokio::sync::oneshot;

pub use dispatch::Effect;
pub use joins::Completion;
pub use routing::Route;
pub use sessions::{Detached, Reattached};

use crate::outbound::{Frame, PeerSender};
use crate::replay::{Replay, ReplayLimits};
use peer_rooms::PeerRooms;

pub type PeerId = Arc<str>;
pub type RoomName = Arc<str>;

pub struct Registry {
    node_id: Arc<str>,
    replay_limits: ReplayLimits,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    peers: HashMap<PeerId, LocalPeer>,
    rooms: HashMap<RoomName, LocalRoom>,
}

/// One session held by this gateway.
struct LocalPeer {
    /// The attached socket's queue; `None` while the client is away.
    sender: Option<PeerSender>,
    /// Bumped by every attach, so that a connection that ended only detaches the
    /// session if no newer connection has taken it since.
    attachment: u64,
    replay: Replay,
    /// Rooms in which the peer has a membership, in any state.
    rooms: PeerRooms,
    /// Set on this (old) gateway when another one resumes the session: where to hand
    /// over, and what the client already has.
    /// Boxed: rare, and every session's record would otherwise be its size.
    handover: Option<Box<(String, u64)>>,
}

impl LocalPeer {
    fn new(sender: Option<PeerSender>, replay: Replay) -> Self {
        Self { sender, attachment: 1, replay, rooms: PeerRooms::default(), handover: None }
    }

    /// Numbers a frame, keeps it for a resume, and sends it if a socket is attached.
    fn push(&mut self, frame: &Frame) {
        let numbered = self.replay.record(frame);
        if let Some(sender) = &self.sender {
            sender.send(numbered);
        }
    }
}

#[derive(Default)]
struct LocalRoom {
    /// Every member of the room in the cluster, as known from the first completed local
    /// join's member list plus every change since; `None` until then.
    view: Option<HashSet<PeerId>>,
    /// While the view is read again after the bus lost some of the room's messages:
    /// the changes seen since, to apply to the member list read (see [`gaps`]).
    rebuilding: Option<Vec<ViewChange>>,
    /// This gateway's peers in the room.
    members: HashMap<PeerId, Membership>,
    in_flight: in_flight::InFlight,
}

enum Membership {
    /// Joining (or resuming); the room's traffic is ignored until the peer's own
    /// `peer_joined` (or `session_moved` to this gateway) arrives, which fires the sender.
    AwaitingEcho(Option<oneshot::Sender<()>>),
    /// Echo seen, join (or resume) not complete yet: traffic is kept for afterwards.
    /// Boxed: for the moment of a join only, and every member of every room would
    /// otherwise be its size.
    Buffering(Box<Buffer>),
    Live,
    /// A leave call is in flight; traffic is still delivered until it returns.
    Leaving,
}

impl Membership {
    /// Whether the room's messages to this member are this gateway's to deliver (not
    /// still waiting for the echo, before which they are ignored).
    fn settled(&self) -> bool {
        !matches!(self, Membership::AwaitingEcho(_))
    }
}

#[derive(Default)]
struct Buffer {
    frames: Vec<Frame>,
    changes: Vec<ViewChange>,
    removed: bool,
}

enum ViewChange {
    Joined(PeerId),
    Left(PeerId),
}

/// Why the registry refused something a client asked for.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct Refusal {
    pub code: ErrorCode,
    pub message: String,
}

fn refuse<T>(code: ErrorCode, message: String) -> Result<T, Refusal> {
    Err(Refusal { code, message })
}

impl Registry {
    pub fn new(node_id: Arc<str>, replay_limits: ReplayLimits) -> Self {
        Self { node_id, replay_limits, state: Mutex::new(State::default()) }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state stays consistent between statements; a panic elsewhere does not
        // make it unusable.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Drops a membership (a failed join, or a finished leave). Returns whether there
    /// was one; whoever removes a membership releases its subscription.
    pub fn remove_membership(&self, peer: &str, room: &str) -> bool {
        remove_membership(&mut self.lock(), peer, room)
    }

    /// Whether `peer` has a membership of `room` here, in any state.
    pub fn has_membership(&self, peer: &str, room: &str) -> bool {
        self.lock().rooms.get(room).is_some_and(|r| r.members.contains_key(peer))
    }

    /// How many local peers a room has (any state of membership).
    pub fn local_members(&self, room: &str) -> usize {
        self.lock().rooms.get(room).map_or(0, |r| r.members.len())
    }

    /// Rooms with at least one local membership.
    pub fn room_count(&self) -> usize {
        self.lock().rooms.len()
    }

    /// Sessions held, attached or not.
    pub fn peer_count(&self) -> usize {
        self.lock().peers.len()
    }

    /// Sessions held, rooms with a local member, and local memberships (for metrics).
    pub fn counts(&self) -> (usize, usize, usize) {
        let state = self.lock();
        let members = state.rooms.values().map(|room| room.members.len()).sum();
        (state.peers.len(), state.rooms.len(), members)
    }
}

/// Delivers one frame to one local member, as its membership state allows.
fn deliver(peers: &mut HashMap<PeerId, LocalPeer>, peer: &str, membership: &mut Membership, frame: &Frame) {
    match membership {
        Membership::Live | Membership::Leaving => {
            if let Some(local) = peers.get_mut(peer) {
                local.push(frame);
            }
        }
        Membership::Buffering(buffer) => buffer.frames.push(frame.clone()),
        Membership::AwaitingEcho(_) => {}
    }
}

/// A room's view: a member list, then the changes the channel carried since (or while
/// the list was read), in their order.
fn view_from(members: &[String], changes: Vec<ViewChange>) -> HashSet<PeerId> {
    let mut view: HashSet<PeerId> = members.iter().map(|id| PeerId::from(id.as_str())).collect();
    for change in changes {
        match change {
            ViewChange::Joined(id) => view.insert(id),
            ViewChange::Left(id) => view.remove(&id),
        };
    }
    view
}

fn remove_membership(state: &mut State, peer: &str, room: &str) -> bool {
    if let Some(local) = state.peers.get_mut(peer) {
        local.rooms.remove(room);
    }
    let Entry::Occupied(mut local_room) = state.rooms.entry(room.into()) else { return false };
    let removed = local_room.get_mut().members.remove(peer).is_some();
    if local_room.get().members.is_empty() {
        local_room.remove();
    }
    removed
}

#[cfg(test)]
mod tests;
