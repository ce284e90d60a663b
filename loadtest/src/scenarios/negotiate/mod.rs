//! `negotiate`: rooms of k members spread over the gateways; in each room, pairs of
//! members run realistic negotiations (offer and answer of ~3 KB, trickle candidates
//! and end-of-candidates each way), one after the other, at a fixed offered rate of
//! messages or as fast as they go. Every message's one-way latency goes into an HDR
//! histogram; lost, duplicated, reordered and altered messages are counted.
//!
//! A room has one negotiation in flight at a time, so at saturation the number of rooms
//! is the window of outstanding negotiations.

mod inbox;
mod report;
mod room;

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::bail;
use clap::Args;
use futures_util::StreamExt;
use futures_util::stream;

pub use report::NegotiateReport;
use report::Settings;
use room::Setup;

use crate::clients::TargetArgs;
use crate::live::{Live, Watch};
use crate::negotiation::Script;
use crate::plot;
use crate::server_stats;

#[derive(Debug, Clone, Args)]
pub struct NegotiateArgs {
    #[command(flatten)]
    target: TargetArgs,
    /// Rooms, each with its own members and one negotiation in flight at a time.
    #[arg(long, default_value_t = 10)]
    rooms: usize,
    /// Members per room: 2 for 1:1 calls, more for a mesh, whose pairs take turns.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(2..=64))]
    room_size: u16,
    /// Trickle candidates each side sends.
    #[arg(long, default_value_t = 8)]
    candidates: usize,
    /// Size of each offer's and answer's SDP.
    #[arg(long, default_value_t = 3_000)]
    sdp_bytes: usize,
    /// Offered signaling messages per second, over all rooms; without it each room
    /// negotiates back to back (saturation).
    #[arg(long)]
    rate: Option<f64>,
    /// Length of the load phase, after every room is set up.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Stop a room after this many negotiations even if time is left.
    #[arg(long)]
    negotiations_per_room: Option<u64>,
    /// How long one side's messages may take to arrive before the missing ones count as
    /// lost.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    message_timeout: Duration,
    /// Rooms being set up (connected and joined) at once.
    #[arg(long, default_value_t = 32)]
    setup_concurrency: usize,
    /// How long setting up one room may take.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    setup_timeout: Duration,
    /// Prefix of the room names; by default `lt-` and a random suffix, so that
    /// concurrent runs (the pods of the Job) never share a room.
    #[arg(long)]
    room_prefix: Option<String>,
    /// A gateway's metrics URL (`http://host:admin-port/metrics`); repeat for each. With
    /// them the report holds the gateways' CPU time per message of the load phase.
    #[arg(long = "metrics")]
    metrics_urls: Vec<String>,
    /// Draws the run's timeline (messages a second, latency percentiles) into this SVG
    /// file.
    #[arg(long)]
    plot: Option<std::path::PathBuf>,
}

/// The run, as every room task sees it.
pub struct Plan {
    urls: Vec<String>,
    jwt_secret: Option<String>,
    token_lifetime: Duration,
    room_prefix: String,
    rooms: usize,
    room_size: usize,
    script: Script,
    rate: Option<f64>,
    duration: Duration,
    negotiations_per_room: Option<u64>,
    message_timeout: Duration,
    /// The clock of the messages' send times.
    epoch: Instant,
    /// What the progress bar and the timeline show.
    live: Arc<Live>,
}

impl Plan {
    /// Messages in one negotiation: each side's description, candidates and
    /// end-of-candidates.
    fn messages_per_negotiation(&self) -> usize {
        2 * (self.script.candidates + 2)
    }

    /// When negotiation `n` of room `room` is due, at a fixed rate: the rooms take turns
    /// evenly, so the offered load is smooth rather than a burst every period.
    fn scheduled(&self, room: usize, n: u64, start: Instant) -> Option<Instant> {
        let rate = self.rate?;
        let period = self.rooms as f64 * self.messages_per_negotiation() as f64 / rate;
        let offset = n as f64 + room as f64 / self.rooms as f64;
        Some(start + Duration::from_secs_f64(period * offset))
    }
}

