//! Wire formats between cluster nodes, generated from `proto/` at build time.
//!
//! - [`room`]: the room service's gRPC API (`signaling.room.v1`), client and server.
//! - [`bus`]: the envelope that crosses the message bus (`signaling.bus.v1`).
//!
//! Hand-written code stays out of this crate; the bus crate owns envelope framing and
//! the room-service crate owns the mapping between its errors and gRPC status codes.

/// `signaling.room.v1`: the room service API.
pub mod room {
    tonic::include_proto!("signaling.room.v1");
}

/// `signaling.bus.v1`: the bus envelope.
pub mod bus {
    tonic::include_proto!("signaling.bus.v1");
}
