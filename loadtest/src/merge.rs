//! `merge`: the reports of load-tester processes that ran at the same time (the pods of
//! the in-cluster Job, k8s/loadtest) become one report, as if one process had run all
//! their rooms: counts and histograms add up, rates sum.
//!
//! Input is the processes' output as it comes (`kubectl logs` of every pod, files, or
//! standard input): every line that is a JSON report counts, the rest is skipped.

use std::io::Read;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Args;

use crate::scenarios::Report;

#[derive(Debug, Args)]
pub struct MergeArgs {
    /// Files holding reports (whole logs are fine); none or `-`: standard input.
    files: Vec<PathBuf>,
}

pub fn run(args: MergeArgs) -> anyhow::Result<Report> {
    let mut text = String::new();
    if args.files.is_empty() || args.files.iter().any(|file| file.as_os_str() == "-") {
        std::io::stdin().read_to_string(&mut text).context("reading standard input")?;
    }
    for file in args.files.iter().filter(|file| file.as_os_str() != "-") {
        text.push('\n');
        text.push_str(&std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?);
    }
    let reports = reports_in(&text)?;
    let count = reports.len();
    let mut reports = reports.into_iter();
    let Some(first) = reports.next() else {
        bail!("no report in the input: give the load tester's output (its last line is its report)");
    };
    let merged = reports.try_fold(first, Report::merge)?;
    eprintln!("merged {count} report(s)");
    Ok(merged)
}

/// Every line of `text` that is a scenario's report; other lines (progress, logs, a
/// smoke check's report) are skipped, a report that does not parse is an error.
fn reports_in(text: &str) -> anyhow::Result<Vec<Report>> {
    let mut reports = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if !line.starts_with('{') {
            continue;
        }
        let Ok(value) = serde_json::from_str::<serde_json::Value>(line) else { continue };
        if value.get("scenario").is_none() {
            continue;
        }
        reports.push(serde_json::from_value(value).with_context(|| format!("the report on line {}", number + 1))?);
    }
    Ok(reports)
}
