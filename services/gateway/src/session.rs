//! A connected, authenticated client: reads its requests one at a time and answers
//! them. Requests from one client are handled in order, so a client may pipeline
//! (`join` then `signal` without waiting) and still get the order it sent.

use std::sync::Arc;

use axum::extract::ws::{Message, WebSocket};
use common::telemetry::{FLOW, propagation};
use futures_util::StreamExt;
use futures_util::stream::SplitStream;
use protocol::{CloseCode, ErrorCode, Request, RequestFrame, RequestId, ServerMessage};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite;

use crate::Gateway;
use crate::auth::Identity;
use crate::limits::inbound::{InboundLimiter, Limit, Verdict};
use crate::outbound::PeerSender;
use crate::registry::PeerId;
use crate::requests::handling::Handling;
use crate::requests::in_progress::InProgress;
use crate::requests::{self, RequestError};
use crate::{metrics, render};

pub struct Session {
    pub gateway: Arc<Gateway>,
    pub peer_id: PeerId,
    pub identity: Identity,
    pub sender: PeerSender,
}

/// How a connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// The client closed with 1000, broke the protocol (1002, 1007, 1009) or kept
    /// exceeding its rate limit (1008): the session ends.
    Goodbye,
    /// Anything else (lost, cut off for reading too slowly, idle, moved, told to
    /// reconnect): the session is kept for a resume.
    Lost,
}

impl Ending {
    /// A server-side close for a broken protocol ends the session like a goodbye.
    fn after(close: Option<CloseCode>) -> Self {
        match close {
            Some(
                CloseCode::TooLarge | CloseCode::ProtocolError | CloseCode::InvalidData | CloseCode::PolicyViolation,
            ) => Self::Goodbye,
            _ => Self::Lost,
        }
    }
}

impl Session {
    /// Reads and handles requests until the connection ends. On return a close code has
    /// been requested; requests may still be in progress (their publishes are on their
    /// way: see how they went with [`InProgress::finish`]).
    pub async fn run<'a>(&'a self, stream: &mut SplitStream<WebSocket>, in_progress: &mut InProgress<'a>) -> Ending {
        let closer = self.sender.closer().clone();
        let idle_timeout = self.gateway.config.ws.idle_timeout;
        let ping_every = self.gateway.config.ws.ping_interval;
        let mut limiter = InboundLimiter::new(&self.gateway.config.limits, Instant::now());
        // Once the gateway drains: when to stop reading what the client still sends.
        let mut moving_by: Option<Instant> = None;
        let mut heard_at = Instant::now();
        let mut ping_at = heard_at + ping_every;
        loop {
            let deadline = moving_by.unwrap_or(heard_at + idle_timeout);
            // The pings are timed here: the writer has no task of its own while there
            // is nothing to write (writer.rs).
            let wake = if moving_by.is_some() { deadline } else { deadline.min(ping_at) };
            let next = tokio::select! {
                biased;
                _ = closer.closed() => return Ending::Lost,
                _ = self.gateway.shutdown.cancelled(), if moving_by.is_none() => {
                    self.tell_to_move("draining");
                    moving_by = Some(Instant::now() + self.gateway.config.drain.client_grace);
                    continue;
                }
                _ = in_progress.completed(), if !in_progress.is_empty() => continue,
                next = tokio::time::timeout_at(wake, stream.next()), if !in_progress.is_full() => next,
            };
            let message = match next {
                Err(_elapsed) if Instant::now() < deadline => {
                    self.sender.ping();
                    ping_at = Instant::now() + ping_every;
                    continue;
                }
                Err(_elapsed) if moving_by.is_some() => {
                    closer.close(CloseCode::GoingAway);
                    return Ending::Lost;
                }
                Err(_elapsed) => {
                    closer.close(CloseCode::IdleTimeout);
                    return Ending::Lost;
                }
                Ok(None) => {
                    closer.close(CloseCode::Normal);
                    return Ending::Lost;
                }
                Ok(Some(Err(error))) => {
                    closer.close(close_code_for(error));
                    return Ending::after(closer.code());
                }
                Ok(Some(Ok(message))) => message,
            };
            heard_at = Instant::now();
            let verdict = match &message {
                Message::Close(_) => Verdict::Accept,
                other => limiter.check(frame_len(other), Instant::now()),
            };
            match verdict {
                Verdict::Accept => {}
                Verdict::Refuse(limit) => {
                    self.refuse_over_limit(&message, limit);
                    continue;
                }
                Verdict::Close(limit) => {
                    self.refuse_over_limit(&message, limit);
                    closer.close(CloseCode::PolicyViolation);
                    return Ending::after(closer.code());
                }
            }
            match message {
                Message::Text(text) => self.handle(&text, in_progress).await,
                Message::Binary(bytes) => {
                    metrics::message_received("binary", bytes.len());
                    self.reply_error(
                        None,
                        ErrorCode::BadRequest,
                        "binary frames are not supported: send JSON text frames",
                    )
                }
                Message::Close(frame) => {
                    closer.close(CloseCode::Normal);
                    let goodbye = frame.is_some_and(|frame| frame.code == CloseCode::Normal.code());
                    return if goodbye { Ending::Goodbye } else { Ending::Lost };
                }
                Message::Ping(_) | Message::Pong(_) => {}
            }
        }
    }

    /// Asks the client to reconnect elsewhere and resume. Not numbered: it concerns this
    /// connection, not the session.
    pub fn tell_to_move(&self, reason: &str) {
        self.sender.send(render::reconnect(reason));
    }

    /// Parses a request and handles it as far as it goes without waiting; the future
    /// returned is the rest (see [`Handling`]). Only signals and broadcasts without an
    /// `id` overlap (see [`InProgress`]): they join the requests in progress, and what
    /// is returned is over at once. Any other request waits for those before it, and is
    /// waited for.
    fn handle<'a: 'p, 'p>(&'a self, text: &str, in_progress: &'p mut InProgress<'a>) -> Handling<'p> {
        let frame = match RequestFrame::parse(text) {
            Ok(frame) => frame,
            Err(error) => {
                metrics::message_received("invalid", text.len());
                self.reply_error(error.id, error.code, error.message);
                return Handling::done(self);
            }
        };
        metrics::message_received(frame.request.type_name(), text.len());
        if InProgress::may_overlap(&frame) {
            in_progress.add(self.begin(frame));
            return Handling::done(self);
        }
        if in_progress.is_empty() {
            return self.begin(frame);
        }
        // Behind a burst: rare, and boxed, so that neither the frame nor the wait is part
        // of every connection's task.
        let frame = Box::new(frame);
        Handling::boxed(self, async move {
            in_progress.finish().await;
            self.begin(*frame).await;
        })
    }

    /// Handles a parsed request as far as it goes without waiting; the future returned is
    /// the rest (see [`Handling`]).
    fn begin(&self, frame: RequestFrame) -> Handling<'_> {
        let span = match &frame.request {
            Request::Join { room, .. } => flow_span("join", &self.peer_id, room),
            Request::Signal { room, .. } => flow_span("signal", &self.peer_id, room),
            Request::Broadcast { room, .. } => flow_span("broadcast", &self.peer_id, room),
            _ => tracing::Span::none(),
        };
        let mut id = frame.id.clone();
        // In the request's span, so that what is logged meanwhile carries its trace.
        let begun =
            span.in_scope(|| requests::begin(self, frame).map_err(|error| self.refuse_request(id.take(), error)).ok());
        match begun {
            Some(pending) => Handling::new(self, id, span, pending),
            None => Handling::done(self),
        }
    }

    /// Answers a refused request with an `error` echoing its id.
    pub fn refuse_request(&self, id: Option<RequestId>, error: RequestError) {
        tracing::debug!(peer = %self.peer_id, code = %error.code, reason = error.message, "request refused");
        self.reply_error(id, error.code, error.message);
    }

    /// Sends a reply, numbered and kept like every message of the session.
    pub fn reply(&self, message: &ServerMessage) {
        self.gateway.registry.send(&self.peer_id, &render::message(message));
    }

    /// Drops a message over the connection's rate limit, answering `rate_limited` (with
    /// the request's id, so that a client waiting for the reply gets it).
    fn refuse_over_limit(&self, message: &Message, limit: Limit) {
        metrics::rate_limited(limit);
        let limits = &self.gateway.config.limits;
        let id = match message {
            Message::Text(text) => RequestFrame::peek_id(text),
            Message::Binary(_) => None,
            // Control frames get no answer.
            Message::Ping(_) | Message::Pong(_) | Message::Close(_) => return,
        };
        let explanation = match limit {
            Limit::Messages => format!("more than {} messages a second", limits.messages_per_second),
            Limit::Bytes => format!("more than {} bytes a second", limits.bytes_per_second),
        };
        self.reply_error(id, ErrorCode::RateLimited, format!("rate limit exceeded: {explanation}; slow down"));
    }

    fn reply_error(&self, id: Option<RequestId>, code: ErrorCode, message: impl Into<String>) {
        metrics::error_sent(code);
        self.reply(&ServerMessage::error(id, code, message));
    }
}

