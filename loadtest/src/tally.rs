//! What happened to the signaling messages a run sent: every message sent is either
//! received (once, intact, in order) or lost, and whatever else arrived is counted by
//! what was wrong with it.

use serde::{Deserialize, Serialize};

#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tally {
    pub sent: u64,
    /// Arrived at their target within the message timeout (duplicates not counted).
    pub received: u64,
    /// Not arrived within the message timeout.
    pub lost: u64,
    /// Arrived again after arriving once.
    pub duplicated: u64,
    /// Arrived after a later message of the same sender and negotiation.
    pub out_of_order: u64,
    /// Arrived with a payload or kind other than the one sent.
    pub altered: u64,
    /// Arrived after the timeout (already counted as lost).
    pub late: u64,
    /// Arrived where no message was expected: from another peer, untagged, or from a
    /// negotiation that has not started.
    pub unexpected: u64,
}

impl Tally {
    pub fn add(&mut self, other: &Tally) {
        self.sent += other.sent;
        self.received += other.received;
        self.lost += other.lost;
        self.duplicated += other.duplicated;
        self.out_of_order += other.out_of_order;
        self.altered += other.altered;
        self.late += other.late;
        self.unexpected += other.unexpected;
    }

    /// Whether every message arrived once, intact and in order, and nothing else did.
    pub fn is_clean(&self) -> bool {
        self.received == self.sent
            && self.lost == 0
            && self.duplicated == 0
            && self.out_of_order == 0
            && self.altered == 0
            && self.unexpected == 0
    }
}

/// Error messages kept word for word; the rest are only counted.
const ERROR_SAMPLES: usize = 20;

/// The errors of a run (a lost connection, an `error` frame, a room that could not be
/// set up): every one counted, the first few kept word for word.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Errors {
    #[serde(rename = "errors")]
    pub count: u64,
    #[serde(rename = "error_samples")]
    pub samples: Vec<String>,
}

impl Errors {
    pub fn record(&mut self, error: String) {
        self.count += 1;
        if self.samples.len() < ERROR_SAMPLES {
            self.samples.push(error);
        }
    }

    pub fn add(&mut self, other: Errors) {
        self.count += other.count;
        let room = ERROR_SAMPLES.saturating_sub(self.samples.len());
        self.samples.extend(other.samples.into_iter().take(room));
    }
}
