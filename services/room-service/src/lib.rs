//! The room service: room policy and membership for the signaling cluster.
//!
//! Gateways call it on every join and leave; an application's backend calls it to
//! inspect rooms, remove peers and push data into rooms. It keeps no state of its own:
//! everything lives in the room store, so replicas are interchangeable.
//!
//! Layout:
//! - [`rooms`]: the logic (validation, capacity, presence events) over a store.
//! - [`store`]: the `RoomStore` trait and its in-memory and Redis implementations.
//! - [`sessions`]: the `SessionStore` trait (which gateway holds which peer, node
//!   leases) and its implementations; [`janitor`] cleans up after dead nodes.
//! - [`grpc`]: the tonic service, health service and API-secret check.
//! - [`config`]: configuration and flags of the `room-service` binary.
//! - [`metrics`]: rooms, members and clean-ups (gRPC calls are measured by a layer).
//! - [`error`]: `RoomError` and its mapping to gRPC status codes.

pub mod config;
pub mod error;
pub mod grpc;
pub mod janitor;
pub mod metrics;
pub mod rooms;
pub mod sessions;
pub mod store;

pub use error::RoomError;
pub use janitor::Janitor;
pub use rooms::{Rooms, RoomsConfig};
