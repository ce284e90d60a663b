//! A small async client for protocol v1, used by the tests and the load tester.
//!
//! [`Client`] is one connection; [`ReconnectingClient`] survives lost connections by
//! resuming its session on another.
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

use crate::{ErrorCode, JsonData, PeerInfo, Request, RequestFrame, RequestId, Sequenced, ServerMessage, Welcome};

mod reconnecting;

pub use reconnecting::{Backoff, ReconnectingClient};

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
    /// Whether the connection is gone (as opposed to a request that failed on a working
    /// connection).
    pub fn is_connection_lost(&self) -> bool {
        matches!(self, Self::WebSocket(_) | Self::Closed { .. })
    }

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
    /// The highest `seq` received, and the highest acknowledged to the server.
    last_seq: u64,
    acked_seq: u64,
    /// Sequence numbers that were not the next one expected (duplicates, gaps).
    sequence_errors: Vec<String>,
}

/// How a connection started.
#[derive(Debug, Clone, PartialEq)]
pub enum Start {
    /// A new session (a new peer id).
    Fresh,
    /// The session of the resume token, with its rooms; `gap` says whether messages may
    /// have been lost while the client was away.
    Resumed { gap: bool, rooms: Vec<String> },
}

/// How a client makes its socket, beyond the URL.
#[derive(Debug, Clone, Default)]
pub struct ConnectOptions {
    /// The local address to connect from. A load generator spreads its connections over
    /// several (127.0.0.2, 127.0.0.3, …) so that more of them fit the port range than one
    /// address has ports.
    pub local_ip: Option<std::net::IpAddr>,
    /// Small WebSocket buffers (4 KiB to read, none to write), for many mostly idle
    /// clients in one process: the library's default read buffer alone is 128 KiB.
    pub small_buffers: bool,
}

impl ConnectOptions {
    async fn open(
        &self,
        url: String,
    ) -> Result<(Socket, tungstenite::handshake::client::Response), tungstenite::Error> {
        let config = self
            .small_buffers
            .then(|| tungstenite::protocol::WebSocketConfig::default().read_buffer_size(4 * 1024).write_buffer_size(0));
        // TCP_NODELAY: an acknowledgement (`received`) and the request after it are two
        // small writes in a row, and with Nagle's algorithm the second would wait for the
        // gateway's delayed ACK (40 ms).
        let Some(local_ip) = self.local_ip else {
            return tokio_tungstenite::connect_async_with_config(url, config, true).await;
        };
        let host = url
            .strip_prefix("ws://")
            .and_then(|rest| rest.split('/').next())
            .ok_or_else(|| tungstenite::Error::Url(tungstenite::error::UrlError::UnsupportedUrlScheme))?;
        let remote = tokio::net::lookup_host(host)
            .await?
            .next()
            .ok_or(tungstenite::Error::Url(tungstenite::error::UrlError::UnableToConnect(host.to_string())))?;
        let socket = if remote.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
        socket.bind(std::net::SocketAddr::new(local_ip, 0))?;
        let stream = socket.connect(remote).await?;
        stream.set_nodelay(true)?;
        tokio_tungstenite::client_async_with_config(url, MaybeTlsStream::Plain(stream), config).await
    }
}

/// Acknowledge received messages every this many (the server may then free them).
const ACK_EVERY: u64 = 16;

impl Client {
    /// Connects to a gateway's `/ws` URL (e.g. `ws://127.0.0.1:8080/ws`) with a token
    /// in the query, or anonymously when `token` is `None`, and waits for `welcome`.
    pub async fn connect(url: &str, token: Option<&str>) -> Result<Self, ClientError> {
        let auth = token.map_or(Auth::Anonymous, |t| Auth::Query(t.to_string()));
        Self::connect_with(url, auth).await
    }

    pub async fn connect_with(url: &str, auth: Auth) -> Result<Self, ClientError> {
        Self::open(url, auth, None, &ConnectOptions::default()).await.map(|(client, _)| client)
    }

    /// [`Client::connect_with`], with the socket made as `options` say.
    pub async fn connect_with_options(url: &str, auth: Auth, options: &ConnectOptions) -> Result<Self, ClientError> {
        Self::open(url, auth, None, options).await.map(|(client, _)| client)
    }

    /// Resumes the session of `resume_token` (from `welcome`), saying that `last_seq` is
    /// the last message received. If the session cannot be resumed, a new one starts
    /// with `fallback` when that carries a token, else this fails.
    pub async fn resume(
        url: &str,
        resume_token: &str,
        last_seq: u64,
        fallback: Auth,
    ) -> Result<(Self, Start), ClientError> {
        Self::open(url, fallback, Some((resume_token, last_seq)), &ConnectOptions::default()).await
    }

