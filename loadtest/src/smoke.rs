//! `smoke`: is this cluster able to connect two peers? Two clients on two different
//! gateways join one room, see each other, negotiate, and one leaves. This is what the
//! Helm chart's test hook runs (`helm test`), and a quick check after any deployment.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use protocol::ServerMessage;
use protocol::client::Client;
use protocol::token::{Claims, mint};
use serde::Serialize;

use crate::negotiation::{Script, Side, negotiate, next_relevant};
use crate::targets::gateway_urls;

#[derive(Debug, Args)]
pub struct SmokeArgs {
    /// WebSocket URL of a gateway (`ws://host:port/ws`); repeat for several.
    #[arg(long = "gateway")]
    gateways: Vec<String>,
    /// HOST:PORT whose every address is a gateway (a headless Service); repeatable.
    #[arg(long = "gateway-dns")]
    gateway_dns: Vec<String>,
    /// HS256 secret the gateways check tokens with (auth.jwt_secret); without it the
    /// clients connect anonymously, which only an embedded gateway allows.
    #[arg(long, env = "SWITCHBOARD_JWT_SECRET", hide_env_values = true)]
    jwt_secret: Option<String>,
    /// Room of the check; by default a fresh random name.
    #[arg(long)]
    room: Option<String>,
    /// Let both clients use one gateway when only one is there (single-node setups);
    /// by default the check fails unless they land on two different nodes.
    #[arg(long)]
    allow_same_gateway: bool,
    /// Deadline of the whole check.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    timeout: Duration,
}

/// The JSON report, the last line of output.
#[derive(Debug, Default, Serialize)]
struct Report {
    ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    gateways: Vec<String>,
    nodes: Vec<String>,
    join_ms: Option<f64>,
    negotiation_ms: Option<f64>,
}

pub async fn run(args: SmokeArgs) -> anyhow::Result<()> {
    let mut report = Report::default();
    let deadline = args.timeout;
    let outcome = match tokio::time::timeout(deadline, check(&args, &mut report)).await {
        Ok(outcome) => outcome,
        Err(_) => Err(anyhow::anyhow!("the check did not finish within {}", humantime::format_duration(deadline))),
    };
    report.ok = outcome.is_ok();
    report.error = outcome.as_ref().err().map(|e| format!("{e:#}"));
    println!("{}", serde_json::to_string(&report).expect("a report serializes"));
    outcome
}

async fn check(args: &SmokeArgs, report: &mut Report) -> anyhow::Result<()> {
    let urls = gateway_urls(&args.gateways, &args.gateway_dns).await?;
    if urls.len() < 2 && !args.allow_same_gateway {
        bail!("only one gateway ({}); the check needs two (or --allow-same-gateway)", urls[0]);
    }
    let room = args.room.clone().unwrap_or_else(|| format!("smoke-{:016x}", rand::random::<u64>()));
    let (url_a, url_b) = (&urls[0], &urls[1 % urls.len()]);
    report.gateways = vec![url_a.clone(), url_b.clone()];

    let mut alice = connect(url_a, "smoke-alice", &room, args.jwt_secret.as_deref()).await?;
    let mut bob = connect(url_b, "smoke-bob", &room, args.jwt_secret.as_deref()).await?;
    let (node_a, node_b) = (alice.welcome().server.node.clone(), bob.welcome().server.node.clone());
    eprintln!("alice on {url_a} (node {node_a}), bob on {url_b} (node {node_b}), room {room}");
    report.nodes = vec![node_a.clone(), node_b.clone()];
    if node_a == node_b && !args.allow_same_gateway {
        bail!("both clients landed on node {node_a}: give two different gateways");
    }

    let started = Instant::now();
    alice.join(&room, None).await.context("alice joins")?;
    let peers = bob.join(&room, None).await.context("bob joins")?;
    report.join_ms = Some(millis(started.elapsed()));
    let (alice_id, bob_id) = (alice.peer_id().to_string(), bob.peer_id().to_string());
    if !peers.iter().any(|peer| peer.peer_id == alice_id) {
        bail!("bob's join did not list alice ({alice_id}): membership is not shared between the gateways");
    }
    expect_presence(&mut alice, |m| matches!(m, ServerMessage::PeerJoined { peer, .. } if peer.peer_id == bob_id))
        .await
        .context("alice waits for bob's peer_joined")?;
    eprintln!("both joined in {:.1} ms", millis(started.elapsed()));

    // The newcomer offers, as in docs/protocol.md's flow.
    let offerer = Side { client: &mut bob, peer_id: bob_id.clone() };
    let answerer = Side { client: &mut alice, peer_id: alice_id };
    let took = negotiate(&room, offerer, answerer, Script::default()).await?;
    report.negotiation_ms = Some(millis(took));
    eprintln!("negotiated in {:.1} ms", millis(took));

    bob.leave(&room).await.context("bob leaves")?;
    expect_presence(&mut alice, |m| matches!(m, ServerMessage::PeerLeft { peer_id, .. } if *peer_id == bob_id))
        .await
        .context("alice waits for bob's peer_left")?;
    alice.close().await?;
    bob.close().await?;
    Ok(())
}

async fn connect(url: &str, identity: &str, room: &str, secret: Option<&str>) -> anyhow::Result<Client> {
    let token = secret.map(|secret| mint(secret, &Claims::new(identity, vec![room.into()], Duration::from_secs(300))));
    Client::connect(url, token.as_deref()).await.with_context(|| format!("{identity} connects to {url}"))
}

async fn expect_presence(client: &mut Client, wanted: impl Fn(&ServerMessage) -> bool) -> anyhow::Result<()> {
    next_relevant(client, |message| wanted(&message).then_some(Ok(()))).await
}

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}
