//! A test cluster on real sockets: a real redis-server (from `testkit`), the room
//! service and any number of gateways, each on its own loopback port, and helpers to
//! connect real WebSocket clients to them.
//!
//! - [`TestCluster`]: gateways and room service in the test's process (fast to start,
//!   easy to configure), Redis as a child process.
//! - [`processes`]: the real `gateway` and `room-service` binaries as child processes.
//! - [`browser`]: headless Chromium over WebDriver, showing the demo app.
//! - [`tls_proxy`]: a TLS-terminating proxy, for pages served over https/wss.
//! - [`balancer`]: a TCP load balancer, for rolling restarts behind one address.
//! - [`expect`]: assertions on what a client receives.
//! - [`scrape`]: a service's `/metrics`, read into values.
//! - [`fake_kube`]: a fake Kubernetes API serving EndpointSlices, for discovery.
//! - [`otlp`]: an OTLP trace collector, to see the spans the services export;
//!   [`prometheus`]: a real Prometheus scraping them.

pub mod balancer;
pub mod browser;
pub mod expect;
pub mod fake_kube;
pub mod link;
pub mod otlp;
pub mod processes;
pub mod prometheus;
pub mod scrape;
pub mod tls_proxy;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bus::RedisConfig;
use cluster_proto::room::room_service_client::RoomServiceClient;
use gateway::GatewayConfig;
use gateway::auth::{Claims, mint};
use protocol::client::Client;
use room_service::grpc::Access;
use room_service::sessions::redis::RedisSessionStore;
use room_service::store::redis::RedisRoomStore;
use room_service::{Rooms, RoomsConfig};
use testkit::{RedisCluster, RedisServer};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::Channel;

/// The JWT secret every test cluster uses.
pub const SECRET: &str = "e2e-test-secret";

struct Node {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<anyhow::Result<()>>,
}

impl Node {
    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match tokio::time::timeout(Duration::from_secs(15), &mut self.task).await {
            Ok(Ok(result)) => result.expect("node stopped with an error"),
            Ok(Err(join_error)) => panic!("node task failed: {join_error}"),
            Err(_) => panic!("node did not stop within 15 s"),
        }
    }
}

pub struct TestCluster {
    gateways: Vec<Node>,
    room_service: Option<Node>,
    redis: Option<RedisServer>,
    redis_cluster: Option<RedisCluster>,
}

/// Logs of the in-process nodes, when `E2E_LOG` holds a filter (e.g.
/// `E2E_LOG=gateway=debug cargo test -p e2e -- resume`); silent otherwise.
fn init_logging() {
    if let Ok(filter) = std::env::var("E2E_LOG") {
        let _ = tracing_subscriber::fmt().with_env_filter(filter).with_test_writer().try_init();
    }
}

/// The gateway settings every test cluster starts from.
pub fn base_config() -> GatewayConfig {
    init_logging();
    let mut config = GatewayConfig { listen: SocketAddr::from(([127, 0, 0, 1], 0)), ..GatewayConfig::default() };
    config.auth.jwt_secret = Some(SECRET.into());
    // Tests of clients that never authenticate should not wait the default 10 s.
    config.ws.auth_timeout = Duration::from_secs(2);
    // Stopping a test cluster drains it; clients that do not resume must not hold that
    // up for the production defaults (5 s grace, 25 s drain).
    config.drain.client_grace = Duration::from_millis(200);
    config.drain.timeout = Duration::from_secs(1);
    config
}

impl TestCluster {
    /// One embedded gateway: in-memory bus and room service, no Redis.
    pub async fn embedded() -> Self {
        Self::embedded_with(|_| {}).await
    }

    pub async fn embedded_with(tweak: impl FnOnce(&mut GatewayConfig)) -> Self {
        let mut config = base_config();
        tweak(&mut config);
        Self { gateways: vec![start_gateway(config).await], room_service: None, redis: None, redis_cluster: None }
    }

    /// A real redis-server, a room service over gRPC and `gateways` gateways.
    pub async fn redis(gateways: usize) -> Self {
        Self::redis_with(gateways, RoomsConfig::default(), |_| {}).await
    }

    pub async fn redis_with(gateways: usize, rooms: RoomsConfig, tweak: impl Fn(&mut GatewayConfig)) -> Self {
        Self::redis_with_access(gateways, rooms, Access::default(), tweak).await
    }

