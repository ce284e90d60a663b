//! Where the room-service replicas are: a list of gRPC URLs that may change while the
//! gateway runs. [`crate::room_grpc::GrpcRoomApi`] reads the latest list before every
//! call, so a replica removed here gets no new call (calls already on their way to it
//! finish), and one added gets calls at once.
//!
//! Why not hand the endpoints to a load-balancing tonic channel: the gateway retries an
//! unavailable call on the *next* replica and passes a failing one over for a moment,
//! which needs to know the replicas one by one.

pub mod dns;
pub mod kubernetes;

use tokio::sync::watch;

use crate::config::{Discovery, RoomServiceClientConfig};

/// The current replica URLs, sorted; changes as replicas come and go.
pub type Replicas = watch::Receiver<Vec<String>>;

/// Starts finding the replicas as configured. For `dns` and `kubernetes` a task keeps
/// the list current until the returned receiver is dropped; the list may start empty
/// (calls are then `unavailable`) while the first answer is awaited.
pub fn start(config: &RoomServiceClientConfig) -> anyhow::Result<Replicas> {
    match config.discovery {
        Discovery::Static => Ok(watch::channel(config.urls()).1),
        Discovery::Dns => Ok(dns::start(config.urls(), config.dns_refresh)),
        Discovery::Kubernetes => kubernetes::start(&config.kubernetes),
    }
}

/// Publishes `urls` (sorted, without duplicates) if they differ from the current list.
/// Returns false once nobody listens any more.
fn publish(sender: &watch::Sender<Vec<String>>, mut urls: Vec<String>) -> bool {
    urls.sort();
    urls.dedup();
    sender.send_if_modified(|current| {
        if *current == urls {
            return false;
        }
        tracing::info!(replicas = ?urls, "room-service replicas changed");
        *current = urls;
        true
    });
    !sender.is_closed()
}
