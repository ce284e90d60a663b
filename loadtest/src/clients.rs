//! What every command needs to reach the cluster: where the gateways are, the secret
//! to sign the clients' tokens with, and a connected client per simulated user.

use std::time::Duration;

use anyhow::Context;
use clap::Args;
use protocol::client::Client;
use protocol::token::{Claims, mint};

use crate::targets::gateway_urls;

#[derive(Debug, Clone, Args)]
pub struct TargetArgs {
    /// WebSocket URL of a gateway (`ws://host:port/ws`); repeat for several.
    #[arg(long = "gateway")]
    pub gateways: Vec<String>,
    /// HOST:PORT whose every address is a gateway (a headless Service); repeatable.
    #[arg(long = "gateway-dns")]
    pub gateway_dns: Vec<String>,
    /// HS256 secret the gateways check tokens with (auth.jwt_secret); without it the
    /// clients connect anonymously, which only an embedded gateway allows.
    #[arg(long, env = "SWITCHBOARD_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
}

impl TargetArgs {
    /// The gateways' WebSocket URLs (see [`gateway_urls`]).
    pub async fn urls(&self) -> anyhow::Result<Vec<String>> {
        gateway_urls(&self.gateways, &self.gateway_dns).await
    }
}

/// Connects `identity` to the gateway at `url` with a token for `room` valid for
/// `valid_for` (or anonymously without a secret), and waits for its `welcome`.
pub async fn connect(
    url: &str,
    identity: &str,
    room: &str,
    secret: Option<&str>,
    valid_for: Duration,
) -> anyhow::Result<Client> {
    let token = secret.map(|secret| mint(secret, &Claims::new(identity, vec![room.into()], valid_for)));
    Client::connect(url, token.as_deref()).await.with_context(|| format!("{identity} connects to {url}"))
}
