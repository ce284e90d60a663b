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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Common;

    /// What one tester process would report in common: one gateway, one error.
    fn common(gateway: &str) -> Common {
        let mut common = Common::new([gateway.to_string()]);
        common.errors.record(format!("an error at {gateway}"));
        common
    }

    fn every_scenario(gateway: &str) -> [Report; 4] {
        [
            Report::Negotiate(negotiate::NegotiateReport { common: common(gateway), ..Default::default() }),
            Report::Connect(connect::ConnectReport { common: common(gateway), ..Default::default() }),
            Report::Churn(churn::ChurnReport { common: common(gateway), ..Default::default() }),
            Report::Storm(storm::StormReport { common: common(gateway), ..Default::default() }),
        ]
    }

    fn common_of(report: &Report) -> &Common {
        match report {
            Report::Negotiate(report) => &report.common,
            Report::Connect(report) => &report.common,
            Report::Churn(report) => &report.common,
            Report::Storm(report) => &report.common,
        }
    }

    /// Printed and read back as `merge` reads it, with the shared keys at the top of
    /// the document, where scripts and earlier reports have them.
    fn through_json(report: Report) -> Report {
        let text = serde_json::to_string(&report).unwrap();
        let document: serde_json::Value = serde_json::from_str(&text).unwrap();
        for key in ["scenario", "ok", "sources", "gateways", "servers", "timeline", "errors", "error_samples"] {
            assert!(document.get(key).is_some(), "no {key:?} at the top of {text}");
        }
        serde_json::from_str(&text).unwrap()
    }

    /// Every scenario's report merges the part all share: sources and errors add up,
    /// the gateways are both runs'.
    #[test]
    fn the_shared_part_of_every_report_survives_json_and_merges() {
        for (mine, theirs) in every_scenario("ws://a").into_iter().zip(every_scenario("ws://b")) {
            let merged = through_json(mine).merge(through_json(theirs)).unwrap();
            let common = common_of(&merged);
            assert_eq!(common.sources, 2);
            assert_eq!(common.gateways.iter().collect::<Vec<_>>(), ["ws://a", "ws://b"]);
            assert_eq!(common.errors.count, 2);
            assert_eq!(common.errors.samples, ["an error at ws://a", "an error at ws://b"]);
        }
    }
}
