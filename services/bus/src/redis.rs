//! Redis pub/sub as the bus, and the Redis connection settings shared with the room
//! store.
//!
//! One publisher connection and one subscriber connection per node. The subscriber is
//! fred's `SubscriberClient` with `manage_subscriptions`, which re-runs SUBSCRIBE for
//! every tracked channel after a reconnect; a plain client reconnects but silently
//! receives nothing afterwards (see ../shared/dependencies.md). Its messages are read by
//! one task that only forwards bytes, so a slow client can never stall the connection
//! Redis writes to.

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use fred::clients::{Client, SubscriberClient};
use fred::interfaces::{ClientLike, EventInterface, PubsubInterface};
use fred::types::config::{Config, ReconnectPolicy, UnresponsiveConfig};
use fred::types::{Builder, Value};
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, broadcast::error::RecvError, mpsc, watch};

use crate::{Bus, BusError, Incoming, Keyspace, Topic};

/// How to reach Redis. Shared by the gateway and the room service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedisConfig {
    /// `redis://[user:password@]host:port[/db]`. Unset: no Redis; the node runs with the
    /// in-memory bus and room store (embedded, single node).
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
        }
    }
}

impl RedisConfig {
    pub fn keyspace(&self) -> Keyspace {
        Keyspace::new(self.key_prefix.clone())
    }

    /// Checks the URL without connecting: it parses, and names a deployment this code
    /// supports (a single Redis, with or without TLS, or one managed by Sentinel).
    pub fn validate(&self) -> Result<(), String> {
        const SUPPORTED: [&str; 6] = ["redis", "rediss", "redis-sentinel", "valkey", "valkeys", "valkey-sentinel"];
        let Some(url) = &self.url else { return Ok(()) };
        let scheme = url.split_once("://").map_or("", |(scheme, _)| scheme);
        // Room scripts touch several keys of one room and the bus uses plain PUBLISH;
        // neither is written for Redis Cluster's hash slots yet.
        if scheme.ends_with("-cluster") {
            return Err("redis.url names a Redis Cluster, which is not supported yet".into());
        }
        if !SUPPORTED.contains(&scheme) {
            return Err(format!("redis.url is invalid: the scheme must be one of {}", SUPPORTED.join(", ")));
        }
        Config::from_url(url).map(drop).map_err(|e| format!("redis.url is invalid: {e}"))
    }

