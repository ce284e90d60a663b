use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use common::telemetry::Telemetry;
use gateway::cli::{Cli, Command};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let mut config = cli.flags.load_config()?;
    if cli.flags.service.check_config {
        config.validate()?;
        println!("{}", config.redacted());
        return Ok(());
    }
    match cli.command.unwrap_or(Command::Serve) {
        Command::Token(args) => {
            println!("{}", args.mint(&config)?);
            Ok(())
        }
        Command::Serve => {
            config.validate()?;
            // Fixed here so that traces and the gateway name the node alike.
            let node_id = config.node_id.get_or_insert_with(|| common::node_id("gw")).clone();
            let telemetry = Arc::new(Telemetry::install("gateway", &node_id, &config.telemetry, config.log_json)?);
            gateway::metrics::describe();
            room_service::metrics::describe();
            bus::metered::describe();
            common::telemetry::grpc::describe(common::telemetry::grpc::Side::Client);
            common::admin::start(config.telemetry.admin_listen, telemetry.clone()).await?;
            let listener = tokio::net::TcpListener::bind(config.listen)
                .await
                .with_context(|| format!("binding {}", config.listen))?;
            let outcome = gateway::run(config, listener, common::shutdown::signal()).await;
            telemetry.shutdown().await;
            outcome
        }
    }
}
