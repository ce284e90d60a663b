//! Fixtures that start real external parts for tests.
//!
//! - [`RedisServer`]: a real `redis-server` on a free loopback port, owned by the test:
//!   killed when dropped, and killable and restartable on the same port to test faults.
//! - [`Sentinel`]: a real Redis Sentinel watching such a server and its replicas, to
//!   test a failover.
//! - [`RedisCluster`]: a real Redis Cluster of such servers (`redis-cli --cluster
//!   create`), with replicas if asked, whose masters a test can kill.
//! - [`eventually`]: waits for a condition that no event announces, with a deadline.
//! - [`await_line`]: waits for a child process to say it is ready; [`LogLines`] waits
//!   for one line of its output after another.

mod log_lines;
mod redis_cluster;
mod redis_server;
mod sentinel;

pub use log_lines::LogLines;
pub use redis_cluster::RedisCluster;
pub use redis_server::RedisServer;
pub use sentinel::Sentinel;

use std::time::Duration;

/// How long fixtures wait for an external process before failing the test.
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(10);

/// Reads a child's `output` until a line contains `needle`, for at most `within`, and
/// keeps draining it in the background (a child writing to a full pipe would block).
/// False if the output ended, or the time passed, first.
pub async fn await_line<R>(output: R, needle: &str, within: Duration) -> bool
where
    R: tokio::io::AsyncRead + Unpin + Send + 'static,
{
    LogLines::read(output).wait_for(needle, within).await
}

/// Retries `probe` until it returns `Some`, at most until `deadline` has passed; panics
/// with `what` when it never does. For conditions without an event to await (e.g. "the
/// client has reconnected to Redis"); everything else should await the event itself.
pub async fn eventually<T, F, Fut>(what: &str, deadline: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let started = tokio::time::Instant::now();
    let mut pause = Duration::from_millis(5);
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        if started.elapsed() > deadline {
            panic!("{what}: not within {deadline:?}");
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(200));
    }
}
