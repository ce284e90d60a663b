//! `join`: enter a room and learn who is there.

use cluster_proto::room::{LeaveReason, Member};
use protocol::names::validate_room_name;
use protocol::{ErrorCode, JsonData, RequestId, ServerMessage};
use room_service::RoomError;

use super::RequestError;
use crate::recovery::Leftover;
use crate::registry::Completion;
use crate::render;
use crate::session::Session;

/// Joins in four steps (see the registry's module docs for why): subscribe to the
/// room's channel, register the pending membership, call the room service, wait for
/// the join's own echo on the bus. Any failure undoes the earlier steps.
pub async fn handle(
    session: &Session,
    id: Option<RequestId>,
    room: String,
    metadata: Option<JsonData>,
) -> Result<(), RequestError> {
    let gateway = &session.gateway;
    validate_room_name(&room).map_err(|message| RequestError::new(ErrorCode::BadRequest, message))?;
    if !session.identity.may_join(&room) {
        return Err(RequestError::new(ErrorCode::Forbidden, format!("the token does not grant room {room:?}")));
    }
    let metadata_json = metadata_json(metadata, gateway.config.limits.max_metadata_bytes)?;
    if !gateway.standing.serving() {
        return Err(RequestError::new(ErrorCode::Unavailable, "this gateway is rejoining the cluster"));
    }

    let echoed =
        gateway.registry.begin_join(&session.peer_id, &room, gateway.config.limits.max_rooms_per_connection)?;
    if let Err(error) = gateway.subscriptions.acquire(&room).await {
        gateway.registry.remove_membership(&session.peer_id, &room);
        return Err(error.into());
    }
    // Recorded before the join, so that whatever happens next the membership can be
    // found: by a resume on another gateway, or by the janitor if this gateway dies.
    match gateway.sessions.add_room(&session.peer_id, &gateway.node_id, &room).await {
        Ok(true) => {}
        // Ended (or moved) meanwhile: this connection is on its way out.
        Ok(false) => {
            undo(session, &room).await;
            return Err(RequestError::new(ErrorCode::Unavailable, "the session ended"));
        }
        Err(error) => {
            undo(session, &room).await;
            return Err(error.into());
        }
    }
    let member = Member {
        peer_id: session.peer_id.to_string(),
        identity: session.identity.identity.clone(),
        name: session.identity.name.clone().unwrap_or_default(),
        metadata_json,
        node_id: gateway.node_id.to_string(),
        joined_at_ms: 0,
    };
    let outcome = match gateway.rooms.join(&room, member).await {
        Ok(outcome) => outcome,
        Err(error @ RoomError::Unavailable(_)) => {
            take_back_unanswered(session, &room).await;
            return Err(error.into());
        }
        Err(error) => {
            undo(session, &room).await;
            return Err(error.into());
        }
    };
    if !matches!(tokio::time::timeout(gateway.config.bus.echo_timeout, echoed).await, Ok(Ok(()))) {
        // In the room, but this node cannot hear the room: take the join back rather
        // than leave a member that would miss messages.
        if let Err(error) =
            gateway.rooms.leave(&room, &session.peer_id, &gateway.node_id, LeaveReason::Disconnected).await
        {
            tracing::warn!(room, %error, "could not take back a join whose echo never came");
        }
        undo(session, &room).await;
        return Err(RequestError::new(ErrorCode::Unavailable, "the message bus did not confirm the join in time"));
    }

    let mut members = outcome.members;
    members.sort_by(|a, b| (a.joined_at_ms, &a.peer_id).cmp(&(b.joined_at_ms, &b.peer_id)));
    let member_ids: Vec<String> = members.iter().map(|member| member.peer_id.clone()).collect();
    let peers = members.iter().filter(|member| member.peer_id != *session.peer_id).map(render::peer_info).collect();
    let joined = render::message(&ServerMessage::Joined { id, room: room.clone(), peers });
    match gateway.registry.complete_join(&session.peer_id, &room, &member_ids, joined) {
        Completion::Live => {}
        Completion::RemovedMeanwhile => gateway.subscriptions.release(&room).await,
        // The session's end may have sent its leave before this join reached the room
        // store: take the join back too (a no-op if the leave came later).
        Completion::SessionEnded => {
            if let Err(error) =
                gateway.rooms.leave(&room, &session.peer_id, &gateway.node_id, LeaveReason::Disconnected).await
            {
                tracing::warn!(room, %error, "could not take back the join of a session that ended");
            }
        }
    }
    Ok(())
}

/// A join call that failed without an answer may still have happened (or happen yet,
/// if the command is stuck in a queue): it is taken back, now or, failing that, later.
/// The room stays in the session's record, so that the session's end (or the janitor)
/// leaves it once more, in case the join lands after all that.
async fn take_back_unanswered(session: &Session, room: &str) {
    let gateway = &session.gateway;
    if session.gateway.registry.remove_membership(&session.peer_id, room) {
        gateway.subscriptions.release(room).await;
    }
    if gateway.rooms.leave(room, &session.peer_id, &gateway.node_id, LeaveReason::Disconnected).await.is_err() {
        let leftover = Leftover::Membership { peer: session.peer_id.to_string(), room: room.to_string() };
        gateway.standing.note_leftover(leftover);
    }
}

async fn undo(session: &Session, room: &str) {
    if session.gateway.registry.remove_membership(&session.peer_id, room) {
        session.gateway.subscriptions.release(room).await;
    }
    let _ = session.gateway.sessions.remove_room(&session.peer_id, room).await;
}

/// The metadata as the room service stores it: JSON text, empty for none.
fn metadata_json(metadata: Option<JsonData>, max_bytes: usize) -> Result<String, RequestError> {
    let Some(metadata) = metadata else { return Ok(String::new()) };
    if metadata.as_str().len() > max_bytes {
        return Err(RequestError::new(ErrorCode::TooLarge, format!("metadata is larger than {max_bytes} bytes")));
    }
    Ok(metadata.as_str().to_string())
}
