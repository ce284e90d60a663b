//! The requests of one connection that are still waiting (see [`Handling`]).
//!
//! Most of a busy client's requests are signals and broadcasts without an `id`: nothing
//! is answered when they succeed, and all they wait for is their publish on the bus. A
//! connection may keep up to `limits.publishes_in_flight` of those on their way while
//! its next frames are read, so a burst (an offer and its candidates) is handed to the
//! bus as one batch of publishes, written to Redis together, instead of one Redis round
//! trip after another. The publishes are started in the order the client sent them,
//! and the bus keeps that order. Any other request first waits until nothing is in
//! progress, and is itself waited for: replies come in the order of the requests.

use std::collections::VecDeque;
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::task::{Context, Poll};

use protocol::{Request, RequestFrame};

use super::handling::Handling;

/// What a drained connection keeps of the slots a burst took.
const KEPT_SLOTS: usize = 4;

/// A connection's requests in progress, oldest first.
pub struct InProgress<'a> {
    waiting: VecDeque<Handling<'a>>,
    /// Most requests in progress at once.
    depth: usize,
}

impl<'a> InProgress<'a> {
    /// Keeps at most `depth` (at least 1) requests in progress.
    pub fn new(depth: usize) -> Self {
        Self { waiting: VecDeque::new(), depth: depth.max(1) }
    }

    /// Whether a request may wait without holding up the frames after it: a signal or
    /// broadcast without an `id`, which nobody waits to be answered.
    pub fn may_overlap(frame: &RequestFrame) -> bool {
        frame.id.is_none() && matches!(frame.request, Request::Signal { .. } | Request::Broadcast { .. })
    }

    pub fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }

    /// Whether no further request may start until one in progress is over.
    pub fn is_full(&self) -> bool {
        self.waiting.len() >= self.depth
    }

    /// Starts a request's wait: polls it once (a publish is handed to the bus then,
    /// behind the ones started before it) and keeps it if it is not over.
    pub async fn start(&mut self, handling: Handling<'a>) {
        let mut handling = Some(handling);
        poll_fn(|cx| {
            let mut started = handling.take().expect("polled once");
            if Pin::new(&mut started).poll(cx).is_pending() {
                self.waiting.push_back(started);
            }
            Poll::Ready(())
        })
        .await
    }

    /// Completes the oldest requests that are over; ready once at least one has been.
    pub async fn completed(&mut self) {
        poll_fn(|cx| self.poll_completed(cx)).await
    }

    /// Waits until no request is in progress.
    pub async fn finish(&mut self) {
        poll_fn(|cx| {
            while !self.waiting.is_empty() {
                std::task::ready!(self.poll_completed(cx));
            }
            Poll::Ready(())
        })
        .await
    }

    /// Polls the oldest request first: a later one is completed only after it, so what
    /// a failure answers keeps the requests' order. (The bus answers publishes of one
    /// connection in order anyway.)
    fn poll_completed(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let mut completed = false;
        while let Some(oldest) = self.waiting.front_mut() {
            if Pin::new(oldest).poll(cx).is_pending() {
                break;
            }
            self.waiting.pop_front();
            completed = true;
        }
        if self.waiting.is_empty() && self.waiting.capacity() > KEPT_SLOTS {
            self.waiting = VecDeque::new();
        }
        if completed { Poll::Ready(()) } else { Poll::Pending }
    }
}
