//! What this gateway knows: its connected peers, the rooms they are in, and, for each
//! such room, the room's membership across the cluster (the *view*).
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
//! All state sits behind one mutex that is never held across an await; the dispatcher
//! of bus messages and the connection tasks only take it for short, non-blocking
//! updates and `try_send`s.

use std::collections::{HashMap, HashSet, hash_map::Entry};
use std::sync::{Arc, Mutex, MutexGuard};

use bus::envelope::{Body, Envelope};
use protocol::{ErrorCode, LeaveReason};
use tokio::sync::oneshot;

use crate::outbound::{Frame, PeerSender};
use crate::render;

pub type PeerId = Arc<str>;
pub type RoomName = Arc<str>;

#[derive(Default)]
pub struct Registry {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    peers: HashMap<PeerId, LocalPeer>,
    rooms: HashMap<RoomName, LocalRoom>,
}

struct LocalPeer {
    sender: PeerSender,
    /// Rooms in which the peer has a membership, in any state.
    rooms: HashSet<RoomName>,
}

#[derive(Default)]
struct LocalRoom {
    /// Every member of the room in the cluster, as known from the first completed local
    /// join's member list plus every change since; `None` until then.
    view: Option<HashSet<PeerId>>,
    /// This gateway's peers in the room.
    members: HashMap<PeerId, Membership>,
}

enum Membership {
    /// Joining; the room's traffic is ignored until the peer's own `peer_joined`
    /// arrives, which fires the sender.
    AwaitingEcho(Option<oneshot::Sender<()>>),
    /// Echo seen, join call not yet returned: traffic is kept for after `joined`.
    Buffering {
        frames: Vec<Frame>,
        changes: Vec<ViewChange>,
        removed: bool,
    },
    Live,
    /// A leave call is in flight; traffic is still delivered until it returns.
    Leaving,
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

/// Where a signal has to go.
#[derive(Debug, PartialEq, Eq)]
pub enum Route {
    /// Delivered to a peer on this gateway.
    Delivered,
    /// The target is elsewhere: publish on the bus.
    Bus,
}

/// How a completed join ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Completion {
    Live,
    /// The peer was removed from the room while joining; it got `joined` then `left`.
    RemovedMeanwhile,
}

