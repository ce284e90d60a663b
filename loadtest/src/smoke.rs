//! `smoke`: is this cluster able to connect two peers? Two clients on two different
//! gateways join one room, see each other, negotiate, and one leaves. This is what the
//! Helm chart's test hook runs (`helm test`), and a quick check after any deployment.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use protocol::ServerMessage;
use protocol::client::Client;
use serde::Serialize;

use crate::clients::{TargetArgs, connect};
use crate::negotiation::{Script, Side, negotiate, next_relevant};

/// The check takes seconds; its tokens need not outlive it by much.
const TOKEN_LIFETIME: Duration = Duration::from_secs(300);

#[derive(Debug, Args)]
pub struct SmokeArgs {
    #[command(flatten)]
    target: TargetArgs,
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

/// Runs the check; whether it passed. The report is the last line of output, after any
/// error (`kubectl logs --tail=1` shows it).
pub async fn run(args: SmokeArgs) -> bool {
    let mut report = Report::default();
    let deadline = args.timeout;
    let outcome = match tokio::time::timeout(deadline, check(&args, &mut report)).await {
        Ok(outcome) => outcome,
        Err(_) => Err(anyhow::anyhow!("the check did not finish within {}", humantime::format_duration(deadline))),
    };
    if let Err(error) = &outcome {
        eprintln!("error: {error:#}");
        report.error = Some(format!("{error:#}"));
    }
    report.ok = outcome.is_ok();
    println!("{}", serde_json::to_string(&report).expect("a report serializes"));
    report.ok
}

async fn check(args: &SmokeArgs, report: &mut Report) -> anyhow::Result<()> {
    let urls = args.target.urls().await?;
    if urls.len() < 2 && !args.allow_same_gateway {
        bail!("only one gateway ({}); the check needs two (or --allow-same-gateway)", urls[0]);
    }
    let room = args.room.clone().unwrap_or_else(|| format!("smoke-{:016x}", rand::random::<u64>()));
    let (url_a, url_b) = (&urls[0], &urls[1 % urls.len()]);
    report.gateways = vec![url_a.clone(), url_b.clone()];

    let secret = args.target.jwt_secret.as_deref();
    let mut alice = connect(url_a, "smoke-alice", &room, secret, TOKEN_LIFETIME).await?;
    let mut bob = connect(url_b, "smoke-bob", &room, secret, TOKEN_LIFETIME).await?;
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

async fn expect_presence(client: &mut Client, wanted: impl Fn(&ServerMessage) -> bool) -> anyhow::Result<()> {
    next_relevant(client, |message| wanted(&message).then_some(Ok(()))).await
}

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}
