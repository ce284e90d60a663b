//! The room service's configuration: defaults, then a TOML file (`--config`), then
//! `ROOM_SERVICE_CONFIG_TOML`, then `ROOM_SERVICE_*` variables, then flags.
//! docs/configuration.md lists every setting.

use std::net::SocketAddr;

use bus::RedisConfig;
use clap::Parser;
use serde::{Deserialize, Serialize};

use crate::RoomsConfig;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RoomServiceConfig {
    /// Address of the gRPC server.
    pub listen: SocketAddr,
    /// This node's id in presence events and logs; default: `rs-` and a random suffix.
    pub node_id: Option<String>,
    /// When set, gRPC callers must send `authorization: Bearer <api_secret>`.
    pub api_secret: Option<String>,
    /// TLS on the gRPC port (docs/security.md); off unless both files are set.
    pub tls: common::config::TlsConfig,
    /// Log one JSON object per line instead of text.
    pub log_json: bool,
    /// Logs, metrics and traces (docs/observability.md).
    pub telemetry: common::telemetry::TelemetryConfig,
    pub rooms: RoomsConfig,
    /// Redis holds the room state; `redis.url` is required.
    pub redis: RedisConfig,
    pub janitor: JanitorConfig,
}

/// The janitor, which removes the members of gateways whose lease expired.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JanitorConfig {
    /// How often it looks for expired leases.
    #[serde(with = "humantime_serde")]
    pub period: std::time::Duration,
}

impl Default for JanitorConfig {
    fn default() -> Self {
        Self { period: std::time::Duration::from_secs(2) }
    }
}

impl Default for RoomServiceConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 7070)),
            node_id: None,
            api_secret: None,
            tls: common::config::TlsConfig::default(),
            log_json: false,
            telemetry: common::telemetry::TelemetryConfig::with_admin_port(9070),
            rooms: RoomsConfig::default(),
            redis: RedisConfig::default(),
            janitor: JanitorConfig::default(),
        }
    }
}

/// Command-line flags.
#[derive(Debug, Parser)]
#[command(
    name = "room-service",
    version,
    about = "The signaling cluster's room service (gRPC). Needs Redis.",
    long_about = "The signaling cluster's room service (gRPC). Needs Redis.\n\n\
        Settings come from defaults (listen 127.0.0.1:7070, admin port 127.0.0.1:9070), then --config, then \
        ROOM_SERVICE_CONFIG_TOML, then ROOM_SERVICE_* variables (ROOM_SERVICE_REDIS__URL \
        sets redis.url), then these flags; docs/configuration.md lists them all."
)]
pub struct Flags {
    #[command(flatten)]
    pub service: common::flags::ServiceFlags,
}

impl RoomServiceConfig {
    pub const ENV_PREFIX: &str = "ROOM_SERVICE_";

    pub fn load(flags: &Flags) -> anyhow::Result<Self> {
        let config: Self = common::config::load(common::config::Sources {
            env_prefix: Self::ENV_PREFIX,
            file: flags.service.config.as_deref(),
            flags: flags.service.overrides(),
        })?;
        config.validate()?;
        Ok(config)
    }

    pub fn validate(&self) -> anyhow::Result<()> {
        self.telemetry.validate()?;
        self.redis.validate().map_err(anyhow::Error::msg)?;
        anyhow::ensure!(
            self.redis.url.is_some(),
            "redis.url is required: the room service keeps its state in Redis (the in-memory store runs only inside a gateway in embedded mode)"
        );
        anyhow::ensure!(self.rooms.default_capacity >= 1, "rooms.default_capacity must be at least 1");
        self.tls.validate("tls")?;
        Ok(())
    }
}
