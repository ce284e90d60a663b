//! The way out to one client: a bounded queue of rendered frames and a close request.
//!
//! Anything that wants to reach a client (its own request handlers, the dispatcher of
//! bus messages, other local clients' handlers) goes through [`PeerSender::send`],
//! which never waits: when the queue is full the client is too slow, and it is cut off
//! with [`CloseCode::SlowConsumer`] instead of being buffered without bound or holding
//! up the sender.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use axum::extract::ws::Utf8Bytes;
use protocol::CloseCode;
use tokio::sync::Notify;

use crate::metrics;

/// One rendered JSON text frame, cheap to clone for many receivers.
pub type Frame = Utf8Bytes;

/// A request to close a connection. The first request wins; the connection's tasks
/// watch [`Closer::closed`]. (A `Notify` beside the code rather than a cancellation
/// token, which allocates a node of its own for every connection.)
#[derive(Default)]
pub struct Closer {
    code: OnceLock<CloseCode>,
    closing: Notify,
}

impl Closer {
    pub fn close(&self, code: CloseCode) {
        let _ = self.code.set(code);
        self.closing.notify_waiters();
    }

    /// The code of the first close request, if any.
    pub fn code(&self) -> Option<CloseCode> {
        self.code.get().copied()
    }

    /// Returns once a close has been requested.
    pub async fn closed(&self) {
        // Made before the look at the code: `notify_waiters` wakes every `Notified`
        // that exists when it is called, polled yet or not, so a close requested after
        // the look still ends the wait.
        let notified = self.closing.notified();
        if self.code.get().is_none() {
            notified.await;
        }
    }
}

/// One client's queue: frames waiting for its writer. A plain deque under a lock rather
/// than a channel: it allocates nothing until the first frame and keeps a handful of
/// slots afterwards, where a Tokio channel sets aside a block of 32 frames (1 KiB)
/// for every connection, idle or not.
struct Queue {
    frames: Mutex<VecDeque<Frame>>,
    capacity: usize,
    /// Wakes the writer when a frame arrives or the last sender goes.
    ready: Notify,
    senders: AtomicUsize,
    writer_gone: AtomicBool,
}

/// Slots a drained queue keeps: enough for the frames one request usually causes.
const KEPT_SLOTS: usize = 8;

impl Queue {
    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Frame>> {
        self.frames.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn pop(&self) -> Option<Frame> {
        let mut frames = self.lock();
        let frame = frames.pop_front();
        // A burst grew it; an idle connection should not keep that.
        if frames.is_empty() && frames.capacity() > KEPT_SLOTS {
            frames.shrink_to(KEPT_SLOTS);
        }
        frame
    }
}

/// The sending side of one client's queue.
pub struct PeerSender {
    queue: Arc<Queue>,
    closer: Arc<Closer>,
}

/// The receiving side: what the connection's writer drains.
pub struct Outbox {
    queue: Arc<Queue>,
}

/// [`Outbox::try_recv`] found nothing.
#[derive(Debug, PartialEq, Eq)]
pub struct Empty;

impl PeerSender {
    /// A sender and the queue its connection's writer drains, holding at most
    /// `capacity` frames.
    pub fn new(capacity: usize) -> (Self, Outbox) {
        let queue = Arc::new(Queue {
            frames: Mutex::new(VecDeque::new()),
            capacity: capacity.max(1),
            ready: Notify::new(),
            senders: AtomicUsize::new(1),
            writer_gone: AtomicBool::new(false),
        });
        (Self { queue: queue.clone(), closer: Arc::new(Closer::default()) }, Outbox { queue })
    }

    /// Queues a frame without waiting. Returns false if the frame was not queued: the
    /// connection is closing, or its queue was full and it is now being cut off.
    pub fn send(&self, frame: Frame) -> bool {
        if self.queue.writer_gone.load(Ordering::Acquire) {
            return false;
        }
        let mut frames = self.queue.lock();
        if frames.len() >= self.queue.capacity {
            drop(frames);
            let first = self.closer.code().is_none();
            if first {
                tracing::info!("send queue full: disconnecting a slow consumer");
            }
            metrics::send_queue_full(first);
            self.closer.close(CloseCode::SlowConsumer);
            return false;
        }
        frames.push_back(frame);
        drop(frames);
        self.queue.ready.notify_one();
        true
    }

