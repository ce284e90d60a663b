//! What this gateway published into a room and has not heard back yet.
//!
//! A signal between two peers of this gateway skips the bus. That shortcut must not let
//! a signal overtake an earlier one to the same peer that went around the bus (sent
//! while the target was on another gateway, or moving in), so while one is out, later
//! ones to that peer follow it around. Broadcasts likewise. Counts go down when this
//! gateway hears its own envelopes back on the room's channel.
//!
//! An envelope can be lost with a Redis connection. A count that has made no progress
//! for [`STALE_AFTER`] is taken as such a loss and forgotten: the shortcut comes back
//! instead of staying off for the life of the room.

use std::collections::HashMap;
use std::time::Duration;

use tokio::time::Instant;

use super::PeerId;

/// Longer than any bus round trip of a working node by orders of magnitude.
const STALE_AFTER: Duration = Duration::from_secs(10);

#[derive(Default)]
pub(super) struct InFlight {
    /// Signals around the bus, by target.
    signals: HashMap<PeerId, Outstanding>,
    /// Broadcasts around the bus (sent while a member was moving in).
    broadcasts: Outstanding,
}

#[derive(Default)]
struct Outstanding {
    count: u32,
    /// The last send or return; a count older than [`STALE_AFTER`] is forgotten.
    last_progress: Option<Instant>,
}

impl Outstanding {
    fn pending(&mut self) -> bool {
        if self.count > 0 && self.last_progress.is_some_and(|at| at.elapsed() > STALE_AFTER) {
            self.count = 0;
        }
        self.count > 0
    }

    fn sent(&mut self) {
        self.count += 1;
        self.last_progress = Some(Instant::now());
    }

    /// Returns whether nothing is out any more.
    fn returned(&mut self) -> bool {
        self.count = self.count.saturating_sub(1);
        self.last_progress = Some(Instant::now());
        self.count == 0
    }
}

impl InFlight {
    /// Whether a message to `peer` must go around the bus to keep its order.
    pub(super) fn holds_back(&mut self, peer: &str) -> bool {
        let signal_out = self.signals.get_mut(peer).map(Outstanding::pending);
        if signal_out == Some(false) {
            self.signals.remove(peer);
        }
        signal_out == Some(true) || self.broadcasts.pending()
    }

    pub(super) fn signal_sent(&mut self, to: PeerId) {
        self.signals.entry(to).or_default().sent();
    }

    /// A signal came back (or could not be published).
    pub(super) fn signal_returned(&mut self, to: &str) {
        if self.signals.get_mut(to).is_some_and(Outstanding::returned) {
            self.signals.remove(to);
        }
    }

    pub(super) fn broadcast_sent(&mut self) {
        self.broadcasts.sent();
    }

    /// A broadcast came back (or could not be published).
    pub(super) fn broadcast_returned(&mut self) {
        self.broadcasts.returned();
    }
}
