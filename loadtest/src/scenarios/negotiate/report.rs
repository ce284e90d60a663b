//! The `negotiate` scenario's report: one JSON document per run, which merges with the
//! reports of runs made at the same time (the pods of the in-cluster Job) into the
//! report of one run as large as all of them.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::room::{RoomStats, Setup};
use crate::histogram::Latency;
use crate::report::Common;
use crate::server_stats;
use crate::tally::Tally;

/// What was asked for. In a merged report, `rooms` and `rate_msgs_per_s` are totals.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    pub rooms: u64,
    pub room_size: u64,
    pub candidates: u64,
    pub sdp_bytes: u64,
    /// Offered rate of signaling messages; absent: as fast as the rooms go (saturation,
    /// with one negotiation in flight per room).
    pub rate_msgs_per_s: Option<f64>,
    pub duration_s: f64,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct NegotiateReport {
    /// Every message arrived once, intact, in order; every room ran; no error.
    pub ok: bool,
    pub settings: Settings,
    /// The gateways' node ids, as their `welcome` messages said.
    pub nodes: BTreeSet<String>,
    pub connections: u64,
    /// Rooms whose members could not all connect, join and see each other.
    pub rooms_failed: u64,
    pub negotiations: u64,
    /// Length of the load phase (the longest, in a merged report).
    pub elapsed_s: f64,
    /// Messages received per second of load (summed over sources).
    pub throughput_msgs_per_s: f64,
    pub messages: Tally,
    /// One-way latency of each signaling message, sender to receiver.
    pub latency_us: Latency,
    /// From a negotiation's offer sent to the answerer's end-of-candidates received.
    pub negotiation_us: Latency,
    pub connect_us: Latency,
    pub join_us: Latency,
    /// How late negotiations started against the schedule: large values mean the
    /// cluster (or this tester) could not keep up with the offered rate.
    pub schedule_lag_us: Latency,
    /// The gateways' CPU time per message received, summed over gateways (the tester
    /// and Redis not included).
    pub server_cpu_us_per_message: Option<f64>,
    /// Sources, gateways, errors; the servers' numbers are from the start and the end
    /// of the load phase; the timeline counts messages received.
    #[serde(flatten)]
    pub common: Common,
}

impl NegotiateReport {
    pub fn new(settings: Settings, gateways: &[String]) -> Self {
        Self { settings, common: Common::new(gateways.iter().cloned()), ..Self::default() }
    }

    pub fn add_setup(&mut self, setup: &Setup) {
        self.connections += setup.connect.count();
        self.connect_us.add(&setup.connect);
        self.join_us.add(&setup.join);
        self.nodes.extend(setup.nodes.iter().cloned());
    }

    pub fn add_room(&mut self, room: RoomStats) {
        self.messages.add(&room.tally);
        self.latency_us.add(&room.latency);
        self.negotiation_us.add(&room.negotiation);
        self.schedule_lag_us.add(&room.schedule_lag);
        self.negotiations += room.negotiations;
        self.common.errors.add(room.errors);
    }

    /// Closes the report of a load phase that lasted `elapsed_s`.
    pub fn finish(&mut self, elapsed_s: f64) {
        self.elapsed_s = elapsed_s;
        self.throughput_msgs_per_s = if elapsed_s > 0.0 { self.messages.received as f64 / elapsed_s } else { 0.0 };
        self.ok = self.messages.is_clean() && self.rooms_failed == 0 && self.common.errors.count == 0;
        self.derive_server_cost();
    }

    fn derive_server_cost(&mut self) {
        let received = self.messages.received as f64;
        let servers = &self.common.servers;
        self.server_cpu_us_per_message =
            (!servers.is_empty() && received > 0.0).then(|| server_stats::cpu_seconds(servers) * 1e6 / received);
    }

    /// Adds the report of a run made at the same time as this one.
    pub fn merge(&mut self, other: NegotiateReport) {
        self.ok &= other.ok;
        let (mine, theirs) = (&mut self.settings, other.settings);
        mine.rooms += theirs.rooms;
        mine.rate_msgs_per_s = match (mine.rate_msgs_per_s, theirs.rate_msgs_per_s) {
            (Some(a), Some(b)) => Some(a + b),
            _ => None,
        };
        mine.duration_s = mine.duration_s.max(theirs.duration_s);
        self.nodes.extend(other.nodes);
        self.connections += other.connections;
        self.rooms_failed += other.rooms_failed;
        self.negotiations += other.negotiations;
        self.elapsed_s = self.elapsed_s.max(other.elapsed_s);
        self.throughput_msgs_per_s += other.throughput_msgs_per_s;
        self.messages.add(&other.messages);
        self.latency_us.add(&other.latency_us);
        self.negotiation_us.add(&other.negotiation_us);
        self.connect_us.add(&other.connect_us);
        self.join_us.add(&other.join_us);
        self.schedule_lag_us.add(&other.schedule_lag_us);
        self.common.merge(other.common);
        self.derive_server_cost();
    }

    /// The human summary.
    pub fn summary(&self) -> String {
        let s = &self.settings;
        let offered = s.rate_msgs_per_s.map_or("saturation".into(), |rate| format!("offered {rate:.0} msg/s"));
        let m = &self.messages;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "negotiate: {} rooms of {} over {} gateway address(es), {} node(s), {}, {:.1} s of load from {} source(s)",
            s.rooms,
            s.room_size,
            self.common.gateways.len(),
            self.nodes.len(),
            offered,
            self.elapsed_s,
            self.common.sources
        );
        let _ = writeln!(
            out,
            "  {} connections, {} rooms failed, {} negotiations, {:.0} msg/s received",
            self.connections, self.rooms_failed, self.negotiations, self.throughput_msgs_per_s
        );
        let _ = writeln!(
            out,
            "  messages: {} sent, {} received, {} lost, {} duplicated, {} out of order, {} altered, {} late, {} unexpected",
            m.sent, m.received, m.lost, m.duplicated, m.out_of_order, m.altered, m.late, m.unexpected
        );
        let _ = writeln!(out, "  one-way latency: {}", self.latency_us.describe());
        let _ = writeln!(out, "  negotiation:     {}", self.negotiation_us.describe());
        let _ = writeln!(out, "  connect:         {}", self.connect_us.describe());
        let _ = writeln!(out, "  join:            {}", self.join_us.describe());
        if s.rate_msgs_per_s.is_some() {
            let _ = writeln!(out, "  schedule lag:    {}", self.schedule_lag_us.describe());
        }
        if let Some(cpu) = self.server_cpu_us_per_message {
            let seconds = server_stats::cpu_seconds(&self.common.servers);
            let _ = writeln!(out, "  gateways: {seconds:.2} CPU-s, {cpu:.1} CPU-µs per message received");
        }
        let _ = write!(out, "  errors: {}", self.common.errors.count);
        for sample in &self.common.errors.samples {
            let _ = write!(out, "\n    {sample}");
        }
        out
    }
}
