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
    /// A frame exceeded the configured maximum message size.
    TooLarge = 1009,
    /// An unexpected server failure.
    Internal = 1011,
    /// Missing, invalid or expired token, or no `auth` message within the handshake
    /// timeout. Reconnecting with the same token will not help.
    Unauthorized = 4001,
    /// The client read too slowly: its send queue overflowed and the gateway dropped it
    /// rather than buffer without bound. Reconnecting is fine.
    SlowConsumer = 4008,
    /// Nothing was received for longer than the idle timeout (not even a pong).
    IdleTimeout = 4009,
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
            1009 => Self::TooLarge,
            1011 => Self::Internal,
            4001 => Self::Unauthorized,
            4008 => Self::SlowConsumer,
            4009 => Self::IdleTimeout,
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
            Self::TooLarge => "message too large",
            Self::Internal => "internal error",
            Self::Unauthorized => "unauthorized",
            Self::SlowConsumer => "slow consumer: send queue full",
            Self::IdleTimeout => "idle timeout",
        }
    }

    pub fn should_reconnect(self) -> bool {
        matches!(self, Self::GoingAway | Self::Internal | Self::SlowConsumer | Self::IdleTimeout)
    }
}
