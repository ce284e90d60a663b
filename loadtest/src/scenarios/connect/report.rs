//! The `connect` scenario's report: one JSON document per run, which merges with the
//! reports of runs made at the same time.

use std::fmt::Write as _;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::histogram::Latency;
use crate::live::Timeline;
use crate::report::Common;
use crate::server_stats::{self, ServerStats};
use crate::tally::Errors;

/// What was asked for. In a merged report, `connections` and `rate_per_s` are totals.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    pub connections: u64,
    pub rate_per_s: f64,
    pub room_size: u64,
    pub hold_s: f64,
    pub source_ips: u64,
}

/// What a run measured, before it becomes a report.
pub struct Measured {
    pub joined: u64,
    pub dropped: u64,
    pub connect_us: Latency,
    pub join_us: Latency,
    pub ramp: Duration,
    pub servers: Vec<ServerStats>,
    pub timeline: Timeline,
    pub errors: Errors,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct ConnectReport {
    /// Every connection connected, joined and lasted the hold.
    pub ok: bool,
    pub settings: Settings,
    /// Connections that connected and joined their room.
    pub joined: u64,
    /// Of those, lost before the end of the hold.
    pub dropped: u64,
    /// From the start of the ramp to the last connection's outcome (the longest, in a
    /// merged report).
    pub ramp_s: f64,
    /// To `welcome`, and from there to `joined`.
    pub connect_us: Latency,
    pub join_us: Latency,
    /// The gateways' resident memory grown per connection held (summed over gateways).
    pub server_kib_per_connection: Option<f64>,
    /// The gateways' CPU time per connection opened (summed over gateways).
    pub server_cpu_us_per_connection: Option<f64>,
    /// Sources, gateways, errors; the servers' numbers are from before the ramp and
    /// the end of the hold; the timeline counts connections joined.
    #[serde(flatten)]
    pub common: Common,
}

impl ConnectReport {
    pub fn new(settings: Settings, gateways: Vec<String>, measured: Measured) -> Self {
        let common = Common {
            servers: measured.servers,
            timeline: measured.timeline,
            errors: measured.errors,
            ..Common::new(gateways)
        };
        let mut report = Self {
            ok: false,
            settings,
            joined: measured.joined,
            dropped: measured.dropped,
            ramp_s: measured.ramp.as_secs_f64(),
            connect_us: measured.connect_us,
            join_us: measured.join_us,
            server_kib_per_connection: None,
            server_cpu_us_per_connection: None,
            common,
        };
        report.derive();
        report
    }

    /// Recomputes what follows from the counts (after a merge too).
    fn derive(&mut self) {
        self.ok = self.joined == self.settings.connections && self.dropped == 0 && self.common.errors.count == 0;
        let held = self.joined.saturating_sub(self.dropped) as f64;
        let servers = &self.common.servers;
        if servers.is_empty() || held == 0.0 {
            return;
        }
        let grown: f64 = servers.iter().map(|s| s.after.resident_bytes - s.before.resident_bytes).sum();
        let cpu = server_stats::cpu_seconds(servers);
        self.server_kib_per_connection = Some(grown / 1024.0 / held);
        self.server_cpu_us_per_connection = Some(cpu * 1e6 / self.joined as f64);
    }

    /// Adds the report of a run made at the same time against the same gateways.
    pub fn merge(&mut self, other: ConnectReport) {
        self.settings.connections += other.settings.connections;
        self.settings.rate_per_s += other.settings.rate_per_s;
        self.settings.source_ips += other.settings.source_ips;
        self.joined += other.joined;
        self.dropped += other.dropped;
        self.ramp_s = self.ramp_s.max(other.ramp_s);
        self.connect_us.add(&other.connect_us);
        self.join_us.add(&other.join_us);
        self.common.merge(other.common);
        self.derive();
    }

    pub fn summary(&self) -> String {
        let mut text = String::new();
        let verdict = if self.ok { "PASSED" } else { "FAILED" };
        let _ = writeln!(
            text,
            "connect {verdict}: {} of {} connections joined in {:.1} s ({} lost while held), {} errors",
            self.joined, self.settings.connections, self.ramp_s, self.dropped, self.common.errors.count
        );
        let _ = writeln!(text, "  connect {}", self.connect_us.describe());
        let _ = writeln!(text, "  join    {}", self.join_us.describe());
        for server in &self.common.servers {
            let _ = writeln!(
                text,
                "  {}: {:.0} connections, RSS {:.1} -> {:.1} MiB, CPU {:.2} s",
                server.metrics_url,
                server.after.connections,
                server.before.resident_bytes / 1048576.0,
                server.after.resident_bytes / 1048576.0,
                server.after.cpu_seconds - server.before.cpu_seconds
            );
        }
        if let (Some(kib), Some(cpu)) = (self.server_kib_per_connection, self.server_cpu_us_per_connection) {
            let _ = writeln!(
                text,
                "  gateways: {kib:.2} KiB of RSS per connection held, {cpu:.0} CPU-µs per connection opened"
            );
        }
        for sample in &self.common.errors.samples {
            let _ = writeln!(text, "  error: {sample}");
        }
        text.trim_end().to_string()
    }
}
