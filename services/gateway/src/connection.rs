//! One client connection from upgrade to close: start (authenticate and open a session,
//! or resume one), run the session, then either keep the session for a resume or end
//! it.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{Message, WebSocket};
use futures_util::StreamExt;
use futures_util::stream::SplitStream;
use protocol::{CloseCode, ErrorCode, Limits, Request, RequestFrame, ServerInfo, ServerMessage, Welcome};

use crate::Gateway;
use crate::auth::{AuthError, Identity};
use crate::lifecycle::{self, Attached};
use crate::outbound::PeerSender;
use crate::render;
use crate::requests::in_progress::InProgress;
use crate::resume::{self, ResumeError};
use crate::session::{Ending, Session};
use crate::writer::{self, Writer};
use crate::{metrics, turn};

/// How long a closed connection is read on for the client's close frame.
const CLOSE_LINGER: Duration = Duration::from_secs(1);

/// What the upgrade request carried.
#[derive(Debug, Default, serde::Deserialize)]
pub struct Handshake {
    /// A client token (JWT).
    pub token: Option<String>,
    /// A resume token from an earlier `welcome` or `resumed`.
    pub resume: Option<String>,
    /// With `resume`: the last `seq` the client received.
    pub last_seq: Option<u64>,
}

/// Serves one upgraded socket until it closes.
///
/// Not an `async fn`: the arguments of one stay in its future for the future's whole
/// life, and an idle connection's task is mostly that future. The socket (368 bytes)
/// is split here, before the future exists, so only its two small halves are kept; the
/// handshake comes boxed, and the box goes to the session's start, which frees it.
pub fn serve(gateway: Arc<Gateway>, socket: WebSocket, handshake: Box<Handshake>) -> impl Future<Output = ()> + Send {
    metrics::connection_opened();
    let (sink, stream) = socket.split();
    let (sender, outbox) = PeerSender::new(gateway.config.ws.send_queue);
    sender.attach(Writer::new(sink, outbox, sender.closer().clone()));
    serve_halves(gateway, stream, sender, handshake)
}

async fn serve_halves(
    gateway: Arc<Gateway>,
    mut stream: SplitStream<WebSocket>,
    sender: PeerSender,
    handshake: Box<Handshake>,
) {
    // In a block of its own: a local's storage stays part of the future until its scope
    // ends, moved out or not, and the session holds what is needed of `attached`.
    let (session, attachment) = {
        // Boxed: authenticating, opening or resuming a session is over in a moment, and
        // its future would otherwise stay part of the connection's task for its life.
        let Some(attached) = Box::pin(start(&gateway, handshake, &sender, &mut stream)).await else {
            finish(&sender, &mut stream).await;
            return closed(&sender);
        };
        tracing::debug!(peer = %attached.peer_id, identity = %attached.identity.identity, "connected");
        let Attached { peer_id, identity, attachment, .. } = attached;
        (Session { gateway, peer_id, identity, sender }, attachment)
    };
    let mut in_progress = InProgress::new(session.gateway.config.limits.publishes_in_flight);
    let ending = session.run(&mut stream, &mut in_progress).await;
    // The publishes of the last requests are on their way already; what is left is to
    // see how they went (each within the bus's command timeout).
    in_progress.finish().await;
    let goodbye = ending == Ending::Goodbye;
    lifecycle::socket_ended(&session.gateway, &session.peer_id, attachment, goodbye).await;
    finish(&session.sender, &mut stream).await;
    closed(&session.sender);
    tracing::debug!(peer = %session.peer_id, ?ending, "disconnected");
}

fn closed(sender: &PeerSender) {
    metrics::connection_closed(sender.closer().code().unwrap_or(CloseCode::Normal));
}

/// Sends the close frame while reading on until the client answers it (at most
/// [`CLOSE_LINGER`]). Dropping a socket with unread input makes the kernel reset the
/// connection, and the reset can overtake the close frame: a client still sending when
/// it is closed (a flood, say) would see a broken connection instead of the code that
/// says why.
async fn finish(sender: &PeerSender, stream: &mut SplitStream<WebSocket>) {
    let read_until_close = async {
        while let Some(Ok(message)) = stream.next().await {
            if matches!(message, Message::Close(_)) {
                break;
            }
        }
    };
    // Boxed: it runs once, at the end, and its timer would otherwise be part of every
    // connection's task for the task's life.
    let _ = tokio::join!(Box::pin(writer::close(sender)), tokio::time::timeout(CLOSE_LINGER, read_until_close));
}