/// The span of one request that crosses the cluster (see `common::telemetry::FLOW`):
/// the root of its trace, named after the request. Its `trace_id` field puts the trace
/// id in the log lines written inside it.
fn flow_span(request: &'static str, peer: &str, room: &str) -> tracing::Span {
    let span = match request {
        "join" => tracing::info_span!(target: FLOW, "join", peer, room, trace_id = tracing::field::Empty),
        "signal" => tracing::info_span!(target: FLOW, "signal", peer, room, trace_id = tracing::field::Empty),
        _ => tracing::info_span!(target: FLOW, "broadcast", peer, room, trace_id = tracing::field::Empty),
    };
    if let Some(trace_id) = propagation::trace_id(&span) {
        span.record("trace_id", trace_id);
    }
    span
}

/// What a frame counts against the byte rate: its payload. Control frames count too: a
/// flood of pings costs the gateway as much as one of requests.
fn frame_len(message: &Message) -> usize {
    match message {
        Message::Text(text) => text.len(),
        Message::Binary(bytes) | Message::Ping(bytes) | Message::Pong(bytes) => bytes.len(),
        Message::Close(_) => 0,
    }
}

/// The close code for a failed read. A connection reset is a lost connection, not a
/// protocol violation.
fn close_code_for(error: axum::Error) -> CloseCode {
    use tungstenite::error::ProtocolError;
    match error.into_inner().downcast::<tungstenite::Error>().map(|e| *e) {
        Ok(tungstenite::Error::Capacity(_)) => CloseCode::TooLarge,
        Ok(tungstenite::Error::Utf8(_)) => CloseCode::InvalidData,
        Ok(tungstenite::Error::Protocol(ProtocolError::ResetWithoutClosingHandshake)) => CloseCode::Normal,
        Ok(tungstenite::Error::Protocol(_)) => CloseCode::ProtocolError,
        _ => CloseCode::Normal,
    }
}
