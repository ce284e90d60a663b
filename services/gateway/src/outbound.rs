//! The way out to one client: a bounded queue of rendered frames and a close request.
//!
//! Anything that wants to reach a client (its own request handlers, the dispatcher of
//! bus messages, other local clients' handlers) goes through [`PeerSender::send`],
//! which never waits: when the queue is full the client is too slow, and it is cut off
//! with [`CloseCode::SlowConsumer`] instead of being buffered without bound or holding
//! up the sender.

use std::sync::{Arc, OnceLock};

use axum::extract::ws::Utf8Bytes;
use protocol::CloseCode;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::metrics;

/// One rendered JSON text frame, cheap to clone for many receivers.
pub type Frame = Utf8Bytes;

/// A request to close a connection. The first request wins; the connection's tasks
/// watch [`Closer::closed`].
#[derive(Default)]
pub struct Closer {
    code: OnceLock<CloseCode>,
    token: CancellationToken,
}

impl Closer {
    pub fn close(&self, code: CloseCode) {
        let _ = self.code.set(code);
        self.token.cancel();
    }

    /// The code of the first close request, if any.
    pub fn code(&self) -> Option<CloseCode> {
        self.code.get().copied()
    }

    pub async fn closed(&self) {
        self.token.cancelled().await
    }
}

/// The sending side of one client's queue.
#[derive(Clone)]
pub struct PeerSender {
    queue: mpsc::Sender<Frame>,
    closer: Arc<Closer>,
}

impl PeerSender {
    /// A sender and the queue its connection's writer drains.
    pub fn new(capacity: usize) -> (Self, mpsc::Receiver<Frame>) {
        let (queue, receiver) = mpsc::channel(capacity.max(1));
        (Self { queue, closer: Arc::new(Closer::default()) }, receiver)
    }

    /// Queues a frame without waiting. Returns false if the frame was not queued: the
    /// connection is closing, or its queue was full and it is now being cut off.
    pub fn send(&self, frame: Frame) -> bool {
        match self.queue.try_send(frame) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                let first = self.closer.code().is_none();
                if first {
                    tracing::info!("send queue full: disconnecting a slow consumer");
                }
                metrics::send_queue_full(first);
                self.closer.close(CloseCode::SlowConsumer);
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    pub fn closer(&self) -> &Arc<Closer> {
        &self.closer
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_queue_cuts_the_client_off() {
        let (sender, mut queue) = PeerSender::new(2);
        assert!(sender.send(Frame::from_static("1")));
        assert!(sender.send(Frame::from_static("2")));
        assert_eq!(sender.closer().code(), None);
        assert!(!sender.send(Frame::from_static("3")));
        assert_eq!(sender.closer().code(), Some(CloseCode::SlowConsumer));
        sender.closer().close(CloseCode::Normal);
        assert_eq!(sender.closer().code(), Some(CloseCode::SlowConsumer), "the first reason wins");
        assert_eq!(queue.try_recv().unwrap(), "1");
    }
}
