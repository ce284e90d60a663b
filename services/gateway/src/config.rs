//! The gateway's configuration: defaults, then a TOML file (`--config`), then
//! `GATEWAY_CONFIG_TOML`, then `GATEWAY_*` variables (`GATEWAY_REDIS__URL` sets
//! `redis.url`), then flags. docs/configuration.md lists every setting.
//!
//! The mode follows from two settings:
//! - neither `redis.url` nor `room_service.url`: embedded. In-memory bus, room service
//!   in this process; one node, nothing else to run.
//! - `redis.url` only: cluster node with the room service in this process, state in
//!   Redis (every gateway runs the room logic itself).
//! - both: cluster node calling a separate room service over gRPC.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

pub use crate::auth::JwtAlgorithm;
use bus::RedisConfig;
use protocol::IceServer;
use room_service::RoomsConfig;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GatewayConfig {
    /// HTTP address: `/ws`, `/healthz`, `/readyz`.
    pub listen: SocketAddr,
    /// This node's id in envelopes and logs; default: `gw-` and a random suffix.
    pub node_id: Option<String>,
    /// Log one JSON object per line instead of text.
    pub log_json: bool,
    /// Logs, metrics and traces (docs/observability.md).
    pub telemetry: common::telemetry::TelemetryConfig,
    /// Serve the demo app at `/` (the SDK at `/sdk/signal.js` is always served).
    pub demo_page: bool,
    /// TLS served by the gateway itself (docs/security.md); off unless both files are
    /// set.
    pub tls: common::config::TlsConfig,
    pub ws: WsConfig,
    pub limits: LimitsConfig,
    pub auth: AuthConfig,
    /// STUN/TURN servers handed to clients in `welcome`, as WebRTC `RTCIceServer`s.
    pub ice_servers: Vec<IceServer>,
    /// A TURN server sharing a secret with the gateways (coturn's `use-auth-secret`).
    pub turn: TurnConfig,
    pub room_service: RoomServiceClientConfig,
    /// Room policy, used when the room service runs in this process.
    pub rooms: RoomsConfig,
    pub redis: RedisConfig,
    pub bus: BusConfig,
    pub session: SessionConfig,
    pub lease: LeaseConfig,
    pub drain: DrainConfig,
    pub janitor: room_service::config::JanitorConfig,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            node_id: None,
            log_json: false,
            telemetry: common::telemetry::TelemetryConfig::with_admin_port(9080),
            demo_page: true,
            tls: common::config::TlsConfig::default(),
            ws: WsConfig::default(),
            limits: LimitsConfig::default(),
            auth: AuthConfig::default(),
            ice_servers: Vec::new(),
            turn: TurnConfig::default(),
            room_service: RoomServiceClientConfig::default(),
            rooms: RoomsConfig::default(),
            redis: RedisConfig::default(),
            bus: BusConfig::default(),
            session: SessionConfig::default(),
            lease: LeaseConfig::default(),
            drain: DrainConfig::default(),
            janitor: room_service::config::JanitorConfig::default(),
        }
    }
}

/// WebSocket settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WsConfig {
    /// Largest message (and frame) a client may send; larger ones close the socket with
    /// 1009.
    pub max_message_bytes: usize,
    /// Messages that may wait for a client that reads slowly; one more and the client is
    /// disconnected with 4008.
    pub send_queue: usize,
    /// Read buffer per socket, held for the connection's life. The library default
    /// (128 KiB) would dominate the memory of an idle connection; a larger message just
    /// takes several reads of it, which on a plain socket come from the gateway's own
    /// read-ahead (one system call per burst, `batched_io`).
    pub read_buffer_bytes: usize,
    /// Bytes the WebSocket layer collects before it writes to the socket. The socket
    /// gathers a batch of frames until the flush anyway (`batched_io`), so more than 0
    /// saves little.
    pub write_buffer_bytes: usize,
    /// How long a new TCP connection may take to finish its TLS handshake and send its
    /// request headers; slower ones are dropped (slowloris).
    #[serde(with = "humantime_serde")]
    pub handshake_timeout: Duration,
    /// How long a socket may take to authenticate when the token is not in the URL.
    #[serde(with = "humantime_serde")]
    pub auth_timeout: Duration,
    /// How often the gateway pings each socket.
    #[serde(with = "humantime_serde")]
    pub ping_interval: Duration,
    /// A socket from which nothing (not even a pong) arrives for this long is closed
    /// with 4009.
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// Pages (`Origin`s, as `https://app.example.com[:port]`) allowed to open a socket.
    /// Empty: only pages of the host the socket connects to. `["*"]`: any page. Clients
    /// that send no `Origin` (not browsers) are not checked.
    pub allowed_origins: Vec<String>,
}

