//! The real `gateway` and `room-service` binaries as child processes.
//!
//! The binaries are looked up next to the test executable's directory (`target/<profile>`);
//! `cargo test --workspace` builds them because their packages have integration tests.
//! Each child logs JSON lines; the harness reads them to learn the bound address once
//! the process says it is ready, instead of polling.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// A service binary running as a child process; killed when dropped.
pub struct ServiceProcess {
    child: Child,
    addr: SocketAddr,
    admin: SocketAddr,
    /// The child's log lines as they come.
    log: tokio::sync::broadcast::Sender<String>,
}

/// Log lines a slow reader of [`ServiceProcess::watch_log`] may lag behind by.
const LOG_LINES_KEPT: usize = 4096;

impl ServiceProcess {
    /// Starts `binary` with `args` and `env`, and waits until it logs `ready_message`
    /// with a `listen` field. Both its ports are picked by the system; the admin port's
    /// address is read from its log too.
    pub async fn start(binary: &str, args: &[&str], env: &[(&str, String)], ready_message: &str) -> Self {
        let path = binary_path(binary);
        let binary_name = binary.to_string();
        let mut command = Command::new(&path);
        // Hermetic: no setting leaks in from the environment the tests run in.
        for (key, _) in std::env::vars() {
            if key.starts_with("GATEWAY_") || key.starts_with("ROOM_SERVICE_") {
                command.env_remove(key);
            }
        }
        let mut child = command
            .args(args)
            .args(["--log-json", "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .env_remove("RUST_LOG")
            .envs(std::env::var("E2E_LOG").ok().map(|filter| ("RUST_LOG", filter)))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", path.display()));
        let mut lines = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
        let (addr, admin) = tokio::time::timeout(Duration::from_secs(20), async {
            let mut admin = None;
            while let Ok(Some(line)) = lines.next_line().await {
                let Ok(record) = serde_json::from_str::<serde_json::Value>(&line) else { continue };
                let fields = &record["fields"];
                let address = |name: &str| fields[name].as_str().and_then(|addr| addr.parse::<SocketAddr>().ok());
                if fields["admin"].is_string() {
                    admin = address("admin");
                }
                if fields["message"] == ready_message {
                    return Some((address("listen")?, admin.expect("the admin port is logged before ready")));
                }
            }
            None
        })
        .await
        .unwrap_or_else(|_| panic!("{binary} did not log {ready_message:?} within 20 s"))
        .unwrap_or_else(|| panic!("{binary} exited before logging {ready_message:?}"));
        // The pipe is drained so the child never blocks on a full one; with `E2E_LOG`
        // set the lines are shown, tagged with the child's pid. The latest lines are
        // kept for `watch_log`.
        let echo = std::env::var_os("E2E_LOG").is_some();
        let pid = child.id().unwrap_or_default();
        let (log, _) = tokio::sync::broadcast::channel(LOG_LINES_KEPT);
        let sender = log.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                if echo {
                    eprintln!("[{binary_name} {pid}] {line}");
                }
                let _ = sender.send(line);
            }
        });
        Self { child, addr, admin, log }
    }

    /// The log lines the child writes from now on (JSON objects, one per line).
    pub fn watch_log(&self) -> tokio::sync::broadcast::Receiver<String> {
        self.log.subscribe()
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The admin port: `/metrics`, `/log-level`.
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin
    }

    /// The process's resident memory in KiB (from /proc), if it is running.
    pub fn resident_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()?)).ok()?;
        let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
        line.split_whitespace().nth(1)?.parse().ok()
    }

    /// The process id, while it runs (for a tool that signals it, e.g. the load
    /// tester's `storm --disrupt`).
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Whether the process is still running (it has not exited or crashed).
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Kills the process with SIGKILL, as a crash would, and waits until it is gone.
    pub async fn kill(mut self) {
        self.child.kill().await.expect("kill the child");
    }

    /// Sends SIGTERM and waits for the exit status.
    pub async fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().expect("running child has a pid");
        signal(pid, libc::SIGTERM);
        tokio::time::timeout(Duration::from_secs(20), self.child.wait())
            .await
            .expect("exit within 20 s of SIGTERM")
            .expect("wait for the child")
    }
}

