//! The stable error codes carried by `error` frames.

use serde::{Deserialize, Serialize};

/// Why a request failed. The wire form is the snake_case name (`"room_full"`); it never
/// changes within protocol v1. docs/protocol.md lists when each one is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The frame is not a valid request: malformed JSON, unknown type, missing or
    /// invalid field, binary frame.
    BadRequest,
    /// No valid token: missing, badly signed, expired or not yet valid.
    Unauthorized,
    /// The token is valid but does not allow this (e.g. joining a room it has no grant
    /// for), or the peer is not in the room it addresses.
    Forbidden,
    /// The addressed peer or room does not exist (from the sender's point of view).
    NotFound,
    /// The room is at capacity.
    RoomFull,
    /// A field or the whole request is larger than the configured limit.
    TooLarge,
    /// The client sends faster than allowed.
    RateLimited,
    /// A dependency (room store, bus, room service) cannot be reached. Retry later.
    Unavailable,
    /// A bug or an unexpected failure on the server.
    Internal,
}

impl ErrorCode {
    /// Every code, in the order of the documentation.
    pub const ALL: [ErrorCode; 9] = [
        Self::BadRequest,
        Self::Unauthorized,
        Self::Forbidden,
        Self::NotFound,
        Self::RoomFull,
        Self::TooLarge,
        Self::RateLimited,
        Self::Unavailable,
        Self::Internal,
    ];

    /// The wire name, e.g. `"room_full"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BadRequest => "bad_request",
            Self::Unauthorized => "unauthorized",
            Self::Forbidden => "forbidden",
            Self::NotFound => "not_found",
            Self::RoomFull => "room_full",
            Self::TooLarge => "too_large",
            Self::RateLimited => "rate_limited",
            Self::Unavailable => "unavailable",
            Self::Internal => "internal",
        }
    }

    /// Whether the same request may succeed if retried later without change.
    pub fn is_retryable(self) -> bool {
        matches!(self, Self::RoomFull | Self::RateLimited | Self::Unavailable | Self::Internal)
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_names_match_as_str() {
        for code in ErrorCode::ALL {
            let json = serde_json::to_string(&code).unwrap();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
            assert_eq!(serde_json::from_str::<ErrorCode>(&json).unwrap(), code);
        }
    }
}
