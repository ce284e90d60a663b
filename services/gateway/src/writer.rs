//! The writing half of a connection, and the task that writes with it while there is
//! something to write: queued frames, pings, and at the end the close frame.
//!
//! No task waits on an idle connection's behalf: the [`Writer`] is parked in the
//! connection's send queue, and a frame or ping queued there starts a task ([`drain`])
//! that writes until the queue is empty and parks the writer again. An idle connection
//! costs a parked writer, not a task of its own (0.8 KiB, docs/benchmarks.md).

use std::sync::Arc;
use std::task::{Context, Waker};
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use bytes::Bytes;
use futures_util::SinkExt;
use futures_util::stream::SplitSink;
use protocol::CloseCode;

use crate::metrics;
use crate::outbound::{Closer, Outbox, PeerSender};

type Sink = SplitSink<WebSocket, Message>;

/// How long the close frame may take to go out before the socket is simply dropped.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);
/// The same for a client cut off for reading too slowly: its socket buffers are full,
/// so the close frame only goes out once it reads again; the longer wait gives it the
/// chance to learn why (4008) rather than see a broken connection.
const SLOW_CONSUMER_CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// A connection's socket (its writing half) and the queue that feeds it.
pub struct Writer {
    sink: Sink,
    outbox: Outbox,
    closer: Arc<Closer>,
}

impl Writer {
    pub fn new(sink: Sink, outbox: Outbox, closer: Arc<Closer>) -> Self {
        Self { sink, outbox, closer }
    }

    /// Lets go of the writing task's waker. tokio-tungstenite keeps the waker of the
    /// last task that wrote until another one writes, and a finished task's memory
    /// stays allocated as long as a waker of it does: half a kilobyte for every idle
    /// connection. A flush polled with a waker that does nothing takes its place (after
    /// a completed flush there is nothing to flush: it is over at once).
    fn forget_task(&mut self) {
        let _ = self.sink.poll_flush_unpin(&mut Context::from_waker(Waker::noop()));
    }

    /// Writes the ping asked for and the queued frames, then flushes once.
    async fn write_queued(&mut self) -> Result<(), axum::Error> {
        let mut written = false;
        if self.outbox.take_ping() {
            self.sink.feed(Message::Ping(Bytes::new())).await?;
            written = true;
        }
        while let Ok(frame) = self.outbox.try_recv() {
            metrics::message_sent(&frame);
            self.sink.feed(Message::Text(frame)).await?;
            written = true;
        }
        if written { self.sink.flush().await } else { Ok(()) }
    }
}

/// Writes what is queued until nothing is, then parks the writer. Every write races
/// the close request, so a client that stopped reading (its TCP window full) cannot
/// hold the task: its queue fills, it is cut off, and the blocked write is abandoned;
/// what is still queued is left to [`close`].
pub async fn drain(mut writer: Writer) {
    let closer = writer.closer.clone();
    let parking = writer.outbox.parking();
    loop {
        let written = tokio::select! {
            biased;
            _ = closer.closed() => {
                parking.park(writer);
                return;
            }
            written = writer.write_queued() => written,
        };
        if written.is_err() {
            // The socket is gone; the reader sees the same and ends the session.
            closer.close(CloseCode::Normal);
        }
        if closer.code().is_some() {
            return parking.park(writer);
        }
        writer.forget_task();
        match parking.park_or_resume(writer) {
            Some(again) => writer = again,
            None => return,
        }
    }
}

/// Takes the writer back once no task writes with it, sends what is still queued
/// (except to a client cut off for not reading) and the close frame, within a time
/// limit. The connection's close has been requested.
pub async fn close(sender: &PeerSender) {
    let code = sender.closer().code().unwrap_or(CloseCode::Normal);
    let close_timeout = if code == CloseCode::SlowConsumer { SLOW_CONSUMER_CLOSE_TIMEOUT } else { CLOSE_TIMEOUT };
    let _ = tokio::time::timeout(close_timeout, async {
        let mut writer = sender.detach().await;
        // What is already queued (say, the error that explains the close) still goes
        // out, except to a client that is being dropped for not reading.
        if code != CloseCode::SlowConsumer {
            while let Ok(frame) = writer.outbox.try_recv() {
                metrics::message_sent(&frame);
                writer.sink.feed(Message::Text(frame)).await?;
            }
        }
        let frame = CloseFrame { code: code.code(), reason: code.reason().into() };
        writer.sink.send(Message::Close(Some(frame))).await
    })
    .await;
}
