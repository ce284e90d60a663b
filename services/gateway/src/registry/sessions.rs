//! Sessions: attaching and detaching sockets, resuming on this gateway, and both sides
//! of a resume on another gateway (the old one hands over what it kept).

use std::collections::HashMap;

use bus::envelope::{HandoverData, SequencedFrame};
use protocol::CloseCode;
use tokio::sync::oneshot;

use super::joins::{await_echo, take_buffer};
use super::{LocalPeer, Membership, PeerId, Registry, RoomName, State, remove_membership};
use crate::outbound::{Frame, PeerSender};
use crate::replay::Replay;

/// What detaching a socket did.
#[derive(Debug, PartialEq, Eq)]
pub enum Detached {
    /// The session is kept, away, for a resume.
    Kept,
    /// A newer connection has the session (or it is gone): nothing to do.
    Superseded,
}

/// A session resumed on this gateway.
#[derive(Debug, PartialEq, Eq)]
pub struct Reattached {
    pub attachment: u64,
    pub gap: bool,
}

impl Registry {
    /// A new session with its socket attached; returns the attachment number.
    pub fn open(&self, peer: PeerId, sender: PeerSender) -> u64 {
        let local = LocalPeer::new(Some(sender), Replay::new(self.replay_limits));
        let attachment = local.attachment;
        self.lock().peers.insert(peer, local);
        attachment
    }

    /// Sends a frame to a peer, numbered and kept like every other (a reply).
    pub fn send(&self, peer: &str, frame: &Frame) {
        if let Some(local) = self.lock().peers.get_mut(peer) {
            local.push(frame);
        }
    }

    /// Forgets what the client acknowledged.
    pub fn acknowledge(&self, peer: &str, seq: u64) {
        if let Some(local) = self.lock().peers.get_mut(peer) {
            local.replay.acknowledge(seq);
        }
    }

    /// The socket of `attachment` is gone: the session stays, away, for a resume.
    pub fn detach(&self, peer: &str, attachment: u64) -> Detached {
        match self.lock().peers.get_mut(peer) {
            Some(local) if local.attachment == attachment => {
                local.sender = None;
                Detached::Kept
            }
            _ => Detached::Superseded,
        }
    }

    /// Whether the session is still away since `attachment` was detached.
    pub fn still_detached(&self, peer: &str, attachment: u64) -> bool {
        self.lock().peers.get(peer).is_some_and(|local| local.attachment == attachment && local.sender.is_none())
    }

    /// Whether this gateway holds the session with a socket attached.
    pub fn is_attached(&self, peer: &str) -> bool {
        self.lock().peers.get(peer).is_some_and(|local| local.sender.is_some())
    }

    /// Ends a session: forgets it; its memberships turn to leaving. Returns its rooms,
    /// for the caller to leave.
    pub fn close_session(&self, peer: &str) -> Vec<RoomName> {
        let mut state = self.lock();
        let Some(local) = state.peers.remove(peer) else { return Vec::new() };
        for room in &local.rooms {
            if let Some(membership) = state.rooms.get_mut(room).and_then(|r| r.members.get_mut(peer)) {
                *membership = Membership::Leaving;
            }
        }
        local.rooms.into_iter().collect()
    }

    /// Every session held, attached or not.
    pub fn sessions(&self) -> Vec<PeerId> {
        self.lock().peers.keys().cloned().collect()
    }

    /// Every attached socket, for telling them to move (drain) or close.
    pub fn attached(&self) -> Vec<(PeerId, PeerSender)> {
        let state = self.lock();
        state.peers.iter().filter_map(|(peer, local)| Some((peer.clone(), local.sender.clone()?))).collect()
    }

    /// A resume on this gateway: attaches `sender` to the kept session and queues
    /// `resumed` (made from the gap and the rooms), then every frame after `last_seq`.
    /// A socket still attached (an old connection not noticed dead yet) is closed.
    /// `None` if the session is not here.
    pub fn reattach(
        &self,
        peer: &str,
        sender: PeerSender,
        last_seq: u64,
        resumed: impl FnOnce(bool, Vec<String>) -> Frame,
    ) -> Option<Reattached> {
        let mut state = self.lock();
        let local = state.peers.get_mut(peer)?;
        if let Some(old) = local.sender.take() {
            old.closer().close(CloseCode::SessionMoved);
        }
        let missed = local.replay.missed_after(last_seq);
        let rooms = local.rooms.iter().map(|room| room.to_string()).collect();
        sender.send(resumed(missed.gap, rooms));
        for (_, frame) in missed.frames {
            sender.send(frame);
        }
        local.sender = Some(sender);
        local.attachment += 1;
        Some(Reattached { attachment: local.attachment, gap: missed.gap })
    }

