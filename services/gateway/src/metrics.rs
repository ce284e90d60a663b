//! The gateway's metrics, all in one place: names, help texts and the helpers the code
//! calls. docs/observability.md describes each one (a test keeps the two in step).
//!
//! Labels take values from small fixed sets only (message types, close and error
//! codes, outcomes): never a room, peer or node id.

use std::cell::RefCell;
use std::time::{SystemTime, UNIX_EPOCH};

use metrics::{
    Counter, Histogram, Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram,
};
use protocol::{CloseCode, ErrorCode};

use crate::limits::inbound::Limit;

pub const CONNECTIONS: &str = "switchboard_gateway_connections";
pub const CONNECTIONS_OPENED: &str = "switchboard_gateway_connections_opened_total";
pub const CONNECTIONS_CLOSED: &str = "switchboard_gateway_connections_closed_total";
pub const SESSIONS: &str = "switchboard_gateway_sessions";
pub const ROOMS: &str = "switchboard_gateway_rooms";
pub const ROOM_MEMBERS: &str = "switchboard_gateway_room_members";
pub const MESSAGES_RECEIVED: &str = "switchboard_gateway_messages_received_total";
pub const MESSAGES_SENT: &str = "switchboard_gateway_messages_sent_total";
pub const RECEIVED_BYTES: &str = "switchboard_gateway_received_bytes_total";
pub const SENT_BYTES: &str = "switchboard_gateway_sent_bytes_total";
pub const ROUTED: &str = "switchboard_gateway_routed_messages_total";
pub const ENVELOPES_RECEIVED: &str = "switchboard_gateway_envelopes_received_total";
pub const SIGNAL_DELIVERY: &str = "switchboard_gateway_signal_delivery_seconds";
pub const SEND_QUEUE_DROPS: &str = "switchboard_gateway_send_queue_drops_total";
pub const SLOW_CONSUMERS: &str = "switchboard_gateway_slow_consumer_disconnects_total";
pub const AUTH_FAILURES: &str = "switchboard_gateway_auth_failures_total";
pub const RATE_LIMITED: &str = "switchboard_gateway_rate_limited_total";
pub const UPGRADES_REFUSED: &str = "switchboard_gateway_upgrades_refused_total";
pub const ERRORS: &str = "switchboard_gateway_errors_total";
pub const RESUMES: &str = "switchboard_gateway_resumes_total";
pub const HANDOVERS: &str = "switchboard_gateway_handovers_total";
pub const READY: &str = "switchboard_gateway_ready";
pub const DRAINING: &str = "switchboard_gateway_draining";
pub const DRAIN_SESSIONS: &str = "switchboard_gateway_drain_sessions_remaining";
pub const STATE_LOSSES: &str = "switchboard_gateway_state_losses_total";
pub const LEASE_RENEWAL_FAILURES: &str = "switchboard_gateway_lease_renewal_failures_total";
pub const ROOM_REPAIRS: &str = "switchboard_gateway_room_repairs_total";

/// How a resume went.
#[derive(Debug, Clone, Copy)]
pub enum Resume {
    /// Everything addressed to the session while it was away was delivered.
    Complete,
    /// Messages may have been lost: `resumed` said `gap: true`.
    Gap,
    /// No session to resume (unknown, expired): the client started a new one.
    NoSession,
    /// Redis or the room service could not be reached.
    Unavailable,
}

