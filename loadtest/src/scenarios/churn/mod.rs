//! `churn`: clients join and leave rooms, and now and then disconnect and connect
//! again, at a given rate over all of them, for a given time. Reports the latency of
//! each step (connect, join, leave) and the errors; at the end, once every client has
//! gone, a checker joins each room and counts the members still listed there: a
//! membership the churn leaked (a leave or a disconnect the cluster missed) shows.

mod report;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use protocol::ServerMessage;
use protocol::client::{Auth, Client};
use protocol::token::{Claims, mint};
use tokio::sync::mpsc;

pub use report::ChurnReport;
use report::{Measured, Settings, Steps};

use crate::clients::TargetArgs;
use crate::live::{Live, Watch};
use crate::plot;
use crate::server_stats;
use crate::tally::Errors;

#[derive(Debug, Clone, Args)]
pub struct ChurnArgs {
    #[command(flatten)]
    target: TargetArgs,
    /// Clients, spread over the gateways; each joins and leaves rooms in turn.
    #[arg(long, default_value_t = 50)]
    clients: usize,
    /// Join-and-leave cycles a second, over all clients.
    #[arg(long, default_value_t = 200.0)]
    rate: f64,
    /// Rooms the clients go through (each client starts at its own).
    #[arg(long, default_value_t = 10)]
    rooms: usize,
    /// Every this many cycles a client disconnects and connects again (0: never).
    #[arg(long, default_value_t = 5)]
    reconnect_every: u64,
    /// How long the churn lasts.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// A gateway's metrics URL (`http://host:admin-port/metrics`); repeat for each. With
    /// them the report holds the gateways' CPU per cycle.
    #[arg(long = "metrics")]
    metrics_urls: Vec<String>,
    /// How long one connect, join or leave may take.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    step_timeout: Duration,
    /// How long the final check waits for the last leaves to land.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    settle_timeout: Duration,
    /// Prefix of the room names (default: `lt-` and a random suffix).
    #[arg(long)]
    room_prefix: Option<String>,
    /// Draws the run's timeline (cycles a second, join latency) into this SVG file.
    #[arg(long)]
    plot: Option<std::path::PathBuf>,
}

/// What the run is about, shared by the clients.
struct Plan {
    args: ChurnArgs,
    urls: Vec<String>,
    prefix: String,
    /// Pause between two cycles of one client.
    period: Duration,
}

impl Plan {
    fn room(&self, index: usize) -> String {
        format!("{}-{}", self.prefix, index % self.args.rooms)
    }

    async fn connect(&self, client: usize, identity: &str) -> anyhow::Result<Client> {
        let url = &self.urls[client % self.urls.len()];
        let auth = match &self.args.target.jwt_secret {
            Some(secret) => {
                Auth::Query(mint(secret, &Claims::new(identity, vec!["*".into()], Duration::from_secs(3600))))
            }
            None => Auth::Anonymous,
        };
        let connecting = Client::connect_with(url, auth);
        let connected = tokio::time::timeout(self.args.step_timeout, connecting).await;
        connected.context("connect timed out")?.with_context(|| format!("connect to {url}"))
    }

    /// Runs `step` with the step timeout; how long it took.
    async fn timed<T>(
        &self,
        what: &str,
        step: impl Future<Output = Result<T, protocol::client::ClientError>>,
    ) -> anyhow::Result<Duration> {
        let started = Instant::now();
        tokio::time::timeout(self.args.step_timeout, step)
            .await
            .with_context(|| format!("{what} timed out"))?
            .with_context(|| what.to_string())?;
        Ok(started.elapsed())
    }
}

/// What one client reports, step by step.
enum Event {
    Connected(Duration),
    Joined(Duration),
    Left(Duration),
    Cycle,
    Failed(String),
}

