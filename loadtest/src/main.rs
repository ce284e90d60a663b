//! `switchboard-loadtest`: drives a signaling cluster through its public WebSocket API
//! with the shared Rust client (the `protocol` crate).
//!
//! - `smoke`: one negotiation between two clients on two different gateways, what the
//!   Helm chart's `helm test` hook runs in the cluster (docs/deployment.md);
//! - `negotiate`: rooms negotiating at a fixed rate or at saturation, with latency
//!   histograms and message accounting (loadtest/README.md);
//! - `connect`: many idle connections, for connect latency and the gateways' memory
//!   per connection;
//! - `churn`: joins, leaves, disconnects and reconnects at a given rate, for their
//!   latency and for memberships left behind;
//! - `storm`: pairs signaling while a command disrupts the cluster (a gateway drained
//!   or killed), for reconnection times and lost messages;
//! - `merge`: the reports of several runs made at the same time (the pods of the
//!   in-cluster Job, k8s/loadtest) as one.
//!
//! A run writes its progress and human summary to standard error and its JSON report
//! as the last line of standard output; the exit status says whether it passed.

mod clients;
mod histogram;
mod live;
mod merge;
mod negotiation;
mod plot;
mod report;
mod scenario_file;
mod scenarios;
mod server_stats;
mod smoke;
mod tally;
mod targets;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::scenarios::Report;

#[derive(Debug, Parser)]
#[command(name = "switchboard-loadtest", version, about = "Load tester and smoke check of the signaling cluster.")]
// A flag given twice takes its last value, so a Job's arguments can be overridden by
// appending to them.
#[command(args_override_self = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Connect two clients to two different gateways, run one full negotiation between
    /// them (offer, answer, trickle candidates both ways, end of candidates) and check
    /// every message arrived once, in order. Exit status 0 on success, 1 otherwise; the
    /// last line of output is a JSON report.
    Smoke(smoke::SmokeArgs),
    /// Rooms whose members sit on different gateways negotiate again and again, at a
    /// fixed offered rate (--rate) or as fast as they go, for --duration. Reports
    /// one-way latency per message, negotiation, connect and join latency, and lost,
    /// duplicated, reordered and altered messages. Exit status 1 if any message was
    /// lost or wrong or any room failed.
    Negotiate(scenarios::negotiate::NegotiateArgs),
    /// Ramp to --connections concurrent connections at --rate a second, each joined to a
    /// room, and hold them for --hold. Reports connect and join latency and failures,
    /// and with the gateways' --metrics URLs their memory per connection and CPU. Exit
    /// status 1 if any connection failed or was lost.
    Connect(scenarios::connect::ConnectArgs),
    /// --clients join and leave rooms at --rate cycles a second over all of them,
    /// reconnecting every --reconnect-every cycles, for --duration. Reports connect,
    /// join and leave latency, and the members still in the rooms once every client has
    /// gone. Exit status 1 if any step failed or any member was left behind.
    Churn(scenarios::churn::ChurnArgs),
    /// --pairs of members on different gateways exchange numbered signals at --rate for
    /// --duration while --disrupt (a shell command: drain or kill a gateway) runs at
    /// --disrupt-at; the members reconnect and resume elsewhere. Reports reconnections
    /// (resumed, with a gap, new sessions) and their times, and lost, duplicated and
    /// reordered messages. Exit status 1 if a member failed, anything was duplicated or
    /// reordered, or more than --max-lost messages were lost.
    Storm(scenarios::storm::StormArgs),
    /// Merge the reports of runs made at the same time (for example the pods of the
    /// in-cluster Job) into one. Reads whole logs: lines that are not reports are
    /// skipped.
    Merge(merge::MergeArgs),
    /// Run the scenario a TOML file describes: `scenario = "<name>"` and its options by
    /// their long names. Options after the file override it (loadtest/README.md).
    Run(scenario_file::RunArgs),
}

#[tokio::main]
async fn main() -> ExitCode {
    let mut command = Cli::parse().command;
    if let Command::Run(args) = &command {
        let program = std::env::args().next().unwrap_or_else(|| "switchboard-loadtest".into());
        match scenario_file::command_line(&program, args).map(Cli::try_parse_from) {
            Ok(Ok(cli)) => command = cli.command,
            Ok(Err(error)) => error.exit(),
            Err(error) => {
                eprintln!("error: {error:#}");
                return ExitCode::FAILURE;
            }
        }
    }
    let outcome = match command {
        Command::Smoke(args) => Ok(smoke::run(args).await),
        Command::Negotiate(args) => scenarios::negotiate::run(args).await.map(Report::Negotiate).map(publish),
        Command::Connect(args) => scenarios::connect::run(args).await.map(Report::Connect).map(publish),
        Command::Churn(args) => scenarios::churn::run(args).await.map(Report::Churn).map(publish),
        Command::Storm(args) => scenarios::storm::run(args).await.map(Report::Storm).map(publish),
        Command::Merge(args) => merge::run(args).map(publish),
        Command::Run(_) => Err(anyhow::anyhow!("a scenario file cannot run another")),
    };
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Writes the summary to standard error, then the JSON report as the last line of
/// standard output; whether the run passed.
fn publish(report: Report) -> bool {
    eprintln!("{}", report.summary());
    println!("{}", serde_json::to_string(&report).expect("a report serializes"));
    report.ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every scenario file kept in loadtest/scenarios stands for a command line the
    /// parser accepts (given the gateways, which the files leave to the caller).
    #[test]
    fn the_example_scenario_files_parse() {
        let folder = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
        let mut checked = 0;
        for entry in std::fs::read_dir(&folder).expect("loadtest/scenarios") {
            let file = entry.unwrap().path();
            let overrides = vec!["--gateway".to_string(), "ws://127.0.0.1:1/ws".to_string()];
            let line = scenario_file::command_line(
                "switchboard-loadtest",
                &scenario_file::RunArgs::new(file.clone(), overrides),
            )
            .unwrap_or_else(|error| panic!("{}: {error:#}", file.display()));
            Cli::try_parse_from(&line).unwrap_or_else(|error| panic!("{}: {error}", file.display()));
            checked += 1;
        }
        assert!(checked >= 4, "{checked} files");
    }
}
