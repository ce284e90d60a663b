use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use common::telemetry::Telemetry;
use room_service::config::{Flags, RoomServiceConfig};
use room_service::sessions::redis::RedisSessionStore;
use room_service::store::redis::RedisRoomStore;
use room_service::{Janitor, Rooms, grpc, metrics};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let flags = Flags::parse();
    let config = RoomServiceConfig::load(&flags)?;
    if flags.service.check_config {
        println!("{}", common::config::redacted(&config, &["api_secret", "redis.password"], &["redis.url"]));
        return Ok(());
    }
    let node_id = config.node_id.clone().unwrap_or_else(|| common::node_id("rs"));
    let telemetry = Arc::new(Telemetry::install("room-service", &node_id, &config.telemetry, config.log_json)?);
    metrics::describe();
    common::telemetry::grpc::describe(common::telemetry::grpc::Side::Server);
    common::admin::start(config.telemetry.admin_listen, telemetry.clone()).await?;

    let store = RedisRoomStore::connect(&config.redis).await.context("connecting to Redis")?;
    let sessions = RedisSessionStore::connect(&config.redis).await.context("connecting to Redis")?;
    let rooms = Arc::new(Rooms::new(Arc::new(store), node_id.clone(), config.rooms.clone()));
    // Every replica sweeps; they may race safely (see `janitor`).
    let janitor = Janitor::new(rooms.clone(), Arc::new(sessions));
    let janitor = tokio::spawn(janitor.run(config.janitor.period, std::future::pending()));
    let sampler = tokio::spawn(metrics::sample_rooms(rooms.clone(), metrics::SAMPLE_PERIOD));
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding the gRPC address {}", config.listen))?;
    let access = grpc::Access { api_secret: config.api_secret.clone(), tls: config.tls.read()? };
    let scheme = if config.tls.enabled() { "https" } else { "http" };
    tracing::info!(node_id, listen = %listener.local_addr()?, scheme, "room service ready");
    let served = grpc::serve(rooms, access, listener, common::shutdown::signal()).await;
    janitor.abort();
    sampler.abort();
    tracing::info!("room service stopped");
    telemetry.shutdown().await;
    served
}
