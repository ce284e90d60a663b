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
}

impl ServiceProcess {
    /// Starts `binary` with `args` and `env`, and waits until it logs `ready_message`
    /// with a `listen` field.
    pub async fn start(binary: &str, args: &[&str], env: &[(&str, String)], ready_message: &str) -> Self {
        let path = binary_path(binary);
        let mut command = Command::new(&path);
        // Hermetic: no setting leaks in from the environment the tests run in.
        for (key, _) in std::env::vars() {
            if key.starts_with("GATEWAY_") || key.starts_with("ROOM_SERVICE_") {
                command.env_remove(key);
            }
        }
        let mut child = command
            .args(args)
            .args(["--log-json", "--listen", "127.0.0.1:0"])
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .env_remove("RUST_LOG")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", path.display()));
        let mut lines = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
        let addr = tokio::time::timeout(Duration::from_secs(20), async {
            while let Ok(Some(line)) = lines.next_line().await {
                let Ok(record) = serde_json::from_str::<serde_json::Value>(&line) else { continue };
                let fields = &record["fields"];
                if fields["message"] == ready_message {
                    return fields["listen"].as_str().and_then(|addr| addr.parse().ok());
                }
            }
            None
        })
        .await
        .unwrap_or_else(|_| panic!("{binary} did not log {ready_message:?} within 20 s"))
        .unwrap_or_else(|| panic!("{binary} exited before logging {ready_message:?}"));
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Self { child, addr }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
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
