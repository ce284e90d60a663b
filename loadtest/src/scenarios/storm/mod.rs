//! `storm`: pairs of members on different gateways exchange numbered signals at a
//! steady rate while something disrupts the cluster: a command run at a given moment
//! (`kill -TERM <gateway pid>` drains a gateway, `kill -KILL` crashes it, `kubectl
//! delete pod` in a cluster). The members are reconnecting clients: they follow the
//! gateway's `reconnect`, or notice the lost connection, and resume elsewhere. Reports
//! how each reconnection went (resumed, with or without a gap, or a new session) and
//! how long it took, and every message lost, duplicated or reordered.

mod exchange;
mod report;

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use protocol::ServerMessage;
use protocol::client::{Backoff, ReconnectingClient};
use protocol::token::{Claims, mint};
use tokio::time::Instant;

use exchange::{Member, Outcome, Pace};
pub use report::StormReport;
use report::{Disruption, Settings};

use crate::clients::TargetArgs;
use crate::live::{Live, Watch};
use crate::plot;
use crate::server_stats;

#[derive(Debug, Clone, Args)]
pub struct StormArgs {
    #[command(flatten)]
    target: TargetArgs,
    /// Pairs of members; a pair's two members start on different gateways (and fall
    /// back on the others).
    #[arg(long, default_value_t = 20)]
    pairs: usize,
    /// Numbered signals a second, over all members.
    #[arg(long, default_value_t = 1_000.0)]
    rate: f64,
    /// How long the members send.
    #[arg(long, default_value = "20s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// The disruption: a shell command (`sh -c`) run once, at --disrupt-at.
    #[arg(long)]
    disrupt: Option<String>,
    /// When the disruption runs, from the start of sending (default: a third in).
    #[arg(long, value_parser = humantime::parse_duration)]
    disrupt_at: Option<Duration>,
    /// How long the members wait for their partner's last messages after sending.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    settle: Duration,
    /// Messages that may be lost without failing the run (a crash loses what was in
    /// flight; a drain should lose nothing).
    #[arg(long, default_value_t = 0)]
    max_lost: u64,
    /// How long a member keeps trying to reconnect before it gives up.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    give_up_after: Duration,
    /// A gateway's metrics URL; repeat for each. With them the report holds the
    /// gateways' own numbers before and after.
    #[arg(long = "metrics")]
    metrics_urls: Vec<String>,
    /// Prefix of the room names (default: `lt-` and a random suffix).
    #[arg(long)]
    room_prefix: Option<String>,
    /// Draws the run's timeline (messages received a second) into this SVG file.
    #[arg(long)]
    plot: Option<std::path::PathBuf>,
}

pub async fn run(args: StormArgs) -> anyhow::Result<StormReport> {
    if args.pairs == 0 || args.rate <= 0.0 {
        bail!("--pairs and --rate must be positive");
    }
    let urls = args.target.urls().await?;
    if urls.len() < 2 {
        bail!("a storm needs at least two gateways, so that members have somewhere to go");
    }
    let prefix = args.room_prefix.clone().unwrap_or_else(|| format!("lt-{:06x}", rand::random::<u32>() & 0xff_ffff));
    let live = Arc::new(Live::default());
    let mut members = Vec::with_capacity(args.pairs * 2);
    for pair in 0..args.pairs {
        members.extend(pair_up(&args, &urls, &format!("{prefix}-{pair}"), pair, &live).await?);
    }
    let disrupt_at = args.disrupt_at.unwrap_or(args.duration / 3);
    eprintln!(
        "storm: {} pairs over {} gateways, {} signals/s for {:?}, disruption {:?} at {disrupt_at:?}",
        args.pairs,
        urls.len(),
        args.rate,
        args.duration,
        args.disrupt.as_deref().unwrap_or("none")
    );
    let before = server_stats::sample_all(&args.metrics_urls).await?;
    let started = Instant::now();
    let watch = Watch::start("storm", live.clone(), args.duration);
    let period = Duration::from_secs_f64(members.len() as f64 / args.rate);
    let exchanges: Vec<_> = members
        .into_iter()
        .enumerate()
        .map(|(index, member)| {
            let pace = Pace {
                period,
                // Members start spread over one period, so the rate is even.
                first_send: started + period.mul_f64(index as f64 / (args.pairs * 2) as f64),
                stop_sending: started + args.duration,
                give_up: started + args.duration + args.settle,
            };
            tokio::spawn(member.exchange(pace))
        })
        .collect();
    let disruption = match &args.disrupt {
        Some(command) => Some(disrupt(command, started + disrupt_at).await),
        None => None,
    };
    let mut outcomes = Vec::with_capacity(exchanges.len());
    for exchange in exchanges {
        outcomes.push(exchange.await.context("a member's task failed")?);
    }
    let elapsed = started.elapsed();
    let timeline = watch.finish().await;
    if let Some(path) = &args.plot {
        let title = format!("storm: {} pairs, {}", args.pairs, args.disrupt.as_deref().unwrap_or("no disruption"));
        plot::draw(&timeline, &title, "messages received", "latency", path)?;
        eprintln!("plotted into {}", path.display());
    }
    let servers = still_answering(&args.metrics_urls, before).await;
    let settings = Settings {
        pairs: args.pairs as u64,
        rate_per_s: args.rate,
        duration_s: args.duration.as_secs_f64(),
        disrupt_at_s: disrupt_at.as_secs_f64(),
        max_lost: args.max_lost,
    };
    let mut report = StormReport::new(settings, urls, disruption, pairwise(outcomes), elapsed, servers);
    report.common.timeline = timeline;
    Ok(report)
}