impl Registry {
    fn lock(&self) -> MutexGuard<'_, State> {
        // The state stays consistent between statements; a panic elsewhere does not
        // make it unusable.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn add_peer(&self, peer: PeerId, sender: PeerSender) {
        self.lock().peers.insert(peer, LocalPeer { sender, rooms: HashSet::new() });
    }

    /// Forgets a disconnected peer's sender; its memberships turn to leaving. Returns
    /// the rooms it was in, for the caller to leave.
    pub fn disconnect(&self, peer: &str) -> Vec<RoomName> {
        let mut state = self.lock();
        let Some(local) = state.peers.remove(peer) else { return Vec::new() };
        for room in &local.rooms {
            if let Some(membership) = state.rooms.get_mut(room).and_then(|r| r.members.get_mut(peer)) {
                *membership = Membership::Leaving;
            }
        }
        local.rooms.into_iter().collect()
    }

    /// Starts a join: checks the per-connection limit and that the peer is not in the
    /// room yet, and returns what fires when the peer's own `peer_joined` arrives.
    pub fn begin_join(&self, peer: &str, room: &str, max_rooms: usize) -> Result<oneshot::Receiver<()>, Refusal> {
        let mut state = self.lock();
        let Some(local) = state.peers.get_mut(peer) else {
            return refuse(ErrorCode::Internal, "connection is closing".into());
        };
        if local.rooms.contains(room) {
            return refuse(ErrorCode::BadRequest, format!("already in room {room:?}"));
        }
        if local.rooms.len() >= max_rooms {
            return refuse(ErrorCode::Forbidden, format!("a connection may be in at most {max_rooms} rooms"));
        }
        let room: RoomName = room.into();
        local.rooms.insert(room.clone());
        let (echo, echoed) = oneshot::channel();
        let members = &mut state.rooms.entry(room).or_default().members;
        members.insert(peer.into(), Membership::AwaitingEcho(Some(echo)));
        Ok(echoed)
    }

    /// Ends a join the way it came: sends `joined` (already rendered), then what was
    /// buffered since the echo. `members` is the join call's member list.
    pub fn complete_join(&self, peer: &str, room: &str, members: &[String], joined: Frame) -> Completion {
        let mut state = self.lock();
        let state = &mut *state;
        let Some(local_room) = state.rooms.get_mut(room) else { return Completion::RemovedMeanwhile };
        let Some(membership) = local_room.members.get_mut(peer) else { return Completion::RemovedMeanwhile };
        let Membership::Buffering { frames, changes, removed } = std::mem::replace(membership, Membership::Live) else {
            debug_assert!(false, "complete_join before the echo");
            return Completion::Live;
        };
        if local_room.view.is_none() {
            let mut view: HashSet<PeerId> = members.iter().map(|id| PeerId::from(id.as_str())).collect();
            for change in changes {
                match change {
                    ViewChange::Joined(id) => view.insert(id),
                    ViewChange::Left(id) => view.remove(&id),
                };
            }
            local_room.view = Some(view);
        }
        if let Some(local) = state.peers.get(peer) {
            local.sender.send(joined);
            for frame in frames {
                local.sender.send(frame);
            }
        }
        if removed {
            remove_membership(state, peer, room);
            return Completion::RemovedMeanwhile;
        }
        Completion::Live
    }

    /// Drops a membership (a failed join, or a finished leave). Returns whether there
    /// was one; whoever removes a membership releases its subscription.
    pub fn remove_membership(&self, peer: &str, room: &str) -> bool {
        remove_membership(&mut self.lock(), peer, room)
    }

    /// Marks a live membership as leaving; fails if the peer is not in the room.
    pub fn begin_leave(&self, peer: &str, room: &str) -> Result<(), Refusal> {
        let mut state = self.lock();
        match state.rooms.get_mut(room).and_then(|r| r.members.get_mut(peer)) {
            Some(membership @ Membership::Live) => {
                *membership = Membership::Leaving;
                Ok(())
            }
            _ => refuse(ErrorCode::NotFound, format!("not in room {room:?}")),
        }
    }

    /// Turns a leaving membership back to live (the leave call failed).
    pub fn cancel_leave(&self, peer: &str, room: &str) {
        if let Some(membership @ Membership::Leaving) =
            self.lock().rooms.get_mut(room).and_then(|r| r.members.get_mut(peer))
        {
            *membership = Membership::Live;
        }
    }

    /// Routes a signal from `from` to `to` in `room`, delivering it at once (rendered by
    /// `render`) if `to` is here.
    pub fn route_signal(
        &self,
        room: &str,
        from: &str,
        to: &str,
        render: impl FnOnce() -> Frame,
    ) -> Result<Route, Refusal> {
        let mut state = self.lock();
        let state = &mut *state;
        let local_room = member_room(&mut state.rooms, room, from)?;
        if to == from {
            return refuse(ErrorCode::BadRequest, "a peer cannot signal itself".into());
        }
        if !local_room.view.as_ref().is_some_and(|view| view.contains(to)) {
            return refuse(ErrorCode::NotFound, format!("peer {to:?} is not in room {room:?}"));
        }
        match local_room.members.get_mut(to) {
            Some(membership) => {
                deliver(&state.peers, to, membership, &render());
                Ok(Route::Delivered)
            }
            None => Ok(Route::Bus),
        }
    }

    /// Delivers a broadcast to the sender's fellow members on this gateway; the caller
    /// publishes it for the other gateways.
    pub fn broadcast_locally(&self, room: &str, from: &str, frame: Frame) -> Result<(), Refusal> {
        let mut state = self.lock();
        let state = &mut *state;
        let local_room = member_room(&mut state.rooms, room, from)?;
        for (peer, membership) in local_room.members.iter_mut().filter(|(peer, _)| peer.as_ref() != from) {
            deliver(&state.peers, peer, membership, &frame);
        }
        Ok(())
    }

    /// Delivers one envelope from the bus to the local peers it concerns. Returns the
    /// rooms in which a local membership ended (a peer removed by the server), whose
    /// subscriptions the caller releases.
    pub fn dispatch(&self, node_id: &str, envelope: Envelope) -> Vec<RoomName> {
        let room = envelope.room.as_str();
        let own = envelope.origin_node == node_id;
        let mut ended = Vec::new();
        match envelope.body {
            // Signals and broadcasts from this node were delivered locally already.
            Some(Body::Signal(signal)) if !own => {
                let frame = render::signal(room, &signal.from_peer, &signal.kind, &signal.data_json);
                let mut state = self.lock();
                let state = &mut *state;
                if let Some(membership) =
                    state.rooms.get_mut(room).and_then(|r| r.members.get_mut(signal.to_peer.as_str()))
                {
                    deliver(&state.peers, &signal.to_peer, membership, &frame);
                }
            }
            Some(Body::Broadcast(broadcast)) if !own || broadcast.from_peer.is_empty() => {
                let from = (!broadcast.from_peer.is_empty()).then_some(broadcast.from_peer.as_str());
                let frame = render::broadcast(room, from, &broadcast.data_json);
                let mut state = self.lock();
                let state = &mut *state;
                if let Some(local_room) = state.rooms.get_mut(room) {
                    for (peer, membership) in local_room.members.iter_mut() {
                        if Some(peer.as_ref()) != from {
                            deliver(&state.peers, peer, membership, &frame);
                        }
                    }
                }
            }
            Some(Body::PeerJoined(joined)) => {
                let frame = render::peer_joined(room, &joined);
                self.apply_join(room, &joined.peer_id, &frame);
            }
            Some(Body::PeerLeft(left)) => {
                let reason = render::leave_reason(left.reason);
                let frame = render::peer_left(room, &left.peer_id, reason);
                if self.apply_leave(room, &left.peer_id, reason, &frame) {
                    ended.push(RoomName::from(room));
                }
            }
            _ => {}
        }
        ended
    }

    fn apply_join(&self, room: &str, joiner: &str, frame: &Frame) {
        let mut state = self.lock();
        let state = &mut *state;
        let Some(local_room) = state.rooms.get_mut(room) else { return };
        let joiner_id: PeerId = joiner.into();
        for (peer, membership) in local_room.members.iter_mut() {
            if peer.as_ref() == joiner {
                if let Membership::AwaitingEcho(echo) = membership {
                    if let Some(echo) = echo.take() {
                        let _ = echo.send(());
                    }
                    *membership = Membership::Buffering { frames: Vec::new(), changes: Vec::new(), removed: false };
                }
                continue;
            }
            if let Membership::Buffering { changes, .. } = membership {
                changes.push(ViewChange::Joined(joiner_id.clone()));
            }
            deliver(&state.peers, peer, membership, frame);
        }
        if let Some(view) = &mut local_room.view {
            view.insert(joiner_id);
        }
    }

    /// Returns true if a live local membership ended (the peer was removed).
    fn apply_leave(&self, room: &str, leaver: &str, reason: LeaveReason, frame: &Frame) -> bool {
        let mut state = self.lock();
        let state = &mut *state;
        let Some(local_room) = state.rooms.get_mut(room) else { return false };
        let leaver_id: PeerId = leaver.into();
        let mut removed_live = false;
        match local_room.members.get_mut(leaver) {
            // Removed by the server (or by a clean-up) while live: tell it, drop it.
            Some(Membership::Live) => {
                if let Some(local) = state.peers.get(leaver) {
                    local.sender.send(render::left(None, room, reason));
                }
                removed_live = true;
            }
            Some(Membership::Buffering { frames, removed, .. }) => {
                frames.push(render::left(None, room, reason));
                *removed = true;
            }
            // Leaving: the leaving task finishes. Awaiting the echo: a stale event
            // from before this join.
            Some(Membership::Leaving | Membership::AwaitingEcho(_)) | None => {}
        }
        for (peer, membership) in local_room.members.iter_mut().filter(|(peer, _)| peer.as_ref() != leaver) {
            if let Membership::Buffering { changes, .. } = membership {
                changes.push(ViewChange::Left(leaver_id.clone()));
            }
            deliver(&state.peers, peer, membership, frame);
        }
        if let Some(view) = &mut local_room.view {
            view.remove(leaver);
        }
        if removed_live {
            remove_membership(state, leaver, room);
        }
        removed_live
    }

    /// The local peers of a room, for tests and diagnostics.
    pub fn local_members(&self, room: &str) -> usize {
        self.lock().rooms.get(room).map_or(0, |r| r.members.len())
    }

    /// Rooms with at least one local membership.
    pub fn room_count(&self) -> usize {
        self.lock().rooms.len()
    }

    pub fn peer_count(&self) -> usize {
        self.lock().peers.len()
    }
}

/// The room, if `peer` is a member that may send into it.
fn member_room<'s>(
    rooms: &'s mut HashMap<RoomName, LocalRoom>,
    room: &str,
    peer: &str,
) -> Result<&'s mut LocalRoom, Refusal> {
    match rooms.get_mut(room) {
        Some(local_room) if matches!(local_room.members.get(peer), Some(Membership::Live | Membership::Leaving)) => {
            Ok(local_room)
        }
        _ => refuse(ErrorCode::Forbidden, format!("not in room {room:?}")),
    }
}

fn deliver(peers: &HashMap<PeerId, LocalPeer>, peer: &str, membership: &mut Membership, frame: &Frame) {
    match membership {
        Membership::Live | Membership::Leaving => {
            if let Some(local) = peers.get(peer) {
                local.sender.send(frame.clone());
            }
        }
        Membership::Buffering { frames, .. } => frames.push(frame.clone()),
        Membership::AwaitingEcho(_) => {}
    }
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
