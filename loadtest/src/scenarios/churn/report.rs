//! The `churn` scenario's report: one JSON document per run, which merges with the
//! reports of runs made at the same time.

use std::fmt::Write as _;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::histogram::Latency;
use crate::live::Timeline;
use crate::report::Common;
use crate::server_stats::{self, ServerStats};
use crate::tally::Errors;

/// What was asked for. In a merged report, `clients` and `rate_per_s` are totals.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    pub clients: u64,
    pub rate_per_s: f64,
    pub rooms: u64,
    pub reconnect_every: u64,
    pub duration_s: f64,
}

/// The steps the clients took, and how long each took.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Steps {
    /// Join-and-leave cycles completed.
    pub cycles: u64,
    /// To `welcome`.
    pub connect_us: Latency,
    /// From the request to `joined`: through a gateway, the room service and Redis.
    pub join_us: Latency,
    /// From the request to `left`.
    pub leave_us: Latency,
}

/// What a run measured, before it becomes a report.
pub struct Measured {
    pub steps: Steps,
    pub elapsed: Duration,
    pub leftover_members: u64,
    pub servers: Vec<ServerStats>,
    pub timeline: Timeline,
    pub errors: Errors,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct ChurnReport {
    /// No step failed and no member was left behind.
    pub ok: bool,
    pub settings: Settings,
    #[serde(flatten)]
    pub steps: Steps,
    /// Cycles a second achieved (summed over sources).
    pub cycles_per_s: f64,
    /// Members still listed in the rooms once every client had gone (and the settle
    /// time had passed): memberships the churn leaked.
    pub leftover_members: u64,
    /// The gateways' CPU time per cycle (summed over gateways).
    pub server_cpu_us_per_cycle: Option<f64>,
    /// Sources, gateways, servers, errors; the timeline counts joins.
    #[serde(flatten)]
    pub common: Common,
}

impl ChurnReport {
    pub fn new(settings: Settings, gateways: Vec<String>, measured: Measured) -> Self {
        let cycles_per_s = measured.steps.cycles as f64 / measured.elapsed.as_secs_f64().max(f64::EPSILON);
        let common = Common {
            servers: measured.servers,
            timeline: measured.timeline,
            errors: measured.errors,
            ..Common::new(gateways)
        };
        let mut report = Self {
            ok: false,
            settings,
            steps: measured.steps,
            cycles_per_s,
            leftover_members: measured.leftover_members,
            server_cpu_us_per_cycle: None,
            common,
        };
        report.derive();
        report
    }

    /// Recomputes what follows from the counts (after a merge too).
    fn derive(&mut self) {
        self.ok = self.common.errors.count == 0 && self.leftover_members == 0 && self.steps.cycles > 0;
        if !self.common.servers.is_empty() && self.steps.cycles > 0 {
            self.server_cpu_us_per_cycle =
                Some(server_stats::cpu_seconds(&self.common.servers) * 1e6 / self.steps.cycles as f64);
        }
    }

    /// Adds the report of a run made at the same time against the same gateways. The
    /// rooms of runs with their own prefixes are distinct, so leftovers add up.
    pub fn merge(&mut self, other: ChurnReport) {
        self.settings.clients += other.settings.clients;
        self.settings.rate_per_s += other.settings.rate_per_s;
        self.steps.cycles += other.steps.cycles;
        self.steps.connect_us.add(&other.steps.connect_us);
        self.steps.join_us.add(&other.steps.join_us);
        self.steps.leave_us.add(&other.steps.leave_us);
        self.cycles_per_s += other.cycles_per_s;
        self.leftover_members += other.leftover_members;
        self.common.merge(other.common);
        self.derive();
    }

    pub fn summary(&self) -> String {
        let mut text = String::new();
        let verdict = if self.ok { "PASSED" } else { "FAILED" };
        let _ = writeln!(
            text,
            "churn {verdict}: {} cycles ({:.0}/s of {:.0}/s asked), {} members left behind, {} errors",
            self.steps.cycles,
            self.cycles_per_s,
            self.settings.rate_per_s,
            self.leftover_members,
            self.common.errors.count
        );
        let _ = writeln!(text, "  connect {}", self.steps.connect_us.describe());
        let _ = writeln!(text, "  join    {}", self.steps.join_us.describe());
        let _ = writeln!(text, "  leave   {}", self.steps.leave_us.describe());
        if let Some(cpu) = self.server_cpu_us_per_cycle {
            let _ = writeln!(text, "  gateways: {cpu:.0} CPU-µs per cycle");
        }
        for sample in &self.common.errors.samples {
            let _ = writeln!(text, "  error: {sample}");
        }
        text.trim_end().to_string()
    }
}
