//! Signals and broadcasts sent by local peers.
//!
//! A message between two peers of this gateway is delivered at once, without the bus,
//! unless the target is still moving in (its membership waits for the room's marker:
//! until then the old gateway delivers) or an earlier message to it is still on its
//! way round the bus (see [`InFlight`]). Then it goes round the bus too, and whichever
//! gateway holds the target's membership when it comes back delivers it.

use protocol::ErrorCode;

use super::in_flight::InFlight;
use super::{LocalRoom, Membership, Refusal, Registry, RoomName, deliver, refuse};
use crate::outbound::Frame;

/// Where a message has to go.
#[derive(Debug, PartialEq, Eq)]
pub enum Route {
    /// Delivered to the target(s) on this gateway.
    Delivered,
    /// Publish on the bus: the target is elsewhere, or (broadcasts) this gateway's
    /// members get it when it comes back.
    Bus,
}

impl Registry {
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
        // The view's own id of the target: the in-flight count keeps it without a copy.
        let Some(target) = local_room.view.as_ref().and_then(|view| view.get(to)).cloned() else {
            return refuse(ErrorCode::NotFound, format!("peer {to:?} is not in room {room:?}"));
        };
        let held_back = local_room.in_flight.holds_back(to);
        match local_room.members.get_mut(to) {
            Some(membership) if membership.settled() && !held_back => {
                deliver(&mut state.peers, to, membership, &render());
                Ok(Route::Delivered)
            }
            _ => {
                local_room.in_flight.signal_sent(target);
                Ok(Route::Bus)
            }
        }
    }

    /// Delivers a broadcast to the sender's fellow members on this gateway, unless one
    /// of them is moving in or still has a message on its way round the bus: then
    /// `Route::Bus`, and they get it when it comes back. The caller publishes it either
    /// way, for the other gateways.
    pub fn broadcast_locally(&self, room: &str, from: &str, frame: Frame) -> Result<Route, Refusal> {
        let mut state = self.lock();
        let state = &mut *state;
        let local_room = member_room(&mut state.rooms, room, from)?;
        let in_flight = &mut local_room.in_flight;
        let others = || local_room.members.iter().filter(|(peer, _)| peer.as_ref() != from);
        if others().any(|(peer, membership)| !membership.settled() || in_flight.holds_back(peer)) {
            in_flight.broadcast_sent();
            return Ok(Route::Bus);
        }
        for (peer, membership) in local_room.members.iter_mut().filter(|(peer, _)| peer.as_ref() != from) {
            deliver(&mut state.peers, peer, membership, &frame);
        }
        Ok(Route::Delivered)
    }

    /// A message routed round the bus could not be published: it is not on its way.
    pub fn not_published(&self, room: &str, to: Option<&str>) {
        if let Some(local_room) = self.lock().rooms.get_mut(room) {
            returned(&mut local_room.in_flight, to);
        }
    }
}

/// A message this gateway published came back: a signal to `to`, or a broadcast.
pub(super) fn returned(in_flight: &mut InFlight, to: Option<&str>) {
    match to {
        Some(peer) => in_flight.signal_returned(peer),
        None => in_flight.broadcast_returned(),
    }
}

/// The room, if `peer` is a member that may send into it.
fn member_room<'s>(
    rooms: &'s mut std::collections::HashMap<RoomName, LocalRoom>,
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
