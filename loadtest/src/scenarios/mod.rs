//! The load scenarios. Each produces a report that merges with the reports of the
//! same scenario run at the same time elsewhere (the pods of the in-cluster Job).

pub mod churn;
pub mod connect;
pub mod negotiate;
pub mod storm;

use serde::{Deserialize, Serialize};

/// A scenario's report: one JSON document, `scenario` naming the scenario.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "scenario", rename_all = "snake_case")]
// One report per run: the size of the larger variant costs nothing.
#[allow(clippy::large_enum_variant)]
pub enum Report {
    Negotiate(negotiate::NegotiateReport),
    Connect(connect::ConnectReport),
    Churn(churn::ChurnReport),
    Storm(storm::StormReport),
}

impl Report {
    pub fn ok(&self) -> bool {
        match self {
            Report::Negotiate(report) => report.ok,
            Report::Connect(report) => report.ok,
            Report::Churn(report) => report.ok,
            Report::Storm(report) => report.ok,
        }
    }

    pub fn summary(&self) -> String {
        match self {
            Report::Negotiate(report) => report.summary(),
            Report::Connect(report) => report.summary(),
            Report::Churn(report) => report.summary(),
            Report::Storm(report) => report.summary(),
        }
    }

    /// Adds the report of a run of the same scenario made at the same time.
    pub fn merge(self, other: Report) -> anyhow::Result<Report> {
        match (self, other) {
            (Report::Negotiate(mut mine), Report::Negotiate(theirs)) => {
                mine.merge(theirs);
                Ok(Report::Negotiate(mine))
            }
            (Report::Connect(mut mine), Report::Connect(theirs)) => {
                mine.merge(theirs);
                Ok(Report::Connect(mine))
            }
            (Report::Churn(mut mine), Report::Churn(theirs)) => {
                mine.merge(theirs);
                Ok(Report::Churn(mine))
            }
            (Report::Storm(mut mine), Report::Storm(theirs)) => {
                mine.merge(theirs);
                Ok(Report::Storm(mine))
            }
            _ => anyhow::bail!("reports of different scenarios do not merge"),
        }
    }
}
