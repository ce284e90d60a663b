//! The load scenarios. Each produces a report that merges with the reports of the
//! same scenario run at the same time elsewhere (the pods of the in-cluster Job).

pub mod negotiate;

use serde::{Deserialize, Serialize};

/// A scenario's report: one JSON document, `scenario` naming the scenario.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "scenario", rename_all = "snake_case")]
pub enum Report {
    Negotiate(negotiate::NegotiateReport),
}

impl Report {
    pub fn ok(&self) -> bool {
        match self {
            Report::Negotiate(report) => report.ok,
        }
    }

    pub fn summary(&self) -> String {
        match self {
            Report::Negotiate(report) => report.summary(),
        }
    }

    /// Adds the report of a run made at the same time. (With a second scenario, reports
    /// of different scenarios will have to be refused here.)
    pub fn merge(self, other: Report) -> Report {
        let (Report::Negotiate(mut mine), Report::Negotiate(theirs)) = (self, other);
        mine.merge(theirs);
        Report::Negotiate(mine)
    }
}
