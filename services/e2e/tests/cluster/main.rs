//! End-to-end tests of the cluster: real sockets, real WebSocket clients, and, for the
//! cluster variants, a real redis-server with a room service and three gateways.
//!
//! Scenarios written once run against each deployment: `embedded` (one gateway,
//! in-memory bus and rooms), `redis` (three gateways, so the peers of one scenario sit
//! on different gateways) and `redis_cluster` (the same on a Redis Cluster of three
//! masters: sharded room channels, rooms spread over the masters).

pub use e2e::{TestCluster, expect};

/// Runs each scenario `fn(&TestCluster)` on an embedded gateway, on three gateways over
/// one Redis, and on three gateways over a Redis Cluster of three masters; with `tweak: `
/// first, every gateway's configuration goes through `fn tweak(&mut GatewayConfig)`.
macro_rules! on_each_deployment {
    ($tweak:ident: $($scenario:ident),* $(,)?) => {$(
        mod $scenario {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn embedded() {
                let cluster = crate::TestCluster::embedded_with(super::$tweak).await;
                super::$scenario(&cluster).await;
                cluster.shutdown().await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn redis() {
                let cluster = crate::TestCluster::redis_with(3, Default::default(), super::$tweak).await;
                super::$scenario(&cluster).await;
                cluster.shutdown().await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn redis_cluster() {
                let cluster = crate::TestCluster::redis_cluster_with(3, Default::default(), super::$tweak).await;
                super::$scenario(&cluster).await;
                cluster.shutdown().await;
            }
        }
    )*};
    ($($scenario:ident),* $(,)?) => {
        /// The configuration as the test clusters have it.
        fn unchanged(_: &mut gateway::GatewayConfig) {}
        on_each_deployment!(unchanged: $($scenario),*);
    };
}

mod admission;
mod bad_input;
mod bystanders;
mod capacity;
mod connection_limits;
mod discovery;
mod grpc_access;
mod hostile;
mod isolation;
mod mesh;
mod negotiation;
mod probes;
mod processes;
mod rate_limits;
mod routing;
mod routing_properties;
mod server_api;
mod slow_consumer;
mod tls;
mod tokens;
mod welcome;
