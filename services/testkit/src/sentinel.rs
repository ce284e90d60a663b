//! A real Redis Sentinel (`redis-server --sentinel`) watching a [`RedisServer`], so that
//! tests can kill the master and watch the Sentinel promote its replica.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

use crate::redis_server::free_port;
use crate::{LogLines, RedisServer, STARTUP_TIMEOUT};

/// One Sentinel on 127.0.0.1 with quorum 1, declaring the master down after 1 s without
/// an answer. Killed on drop.
pub struct Sentinel {
    port: u16,
    service: String,
    log: LogLines,
    config: PathBuf,
    _child: Child,
}

impl Sentinel {
    /// Starts a Sentinel monitoring `master` under the name `service`, and waits until
    /// it has found `replicas` replicas of it (it learns them from the master).
    pub async fn start(master: &RedisServer, service: &str, replicas: usize) -> Self {
        let port = free_port();
        // Sentinel rewrites its configuration file, so each gets its own.
        let config = std::env::temp_dir().join(format!("testkit-sentinel-{port}-{}.conf", std::process::id()));
        let settings = format!(
            "port {port}\nbind 127.0.0.1\nsentinel monitor {service} 127.0.0.1 {master} 1\n\
             sentinel down-after-milliseconds {service} 1000\nsentinel failover-timeout {service} 10000\n",
            master = master.port()
        );
        std::fs::write(&config, settings).expect("write the sentinel configuration");
        let mut child = Command::new("redis-server")
            .arg(&config)
            .args(["--sentinel", "--logfile", ""])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("redis-server runs as a Sentinel");
        let log = LogLines::read(child.stdout.take().expect("piped stdout"));
        let mut sentinel = Self { port, service: service.into(), log, config, _child: child };
        for _ in 0..replicas {
            sentinel.wait_for("+slave ", STARTUP_TIMEOUT).await;
        }
        sentinel
    }

    /// The URL the services connect through: the Sentinel tells them where the master is.
    pub fn url(&self) -> String {
        format!("redis-sentinel://127.0.0.1:{}/0?sentinelServiceName={}", self.port, self.service)
    }

    /// Waits until the Sentinel logs a line containing `event` (e.g. `+switch-master`
    /// when it has promoted a replica); panics after `within`.
    pub async fn wait_for(&mut self, event: &str, within: Duration) {
        assert!(self.log.wait_for(event, within).await, "the Sentinel did not log {event:?} within {within:?}");
    }
}

impl Drop for Sentinel {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.config);
    }
}
