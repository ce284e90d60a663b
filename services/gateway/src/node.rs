//! The gateway node: its parts, assembled for the configured mode, and its run loop.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use bus::{Bus, Incoming, MemoryHub, Metered, RedisBus, Topic};
use room_service::Rooms;
use room_service::sessions::SessionStore;
use room_service::sessions::memory::MemorySessionStore;
use room_service::sessions::redis::RedisSessionStore;
use room_service::store::memory::MemoryRoomStore;
use room_service::store::redis::RedisRoomStore;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::auth::Authenticator;
use crate::config::{GatewayConfig, Mode};
use crate::handovers::Handovers;
use crate::limits::admission::Admission;
use crate::recovery::Standing;
use crate::registry::Registry;
use crate::replay::ReplayLimits;
use crate::room_api::RoomApi;
use crate::room_grpc::GrpcRoomApi;
use crate::subscriptions::Subscriptions;
use crate::{discovery, dispatch, drain, http, lease, listener, metrics, recovery, tls};

/// Everything a gateway's connections share.
pub struct Gateway {
    pub config: GatewayConfig,
    pub mode: Mode,
    pub node_id: Arc<str>,
    pub registry: Registry,
    pub subscriptions: Subscriptions,
    pub bus: Arc<dyn Bus>,
    pub rooms: Arc<dyn RoomApi>,
    pub sessions: Arc<dyn SessionStore>,
    pub handovers: Handovers,
    /// Whether the gateway serves (see [`crate::recovery`]).
    pub standing: Standing,
    pub auth: Authenticator,
    /// Which upgrades are accepted (connection cap, attempts per address, origins).
    pub admission: Admission,
    /// Fired when the gateway starts draining (or shutting down).
    pub shutdown: CancellationToken,
    /// The connection tasks, awaited on shutdown.
    pub connections: TaskTracker,
    /// The room logic, when it runs in this process (for the janitor, over Redis, and
    /// the room metrics).
    local_rooms: Option<Arc<Rooms>>,
}

impl Gateway {
    /// Assembles the parts the configuration asks for; returns the gateway and the
    /// stream of envelopes its dispatcher must read.
    pub async fn start(config: GatewayConfig) -> anyhow::Result<(Arc<Self>, Incoming)> {
        config.validate()?;
        let mode = config.mode()?;
        let anonymous = config.anonymous_allowed()?;
        let node_id: Arc<str> = config.node_id.clone().unwrap_or_else(|| common::node_id("gw")).into();
        // The in-process room service stamps its own events with a distinct origin, so
        // that the dispatcher never mistakes them for this gateway's own publications.
        let rooms_node_id = format!("{node_id}-rooms");
        let queue = config.bus.incoming_queue;
        let parts = match mode {
            Mode::Embedded => {
                let hub = MemoryHub::new();
                let (bus, incoming) = hub.node(queue);
                let rooms =
                    Arc::new(Rooms::new(Arc::new(MemoryRoomStore::new(hub)), rooms_node_id, config.rooms.clone()));
                let sessions: Arc<dyn SessionStore> = Arc::new(MemorySessionStore::new());
                Parts { bus: Arc::new(bus), incoming, rooms: rooms.clone(), sessions, local_rooms: Some(rooms) }
            }
            Mode::ClusterWithLocalRooms | Mode::Cluster => {
                let (bus, incoming) =
                    RedisBus::connect(&config.redis, queue).await.context("connecting the bus to Redis")?;
                let sessions: Arc<dyn SessionStore> =
                    Arc::new(RedisSessionStore::connect(&config.redis).await.context("connecting the session store")?);
                let (rooms, local_rooms): (Arc<dyn RoomApi>, _) = if mode == Mode::Cluster {
                    let client = &config.room_service;
                    let api = GrpcRoomApi::new(discovery::start(client).context("finding the room service")?, client)?;
                    (Arc::new(api), None)
                } else {
                    let store =
                        Arc::new(RedisRoomStore::connect(&config.redis).await.context("connecting the room store")?);
                    let rooms = Arc::new(Rooms::new(store, rooms_node_id, config.rooms.clone()));
                    (rooms.clone(), Some(rooms))
                };
                Parts { bus: Arc::new(bus), incoming, rooms, sessions, local_rooms }
            }
        };
        if anonymous {
            tracing::warn!("anonymous access is ON (development only): anyone can connect and join any room");
        }
        tracing::info!(node_id = %node_id, ?mode, "gateway starting");
        let replay_limits = ReplayLimits { frames: config.session.replay_frames, bytes: config.session.replay_bytes };
        let bus: Arc<dyn Bus> = Arc::new(Metered::new(parts.bus));
        let gateway = Self {
            auth: Authenticator::new(&config.auth, anonymous).context("loading the token keys")?,
            admission: Admission::new(&config)?,
            subscriptions: Subscriptions::new(bus.clone()),
            registry: Registry::new(node_id.clone(), replay_limits),
            handovers: Handovers::default(),
            standing: Standing::default(),
            mode,
            node_id,
            bus,
            rooms: parts.rooms,
            sessions: parts.sessions,
            local_rooms: parts.local_rooms,
            config,
            shutdown: CancellationToken::new(),
            connections: TaskTracker::new(),
        };
        if mode != Mode::Embedded {
            gateway.sessions.register_node(&gateway.node_id, gateway.config.lease.ttl).await?;
            gateway.bus.subscribe(Topic::Node(&gateway.node_id)).await?;
        }
        Ok((Arc::new(gateway), parts.incoming))
    }

