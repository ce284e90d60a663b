//! `signal` (to one peer) and `broadcast` (to the room): the hot path.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bus::Topic;
use bus::envelope::{self, Body, Broadcast, Signal};
use common::telemetry::{FLOW, propagation};
use protocol::names::{validate_peer_id, validate_signal_kind};
use protocol::{ErrorCode, JsonData, RequestId, ServerMessage};

use super::RequestError;
use crate::registry::Route;
use crate::session::Session;
use crate::{metrics, render};

/// Delivers a signal directly when the target is on this gateway (see the registry's
/// routing for when it is not), else starts publishing it on the room's channel. The
/// caller awaits the publish before it reads the next request of this client, so one
/// sender's signals reach the bus, and each receiver, in order.
///
/// Synchronous up to the publish: what is returned holds only what the rest needs, so
/// the signal path, which runs inline in every connection's task, keeps that task
/// small (an idle connection pays for its task's largest state as long as it lives).
pub fn signal<'a>(
    session: &'a Session,
    id: Option<RequestId>,
    room: String,
    to: String,
    kind: String,
    data: JsonData,
) -> Result<Option<Publishing<'a>>, RequestError> {
    let bad_request = |message| RequestError::new(ErrorCode::BadRequest, message);
    validate_peer_id(&to).map_err(bad_request)?;
    validate_signal_kind(&kind).map_err(bad_request)?;
    let gateway = &session.gateway;
    let from = &*session.peer_id;
    let frame = || render::signal(&room, from, &kind, data.as_str());
    let route = gateway.registry.route_signal(&room, from, &to, frame)?;
    metrics::routed("signal", route == Route::Bus);
    if route != Route::Bus {
        acknowledge(session, id);
        return Ok(None);
    }
    let body = Body::Signal(Signal {
        from_peer: from.to_string(),
        to_peer: to.clone(),
        kind,
        data_json: data.as_str().to_string(),
    });
    Ok(Some(Publishing::new(session, room, body, Undelivered::Signal { to }, id)))
}

/// Delivers to the room's members on this gateway and starts publishing for the others.
pub fn broadcast<'a>(
    session: &'a Session,
    id: Option<RequestId>,
    room: String,
    data: JsonData,
) -> Result<Publishing<'a>, RequestError> {
    let gateway = &session.gateway;
    let from = &*session.peer_id;
    let route = gateway.registry.broadcast_locally(&room, from, render::broadcast(&room, Some(from), data.as_str()))?;
    let loopback = route == Route::Bus;
    metrics::routed("broadcast", true);
    let body =
        Body::Broadcast(Broadcast { from_peer: from.to_string(), data_json: data.as_str().to_string(), loopback });
    let undelivered = if loopback { Undelivered::Broadcast } else { Undelivered::Nothing };
    Ok(Publishing::new(session, room, body, undelivered, id))
}

/// A signal or broadcast on its way to the bus. Once published, the request is
/// acknowledged; if the publish fails, the registry is told what was lost.
///
/// A future written by hand rather than an `async fn`: it waits inline in the
/// connection's task, and as a struct it is just its fields, without the copies an
/// `async fn` keeps of its arguments and of what it awaits.
pub struct Publishing<'a> {
    bus: bus::Publishing<'a>,
    /// The publish's span, whose context travels in the envelope (the receiving
    /// gateways continue the trace from it).
    span: tracing::Span,
    session: &'a Session,
    room: String,
    undelivered: Undelivered,
    id: Option<RequestId>,
}

/// What a failed publish leaves undelivered, for the registry's bookkeeping.
enum Undelivered {
    /// A signal to this peer.
    Signal { to: String },
    /// A broadcast this gateway's members were to receive back from the bus.
    Broadcast,
    /// Nothing this gateway tracks.
    Nothing,
}

impl<'a> Publishing<'a> {
    /// Builds and encodes the envelope and starts publishing it on the room's channel.
    fn new(session: &'a Session, room: String, body: Body, undelivered: Undelivered, id: Option<RequestId>) -> Self {
        let gateway = &session.gateway;
        let span = tracing::info_span!(target: FLOW, "bus.publish", room, otel.kind = "producer");
        let mut envelope = envelope::new(&room, &gateway.node_id, body);
        envelope.trace_context = propagation::to_map(&span);
        let bus = gateway.bus.publish(Topic::Room(&room), envelope::encode(&envelope));
        Self { bus, span, session, room, undelivered, id }
    }
}

impl Future for Publishing<'_> {
    type Output = Result<(), RequestError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let published = ready!(this.span.in_scope(|| this.bus.as_mut().poll(cx)));
        if let Err(error) = published {
            let registry = &this.session.gateway.registry;
            match &this.undelivered {
                Undelivered::Signal { to } => registry.not_published(&this.room, Some(to)),
                Undelivered::Broadcast => registry.not_published(&this.room, None),
                Undelivered::Nothing => {}
            }
            return Poll::Ready(Err(error.into()));
        }
        acknowledge(this.session, this.id.take());
        Poll::Ready(Ok(()))
    }
}

fn acknowledge(session: &Session, id: Option<RequestId>) {
    if let Some(id) = id {
        session.reply(&ServerMessage::Ack { id });
    }
}