impl Default for WsConfig {
    fn default() -> Self {
        Self {
            max_message_bytes: 64 * 1024,
            send_queue: 256,
            read_buffer_bytes: 512,
            write_buffer_bytes: 0,
            handshake_timeout: Duration::from_secs(10),
            auth_timeout: Duration::from_secs(10),
            ping_interval: Duration::from_secs(20),
            idle_timeout: Duration::from_secs(60),
            allowed_origins: Vec::new(),
        }
    }
}

/// What one connection, one source address and the whole gateway may take
/// (docs/security.md explains each).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Rooms one connection may be in at once.
    pub max_rooms_per_connection: usize,
    /// Largest `metadata` of a join, in bytes of JSON.
    pub max_metadata_bytes: usize,
    /// Messages a connection may send per second, on average; more are refused with
    /// `rate_limited`.
    pub messages_per_second: u32,
    /// Messages a connection may send at once beyond that rate (a mesh newcomer's offers
    /// and candidates to every peer come as one burst).
    pub message_burst: u32,
    /// Bytes a connection may send per second, on average.
    pub bytes_per_second: u32,
    /// Bytes it may send at once; at least `ws.max_message_bytes`.
    pub byte_burst: u32,
    /// A connection refused this many times within `refusal_window` is closed with 1008.
    pub refusals_before_close: u32,
    #[serde(with = "humantime_serde")]
    pub refusal_window: Duration,
    /// Signals and broadcasts without an `id` that one connection may have on their way
    /// to the bus at once, while its next frames are read (a burst goes to Redis as one
    /// batch). Any other request waits for them. 1: one request at a time.
    pub publishes_in_flight: usize,
    /// Connections this gateway holds at once; further upgrades get HTTP 503.
    pub max_connections: usize,
    /// TCP connections not upgraded (yet) to a WebSocket: requests and handshakes in
    /// progress, probes. Beyond, new connections are closed as soon as accepted.
    pub max_http_connections: usize,
    /// The `Retry-After` of that 503.
    #[serde(with = "humantime_serde")]
    pub retry_after: Duration,
    /// WebSocket upgrades one source address (an IPv6 /64) may attempt per second, on
    /// average; more get HTTP 429. 0 turns the limit off.
    pub connections_per_ip_per_second: u32,
    /// Attempts it may make at once beyond that rate.
    pub connection_burst_per_ip: u32,
    /// Behind a proxy: the header holding the client's address (e.g.
    /// `x-forwarded-for`, of which the last address counts). Unset: the peer address.
    /// Only set it when every request comes through that proxy, or clients can choose
    /// their own address.
    pub client_ip_header: Option<String>,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            max_rooms_per_connection: 16,
            max_metadata_bytes: 1024,
            messages_per_second: 100,
            message_burst: 500,
            bytes_per_second: 256 * 1024,
            byte_burst: 1024 * 1024,
            refusals_before_close: 100,
            refusal_window: Duration::from_secs(10),
            publishes_in_flight: 16,
            max_connections: 50_000,
            max_http_connections: 4096,
            retry_after: Duration::from_secs(5),
            connections_per_ip_per_second: 50,
            connection_burst_per_ip: 200,
            client_ip_header: None,
        }
    }
}

/// Client authentication.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// The one algorithm client tokens must be signed with; tokens naming any other
    /// (`none` included) are refused.
    pub algorithm: JwtAlgorithm,
    /// With HS256: the secret shared with the application's backend, which mints the
    /// tokens. Required in cluster mode.
    pub jwt_secret: Option<String>,
    /// With RS256 or ES256: the backend's public key, as a PEM file.
    pub public_key_file: Option<PathBuf>,
    /// With RS256 or ES256, instead of `public_key_file`: a JWKS document (RFC 7517)
    /// whose keys of that algorithm are accepted; a token's `kid` picks among them.
    pub jwks_file: Option<PathBuf>,
    /// Accept connections without a token (identity `anon-…`, any room). Development
    /// only: refused outside embedded mode. Unset: on in embedded mode when no
    /// `jwt_secret` is configured, otherwise off.
    pub anonymous: Option<bool>,
    /// Clock skew tolerated on `exp` and `nbf`.
    #[serde(with = "humantime_serde")]
    pub leeway: Duration,
}