/// Resumes the session of a resume token, or else opens a new one for a valid client
/// token, queueing `resumed` or `welcome`. On failure queues an `error` and requests the
/// close, and returns `None`.
async fn start(
    gateway: &Gateway,
    handshake: Box<Handshake>,
    sender: &PeerSender,
    stream: &mut SplitStream<WebSocket>,
) -> Option<Attached> {
    let refuse = |code: ErrorCode, message: String, close: CloseCode| {
        tracing::debug!(%code, %message, "connection refused");
        metrics::error_sent(code);
        sender.send(render::message(&ServerMessage::error(None, code, message)));
        sender.closer().close(close);
        None
    };
    let rejoining = "this gateway is rejoining the cluster: try again, or another gateway";
    if !gateway.standing.serving() {
        return refuse(ErrorCode::Unavailable, rejoining.into(), CloseCode::TryAgainLater);
    }
    if let Some(token) = handshake.resume.as_deref().filter(|_| gateway.resume_enabled()) {
        let Some(_standing) = gateway.standing.admit().await else {
            return refuse(ErrorCode::Unavailable, rejoining.into(), CloseCode::TryAgainLater);
        };
        let resumed = resume::resume(gateway, token, handshake.last_seq.unwrap_or(0), sender.clone()).await;
        metrics::resume(match &resumed {
            Ok(attached) if attached.gap => metrics::Resume::Gap,
            Ok(_) => metrics::Resume::Complete,
            Err(ResumeError::NoSession(_)) => metrics::Resume::NoSession,
            Err(ResumeError::Unavailable(_)) => metrics::Resume::Unavailable,
        });
        match resumed {
            Ok(attached) => return Some(attached),
            Err(ResumeError::NoSession(why)) if handshake.token.is_none() => {
                return refuse(ErrorCode::NotFound, format!("no session to resume: {why}"), CloseCode::ResumeFailed);
            }
            Err(ResumeError::NoSession(why)) => tracing::debug!(why, "resume failed; starting a new session"),
            Err(error @ ResumeError::Unavailable(_)) => {
                return refuse(ErrorCode::Unavailable, error.to_string(), CloseCode::TryAgainLater);
            }
        }
    }
    let identity = match authenticate(gateway, handshake.token, stream).await {
        Ok(identity) => identity,
        Err((reason, message)) => {
            metrics::auth_failed(reason);
            return refuse(ErrorCode::Unauthorized, message, CloseCode::Unauthorized);
        }
    };
    let Some(_standing) = gateway.standing.admit().await else {
        return refuse(ErrorCode::Unavailable, rejoining.into(), CloseCode::TryAgainLater);
    };
    match lifecycle::open(gateway, identity, sender.clone()).await {
        Ok(attached) => {
            let welcome = welcome(gateway, &attached.peer_id, &attached.identity, attached.resume_token.clone());
            // The first frame on the socket: nothing of the session can precede it, as
            // the session is in no room yet, except a `reconnect` if the gateway loses its
            // standing meanwhile (clients take that as `unavailable` and try again).
            sender.send(render::message(&ServerMessage::Welcome(welcome)));
            Some(attached)
        }
        Err(message) => refuse(ErrorCode::Unavailable, message, CloseCode::TryAgainLater),
    }
}

/// The token from the URL, or else from an `auth` message that must come first within
/// the handshake timeout; without either, anonymous access if it is on. A failure says
/// why twice: a fixed reason (for metrics) and a message for the client.
async fn authenticate(
    gateway: &Gateway,
    url_token: Option<String>,
    stream: &mut SplitStream<WebSocket>,
) -> Result<Identity, (&'static str, String)> {
    let checked = |error: AuthError| (error.reason(), error.to_string());
    if url_token.is_some() || gateway.auth.anonymous_allowed() {
        return gateway.auth.authenticate(url_token.as_deref()).map_err(checked);
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
    .map_err(|_| ("timeout", "no auth message within the handshake timeout".to_string()))?
    .ok_or_else(|| ("no_auth_message", "the first message must be an auth message".to_string()))?;
    match RequestFrame::parse(&first_text) {
        Ok(RequestFrame { request: Request::Auth { token }, .. }) => {
            gateway.auth.authenticate(Some(&token)).map_err(checked)
        }
        _ => Err((
            "no_auth_message",
            "the first message must be {\"type\":\"auth\",\"token\":...} or the URL must carry ?token=".into(),
        )),
    }
}

/// The session as `welcome` (and, inside `resumed`, a resume) describes it.
pub fn welcome(gateway: &Gateway, peer_id: &str, identity: &Identity, resume_token: Option<String>) -> Welcome {
    let mut ice_servers = gateway.config.ice_servers.clone();
    ice_servers.extend(turn::ice_server(&gateway.config.turn, &identity.identity));
    let resume_window_ms = resume_token.as_ref().map(|_| gateway.config.session.resume_window.as_millis() as u64);
    Welcome {
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
        resume_token,
        resume_window_ms,
    }
}
