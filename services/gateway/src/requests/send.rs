//! `signal` (to one peer) and `broadcast` (to the room): the hot path.

use bus::Topic;
use bus::envelope::{self, Body, Broadcast, Signal};
use common::telemetry::{FLOW, propagation};
use protocol::names::{validate_peer_id, validate_signal_kind};
use protocol::{ErrorCode, JsonData, RequestId, ServerMessage};
use tracing::Instrument;

use super::RequestError;
use crate::registry::Route;
use crate::session::Session;
use crate::{metrics, render};

/// Delivers a signal directly when the target is on this gateway (see the registry's
/// routing for when it is not), else publishes it on the room's channel. The publish is awaited before the next request of this client
/// is read, so one sender's signals reach the bus, and each receiver, in order.
pub async fn signal(
    session: &Session,
    id: Option<RequestId>,
    room: String,
    to: String,
    kind: String,
    data: JsonData,
) -> Result<(), RequestError> {
    let bad_request = |message| RequestError::new(ErrorCode::BadRequest, message);
    validate_peer_id(&to).map_err(bad_request)?;
    validate_signal_kind(&kind).map_err(bad_request)?;
    let gateway = &session.gateway;
    let from = &*session.peer_id;
    let frame = || render::signal(&room, from, &kind, data.as_str());
    let route = gateway.registry.route_signal(&room, from, &to, frame)?;
    metrics::routed("signal", route == Route::Bus);
    if route == Route::Bus {
        let to_peer = to;
        let body = Body::Signal(Signal {
            from_peer: from.to_string(),
            to_peer: to_peer.clone(),
            kind,
            data_json: data.as_str().to_string(),
        });
        let published = publish(session, &room, body).await;
        if published.is_err() {
            gateway.registry.not_published(&room, Some(&to_peer));
        }
        published?;
    }
    acknowledge(session, id);
    Ok(())
}

/// Delivers to the room's members on this gateway and publishes for the others.
pub async fn broadcast(
    session: &Session,
    id: Option<RequestId>,
    room: String,
    data: JsonData,
) -> Result<(), RequestError> {
    let gateway = &session.gateway;
    let from = &*session.peer_id;
    let route = gateway.registry.broadcast_locally(&room, from, render::broadcast(&room, Some(from), data.as_str()))?;
    let loopback = route == Route::Bus;
    metrics::routed("broadcast", true);
    let body =
        Body::Broadcast(Broadcast { from_peer: from.to_string(), data_json: data.as_str().to_string(), loopback });
    let published = publish(session, &room, body).await;
    if published.is_err() && loopback {
        gateway.registry.not_published(&room, None);
    }
    published?;
    acknowledge(session, id);
    Ok(())
}

/// Publishes on the room's channel, in a span whose context travels in the envelope
/// (the receiving gateways continue the trace from it).
async fn publish(session: &Session, room: &str, body: Body) -> Result<(), bus::BusError> {
    let gateway = &session.gateway;
    let span = tracing::info_span!(target: FLOW, "bus.publish", room, otel.kind = "producer");
    let mut envelope = envelope::new(room, &gateway.node_id, body);
    envelope.trace_context = propagation::to_map(&span);
    gateway.bus.publish(Topic::Room(room), envelope::encode(&envelope)).instrument(span).await
}

fn acknowledge(session: &Session, id: Option<RequestId>) {
    if let Some(id) = id {
        session.reply(&ServerMessage::Ack { id });
    }
}
