//! The room service's errors, and their mapping to gRPC status codes.

use tonic::{Code, Status};

pub type Result<T, E = RoomError> = std::result::Result<T, E>;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RoomError {
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    NotFound(String),
    /// The room is at capacity; see [`RoomError::room_full`].
    #[error("{0}")]
    RoomFull(String),
    /// The room store (or the room service) cannot be reached; retryable.
    #[error("{0}")]
    Unavailable(String),
    #[error("missing or wrong API secret")]
    Unauthenticated,
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<bus::BusError> for RoomError {
    fn from(error: bus::BusError) -> Self {
        match error {
            bus::BusError::Unavailable(message) => Self::Unavailable(message),
        }
    }
}

impl From<RoomError> for Status {
    fn from(error: RoomError) -> Self {
        let code = match &error {
            RoomError::InvalidArgument(_) => Code::InvalidArgument,
            RoomError::NotFound(_) => Code::NotFound,
            RoomError::RoomFull(_) => Code::ResourceExhausted,
            RoomError::Unavailable(_) => Code::Unavailable,
            RoomError::Unauthenticated => Code::Unauthenticated,
            RoomError::Internal(_) => Code::Internal,
        };
        Status::new(code, error.to_string())
    }
}

impl From<Status> for RoomError {
    /// How a gRPC client of the room service sees its errors. Deadlines and transport
    /// failures count as unavailable: the call may be retried. tonic reports a
    /// connection lost in the middle of a call as `Unknown` ("transport error"); the
    /// room service never answers `Unknown` itself.
    fn from(status: Status) -> Self {
        let message = status.message().to_string();
        match status.code() {
            Code::InvalidArgument => Self::InvalidArgument(message),
            Code::NotFound => Self::NotFound(message),
            Code::ResourceExhausted => Self::RoomFull(message),
            Code::Unauthenticated => Self::Unauthenticated,
            Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled | Code::Aborted | Code::Unknown => {
                Self::Unavailable(message)
            }
            _ => Self::Internal(format!("{:?}: {message}", status.code())),
        }
    }
}

impl RoomError {
    pub fn room_full(room: &str, capacity: u32) -> Self {
        Self::RoomFull(format!("room {room:?} is full ({capacity} members)"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_survives_a_trip_through_grpc() {
        for error in [
            RoomError::InvalidArgument("bad room".into()),
            RoomError::NotFound("no room \"x\"".into()),
            RoomError::room_full("demo", 2),
            RoomError::Unavailable("room store unavailable: down".into()),
            RoomError::Unauthenticated,
        ] {
            assert_eq!(RoomError::from(Status::from(error.clone())), error);
        }
    }
}
