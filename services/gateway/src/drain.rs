//! Draining on shutdown (SIGTERM, as in a rolling deploy): the gateway turns unready and
//! refuses new sockets (`/readyz` and the upgrade check the shutdown token), every
//! client is told to reconnect elsewhere and resume (`Session::run`), and their
//! sessions are handed over as they resume on other gateways. Whatever is left after
//! `drain.timeout` is ended; then the node leaves the cluster.

use std::time::Duration;

use crate::Gateway;
use crate::config::Mode;
use crate::{lifecycle, metrics};

/// How often the drain looks whether every session has been handed over.
const POLL: Duration = Duration::from_millis(50);

/// Finishes the drain once the HTTP server has stopped accepting.
pub async fn finish(gateway: &Gateway) {
    metrics::draining(gateway.registry.peer_count());
    gateway.connections.close();
    let sockets_closed = gateway.config.drain.client_grace + Duration::from_secs(2);
    if tokio::time::timeout(sockets_closed, gateway.connections.wait()).await.is_err() {
        tracing::warn!(remaining = gateway.connections.len(), "sockets still open after the client grace period");
    }
    // An embedded gateway has no other gateway to hand sessions to.
    if gateway.mode != Mode::Embedded && gateway.resume_enabled() {
        let deadline = tokio::time::Instant::now() + gateway.config.drain.timeout;
        while gateway.registry.peer_count() > 0 && tokio::time::Instant::now() < deadline {
            metrics::draining(gateway.registry.peer_count());
            tokio::time::sleep(POLL).await;
        }
        if tokio::time::timeout_at(deadline, gateway.handovers.all_sent()).await.is_err() {
            tracing::warn!("handovers still being sent at the drain timeout");
        }
    }
    let left = gateway.registry.sessions();
    if !left.is_empty() {
        tracing::info!(sessions = left.len(), "ending the sessions not resumed elsewhere");
    }
    futures_util::future::join_all(left.iter().map(|peer| lifecycle::end(gateway, peer))).await;
    metrics::draining(0);
    if gateway.mode == Mode::Embedded {
        return;
    }
    if gateway.standing.has_leftovers() {
        // Leaving the lease to expire hands them to the janitor.
        tracing::warn!("sessions ended during an outage are still recorded: the janitor removes them after the lease");
    } else if let Err(error) = gateway.sessions.forget_node(&gateway.node_id).await {
        tracing::warn!(%error, "could not remove this node's lease; it expires by itself");
    }
}
