//! `signal` (to one peer) and `broadcast` (to the room): the hot path.

use bus::Topic;
use bus::envelope::{self, Body, Broadcast, Signal};
use protocol::names::{validate_peer_id, validate_signal_kind};
use protocol::{ErrorCode, JsonData, RequestId, ServerMessage};

use super::RequestError;
use crate::registry::Route;
use crate::render;
use crate::session::Session;

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
    if gateway.registry.route_signal(&room, from, &to, frame)? == Route::Bus {
        let to_peer = to;
        let body = Body::Signal(Signal {
            from_peer: from.to_string(),
            to_peer: to_peer.clone(),
            kind,
            data_json: data.as_str().to_string(),
        });
        let published = gateway
            .bus
            .publish(Topic::Room(&room), envelope::encode(&envelope::new(&room, &gateway.node_id, body)))
            .await;
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
    let body =
        Body::Broadcast(Broadcast { from_peer: from.to_string(), data_json: data.as_str().to_string(), loopback });
    let published =
        gateway.bus.publish(Topic::Room(&room), envelope::encode(&envelope::new(&room, &gateway.node_id, body))).await;
    if published.is_err() && loopback {
        gateway.registry.not_published(&room, None);
    }
    published?;
    acknowledge(session, id);
    Ok(())
}

fn acknowledge(session: &Session, id: Option<RequestId>) {
    if let Some(id) = id {
        session.reply(&ServerMessage::Ack { id });
    }
}
