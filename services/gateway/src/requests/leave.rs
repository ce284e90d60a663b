//! `leave`, and leaving a room when a session ends.

use cluster_proto::room::LeaveReason;
use protocol::RequestId;

use super::RequestError;
use crate::Gateway;
use crate::render;
use crate::session::Session;

/// Leaves a room on request. Until the room service confirms, the peer stays a member
/// and keeps receiving the room's traffic; if the call fails it stays in the room and
/// may retry.
pub async fn handle(session: &Session, id: Option<RequestId>, room: String) -> Result<(), RequestError> {
    let gateway = &session.gateway;
    gateway.registry.begin_leave(&session.peer_id, &room)?;
    if let Err(error) = gateway.rooms.leave(&room, &session.peer_id, &gateway.node_id, LeaveReason::Left).await {
        gateway.registry.cancel_leave(&session.peer_id, &room);
        return Err(error.into());
    }
    if gateway.registry.remove_membership(&session.peer_id, &room) {
        gateway.subscriptions.release(&room).await;
    }
    if let Err(error) = gateway.sessions.remove_room(&session.peer_id, &room).await {
        // A stale entry only makes the janitor try a leave that finds nothing.
        tracing::debug!(%error, "could not remove the room from the session record");
    }
    session.reply(&render::left_message(id, &room, protocol::LeaveReason::Left));
    Ok(())
}

/// Leaves one room for a session that ended; false if the room service could not be
/// reached (the member stays in the room store until a later clean-up).
pub async fn after_disconnect(gateway: &Gateway, peer: &str, room: &str) -> bool {
    let left = gateway.rooms.leave(room, peer, &gateway.node_id, LeaveReason::Disconnected).await;
    if let Err(error) = &left {
        tracing::warn!(room, peer, %error, "leave after disconnect failed");
    }
    if gateway.registry.remove_membership(peer, room) {
        gateway.subscriptions.release(room).await;
    }
    left.is_ok()
}