    pub fn closer(&self) -> &Arc<Closer> {
        &self.closer
    }
}

impl Clone for PeerSender {
    fn clone(&self) -> Self {
        self.queue.senders.fetch_add(1, Ordering::Relaxed);
        Self { queue: self.queue.clone(), closer: self.closer.clone() }
    }
}

impl Drop for PeerSender {
    fn drop(&mut self) {
        // The last sender gone: the writer, waiting for frames, is told there will be
        // none (as a channel's receiver is).
        if self.queue.senders.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.queue.ready.notify_one();
        }
    }
}

impl Outbox {
    /// The next frame, waiting for one; `None` once every sender is gone and the queue
    /// is empty.
    pub async fn recv(&mut self) -> Option<Frame> {
        loop {
            // A frame queued after the look below still wakes the wait: `notify_one`
            // leaves a permit when nobody waits yet, which this wait then takes.
            let notified = self.queue.ready.notified();
            if let Some(frame) = self.queue.pop() {
                return Some(frame);
            }
            if self.queue.senders.load(Ordering::Acquire) == 0 {
                return None;
            }
            notified.await;
        }
    }

    /// A frame already queued, without waiting.
    pub fn try_recv(&mut self) -> Result<Frame, Empty> {
        self.queue.pop().ok_or(Empty)
    }
}

impl Drop for Outbox {
    fn drop(&mut self) {
        self.queue.writer_gone.store(true, Ordering::Release);
        self.queue.lock().clear();
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

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

    /// The writer waits for frames and is woken by each; once every sender is gone it
    /// gets what is left, then `None`; once it is gone, sending fails.
    #[tokio::test]
    async fn the_writer_is_woken_and_learns_when_the_senders_are_gone() {
        let (sender, mut queue) = PeerSender::new(8);
        let waiting = tokio::spawn(async move {
            let first = queue.recv().await;
            (first, queue)
        });
        tokio::task::yield_now().await;
        assert!(sender.send(Frame::from_static("a")));
        let (first, mut queue) = tokio::time::timeout(Duration::from_secs(5), waiting).await.unwrap().unwrap();
        assert_eq!(first.as_deref(), Some("a"));
        assert_eq!(queue.try_recv(), Err(Empty));

        let second = sender.clone();
        assert!(second.send(Frame::from_static("b")));
        drop(sender);
        drop(second);
        assert_eq!(queue.recv().await.as_deref(), Some("b"), "what was queued still comes");
        assert_eq!(tokio::time::timeout(Duration::from_secs(5), queue.recv()).await.unwrap(), None);

        let (sender, queue) = PeerSender::new(8);
        drop(queue);
        assert!(!sender.send(Frame::from_static("c")), "nobody writes any more");
        assert_eq!(sender.closer().code(), None, "which is no slow consumer");
    }

    /// Both of a connection's tasks wait on the closer: a close wakes every waiter, and
    /// a wait that starts after the close ends at once.
    #[tokio::test]
    async fn a_close_ends_every_wait_for_it() {
        let closer = Arc::new(Closer::default());
        let waiters: Vec<_> = (0..2)
            .map(|_| {
                let closer = closer.clone();
                tokio::spawn(async move { closer.closed().await })
            })
            .collect();
        tokio::task::yield_now().await;
        closer.close(CloseCode::GoingAway);
        for waiter in waiters {
            tokio::time::timeout(Duration::from_secs(5), waiter).await.expect("woken").unwrap();
        }
        tokio::time::timeout(Duration::from_secs(5), closer.closed()).await.expect("already closed");
        assert_eq!(closer.code(), Some(CloseCode::GoingAway));
    }

    #[test]
    fn a_drained_queue_gives_back_what_a_burst_took() {
        let (sender, mut queue) = PeerSender::new(256);
        for _ in 0..200 {
            assert!(sender.send(Frame::from_static("x")));
        }
        while queue.try_recv().is_ok() {}
        assert!(queue.queue.lock().capacity() <= KEPT_SLOTS);
    }
}
