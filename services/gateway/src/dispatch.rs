//! The dispatcher: reads the node's bus subscriptions and hands each envelope to the
//! registry, which queues frames for local peers without ever waiting on a client.

use std::sync::Arc;

use bus::{Incoming, envelope};

use crate::Gateway;

/// Runs until the bus closes the incoming stream.
pub async fn run(mut incoming: Incoming, gateway: Arc<Gateway>) {
    while let Some(bytes) = incoming.recv().await {
        let envelope = match envelope::decode(&bytes) {
            Ok(envelope) => envelope,
            Err(error) => {
                tracing::warn!(%error, "dropping an undecodable envelope");
                continue;
            }
        };
        for room in gateway.registry.dispatch(&gateway.node_id, envelope) {
            // A peer removed by the server: its subscription reference goes too.
            let gateway = gateway.clone();
            tokio::spawn(async move { gateway.subscriptions.release(&room).await });
        }
    }
}