impl AuthConfig {
    /// Whether anything to check tokens with is configured.
    pub fn has_keys(&self) -> bool {
        match self.algorithm {
            JwtAlgorithm::HS256 => self.jwt_secret.as_ref().is_some_and(|secret| !secret.is_empty()),
            JwtAlgorithm::RS256 | JwtAlgorithm::ES256 => self.public_key_file.is_some() || self.jwks_file.is_some(),
        }
    }

    fn validate(&self) -> anyhow::Result<()> {
        let asymmetric = self.algorithm != JwtAlgorithm::HS256;
        anyhow::ensure!(
            asymmetric || (self.public_key_file.is_none() && self.jwks_file.is_none()),
            "auth.public_key_file and auth.jwks_file need auth.algorithm = \"RS256\" or \"ES256\""
        );
        anyhow::ensure!(
            !(self.public_key_file.is_some() && self.jwks_file.is_some()),
            "set auth.public_key_file or auth.jwks_file, not both"
        );
        Ok(())
    }
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            algorithm: JwtAlgorithm::HS256,
            jwt_secret: None,
            public_key_file: None,
            jwks_file: None,
            anonymous: None,
            leeway: Duration::from_secs(5),
        }
    }
}

/// TURN with credentials minted per connection (coturn's TURN REST API scheme, see
/// `turn.rs`). With `secret` set, every `welcome` carries a TURN entry for `urls` with a
/// username and credential valid for `ttl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TurnConfig {
    /// The secret shared with the TURN server (coturn's `static-auth-secret`).
    pub secret: Option<String>,
    /// TURN URLs, e.g. `turn:turn.example.org:3478?transport=udp`, `turns:…:5349`.
    pub urls: Vec<String>,
    /// How long a credential stays valid.
    #[serde(with = "humantime_serde")]
    pub ttl: Duration,
}

impl Default for TurnConfig {
    fn default() -> Self {
        Self { secret: None, urls: Vec::new(), ttl: Duration::from_secs(24 * 3600) }
    }
}

/// How to reach a separate room service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RoomServiceClientConfig {
    /// gRPC URL, e.g. `http://room-service:7070`, or the URLs of several replicas
    /// separated by commas. Unset: the room service runs in this process.
    pub url: Option<String>,
    /// Sent as `authorization: Bearer <api_secret>` when set.
    pub api_secret: Option<String>,
    /// Call the room service over TLS, trusting the certificates this CA (PEM) signed.
    /// Unset: plain gRPC.
    pub tls_ca_file: Option<PathBuf>,
    /// With TLS: the name the room service's certificate must carry. Unset: the host
    /// of each URL (discovered replicas are IP addresses, so set it with discovery).
    pub tls_server_name: Option<String>,
    /// Deadline of each call.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Tries per call: a call that finds a replica unavailable goes to the next one.
    pub attempts: usize,
    /// How the replicas are found (see [`Discovery`]).
    pub discovery: Discovery,
    /// With `dns` discovery: how often the names in `url` are resolved again.
    #[serde(with = "humantime_serde")]
    pub dns_refresh: Duration,
    /// With `kubernetes` discovery: which Service's endpoints to use.
    pub kubernetes: KubernetesDiscoveryConfig,
}

impl Default for RoomServiceClientConfig {
    fn default() -> Self {
        Self {
            url: None,
            api_secret: None,
            tls_ca_file: None,
            tls_server_name: None,
            timeout: Duration::from_secs(3),
            attempts: 3,
            discovery: Discovery::Static,
            dns_refresh: Duration::from_secs(5),
            kubernetes: KubernetesDiscoveryConfig::default(),
        }
    }
}

/// Where the gateway learns the room-service replicas from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Discovery {
    /// The URLs listed in `room_service.url`.
    Static,
    /// Every address the host names in `room_service.url` resolve to (a headless
    /// Service's DNS name gives one per pod), resolved again periodically.
    Dns,
    /// The ready endpoints of a Kubernetes Service, watched through the API
    /// (EndpointSlices): pods are added when ready and dropped when terminating.
    Kubernetes,
}

