//! The command-line flags every service binary takes. Each overrides the setting of the
//! same name; everything else is set by file or environment (docs/configuration.md).

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Serialize;

#[derive(Debug, Clone, Default, clap::Args)]
pub struct ServiceFlags {
    /// TOML configuration file (GATEWAY_CONFIG_FILE or ROOM_SERVICE_CONFIG_FILE does the same).
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
    /// Listen address (`listen`).
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// Redis URL (`redis.url`), e.g. redis://127.0.0.1:6379.
    #[arg(long)]
    pub redis_url: Option<String>,
    /// This node's id (`node_id`) [default: a random one].
    #[arg(long)]
    pub node_id: Option<String>,
    /// Log JSON lines (`log_json`).
    #[arg(long)]
    pub log_json: bool,
    /// Admin address: /metrics and /log-level (`telemetry.admin_listen`).
    #[arg(long)]
    pub admin_listen: Option<SocketAddr>,
    /// Load and validate the configuration from every source, print it as JSON with
    /// the secrets hidden, and exit (status 1 with the reason if it is invalid).
    #[arg(long)]
    pub check_config: bool,
}

/// The flags that were given, in the shape of the configuration (unset ones left out,
/// so they override nothing).
#[derive(Debug, Serialize)]
pub struct Overrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    listen: Option<SocketAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    node_id: Option<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    log_json: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    redis: Option<UrlOverride>,
    #[serde(skip_serializing_if = "Option::is_none")]
    telemetry: Option<TelemetryOverride>,
}

/// `{ admin_listen = ... }` of the `telemetry` section.
#[derive(Debug, Serialize)]
pub struct TelemetryOverride {
    pub admin_listen: SocketAddr,
}

/// `{ url = ... }` of a section.
#[derive(Debug, Serialize)]
pub struct UrlOverride {
    pub url: String,
}

impl ServiceFlags {
    pub fn overrides(&self) -> Overrides {
        Overrides {
            listen: self.listen,
            node_id: self.node_id.clone(),
            log_json: self.log_json,
            redis: self.redis_url.clone().map(|url| UrlOverride { url }),
            telemetry: self.admin_listen.map(|admin_listen| TelemetryOverride { admin_listen }),
        }
    }
}
