//! The `gateway` command line: `gateway [serve]` runs the gateway, `gateway token`
//! mints a client token for local use.

use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use common::flags::{ServiceFlags, UrlOverride};
use serde::Serialize;

use crate::GatewayConfig;
use crate::auth::{Claims, mint};

#[derive(Debug, Parser)]
#[command(
    name = "gateway",
    version,
    about = "Signaling gateway of the WebRTC signaling cluster.",
    long_about = "Signaling gateway of the WebRTC signaling cluster.\n\n\
        With no Redis URL it runs embedded: in-memory bus, room service in this process, \
        anonymous access unless auth.jwt_secret is set. Settings come from defaults \
        (listen 127.0.0.1:8080, admin port 127.0.0.1:9080), then \
        --config, then GATEWAY_CONFIG_TOML, then GATEWAY_* variables (GATEWAY_REDIS__URL \
        sets redis.url), then these flags; docs/configuration.md lists them all."
)]
pub struct Cli {
    #[command(flatten)]
    pub flags: Flags,
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Settings that can be given as flags; each overrides the setting of the same name.
#[derive(Debug, Args)]
pub struct Flags {
    #[command(flatten)]
    pub service: ServiceFlags,
    /// gRPC URL of a separate room service (`room_service.url`).
    #[arg(long)]
    pub room_service_url: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gateway (what happens without a command).
    Serve,
    /// Print a client token signed with auth.jwt_secret, for local testing.
    Token(TokenArgs),
}

#[derive(Debug, Args)]
pub struct TokenArgs {
    /// The identity (JWT subject).
    #[arg(long)]
    pub identity: String,
    /// A room the token may join; repeat for several, `*` for any.
    #[arg(long = "room", required = true)]
    pub rooms: Vec<String>,
    /// Display name.
    #[arg(long)]
    pub name: Option<String>,
    /// Validity, e.g. `1h`, `30m`.
    #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
    pub ttl: Duration,
}

/// The flags that were given, in the shape of the configuration.
#[derive(Serialize)]
struct Overrides {
    #[serde(flatten)]
    service: common::flags::Overrides,
    #[serde(skip_serializing_if = "Option::is_none")]
    room_service: Option<UrlOverride>,
}

impl Flags {
    /// The configuration from every source, flags last.
    pub fn load_config(&self) -> anyhow::Result<GatewayConfig> {
        let overrides = Overrides {
            service: self.service.overrides(),
            room_service: self.room_service_url.clone().map(|url| UrlOverride { url }),
        };
        common::config::load(common::config::Sources {
            env_prefix: GatewayConfig::ENV_PREFIX,
            file: self.service.config.as_deref(),
            flags: overrides,
        })
    }
}

impl TokenArgs {
    /// The signed token, with the secret from the configuration.
    pub fn mint(&self, config: &GatewayConfig) -> anyhow::Result<String> {
        anyhow::ensure!(
            config.auth.algorithm == crate::auth::JwtAlgorithm::HS256,
            "auth.algorithm is {:?}: the gateway has only the public key; mint tokens with the private key",
            config.auth.algorithm
        );
        let secret = config.auth.jwt_secret.as_deref().filter(|secret| !secret.is_empty()).ok_or_else(|| {
            anyhow::anyhow!("no auth.jwt_secret configured: set GATEWAY_AUTH__JWT_SECRET or pass --config")
        })?;
        let mut claims = Claims::new(self.identity.clone(), self.rooms.clone(), self.ttl);
        claims.name = self.name.clone();
        Ok(mint(secret, &claims))
    }
}
