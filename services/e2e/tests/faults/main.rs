//! Faults, each caused for real: connections dropped, gateways killed with SIGKILL or
//! drained with SIGTERM, redis-server frozen or killed, a gateway cut off from Redis,
//! a room-service replica killed, a Redis Cluster slot moved under live rooms. docs/reliability.md states the guarantees these test.

pub use e2e::{TestCluster, expect};

mod drain;
mod node_loss;
mod partition;
mod redis_outage;
mod resharding;
mod resume;
mod room_replicas;
