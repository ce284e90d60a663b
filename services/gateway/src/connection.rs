//! One client connection from upgrade to close: authenticate, register, run the
//! session, leave every room, unregister.

use std::sync::Arc;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures_util::{SinkExt, StreamExt};
use protocol::{CloseCode, ErrorCode, Limits, Request, RequestFrame, ServerInfo, ServerMessage, Welcome};

use crate::Gateway;
use crate::auth::Identity;
use crate::outbound::PeerSender;
use crate::registry::PeerId;
use crate::render;
use crate::session::Session;
use crate::{turn, writer};

/// Serves one upgraded socket until it closes. `url_token` is the `token` query
/// parameter of the upgrade request, if any.
pub async fn serve(gateway: Arc<Gateway>, socket: WebSocket, url_token: Option<String>) {
    let (mut sink, mut stream) = socket.split();
    let identity = match authenticate(&gateway, url_token, &mut stream).await {
        Ok(identity) => identity,
        Err(message) => {
            tracing::debug!(%message, "authentication failed");
            let error = ServerMessage::error(None, ErrorCode::Unauthorized, message);
            let close =
                CloseFrame { code: CloseCode::Unauthorized.code(), reason: CloseCode::Unauthorized.reason().into() };
            let _ = tokio::time::timeout(gateway.config.ws.auth_timeout, async {
                sink.send(Message::Text(render::message(&error))).await?;
                sink.send(Message::Close(Some(close))).await
            })
            .await;
            return;
        }
    };

    let peer_id: PeerId = new_peer_id().into();
    let (sender, queue) = PeerSender::new(gateway.config.ws.send_queue);
    gateway.registry.add_peer(peer_id.clone(), sender.clone());
    sender.send(render::message(&welcome(&gateway, &peer_id, &identity)));
    let writer = tokio::spawn(writer::run(sink, queue, sender.closer().clone(), gateway.config.ws.ping_interval));
    tracing::debug!(peer = %peer_id, identity = %identity.identity, "connected");

    let session = Session::new(gateway, peer_id, identity, sender);
    session.run(&mut stream).await;
    session.leave_all_rooms().await;
    let _ = writer.await;
    tracing::debug!(peer = %session.peer_id, "disconnected");
}

/// The token from the URL, or else from an `auth` message that must come first within
/// the handshake timeout; without either, anonymous access if it is on.
async fn authenticate(
    gateway: &Gateway,
    url_token: Option<String>,
    stream: &mut futures_util::stream::SplitStream<WebSocket>,
) -> Result<Identity, String> {
    if url_token.is_some() || gateway.auth.anonymous_allowed() {
        return gateway.auth.authenticate(url_token.as_deref()).map_err(|e| e.to_string());
    }
    let first_text = tokio::time::timeout(gateway.config.ws.auth_timeout, async {
        while let Some(Ok(message)) = stream.next().await {
            match message {
                Message::Text(text) => return Some(text),
                Message::Ping(_) | Message::Pong(_) => continue,
                Message::Binary(_) | Message::Close(_) => return None,
            }
        }
        None
    })
    .await
    .map_err(|_| "no auth message within the handshake timeout".to_string())?
    .ok_or_else(|| "the first message must be an auth message".to_string())?;
    match RequestFrame::parse(&first_text) {
        Ok(RequestFrame { request: Request::Auth { token }, .. }) => {
            gateway.auth.authenticate(Some(&token)).map_err(|e| e.to_string())
        }
        _ => Err("the first message must be {\"type\":\"auth\",\"token\":...} or the URL must carry ?token=".into()),
    }
}

fn welcome(gateway: &Gateway, peer_id: &str, identity: &Identity) -> ServerMessage {
    let mut ice_servers = gateway.config.ice_servers.clone();
    ice_servers.extend(turn::ice_server(&gateway.config.turn, &identity.identity));
    ServerMessage::Welcome(Welcome {
        peer_id: peer_id.to_string(),
        identity: identity.identity.clone(),
        name: identity.name.clone(),
        protocol: protocol::PROTOCOL_VERSION,
        server: ServerInfo { version: env!("CARGO_PKG_VERSION").to_string(), node: gateway.node_id.to_string() },
        ice_servers,
        limits: Limits {
            max_message_bytes: gateway.config.ws.max_message_bytes,
            max_rooms: gateway.config.limits.max_rooms_per_connection,
        },
    })
}

/// 80 random bits as 20 hex digits: unique across the cluster for all practical
/// purposes, and unguessable by other peers.
fn new_peer_id() -> String {
    format!("{:020x}", rand::random::<u128>() >> 48)
}
