//! The room service's configuration: defaults, then a TOML file (`--config`), then
//! `ROOM_SERVICE_CONFIG_TOML`, then `ROOM_SERVICE_*` variables, then flags.
//! docs/configuration.md lists every setting.

use std::net::SocketAddr;
use std::path::PathBuf;

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
    /// Log one JSON object per line instead of text.
    pub log_json: bool,
    pub rooms: RoomsConfig,
    /// Redis holds the room state; `redis.url` is required.
    pub redis: RedisConfig,
}

impl Default for RoomServiceConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 7070)),
            node_id: None,
            api_secret: None,
            log_json: false,
            rooms: RoomsConfig::default(),
            redis: RedisConfig::default(),
        }
    }
}

/// Command-line flags. Each overrides the setting of the same name.
#[derive(Debug, Parser)]
#[command(name = "room-service", version, about = "The signaling cluster's room service (gRPC).")]
pub struct Flags {
    /// TOML configuration file.
    #[arg(long, env = "ROOM_SERVICE_CONFIG_FILE")]
    pub config: Option<PathBuf>,
    /// gRPC listen address [default: 127.0.0.1:7070].
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// Redis URL, e.g. redis://127.0.0.1:6379.
    #[arg(long)]
    pub redis_url: Option<String>,
    /// This node's id [default: rs-<random>].
    #[arg(long)]
    pub node_id: Option<String>,
    /// Log JSON lines.
    #[arg(long)]
    pub log_json: bool,
}

/// The flags that were given, in the shape of the configuration.
#[derive(Serialize)]
struct Overrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    listen: Option<SocketAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    node_id: Option<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    log_json: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    redis: Option<RedisOverrides>,
}

#[derive(Serialize)]
struct RedisOverrides {
    url: String,
}

impl RoomServiceConfig {
    pub const ENV_PREFIX: &str = "ROOM_SERVICE_";

    pub fn load(flags: &Flags) -> anyhow::Result<Self> {
        let overrides = Overrides {
            listen: flags.listen,
            node_id: flags.node_id.clone(),
            log_json: flags.log_json,
            redis: flags.redis_url.clone().map(|url| RedisOverrides { url }),
        };
        let config: Self = common::config::load(common::config::Sources {
            env_prefix: Self::ENV_PREFIX,
            file: flags.config.as_deref(),
            flags: overrides,
        })?;
        config.validate()?;
        Ok(config)
    }

    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.redis.url.is_some(),
            "redis.url is required: the room service keeps its state in Redis (the in-memory store runs only inside a gateway in embedded mode)"
        );
        anyhow::ensure!(self.rooms.default_capacity >= 1, "rooms.default_capacity must be at least 1");
        Ok(())
    }
}
