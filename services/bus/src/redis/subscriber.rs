//! The bus's subscriber client: what it does when a connection is re-established, and
//! how what it receives reaches the node.
//!
//! Re-subscribing is done here rather than by fred's `manage_subscriptions`: that one
//! sends every kind of subscription it tracks, an empty SUBSCRIBE included, which Redis
//! refuses, and stops at the first refusal, so with only sharded channels it never
//! re-ran SSUBSCRIBE. (A plain client without either reconnects and silently receives
//! nothing, see ../shared/dependencies.md.)

use std::collections::HashSet;

use bytes::Bytes;
use fred::clients::SubscriberClient;
use fred::interfaces::PubsubInterface;
use fred::types::config::Server;
use fred::types::{Key, Value};
use tokio::sync::{broadcast, broadcast::error::RecvError, mpsc, oneshot, watch};

use super::slots::SlotCheck;

/// Follows the subscriber's connections. The connections made while the client first
/// connected (`first_servers`, one per master of a cluster) are expected; every later
/// one replaces a lost connection, to the same server or to a replica promoted in its
/// place: whatever was published between losing the old connection and subscribing on
/// the new one was not received. So the node's subscriptions are made again, then
/// counted as an interruption, in that order, so that what a node re-reads because of
/// the interruption is read while it hears the channel again.
///
/// In a Redis Cluster the same task runs the slot check (`slots`) between connection
/// events. A master it connects to that the subscriber never had a connection to (one
/// a slot moved to) is expected too: nothing was subscribed there, and the moved
/// slot's rooms are reported by the check itself. A connection it makes again to a
/// master it had one to is a reconnection like any other: the subscriptions held on the
/// lost connection are gone, whether or not a slot moved.
pub(super) async fn follow_connections(
    subscriber: SubscriberClient,
    mut connections: broadcast::Receiver<Server>,
    mut slots: Option<SlotCheck>,
    first_servers: oneshot::Receiver<Vec<Server>>,
    interrupted: watch::Sender<u64>,
) {
    let Ok(first) = first_servers.await else { return };
    if let Some(slots) = &mut slots {
        slots.start_from(&subscriber);
    }
    let sharded = slots.is_some();
    let mut known: HashSet<Server> = first.iter().cloned().collect();
    let mut expected: HashSet<Server> = first.into_iter().collect();
    let mut checks = slots.as_ref().map(|slots| {
        let mut ticks = tokio::time::interval(slots.interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticks
    });
    loop {
        tokio::select! {
            event = connections.recv() => match event {
                Ok(server) if expected.remove(&server) => tracing::debug!(%server, "bus subscriber connected"),
                Ok(server) => {
                    tracing::warn!(%server, "bus subscriber reconnected: messages published meanwhile are lost");
                    known.insert(server);
                    resubscribe_then_count(&subscriber, sharded, &interrupted).await;
                }
                // Connection events were missed: a reconnection may be among them, so its
                // subscriptions are made again as for one.
                Err(RecvError::Lagged(_)) => resubscribe_then_count(&subscriber, sharded, &interrupted).await,
                Err(RecvError::Closed) => return,
            },
            () = next_tick(&mut checks) => {
                if let Some(slots) = &mut slots {
                    for server in slots.run(&subscriber).await {
                        if known.insert(server.clone()) {
                            expected.insert(server);
                        }
                    }
                }
            }
        }
    }
}

/// The next tick, or never without ticks.
async fn next_tick(ticks: &mut Option<tokio::time::Interval>) {
    match ticks {
        Some(ticks) => drop(ticks.tick().await),
        None => std::future::pending().await,
    }
}

async fn resubscribe_then_count(subscriber: &SubscriberClient, sharded: bool, interrupted: &watch::Sender<u64>) {
    if let Err(error) = resubscribe(subscriber, sharded).await {
        // The connection went again: the next one resubscribes.
        tracing::warn!(%error, "re-subscribing the bus failed");
    }
    interrupted.send_modify(|count| *count += 1);
}

/// Subscribes again to every channel the node is subscribed to. Sharded channels are
/// grouped by hash slot: one SSUBSCRIBE may only name channels of one slot.
async fn resubscribe(subscriber: &SubscriberClient, sharded: bool) -> Result<(), fred::error::Error> {
    if sharded {
        let channels: Vec<Key> = subscriber.tracked_shard_channels().into_iter().map(Key::from).collect();
        for (_, group) in fred::util::group_by_hash_slot(channels)? {
            subscriber.ssubscribe(group.into_iter().collect::<Vec<_>>()).await?;
        }
    } else {
        let channels: Vec<Key> = subscriber.tracked_channels().into_iter().map(Key::from).collect();
        if !channels.is_empty() {
            subscriber.subscribe(channels).await?;
        }
    }
    Ok(())
}

/// Moves message payloads from fred's broadcast channel to the node's queue. It only
/// forwards bytes, so a slow client can never stall the connection Redis writes to.
pub(super) async fn forward_messages(
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
