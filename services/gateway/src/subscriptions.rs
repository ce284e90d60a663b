//! Reference-counted bus subscriptions: the gateway subscribes to a room's channel when
//! its first local peer starts joining and unsubscribes when its last one is gone.
//!
//! Each room has a slot whose async lock serializes that room's subscribe and
//! unsubscribe calls, so a last leave racing with a new join can never leave the node
//! unsubscribed while it has members. Different rooms never wait for each other.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bus::{Bus, BusError, Topic};

pub struct Subscriptions {
    bus: Arc<dyn Bus>,
    slots: Mutex<HashMap<String, Arc<tokio::sync::Mutex<usize>>>>,
}

impl Subscriptions {
    pub fn new(bus: Arc<dyn Bus>) -> Self {
        Self { bus, slots: Mutex::new(HashMap::new()) }
    }

    /// Takes one reference on `room`'s channel, subscribing if it is the first. When
    /// this returns Ok, everything published on the channel from now on reaches the
    /// node.
    pub async fn acquire(&self, room: &str) -> Result<(), BusError> {
        let slot = self.slot(room);
        let mut count = slot.lock().await;
        if *count == 0 {
            self.bus.subscribe(Topic::Room(room)).await?;
        }
        *count += 1;
        Ok(())
    }

    /// Gives one reference back, unsubscribing with the last.
    pub async fn release(&self, room: &str) {
        let slot = self.slot(room);
        let mut count = slot.lock().await;
        debug_assert!(*count > 0, "release without acquire for {room}");
        *count = count.saturating_sub(1);
        if *count == 0 {
            if let Err(error) = self.bus.unsubscribe(Topic::Room(room)).await {
                // The channel stays subscribed on the bus; its messages find no local
                // member and are dropped. The next acquire subscribes again anyway.
                tracing::warn!(room, %error, "unsubscribe failed");
            }
            self.forget_if_unused(room, &slot);
        }
    }

    /// Rooms with at least one reference, for tests and diagnostics.
    pub fn subscribed_rooms(&self) -> usize {
        let slots: Vec<_> = self.lock().values().cloned().collect();
        slots.iter().filter(|slot| slot.try_lock().map_or(true, |count| *count > 0)).count()
    }

    fn slot(&self, room: &str) -> Arc<tokio::sync::Mutex<usize>> {
        self.lock().entry(room.to_string()).or_default().clone()
    }

    /// Drops the slot unless another task holds a clone of it (and may be about to
    /// subscribe through it). Clones are only made under the map's lock, so the count
    /// of clones cannot grow while it is being checked.
    fn forget_if_unused(&self, room: &str, slot: &Arc<tokio::sync::Mutex<usize>>) {
        let mut slots = self.lock();
        if let Some(current) = slots.get(room)
            && Arc::ptr_eq(current, slot)
            && Arc::strong_count(slot) == 2
        {
            slots.remove(room);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<tokio::sync::Mutex<usize>>>> {
        self.slots.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bus::MemoryHub;
    use bytes::Bytes;

    #[tokio::test]
    async fn subscribes_with_the_first_and_unsubscribes_with_the_last() {
        let hub = MemoryHub::new();
        let (bus, mut incoming) = hub.node(16);
        let subscriptions = Subscriptions::new(Arc::new(bus));
        subscriptions.acquire("r").await.unwrap();
        subscriptions.acquire("r").await.unwrap();
        subscriptions.release("r").await;
        hub.publish_now(Topic::Room("r"), Bytes::from_static(b"still subscribed"));
        assert_eq!(incoming.recv().await.unwrap(), "still subscribed");
        assert_eq!(subscriptions.subscribed_rooms(), 1);

        subscriptions.release("r").await;
        assert_eq!(subscriptions.subscribed_rooms(), 0);
        hub.publish_now(Topic::Room("r"), Bytes::from_static(b"lost"));
        subscriptions.acquire("other").await.unwrap();
        hub.publish_now(Topic::Room("other"), Bytes::from_static(b"other"));
        assert_eq!(incoming.recv().await.unwrap(), "other", "nothing of r after the last release");
    }
}