    /// Whether sessions outlive their connection for a resume.
    pub fn resume_enabled(&self) -> bool {
        !self.config.session.resume_window.is_zero()
    }
}

/// How often the gauges of the gateway's state are brought up to date.
const GAUGE_PERIOD: Duration = Duration::from_secs(2);

/// Keeps the gauges of [`metrics::set_state`] current, readiness included (the same
/// check as `/readyz`, so the metric and the probe agree).
async fn sample_gauges(gateway: Arc<Gateway>) {
    loop {
        let (sessions, rooms, members) = gateway.registry.counts();
        let ready = http::readiness(&gateway).await.is_ok();
        metrics::set_state(sessions, rooms, members, ready);
        tokio::time::sleep(GAUGE_PERIOD).await;
    }
}

struct Parts {
    bus: Arc<dyn Bus>,
    incoming: Incoming,
    rooms: Arc<dyn RoomApi>,
    sessions: Arc<dyn SessionStore>,
    local_rooms: Option<Arc<Rooms>>,
}

/// Runs a gateway on `listener` until `shutdown` resolves, then drains: clients are
/// told to reconnect elsewhere, their sessions handed over as they resume there, the
/// rest ended after `drain.timeout`.
pub async fn run(
    config: GatewayConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let (gateway, incoming) = Gateway::start(config).await?;
    let mut background = vec![
        tokio::spawn(dispatch::run(incoming, gateway.clone())),
        tokio::spawn(recovery::watch_bus(gateway.clone())),
        tokio::spawn(recovery::watch_room_gaps(gateway.clone())),
    ];
    if gateway.mode != Mode::Embedded {
        background.push(tokio::spawn(lease::keep(gateway.clone())));
    }
    background.push(tokio::spawn(sample_gauges(gateway.clone())));
    if let Some(rooms) = gateway.local_rooms.clone() {
        background.push(tokio::spawn(room_service::metrics::sample_rooms(rooms, room_service::metrics::SAMPLE_PERIOD)));
    }
    if let Some(rooms) = gateway.local_rooms.clone().filter(|_| gateway.mode != Mode::Embedded) {
        let janitor = room_service::Janitor::new(rooms, gateway.sessions.clone());
        let (period, stop) = (gateway.config.janitor.period, gateway.shutdown.clone());
        background.push(tokio::spawn(async move { janitor.run(period, stop.cancelled_owned()).await }));
    }
    let settings = listener::Settings {
        tls: tls::acceptor(&gateway.config.tls)?,
        handshake_timeout: gateway.config.ws.handshake_timeout,
        max_http_connections: gateway.config.limits.max_http_connections,
    };
    let scheme = if settings.tls.is_some() { "https" } else { "http" };
    tracing::info!(listen = %listener.local_addr()?, scheme, "gateway ready");
    let stop = gateway.shutdown.clone();
    listener::serve(listener, http::router(gateway.clone()), settings, async move {
        shutdown.await;
        stop.cancel();
    })
    .await;
    drain::finish(&gateway).await;
    for task in background {
        task.abort();
    }
    tracing::info!("gateway stopped");
    Ok(())
}
