//! How a node reaches Redis: the settings shared by the bus, the room store and the
//! session store, and the connected clients built from them.

use std::time::Duration;

use fred::clients::Client;
use fred::interfaces::ClientLike;
use fred::types::Builder;
use fred::types::config::{Config, ReconnectPolicy, UnresponsiveConfig};
use serde::{Deserialize, Serialize};

use crate::{BusError, Keyspace};

/// Capacity of a command client's event channels (errors, reconnections and the
/// like, which nothing here reads in bulk): fred's own default.
const COMMAND_CLIENT_EVENTS: usize = 32;

/// How to reach Redis. Shared by the gateway and the room service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedisConfig {
    /// `redis://[user:password@]host:port[/db]`; `redis-sentinel://...` for a master
    /// found through Sentinels; `redis-cluster://host:port?node=host:port&...` for a
    /// Redis Cluster (room channels then use sharded pub/sub, Redis 7 or later). Unset:
    /// no Redis; the node runs with the in-memory bus and room store (embedded, single
    /// node).
    pub url: Option<String>,
    /// Password for Redis, taking precedence over one in the URL: it can come from a
    /// secret on its own and needs no URL escaping.
    pub password: Option<String>,
    /// Prefix of every key and channel name, so deployments can share one Redis.
    pub key_prefix: String,
    /// Deadline of every Redis command; past it the caller gets `unavailable`.
    #[serde(with = "humantime_serde")]
    pub command_timeout: Duration,
    /// Deadline of one connection attempt.
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// Longest pause between reconnection attempts (they back off exponentially).
    #[serde(with = "humantime_serde")]
    pub reconnect_max_delay: Duration,
    /// Capacity of the subscriber's internal message buffer. If the node's dispatcher
    /// falls this far behind, envelopes are lost (and logged).
    pub subscriber_buffer: usize,
    /// Most commands waiting to be written to Redis (they pile up while a connection is
    /// re-established); past it a command fails at once as unavailable, so an outage
    /// cannot grow memory without bound.
    pub command_queue: usize,
    /// In a Redis Cluster, how often the node reads the cluster's slot map to find the
    /// slots of its channels that moved to another master (a resharding, a failover):
    /// Redis drops a moved channel's subscribers, so until this check subscribes again
    /// on the new master, the room's messages do not reach this node.
    #[serde(with = "humantime_serde")]
    pub cluster_check_interval: Duration,
}

impl Default for RedisConfig {
    fn default() -> Self {
        Self {
            url: None,
            password: None,
            key_prefix: "sb:".into(),
            command_timeout: Duration::from_secs(2),
            connect_timeout: Duration::from_secs(2),
            reconnect_max_delay: Duration::from_secs(2),
            subscriber_buffer: 16_384,
            command_queue: 8_192,
            cluster_check_interval: Duration::from_secs(1),
        }
    }
}

impl RedisConfig {
    pub fn keyspace(&self) -> Keyspace {
        Keyspace::new(self.key_prefix.clone())
    }

    /// Whether the URL names a Redis Cluster (its scheme ends in `-cluster`).
    pub fn is_cluster(&self) -> bool {
        self.url
            .as_deref()
            .and_then(|url| url.split_once("://"))
            .is_some_and(|(scheme, _)| scheme.ends_with("-cluster"))
    }

