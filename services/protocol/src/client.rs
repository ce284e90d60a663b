//! A small async client for protocol v1, used by the tests and the load tester.
//!
//! It is deliberately sequential: one owner drives it, [`Client::request`] sends a
//! request with a fresh id and reads until the reply with that id arrives, keeping
//! everything else it reads (presence, signals) in a backlog that
//! [`Client::next_message`] returns first. Every wait is bounded by the client's reply
//! timeout so a missing message fails fast instead of hanging.

use std::collections::VecDeque;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::{self, Message, protocol::CloseFrame};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::{ErrorCode, JsonData, PeerInfo, Request, RequestFrame, RequestId, ServerMessage, Welcome};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How long a client waits for an expected message unless told otherwise.
pub const DEFAULT_REPLY_TIMEOUT: Duration = Duration::from_secs(10);

/// How the client presents its token.
#[derive(Debug, Clone)]
pub enum Auth {
    /// No token (anonymous access, where the gateway allows it).
    Anonymous,
    /// In the URL: `/ws?token=...`.
    Query(String),
    /// In an `auth` message sent first after the upgrade.
    Message(String),
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("websocket error: {0}")]
    WebSocket(#[from] tungstenite::Error),
    #[error("server answered {code}: {message}")]
    Server { code: ErrorCode, message: String },
    #[error("connection closed by the server with code {code}: {reason}")]
    Closed { code: u16, reason: String },
    #[error("no {waiting_for} within {timeout:?}")]
    Timeout { timeout: Duration, waiting_for: &'static str },
    #[error("unexpected message from the server: {0}")]
    Unexpected(String),
}

impl ClientError {
    /// The error code when the server answered with an `error` frame.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            Self::Server { code, .. } => Some(*code),
            _ => None,
        }
    }
}

pub struct Client {
    socket: Socket,
    welcome: Welcome,
    backlog: VecDeque<ServerMessage>,
    next_id: u64,
    reply_timeout: Duration,
}

impl Client {
    /// Connects to a gateway's `/ws` URL (e.g. `ws://127.0.0.1:8080/ws`) with a token
    /// in the query, or anonymously when `token` is `None`, and waits for `welcome`.
    pub async fn connect(url: &str, token: Option<&str>) -> Result<Self, ClientError> {
        let auth = token.map_or(Auth::Anonymous, |t| Auth::Query(t.to_string()));
        Self::connect_with(url, auth).await
    }

    pub async fn connect_with(url: &str, auth: Auth) -> Result<Self, ClientError> {
        let url = match &auth {
            Auth::Query(token) => format!("{url}{}token={token}", if url.contains('?') { '&' } else { '?' }),
            _ => url.to_string(),
        };
        let (socket, _response) =
            within(DEFAULT_REPLY_TIMEOUT, "websocket handshake", tokio_tungstenite::connect_async(url)).await??;
        let mut client = Self {
            socket,
            welcome: placeholder_welcome(),
            backlog: VecDeque::new(),
            next_id: 1,
            reply_timeout: DEFAULT_REPLY_TIMEOUT,
        };
        if let Auth::Message(token) = auth {
            client.send(Request::Auth { token }).await?;
        }
        match client.read().await? {
            ServerMessage::Welcome(welcome) => client.welcome = welcome,
            ServerMessage::Error { code, message, .. } => return Err(ClientError::Server { code, message }),
            other => return Err(ClientError::Unexpected(other.to_json())),
        }
        Ok(client)
    }

    pub fn welcome(&self) -> &Welcome {
        &self.welcome
    }

    pub fn peer_id(&self) -> &str {
        &self.welcome.peer_id
    }

    /// Changes how long [`Client::request`] and [`Client::next_message`] wait.
    pub fn set_reply_timeout(&mut self, timeout: Duration) {
        self.reply_timeout = timeout;
    }

    /// Joins a room; returns the members that were already there.
    pub async fn join(
        &mut self,
        room: &str,
        metadata: Option<serde_json::Value>,
    ) -> Result<Vec<PeerInfo>, ClientError> {
        let metadata = metadata.as_ref().map(JsonData::from_value);
        match self.request(Request::Join { room: room.into(), metadata }).await? {
            ServerMessage::Joined { peers, .. } => Ok(peers),
            other => Err(ClientError::Unexpected(other.to_json())),
        }
    }

    pub async fn leave(&mut self, room: &str) -> Result<(), ClientError> {
        self.request(Request::Leave { room: room.into() }).await.map(drop)
    }

