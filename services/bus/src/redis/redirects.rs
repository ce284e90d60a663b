//! Commands refused a redirection, run once more.
//!
//! In a Redis Cluster, a client whose slot map is stale sends a command to a master
//! that no longer serves the slot, which answers MOVED (or ASK while the slot is being
//! migrated). fred reads the new slot map and writes the command again, but counts that
//! as a second write attempt; every client here allows one (so that a command in flight
//! when a connection drops is never sent twice), so the command fails, having run
//! nowhere. That happens to the first command of each client for a slot that has just
//! moved (a resharding, a failover). Running it once more, with the slot map fred has
//! just read, is safe: it did not run.

use std::future::Future;

use fred::error::{Error, ErrorKind};

/// fred's answer to a write past the last allowed attempt. With one attempt allowed,
/// only a redirected command is written twice: a command in flight when its connection
/// drops fails with the connection's error, and one that could not be written fails
/// with the write's error.
const REDIRECT_REFUSED: &str = "Too many failed write attempts.";

/// Whether the command failed because fred would not follow a redirection.
pub fn was_redirected(error: &Error) -> bool {
    *error.kind() == ErrorKind::Unknown && error.details() == REDIRECT_REFUSED
}

/// Runs `command`, and once more if fred would not follow its redirection.
pub async fn once_more_if_redirected<T, F, Fut>(mut command: F) -> Result<T, Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Error>>,
{
    match command().await {
        Err(error) if was_redirected(&error) => command().await,
        done => done,
    }
}