/// The Service whose endpoints are the room-service replicas.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KubernetesDiscoveryConfig {
    /// The Service's name. Required with `kubernetes` discovery.
    pub service: Option<String>,
    /// Its namespace. Unset: the gateway's own (in a pod), else the kubeconfig's.
    pub namespace: Option<String>,
    /// The port of the endpoints to call: its name in the Service, or its number.
    pub port: String,
    /// The Kubernetes API's URL. Unset: in a pod the in-cluster API, else the
    /// kubeconfig's cluster (e.g. `http://127.0.0.1:8001` for `kubectl proxy`).
    pub api_url: Option<String>,
}

impl Default for KubernetesDiscoveryConfig {
    fn default() -> Self {
        Self { service: None, namespace: None, port: "grpc".into(), api_url: None }
    }
}

impl RoomServiceClientConfig {
    /// The replicas' URLs listed in `url`.
    pub fn urls(&self) -> Vec<String> {
        let listed = self.url.as_deref().unwrap_or_default().split(',');
        listed.map(str::trim).filter(|url| !url.is_empty()).map(str::to_string).collect()
    }
}

/// The message bus, beyond the Redis connection itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BusConfig {
    /// Envelopes received from the bus that may wait for dispatch.
    pub incoming_queue: usize,
    /// How long a join waits for its own `peer_joined` to come back over the bus (the
    /// point from which this node has every later change of the room).
    #[serde(with = "humantime_serde")]
    pub echo_timeout: Duration,
}

impl Default for BusConfig {
    fn default() -> Self {
        Self { incoming_queue: 65_536, echo_timeout: Duration::from_secs(5) }
    }
}

/// Sessions, resume and replay.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SessionConfig {
    /// How long a session whose connection was lost is kept for a resume. 0 turns resume
    /// off: a lost connection leaves its rooms at once.
    #[serde(with = "humantime_serde")]
    pub resume_window: Duration,
    /// Unacknowledged messages kept per session for a resume; beyond, the oldest go and
    /// a resume that needed them reports a gap.
    pub replay_frames: usize,
    /// The same bound in bytes.
    pub replay_bytes: usize,
    /// How long a resume waits for the session's old gateway to hand over what it kept.
    #[serde(with = "humantime_serde")]
    pub handover_timeout: Duration,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            resume_window: Duration::from_secs(30),
            replay_frames: 1024,
            replay_bytes: 256 * 1024,
            handover_timeout: Duration::from_secs(3),
        }
    }
}

/// The gateway's lease in Redis: while it holds, its sessions are its own; once it
/// expires (the gateway died or was cut off), the janitor removes them from their rooms.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LeaseConfig {
    #[serde(with = "humantime_serde")]
    pub ttl: Duration,
    #[serde(with = "humantime_serde")]
    pub refresh: Duration,
}

impl Default for LeaseConfig {
    fn default() -> Self {
        Self { ttl: Duration::from_secs(10), refresh: Duration::from_secs(2) }
    }
}

/// Graceful shutdown (SIGTERM).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DrainConfig {
    /// Longest a draining gateway waits for its clients to resume elsewhere (it hands
    /// their sessions over) before it ends the rest and exits. Keep Kubernetes'
    /// terminationGracePeriodSeconds above it.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// After telling a client to reconnect, how long to keep reading what it still sends
    /// before closing its socket.
    #[serde(with = "humantime_serde")]
    pub client_grace: Duration,
}

impl Default for DrainConfig {
    fn default() -> Self {
        Self { timeout: Duration::from_secs(25), client_grace: Duration::from_secs(5) }
    }
}

/// Which parts run where, as derived from the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// In-memory bus and room service; one node.
    Embedded,
    /// Redis bus; room service in this process over Redis state.
    ClusterWithLocalRooms,
    /// Redis bus; room service over gRPC.
    Cluster,
}

impl GatewayConfig {
    pub const ENV_PREFIX: &str = "GATEWAY_";

