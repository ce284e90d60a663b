//! Keeping this gateway's lease alive. While it holds, the cluster leaves this
//! gateway's sessions alone; once it expires (the process died, or was cut off from
//! Redis for longer than `lease.ttl`), the janitor removes them from their rooms.
//!
//! A gateway that finds its lease gone, or that could not renew it for longer than its
//! time to live (so that it must assume it is gone), loses its state and rejoins once
//! Redis answers again (see [`crate::recovery`]).

use std::sync::Arc;

use crate::{Gateway, metrics, recovery};

pub async fn keep(gateway: Arc<Gateway>) {
    let lease = gateway.config.lease.clone();
    let mut tick = tokio::time::interval(lease.refresh);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut renewed_at = tokio::time::Instant::now();
    loop {
        tick.tick().await;
        if !gateway.standing.serving() {
            match recovery::rejoin(&gateway).await {
                Ok(()) => renewed_at = tokio::time::Instant::now(),
                Err(error) => tracing::warn!(%error, "cannot rejoin the cluster yet"),
            }
            continue;
        }
        match gateway.sessions.refresh_lease(&gateway.node_id, lease.ttl).await {
            Ok(true) => {
                renewed_at = tokio::time::Instant::now();
                if gateway.standing.has_leftovers() {
                    recovery::clean_leftovers(&gateway).await;
                }
            }
            Ok(false) => recovery::lose_state(&gateway, "the lease expired").await,
            Err(error) if renewed_at.elapsed() > lease.ttl => {
                tracing::warn!(%error, "could not refresh the lease");
                metrics::lease_renewal_failed();
                recovery::lose_state(&gateway, "the lease could not be renewed within its time to live").await;
            }
            Err(error) => {
                tracing::warn!(%error, "could not refresh the lease");
                metrics::lease_renewal_failed();
            }
        }
    }
}