/// The two members of pair `index` in `room`: the first on gateway `index`, the second
/// on the next; both joined, each knowing the other's peer id.
async fn pair_up(
    args: &StormArgs,
    urls: &[String],
    room: &str,
    index: usize,
    live: &Arc<Live>,
) -> anyhow::Result<[Member; 2]> {
    let backoff = Backoff { give_up_after: args.give_up_after, ..Backoff::default() };
    let identities = [format!("{room}-a"), format!("{room}-b")];
    let mut clients = Vec::new();
    for (side, identity) in identities.iter().enumerate() {
        // Each member tries its own gateway first, then the others in turn.
        let mut own_first = urls.to_vec();
        own_first.rotate_left((index + side) % urls.len());
        let secret = args.target.jwt_secret.as_deref().context("storm needs --jwt-secret: its members resume")?;
        let token = mint(secret, &Claims::new(identity, vec![room.to_string()], Duration::from_secs(3600)));
        let mut client = ReconnectingClient::connect(own_first, &token, backoff)
            .await
            .with_context(|| format!("{identity} connects"))?;
        client.join(room, None).await.with_context(|| format!("{identity} joins {room}"))?;
        clients.push(client);
    }
    let [mut a, b] = <[ReconnectingClient; 2]>::try_from(clients).map_err(|_| anyhow::anyhow!("two members"))?;
    let a_peer = a.peer_id().to_string();
    let b_peer = b.peer_id().to_string();
    // The first member learns of the second from its peer_joined: then both views hold both.
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match a.next_message().await? {
                ServerMessage::PeerJoined { peer, .. } if peer.peer_id == b_peer => return anyhow::Ok(()),
                _ => continue,
            }
        }
    })
    .await
    .with_context(|| format!("{room}: the first member never saw the second join"))??;
    let member = |client, partner_identity: &String, partner_peer: &String| Member {
        client,
        live: live.clone(),
        room: room.to_string(),
        partner_identity: partner_identity.clone(),
        partner_peer: partner_peer.clone(),
    };
    Ok([member(a, &identities[1], &b_peer), member(b, &identities[0], &a_peer)])
}

/// The gateways' numbers before and after, of those that still answer: the disruption
/// may have stopped one.
async fn still_answering(urls: &[String], before: Vec<server_stats::Sample>) -> Vec<server_stats::ServerStats> {
    let mut servers = Vec::new();
    for (url, before) in urls.iter().zip(before) {
        match server_stats::sample(url).await {
            Ok(after) => servers.push(server_stats::ServerStats { metrics_url: url.clone(), before, after }),
            Err(error) => eprintln!("storm: {url} no longer answers ({error:#}); left out of the report"),
        }
    }
    servers
}

/// Runs the disruption at `at`; how it went.
async fn disrupt(command: &str, at: Instant) -> Disruption {
    tokio::time::sleep_until(at).await;
    eprintln!("storm: disrupting: {command}");
    let ran = tokio::process::Command::new("sh").args(["-c", command]).output().await;
    let outcome = match ran {
        Ok(output) if output.status.success() => Ok(()),
        Ok(output) => Err(format!("{} {}", output.status, String::from_utf8_lossy(&output.stderr).trim())),
        Err(error) => Err(error.to_string()),
    };
    Disruption { command: command.to_string(), error: outcome.err() }
}

/// Each member's outcome with what its partner received of its messages: the members
/// come in pairs, the first with the second.
fn pairwise(outcomes: Vec<Outcome>) -> Vec<(Outcome, u64)> {
    let mut paired = Vec::with_capacity(outcomes.len());
    let mut outcomes = outcomes.into_iter();
    while let (Some(a), Some(b)) = (outcomes.next(), outcomes.next()) {
        let (a_delivered, b_delivered) = (b.received.distinct, a.received.distinct);
        paired.push((a, a_delivered));
        paired.push((b, b_delivered));
    }
    paired
}
