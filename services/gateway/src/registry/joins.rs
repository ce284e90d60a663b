//! Joining and leaving rooms (see the module docs of the registry for the echo).

use protocol::ErrorCode;
use tokio::sync::oneshot;

use super::{Buffer, Membership, Refusal, Registry, RoomName, State, refuse, remove_membership, view_from};
use crate::outbound::Frame;

/// How a completed join ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Completion {
    Live,
    /// The peer was removed from the room while joining; it got `joined` then `left`.
    /// The membership is gone: the caller releases its subscription.
    RemovedMeanwhile,
    /// The session ended while joining; its end leaves the room and releases.
    SessionEnded,
}

impl Registry {
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
        Ok(await_echo(&mut state, peer, room))
    }

    /// Ends a join the way it came: sends `joined` (already rendered), then what was
    /// buffered since the echo. `members` is the join call's member list.
    pub fn complete_join(&self, peer: &str, room: &str, members: &[String], joined: Frame) -> Completion {
        let mut state = self.lock();
        let state = &mut *state;
        let Some(buffered) = take_buffer(state, peer, room, members) else { return Completion::SessionEnded };
        let Some(local) = state.peers.get_mut(peer) else { return Completion::SessionEnded };
        local.push(&joined);
        for frame in &buffered.frames {
            local.push(frame);
        }
        if buffered.removed {
            remove_membership(state, peer, room);
            return Completion::RemovedMeanwhile;
        }
        Completion::Live
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
}

/// Registers a membership that waits for its echo; returns what fires on it.
pub(super) fn await_echo(state: &mut State, peer: &str, room: RoomName) -> oneshot::Receiver<()> {
    let (echo, echoed) = oneshot::channel();
    let members = &mut state.rooms.entry(room).or_default().members;
    members.insert(peer.into(), Membership::AwaitingEcho(Some(echo)));
    echoed
}

/// What a membership buffered between its echo and its completion.
pub(super) struct Buffered {
    pub frames: Vec<Frame>,
    pub removed: bool,
}

/// Makes a buffering membership live and returns its buffer; builds the room's view
/// from `members` and the buffered changes if this is the room's first local member.
/// `None` if the membership is gone or no longer buffering (its session ended).
pub(super) fn take_buffer(state: &mut State, peer: &str, room: &str, members: &[String]) -> Option<Buffered> {
    let local_room = state.rooms.get_mut(room)?;
    let membership = local_room.members.get_mut(peer)?;
    if !matches!(membership, Membership::Buffering(_)) {
        return None;
    }
    let Membership::Buffering(buffer) = std::mem::replace(membership, Membership::Live) else {
        unreachable!("checked above")
    };
    let Buffer { frames, changes, removed } = *buffer;
    if local_room.view.is_none() {
        local_room.view = Some(view_from(members, changes));
    }
    Some(Buffered { frames, removed })
}
