//! What every service binary does the same way.
//!
//! - [`config`]: configuration layered from defaults, a TOML file, the environment and
//!   command-line flags ([`flags`]).
//! - [`telemetry`]: logs, metrics and traces; [`admin`]: the port that exposes them.
//! - [`shutdown`]: the SIGTERM / Ctrl-C signal.

pub mod admin;
pub mod config;
pub mod flags;
pub mod shutdown;
pub mod telemetry;

/// A fresh node id for logs and bus envelopes: `<prefix>-<host>-<8 random hex digits>`
/// (`<host>` from `HOSTNAME`, the pod name on Kubernetes, left out when unset). The
/// random part keeps ids unique between processes on one host and across restarts.
pub fn node_id(prefix: &str) -> String {
    let suffix = format!("{:08x}", rand::random::<u32>());
    match std::env::var("HOSTNAME") {
        Ok(host) if !host.is_empty() => format!("{prefix}-{host}-{suffix}"),
        _ => format!("{prefix}-{suffix}"),
    }
}