/// Sends `signal` to one process.
pub fn signal(pid: u32, signal: libc::c_int) {
    let pid = libc::pid_t::try_from(pid).expect("a pid fits pid_t");
    assert!(pid > 1, "refusing to signal pid {pid}");
    // SAFETY: kill(2) has no memory-safety preconditions.
    let result = unsafe { libc::kill(pid, signal) };
    assert_eq!(result, 0, "kill({pid}, {signal}): {}", std::io::Error::last_os_error());
}

/// Sends SIGKILL to the process group led by `leader` (a child started with
/// `process_group(0)`). Called directly rather than through the `kill` command, whose
/// procps version reads `-KILL -12345` as `kill(-1, SIGKILL)`: every process there is.
pub fn kill_group(leader: u32) {
    let Ok(group) = libc::pid_t::try_from(leader) else { return };
    if group > 1 {
        // SAFETY: kill(2) has no memory-safety preconditions; a negative pid names a
        // process group, and `group > 1` rules out "every process" (-1).
        unsafe { libc::kill(-group, libc::SIGKILL) };
    }
}

/// `target/<profile>/<binary>`, derived from this test executable's location
/// (`target/<profile>/deps/<test>`).
pub fn binary_path(binary: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let profile_dir = exe.parent().and_then(|deps| deps.parent()).expect("target/<profile>/deps/<test>");
    let path = profile_dir.join(binary);
    assert!(
        path.exists(),
        "{} is missing: build the binaries first (`cargo build --workspace --bins`, or the README test command)",
        path.display()
    );
    path
}

/// Redis, room-service processes and gateway processes, configured through the
/// environment as a deployment would be. Gateways can be killed, drained and started
/// again; room-service replicas can be killed. `R` is the Redis they use, for the test
/// to kill: a [`testkit::RedisServer`], or a [`testkit::RedisCluster`].
pub struct ProcessCluster<R = testkit::RedisServer> {
    pub redis: R,
    room_services: Vec<Option<ServiceProcess>>,
    gateways: Vec<Option<ServiceProcess>>,
    gateway_env: Vec<(String, String)>,
}

impl ProcessCluster {
    /// Starts `gateways` gateways with `gateway_env` on top of the cluster settings, and
    /// one room service, whose janitor sweeps every `janitor_period`.
    pub async fn start(gateways: usize, gateway_env: &[(&str, &str)], janitor_period: &str) -> Self {
        Self::start_with_replicas(gateways, gateway_env, janitor_period, 1).await
    }

    /// As [`Self::start`], with `replicas` room-service processes, all listed to the
    /// gateways.
    pub async fn start_with_replicas(
        gateways: usize,
        gateway_env: &[(&str, &str)],
        janitor_period: &str,
        replicas: usize,
    ) -> Self {
        let room_env = [("ROOM_SERVICE_JANITOR__PERIOD", janitor_period.to_string())];
        Self::start_with_env(gateways, gateway_env, &room_env, replicas).await
    }

    /// As [`Self::start_with_replicas`], with the room services' environment given.
    pub async fn start_with_env(
        gateways: usize,
        gateway_env: &[(&str, &str)],
        room_env: &[(&str, String)],
        replicas: usize,
    ) -> Self {
        let redis = testkit::RedisServer::start().await;
        let url = redis.url();
        Self::assemble(redis, &url, gateways, gateway_env, room_env, replicas).await
    }
}

impl<R> ProcessCluster<R> {
    /// One room service and `gateways` gateways reaching Redis through `redis_url` (a
    /// Sentinel's, or a Redis Cluster's, say); `redis` is the cluster's `redis`, for the
    /// test to kill.
    pub async fn start_on_redis(redis: R, redis_url: &str, gateways: usize) -> Self {
        Self::assemble(redis, redis_url, gateways, &[], &[], 1).await
    }

