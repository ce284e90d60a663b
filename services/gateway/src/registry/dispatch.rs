//! Envelopes from the bus, delivered to the local peers they concern.

use bus::envelope::{Body, BodyRef, EnvelopeRef, HandoverData, SessionMoved};
use common::telemetry::FLOW;
use protocol::LeaveReason;

use super::routing::returned;
use super::sessions::take_handover_if_ready;
use super::{Membership, PeerId, Registry, RoomName, State, ViewChange, deliver, remove_membership};
use crate::outbound::Frame;
use crate::{metrics, render};

/// Work a dispatch leaves for the caller, which may await.
#[derive(Debug)]
pub enum Effect {
    /// A local membership ended (the server removed the peer, or the session moved to
    /// another gateway): release its subscription reference.
    Release(RoomName),
    /// Send a session's handover to the gateway that resumed it.
    HandOver { to: String, data: HandoverData },
}

impl Registry {
    /// Delivers one envelope from the bus to the local peers it concerns. Node-channel
    /// handover data is not for the registry (the resuming connection waits for it).
    pub fn dispatch(&self, envelope: EnvelopeRef<'_>) -> Vec<Effect> {
        let room = envelope.room;
        let own = envelope.origin_node == &*self.node_id;
        match envelope.body {
            // This node publishes a signal only if it did not deliver it (see routing):
            // its own are delivered like any other's.
            // Rendered only where its target is: every gateway of the room receives it.
            BodyRef::Signal(signal) => {
                let mut state = self.lock();
                let state = &mut *state;
                let to = signal.to_peer;
                let Some(local_room) = state.rooms.get_mut(room) else { return Vec::new() };
                if own {
                    returned(&mut local_room.in_flight, Some(to));
                }
                if let Some(membership) = local_room.members.get_mut(to) {
                    let _delivery = tracing::info_span!(target: FLOW, "signal.deliver", peer = to).entered();
                    let frame = render::signal(room, signal.from_peer, signal.kind, signal.data_json);
                    deliver(&mut state.peers, to, membership, &frame);
                    if !own {
                        metrics::signal_delivered(envelope.sent_at_us);
                    }
                }
                Vec::new()
            }
            // Own broadcasts were delivered here when sent, unless marked loopback.
            BodyRef::Broadcast(broadcast) if !own || broadcast.from_peer.is_empty() || broadcast.loopback => {
                let from = (!broadcast.from_peer.is_empty()).then_some(broadcast.from_peer);
                let frame = render::broadcast(room, from, broadcast.data_json);
                let mut state = self.lock();
                let state = &mut *state;
                if let Some(local_room) = state.rooms.get_mut(room) {
                    if own && broadcast.loopback {
                        returned(&mut local_room.in_flight, None);
                    }
                    for (peer, membership) in local_room.members.iter_mut() {
                        if Some(peer.as_ref()) != from {
                            deliver(&mut state.peers, peer, membership, &frame);
                        }
                    }
                }
                Vec::new()
            }
            BodyRef::Other(Body::PeerJoined(joined)) => {
                let frame = render::peer_joined(room, joined);
                self.apply_join(room, &joined.peer_id, &frame);
                Vec::new()
            }
            BodyRef::Other(Body::PeerLeft(left)) => {
                let reason = render::leave_reason(left.reason);
                let frame = render::peer_left(room, &left.peer_id, reason);
                if self.apply_leave(room, &left.peer_id, reason, &frame) {
                    vec![Effect::Release(room.into())]
                } else {
                    Vec::new()
                }
            }
            BodyRef::Other(Body::SessionMoved(moved)) => self.apply_move(room, moved),
            BodyRef::Other(Body::HandoverRequest(request)) => self
                .request_handover(&request.peer_id, &request.to_node, request.last_seq)
                .map(|(to, data)| vec![Effect::HandOver { to, data }])
                .unwrap_or_default(),
            _ => Vec::new(),
        }
    }

    fn apply_join(&self, room: &str, joiner: &str, frame: &Frame) {
        let mut state = self.lock();
        let state = &mut *state;
        let Some(local_room) = state.rooms.get_mut(room) else { return };
        let joiner_id: PeerId = joiner.into();
        for (peer, membership) in local_room.members.iter_mut() {
            if peer.as_ref() == joiner {
                fire_echo(membership);
                continue;
            }
            if let Membership::Buffering(buffer) = membership {
                buffer.changes.push(ViewChange::Joined(joiner_id.clone()));
            }
            deliver(&mut state.peers, peer, membership, frame);
        }
        if let Some(changes) = &mut local_room.rebuilding {
            changes.push(ViewChange::Joined(joiner_id.clone()));
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
                if let Some(local) = state.peers.get_mut(leaver) {
                    local.push(&render::left(None, room, reason));
                }
                removed_live = true;
            }
            Some(Membership::Buffering(buffer)) => {
                buffer.frames.push(render::left(None, room, reason));
                buffer.removed = true;
            }
            // Leaving: the leaving task finishes. Awaiting the echo: a stale event
            // from before this join.
            Some(Membership::Leaving | Membership::AwaitingEcho(_)) | None => {}
        }
        for (peer, membership) in local_room.members.iter_mut().filter(|(peer, _)| peer.as_ref() != leaver) {
            if let Membership::Buffering(buffer) = membership {
                buffer.changes.push(ViewChange::Left(leaver_id.clone()));
            }
            deliver(&mut state.peers, peer, membership, frame);
        }
        if let Some(changes) = &mut local_room.rebuilding {
            changes.push(ViewChange::Left(leaver_id));
        }
        if let Some(view) = &mut local_room.view {
            view.remove(leaver);
        }
        if removed_live {
            remove_membership(state, leaver, room);
        }
        removed_live
    }

    /// A session's membership of `room` moved between gateways. On the gateway it moved
    /// to, this is the resume's echo; on the one it left, the point after which the
    /// room's traffic is no longer its to deliver. Other gateways have nothing to do:
    /// the peer is still a member.
    fn apply_move(&self, room: &str, moved: &SessionMoved) -> Vec<Effect> {
        let mut state = self.lock();
        if moved.to_node == *self.node_id {
            if let Some(membership) = state.rooms.get_mut(room).and_then(|r| r.members.get_mut(moved.peer_id.as_str()))
            {
                fire_echo(membership);
            }
            return Vec::new();
        }
        if moved.from_node != *self.node_id || !remove_membership(&mut state, &moved.peer_id, room) {
            return Vec::new();
        }
        tracing::debug!(peer = moved.peer_id, room, to = moved.to_node, "session moved away from this gateway");
        let mut effects = vec![Effect::Release(room.into())];
        effects.extend(handover_if_ready(&mut state, &moved.peer_id));
        effects
    }
}

/// The echo of a join or resume: stop ignoring the room's traffic, start buffering it.
pub(super) fn fire_echo(membership: &mut Membership) {
    if let Membership::AwaitingEcho(echo) = membership {
        if let Some(echo) = echo.take() {
            let _ = echo.send(());
        }
        *membership = Membership::Buffering(Box::default());
    }
}

fn handover_if_ready(state: &mut State, peer: &str) -> Option<Effect> {
    take_handover_if_ready(state, peer).map(|(to, data)| Effect::HandOver { to, data })
}
