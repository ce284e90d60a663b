//! What every scenario's report has besides its own numbers: how many tester
//! processes it covers, the gateways they used, the gateways' own numbers, the run
//! second by second, and the errors. Flattened into each report, so that its JSON
//! document stays one level deep.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::live::Timeline;
use crate::server_stats::ServerStats;
use crate::tally::Errors;

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Common {
    /// How many load-tester processes this report covers.
    pub sources: u64,
    /// The gateway URLs the testers were given.
    pub gateways: BTreeSet<String>,
    /// The gateways' own numbers before and after the measured phase, when their
    /// metrics URLs were given.
    pub servers: Vec<ServerStats>,
    /// Second by second: what the scenario counts (messages, joins, connections),
    /// latency percentiles, errors.
    #[serde(default)]
    pub timeline: Timeline,
    /// `errors` and up to 20 `error_samples`.
    #[serde(flatten)]
    pub errors: Errors,
}

impl Common {
    /// One tester's run against `gateways`.
    pub fn new(gateways: impl IntoIterator<Item = String>) -> Self {
        Self { sources: 1, gateways: gateways.into_iter().collect(), ..Self::default() }
    }

    /// Adds a run made at the same time against the same gateways: the servers'
    /// numbers are the same for both, so the first run's are kept.
    pub fn merge(&mut self, other: Common) {
        self.sources += other.sources;
        self.gateways.extend(other.gateways);
        if self.servers.is_empty() {
            self.servers = other.servers;
        }
        crate::live::merge(&mut self.timeline, other.timeline);
        self.errors.add(other.errors);
    }
}