    async fn assemble(
        redis: R,
        redis_url: &str,
        gateways: usize,
        gateway_env: &[(&str, &str)],
        room_env: &[(&str, String)],
        replicas: usize,
    ) -> Self {
        let mut room_services = Vec::new();
        for _ in 0..replicas {
            let args = ["--redis-url", redis_url];
            room_services
                .push(Some(ServiceProcess::start("room-service", &args, room_env, "room service ready").await));
        }
        let urls: Vec<String> =
            room_services.iter().flatten().map(|replica| format!("http://{}", replica.addr())).collect();
        let mut env = vec![
            ("GATEWAY_REDIS__URL".to_string(), redis_url.to_string()),
            ("GATEWAY_ROOM_SERVICE__URL".to_string(), urls.join(",")),
            ("GATEWAY_AUTH__JWT_SECRET".to_string(), crate::SECRET.to_string()),
        ];
        env.extend(gateway_env.iter().map(|(key, value)| (key.to_string(), value.to_string())));
        let mut cluster = Self { redis, room_services, gateways: Vec::new(), gateway_env: env };
        for _ in 0..gateways {
            cluster.add_gateway().await;
        }
        cluster
    }

    /// Starts one more gateway; returns its index.
    pub async fn add_gateway(&mut self) -> usize {
        self.add_gateway_with(&[]).await
    }

    /// Starts one more gateway with some settings replaced (e.g. its Redis URL pointing
    /// at a [`crate::link::Link`]); returns its index.
    pub async fn add_gateway_with(&mut self, overrides: &[(&str, String)]) -> usize {
        let mut env: Vec<(&str, String)> = self.gateway_env.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
        env.retain(|(key, _)| !overrides.iter().any(|(replaced, _)| replaced == key));
        env.extend(overrides.iter().cloned());
        let gateway = ServiceProcess::start("gateway", &[], &env, "gateway ready").await;
        self.gateways.push(Some(gateway));
        self.gateways.len() - 1
    }

    pub fn gateway_addr(&self, index: usize) -> SocketAddr {
        self.gateways[index].as_ref().expect("a running gateway").addr()
    }

    pub fn ws_url(&self, index: usize) -> String {
        format!("ws://{}/ws", self.gateway_addr(index))
    }

    /// `http://<gateway>` for probes.
    pub fn http_url(&self, index: usize) -> String {
        format!("http://{}", self.gateway_addr(index))
    }

    /// Gateway `index`'s process.
    pub fn gateway(&self, index: usize) -> &ServiceProcess {
        self.gateways[index].as_ref().expect("a gateway not taken")
    }

    /// Whether gateway `index` is still running.
    pub fn gateway_running(&mut self, index: usize) -> bool {
        self.gateways[index].as_mut().expect("a gateway not taken").is_running()
    }

    /// Takes a gateway out of the cluster's list (to kill or drain it).
    pub fn take_gateway(&mut self, index: usize) -> ServiceProcess {
        self.gateways[index].take().expect("a running gateway")
    }

    /// A token for `identity` granting `rooms`.
    pub fn token(&self, identity: &str, rooms: &[&str]) -> String {
        let rooms = rooms.iter().map(|room| room.to_string()).collect();
        gateway::auth::mint(crate::SECRET, &gateway::auth::Claims::new(identity, rooms, Duration::from_secs(3600)))
    }

    pub async fn connect(&self, index: usize, identity: &str, rooms: &[&str]) -> protocol::client::Client {
        protocol::client::Client::connect(&self.ws_url(index), Some(&self.token(identity, rooms)))
            .await
            .expect("connect to a gateway process")
    }

    /// Room-service replica `index` (the first, in a cluster with one).
    pub fn room_service(&mut self, index: usize) -> &mut ServiceProcess {
        self.room_services[index].as_mut().expect("a replica not taken")
    }

    /// Takes a room-service replica out of the cluster (to kill it).
    pub fn take_room_service(&mut self, index: usize) -> ServiceProcess {
        self.room_services[index].take().expect("a replica not taken")
    }

    /// A gRPC client of a running room-service replica.
    pub async fn room_service_client(
        &self,
    ) -> cluster_proto::room::room_service_client::RoomServiceClient<tonic::transport::Channel> {
        let replica = self.room_services.iter().flatten().next().expect("a running room service");
        cluster_proto::room::room_service_client::RoomServiceClient::connect(format!("http://{}", replica.addr()))
            .await
            .expect("connect to the room service")
    }
}
