//! What the store suites share.

use bus::RedisConfig;
use testkit::{RedisCluster, RedisServer};

/// Runs each scenario three times, as `<scenario>::memory`, `<scenario>::redis` and
/// `<scenario>::redis_cluster`, on the suite's `Fixture::memory()` and
/// `Fixture::on_redis(..)` with a single Redis or a Redis Cluster.
macro_rules! for_every_store {
    ($($scenario:ident),* $(,)?) => {$(
        mod $scenario {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn memory() {
                super::$scenario(super::Fixture::memory().await).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn redis() {
                super::$scenario(super::Fixture::on_redis(super::support::TestRedis::server().await).await).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn redis_cluster() {
                super::$scenario(super::Fixture::on_redis(super::support::TestRedis::cluster().await).await).await
            }
        }
    )*};
}

/// The Redis of one test, killed when the test ends.
pub enum TestRedis {
    Server(RedisServer),
    /// Three masters: room channels are sharded, a room's keys sit on one of them.
    Cluster(RedisCluster),
}

impl TestRedis {
    pub async fn server() -> Self {
        Self::Server(RedisServer::start().await)
    }

    pub async fn cluster() -> Self {
        Self::Cluster(RedisCluster::start(3, 0).await)
    }

    pub fn config(&self) -> RedisConfig {
        let url = match self {
            Self::Server(server) => server.url(),
            Self::Cluster(cluster) => cluster.url(),
        };
        RedisConfig { url: Some(url), ..RedisConfig::default() }
    }
}