/// Runs the scenario; the report, whatever happened to the messages.
pub async fn run(args: NegotiateArgs) -> anyhow::Result<NegotiateReport> {
    if args.rooms == 0 || args.setup_concurrency == 0 {
        bail!("--rooms and --setup-concurrency must be at least 1");
    }
    if args.rate.is_some_and(|rate| !(rate.is_finite() && rate > 0.0)) {
        bail!("--rate must be a positive number of messages per second");
    }
    let urls = args.target.urls().await?;
    let plan = Arc::new(Plan {
        urls,
        jwt_secret: args.target.jwt_secret.clone(),
        token_lifetime: args.setup_timeout + args.duration + Duration::from_secs(600),
        room_prefix: args.room_prefix.clone().unwrap_or_else(|| format!("lt-{:08x}", rand::random::<u32>())),
        rooms: args.rooms,
        room_size: args.room_size.into(),
        script: Script { sdp_bytes: args.sdp_bytes, candidates: args.candidates },
        rate: args.rate,
        duration: args.duration,
        negotiations_per_room: args.negotiations_per_room,
        message_timeout: args.message_timeout,
        epoch: Instant::now(),
        live: Arc::default(),
    });
    let settings = Settings {
        rooms: args.rooms as u64,
        room_size: args.room_size.into(),
        candidates: args.candidates as u64,
        sdp_bytes: args.sdp_bytes as u64,
        rate_msgs_per_s: args.rate,
        duration_s: args.duration.as_secs_f64(),
    };
    let mut report = NegotiateReport::new(settings, &plan.urls);

    eprintln!(
        "setting up {} rooms of {} on {} gateway(s), prefix {}",
        plan.rooms,
        plan.room_size,
        plan.urls.len(),
        plan.room_prefix
    );
    let set_up = stream::iter(0..plan.rooms)
        .map(|index| {
            let plan = plan.clone();
            async move {
                let mut setup = Setup::default();
                let room = tokio::time::timeout(args.setup_timeout, room::set_up(&plan, index, &mut setup)).await;
                (room, setup)
            }
        })
        .buffer_unordered(args.setup_concurrency)
        .collect::<Vec<_>>()
        .await;
    let mut rooms = Vec::with_capacity(plan.rooms);
    for (room, setup) in set_up {
        report.add_setup(&setup);
        match room {
            Ok(Ok(room)) => rooms.push(room),
            Ok(Err(error)) => {
                report.rooms_failed += 1;
                report.common.errors.record(format!("setting up a room: {error:#}"));
            }
            Err(_) => {
                report.rooms_failed += 1;
                report.common.errors.record(format!("setting up a room took longer than {:?}", args.setup_timeout));
            }
        }
    }

    eprintln!("{} rooms ready; load for {}", rooms.len(), humantime::format_duration(plan.duration));
    let before = server_stats::sample_all(&args.metrics_urls).await?;
    let start = Instant::now();
    let watch = Watch::start("negotiate", plan.live.clone(), plan.duration);
    let tasks: Vec<_> = rooms
        .into_iter()
        .map(|mut room| {
            let plan = plan.clone();
            tokio::spawn(async move {
                let stats = room::drive(&plan, &mut room, start).await;
                room::close(room, plan.message_timeout).await;
                stats
            })
        })
        .collect();
    // A room ends at the deadline, plus at most one negotiation's two bursts and a close.
    let bound = plan.duration + 3 * plan.message_timeout + Duration::from_secs(10);
    let mut finished = 0;
    let mut ended = start;
    for mut task in tasks {
        let left = (start + bound).saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, &mut task).await {
            Ok(Ok(stats)) => {
                ended = ended.max(stats.ended.unwrap_or(start));
                report.add_room(stats);
                finished += 1;
            }
            Ok(Err(panic)) => report.common.errors.record(format!("a room's task failed: {panic}")),
            Err(_) => {
                task.abort();
                report.common.errors.record(format!("a room was still running {bound:?} after the start"));
            }
        }
    }
    report.common.timeline = watch.finish().await;
    let after = server_stats::sample_all(&args.metrics_urls).await?;
    report.common.servers = server_stats::pair(&args.metrics_urls, before, after);
    if let Some(path) = &args.plot {
        let title = format!("negotiate: {} rooms of {}", plan.rooms, plan.room_size);
        plot::draw(&report.common.timeline, &title, "messages received", "one-way latency", path)?;
        eprintln!("plotted into {}", path.display());
    }
    report.finish((ended - start).as_secs_f64());
    eprintln!("{finished} rooms finished");
    Ok(report)
}