    fn builder(&self) -> Result<Builder, BusError> {
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
                perf.broadcast_channel_capacity = self.subscriber_buffer;
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

    /// A connected command client. Fails if the first connection cannot be made within
    /// the connect timeout; after that it reconnects by itself.
    pub async fn connect_client(&self) -> Result<Client, BusError> {
        let client = self.builder()?.build().map_err(unavailable)?;
        start(&client, self.connect_timeout).await?;
        Ok(client)
    }
}

fn unavailable(error: fred::error::Error) -> BusError {
    BusError::Unavailable(error.to_string())
}

/// Connects and waits for the first connection. fred's `wait_for_connect` reads the
/// state, then subscribes to the next connect event: a connection made in between goes
/// unnoticed and the wait lasts until the next one. So the wait is short and repeated,
/// looking at the state each time.
async fn start(client: &impl ClientLike, timeout: Duration) -> Result<(), BusError> {
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

/// The Redis pub/sub bus of one node.
pub struct RedisBus {
    keys: Keyspace,
    publisher: Client,
    subscriber: SubscriberClient,
    interruptions: watch::Receiver<u64>,
}

impl RedisBus {
    /// Connects the publisher and subscriber; incoming envelopes are queued on the
    /// returned stream (at most `incoming_queue` waiting).
    pub async fn connect(config: &RedisConfig, incoming_queue: usize) -> Result<(Self, Incoming), BusError> {
        let publisher = config.connect_client().await?;
        let subscriber = config.builder()?.build_subscriber_client().map_err(unavailable)?;
        let (sender, receiver) = mpsc::channel(incoming_queue.max(1));
        let (interrupted, interruptions) = watch::channel(0);
        // Listen to the message and connection streams before connecting so nothing is
        // missed.
        tokio::spawn(forward_messages(subscriber.message_rx(), sender, interrupted.clone()));
        tokio::spawn(count_reconnections(subscriber.reconnect_rx(), interrupted));
        start(&subscriber, config.connect_timeout).await?;
        subscriber.manage_subscriptions();
        Ok((Self { keys: config.keyspace(), publisher, subscriber, interruptions }, receiver))
    }
}

/// Every connection of the subscriber after its first is a reconnection: whatever was
/// published between losing the old connection and resubscribing on the new one was
/// not received. (fred re-subscribes by itself, see above.)
async fn count_reconnections(
    mut connections: broadcast::Receiver<fred::types::config::Server>,
    interrupted: watch::Sender<u64>,
) {
    let mut first = true;
    loop {
        match connections.recv().await {
            Ok(server) if first => {
                tracing::debug!(%server, "bus subscriber connected");
                first = false;
            }
            Ok(server) => {
                tracing::warn!(%server, "bus subscriber reconnected: messages published meanwhile are lost");
                interrupted.send_modify(|count| *count += 1);
            }
            Err(RecvError::Lagged(_)) => interrupted.send_modify(|count| *count += 1),
            Err(RecvError::Closed) => return,
        }
    }
}

/// Moves message payloads from fred's broadcast channel to the node's queue.
async fn forward_messages(
    mut messages: broadcast::Receiver<fred::types::Message>,
    sink: mpsc::Sender<Bytes>,
    interrupted: watch::Sender<u64>,
) {
    loop {
        let payload = match messages.recv().await {
            Ok(message) => match message.value {
                Value::Bytes(bytes) => bytes,
                Value::String(text) => text.into_inner(),
                other => {
                    tracing::warn!(kind = ?other.kind(), "ignoring a non-binary bus message");
                    continue;
                }
            },
            Err(RecvError::Lagged(lost)) => {
                tracing::error!(lost, "bus subscriber fell behind: envelopes lost");
                interrupted.send_modify(|count| *count += 1);
                continue;
            }
            Err(RecvError::Closed) => return,
        };
        if sink.send(payload).await.is_err() {
            return;
        }
    }
}

#[async_trait]
impl Bus for RedisBus {
    async fn publish(&self, topic: Topic<'_>, envelope: Bytes) -> Result<(), BusError> {
        // The receiver count PUBLISH returns is not a delivery count (in Redis Cluster it
        // is 0 even when delivered), so it is ignored.
        let _: Value = self.publisher.publish(self.keys.channel(topic), envelope).await.map_err(unavailable)?;
        Ok(())
    }

    async fn subscribe(&self, topic: Topic<'_>) -> Result<(), BusError> {
        self.subscriber.subscribe(self.keys.channel(topic)).await.map_err(unavailable)?;
        // fred answers SUBSCRIBE as soon as it has queued the command, before Redis has
        // seen it, so a publish right after could still miss this node. Redis answers
        // one connection's commands in order: once a PING sent after the SUBSCRIBE on
        // the same connection is answered, the subscription is in effect.
        let _: Value = self.subscriber.ping(None).await.map_err(unavailable)?;
        Ok(())
    }

    async fn unsubscribe(&self, topic: Topic<'_>) -> Result<(), BusError> {
        self.subscriber.unsubscribe(self.keys.channel(topic)).await.map_err(unavailable)
    }

    async fn check(&self) -> Result<(), BusError> {
        if !self.subscriber.is_connected() {
            return Err(BusError::Unavailable("the subscriber connection to Redis is down".into()));
        }
        let _: Value = self.publisher.ping(None).await.map_err(unavailable)?;
        Ok(())
    }

    fn interruptions(&self) -> watch::Receiver<u64> {
        self.interruptions.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_url(url: &str) -> RedisConfig {
        RedisConfig { url: Some(url.into()), ..RedisConfig::default() }
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
    fn refuses_cluster_and_malformed_urls_with_the_reason() {
        let cluster = with_url("redis-cluster://127.0.0.1:7000").validate().unwrap_err();
        assert!(cluster.contains("Redis Cluster"), "{cluster}");
        for malformed in ["http://127.0.0.1:6379", "127.0.0.1:6379", "redis://[::1"] {
            let error = with_url(malformed).validate().unwrap_err();
            assert!(error.starts_with("redis.url is invalid"), "{malformed}: {error}");
        }
    }
}