    /// Like [`TestCluster::redis_with`], with a room service that demands `access` (an
    /// API secret, TLS): `tweak` gives the gateways what they need for it.
    pub async fn redis_with_access(
        gateways: usize,
        rooms: RoomsConfig,
        access: Access,
        tweak: impl Fn(&mut GatewayConfig),
    ) -> Self {
        let redis = RedisServer::start().await;
        let mut cluster = Self::on_redis(&redis.url(), gateways, rooms, access, tweak).await;
        cluster.redis = Some(redis);
        cluster
    }

    /// Like [`TestCluster::redis_with`] on a Redis Cluster of three masters: room
    /// channels are sharded, each room's keys and channel on one master.
    pub async fn redis_cluster_with(gateways: usize, rooms: RoomsConfig, tweak: impl Fn(&mut GatewayConfig)) -> Self {
        let redis = RedisCluster::start(3, 0).await;
        let mut cluster = Self::on_redis(&redis.url(), gateways, rooms, Access::default(), tweak).await;
        cluster.redis_cluster = Some(redis);
        cluster
    }

    async fn on_redis(
        url: &str,
        gateways: usize,
        rooms: RoomsConfig,
        access: Access,
        tweak: impl Fn(&mut GatewayConfig),
    ) -> Self {
        let redis_config = RedisConfig { url: Some(url.into()), ..RedisConfig::default() };
        let room_service = start_room_service(&redis_config, rooms, access).await;
        let mut nodes = Vec::with_capacity(gateways);
        for index in 0..gateways {
            let mut config = base_config();
            config.node_id = Some(format!("gw-{index}"));
            config.redis = redis_config.clone();
            config.room_service.url = Some(format!("http://{}", room_service.addr));
            tweak(&mut config);
            nodes.push(start_gateway(config).await);
        }
        Self { gateways: nodes, room_service: Some(room_service), redis: None, redis_cluster: None }
    }

    pub fn gateway_count(&self) -> usize {
        self.gateways.len()
    }

    /// `ws://…/ws` of gateway `index` (modulo the number of gateways, so scenarios
    /// written for three gateways also run on one).
    pub fn ws_url(&self, index: usize) -> String {
        format!("ws://{}/ws", self.gateways[index % self.gateways.len()].addr)
    }

    pub fn http_url(&self, index: usize) -> String {
        format!("http://{}", self.gateway_addr(index))
    }

    pub fn gateway_addr(&self, index: usize) -> SocketAddr {
        self.gateways[index % self.gateways.len()].addr
    }

    /// A token for `identity` granting `rooms`, valid for an hour.
    pub fn token(&self, identity: &str, rooms: &[&str]) -> String {
        let rooms = rooms.iter().map(|room| room.to_string()).collect();
        mint(SECRET, &Claims::new(identity, rooms, Duration::from_secs(3600)))
    }

    /// Like [`TestCluster::token`], with a display name.
    pub fn token_named(&self, identity: &str, name: &str, rooms: &[&str]) -> String {
        let rooms = rooms.iter().map(|room| room.to_string()).collect();
        let mut claims = Claims::new(identity, rooms, Duration::from_secs(3600));
        claims.name = Some(name.to_string());
        mint(SECRET, &claims)
    }

    /// A client of gateway `index` authenticated as `identity` with access to `rooms`.
    pub async fn connect(&self, index: usize, identity: &str, rooms: &[&str]) -> Client {
        Client::connect(&self.ws_url(index), Some(&self.token(identity, rooms))).await.expect("connect to a gateway")
    }

    /// Alice on gateway 0 and Bob on gateway 1, both in `room` (Alice first: she has
    /// seen Bob's `peer_joined`).
    pub async fn alice_and_bob_in(&self, room: &str) -> (Client, Client) {
        let mut alice = self.connect(0, "alice", &[room]).await;
        let mut bob = self.connect(1, "bob", &[room]).await;
        alice.join(room, None).await.expect("alice joins");
        bob.join(room, None).await.expect("bob joins");
        crate::expect::peer_joined(&mut alice, room).await;
        (alice, bob)
    }

    /// The room service's gRPC address.
    pub fn room_service_addr(&self) -> SocketAddr {
        self.room_service.as_ref().expect("this cluster runs a separate room service").addr
    }

    /// A gRPC client of the room service (the server API an application's backend uses).
    pub async fn room_service_client(&self) -> RoomServiceClient<Channel> {
        let addr = self.room_service.as_ref().expect("this cluster runs a separate room service").addr;
        RoomServiceClient::connect(format!("http://{addr}")).await.expect("connect to the room service")
    }

