//! A connected, authenticated client: reads its requests one at a time and answers
//! them. Requests from one client are handled in order, so a client may pipeline
//! (`join` then `signal` without waiting) and still get the order it sent.

use std::sync::Arc;

use axum::extract::ws::{Message, WebSocket};
use futures_util::StreamExt;
use futures_util::stream::SplitStream;
use protocol::{CloseCode, ErrorCode, Request, RequestFrame, RequestId, ServerMessage};
use tokio_tungstenite::tungstenite;

use crate::Gateway;
use crate::auth::Identity;
use crate::outbound::PeerSender;
use crate::registry::PeerId;
use crate::render;
use crate::requests::{self, RequestError};

pub struct Session {
    pub gateway: Arc<Gateway>,
    pub peer_id: PeerId,
    pub identity: Identity,
    pub sender: PeerSender,
}

impl Session {
    pub fn new(gateway: Arc<Gateway>, peer_id: PeerId, identity: Identity, sender: PeerSender) -> Self {
        Self { gateway, peer_id, identity, sender }
    }

    /// Reads and handles requests until the client leaves, is cut off, idles out or the
    /// gateway shuts down. On return a close code has been requested.
    pub async fn run(&self, stream: &mut SplitStream<WebSocket>) {
        let closer = self.sender.closer().clone();
        let idle_timeout = self.gateway.config.ws.idle_timeout;
        loop {
            let next = tokio::select! {
                biased;
                _ = closer.closed() => return,
                _ = self.gateway.shutdown.cancelled() => {
                    closer.close(CloseCode::GoingAway);
                    return;
                }
                next = tokio::time::timeout(idle_timeout, stream.next()) => next,
            };
            let message = match next {
                Err(_elapsed) => return closer.close(CloseCode::IdleTimeout),
                Ok(None) => return closer.close(CloseCode::Normal),
                Ok(Some(Err(error))) => return closer.close(close_code_for(error)),
                Ok(Some(Ok(message))) => message,
            };
            match message {
                Message::Text(text) => self.handle(&text).await,
                Message::Binary(_) => self.reply_error(
                    None,
                    ErrorCode::BadRequest,
                    "binary frames are not supported: send JSON text frames",
                ),
                Message::Close(_) => return closer.close(CloseCode::Normal),
                Message::Ping(_) | Message::Pong(_) => {}
            }
        }
    }

    async fn handle(&self, text: &str) {
        let frame = match RequestFrame::parse(text) {
            Ok(frame) => frame,
            Err(error) => return self.reply_error(error.id, error.code, error.message),
        };
        let id = frame.id;
        let outcome = match frame.request {
            Request::Join { room, metadata } => requests::join::handle(self, id.clone(), room, metadata).await,
            Request::Leave { room } => requests::leave::handle(self, id.clone(), room).await,
            Request::Signal { room, to, kind, data } => {
                requests::send::signal(self, id.clone(), room, to, kind, data).await
            }
            Request::Broadcast { room, data } => requests::send::broadcast(self, id.clone(), room, data).await,
            Request::Ping => {
                self.reply(&ServerMessage::Pong { id: id.clone() });
                Ok(())
            }
            Request::Auth { .. } => Err(RequestError::new(ErrorCode::BadRequest, "already authenticated")),
        };
        if let Err(error) = outcome {
            self.reply_error(id, error.code, error.message);
        }
    }

    pub fn reply(&self, message: &ServerMessage) {
        self.sender.send(render::message(message));
    }

    fn reply_error(&self, id: Option<RequestId>, code: ErrorCode, message: impl Into<String>) {
        self.reply(&ServerMessage::error(id, code, message));
    }

    /// Leaves every room after the socket closed; the other members see
    /// `peer_left` with reason `disconnected`.
    pub async fn leave_all_rooms(&self) {
        let rooms = self.gateway.registry.disconnect(&self.peer_id);
        let leaves = rooms.iter().map(|room| requests::leave::after_disconnect(self, room));
        futures_util::future::join_all(leaves).await;
    }
}

/// The close code for a failed read.
fn close_code_for(error: axum::Error) -> CloseCode {
    match error.into_inner().downcast::<tungstenite::Error>().map(|e| *e) {
        Ok(tungstenite::Error::Capacity(_)) => CloseCode::TooLarge,
        Ok(tungstenite::Error::Utf8(_)) => CloseCode::InvalidData,
        Ok(tungstenite::Error::Protocol(_)) => CloseCode::ProtocolError,
        _ => CloseCode::Normal,
    }
}