    pub fn mode(&self) -> anyhow::Result<Mode> {
        let room_service = &self.room_service;
        let separate_rooms = room_service.url.is_some() || room_service.discovery == Discovery::Kubernetes;
        match (&self.redis.url, separate_rooms) {
            (None, false) => Ok(Mode::Embedded),
            (Some(_), false) => Ok(Mode::ClusterWithLocalRooms),
            (Some(_), true) => Ok(Mode::Cluster),
            (None, true) => anyhow::bail!(
                "a separate room service is configured but redis.url is not: the room service publishes presence over Redis, so gateways need Redis too"
            ),
        }
    }

    /// Whether connections without a token are accepted.
    pub fn anonymous_allowed(&self) -> anyhow::Result<bool> {
        let embedded = self.mode()? == Mode::Embedded;
        let anonymous = self.auth.anonymous.unwrap_or(embedded && !self.auth.has_keys());
        anyhow::ensure!(
            !anonymous || embedded,
            "auth.anonymous is only allowed in embedded mode (no redis.url); configure auth.jwt_secret"
        );
        Ok(anonymous)
    }

    /// The settings as `--check-config` prints them: JSON with the secrets hidden and
    /// the mode this configuration runs in.
    pub fn redacted(&self) -> serde_json::Value {
        let mut shown = common::config::redacted(
            self,
            &["auth.jwt_secret", "room_service.api_secret", "turn.secret", "redis.password"],
            &["redis.url"],
        );
        shown["mode"] = match self.mode() {
            Ok(Mode::Embedded) => "embedded",
            Ok(Mode::ClusterWithLocalRooms) => "cluster_with_local_rooms",
            Ok(Mode::Cluster) => "cluster",
            Err(_) => "invalid",
        }
        .into();
        shown
    }

    /// Checks what serde cannot.
    pub fn validate(&self) -> anyhow::Result<()> {
        self.telemetry.validate()?;
        self.redis.validate().map_err(anyhow::Error::msg)?;
        let room_service = &self.room_service;
        anyhow::ensure!(
            room_service.discovery != Discovery::Kubernetes || room_service.kubernetes.service.is_some(),
            "room_service.discovery = \"kubernetes\" needs room_service.kubernetes.service"
        );
        anyhow::ensure!(
            room_service.discovery != Discovery::Dns || room_service.url.is_some(),
            "room_service.discovery = \"dns\" needs room_service.url (the names to resolve)"
        );
        let anonymous = self.anonymous_allowed()?;
        self.auth.validate()?;
        anyhow::ensure!(
            anonymous || self.auth.has_keys(),
            "no key to check client tokens with: set auth.jwt_secret (HS256), or auth.public_key_file or auth.jwks_file (RS256, ES256), unless anonymous access is on"
        );
        anyhow::ensure!(self.ws.max_message_bytes >= 1024, "ws.max_message_bytes must be at least 1024");
        anyhow::ensure!(self.ws.send_queue >= 1, "ws.send_queue must be at least 1");
        anyhow::ensure!(self.ws.idle_timeout > self.ws.ping_interval, "ws.idle_timeout must exceed ws.ping_interval");
        anyhow::ensure!(
            self.limits.max_rooms_per_connection >= 1,
            "limits.max_rooms_per_connection must be at least 1"
        );
        self.validate_limits()?;
        anyhow::ensure!(self.rooms.default_capacity >= 1, "rooms.default_capacity must be at least 1");
        anyhow::ensure!(self.lease.refresh < self.lease.ttl, "lease.refresh must be shorter than lease.ttl");
        anyhow::ensure!(self.session.replay_frames >= 1, "session.replay_frames must be at least 1");
        for server in &self.ice_servers {
            anyhow::ensure!(!server.urls.is_empty(), "every ice_servers entry needs at least one URL");
        }
        if self.turn.secret.is_some() {
            anyhow::ensure!(!self.turn.urls.is_empty(), "turn.secret is set but turn.urls is empty");
            anyhow::ensure!(self.turn.ttl.as_secs() >= 60, "turn.ttl must be at least 1m");
        }
        Ok(())
    }

