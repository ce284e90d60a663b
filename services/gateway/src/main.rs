use anyhow::Context;
use clap::Parser;
use gateway::cli::{Cli, Command};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let config = cli.flags.load_config()?;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Token(args) => {
            println!("{}", args.mint(&config)?);
            Ok(())
        }
        Command::Serve => {
            config.validate()?;
            common::logging::init(config.log_json);
            let listener = tokio::net::TcpListener::bind(config.listen)
                .await
                .with_context(|| format!("binding {}", config.listen))?;
            gateway::run(config, listener, common::shutdown::signal()).await
        }
    }
}
