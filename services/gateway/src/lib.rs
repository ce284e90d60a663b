//! The signaling gateway: holds client WebSockets, authenticates them, and routes their
//! messages to peers on this node directly and to peers on other nodes over the bus.
//!
//! Layout, in the order a message meets them:
//! - [`listener`]: accepts TCP connections, with [`tls`] if configured, and serves
//!   HTTP on them with deadlines; [`batched_io`] reads and writes a plain socket in
//!   batches.
//! - [`http`]: `/ws`, `/healthz`, `/readyz`; [`web`]: the JavaScript SDK, the demo app
//!   and the development token endpoint.
//! - [`limits`]: which upgrades are admitted, and how much each connection may send.
//! - [`connection`]: one socket from upgrade to close; [`auth`] checks its token.
//! - [`lifecycle`]: a session opened, kept while its socket is lost, ended; [`resume`]
//!   takes it up again, here or from another gateway ([`handovers`]); [`replay`] numbers
//!   and keeps its messages.
//! - [`session`]: reads a client's requests in order; [`requests`] handles them.
//! - [`registry`]: local peers, their rooms, and each room's cluster-wide membership.
//! - [`subscriptions`]: reference-counted bus subscriptions per room.
//! - [`dispatch`]: hands envelopes arriving from the bus to the registry.
//! - [`outbound`] and [`writer`]: a client's bounded queue and the task draining it.
//! - [`render`]: the JSON frames pushed to clients.
//! - [`room_api`]: the room service, in-process or over gRPC ([`room_grpc`], spread
//!   across replicas that [`discovery`] finds: a static list, DNS or Kubernetes).
//! - [`turn`]: short-lived TURN credentials for `welcome`.
//! - [`node`]: assembles all of it for the configured mode; [`config`] says which;
//!   [`lease`] keeps the node's lease, [`recovery`] drops and regains its standing when
//!   it can no longer vouch for its state, [`drain`] shuts it down gracefully.
//! - [`metrics`]: what the gateway measures (served on the admin port, see
//!   `common::admin`).

pub mod auth;
pub mod batched_io;
pub mod cli;
pub mod config;
pub mod connection;
pub mod discovery;
pub mod dispatch;
pub mod drain;
pub mod handovers;
pub mod http;
pub mod lease;
pub mod lifecycle;
pub mod limits;
pub mod listener;
pub mod metrics;
pub mod node;
pub mod outbound;
pub mod recovery;
pub mod registry;
pub mod render;
pub mod replay;
pub mod requests;
pub mod resume;
pub mod room_api;
pub mod room_grpc;
pub mod session;
pub mod subscriptions;
pub mod tls;
pub mod turn;
pub mod web;
pub mod writer;

pub use config::GatewayConfig;
pub use node::{Gateway, run};
