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

/// A connection's requests in progress, oldest first.
pub struct InProgress<'a> {
    /// Allocated while requests are in progress: an idle connection keeps a pointer.
    waiting: Option<Box<Waiting<'a>>>,
    /// Most requests in progress at once.
    depth: usize,
}

struct Waiting<'a> {
    handlings: VecDeque<Handling<'a>>,
    /// The first `started` have been polled: their publishes are with the bus.
    started: usize,
}

impl<'a> InProgress<'a> {
    /// Keeps at most `depth` (at least 1) requests in progress.
    pub fn new(depth: usize) -> Self {
        Self { waiting: None, depth: depth.max(1) }
    }

    /// Whether a request may wait without holding up the frames after it: a signal or
    /// broadcast without an `id`, which nobody waits to be answered.
    pub fn may_overlap(frame: &RequestFrame) -> bool {
        frame.id.is_none() && matches!(frame.request, Request::Signal { .. } | Request::Broadcast { .. })
    }

    pub fn is_empty(&self) -> bool {
        self.waiting.is_none()
    }

    /// Whether no further request may start until one in progress is over.
    pub fn is_full(&self) -> bool {
        self.waiting.as_ref().is_some_and(|waiting| waiting.handlings.len() >= self.depth)
    }

    /// Adds a request that [may overlap](Self::may_overlap). It starts (its publish is
    /// handed to the bus, behind the ones added before it) when this is next polled:
    /// [`completed`](Self::completed) or [`finish`](Self::finish). Kept here rather than
    /// started in place, so that no request's state is part of the connection's task.
    pub fn add(&mut self, handling: Handling<'a>) {
        let waiting = self.waiting.get_or_insert_with(|| Box::new(Waiting { handlings: VecDeque::new(), started: 0 }));
        waiting.handlings.push_back(handling);
    }

    /// Starts what was added and completes the oldest requests that are over; ready
    /// once at least one has been.
    ///
    /// Not an `async fn`, whose future would keep `self` twice: it is part of every
    /// connection's task.
    pub fn completed(&mut self) -> impl Future<Output = ()> + '_ {
        poll_fn(|cx| self.poll_completed(cx))
    }

    /// Waits until no request is in progress.
    pub fn finish(&mut self) -> impl Future<Output = ()> + '_ {
        poll_fn(|cx| {
            while !self.is_empty() {
                std::task::ready!(self.poll_completed(cx));
            }
            Poll::Ready(())
        })
    }

    fn poll_completed(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let Some(waiting) = self.waiting.as_mut() else { return Poll::Pending };
        let completed = waiting.poll_completed(cx);
        if waiting.handlings.is_empty() {
            // Nothing kept between bursts: every connection that ever sent one would
            // keep the slots (a kilobyte) for as long as it lives.
            self.waiting = None;
        }
        if completed { Poll::Ready(()) } else { Poll::Pending }
    }
}

impl Waiting<'_> {
    /// Returns whether a request was completed.
    fn poll_completed(&mut self, cx: &mut Context<'_>) -> bool {
        let mut completed = false;
        // Start the new ones in the order they came, each with its first poll. One that
        // is over at once (refused by the bus) is done with there and then.
        while self.started < self.handlings.len() {
            if Pin::new(&mut self.handlings[self.started]).poll(cx).is_ready() {
                self.handlings.remove(self.started);
                completed = true;
            } else {
                self.started += 1;
            }
        }
        // Complete the rest oldest first: a later one only after it, so that what a
        // failure answers keeps the requests' order. (The bus answers the publishes of
        // one connection in order anyway.)
        while let Some(oldest) = self.handlings.front_mut() {
            if Pin::new(oldest).poll(cx).is_pending() {
                break;
            }
            self.handlings.pop_front();
            self.started -= 1;
            completed = true;
        }
        completed
    }
}
