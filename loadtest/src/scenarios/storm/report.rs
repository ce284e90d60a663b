//! The `storm` scenario's report: one JSON document per run, which merges with the
//! reports of runs made at the same time.

use std::fmt::Write as _;
use std::time::Duration;

use protocol::client::Start;
use serde::{Deserialize, Serialize};

use super::exchange::Outcome;
use crate::histogram::Latency;
use crate::report::Common;
use crate::server_stats::ServerStats;
use crate::tally::{Errors, Tally};

/// What was asked for. In a merged report, `pairs` and `rate_per_s` are totals.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    pub pairs: u64,
    pub rate_per_s: f64,
    pub duration_s: f64,
    pub disrupt_at_s: f64,
    pub max_lost: u64,
}

/// The disruption command and, if it failed, why.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Disruption {
    pub command: String,
    pub error: Option<String>,
}

/// How the members' reconnections went.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Reconnections {
    pub count: u64,
    /// Resumed where nothing was lost (a drain's handover).
    pub resumed: u64,
    /// Resumed, but the old gateway could not hand over what it held (it crashed).
    pub resumed_with_gap: u64,
    /// The session was gone: a new one, rooms joined again.
    pub new_sessions: u64,
    /// Members that reconnected at least once.
    pub members: u64,
    /// From noticing the need to the first message on the new connection.
    pub time_us: Latency,
}

impl Reconnections {
    pub fn add(&mut self, other: &Reconnections) {
        self.count += other.count;
        self.resumed += other.resumed;
        self.resumed_with_gap += other.resumed_with_gap;
        self.new_sessions += other.new_sessions;
        self.members += other.members;
        self.time_us.add(&other.time_us);
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct StormReport {
    /// No member failed, the disruption ran, nothing was duplicated or reordered, and
    /// at most `settings.max_lost` messages were lost.
    pub ok: bool,
    pub settings: Settings,
    pub disruption: Option<Disruption>,
    pub elapsed_s: f64,
    /// Every numbered message, by what became of it (`received` counts each once,
    /// however often it came; altered, late and unexpected do not occur here).
    pub messages: Tally,
    /// Signals a gateway refused because the partner was not in the room then
    /// (between losing its session and joining again); also counted as lost.
    pub refused: u64,
    pub reconnections: Reconnections,
    /// Members whose client gave up (could not reconnect within --give-up-after).
    pub members_failed: u64,
    /// Sources, gateways, servers, errors; the timeline counts messages received (the
    /// disruption shows as a dip).
    #[serde(flatten)]
    pub common: Common,
}

impl StormReport {
    /// `members` holds each member's outcome with how many of its messages its partner
    /// received.
    pub fn new(
        settings: Settings,
        gateways: Vec<String>,
        disruption: Option<Disruption>,
        members: Vec<(Outcome, u64)>,
        elapsed: Duration,
        servers: Vec<ServerStats>,
    ) -> Self {
        let mut messages = Tally::default();
        let mut refused = 0;
        let mut reconnections = Reconnections::default();
        let mut errors = Errors::default();
        let mut members_failed = 0;
        for (outcome, delivered) in members {
            messages.sent += outcome.sent;
            messages.received += delivered;
            messages.lost += outcome.sent.saturating_sub(delivered);
            messages.duplicated += outcome.received.duplicated;
            messages.out_of_order += outcome.received.out_of_order;
            refused += outcome.received.refused;
            for start in &outcome.starts {
                match start {
                    Start::Resumed { gap: false, .. } => reconnections.resumed += 1,
                    Start::Resumed { gap: true, .. } => reconnections.resumed_with_gap += 1,
                    Start::Fresh => reconnections.new_sessions += 1,
                }
            }
            reconnections.count += outcome.starts.len() as u64;
            reconnections.members += u64::from(!outcome.starts.is_empty());
            for took in &outcome.reconnect_times {
                reconnections.time_us.record(*took);
            }
            if let Some(error) = outcome.error {
                members_failed += 1;
                errors.record(error);
            }
        }
        if let Some(Disruption { command, error: Some(error) }) = &disruption {
            errors.record(format!("the disruption `{command}` failed: {error}"));
        }
        let mut report = Self {
            ok: false,
            settings,
            disruption,
            elapsed_s: elapsed.as_secs_f64(),
            messages,
            refused,
            reconnections,
            members_failed,
            common: Common { servers, errors, ..Common::new(gateways) },
        };
        report.derive();
        report
    }

    fn derive(&mut self) {
        let messages = &self.messages;
        self.ok = self.common.errors.count == 0
            && messages.duplicated == 0
            && messages.out_of_order == 0
            && messages.lost <= self.settings.max_lost;
    }

    /// Adds the report of a run made at the same time (its own rooms, the same
    /// disruption): the first run's disruption and server numbers are kept.
    pub fn merge(&mut self, other: StormReport) {
        self.settings.pairs += other.settings.pairs;
        self.settings.rate_per_s += other.settings.rate_per_s;
        self.settings.max_lost += other.settings.max_lost;
        self.disruption = self.disruption.take().or(other.disruption);
        self.elapsed_s = self.elapsed_s.max(other.elapsed_s);
        self.messages.add(&other.messages);
        self.refused += other.refused;
        self.reconnections.add(&other.reconnections);
        self.members_failed += other.members_failed;
        self.common.merge(other.common);
        self.derive();
    }

    pub fn summary(&self) -> String {
        let mut text = String::new();
        let verdict = if self.ok { "PASSED" } else { "FAILED" };
        let m = &self.messages;
        let _ = writeln!(
            text,
            "storm {verdict}: {} sent, {} received, {} lost (at most {} allowed; {} refused), {} duplicated, {} out of order",
            m.sent, m.received, m.lost, self.settings.max_lost, self.refused, m.duplicated, m.out_of_order
        );
        if let Some(disruption) = &self.disruption {
            let _ = writeln!(text, "  disruption at {:.1} s: {}", self.settings.disrupt_at_s, disruption.command);
        }
        let r = &self.reconnections;
        let _ = writeln!(
            text,
            "  {} reconnections by {} members: {} resumed, {} resumed with a gap, {} new sessions",
            r.count, r.members, r.resumed, r.resumed_with_gap, r.new_sessions
        );
        let _ = writeln!(text, "  reconnect {}", r.time_us.describe());
        for sample in &self.common.errors.samples {
            let _ = writeln!(text, "  error: {sample}");
        }
        text.trim_end().to_string()
    }
}
