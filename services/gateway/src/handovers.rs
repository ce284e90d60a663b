//! Both ends of a handover: resumes on this gateway waiting for the old gateway's
//! handover, which arrives on this gateway's node channel and is passed on by the
//! dispatcher; and handovers this gateway is sending, which a drain waits for before
//! the process exits.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;

use bus::envelope::HandoverData;
use tokio::sync::oneshot;
use tokio_util::task::TaskTracker;

use crate::registry::PeerId;

#[derive(Default)]
pub struct Handovers {
    waiting: Mutex<HashMap<PeerId, oneshot::Sender<HandoverData>>>,
    sending: TaskTracker,
}

impl Handovers {
    /// Runs the sending of a handover in the background, tracked for [`Self::all_sent`].
    pub fn send(&self, sending: impl Future<Output = ()> + Send + 'static) {
        self.sending.spawn(sending);
    }

    /// Resolves once every handover being sent has been published (or has failed). The
    /// session is gone from the registry as soon as its handover is ready, so a drain
    /// that only watched the registry could exit with the handover still unsent.
    pub async fn all_sent(&self) {
        self.sending.close();
        self.sending.wait().await;
        self.sending.reopen();
    }

    /// Registers a resume that waits for `peer`'s handover; call before asking for it.
    pub fn expect(&self, peer: &PeerId) -> oneshot::Receiver<HandoverData> {
        let (sender, receiver) = oneshot::channel();
        self.lock().insert(peer.clone(), sender);
        receiver
    }

    pub fn forget(&self, peer: &str) {
        self.lock().remove(peer);
    }

    /// Passes a handover to the resume waiting for it; one nobody waits for is late
    /// (that resume went on with a gap) and is dropped.
    pub fn deliver(&self, data: HandoverData) {
        match self.lock().remove(data.peer_id.as_str()) {
            Some(waiting) => {
                let _ = waiting.send(data);
            }
            None => tracing::debug!(peer = data.peer_id, "late handover dropped"),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<PeerId, oneshot::Sender<HandoverData>>> {
        self.waiting.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
