//! Receiving one side's burst of a negotiation and judging each message: the load
//! scenario tags every message it sends (`lt`: negotiation number, index in the burst,
//! send time), so the receiver can tell on time from late, once from twice, in order
//! from reordered, and intact from altered, and measure each message's one-way latency
//! (sender and receiver are in this process, on one clock).

use crate::live::Live;
use std::time::Instant;

use protocol::ServerMessage;
use protocol::client::{Client, ClientError};
use serde_json::{Value, json};

use super::room::RoomStats;

/// The key of the tag in a message's `data`.
const TAG: &str = "lt";

/// Adds the tag of message `index` of negotiation `negotiation`, sent now.
pub fn tagged(data: &Value, negotiation: u64, index: usize, epoch: Instant) -> Value {
    let mut data = data.clone();
    data[TAG] = json!({"n": negotiation, "i": index, "t": micros_since(epoch)});
    data
}

/// One burst to receive: `expected` (kind and data, untagged) from peer `from` in room
/// `room`, sent as negotiation `negotiation`.
pub struct Burst<'a> {
    pub room: &'a str,
    pub from: &'a str,
    pub negotiation: u64,
    pub expected: &'a [(&'static str, Value)],
}

/// Reads until every message of `burst` arrived or `deadline` passed, counting into
/// `stats`; what never arrived is lost. Errors only when the connection fails.
pub async fn receive(
    client: &mut Client,
    burst: &Burst<'_>,
    deadline: Instant,
    epoch: Instant,
    stats: &mut RoomStats,
    live: &Live,
) -> Result<(), ClientError> {
    let mut seen = vec![false; burst.expected.len()];
    let mut arrived = 0;
    let mut highest = None;
    while arrived < seen.len() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        client.set_reply_timeout(left);
        let message = match client.next_message().await {
            Ok(message) => message,
            Err(ClientError::Timeout { .. }) => break,
            Err(error) => return Err(error),
        };
        let (room, from, kind, data) = match message {
            ServerMessage::Signal { room, from, kind, data } => (room, from, kind, data.to_value()),
            ServerMessage::Error { code, message, .. } => {
                stats.errors.record(format!("error {code}: {message}"));
                live.error();
                continue;
            }
            // Presence and other room events.
            _ => continue,
        };
        let Some((negotiation, index, sent_at)) = tag(&data) else {
            stats.tally.unexpected += 1;
            continue;
        };
        if room == burst.room && negotiation < burst.negotiation {
            // Given up on already; in a mesh possibly from the previous pair's sender.
            stats.tally.late += 1;
        } else if room != burst.room || from != burst.from || negotiation > burst.negotiation || index >= seen.len() {
            stats.tally.unexpected += 1;
        } else if seen[index] {
            stats.tally.duplicated += 1;
        } else {
            seen[index] = true;
            arrived += 1;
            stats.tally.received += 1;
            let latency = micros_since(epoch).saturating_sub(sent_at);
            stats.latency.record_micros(latency);
            live.message(Some(latency));
            if highest.is_some_and(|highest| index < highest) {
                stats.tally.out_of_order += 1;
            }
            highest = highest.max(Some(index));
            let (expected_kind, expected_data) = &burst.expected[index];
            if kind != *expected_kind || untagged(data) != *expected_data {
                stats.tally.altered += 1;
            }
        }
    }
    stats.tally.lost += (seen.len() - arrived) as u64;
    Ok(())
}

fn micros_since(epoch: Instant) -> u64 {
    u64::try_from(epoch.elapsed().as_micros()).unwrap_or(u64::MAX)
}

fn tag(data: &Value) -> Option<(u64, usize, u64)> {
    let tag = data.get(TAG)?;
    Some((tag["n"].as_u64()?, usize::try_from(tag["i"].as_u64()?).ok()?, tag["t"].as_u64()?))
}

fn untagged(mut data: Value) -> Value {
    if let Some(object) = data.as_object_mut() {
        object.remove(TAG);
    }
    data
}