    /// The command that publishes on a room's channel: `SPUBLISH` in a Redis Cluster,
    /// where a classic PUBLISH is copied to every node of the cluster while a sharded
    /// one only reaches the nodes serving the channel's slot; `PUBLISH` otherwise, which
    /// every Redis version has. The room store's scripts publish with it too.
    pub fn publish_command(&self) -> &'static str {
        if self.is_cluster() { "SPUBLISH" } else { "PUBLISH" }
    }

    /// Checks the URL without connecting: it parses, and names a deployment this code
    /// supports (a single Redis, with or without TLS, one managed by Sentinel, or a
    /// Redis Cluster).
    pub fn validate(&self) -> Result<(), String> {
        const SUPPORTED: [&str; 10] = [
            "redis",
            "rediss",
            "redis-sentinel",
            "redis-cluster",
            "rediss-cluster",
            "valkey",
            "valkeys",
            "valkey-sentinel",
            "valkey-cluster",
            "valkeys-cluster",
        ];
        if self.cluster_check_interval.is_zero() {
            return Err("redis.cluster_check_interval must be more than 0".into());
        }
        let Some(url) = &self.url else { return Ok(()) };
        let scheme = url.split_once("://").map_or("", |(scheme, _)| scheme);
        if !SUPPORTED.contains(&scheme) {
            return Err(format!("redis.url is invalid: the scheme must be one of {}", SUPPORTED.join(", ")));
        }
        Config::from_url(url).map(drop).map_err(|e| format!("redis.url is invalid: {e}"))
    }

    pub(super) fn builder(&self) -> Result<Builder, BusError> {
        let url = self.url.as_deref().ok_or_else(|| BusError::Unavailable("no Redis URL configured".into()))?;
        let mut config = Config::from_url(url).map_err(|e| BusError::Unavailable(format!("invalid Redis URL: {e}")))?;
        if let Some(password) = &self.password {
            config.password = Some(password.clone());
        }
        let mut builder = Builder::from_config(config);
        let max_delay = self.reconnect_max_delay.as_millis().clamp(1, u32::MAX as u128) as u32;
        builder
            // Retry forever: a Redis outage must not end the node, only make it unready.
            .set_policy(ReconnectPolicy::new_exponential(0, 50, max_delay, 2))
            .with_performance_config(|perf| {
                perf.default_command_timeout = self.command_timeout;
                // Every client has nine event channels of this capacity, set aside at
                // once (about 1 MiB each at the subscriber's 16,384): only the
                // subscriber's message channel needs that many, see `subscriber_builder`.
                perf.broadcast_channel_capacity = COMMAND_CLIENT_EVENTS;
            })
            .with_connection_config(|conn| {
                conn.max_command_buffer_len = self.command_queue.max(1);
                conn.connection_timeout = self.connect_timeout;
                conn.internal_command_timeout = self.command_timeout;
                // A connection that stops answering (a partition rather than a reset)
                // is closed and re-established instead of hanging every command.
                conn.unresponsive = UnresponsiveConfig {
                    max_timeout: Some(self.command_timeout * 2),
                    interval: self.command_timeout / 2,
                };
                // A command in flight when the connection drops is not sent again: the
                // caller has already been told it failed, or will be by the timeout.
                conn.max_command_attempts = 1;
                // Commands are small and pipelined on one connection: without it, one
                // written while the previous is unacknowledged waits for Redis's
                // delayed ACK.
                conn.tcp.nodelay = Some(true);
            });
        Ok(builder)
    }

    /// The builder of the bus's subscriber client, whose message channel buffers
    /// `subscriber_buffer` messages.
    pub(super) fn subscriber_builder(&self) -> Result<Builder, BusError> {
        let mut builder = self.builder()?;
        builder.with_performance_config(|perf| perf.broadcast_channel_capacity = self.subscriber_buffer);
        Ok(builder)
    }

    /// A connected command client. Fails if the first connection cannot be made within
    /// the connect timeout; after that it reconnects by itself.
    pub async fn connect_client(&self) -> Result<Client, BusError> {
        let client = self.builder()?.build().map_err(unavailable)?;
        start(&client, self.connect_timeout).await?;
        Ok(client)
    }
}

pub(super) fn unavailable(error: fred::error::Error) -> BusError {
    BusError::Unavailable(error.to_string())
}

/// Connects and waits for the first connection. fred's `wait_for_connect` reads the
/// state, then subscribes to the next connect event: a connection made in between goes
/// unnoticed and the wait lasts until the next one. So the wait is short and repeated,
/// looking at the state each time.
pub(super) async fn start(client: &impl ClientLike, timeout: Duration) -> Result<(), BusError> {
    const LOOK_AGAIN: Duration = Duration::from_millis(100);
    client.connect();
    let deadline = tokio::time::Instant::now() + timeout;
    while tokio::time::Instant::now() < deadline {
        if client.is_connected() {
            return Ok(());
        }
        if let Ok(result) = tokio::time::timeout(LOOK_AGAIN, client.wait_for_connect()).await {
            return result.map_err(unavailable);
        }
    }
    Err(BusError::Unavailable(format!("no connection to Redis within {timeout:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_url(url: &str) -> RedisConfig {
        RedisConfig { url: Some(url.into()), ..RedisConfig::default() }
    }

    /// fred sets aside every event channel's capacity at once, nine per client: only
    /// the subscriber buffers many messages.
    #[test]
    fn only_the_subscriber_buffers_many_events() {
        let config = RedisConfig { subscriber_buffer: 4_096, ..with_url("redis://127.0.0.1:6379") };
        let capacity = |builder: Builder| builder.get_performance_config().broadcast_channel_capacity;
        assert_eq!(capacity(config.builder().unwrap()), COMMAND_CLIENT_EVENTS);
        assert_eq!(capacity(config.subscriber_builder().unwrap()), 4_096);
    }

    #[test]
    fn accepts_single_tls_and_sentinel_urls() {
        for url in [
            "redis://127.0.0.1:6379/0",
            "rediss://user:pw@redis.example:6380",
            "redis-sentinel://10.0.0.1:26379/0?sentinelServiceName=mymaster&node=10.0.0.2:26379",
        ] {
            assert_eq!(with_url(url).validate(), Ok(()), "{url}");
        }
        assert_eq!(RedisConfig::default().validate(), Ok(()), "no URL: nothing to check");
    }

    #[test]
    fn a_cluster_url_is_accepted_and_publishes_sharded() {
        let cluster = with_url("redis-cluster://127.0.0.1:7000?node=127.0.0.1:7001&node=127.0.0.1:7002");
        assert_eq!(cluster.validate(), Ok(()));
        assert!(cluster.is_cluster());
        assert_eq!(cluster.publish_command(), "SPUBLISH");
        let single = with_url("redis://127.0.0.1:6379");
        assert!(!single.is_cluster());
        assert_eq!(single.publish_command(), "PUBLISH");
        assert!(!RedisConfig::default().is_cluster());
    }

    #[test]
    fn refuses_malformed_urls_with_the_reason() {
        for malformed in ["http://127.0.0.1:6379", "127.0.0.1:6379", "redis://[::1"] {
            let error = with_url(malformed).validate().unwrap_err();
            assert!(error.starts_with("redis.url is invalid"), "{malformed}: {error}");
        }
    }
}