pub async fn run(args: ChurnArgs) -> anyhow::Result<ChurnReport> {
    if args.clients == 0 || args.rooms == 0 || args.rate <= 0.0 {
        bail!("--clients, --rooms and --rate must be positive");
    }
    let urls = args.target.urls().await?;
    let prefix = args.room_prefix.clone().unwrap_or_else(|| format!("lt-{:06x}", rand::random::<u32>() & 0xff_ffff));
    let period = Duration::from_secs_f64(args.clients as f64 / args.rate);
    eprintln!(
        "churn: {} clients on {} gateway(s), {} cycles/s over {} rooms, reconnecting every {} cycles, for {:?}",
        args.clients,
        urls.len(),
        args.rate,
        args.rooms,
        args.reconnect_every,
        args.duration
    );
    let plan = Arc::new(Plan { args: args.clone(), urls: urls.clone(), prefix, period });
    let before = server_stats::sample_all(&args.metrics_urls).await?;
    let (events, mut reports) = mpsc::unbounded_channel();
    let started = Instant::now();
    let live = Arc::new(Live::default());
    let watch = Watch::start("churn", live.clone(), args.duration);
    let deadline = tokio::time::Instant::now() + args.duration;
    let clients: Vec<_> = (0..args.clients)
        .map(|client| {
            let (plan, events) = (plan.clone(), events.clone());
            tokio::spawn(async move { churn(&plan, client, deadline, &events).await })
        })
        .collect();
    drop(events);
    let mut steps = Steps::default();
    let mut errors = Errors::default();
    while let Some(event) = reports.recv().await {
        match event {
            Event::Connected(took) => steps.connect_us.record(took),
            Event::Joined(took) => {
                steps.join_us.record(took);
                live.message(Some(took.as_micros() as u64));
            }
            Event::Left(took) => steps.leave_us.record(took),
            Event::Cycle => steps.cycles += 1,
            Event::Failed(error) => {
                live.error();
                errors.record(error);
            }
        }
    }
    for client in clients {
        client.await.context("a client task failed")?;
    }
    let elapsed = started.elapsed();
    let timeline = watch.finish().await;
    if let Some(path) = &args.plot {
        let title = format!("churn: {} clients, {} cycles/s", args.clients, args.rate);
        plot::draw(&timeline, &title, "joins", "join latency", path)?;
        eprintln!("plotted into {}", path.display());
    }
    let after = server_stats::sample_all(&args.metrics_urls).await?;
    let servers = server_stats::pair(&args.metrics_urls, before, after);
    let leftover = leftover_members(&plan).await?;
    eprintln!("churn: {} cycles in {elapsed:.1?}, {} members left behind", steps.cycles, leftover);
    let settings = Settings {
        clients: args.clients as u64,
        rate_per_s: args.rate,
        rooms: args.rooms as u64,
        reconnect_every: args.reconnect_every,
        duration_s: args.duration.as_secs_f64(),
    };
    let measured = Measured { steps, elapsed, leftover_members: leftover, servers, timeline, errors };
    Ok(ChurnReport::new(settings, urls, measured))
}

/// One client's loop until `deadline`: connect; then cycles of join, leave, each at its
/// pace, with a new connection every `reconnect_every` cycles. A failed step is
/// reported and the client starts over with a new connection.
async fn churn(plan: &Plan, client: usize, deadline: tokio::time::Instant, events: &mpsc::UnboundedSender<Event>) {
    // Clients start spread over one period, so the rate is even from the start.
    let offset = plan.period.mul_f64(client as f64 / plan.args.clients as f64);
    let mut next = tokio::time::Instant::now() + offset;
    let identity = format!("{}-c{client}", plan.prefix);
    let mut connection: Option<Client> = None;
    let mut cycle: u64 = 0;
    while next < deadline {
        tokio::time::sleep_until(next).await;
        next += plan.period;
        cycle += 1;
        let room = plan.room(client + cycle as usize);
        let step = async {
            let mut current = match connection.take() {
                Some(client) => client,
                None => {
                    let started = Instant::now();
                    let client = plan.connect(client, &identity).await?;
                    let _ = events.send(Event::Connected(started.elapsed()));
                    client
                }
            };
            let joined = plan.timed("join", current.join(&room, None)).await?;
            let _ = events.send(Event::Joined(joined));
            let left = plan.timed("leave", current.leave(&room)).await?;
            let _ = events.send(Event::Left(left));
            // Presence news of the others' churn: read and dropped.
            drop(current.take_backlog());
            while let Ok(Some(_)) = current.poll_message().await {}
            anyhow::Ok(current)
        };
        match step.await {
            Ok(current) => {
                let _ = events.send(Event::Cycle);
                let reconnect = plan.args.reconnect_every > 0 && cycle.is_multiple_of(plan.args.reconnect_every);
                if reconnect {
                    let _ = current.close().await;
                } else {
                    connection = Some(current);
                }
            }
            Err(error) => drop(events.send(Event::Failed(format!("{identity}: {error:#}")))),
        }
    }
    if let Some(current) = connection {
        let _ = current.close().await;
    }
}

/// Once every client is gone: joins each room with a checker and counts the members it
/// finds there that do not leave (a `peer_left`) within the settle timeout: the last
/// disconnects' leaves may still be on their way.
async fn leftover_members(plan: &Plan) -> anyhow::Result<u64> {
    let mut checker = plan.connect(0, &format!("{}-checker", plan.prefix)).await?;
    let deadline = tokio::time::Instant::now() + plan.args.settle_timeout;
    let mut leftover = 0;
    for room in (0..plan.args.rooms).map(|index| plan.room(index)) {
        let joining = tokio::time::timeout(plan.args.step_timeout, checker.join(&room, None));
        let members = joining.await.context("the checker's join timed out")?.context("the checker joins")?;
        let mut present: HashSet<String> = members.into_iter().map(|member| member.peer_id).collect();
        while !present.is_empty() {
            match tokio::time::timeout_at(deadline, checker.next_message()).await {
                Ok(Ok(ServerMessage::PeerLeft { room: left_room, peer_id, .. })) if left_room == room => {
                    present.remove(&peer_id);
                }
                Ok(Ok(_)) => {}
                Ok(Err(error)) if error.is_connection_lost() => {
                    return Err(error).context("the checker lost its connection");
                }
                // The client's own wait for a message ended: the deadline decides.
                Ok(Err(_)) => {}
                Err(_) => break,
            }
        }
        leftover += present.len() as u64;
        plan.timed("the checker leaves", checker.leave(&room)).await?;
    }
    let _ = checker.close().await;
    Ok(leftover)
}
