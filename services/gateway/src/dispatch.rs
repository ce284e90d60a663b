//! The dispatcher: reads the node's bus subscriptions and hands each envelope to the
//! registry, which queues frames for local peers without ever waiting on a client; the
//! work it leaves (releasing subscriptions, sending handovers) is spawned.

use std::sync::Arc;

use bus::envelope::{self, Body, BodyRef, Decoded, Envelope, HandoverData};
use bus::{Incoming, Topic};
use common::telemetry::{FLOW, propagation};

use crate::registry::Effect;
use crate::{Gateway, metrics, outbound};

/// Envelopes dispatched at most before the writers of the clients they went to start.
const BATCH: usize = 64;

/// Runs until the bus closes the incoming stream. Envelopes are taken in batches of
/// what has arrived: the writers of the clients a batch went to start when it is
/// dispatched, so that several frames for one client leave in one write.
pub async fn run(mut incoming: Incoming, gateway: Arc<Gateway>) {
    while let Some(bytes) = incoming.recv().await {
        let _held = outbound::hold_writers();
        dispatch(&gateway, &bytes);
        for _ in 1..BATCH {
            let Ok(bytes) = incoming.try_recv() else { break };
            dispatch(&gateway, &bytes);
        }
    }
}

/// Hands one envelope to the registry (or, for a handover, to the resume waiting for
/// it) and spawns the work it leaves. Signals and broadcasts are read without copying
/// their fields out of the bytes (`envelope::decode_ref`).
fn dispatch(gateway: &Arc<Gateway>, bytes: &[u8]) {
    let decoded = match envelope::decode_ref(bytes) {
        Ok(decoded) => decoded,
        Err(error) => return tracing::warn!(%error, "dropping an undecodable envelope"),
    };
    let envelope = decoded.envelope();
    let kind = body_kind(envelope.body);
    metrics::envelope_received(kind);
    tracing::trace!(room = envelope.room, origin = envelope.origin_node, body = kind, "envelope");
    if let Decoded::Owned(Envelope { body: Some(Body::HandoverData(data)), .. }) = decoded {
        tracing::debug!(peer = data.peer_id, "handover received");
        metrics::handover(false);
        return gateway.handovers.deliver(data);
    }
    // Continues the trace of a traced envelope: its delivery happens in this span.
    let span = if decoded.trace_context().is_empty() {
        tracing::Span::none()
    } else {
        let span =
            tracing::info_span!(target: FLOW, "bus.receive", room = envelope.room, body = kind, otel.kind = "consumer");
        propagation::set_parent_from_map(&span, decoded.trace_context());
        span
    };
    let effects = span.in_scope(|| gateway.registry.dispatch(envelope));
    for effect in effects {
        let gateway = gateway.clone();
        match effect {
            Effect::Release(room) => {
                tokio::spawn(async move { gateway.subscriptions.release(&room).await });
            }
            Effect::HandOver { to, data } => {
                tracing::debug!(peer = data.peer_id, to, frames = data.frames.len(), "handing a session over");
                metrics::handover(true);
                gateway.handovers.send(hand_over(gateway.clone(), to, data));
            }
        }
    }
}

/// Publishes a session's handover on the node channel of the gateway that resumed it.
async fn hand_over(gateway: Arc<Gateway>, to: String, data: HandoverData) {
    let peer = data.peer_id.clone();
    let handover = envelope::new("", &gateway.node_id, Body::HandoverData(data));
    if let Err(error) = gateway.bus.publish(Topic::Node(&to), envelope::encode(&handover)).await {
        tracing::warn!(peer, to, %error, "could not hand a session over");
    }
}

fn body_kind(body: BodyRef<'_>) -> &'static str {
    match body {
        BodyRef::Signal(_) | BodyRef::Other(Body::Signal(_)) => "signal",
        BodyRef::Broadcast(_) | BodyRef::Other(Body::Broadcast(_)) => "broadcast",
        BodyRef::Other(Body::PeerJoined(_)) => "peer_joined",
        BodyRef::Other(Body::PeerLeft(_)) => "peer_left",
        BodyRef::Other(Body::SessionMoved(_)) => "session_moved",
        BodyRef::Other(Body::HandoverRequest(_)) => "handover_request",
        BodyRef::Other(Body::HandoverData(_)) => "handover_data",
    }
}