    fn validate_limits(&self) -> anyhow::Result<()> {
        let limits = &self.limits;
        anyhow::ensure!(
            limits.messages_per_second >= 1 && limits.message_burst >= 1,
            "limits.messages_per_second and limits.message_burst must be at least 1"
        );
        anyhow::ensure!(
            limits.bytes_per_second >= 1 && limits.byte_burst as usize >= self.ws.max_message_bytes,
            "limits.bytes_per_second must be at least 1 and limits.byte_burst at least ws.max_message_bytes"
        );
        anyhow::ensure!(limits.refusals_before_close >= 1, "limits.refusals_before_close must be at least 1");
        anyhow::ensure!(limits.publishes_in_flight >= 1, "limits.publishes_in_flight must be at least 1");
        anyhow::ensure!(
            limits.max_connections >= 1 && limits.max_http_connections >= 1,
            "limits.max_connections and limits.max_http_connections must be at least 1"
        );
        self.tls.validate("tls")?;
        anyhow::ensure!(
            limits.connections_per_ip_per_second == 0 || limits.connection_burst_per_ip >= 1,
            "limits.connection_burst_per_ip must be at least 1"
        );
        if let Some(name) = &limits.client_ip_header {
            axum::http::HeaderName::try_from(name.as_str())
                .map_err(|_| anyhow::anyhow!("limits.client_ip_header {name:?} is not a header name"))?;
        }
        for origin in &self.ws.allowed_origins {
            let (scheme, authority) = origin.split_once("://").unwrap_or_default();
            let authority = authority.trim_end_matches('/');
            anyhow::ensure!(
                origin == "*"
                    || (["http", "https"].contains(&scheme) && !authority.is_empty() && !authority.contains('/')),
                "ws.allowed_origins: {origin:?} is not `*` or an origin like https://app.example.com"
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_and_anonymous_access() {
        let mut config = GatewayConfig::default();
        assert_eq!(config.mode().unwrap(), Mode::Embedded);
        assert!(config.anonymous_allowed().unwrap(), "embedded without a secret: anonymous");
        config.validate().unwrap();

        config.auth.jwt_secret = Some("s".into());
        assert!(!config.anonymous_allowed().unwrap(), "a secret turns anonymous access off");

        config.redis.url = Some("redis://127.0.0.1:6379".into());
        assert_eq!(config.mode().unwrap(), Mode::ClusterWithLocalRooms);
        config.auth.anonymous = Some(true);
        assert!(config.validate().is_err(), "anonymous access is refused in cluster mode");
        config.auth.anonymous = None;
        config.auth.jwt_secret = None;
        assert!(config.validate().is_err(), "cluster mode needs a secret");

        config.room_service.url = Some("http://127.0.0.1:7070".into());
        config.auth.jwt_secret = Some("s".into());
        assert_eq!(config.mode().unwrap(), Mode::Cluster);
        config.validate().unwrap();

        config.redis.url = None;
        assert!(config.mode().is_err(), "a remote room service needs Redis");
    }

    #[test]
    fn token_keys_fit_the_algorithm() {
        let mut config = GatewayConfig::default();
        config.auth.public_key_file = Some("key.pem".into());
        let error = config.validate().unwrap_err().to_string();
        assert!(error.contains("need auth.algorithm"), "a key file with HS256: {error}");
        config.auth.algorithm = JwtAlgorithm::RS256;
        assert!(!config.anonymous_allowed().unwrap(), "a key turns anonymous access off");
        config.validate().unwrap();
        config.auth.jwks_file = Some("keys.json".into());
        assert!(config.validate().unwrap_err().to_string().contains("not both"));

        config.auth.public_key_file = None;
        config.auth.jwks_file = None;
        config.auth.jwt_secret = Some("ignored with RS256".into());
        config.redis.url = Some("redis://127.0.0.1:6379".into());
        let error = config.validate().unwrap_err().to_string();
        assert!(error.contains("no key to check client tokens with"), "{error}");
    }

    #[test]
    fn kubernetes_discovery_means_a_separate_room_service_and_names_it() {
        let mut config = GatewayConfig::default();
        config.redis.url = Some("redis://127.0.0.1:6379".into());
        config.auth.jwt_secret = Some("s".into());
        config.room_service.discovery = Discovery::Kubernetes;
        assert_eq!(config.mode().unwrap(), Mode::Cluster, "no room_service.url needed");
        let error = config.validate().unwrap_err().to_string();
        assert!(error.contains("room_service.kubernetes.service"), "{error}");
        config.room_service.kubernetes.service = Some("room-service".into());
        config.validate().unwrap();

        config.room_service.discovery = Discovery::Dns;
        assert!(config.validate().is_err(), "dns discovery resolves the names in room_service.url");
    }
}
