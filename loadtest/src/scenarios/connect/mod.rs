//! `connect`: ramp to N concurrent connections at a given rate, each joined to a room of
//! `room_size`, hold them idle, and report connect and join latency, failures, and, from
//! the gateways' `/metrics` before and at the peak, their memory per connection and the
//! CPU the ramp cost. Connections go round the gateways and round the source addresses
//! given, so tens of thousands fit the port range of one machine.

mod report;

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::bail;
use clap::Args;
use protocol::client::{Auth, Client, ConnectOptions};
use protocol::token::{Claims, mint};
use tokio::sync::{mpsc, watch};

pub use report::ConnectReport;
use report::{Measured, Settings};

use crate::clients::TargetArgs;
use crate::histogram::Latency;
use crate::live::{Live, Watch};
use crate::plot;
use crate::server_stats;
use crate::tally::Errors;

#[derive(Debug, Clone, Args)]
pub struct ConnectArgs {
    #[command(flatten)]
    target: TargetArgs,
    /// Connections to open and hold.
    #[arg(long, default_value_t = 1_000)]
    connections: usize,
    /// New connections per second during the ramp.
    #[arg(long, default_value_t = 500.0)]
    rate: f64,
    /// Members per room: each connection joins the room of its group of this many.
    #[arg(long, default_value_t = 2)]
    room_size: usize,
    /// How long all connections are held once the ramp is over.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    hold: Duration,
    /// Local address to connect from; repeat to spread the connections over several
    /// (each address has ~28,000 ports towards one gateway).
    #[arg(long = "source-ip")]
    source_ips: Vec<IpAddr>,
    /// A gateway's metrics URL (`http://host:admin-port/metrics`); repeat for each. With
    /// them the report holds the gateways' memory per connection and CPU seconds.
    #[arg(long = "metrics")]
    metrics_urls: Vec<String>,
    /// How long one connection may take to connect and join.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    connect_timeout: Duration,
    /// Prefix of the room names (default: `lt-` and a random suffix).
    #[arg(long)]
    room_prefix: Option<String>,
    /// Draws the run's timeline (connections joined a second, connect-to-joined
    /// latency) into this SVG file.
    #[arg(long)]
    plot: Option<std::path::PathBuf>,
}

/// What one connection did.
enum Outcome {
    Joined { connect: Duration, join: Duration },
    Failed(String),
}

