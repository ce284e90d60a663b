//! Signals and broadcasts sent by local peers.

use protocol::ErrorCode;

use super::{LocalRoom, Membership, Refusal, Registry, RoomName, deliver, refuse};
use crate::outbound::Frame;

/// Where a signal has to go.
#[derive(Debug, PartialEq, Eq)]
pub enum Route {
    /// Delivered to a peer on this gateway.
    Delivered,
    /// The target is elsewhere: publish on the bus.
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
        if !local_room.view.as_ref().is_some_and(|view| view.contains(to)) {
            return refuse(ErrorCode::NotFound, format!("peer {to:?} is not in room {room:?}"));
        }
        match local_room.members.get_mut(to) {
            Some(membership) => {
                deliver(&mut state.peers, to, membership, &render());
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
            deliver(&mut state.peers, peer, membership, &frame);
        }
        Ok(())
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
