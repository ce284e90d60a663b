//! `switchboard-loadtest`: drives a signaling cluster through its public WebSocket API
//! with the shared Rust client (the `protocol` crate).
//!
//! So far it has one command, `smoke`: one negotiation between two clients on two
//! different gateways, what the Helm chart's `helm test` hook runs in the cluster
//! (docs/deployment.md). The load scenarios come with the load-test work (loadtest/README.md).

mod negotiation;
mod smoke;
mod targets;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "switchboard-loadtest", version, about = "Load tester and smoke check of the signaling cluster.")]
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
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Smoke(args) => smoke::run(args).await,
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
