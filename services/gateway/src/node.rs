//! The gateway node: its parts, assembled for the configured mode, and its run loop.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use bus::{Bus, Incoming, MemoryHub, RedisBus};
use room_service::Rooms;
use room_service::store::memory::MemoryRoomStore;
use room_service::store::redis::RedisRoomStore;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::auth::Authenticator;
use crate::config::{GatewayConfig, Mode};
use crate::registry::Registry;
use crate::room_api::{GrpcRoomApi, RoomApi};
use crate::subscriptions::Subscriptions;
use crate::{dispatch, http};

/// How long a stopping gateway waits for its connections to close and leave their rooms.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);

/// Everything a gateway's connections share.
pub struct Gateway {
    pub config: GatewayConfig,
    pub node_id: Arc<str>,
    pub registry: Registry,
    pub subscriptions: Subscriptions,
    pub bus: Arc<dyn Bus>,
    pub rooms: Arc<dyn RoomApi>,
    pub auth: Authenticator,
    /// Fired when the gateway starts shutting down.
    pub shutdown: CancellationToken,
    /// The connection tasks, awaited on shutdown.
    pub connections: TaskTracker,
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
        let (bus, incoming, rooms): (Arc<dyn Bus>, Incoming, Arc<dyn RoomApi>) = match mode {
            Mode::Embedded => {
                let hub = MemoryHub::new();
                let (bus, incoming) = hub.node(queue);
                let store = Arc::new(MemoryRoomStore::new(hub));
                (Arc::new(bus), incoming, Arc::new(Rooms::new(store, rooms_node_id, config.rooms.clone())))
            }
            Mode::ClusterWithLocalRooms => {
                let (bus, incoming) =
                    RedisBus::connect(&config.redis, queue).await.context("connecting the bus to Redis")?;
                let store =
                    Arc::new(RedisRoomStore::connect(&config.redis).await.context("connecting the room store")?);
                (Arc::new(bus), incoming, Arc::new(Rooms::new(store, rooms_node_id, config.rooms.clone())))
            }
            Mode::Cluster => {
                let (bus, incoming) =
                    RedisBus::connect(&config.redis, queue).await.context("connecting the bus to Redis")?;
                let service = config.room_service.url.as_deref().expect("cluster mode has a room service URL");
                let api =
                    GrpcRoomApi::new(service, config.room_service.api_secret.as_deref(), config.room_service.timeout)?;
                (Arc::new(bus), incoming, Arc::new(api))
            }
        };
        if anonymous {
            tracing::warn!("anonymous access is ON (development only): anyone can connect and join any room");
        }
        tracing::info!(node_id = %node_id, ?mode, "gateway starting");
        let gateway = Self {
            auth: Authenticator::new(&config.auth, anonymous),
            subscriptions: Subscriptions::new(bus.clone()),
            registry: Registry::default(),
            node_id,
            bus,
            rooms,
            config,
            shutdown: CancellationToken::new(),
            connections: TaskTracker::new(),
        };
        Ok((Arc::new(gateway), incoming))
    }
}

/// Runs a gateway on `listener` until `shutdown` resolves, then closes every connection
/// (code 1001, after which each leaves its rooms) and returns.
pub async fn run(
    config: GatewayConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let (gateway, incoming) = Gateway::start(config).await?;
    let dispatcher = tokio::spawn(dispatch::run(incoming, gateway.clone()));
    tracing::info!(listen = %listener.local_addr()?, "gateway ready");
    let stop = gateway.shutdown.clone();
    axum::serve(listener, http::router(gateway.clone()))
        .with_graceful_shutdown(async move {
            shutdown.await;
            stop.cancel();
        })
        .await?;
    gateway.connections.close();
    if tokio::time::timeout(SHUTDOWN_TIMEOUT, gateway.connections.wait()).await.is_err() {
        tracing::warn!(remaining = gateway.connections.len(), "connections still open after the shutdown timeout");
    }
    dispatcher.abort();
    tracing::info!("gateway stopped");
    Ok(())
}
