//! Handlers of the client requests that touch rooms, one file each, and [`begin`],
//! which hands a request to its handler.
//!
//! A handler either succeeds (and has queued its reply, if any) or returns a
//! [`RequestError`], which the session turns into an `error` frame echoing the
//! request's id.

pub mod handling;
pub mod in_progress;
pub mod join;
pub mod leave;
pub mod send;

use protocol::{ErrorCode, Request, RequestFrame, ServerMessage};
use room_service::RoomError;

use crate::registry::Refusal;
use crate::session::Session;
use handling::Pending;

/// Handles what of a request needs no waiting, and returns what is left to wait for.
///
/// Synchronous, so that what a request waits for is all of it that stays in the
/// connection's task meanwhile: an idle connection pays for its task's largest state as
/// long as it lives, and a request handled inline would be that state.
pub fn begin(session: &Session, frame: RequestFrame) -> Result<Pending<'_>, RequestError> {
    let id = frame.id;
    match frame.request {
        // Boxed: a join or leave waits on the room service and the bus, and its large
        // future inline would make every connection's task that large. Signals and
        // broadcasts, the hot path, wait only for their publish, inline.
        Request::Join { room, metadata } => Ok(Pending::Boxed(Box::pin(join::handle(session, id, room, metadata)))),
        Request::Leave { room } => Ok(Pending::Boxed(Box::pin(leave::handle(session, id, room)))),
        Request::Signal { room, to, kind, data } => {
            Ok(send::signal(session, id, room, to, kind, data)?.map_or(Pending::Nothing, Pending::Publish))
        }
        Request::Broadcast { room, data } => send::broadcast(session, id, room, data).map(Pending::Publish),
        Request::Ping => {
            session.reply(&ServerMessage::Pong { id });
            Ok(Pending::Nothing)
        }
        Request::Received { seq } => {
            session.gateway.registry.acknowledge(&session.peer_id, seq);
            Ok(Pending::Nothing)
        }
        Request::Auth { .. } => Err(RequestError::new(ErrorCode::BadRequest, "already authenticated")),
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct RequestError {
    pub code: ErrorCode,
    pub message: String,
}

impl RequestError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { code, message: message.into() }
    }
}

impl From<Refusal> for RequestError {
    fn from(refusal: Refusal) -> Self {
        Self { code: refusal.code, message: refusal.message }
    }
}

impl From<RoomError> for RequestError {
    fn from(error: RoomError) -> Self {
        let code = match &error {
            RoomError::InvalidArgument(_) => ErrorCode::BadRequest,
            RoomError::NotFound(_) => ErrorCode::NotFound,
            RoomError::RoomFull(_) => ErrorCode::RoomFull,
            RoomError::Unavailable(_) => ErrorCode::Unavailable,
            // The gateway's own credentials were refused: not the client's fault.
            RoomError::Unauthenticated | RoomError::Internal(_) => {
                tracing::error!(%error, "room service call failed");
                ErrorCode::Internal
            }
        };
        Self { code, message: error.to_string() }
    }
}

impl From<bus::BusError> for RequestError {
    fn from(error: bus::BusError) -> Self {
        Self { code: ErrorCode::Unavailable, message: error.to_string() }
    }
}