/// Registers every description and sets the counters whose label values are known to
/// zero, so that dashboards and alerts see a series before the first event.
pub fn describe() {
    describe_gauge!(CONNECTIONS, "Open WebSocket connections.");
    describe_counter!(CONNECTIONS_OPENED, "WebSocket connections accepted.");
    describe_counter!(CONNECTIONS_CLOSED, "WebSocket connections closed, by the close code sent.");
    describe_gauge!(SESSIONS, "Sessions held, connected or waiting for a resume.");
    describe_gauge!(ROOMS, "Rooms with at least one member on this gateway.");
    describe_gauge!(ROOM_MEMBERS, "Room memberships of this gateway's sessions.");
    describe_counter!(MESSAGES_RECEIVED, "Messages received from clients, by type (`invalid` if unparsable).");
    describe_counter!(MESSAGES_SENT, "Messages written to clients, by type (replays included).");
    describe_counter!(RECEIVED_BYTES, Unit::Bytes, "Bytes of the messages received from clients.");
    describe_counter!(SENT_BYTES, Unit::Bytes, "Bytes of the messages written to clients.");
    describe_counter!(
        ROUTED,
        "Signals and broadcasts sent by this gateway's clients, by type and path (local or bus)."
    );
    describe_counter!(ENVELOPES_RECEIVED, "Envelopes received from the bus, by type.");
    describe_histogram!(
        SIGNAL_DELIVERY,
        Unit::Seconds,
        "From the sender's gateway publishing a signal to the receiver's gateway queueing it for the receiver."
    );
    describe_counter!(SEND_QUEUE_DROPS, "Messages not queued because a client's send queue was full.");
    describe_counter!(SLOW_CONSUMERS, "Clients disconnected (4008) because their send queue was full.");
    describe_counter!(AUTH_FAILURES, "Connections refused at authentication, by reason.");
    describe_counter!(RATE_LIMITED, "Client messages refused with `rate_limited`, by the rate exceeded.");
    describe_counter!(UPGRADES_REFUSED, "WebSocket upgrades refused before the upgrade, by reason.");
    describe_counter!(ERRORS, "`error` messages sent to clients, by code.");
    describe_counter!(RESUMES, "Resume attempts, by outcome (complete, gap, no_session, unavailable).");
    describe_counter!(HANDOVERS, "Sessions handed over between gateways, by direction (sent, received).");
    describe_gauge!(READY, "1 while the gateway is ready (what /readyz answers), else 0.");
    describe_gauge!(DRAINING, "1 once the gateway drains (SIGTERM), else 0.");
    describe_gauge!(DRAIN_SESSIONS, "While draining: sessions not yet handed over or ended.");
    describe_counter!(STATE_LOSSES, "Times the gateway dropped its standing (lease lost, bus interrupted).");
    describe_counter!(LEASE_RENEWAL_FAILURES, "Lease renewals that failed.");
    describe_counter!(
        ROOM_REPAIRS,
        "Rooms whose bus messages were lost while the others' were not (a Redis Cluster slot moved): local members told to reconnect, view read again."
    );

    for code in [CloseCode::Normal, CloseCode::GoingAway, CloseCode::SlowConsumer, CloseCode::IdleTimeout] {
        counter!(CONNECTIONS_CLOSED, "code" => code_label(code)).absolute(0);
    }
    for outcome in [Resume::Complete, Resume::Gap, Resume::NoSession, Resume::Unavailable] {
        counter!(RESUMES, "outcome" => resume_label(outcome)).absolute(0);
    }
    for direction in ["sent", "received"] {
        counter!(HANDOVERS, "direction" => direction).absolute(0);
    }
    for name in [SEND_QUEUE_DROPS, SLOW_CONSUMERS, STATE_LOSSES, LEASE_RENEWAL_FAILURES, ROOM_REPAIRS] {
        counter!(name).absolute(0);
    }
    for reason in AUTH_REASONS {
        counter!(AUTH_FAILURES, "reason" => *reason).absolute(0);
    }
    for limit in [Limit::Messages, Limit::Bytes] {
        counter!(RATE_LIMITED, "limit" => limit.label()).absolute(0);
    }
    for reason in ["full", "source_rate", "origin", "http_connections"] {
        counter!(UPGRADES_REFUSED, "reason" => reason).absolute(0);
    }
    counter!(ERRORS, "code" => ErrorCode::Unavailable.as_str()).absolute(0);
    // Before the first connection too: the autoscaler scales on this series.
    gauge!(CONNECTIONS).set(0.0);
    gauge!(DRAINING).set(0.0);
    gauge!(DRAIN_SESSIONS).set(0.0);
}

pub fn connection_opened() {
    counter!(CONNECTIONS_OPENED).increment(1);
    gauge!(CONNECTIONS).increment(1.0);
}

