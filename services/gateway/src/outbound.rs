//! The way out to one client: a bounded queue of rendered frames and a close request.
//!
//! Anything that wants to reach a client (its own request handlers, the dispatcher of
//! bus messages, other local clients' handlers) goes through [`PeerSender::send`],
//! which never waits: when the queue is full the client is too slow, and it is cut off
//! with [`CloseCode::SlowConsumer`] instead of being buffered without bound or holding
//! up the sender.
//!
//! The queue also keeps the connection's [`Writer`] while nothing is being written: a
//! frame (or ping) queued takes it and starts a task that writes until the queue is
//! empty and puts it back (see `writer.rs`).

use std::cell::RefCell;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use axum::extract::ws::Utf8Bytes;
use protocol::CloseCode;
use tokio::sync::Notify;

use crate::metrics;
use crate::writer::{self, Writer};

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
    senders: AtomicUsize,
    writer_gone: AtomicBool,
    /// A ping to send before the next frames.
    ping_due: AtomicBool,
    /// The connection's writer while no task writes with it.
    parked: Mutex<Option<Writer>>,
    /// Wakes whoever waits for the writer to be parked again (the connection's close).
    parked_again: Notify,
}

/// Slots a drained queue keeps: enough for the frames one request usually causes.
const KEPT_SLOTS: usize = 8;

impl Queue {
    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Frame>> {
        self.frames.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn parked(&self) -> std::sync::MutexGuard<'_, Option<Writer>> {
        self.parked.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Whether a frame or a ping waits to be written.
    fn has_work(&self) -> bool {
        self.ping_due.load(Ordering::Acquire) || !self.lock().is_empty()
    }

    /// Starts a task writing what is queued, unless one is writing already (or there is
    /// no writer: a queue read through its [`Outbox`] directly, in tests), or, while
    /// this thread holds writers back ([`hold_writers`]), once it lets them go.
    fn start_writer(self: &Arc<Self>) {
        let held = HELD.with_borrow_mut(|held| {
            let Some(queues) = held else { return false };
            // A batch's frames for one client mostly come one after the other.
            if !queues.last().is_some_and(|last| Arc::ptr_eq(last, self)) {
                queues.push(self.clone());
            }
            true
        });
        if held {
            return;
        }
        let writer = self.parked().take();
        if let Some(writer) = writer {
            tokio::spawn(writer::drain(writer));
        }
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

thread_local! {
    /// The queues whose writers wait for the end of this thread's batch, while one runs.
    static HELD: RefCell<Option<Vec<Arc<Queue>>>> = const { RefCell::new(None) };
}

/// Holds back the writers of the queues this thread sends to until the guard is
/// dropped, so that the frames a batch of deliveries queues for one client leave in one
/// write, not one each (the dispatcher holds them over a batch of bus envelopes). The
/// guard must be dropped on the thread that made it: not across an `.await`.
pub fn hold_writers() -> HeldWriters {
    HELD.with_borrow_mut(|held| {
        held.get_or_insert_with(Vec::new);
    });
    HeldWriters { _not_send: std::marker::PhantomData }
}

/// Starts the writers held back since [`hold_writers`] when dropped.
pub struct HeldWriters {
    /// Tied to its thread.
    _not_send: std::marker::PhantomData<*const ()>,
}

impl Drop for HeldWriters {
    fn drop(&mut self) {
        let Some(queues) = HELD.with_borrow_mut(Option::take) else { return };
        for queue in queues {
            queue.start_writer();
        }
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
            senders: AtomicUsize::new(1),
            writer_gone: AtomicBool::new(false),
            ping_due: AtomicBool::new(false),
            parked: Mutex::new(None),
            parked_again: Notify::new(),
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
        self.queue.start_writer();
        true
    }

    /// Queues a ping (a WebSocket ping frame) for the client.
    pub fn ping(&self) {
        self.queue.ping_due.store(true, Ordering::Release);
        self.queue.start_writer();
    }

    /// Gives the queue the connection's writer: what is queued from now on is written.
    pub fn attach(&self, writer: Writer) {
        park(&self.queue, writer);
    }

    /// Takes the writer back for the connection's close, once no task writes with it.
    pub async fn detach(&self) -> Writer {
        loop {
            // Made before the look, so that a park after it still ends the wait.
            let parked_again = self.queue.parked_again.notified();
            if let Some(writer) = self.queue.parked().take() {
                return writer;
            }
            parked_again.await;
        }
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
        // A parked writer holds the queue (through its outbox): once the last sender
        // is gone, let go of it, or neither would ever be freed.
        if self.queue.senders.fetch_sub(1, Ordering::AcqRel) == 1 {
            let parked = self.queue.parked().take();
            drop(parked);
        }
    }
}

impl Outbox {
    /// A frame already queued, without waiting.
    pub fn try_recv(&mut self) -> Result<Frame, Empty> {
        self.queue.pop().ok_or(Empty)
    }

    /// Whether a ping was asked for since the last call.
    pub fn take_ping(&mut self) -> bool {
        self.queue.ping_due.swap(false, Ordering::AcqRel)
    }

    /// Where the writer this outbox belongs to is parked.
    pub fn parking(&self) -> Parking {
        Parking { queue: self.queue.clone() }
    }
}

/// Where a connection's writer waits while there is nothing to write.
pub struct Parking {
    queue: Arc<Queue>,
}

impl Parking {
    /// Parks the writer, for the connection's close to take.
    pub fn park(&self, writer: Writer) {
        park(&self.queue, writer);
    }

    /// Parks the writer; returns it again at once if something was queued meanwhile
    /// and no other task has taken it to write that.
    pub fn park_or_resume(&self, writer: Writer) -> Option<Writer> {
        park(&self.queue, writer);
        // A frame queued after the writer's last look found no writer to start: look
        // again now that it is parked.
        if self.queue.has_work() { self.queue.parked().take() } else { None }
    }
}

fn park(queue: &Queue, writer: Writer) {
    *queue.parked() = Some(writer);
    queue.parked_again.notify_waiters();
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

    /// A queue whose writer is gone (the connection closed) takes nothing more, and
    /// that is no slow consumer.
    #[test]
    fn sending_after_the_writer_is_gone_fails_without_cutting_anyone_off() {
        let (sender, mut queue) = PeerSender::new(8);
        assert!(sender.send(Frame::from_static("a")));
        assert_eq!(queue.try_recv().unwrap(), "a");
        assert_eq!(queue.try_recv(), Err(Empty));
        drop(queue);
        assert!(!sender.send(Frame::from_static("b")), "nobody writes any more");
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

    /// While writers are held, a queue sent to is noted once per run of frames (its
    /// writer starts once, for all of them); dropping the guard lets them all go.
    #[test]
    fn held_writers_are_noted_once_per_run_and_let_go_with_the_guard() {
        let (a, _a_queue) = PeerSender::new(8);
        let (b, _b_queue) = PeerSender::new(8);
        let held = || HELD.with_borrow(|held| held.as_ref().map(|queues| queues.len()));
        assert_eq!(held(), None);
        {
            let _held = hold_writers();
            for sender in [&a, &a, &b, &a] {
                assert!(sender.send(Frame::from_static("x")));
            }
            assert_eq!(held(), Some(3), "a, b, a");
        }
        assert_eq!(held(), None, "let go with the guard");
        assert!(a.send(Frame::from_static("y")), "and sending goes on as before");
        assert_eq!(held(), None);
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
