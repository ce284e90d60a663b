//! One member of a storm pair: sends numbered signals to its partner at its pace while
//! reading what arrives, across whatever reconnections the disruption causes, then
//! says how many it sent and waits for the partner's last ones.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use protocol::ServerMessage;
use protocol::client::{ClientError, ReconnectingClient, Start};
use serde_json::json;
use tokio::time::Instant;

use crate::live::Live;

/// The signal kind of a numbered message, and of the closing count.
const NUMBERED: &str = "storm";
const SENT_ALL: &str = "storm-sent";
/// How often a member looks for arrivals between two of its sends.
const POLL: Duration = Duration::from_millis(10);

/// The pace and the end of one member's exchange.
pub struct Pace {
    pub period: Duration,
    pub first_send: Instant,
    pub stop_sending: Instant,
    /// Past it the member stops waiting for its partner's last messages.
    pub give_up: Instant,
}

/// What one member saw of its partner's numbered messages.
#[derive(Debug, Default)]
pub struct Received {
    pub distinct: u64,
    pub duplicated: u64,
    pub out_of_order: u64,
    /// Signals refused by the gateway (the partner was not in the room at that moment,
    /// e.g. between losing its session and joining again).
    pub refused: u64,
}

/// How one member's exchange went.
pub struct Outcome {
    pub sent: u64,
    pub received: Received,
    pub starts: Vec<Start>,
    pub reconnect_times: Vec<Duration>,
    pub error: Option<String>,
}

pub struct Member {
    pub client: ReconnectingClient,
    /// What the progress bar and the timeline show.
    pub live: Arc<Live>,
    pub room: String,
    pub partner_identity: String,
    pub partner_peer: String,
}

impl Member {
    pub async fn exchange(mut self, pace: Pace) -> Outcome {
        let mut log = Log::default();
        let mut sent = 0u64;
        let error = self.run(&pace, &mut sent, &mut log).await.err().map(|error| format!("{error}"));
        Outcome {
            sent,
            received: log.received,
            starts: self.client.starts().to_vec(),
            reconnect_times: self.client.reconnect_times().to_vec(),
            error,
        }
    }

    async fn run(&mut self, pace: &Pace, sent: &mut u64, log: &mut Log) -> Result<(), ClientError> {
        let mut next_send = pace.first_send;
        let mut sending = true;
        loop {
            let now = Instant::now();
            if sending && now >= pace.stop_sending {
                sending = false;
                let total = json!({ "sent": *sent });
                self.client.signal(&self.room, &self.partner_peer.clone(), SENT_ALL, total).await?;
            }
            if sending && now >= next_send {
                let numbered = json!({ "n": *sent });
                self.client.signal(&self.room, &self.partner_peer.clone(), NUMBERED, numbered).await?;
                *sent += 1;
                next_send += pace.period;
            }
            while let Some(message) = self.client.poll_message().await? {
                self.read(message, log);
            }
            if !sending && (log.complete() || now >= pace.give_up) {
                return Ok(());
            }
            let wake = if sending { next_send.min(now + POLL) } else { now + POLL };
            tokio::time::sleep_until(wake).await;
        }
    }

    fn read(&mut self, message: ServerMessage, log: &mut Log) {
        match message {
            ServerMessage::Signal { from, kind, data, .. } if from == self.partner_peer => {
                let value = data.to_value();
                match kind.as_str() {
                    NUMBERED if log.numbered(value["n"].as_u64().unwrap_or(u64::MAX)) => self.live.message(None),
                    SENT_ALL => log.partner_sent = value["sent"].as_u64(),
                    _ => {}
                }
            }
            // The partner started a new session (its old one was lost): a new peer id.
            ServerMessage::PeerJoined { peer, .. } if peer.identity == self.partner_identity => {
                self.partner_peer = peer.peer_id;
            }
            ServerMessage::Joined { peers, .. } => {
                if let Some(partner) = peers.into_iter().find(|peer| peer.identity == self.partner_identity) {
                    self.partner_peer = partner.peer_id;
                }
            }
            ServerMessage::Error { .. } => log.received.refused += 1,
            _ => {}
        }
    }
}

#[derive(Default)]
struct Log {
    seen: HashSet<u64>,
    highest: Option<u64>,
    partner_sent: Option<u64>,
    received: Received,
}

impl Log {
    /// Notes numbered message `n`; true the first time it arrives.
    fn numbered(&mut self, n: u64) -> bool {
        if !self.seen.insert(n) {
            self.received.duplicated += 1;
            return false;
        }
        self.received.distinct += 1;
        if self.highest.is_some_and(|highest| n < highest) {
            self.received.out_of_order += 1;
        }
        self.highest = self.highest.max(Some(n));
        true
    }

    /// The partner said how many it sent, and all of them arrived.
    fn complete(&self) -> bool {
        self.partner_sent.is_some_and(|sent| self.received.distinct >= sent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_counts_duplicates_reordering_and_completion() {
        let mut log = Log::default();
        let firsts: Vec<bool> = [0, 1, 3, 2, 3].into_iter().map(|n| log.numbered(n)).collect();
        assert_eq!(firsts, [true, true, true, true, false]);
        assert_eq!((log.received.distinct, log.received.duplicated, log.received.out_of_order), (4, 1, 1));
        assert!(!log.complete(), "the partner has not said how many it sent");
        log.partner_sent = Some(5);
        assert!(!log.complete(), "4 is missing");
        log.numbered(4);
        assert!(log.complete());
    }
}