pub fn connection_closed(code: CloseCode) {
    gauge!(CONNECTIONS).decrement(1.0);
    counter!(CONNECTIONS_CLOSED, "code" => code_label(code)).increment(1);
}

pub fn message_received(kind: &'static str, bytes: usize) {
    per_message(MESSAGES_RECEIVED, [kind, ""], || counter!(MESSAGES_RECEIVED, "type" => kind), 1);
    per_message(RECEIVED_BYTES, ["", ""], || counter!(RECEIVED_BYTES), bytes as u64);
}

/// A frame written to a client; its type is read from the frame, which every renderer
/// starts with `{"type":"…"`.
pub fn message_sent(frame: &str) {
    let kind = frame_type(frame);
    per_message(MESSAGES_SENT, [kind, ""], || counter!(MESSAGES_SENT, "type" => kind), 1);
    per_message(SENT_BYTES, ["", ""], || counter!(SENT_BYTES), frame.len() as u64);
}

/// `kind` is `signal` or `broadcast`; `bus` whether it went through the bus.
pub fn routed(kind: &'static str, bus: bool) {
    let path = if bus { "bus" } else { "local" };
    per_message(ROUTED, [kind, path], || counter!(ROUTED, "type" => kind, "path" => path), 1);
}

pub fn envelope_received(kind: &'static str) {
    per_message(ENVELOPES_RECEIVED, [kind, ""], || counter!(ENVELOPES_RECEIVED, "type" => kind), 1);
}

/// A per-message counter: its name (by address: two copies of one name only make two
/// handles of the same counter) and label values.
type PerMessageKey = (usize, [&'static str; 2]);

thread_local! {
    /// The handles of the per-message counters this thread has used.
    static PER_MESSAGE: RefCell<Vec<(PerMessageKey, Counter)>> = const { RefCell::new(Vec::new()) };
}

/// Adds `by` to a counter counted for every message. `counter!` with label values that
/// are not literals builds a key, allocating its labels, and looks it up in the
/// registry at every increment (2.5 % of a gateway's CPU at saturation): the handle is
/// made once per thread instead, by `make` (the recorder is installed before any
/// message arrives).
fn per_message(name: &'static str, labels: [&'static str; 2], make: impl FnOnce() -> Counter, by: u64) {
    let key = (name.as_ptr() as usize, labels);
    PER_MESSAGE.with_borrow_mut(|handles| match handles.iter().find(|(known, _)| *known == key) {
        Some((_, counter)) => counter.increment(by),
        None => {
            let counter = make();
            counter.increment(by);
            handles.push((key, counter));
        }
    });
}

/// A signal from another gateway reached a local receiver; `sent_at_us` is the
/// envelope's timestamp. Clocks of different machines may disagree: negative values
/// (a clock behind) are dropped rather than recorded as zero.
pub fn signal_delivered(sent_at_us: i64) {
    let now_us = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros() as i64);
    let elapsed_us = now_us - sent_at_us;
    if sent_at_us > 0 && elapsed_us >= 0 {
        SIGNAL_DELIVERY_HISTOGRAM.with(|delivery| delivery.record(elapsed_us as f64 / 1e6));
    }
}

thread_local! {
    /// Made once per thread, like the per-message counters (a signal's delivery is
    /// recorded for every signal).
    static SIGNAL_DELIVERY_HISTOGRAM: Histogram = histogram!(SIGNAL_DELIVERY);
}

/// A frame could not be queued: `first` when this cut the client off.
pub fn send_queue_full(first: bool) {
    counter!(SEND_QUEUE_DROPS).increment(1);
    if first {
        counter!(SLOW_CONSUMERS).increment(1);
    }
}

pub fn auth_failed(reason: &'static str) {
    counter!(AUTH_FAILURES, "reason" => reason).increment(1);
}

pub fn rate_limited(limit: Limit) {
    counter!(RATE_LIMITED, "limit" => limit.label()).increment(1);
}

/// `reason` is [`crate::limits::admission::Refusal::reason`], or `http_connections` for a
/// socket closed at accept (see [`crate::listener`]).
pub fn upgrade_refused(reason: &'static str) {
    counter!(UPGRADES_REFUSED, "reason" => reason).increment(1);
}

