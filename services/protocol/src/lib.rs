//! Client protocol v1 of the signaling cluster: JSON text frames over a WebSocket.
//!
//! The normative description, with worked examples, is `docs/protocol.md`; this crate is
//! its executable form, shared by the gateway (which parses requests and renders
//! replies), the tests and the load tester (which use [`client::Client`]).
//!
//! Layout:
//! - [`request`]: what a client sends, and the gateway's parser for it.
//! - [`server_message`]: what the gateway sends.
//! - [`error_code`] and [`close_code`]: the stable error codes of `error` frames and the
//!   WebSocket close codes the gateway uses.
//! - [`names`]: validation of room names, peer ids and signal kinds.
//! - [`json`]: JSON values relayed untouched ([`JsonData`]) and request ids.
//! - [`token`]: the claims of a client token, and HS256 signing.
//! - [`client`]: a small async client on tokio-tungstenite.

pub mod client;
pub mod close_code;
pub mod error_code;
pub mod json;
pub mod names;
pub mod request;
pub mod server_message;
pub mod token;

pub use close_code::CloseCode;
pub use error_code::ErrorCode;
pub use json::{JsonData, RequestId};
pub use request::{Request, RequestFrame, RequestParseError};
pub use server_message::{
    IceServer, LeaveReason, Limits, PeerInfo, Resumed, Sequenced, ServerInfo, ServerMessage, Welcome,
};

/// The protocol version this crate speaks; sent in `welcome`.
pub const PROTOCOL_VERSION: u32 = 1;

/// Well-known signal kinds. Any other kind that passes [`names::validate_signal_kind`]
/// is relayed as an application-defined kind.
pub mod kinds {
    pub const OFFER: &str = "offer";
    pub const ANSWER: &str = "answer";
    pub const CANDIDATE: &str = "candidate";
    pub const END_OF_CANDIDATES: &str = "end_of_candidates";
}
