//! WebSocket close codes the gateway sends, and what a client should do about each.

/// A close code of protocol v1. Codes below 4000 are the standard ones of RFC 6455;
/// 4000–4099 are this protocol's own. A client should reconnect after the codes for
/// which [`CloseCode::should_reconnect`] is true, with backoff, and give up otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u16)]
pub enum CloseCode {
    /// The client closed, or the server ended the session normally.
    Normal = 1000,
    /// The gateway is shutting down; reconnect (to any gateway).
    GoingAway = 1001,
    /// The client broke the WebSocket protocol (e.g. an unmasked frame).
    ProtocolError = 1002,
    /// A text frame that is not valid UTF-8.
    InvalidData = 1007,
    /// The client kept sending faster than its rate limit although refused
    /// (`rate_limited`); the session ends. Reconnecting at the same pace will not help.
    PolicyViolation = 1008,
    /// A frame exceeded the configured maximum message size.
    TooLarge = 1009,
    /// An unexpected server failure.
    Internal = 1011,
    /// A dependency (Redis, the room service) cannot be reached right now; reconnect
    /// with backoff.
    TryAgainLater = 1013,
    /// Missing, invalid or expired token, or no `auth` message within the handshake
    /// timeout. Reconnecting with the same token will not help.
    Unauthorized = 4001,
    /// The client read too slowly: its send queue overflowed and the gateway dropped it
    /// rather than buffer without bound. Reconnecting is fine.
    SlowConsumer = 4008,
    /// Nothing was received for longer than the idle timeout (not even a pong).
    IdleTimeout = 4009,
    /// The same session was resumed on another connection; this one is obsolete.
    SessionMoved = 4010,
    /// The session to resume is unknown or expired, and no token was given to start a
    /// new one. Connect again with a token.
    ResumeFailed = 4011,
}

impl CloseCode {
    pub fn code(self) -> u16 {
        self as u16
    }

    /// Parses a received close code; `None` for codes this protocol does not define.
    pub fn from_code(code: u16) -> Option<Self> {
        Some(match code {
            1000 => Self::Normal,
            1001 => Self::GoingAway,
            1002 => Self::ProtocolError,
            1007 => Self::InvalidData,
            1008 => Self::PolicyViolation,
            1009 => Self::TooLarge,
            1011 => Self::Internal,
            1013 => Self::TryAgainLater,
            4001 => Self::Unauthorized,
            4008 => Self::SlowConsumer,
            4009 => Self::IdleTimeout,
            4010 => Self::SessionMoved,
            4011 => Self::ResumeFailed,
            _ => return None,
        })
    }

    /// The short reason text sent in the close frame.
    pub fn reason(self) -> &'static str {
        match self {
            Self::Normal => "bye",
            Self::GoingAway => "server shutting down",
            Self::ProtocolError => "websocket protocol error",
            Self::InvalidData => "text frame is not valid UTF-8",
            Self::PolicyViolation => "rate limit exceeded",
            Self::TooLarge => "message too large",
            Self::Internal => "internal error",
            Self::TryAgainLater => "try again later",
            Self::Unauthorized => "unauthorized",
            Self::SlowConsumer => "slow consumer: send queue full",
            Self::IdleTimeout => "idle timeout",
            Self::SessionMoved => "session resumed on another connection",
            Self::ResumeFailed => "no session to resume",
        }
    }

    pub fn should_reconnect(self) -> bool {
        matches!(self, Self::GoingAway | Self::Internal | Self::TryAgainLater | Self::SlowConsumer | Self::IdleTimeout)
    }
}
