//! `signal` (to one peer) and `broadcast` (to the room): the hot path.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bus::Topic;
use bus::envelope::{self, BodyRef, BroadcastRef, EnvelopeRef, SignalRef};
use bytes::Bytes;
use common::telemetry::{FLOW, propagation};
use protocol::names::{validate_peer_id, validate_signal_kind};
use protocol::{ErrorCode, JsonData, RequestId, ServerMessage};

use super::RequestError;
use crate::registry::Route;
use crate::session::Session;
use crate::{metrics, render};

/// Delivers a signal directly when the target is on this gateway (see the registry's
/// routing for when it is not), else starts publishing it on the room's channel. Each
/// publish of a client is handed to the bus before its next request's is (see
/// `in_progress`), so one sender's signals reach the bus, and each receiver, in order.
///
/// Synchronous up to the publish: what is returned holds only what the rest needs.
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
    let body = BodyRef::Signal(SignalRef { from_peer: from, to_peer: &to, kind: &kind, data_json: data.as_str() });
    let encoded = encode(session, &room, body);
    Ok(Some(Publishing::new(session, room, encoded, Undelivered::Signal { to }, id)))
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
    let body = BodyRef::Broadcast(BroadcastRef { from_peer: from, data_json: data.as_str(), loopback });
    let undelivered = if loopback { Undelivered::Broadcast } else { Undelivered::Nothing };
    let encoded = encode(session, &room, body);
    Ok(Publishing::new(session, room, encoded, undelivered, id))
}

/// A signal or broadcast on its way to the bus. Once published, the request is
/// acknowledged; if the publish fails, the registry is told what was lost.
///
/// A future written by hand rather than an `async fn`: as a struct it is just its
/// fields, without the copies an `async fn` keeps of its arguments and of what it
/// awaits (a connection may keep several, see `in_progress`).
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

/// The span of a publish and its envelope, encoded straight from the request's parts
/// (no copy of them first); the span's context travels in the envelope, and the
/// receiving gateways continue the trace from it.
fn encode(session: &Session, room: &str, body: BodyRef<'_>) -> (tracing::Span, Bytes) {
    let span = tracing::info_span!(target: FLOW, "bus.publish", room, otel.kind = "producer");
    let envelope =
        EnvelopeRef { room, origin_node: &session.gateway.node_id, sent_at_us: envelope::now_micros(), body };
    let encoded = envelope::encode_ref(envelope, &propagation::to_map(&span));
    (span, encoded)
}

impl<'a> Publishing<'a> {
    /// Starts publishing an envelope made by [`encode`] on the room's channel.
    fn new(
        session: &'a Session,
        room: String,
        (span, envelope): (tracing::Span, Bytes),
        undelivered: Undelivered,
        id: Option<RequestId>,
    ) -> Self {
        let bus = session.gateway.bus.publish(Topic::Room(&room), envelope);
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
