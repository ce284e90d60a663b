//! Following a Redis Cluster's slot map, so that a channel whose slot moved to another
//! master is heard again.
//!
//! When a slot moves (a resharding with `redis-cli --cluster reshard`, or a replica
//! promoted in a failed master's place), the master that gave it up drops the
//! subscribers of the slot's shard channels. It tells them with a `sunsubscribe` push,
//! which fred discards, so the node cannot hear it: it reads the slot map instead, every
//! `redis.cluster_check_interval`, and compares it with the map of the check before.
//! For every slot whose master changed it subscribes the node's channels of that slot
//! again (on the new master) and names their rooms as gaps ([`crate::Bus::room_gaps`]):
//! what was published between the move and the new subscription did not reach this
//! node. The node's other rooms are not affected.
//!
//! Comparing two maps errs on the safe side: a channel subscribed between two checks,
//! already on the slot's new master, is subscribed again and its room named too.
//! While the map does not change, which is nearly always, a check costs one `CLUSTER
//! SLOTS` and a comparison of a few ranges, whatever the number of channels.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use fred::bytes_utils::Str;
use fred::clients::SubscriberClient;
use fred::interfaces::{ClientLike, ClusterInterface, PubsubInterface};
use fred::types::cluster::ClusterRouting;
use fred::types::config::{Options, Server};
use fred::types::{ClusterHash, Value};
use tokio::sync::broadcast;

use crate::Keyspace;

/// How many batches of room gaps wait for a slow receiver before it lags.
pub(super) const GAP_BATCHES: usize = 64;

/// Hash slots of a Redis Cluster.
const SLOTS: u16 = 16_384;

/// The periodic check of a sharded bus's subscriptions against the slot map.
pub(super) struct SlotCheck {
    pub(super) interval: Duration,
    keys: Keyspace,
    gaps: broadcast::Sender<Arc<[String]>>,
    /// The map as of the last check (or of connecting).
    last: Option<ClusterRouting>,
    /// Slots that moved whose channels could not be subscribed again yet.
    retry: HashSet<u16>,
}

impl SlotCheck {
    pub(super) fn new(interval: Duration, keys: Keyspace, gaps: broadcast::Sender<Arc<[String]>>) -> Self {
        Self { interval, keys, gaps, last: None, retry: HashSet::new() }
    }

    /// Takes the subscriber's map as the one its subscriptions were made on (once it
    /// has connected, before it subscribes anything).
    pub(super) fn start_from(&mut self, subscriber: &SubscriberClient) {
        self.last = subscriber.cached_cluster_state();
    }

    /// Reads the slot map and subscribes again every channel whose slot moved. Returns
    /// the masters the subscriber connected to while reading it (see
    /// `subscriber::follow_connections` for which of them are no reconnection).
    pub(super) async fn run(&mut self, subscriber: &SubscriberClient) -> Vec<Server> {
        let before: HashSet<Server> = subscriber.active_connections().into_iter().collect();
        if let Err(error) = subscriber.sync_cluster().await {
            // Redis cannot be reached now: a lost connection is for the reconnection to
            // handle, and the next check reads the map again.
            tracing::debug!(%error, "could not read the Redis Cluster's slot map");
            return Vec::new();
        }
        let connected = subscriber.active_connections().into_iter().filter(|server| !before.contains(server)).collect();
        let Some(map) = subscriber.cached_cluster_state() else { return connected };
        let unchanged = self.last.as_ref().is_some_and(|last| last.slots() == map.slots());
        if unchanged && self.retry.is_empty() {
            return connected;
        }
        let mut moved = std::mem::take(&mut self.retry);
        if let Some(last) = &self.last {
            moved.extend((0..SLOTS).filter(|slot| last.get_server(*slot) != map.get_server(*slot)));
        }
        self.last = Some(map);
        let mut by_slot: HashMap<u16, Vec<Str>> = HashMap::new();
        for channel in subscriber.tracked_shard_channels() {
            let slot = fred::util::redis_keyslot(channel.as_bytes());
            if moved.contains(&slot) {
                by_slot.entry(slot).or_default().push(channel);
            }
        }
        let mut rooms = Vec::new();
        for (slot, channels) in by_slot {
            match subscribe_on(subscriber, slot, &channels).await {
                Ok(()) => {
                    tracing::warn!(
                        slot,
                        channels = channels.len(),
                        "a slot of this node's channels moved: subscribed again on its new master; messages published meanwhile are lost"
                    );
                    let names = channels.iter().filter_map(|channel| self.keys.room_of_channel(channel));
                    rooms.extend(names.map(String::from));
                }
                Err(error) => {
                    tracing::warn!(slot, %error, "could not subscribe again after a slot moved");
                    self.retry.insert(slot);
                }
            }
        }
        if !rooms.is_empty() {
            // Nobody listening (the node is shutting down) is fine.
            let _ = self.gaps.send(rooms.into());
        }
        connected
    }
}

/// Subscribes to channels of one slot on the master serving it, and waits until it is in
/// effect (see `RedisBus::subscribe`).
pub(super) async fn subscribe_on(
    subscriber: &SubscriberClient,
    slot: u16,
    channels: &[Str],
) -> Result<(), fred::error::Error> {
    subscriber.ssubscribe(channels.to_vec()).await?;
    let on_that_master = Options { cluster_hash: Some(ClusterHash::Custom(slot)), ..Options::default() };
    let _: Value = subscriber.with_options(&on_that_master).ping(None).await?;
    Ok(())
}
