//! Handlers of the client requests that touch rooms, one file each.
//!
//! A handler either succeeds (and has queued its reply, if any) or returns a
//! [`RequestError`], which the session turns into an `error` frame echoing the
//! request's id.

pub mod join;
pub mod leave;
pub mod send;

use protocol::ErrorCode;
use room_service::RoomError;

use crate::registry::Refusal;

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
