//! A [`Bus`] that measures what passes through it: wraps either implementation, so
//! both report the same `switchboard_bus_*` metrics (docs/observability.md).

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use metrics::{Counter, Unit, counter, describe_counter, describe_gauge, gauge};
use tokio::sync::{broadcast, watch};

use crate::{Bus, BusError, Publishing, RoomGaps, Topic};

pub const PUBLISHED: &str = "switchboard_bus_published_total";
pub const PUBLISHED_BYTES: &str = "switchboard_bus_published_bytes_total";
pub const PUBLISH_ERRORS: &str = "switchboard_bus_publish_errors_total";
pub const SUBSCRIBE_ERRORS: &str = "switchboard_bus_subscribe_errors_total";
pub const INTERRUPTIONS: &str = "switchboard_bus_interruptions_total";
pub const ROOM_GAPS: &str = "switchboard_bus_room_gaps_total";
pub const CONNECTED: &str = "switchboard_bus_connected";

pub fn describe() {
    describe_counter!(PUBLISHED, "Envelopes published on the bus.");
    describe_counter!(PUBLISHED_BYTES, Unit::Bytes, "Bytes of the envelopes published.");
    describe_counter!(PUBLISH_ERRORS, "Publishes that failed (the bus was unreachable or too slow).");
    describe_counter!(SUBSCRIBE_ERRORS, "Subscribes and unsubscribes that failed.");
    describe_counter!(
        INTERRUPTIONS,
        "Times this node may have missed bus messages: the subscriber reconnected (and resubscribed) or fell behind."
    );
    describe_counter!(
        ROOM_GAPS,
        "Rooms on whose channel this node may have missed bus messages while its other channels held (a Redis Cluster slot moved to another master)."
    );
    describe_gauge!(CONNECTED, "1 while the bus answers this node's checks, else 0.");
    for name in [PUBLISHED, PUBLISHED_BYTES, PUBLISH_ERRORS, SUBSCRIBE_ERRORS, INTERRUPTIONS, ROOM_GAPS] {
        counter!(name).absolute(0);
    }
}

thread_local! {
    /// The counters of every publish, made once per thread: `counter!` looks its key up
    /// in the recorder's registry, allocating, at every call. (Made at a thread's first
    /// publish, after the recorder is installed.)
    static PUBLISH_COUNTERS: (Counter, Counter) = (counter!(PUBLISHED), counter!(PUBLISHED_BYTES));
}

/// Measures every call to `inner`.
pub struct Metered {
    inner: Arc<dyn Bus>,
}

impl Metered {
    /// Wraps `inner`. Must be called inside a Tokio runtime: tasks follow the
    /// interruption count and the room gaps into their counters.
    pub fn new(inner: Arc<dyn Bus>) -> Self {
        let mut interruptions = inner.interruptions();
        tokio::spawn(async move {
            while interruptions.changed().await.is_ok() {
                let count = *interruptions.borrow_and_update();
                counter!(INTERRUPTIONS).absolute(count);
            }
        });
        let mut gaps = inner.room_gaps();
        tokio::spawn(async move {
            loop {
                match gaps.recv().await {
                    Ok(rooms) => counter!(ROOM_GAPS).increment(rooms.len() as u64),
                    // Batches this counter missed (the gateway's own receiver drops
                    // its whole state then, counted as a state loss).
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => return,
                }
            }
        });
        Self { inner }
    }
}

#[async_trait]
impl Bus for Metered {
    fn publish(&self, topic: Topic<'_>, envelope: Bytes) -> Publishing<'_> {
        let bytes = envelope.len() as u64;
        let publishing = self.inner.publish(topic, envelope);
        Box::pin(async move {
            let published = publishing.await;
            match &published {
                Ok(()) => PUBLISH_COUNTERS.with(|(published, published_bytes)| {
                    published.increment(1);
                    published_bytes.increment(bytes);
                }),
                Err(_) => counter!(PUBLISH_ERRORS).increment(1),
            }
            published
        })
    }

    async fn subscribe(&self, topic: Topic<'_>) -> Result<(), BusError> {
        let subscribed = self.inner.subscribe(topic).await;
        if subscribed.is_err() {
            counter!(SUBSCRIBE_ERRORS).increment(1);
        }
        subscribed
    }

    async fn unsubscribe(&self, topic: Topic<'_>) -> Result<(), BusError> {
        let unsubscribed = self.inner.unsubscribe(topic).await;
        if unsubscribed.is_err() {
            counter!(SUBSCRIBE_ERRORS).increment(1);
        }
        unsubscribed
    }

    async fn is_heard(&self, topic: Topic<'_>) -> Result<bool, BusError> {
        self.inner.is_heard(topic).await
    }

    async fn check(&self) -> Result<(), BusError> {
        let checked = self.inner.check().await;
        gauge!(CONNECTED).set(if checked.is_ok() { 1.0 } else { 0.0 });
        checked
    }

    fn interruptions(&self) -> watch::Receiver<u64> {
        self.inner.interruptions()
    }

    fn room_gaps(&self) -> RoomGaps {
        self.inner.room_gaps()
    }
}