pub async fn run(args: ConnectArgs) -> anyhow::Result<ConnectReport> {
    if args.connections == 0 || args.room_size == 0 || args.rate <= 0.0 {
        bail!("--connections, --room-size and --rate must be positive");
    }
    let urls = args.target.urls().await?;
    let prefix = args.room_prefix.clone().unwrap_or_else(|| format!("lt-{:06x}", rand::random::<u32>() & 0xff_ffff));
    let before = server_stats::sample_all(&args.metrics_urls).await?;
    eprintln!(
        "connect: {} connections at {}/s to {} gateway(s), holding {:?}",
        args.connections,
        args.rate,
        urls.len(),
        args.hold
    );

    let dropped = Arc::new(AtomicU64::new(0));
    let (release, released) = watch::channel(false);
    let (outcomes, mut results) = mpsc::unbounded_channel();
    let shared = Arc::new((args.clone(), urls.clone(), prefix));
    let started = Instant::now();
    let live = Arc::new(Live::default());
    let planned = Duration::from_secs_f64(args.connections as f64 / args.rate) + args.hold;
    let watch = Watch::start("connect", live.clone(), planned);
    let mut ticks = tokio::time::interval(Duration::from_secs_f64(1.0 / args.rate));
    for index in 0..args.connections {
        ticks.tick().await;
        let (shared, outcomes, released, dropped) =
            (shared.clone(), outcomes.clone(), released.clone(), dropped.clone());
        tokio::spawn(async move {
            let (args, urls, prefix) = &*shared;
            match tokio::time::timeout(args.connect_timeout, open(args, urls, prefix, index)).await {
                Ok(Ok((client, connect, join))) => {
                    let _ = outcomes.send(Outcome::Joined { connect, join });
                    if !hold(client, released).await {
                        dropped.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Ok(Err(error)) => drop(outcomes.send(Outcome::Failed(format!("{error:#}")))),
                Err(_) => drop(outcomes.send(Outcome::Failed(format!("not joined within {:?}", args.connect_timeout)))),
            }
        });
    }
    drop(outcomes);
    let (mut connect_us, mut join_us, mut errors, mut joined) =
        (Latency::default(), Latency::default(), Errors::default(), 0);
    for _ in 0..args.connections {
        match results.recv().await {
            Some(Outcome::Joined { connect, join }) => {
                connect_us.record(connect);
                join_us.record(join);
                live.message(Some((connect + join).as_micros() as u64));
                joined += 1;
            }
            Some(Outcome::Failed(error)) => {
                live.error();
                errors.record(error);
            }
            None => break,
        }
    }
    let ramp = started.elapsed();
    eprintln!("connect: {joined} joined in {ramp:.1?}; holding");
    tokio::time::sleep(args.hold).await;
    let after = server_stats::sample_all(&args.metrics_urls).await?;
    let servers = server_stats::pair(&args.metrics_urls, before, after);
    let _ = release.send(true);
    let timeline = watch.finish().await;
    if let Some(path) = &args.plot {
        let title = format!("connect: {} connections at {}/s", args.connections, args.rate);
        plot::draw(&timeline, &title, "connections joined", "connect to joined", path)?;
        eprintln!("plotted into {}", path.display());
    }
    let settings = Settings {
        connections: args.connections as u64,
        rate_per_s: args.rate,
        room_size: args.room_size as u64,
        hold_s: args.hold.as_secs_f64(),
        source_ips: args.source_ips.len() as u64,
    };
    let dropped = dropped.load(Ordering::Relaxed);
    if dropped > 0 {
        errors.record(format!("{dropped} connections lost while held"));
    }
    let measured = Measured { joined, dropped, connect_us, join_us, ramp, servers, timeline, errors };
    Ok(ConnectReport::new(settings, urls, measured))
}

/// Connects connection `index` (round the gateways and the source addresses) and joins
/// its group's room; the client and how long each step took.
async fn open(
    args: &ConnectArgs,
    urls: &[String],
    prefix: &str,
    index: usize,
) -> anyhow::Result<(Client, Duration, Duration)> {
    let room = format!("{prefix}-{}", index / args.room_size);
    let options = ConnectOptions {
        local_ip: (!args.source_ips.is_empty()).then(|| args.source_ips[index % args.source_ips.len()]),
        small_buffers: true,
    };
    let identity = format!("{prefix}-u{index}");
    let auth = match &args.target.jwt_secret {
        Some(secret) => {
            Auth::Query(mint(secret, &Claims::new(identity, vec![room.clone()], Duration::from_secs(3600))))
        }
        None => Auth::Anonymous,
    };
    let started = Instant::now();
    let mut client = Client::connect_with_options(&urls[index % urls.len()], auth, &options).await?;
    let connected = started.elapsed();
    client.join(&room, None).await?;
    Ok((client, connected, started.elapsed() - connected))
}

/// Keeps a connection open and answered (its pings, its room-mates' news) until the
/// run releases it, then says goodbye; false if it was lost before.
async fn hold(mut client: Client, mut released: watch::Receiver<bool>) -> bool {
    loop {
        tokio::select! {
            _ = released.wait_for(|released| *released) => break,
            next = client.next_message() => match next {
                Ok(_) => continue,
                Err(error) if error.is_connection_lost() => return false,
                // Only the reply timeout: an idle connection is what this scenario holds.
                Err(_) => continue,
            },
        }
    }
    let _ = client.close().await;
    true
}
