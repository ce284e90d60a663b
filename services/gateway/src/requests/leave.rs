//! `leave`, and leaving every room when the socket closes.

use cluster_proto::room::LeaveReason;
use protocol::RequestId;

use super::RequestError;
use crate::render;
use crate::session::Session;

/// Leaves a room on request. Until the room service confirms, the peer stays a member
/// and keeps receiving the room's traffic; if the call fails it stays in the room and
/// may retry.
pub async fn handle(session: &Session, id: Option<RequestId>, room: String) -> Result<(), RequestError> {
    let gateway = &session.gateway;
    gateway.registry.begin_leave(&session.peer_id, &room)?;
    if let Err(error) = gateway.rooms.leave(&room, &session.peer_id, LeaveReason::Left).await {
        gateway.registry.cancel_leave(&session.peer_id, &room);
        return Err(error.into());
    }
    if gateway.registry.remove_membership(&session.peer_id, &room) {
        gateway.subscriptions.release(&room).await;
    }
    session.sender.send(render::left(id, &room, protocol::LeaveReason::Left));
    Ok(())
}

/// Leaves one room for a peer whose socket has closed.
pub async fn after_disconnect(session: &Session, room: &str) {
    let gateway = &session.gateway;
    if let Err(error) = gateway.rooms.leave(room, &session.peer_id, LeaveReason::Disconnected).await {
        // The member stays in the room store; the others keep seeing it.
        tracing::warn!(room, peer = %session.peer_id, %error, "leave after disconnect failed");
    }
    if gateway.registry.remove_membership(&session.peer_id, room) {
        gateway.subscriptions.release(room).await;
    }
}
