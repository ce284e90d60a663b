//! The writing half of a connection: drains the peer's queue into the socket, pings,
//! and sends the close frame when the connection ends.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use bytes::Bytes;
use futures_util::SinkExt;
use futures_util::stream::SplitSink;
use protocol::CloseCode;

use tokio::time::{Instant, MissedTickBehavior, interval_at};

use crate::metrics;
use crate::outbound::{Closer, Frame, Outbox};

type Sink = SplitSink<WebSocket, Message>;

/// How long the close frame may take to go out before the socket is simply dropped.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);
/// The same for a client cut off for reading too slowly: its socket buffers are full,
/// so the close frame only goes out once it reads again; the longer wait gives it the
/// chance to learn why (4008) rather than see a broken connection.
const SLOW_CONSUMER_CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// Runs until `closer` fires or the socket breaks. Every socket write races the close
/// request, so a client that stopped reading (its TCP window full) cannot hold the task:
/// its queue fills, it is cut off, and the blocked write is abandoned.
pub async fn run(mut sink: Sink, mut queue: Outbox, closer: Arc<Closer>, ping_every: Duration) {
    let mut ping = interval_at(Instant::now() + ping_every, ping_every);
    ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        let written = tokio::select! {
            biased;
            _ = closer.closed() => break,
            frame = queue.recv() => match frame {
                Some(frame) => tokio::select! {
                    written = write_batch(&mut sink, &mut queue, frame) => written,
                    _ = closer.closed() => break,
                },
                None => break,
            },
            _ = ping.tick() => tokio::select! {
                written = sink.send(Message::Ping(Bytes::new())) => written,
                _ = closer.closed() => break,
            },
        };
        if written.is_err() {
            // The socket is gone; the reader sees the same and ends the session.
            closer.close(CloseCode::Normal);
            return;
        }
    }
    let code = closer.code().unwrap_or(CloseCode::Normal);
    let close_timeout = if code == CloseCode::SlowConsumer { SLOW_CONSUMER_CLOSE_TIMEOUT } else { CLOSE_TIMEOUT };
    let _ = tokio::time::timeout(close_timeout, async {
        // What is already queued (say, the error that explains the close) still goes
        // out, except to a client that is being dropped for not reading.
        if code != CloseCode::SlowConsumer {
            while let Ok(frame) = queue.try_recv() {
                metrics::message_sent(&frame);
                sink.feed(Message::Text(frame)).await?;
            }
        }
        let frame = CloseFrame { code: code.code(), reason: code.reason().into() };
        sink.send(Message::Close(Some(frame))).await
    })
    .await;
}

/// Writes `first` and whatever else is already queued, then flushes once.
async fn write_batch(sink: &mut Sink, queue: &mut Outbox, first: Frame) -> Result<(), axum::Error> {
    metrics::message_sent(&first);
    sink.feed(Message::Text(first)).await?;
    while let Ok(frame) = queue.try_recv() {
        metrics::message_sent(&frame);
        sink.feed(Message::Text(frame)).await?;
    }
    sink.flush().await
}
