//! What a request waits for once [`super::begin`] has done the rest of it.
//!
//! Futures written by hand rather than `async fn`s: a request in progress waits inline
//! in its connection's task, and an idle connection pays for that task's largest state
//! as long as it lives. As structs they are just their fields, without the copies an
//! `async fn` keeps of its arguments and of what it awaits.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use futures_util::future::BoxFuture;
use protocol::RequestId;

use super::RequestError;
use super::send::Publishing;
use crate::session::Session;

/// What a request waits for.
pub enum Pending<'a> {
    /// Nothing: it has been answered.
    Nothing,
    /// Its publish on the bus (a signal or broadcast for peers on other gateways).
    Publish(Publishing<'a>),
    /// A wait of its own, boxed: a join or leave (calls to the room service and the
    /// bus), or a request that waits for the ones in progress before it.
    Boxed(BoxFuture<'a, Result<(), RequestError>>),
}

impl Future for Pending<'_> {
    type Output = Result<(), RequestError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut *self {
            Pending::Nothing => Poll::Ready(Ok(())),
            Pending::Publish(publishing) => Pin::new(publishing).poll(cx),
            Pending::Boxed(call) => call.as_mut().poll(cx),
        }
    }
}

/// A request's [`Pending`] part in the request's span, answered with an `error` if it
/// fails.
pub struct Handling<'a> {
    session: &'a Session,
    id: Option<RequestId>,
    span: tracing::Span,
    pending: Pending<'a>,
}

impl<'a> Handling<'a> {
    pub fn new(session: &'a Session, id: Option<RequestId>, span: tracing::Span, pending: Pending<'a>) -> Self {
        Self { session, id, span, pending }
    }

    /// A request already answered.
    pub fn done(session: &'a Session) -> Self {
        Self::new(session, None, tracing::Span::none(), Pending::Nothing)
    }

    /// A wait of its own making, which answers whatever it handles itself.
    pub fn boxed(session: &'a Session, wait: impl Future<Output = ()> + Send + 'a) -> Self {
        let wait = async move {
            wait.await;
            Ok(())
        };
        Self::new(session, None, tracing::Span::none(), Pending::Boxed(Box::pin(wait)))
    }
}

impl Future for Handling<'_> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        let _entered = this.span.enter();
        let outcome = ready!(Pin::new(&mut this.pending).poll(cx));
        if let Err(error) = outcome {
            this.session.refuse_request(this.id.take(), error);
        }
        Poll::Ready(())
    }
}