    async fn open(
        url: &str,
        auth: Auth,
        resume: Option<(&str, u64)>,
        options: &ConnectOptions,
    ) -> Result<(Self, Start), ClientError> {
        let mut query = Vec::new();
        if let Auth::Query(token) = &auth {
            query.push(format!("token={token}"));
        }
        if let Some((resume_token, last_seq)) = resume {
            query.push(format!("resume={resume_token}&last_seq={last_seq}"));
        }
        let url = if query.is_empty() {
            url.to_string()
        } else {
            format!("{url}{}{}", if url.contains('?') { '&' } else { '?' }, query.join("&"))
        };
        let (socket, _response) = within(DEFAULT_REPLY_TIMEOUT, "websocket handshake", options.open(url)).await??;
        let mut client = Self {
            socket,
            welcome: placeholder_welcome(),
            backlog: VecDeque::new(),
            next_id: 1,
            reply_timeout: DEFAULT_REPLY_TIMEOUT,
            last_seq: resume.map_or(0, |(_, last_seq)| last_seq),
            acked_seq: 0,
            sequence_errors: Vec::new(),
        };
        if let Auth::Message(token) = auth {
            client.send(Request::Auth { token }).await?;
        }
        let start = match client.read().await? {
            ServerMessage::Welcome(welcome) => {
                client.welcome = welcome;
                client.last_seq = 0;
                Start::Fresh
            }
            ServerMessage::Resumed(resumed) => {
                client.welcome = resumed.session;
                Start::Resumed { gap: resumed.gap, rooms: resumed.rooms }
            }
            ServerMessage::Error { code, message, .. } => return Err(ClientError::Server { code, message }),
            // A gateway that loses its standing tells every session to move, one that is
            // just starting too, whose `welcome` then never comes: it cannot serve now.
            ServerMessage::Reconnect { reason } => {
                let message = format!("told to reconnect before the session started ({reason})");
                return Err(ClientError::Server { code: ErrorCode::Unavailable, message });
            }
            other => return Err(ClientError::Unexpected(other.to_json())),
        };
        Ok((client, start))
    }

    pub fn welcome(&self) -> &Welcome {
        &self.welcome
    }

    pub fn peer_id(&self) -> &str {
        &self.welcome.peer_id
    }

    /// The token to resume this session with, if the server offers resume.
    pub fn resume_token(&self) -> Option<&str> {
        self.welcome.resume_token.as_deref()
    }

    /// The `seq` of the last message received.
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    /// Every sequence number that was not the one expected: a duplicate or a gap. A
    /// correct server over a correct resume leaves this empty.
    pub fn sequence_errors(&self) -> &[String] {
        &self.sequence_errors
    }

    /// Acknowledges everything received so far.
    pub async fn acknowledge(&mut self) -> Result<(), ClientError> {
        if self.last_seq > self.acked_seq {
            self.acked_seq = self.last_seq;
            let frame = RequestFrame { id: None, request: Request::Received { seq: self.last_seq } };
            self.socket.send(Message::text(frame.to_json())).await?;
        }
        Ok(())
    }

    async fn acknowledge_if_due(&mut self) -> Result<(), ClientError> {
        if self.last_seq - self.acked_seq >= ACK_EVERY { self.acknowledge().await } else { Ok(()) }
    }

    /// Closes without ending the session (close code 4000): the server keeps it for a
    /// resume, as if the connection had been lost.
    pub async fn close_for_resume(mut self) -> Result<(), ClientError> {
        let frame = CloseFrame { code: 4000.into(), reason: "reconnecting".into() };
        self.socket.close(Some(frame)).await?;
        Ok(())
    }

    /// Drops the connection without a close frame, as a network failure would.
    pub fn abandon(self) {
        drop(self);
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
        self.send(Request::signal(room, to, kind, &data)).await
    }

    /// Sends a broadcast without an id.
    pub async fn broadcast(&mut self, room: &str, data: serde_json::Value) -> Result<(), ClientError> {
        self.send(Request::broadcast(room, &data)).await
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
        self.acknowledge_if_due().await?;
        Ok(self.socket.send(message).await?)
    }

    /// The next message that is not a reply already consumed by [`Client::request`].
    pub async fn next_message(&mut self) -> Result<ServerMessage, ClientError> {
        if let Some(message) = self.backlog.pop_front() {
            return Ok(message);
        }
        self.acknowledge_if_due().await?;
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

    /// Takes the messages read but not returned yet (to carry them over to a new
    /// connection).
    pub fn take_backlog(&mut self) -> VecDeque<ServerMessage> {
        std::mem::take(&mut self.backlog)
    }

    /// A message that has already arrived, without waiting for one.
    pub async fn poll_message(&mut self) -> Result<Option<ServerMessage>, ClientError> {
        if let Some(message) = self.backlog.pop_front() {
            return Ok(Some(message));
        }
        // A zero timeout still polls the read once; the read is cancel-safe.
        match tokio::time::timeout(Duration::ZERO, self.read()).await {
            Ok(result) => result.map(Some),
            Err(_) => Ok(None),
        }
    }

    /// Reads one protocol message from the socket, checking and acknowledging its `seq`.
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
                    let sequenced: Sequenced =
                        serde_json::from_str(&text).map_err(|e| ClientError::Unexpected(format!("{e}: {text}")))?;
                    // Nothing else is awaited here once a message is parsed, so that a
                    // cancelled read (poll_message) never loses one; acknowledgements go
                    // out with the next send or wait.
                    if let Some(seq) = sequenced.seq {
                        self.check_sequence(seq);
                    }
                    return Ok(sequenced.message);
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

impl Client {
    fn check_sequence(&mut self, seq: u64) {
        if seq != self.last_seq + 1 {
            let what = if seq <= self.last_seq { "duplicate or reordered" } else { "gap" };
            self.sequence_errors.push(format!("{what}: seq {seq} after {}", self.last_seq));
        }
        self.last_seq = self.last_seq.max(seq);
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
        resume_token: None,
        resume_window_ms: None,
    }
}