pub fn error_sent(code: ErrorCode) {
    counter!(ERRORS, "code" => code.as_str()).increment(1);
}

pub fn resume(outcome: Resume) {
    counter!(RESUMES, "outcome" => resume_label(outcome)).increment(1);
}

pub fn handover(sent: bool) {
    counter!(HANDOVERS, "direction" => if sent { "sent" } else { "received" }).increment(1);
}

pub fn state_lost() {
    counter!(STATE_LOSSES).increment(1);
}

pub fn room_repaired() {
    counter!(ROOM_REPAIRS).increment(1);
}

pub fn lease_renewal_failed() {
    counter!(LEASE_RENEWAL_FAILURES).increment(1);
}

/// The gauges sampled from the gateway's state (see `node::sample_gauges`).
pub fn set_state(sessions: usize, rooms: usize, members: usize, ready: bool) {
    gauge!(SESSIONS).set(sessions as f64);
    gauge!(ROOMS).set(rooms as f64);
    gauge!(ROOM_MEMBERS).set(members as f64);
    gauge!(READY).set(if ready { 1.0 } else { 0.0 });
}

pub fn draining(remaining_sessions: usize) {
    gauge!(DRAINING).set(1.0);
    gauge!(DRAIN_SESSIONS).set(remaining_sessions as f64);
}

/// The close code as a label: its number.
fn code_label(code: CloseCode) -> &'static str {
    match code {
        CloseCode::Normal => "1000",
        CloseCode::GoingAway => "1001",
        CloseCode::ProtocolError => "1002",
        CloseCode::PolicyViolation => "1008",
        CloseCode::InvalidData => "1007",
        CloseCode::TooLarge => "1009",
        CloseCode::Internal => "1011",
        CloseCode::TryAgainLater => "1013",
        CloseCode::Unauthorized => "4001",
        CloseCode::SlowConsumer => "4008",
        CloseCode::IdleTimeout => "4009",
        CloseCode::SessionMoved => "4010",
        CloseCode::ResumeFailed => "4011",
    }
}

fn resume_label(outcome: Resume) -> &'static str {
    match outcome {
        Resume::Complete => "complete",
        Resume::Gap => "gap",
        Resume::NoSession => "no_session",
        Resume::Unavailable => "unavailable",
    }
}

/// Why authentication fails: `AuthError::reason`, and the two ways of not sending a
/// token at all.
const AUTH_REASONS: &[&str] = &[
    "missing",
    "expired",
    "not_yet_valid",
    "bad_signature",
    "wrong_algorithm",
    "unknown_key",
    "malformed",
    "invalid_claims",
    "timeout",
    "no_auth_message",
];

/// The server message types, for labels.
const FRAME_TYPES: &[&str] = &[
    "welcome",
    "resumed",
    "joined",
    "left",
    "peer_joined",
    "peer_left",
    "signal",
    "broadcast",
    "ack",
    "pong",
    "error",
    "reconnect",
];

/// The `type` of a rendered frame, from its first field.
fn frame_type(frame: &str) -> &'static str {
    let Some(rest) = frame.strip_prefix(r#"{"type":""#) else { return "other" };
    let name = rest.split_once('"').map_or("", |(name, _)| name);
    FRAME_TYPES.iter().find(|known| **known == name).copied().unwrap_or("other")
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::ServerMessage;

    #[test]
    fn frame_types_are_read_from_every_renderer() {
        assert_eq!(frame_type(&crate::render::signal("r", "p", "offer", "{}")), "signal");
        assert_eq!(frame_type(&crate::render::broadcast("r", None, "1")), "broadcast");
        assert_eq!(frame_type(&crate::render::message(&ServerMessage::Pong { id: None })), "pong");
        let numbered = crate::replay::with_seq(
            &crate::render::message(&ServerMessage::Ack { id: protocol::RequestId::number(1) }),
            7,
        );
        assert_eq!(frame_type(&numbered), "ack");
        assert_eq!(frame_type(r#"{"seq":1}"#), "other");
    }
}