    /// Sends a signal without an id: no acknowledgement, errors arrive as messages.
    pub async fn signal(
        &mut self,
        room: &str,
        to: &str,
        kind: &str,
        data: serde_json::Value,
    ) -> Result<(), ClientError> {
        let data = JsonData::from_value(&data);
        self.send(Request::Signal { room: room.into(), to: to.into(), kind: kind.into(), data }).await
    }

    /// Sends a broadcast without an id.
    pub async fn broadcast(&mut self, room: &str, data: serde_json::Value) -> Result<(), ClientError> {
        self.send(Request::Broadcast { room: room.into(), data: JsonData::from_value(&data) }).await
    }

    pub async fn ping(&mut self) -> Result<(), ClientError> {
        self.request(Request::Ping).await.map(drop)
    }

    /// Sends a request with a fresh id and waits for its reply. An `error` reply becomes
    /// [`ClientError::Server`]; other messages read meanwhile go to the backlog.
    pub async fn request(&mut self, request: Request) -> Result<ServerMessage, ClientError> {
        let id = RequestId::number(self.next_id);
        self.next_id += 1;
        self.send_frame(&RequestFrame { id: Some(id.clone()), request }).await?;
        let reply = within(self.reply_timeout, "reply", async {
            loop {
                let message = self.read().await?;
                if message.reply_to() == Some(&id) {
                    return Ok::<_, ClientError>(message);
                }
                self.backlog.push_back(message);
            }
        })
        .await??;
        match reply {
            ServerMessage::Error { code, message, .. } => Err(ClientError::Server { code, message }),
            reply => Ok(reply),
        }
    }

    /// Sends a request without an id.
    pub async fn send(&mut self, request: Request) -> Result<(), ClientError> {
        self.send_frame(&RequestFrame { id: None, request }).await
    }

    pub async fn send_frame(&mut self, frame: &RequestFrame) -> Result<(), ClientError> {
        self.send_raw(Message::text(frame.to_json())).await
    }

    /// Sends any WebSocket message, valid or not (for tests of bad input).
    pub async fn send_raw(&mut self, message: Message) -> Result<(), ClientError> {
        Ok(self.socket.send(message).await?)
    }

    /// The next message that is not a reply already consumed by [`Client::request`].
    pub async fn next_message(&mut self) -> Result<ServerMessage, ClientError> {
        if let Some(message) = self.backlog.pop_front() {
            return Ok(message);
        }
        within(self.reply_timeout, "message", self.read()).await?
    }

    /// Reads until the server closes the connection; returns the close code and reason.
    /// Messages read on the way are kept in the backlog.
    pub async fn closed(&mut self) -> Result<(u16, String), ClientError> {
        within(self.reply_timeout, "close", async {
            loop {
                match self.read().await {
                    Ok(message) => self.backlog.push_back(message),
                    Err(ClientError::Closed { code, reason }) => return Ok((code, reason)),
                    Err(ClientError::WebSocket(_)) => return Ok((1006, "abnormal closure".into())),
                    Err(other) => return Err(other),
                }
            }
        })
        .await?
    }

    /// Closes the connection cleanly (code 1000).
    pub async fn close(mut self) -> Result<(), ClientError> {
        let frame = CloseFrame { code: 1000.into(), reason: "bye".into() };
        self.socket.close(Some(frame)).await?;
        Ok(())
    }

    /// Reads one protocol message from the socket.
    async fn read(&mut self) -> Result<ServerMessage, ClientError> {
        loop {
            let Some(frame) = self.socket.next().await else {
                return Err(ClientError::Closed {
                    code: 1006,
                    reason: "connection ended without a close frame".into(),
                });
            };
            match frame? {
                Message::Text(text) => {
                    return serde_json::from_str(&text).map_err(|e| ClientError::Unexpected(format!("{e}: {text}")));
                }
                Message::Close(frame) => {
                    let (code, reason) = frame.map_or((1005, String::new()), |f| (f.code.into(), f.reason.to_string()));
                    return Err(ClientError::Closed { code, reason });
                }
                Message::Binary(_) => return Err(ClientError::Unexpected("binary frame".into())),
                Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
            }
        }
    }
}

async fn within<F: Future>(timeout: Duration, waiting_for: &'static str, future: F) -> Result<F::Output, ClientError> {
    tokio::time::timeout(timeout, future).await.map_err(|_| ClientError::Timeout { timeout, waiting_for })
}

fn placeholder_welcome() -> Welcome {
    Welcome {
        peer_id: String::new(),
        identity: String::new(),
        name: None,
        protocol: crate::PROTOCOL_VERSION,
        server: crate::ServerInfo { version: String::new(), node: String::new() },
        ice_servers: Vec::new(),
        limits: crate::Limits { max_message_bytes: 0, max_rooms: 0 },
    }
}
