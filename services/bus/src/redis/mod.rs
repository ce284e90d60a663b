//! Redis pub/sub as the bus, and the Redis connection settings shared with the room
//! store.
//!
//! One publisher client and one subscriber client per node: one connection each to a
//! single Redis, one to each master of a Redis Cluster. In a cluster, room channels use
//! sharded pub/sub (SPUBLISH/SSUBSCRIBE): a message is only sent to the nodes serving
//! its channel's hash slot, so adding shards adds bus capacity, where a classic PUBLISH
//! is copied to every node of the cluster. Every name of a room shares the room's hash
//! tag (see [`crate::keys`]), so the room store's scripts can publish on the channel in
//! the same atomic step that changes the room's keys.
//!
//! - [`config`]: the settings and the connected clients built from them.
//! - [`subscriber`]: following the subscriber's connections, re-subscribing after a
//!   reconnection and counting it, and forwarding what arrives.
//! - [`slots`]: in a cluster, finding the channels whose slot moved to another master,
//!   and subscribing there again.
//! - [`redirects`]: commands refused a redirection (a slot just moved), run once more.

mod config;
mod redirects;
mod slots;
mod subscriber;

pub use config::RedisConfig;
pub use redirects::{once_more_if_redirected, was_redirected};

use async_trait::async_trait;
use bytes::Bytes;
use fred::bytes_utils::Str;
use fred::clients::{Client, SubscriberClient};
use fred::interfaces::{ClientLike, EventInterface, PubsubInterface};
use fred::types::config::Options;
use fred::types::{ClusterHash, Value};
use tokio::sync::{broadcast, mpsc, oneshot, watch};

use crate::{Bus, BusError, Incoming, Keyspace, Publishing, RoomGaps, Topic};
use config::{start, unavailable};
use slots::SlotCheck;

/// The Redis pub/sub bus of one node.
pub struct RedisBus {
    keys: Keyspace,
    publisher: Client,
    subscriber: SubscriberClient,
    /// Sharded pub/sub (a Redis Cluster) or classic.
    sharded: bool,
    interruptions: watch::Receiver<u64>,
    gaps: broadcast::Sender<std::sync::Arc<[String]>>,
}

impl RedisBus {
    /// Connects the publisher and subscriber; incoming envelopes are queued on the
    /// returned stream (at most `incoming_queue` waiting).
    pub async fn connect(config: &RedisConfig, incoming_queue: usize) -> Result<(Self, Incoming), BusError> {
        let sharded = config.is_cluster();
        let publisher = config.connect_client().await?;
        let subscriber = config.subscriber_builder()?.build_subscriber_client().map_err(unavailable)?;
        let (sender, receiver) = mpsc::channel(incoming_queue.max(1));
        let (interrupted, interruptions) = watch::channel(0);
        let (gaps, _) = broadcast::channel(slots::GAP_BATCHES);
        let slots = sharded.then(|| SlotCheck::new(config.cluster_check_interval, config.keyspace(), gaps.clone()));
        let (connected, first_servers) = oneshot::channel();
        // Listen to the message and connection streams before connecting so nothing is
        // missed.
        tokio::spawn(subscriber::forward_messages(subscriber.message_rx(), sender, interrupted.clone()));
        let connections = subscriber.reconnect_rx();
        tokio::spawn(subscriber::follow_connections(
            subscriber.clone(),
            connections,
            slots,
            first_servers,
            interrupted,
        ));
        start(&subscriber, config.connect_timeout).await?;
        let _ = connected.send(subscriber.active_connections());
        let keys = config.keyspace();
        Ok((Self { keys, publisher, subscriber, sharded, interruptions, gaps }, receiver))
    }
}

#[async_trait]
impl Bus for RedisBus {
    fn publish(&self, topic: Topic<'_>, envelope: Bytes) -> Publishing<'_> {
        let channel = Str::from(self.keys.channel(topic));
        Box::pin(async move {
            // The receiver count PUBLISH returns is not a delivery count (in Redis Cluster
            // it is 0 even when delivered), so it is ignored.
            let _: Value = if self.sharded {
                once_more_if_redirected(|| self.publisher.spublish(channel.clone(), envelope.clone())).await
            } else {
                self.publisher.publish(channel, envelope).await
            }
            .map_err(unavailable)?;
            Ok(())
        })
    }

    async fn subscribe(&self, topic: Topic<'_>) -> Result<(), BusError> {
        let channel = self.keys.channel(topic);
        // fred answers SUBSCRIBE as soon as it has queued the command, before Redis has
        // seen it, so a publish right after could still miss this node. Redis answers
        // one connection's commands in order: once a PING sent after the SUBSCRIBE on
        // the same connection is answered, the subscription is in effect. In a cluster
        // that connection is the one to the master of the channel's slot.
        if self.sharded {
            let slot = fred::util::redis_keyslot(channel.as_bytes());
            let channels = [Str::from(channel)];
            once_more_if_redirected(|| slots::subscribe_on(&self.subscriber, slot, &channels))
                .await
                .map_err(unavailable)?;
        } else {
            self.subscriber.subscribe(channel).await.map_err(unavailable)?;
            let _: Value = self.subscriber.ping(None).await.map_err(unavailable)?;
        }
        Ok(())
    }

    async fn unsubscribe(&self, topic: Topic<'_>) -> Result<(), BusError> {
        let channel = self.keys.channel(topic);
        if self.sharded {
            self.subscriber.sunsubscribe(channel).await
        } else {
            self.subscriber.unsubscribe(channel).await
        }
        .map_err(unavailable)
    }

    async fn is_heard(&self, topic: Topic<'_>) -> Result<bool, BusError> {
        let channel = self.keys.channel(topic);
        // Both answer `[channel, subscribers]`. A shard channel's subscribers are known
        // to the master of its slot only.
        let reply: Value = if self.sharded {
            let slot = fred::util::redis_keyslot(channel.as_bytes());
            let on_that_master = Options { cluster_hash: Some(ClusterHash::Custom(slot)), ..Options::default() };
            self.publisher.with_options(&on_that_master).pubsub_shardnumsub(channel).await
        } else {
            self.publisher.pubsub_numsub(channel).await
        }
        .map_err(unavailable)?;
        match reply {
            Value::Array(pair) => Ok(pair.get(1).and_then(Value::as_i64).unwrap_or(0) > 0),
            other => Err(BusError::Unavailable(format!("unexpected answer to NUMSUB: {other:?}"))),
        }
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

    fn room_gaps(&self) -> RoomGaps {
        self.gaps.subscribe()
    }
}
