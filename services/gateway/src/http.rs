//! The HTTP face of the gateway: the WebSocket endpoint, the probes, and the browser
//! files of [`web`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, Query, State, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures_util::FutureExt;

use crate::connection::Handshake;
use crate::{Gateway, connection, metrics, web};

/// Deadline of each dependency check behind `/readyz`.
const READY_CHECK_TIMEOUT: Duration = Duration::from_secs(1);

pub fn router(gateway: Arc<Gateway>) -> Router {
    Router::new()
        .route("/ws", get(upgrade))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .merge(web::routes(&gateway))
        .with_state(gateway)
}

async fn upgrade(
    State(gateway): State<Arc<Gateway>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(handshake): Query<Handshake>,
    upgrade: WebSocketUpgrade,
) -> Response {
    if gateway.shutdown.is_cancelled() {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down").into_response();
    }
    if !gateway.standing.serving() {
        return (StatusCode::SERVICE_UNAVAILABLE, "rejoining the cluster after losing its state").into_response();
    }
    let slot = match gateway.admission.admit(peer, &headers) {
        Ok(slot) => slot,
        Err(refusal) => {
            tracing::debug!(%peer, ?refusal, "upgrade refused");
            metrics::upgrade_refused(refusal.reason());
            return refusal.into_response();
        }
    };
    let ws = &gateway.config.ws;
    // Boxed: the upgrade's task keeps what its callback captured for the connection's
    // life, and the box is freed once the session has started.
    let handshake = Box::new(handshake);
    upgrade
        .max_message_size(ws.max_message_bytes)
        .max_frame_size(ws.max_message_bytes)
        .read_buffer_size(ws.read_buffer_bytes)
        .write_buffer_size(ws.write_buffer_bytes)
        .on_upgrade(move |socket| {
            let connections = gateway.connections.clone();
            // Not an async block: it would keep the socket it captured for the
            // connection's life, or, given the finished future, hold that twice.
            let serving = connection::serve(gateway, socket, handshake).map(move |()| drop(slot));
            connections.track_future(serving)
        })
}

/// Liveness: the process serves HTTP. Deliberately independent of Redis and the room
/// service, so an outage of those never gets every gateway restarted.
async fn healthz() -> &'static str {
    "ok"
}

/// Readiness: the bus and the room service answer.
async fn readyz(State(gateway): State<Arc<Gateway>>) -> Response {
    match readiness(&gateway).await {
        Ok(()) => (StatusCode::OK, "ready").into_response(),
        Err(problems) => (StatusCode::SERVICE_UNAVAILABLE, problems).into_response(),
    }
}

/// Whether the gateway should get traffic; if not, why, one line per problem.
pub async fn readiness(gateway: &Gateway) -> Result<(), String> {
    if gateway.shutdown.is_cancelled() {
        return Err("shutting down".into());
    }
    if !gateway.standing.serving() {
        return Err("rejoining the cluster after losing its state".into());
    }
    let (bus, rooms) = tokio::join!(
        tokio::time::timeout(READY_CHECK_TIMEOUT, gateway.bus.check()),
        tokio::time::timeout(READY_CHECK_TIMEOUT, gateway.rooms.check()),
    );
    let describe = |outcome: Result<Result<(), String>, _>| match outcome {
        Ok(Ok(())) => None,
        Ok(Err(error)) => Some(error),
        Err(_) => Some("no answer within 1 s".to_string()),
    };
    let problems: Vec<String> = [
        describe(bus.map(|r| r.map_err(|e| e.to_string()))).map(|e| format!("bus: {e}")),
        describe(rooms.map(|r| r.map_err(|e| e.to_string()))).map(|e| format!("room service: {e}")),
    ]
    .into_iter()
    .flatten()
    .collect();
    if problems.is_empty() { Ok(()) } else { Err(problems.join("\n")) }
}
