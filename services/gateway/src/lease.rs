//! Keeping this gateway's lease alive. While it holds, the cluster leaves this
//! gateway's sessions alone; once it expires (the process died, or was cut off from
//! Redis for longer than `lease.ttl`), the janitor removes them from their rooms.
//!
//! A gateway that finds its lease already gone when Redis answers again has lost its
//! state to the clean-up: it tells every client to reconnect, ends its sessions (only
//! what it still owns: every removal is conditional) and starts a new lease.

use std::sync::Arc;

use protocol::{CloseCode, ServerMessage};

use crate::{Gateway, lifecycle, render};

pub async fn keep(gateway: Arc<Gateway>) {
    let lease = gateway.config.lease.clone();
    let mut tick = tokio::time::interval(lease.refresh);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match gateway.sessions.refresh_lease(&gateway.node_id, lease.ttl).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::error!("this gateway's lease expired: its sessions were cleaned up; resetting");
                reset(&gateway).await;
                if let Err(error) = gateway.sessions.register_node(&gateway.node_id, lease.ttl).await {
                    tracing::warn!(%error, "could not start a new lease; retrying");
                }
            }
            Err(error) => tracing::warn!(%error, "could not refresh the lease"),
        }
    }
}

/// Drops everything this gateway held: clients are told to reconnect (their resume
/// finds no session and they start new ones), sessions are ended.
async fn reset(gateway: &Gateway) {
    let reconnect = render::message(&ServerMessage::Reconnect { reason: "state_lost".into() });
    for (_, sender) in gateway.registry.attached() {
        sender.send(reconnect.clone());
        sender.closer().close(CloseCode::GoingAway);
    }
    let sessions = gateway.registry.sessions();
    futures_util::future::join_all(sessions.iter().map(|peer| lifecycle::end(gateway, peer))).await;
    if let Err(error) = gateway.sessions.forget_node(&gateway.node_id).await {
        tracing::warn!(%error, "could not forget the old lease");
    }
}
