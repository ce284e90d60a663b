//! A real redis-server started by a test.

use std::net::TcpListener;
use std::process::Stdio;

use tokio::process::{Child, Command};

use crate::STARTUP_TIMEOUT;

/// A redis-server child process on 127.0.0.1, persisting nothing. Killed on drop.
pub struct RedisServer {
    port: u16,
    /// What it was started with besides the port, to restart it the same way.
    args: Vec<String>,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts redis-server on a free port and waits until it accepts connections.
    ///
    /// Panics with a clear message when `redis-server` is not installed.
    pub async fn start() -> Self {
        Self::start_with(&[]).await
    }

    /// Starts a replica of `master` (`--replicaof`), which a Sentinel can promote.
    pub async fn start_replica_of(master: &RedisServer) -> Self {
        Self::start_with(&["--replicaof", "127.0.0.1", &master.port.to_string()]).await
    }

    async fn start_with(args: &[&str]) -> Self {
        Self::start_with_ports(|| args.iter().map(|arg| arg.to_string()).collect()).await
    }

    /// Starts a node of a Redis Cluster with nothing assigned to it yet: its cluster
    /// state goes to `state_file` (relative to the temporary directory, which must not
    /// be shared with another node) and its cluster bus to a free port of its own, so
    /// that `port + 10000` need not be free.
    pub(crate) async fn start_cluster_node(node_timeout_ms: u64, state_file: &str) -> Self {
        Self::start_with_ports(|| {
            let settings = [
                ("--cluster-enabled", "yes".to_string()),
                ("--cluster-config-file", state_file.to_string()),
                ("--cluster-node-timeout", node_timeout_ms.to_string()),
                ("--cluster-port", free_port().to_string()),
                // A replica syncs at once (the default waits 5 s for more replicas)
                // and may always be promoted, however briefly it was in sync.
                ("--repl-diskless-sync-delay", "0".to_string()),
                ("--cluster-replica-validity-factor", "0".to_string()),
            ];
            settings.into_iter().flat_map(|(name, value)| [name.to_string(), value]).collect()
        })
        .await
    }

    async fn start_with_ports(args: impl Fn() -> Vec<String>) -> Self {
        // Another process may grab a free port between the probe and redis-server's
        // bind; then pick others.
        for _ in 0..5 {
            let port = free_port();
            let args = args();
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            if let Some(child) = spawn(port, &args).await {
                let args = args.iter().map(|arg| arg.to_string()).collect();
                return Self { port, args, child: Some(child) };
            }
        }
        panic!("redis-server did not start on any of 5 free ports");
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// False once killed (until restarted).
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills the server with SIGKILL, as a crash would, and waits until it is gone.
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().await.expect("kill redis-server");
        }
    }

    /// Freezes the server with SIGSTOP: its connections stay open but nothing answers,
    /// as with a hung host or a partition. [`Self::thaw`] lets it go on.
    pub fn freeze(&self) {
        self.signal(libc::SIGSTOP);
    }

    /// Continues a frozen server (SIGCONT), with its data.
    pub fn thaw(&self) {
        self.signal(libc::SIGCONT);
    }

    fn signal(&self, signal: libc::c_int) {
        let pid = self.child.as_ref().and_then(Child::id).expect("a running redis-server");
        let pid = libc::pid_t::try_from(pid).expect("a pid fits pid_t");
        assert!(pid > 1, "refusing to signal pid {pid}");
        // SAFETY: kill(2) has no memory-safety preconditions; `pid > 1` names exactly
        // this child.
        let result = unsafe { libc::kill(pid, signal) };
        assert_eq!(result, 0, "kill({pid}, {signal}): {}", std::io::Error::last_os_error());
    }

    /// Starts the server again on the same port with the same settings, empty (a
    /// cluster node keeps its identity and slots, which its state file holds).
    pub async fn restart(&mut self) {
        self.kill().await;
        let args: Vec<&str> = self.args.iter().map(String::as_str).collect();
        let child =
            spawn(self.port, &args).await.unwrap_or_else(|| panic!("redis-server did not restart on {}", self.port));
        self.child = Some(child);
    }
}

pub(crate) fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    listener.local_addr().expect("local address").port()
}

/// Spawns redis-server and reads its log until it is ready; `None` if it exited first
/// (typically: port taken).
async fn spawn(port: u16, args: &[&str]) -> Option<Child> {
    let mut child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        .args(args)
        .args(["--logfile", "", "--loglevel", "notice", "--dir", &std::env::temp_dir().to_string_lossy()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot run redis-server ({e}); install it (Debian: apt-get install redis-server) or run the README test command")
        });
    let stdout = child.stdout.take().expect("piped stdout");
    if !crate::await_line(stdout, "Ready to accept connections", STARTUP_TIMEOUT).await {
        let _ = child.kill().await;
        return None;
    }
    Some(child)
}