    /// A resume of a session another gateway held, step 1: the session, not attached
    /// yet, with a membership per room that waits for the room's `session_moved` to
    /// this gateway. Returns what fires on each.
    pub fn begin_resume(&self, peer: &str, rooms: &[String]) -> Vec<(RoomName, oneshot::Receiver<()>)> {
        let mut state = self.lock();
        let mut local = LocalPeer::new(None, Replay::new(self.replay_limits));
        let mut echoes = Vec::new();
        for room in rooms {
            let room: RoomName = room.as_str().into();
            local.rooms.insert(room.clone());
            echoes.push((room.clone(), await_echo(&mut state, peer, room)));
        }
        state.peers.insert(peer.into(), local);
        echoes
    }

    /// Step 2: attaches `sender` and queues `resumed` (made from the gap), the frames the
    /// old gateway handed over (numbered there; the sequence continues at `next_seq`),
    /// then what each room buffered since its marker. `members` holds each room's member
    /// list, read after the marker, for rooms this gateway has no view of yet. The gap
    /// is the handover's, or one of the session's rooms lost messages here while it
    /// moved in (see [`Registry::lose_room_messages`]). Returns the attachment and the gap.
    pub fn complete_resume(
        &self,
        peer: &str,
        sender: PeerSender,
        resumed: impl FnOnce(bool) -> Frame,
        (handed, handed_gap): (Vec<(u64, Frame)>, bool),
        next_seq: u64,
        members: &HashMap<String, Vec<String>>,
    ) -> (u64, bool) {
        let mut state = self.lock();
        let state = &mut *state;
        let rooms: Vec<RoomName> = state.peers.get(peer).map(|l| l.rooms.iter().cloned().collect()).unwrap_or_default();
        let mut buffered = Vec::new();
        for room in rooms {
            let list = members.get(room.as_ref()).map(Vec::as_slice).unwrap_or_default();
            match take_buffer(state, peer, &room, list) {
                Some(room_buffer) if room_buffer.removed => {
                    buffered.extend(room_buffer.frames);
                    remove_membership(state, peer, &room);
                }
                Some(room_buffer) => buffered.extend(room_buffer.frames),
                None => {}
            }
        }
        let Some(local) = state.peers.get_mut(peer) else { return (0, handed_gap) };
        let gap = handed_gap || local.replay.lost_any();
        local.replay = Replay::continuing(self.replay_limits, next_seq);
        sender.send(resumed(gap));
        for (seq, frame) in handed {
            local.replay.keep(seq, frame.clone());
            sender.send(frame);
        }
        local.sender = Some(sender);
        for frame in &buffered {
            local.push(frame);
        }
        (local.attachment, gap)
    }

    /// Undoes `begin_resume` (the resume failed); returns the rooms whose memberships
    /// it removed, whose subscriptions the caller releases (a membership removed
    /// meanwhile released its own).
    pub fn abort_resume(&self, peer: &str) -> Vec<RoomName> {
        let mut state = self.lock();
        let Some(local) = state.peers.remove(peer) else { return Vec::new() };
        local.rooms.into_iter().filter(|room| remove_membership(&mut state, peer, room)).collect()
    }

    /// On the old gateway: another gateway asks for a session it now resumes. Returns
    /// the handover at once if every room has already moved (or the session is not
    /// here, which is a gap); otherwise it goes out with the last room's marker.
    pub fn request_handover(&self, peer: &str, to: &str, last_seq: u64) -> Option<(String, HandoverData)> {
        let mut state = self.lock();
        let Some(local) = state.peers.get_mut(peer) else {
            tracing::debug!(peer, "handover requested for a session not held here");
            let data =
                HandoverData { peer_id: peer.to_string(), frames: Vec::new(), next_seq: last_seq + 1, gap: true };
            return Some((to.to_string(), data));
        };
        tracing::debug!(peer, to, last_seq, rooms_left = local.rooms.len(), "handover requested");
        local.handover = Some(Box::new((to.to_string(), last_seq)));
        if let Some(old) = local.sender.take() {
            old.closer().close(CloseCode::SessionMoved);
        }
        take_handover_if_ready(&mut state, peer)
    }
}

/// Hands a session over if it was requested and no room of it is left here: removes it
/// and returns where to send what.
pub(super) fn take_handover_if_ready(state: &mut State, peer: &str) -> Option<(String, HandoverData)> {
    let local = state.peers.get(peer)?;
    if !local.rooms.is_empty() || local.handover.is_none() {
        return None;
    }
    let local = state.peers.remove(peer)?;
    let (to, last_seq) = *local.handover.expect("checked above");
    let missed = local.replay.missed_after(last_seq);
    let frames =
        missed.frames.into_iter().map(|(seq, frame)| SequencedFrame { seq, json: frame.to_string() }).collect();
    let data = HandoverData { peer_id: peer.to_string(), frames, next_seq: local.replay.next_seq(), gap: missed.gap };
    Some((to, data))
}
