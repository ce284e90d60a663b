//! Following a Redis Cluster's slot map, so that a channel whose slot moved to another
//! master is heard again.
//!
//! When a slot moves (a resharding with `redis-cli --cluster reshard`, or a replica
//! promoted in a failed master's place), the master that gave it up drops the
//! subscribers of the slot's shard channels. It tells them with a `sunsubscribe` push,
//! which fred discards, so the node cannot hear it: it reads the slot map instead, every
//! `redis.cluster_check_interval`, and compares the owner of each of its channels' slots
//! with the master it subscribed on. For every slot that moved it subscribes again (on
//! the new owner) and names the slot's rooms as gaps ([`crate::Bus::room_gaps`]): what
//! was published between the move and the new subscription did not reach this node.
//! The node's other rooms are not affected.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use fred::bytes_utils::Str;
use fred::clients::SubscriberClient;
use fred::interfaces::{ClientLike, ClusterInterface, PubsubInterface};
use fred::types::config::{Options, Server};
use fred::types::{ClusterHash, Value};
use tokio::sync::broadcast;

use crate::Keyspace;

/// How many batches of room gaps wait for a slow receiver before it lags.
pub(super) const GAP_BATCHES: usize = 64;

/// The master each slot of the node's channels was subscribed on. Shared between
/// `RedisBus::subscribe`, which records the owner of a new channel's slot, and the
/// check, which compares.
#[derive(Clone, Default)]
pub(super) struct Owners(Arc<Mutex<HashMap<u16, Server>>>);

impl Owners {
    /// Records where a channel of `slot` was just subscribed, unless the slot already
    /// has an owner on record: if that one is stale, the next check moves every channel
    /// of the slot, this one included.
    pub(super) fn subscribed(&self, slot: u16, subscriber: &SubscriberClient) {
        let Some(owner) = subscriber.cached_cluster_state().and_then(|map| map.get_server(slot).cloned()) else {
            return;
        };
        self.lock().entry(slot).or_insert(owner);
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<u16, Server>> {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The periodic check of a sharded bus's subscriptions against the slot map.
pub(super) struct SlotCheck {
    pub(super) interval: Duration,
    keys: Keyspace,
    owners: Owners,
    gaps: broadcast::Sender<Arc<[String]>>,
}

/// Channels of one slot that moved, and where to.
struct Moved {
    slot: u16,
    to: Server,
    channels: Vec<Str>,
}

impl SlotCheck {
    pub(super) fn new(
        interval: Duration,
        keys: Keyspace,
        owners: Owners,
        gaps: broadcast::Sender<Arc<[String]>>,
    ) -> Self {
        Self { interval, keys, owners, gaps }
    }

    /// Reads the slot map and subscribes again every channel whose slot moved. Returns
    /// the masters the subscriber connected to while reading it (see
    /// `subscriber::follow_connections` for which of them are no reconnection).
    pub(super) async fn run(&self, subscriber: &SubscriberClient) -> Vec<Server> {
        let before: HashSet<Server> = subscriber.active_connections().into_iter().collect();
        if let Err(error) = subscriber.sync_cluster().await {
            // Redis cannot be reached now: a lost connection is for the reconnection to
            // handle, and the next check reads the map again.
            tracing::debug!(%error, "could not read the Redis Cluster's slot map");
            return Vec::new();
        }
        let connected = subscriber.active_connections().into_iter().filter(|server| !before.contains(server)).collect();
        let mut rooms = Vec::new();
        for moved in self.moved(subscriber) {
            match subscribe_on(subscriber, moved.slot, &moved.channels).await {
                Ok(()) => {
                    tracing::warn!(
                        slot = moved.slot,
                        to = %moved.to,
                        channels = moved.channels.len(),
                        "a slot of this node's channels moved: subscribed again on its new master; messages published meanwhile are lost"
                    );
                    self.owners.lock().insert(moved.slot, moved.to);
                    rooms.extend(
                        moved
                            .channels
                            .iter()
                            .filter_map(|channel| self.keys.room_of_channel(channel))
                            .map(String::from),
                    );
                }
                // The slot stays on record with its old owner: the next check tries again.
                Err(error) => tracing::warn!(slot = moved.slot, %error, "could not subscribe again after a slot moved"),
            }
        }
        if !rooms.is_empty() {
            // Nobody listening (the node is shutting down) is fine.
            let _ = self.gaps.send(rooms.into());
        }
        connected
    }

    /// The slots of the node's channels whose owner in the (just read) slot map is not
    /// the one they were subscribed on. Forgets the slots no channel uses any more and
    /// records the owner of those it had not seen.
    fn moved(&self, subscriber: &SubscriberClient) -> Vec<Moved> {
        let Some(map) = subscriber.cached_cluster_state() else { return Vec::new() };
        let mut by_slot: HashMap<u16, Vec<Str>> = HashMap::new();
        for channel in subscriber.tracked_shard_channels() {
            by_slot.entry(fred::util::redis_keyslot(channel.as_bytes())).or_default().push(channel);
        }
        let mut owners = self.owners.lock();
        owners.retain(|slot, _| by_slot.contains_key(slot));
        let mut moved = Vec::new();
        for (slot, channels) in by_slot {
            // A slot no master serves (the cluster is failing): looked at again later.
            let Some(now) = map.get_server(slot) else { continue };
            match owners.get(&slot) {
                Some(was) if was == now => {}
                Some(_) => moved.push(Moved { slot, to: now.clone(), channels }),
                None => {
                    owners.insert(slot, now.clone());
                }
            }
        }
        moved
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