    pub fn redis_cluster(&self) -> &RedisCluster {
        self.redis_cluster.as_ref().expect("this cluster runs a Redis Cluster")
    }

    pub fn redis_server(&mut self) -> &mut RedisServer {
        self.redis.as_mut().expect("this cluster runs Redis")
    }

    /// Stops every node gracefully and checks that each stopped without error.
    pub async fn shutdown(mut self) {
        for gateway in self.gateways.drain(..) {
            gateway.stop().await;
        }
        if let Some(room_service) = self.room_service.take() {
            room_service.stop().await;
        }
    }
}

async fn start_gateway(config: GatewayConfig) -> Node {
    let listener = TcpListener::bind(config.listen).await.expect("bind a loopback port");
    let addr = listener.local_addr().expect("local address");
    let (stop, stopped) = oneshot::channel::<()>();
    // The listener is bound before the task starts, so clients may connect at once:
    // they wait in the accept backlog until the gateway serves.
    let task = tokio::spawn(gateway::run(config, listener, async move {
        let _ = stopped.await;
    }));
    Node { addr, stop: Some(stop), task }
}

/// How often the test room service's janitor sweeps (the production default is 2 s).
pub const JANITOR_PERIOD: Duration = Duration::from_millis(250);

async fn start_room_service(redis: &RedisConfig, rooms: RoomsConfig, access: Access) -> Node {
    let store = RedisRoomStore::connect(redis).await.expect("room store connects to Redis");
    let sessions = RedisSessionStore::connect(redis).await.expect("session store connects to Redis");
    let rooms = Arc::new(Rooms::new(Arc::new(store), "rs-test", rooms));
    let janitor = room_service::Janitor::new(rooms.clone(), Arc::new(sessions));
    tokio::spawn(janitor.run(JANITOR_PERIOD, std::future::pending()));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind a loopback port");
    let addr = listener.local_addr().expect("local address");
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(room_service::grpc::serve(rooms, access, listener, async move {
        let _ = stopped.await;
    }));
    Node { addr, stop: Some(stop), task }
}

/// A file or folder of the repository, by its path from the top.
pub fn repository_path(path: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(path)
}

/// Runs a command-line tool in the repository's top folder and returns its standard
/// output; panics, saying so, when it is missing, fails or takes longer than `within`.
pub async fn run_tool(program: &str, args: &[&str], within: Duration) -> String {
    let output = tool_output(program, args, within).await;
    assert!(
        output.status.success(),
        "{program} {}: {}{}",
        args.join(" "),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("UTF-8 output")
}

/// Like [`run_tool`], for a run that may fail: its status and both outputs.
pub async fn tool_output(program: &str, args: &[&str], within: Duration) -> std::process::Output {
    let run =
        tokio::process::Command::new(program).args(args).current_dir(repository_path("")).kill_on_drop(true).output();
    tokio::time::timeout(within, run)
        .await
        .unwrap_or_else(|_| panic!("{program} did not finish within {within:?}"))
        .unwrap_or_else(|e| {
            panic!("cannot run {program} ({e}); install it, or run the README test command, which does")
        })
}

/// A bare HTTP/1.1 GET (for the probes), returning the status code and body.
pub async fn http_get(addr_url: &str, path: &str) -> (u16, String) {
    http_request("GET", addr_url, path, "").await
}

/// A bare HTTP/1.1 request with a text body, returning the status code and body.
pub async fn http_request(method: &str, addr_url: &str, path: &str, body: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let host = addr_url.trim_start_matches("http://");
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(host).await?;
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(request.as_bytes()).await?;
        let mut response = String::new();
        stream.read_to_string(&mut response).await?;
        Ok::<_, std::io::Error>(response)
    };
    let response = tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .expect("an HTTP answer within 10 s")
        .expect("HTTP exchange");
    let status = response.split(' ').nth(1).and_then(|code| code.parse().ok()).expect("an HTTP status line");
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let chunked = head.lines().any(|line| line.eq_ignore_ascii_case("transfer-encoding: chunked"));
    (status, if chunked { dechunk(body) } else { body.to_string() })
}

/// The body of a chunked HTTP/1.1 response.
fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else { break };
        if size == 0 || rest.len() < size {
            break;
        }
        out.push_str(&rest[..size]);
        body = rest[size..].trim_start_matches("\r\n");
    }
    out
}
