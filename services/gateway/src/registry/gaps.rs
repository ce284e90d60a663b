//! A room whose bus messages this gateway may have missed while its other rooms' did
//! not (a Redis Cluster slot moved to another master): its local members are told, and
//! the room's view is read again.

use protocol::CloseCode;

use super::dispatch::fire_echo;
use super::{Registry, view_from};
use crate::outbound::Frame;

impl Registry {
    /// Counts a lost frame in the session of every local member of `room`, so that its
    /// next resume reports a gap, and sends `reconnect` (already rendered) to those
    /// attached, then closes their sockets. A socket is detached here, in the same step,
    /// so no frame numbered after the lost one reaches it: the client resumes from
    /// before the loss and is told. Returns how many sessions lost the frame.
    pub fn lose_room_messages(&self, room: &str, reconnect: &Frame) -> usize {
        let mut state = self.lock();
        let state = &mut *state;
        let Some(local_room) = state.rooms.get(room) else { return 0 };
        let mut sessions = 0;
        for peer in local_room.members.keys() {
            let Some(local) = state.peers.get_mut(peer) else { continue };
            local.replay.lose_one();
            if let Some(sender) = local.sender.take() {
                sender.send(reconnect.clone());
                sender.closer().close(CloseCode::GoingAway);
            }
            sessions += 1;
        }
        sessions
    }

    /// Fires the echo of every membership of `room` still waiting for it whose peer the
    /// room store already records on this gateway (`recorded_here`, read after the
    /// gateway subscribed again): its join or move happened, and its marker was
    /// published while this gateway was deaf to the room, so it would wait in vain. Its
    /// point is now; what the room carried in between is lost, which the session's lost
    /// frame already says.
    pub fn fire_echoes_recorded_here(&self, room: &str, recorded_here: &[String]) {
        let mut state = self.lock();
        let Some(local_room) = state.rooms.get_mut(room) else { return };
        for peer in recorded_here {
            if let Some(membership) = local_room.members.get_mut(peer.as_str()) {
                fire_echo(membership);
            }
        }
    }

    /// Starts reading a room's view again: the membership changes that arrive from now
    /// on are kept, to be applied to the member list read after this call (see
    /// [`Registry::complete_view_rebuild`]). False if the room has no view here yet (no
    /// local member completed a join; the first to do so builds it).
    pub fn begin_view_rebuild(&self, room: &str) -> bool {
        let mut state = self.lock();
        match state.rooms.get_mut(room) {
            Some(local_room) if local_room.view.is_some() => {
                local_room.rebuilding = Some(Vec::new());
                true
            }
            _ => false,
        }
    }

    /// Replaces the room's view with `members`, read after
    /// [`Registry::begin_view_rebuild`], and the changes that arrived since. A change
    /// the list already includes is applied again harmlessly: changes are applied in
    /// the order the channel carried them, so each peer ends as its last change says,
    /// or as the list says if none came.
    pub fn complete_view_rebuild(&self, room: &str, members: &[String]) {
        let mut state = self.lock();
        let Some(local_room) = state.rooms.get_mut(room) else { return };
        // The room emptied and was made again meanwhile: its first join built the view.
        let Some(changes) = local_room.rebuilding.take() else { return };
        local_room.view = Some(view_from(members, changes));
    }

    /// Ends a rebuild whose member list could not be read; the old view stays.
    pub fn abandon_view_rebuild(&self, room: &str) {
        if let Some(local_room) = self.lock().rooms.get_mut(room) {
            local_room.rebuilding = None;
        }
    }
}
