//! A client's TCP stream, read in gulps and written in batches, with no buffer of its
//! own while the connection is idle.
//!
//! The WebSocket layer reads `ws.read_buffer_bytes` (512) at a time and writes every
//! frame the moment it is given one. For a client sending a burst (an offer and a
//! dozen candidates) that is a system call per 512 bytes in, and for one receiving a
//! burst a system call and a TCP segment per frame out: the largest single cost of a
//! relayed message (docs/benchmarks.md). Larger WebSocket buffers would fix both, but
//! they stay allocated for the connection's whole life, and most connections are idle.
//!
//! So the gateway's sockets sit on this instead:
//! - a small read takes up to [`READ_GULP`] bytes into the thread's scratch buffer, and
//!   what the caller did not ask for waits in a buffer allocated for it, until read;
//! - writes are gathered until the caller flushes (the writer flushes once per batch
//!   of queued frames), or until [`WRITE_BATCH`] bytes are waiting, and go out in one
//!   system call.
//!
//! Both buffers are given up as soon as they are empty: an idle connection carries one
//! null pointer. They go back to a few spares kept per thread, so that the next burst
//! on that thread starts with a buffer of full size instead of growing one from
//! nothing (an allocation and a copy at each doubling) and freeing it after.

use std::cell::RefCell;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Most bytes one read takes from the socket on behalf of a smaller read.
pub const READ_GULP: usize = 16 * 1024;
/// Bytes gathered before a write goes out without waiting for the flush.
pub const WRITE_BATCH: usize = 16 * 1024;

/// Emptied buffers kept per thread for the next bursts: at most this many, each of at
/// most [`SPARE_CAPACITY_MAX`] bytes (usually 512 KiB a thread, 1 MiB at worst).
const SPARES_KEPT: usize = 16;
/// A batch, plus the one write that may carry it past [`WRITE_BATCH`].
const SPARE_CAPACITY: usize = 2 * WRITE_BATCH;
const SPARE_CAPACITY_MAX: usize = 2 * SPARE_CAPACITY;

thread_local! {
    /// Where a gulp lands before the caller's part is copied out. One per thread: it is
    /// only used inside one `poll_read`.
    static SCRATCH: RefCell<Box<[u8]>> = RefCell::new(vec![0; READ_GULP].into_boxed_slice());
    static SPARES: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
}

/// An empty buffer of [`SPARE_CAPACITY`] (or more), from this thread's spares if any.
fn take_spare() -> Vec<u8> {
    SPARES
        .try_with(|spares| spares.borrow_mut().pop())
        .ok()
        .flatten()
        .unwrap_or_else(|| Vec::with_capacity(SPARE_CAPACITY))
}

/// Keeps an emptied buffer for the next burst on this thread, unless enough are kept
/// or it grew unusually large (a frame far beyond a batch).
fn give_back(mut buffer: Vec<u8>) {
    if buffer.capacity() < SPARE_CAPACITY || buffer.capacity() > SPARE_CAPACITY_MAX {
        return;
    }
    buffer.clear();
    // At thread exit the spares may already be gone: then the buffer is simply freed.
    let _ = SPARES.try_with(|spares| {
        let mut spares = spares.borrow_mut();
        if spares.len() < SPARES_KEPT {
            spares.push(buffer);
        }
    });
}

/// A stream read in gulps and written in batches (see the module's documentation).
pub struct BatchedIo<S> {
    inner: S,
    /// Allocated only while bytes wait to be read or written.
    pending: Option<Box<Pending>>,
}

#[derive(Default)]
struct Pending {
    /// Read from the socket but not yet by the caller: `read[read_from..]`.
    read: Vec<u8>,
    read_from: usize,
    /// Written by the caller but not yet to the socket.
    written: Vec<u8>,
}

impl Pending {
    fn unread(&self) -> &[u8] {
        &self.read[self.read_from..]
    }
}

impl<S> BatchedIo<S> {
    pub fn new(inner: S) -> Self {
        Self { inner, pending: None }
    }

    /// Gives up the buffers once nothing waits in them.
    fn release_if_empty(&mut self) {
        if let Some(pending) = self.pending.take_if(|p| p.unread().is_empty() && p.written.is_empty()) {
            give_back(pending.read);
            give_back(pending.written);
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> BatchedIo<S> {
    /// Writes everything gathered to the socket.
    fn poll_write_out(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let Some(pending) = self.pending.as_mut() else { return Poll::Ready(Ok(())) };
        let mut sent = 0;
        let result = loop {
            if sent == pending.written.len() {
                break Poll::Ready(Ok(()));
            }
            match Pin::new(&mut self.inner).poll_write(cx, &pending.written[sent..]) {
                Poll::Ready(Ok(0)) => break Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => sent += n,
                Poll::Ready(Err(error)) => break Poll::Ready(Err(error)),
                Poll::Pending => break Poll::Pending,
            }
        };
        pending.written.drain(..sent);
        if pending.written.is_empty() {
            // Not kept here: a burst's capacity would stay with an idle connection.
            give_back(std::mem::take(&mut pending.written));
            self.release_if_empty();
        }
        result
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for BatchedIo<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if let Some(pending) = this.pending.as_mut().filter(|p| !p.unread().is_empty()) {
            let unread = pending.unread();
            let n = unread.len().min(buf.remaining());
            buf.put_slice(&unread[..n]);
            pending.read_from += n;
            if pending.unread().is_empty() {
                give_back(std::mem::take(&mut pending.read));
                pending.read_from = 0;
                this.release_if_empty();
            }
            return Poll::Ready(Ok(()));
        }
        if buf.remaining() >= READ_GULP {
            return Pin::new(&mut this.inner).poll_read(cx, buf);
        }
        SCRATCH.with_borrow_mut(|scratch| {
            let mut gulp = ReadBuf::new(scratch);
            ready!(Pin::new(&mut this.inner).poll_read(cx, &mut gulp))?;
            let read = gulp.filled();
            let n = read.len().min(buf.remaining());
            buf.put_slice(&read[..n]);
            if read.len() > n {
                let pending = this.pending.get_or_insert_with(Box::default);
                pending.read = take_spare();
                pending.read.extend_from_slice(&read[n..]);
                pending.read_from = 0;
            }
            Poll::Ready(Ok(()))
        })
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for BatchedIo<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if this.pending.as_ref().is_some_and(|p| p.written.len() >= WRITE_BATCH) {
            // Enough gathered: out with it before taking more, so that a client that
            // does not read holds at most a batch here (the rest waits in the queue).
            ready!(this.poll_write_out(cx))?;
        }
        let written = &mut this.pending.get_or_insert_with(Box::default).written;
        if written.capacity() == 0 {
            *written = take_spare();
        }
        written.extend_from_slice(data);
        Poll::Ready(Ok(data.len()))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_write_out(cx))?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_write_out(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    use super::*;

    const WAIT: Duration = Duration::from_secs(5);

    async fn pair() -> (BatchedIo<TcpStream>, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
        let (server, _) = listener.accept().await.unwrap();
        (BatchedIo::new(server), client)
    }

    /// A burst is taken in one read and handed out in small pieces, all of it, in
    /// order; once it is read, no buffer is left.
    #[tokio::test]
    async fn small_reads_get_a_whole_burst_in_order_and_keep_nothing_after() {
        let (mut server, mut client) = pair().await;
        let burst: Vec<u8> = (0..5_000u32).map(|i| (i % 251) as u8).collect();
        client.write_all(&burst).await.unwrap();
        let mut received = Vec::new();
        let mut piece = [0u8; 512];
        while received.len() < burst.len() {
            let n = tokio::time::timeout(WAIT, server.read(&mut piece)).await.expect("read").unwrap();
            assert!(n > 0, "the client did not close");
            received.extend_from_slice(&piece[..n]);
        }
        assert_eq!(received, burst);
        assert!(server.pending.is_none(), "nothing kept once read");
    }

    /// Writes wait for the flush and then arrive whole; an idle stream keeps no buffer.
    #[tokio::test]
    async fn writes_wait_for_the_flush() {
        let (mut server, mut client) = pair().await;
        server.write_all(b"first ").await.unwrap();
        server.write_all(b"second").await.unwrap();
        assert_eq!(server.pending.as_ref().map(|p| p.written.len()), Some(12), "held until the flush");
        server.flush().await.unwrap();
        assert!(server.pending.is_none(), "the batch is freed once written");
        let mut received = [0u8; 12];
        tokio::time::timeout(WAIT, client.read_exact(&mut received)).await.expect("read").unwrap();
        assert_eq!(&received, b"first second");
    }

    /// A burst's buffer goes back to the thread's spares once written, and the next
    /// burst starts in it at full size instead of growing one of its own.
    #[tokio::test]
    async fn the_next_burst_reuses_the_last_ones_buffer() {
        let (mut server, mut client) = pair().await;
        server.write_all(b"first").await.unwrap();
        let first = server.pending.as_ref().map(|p| (p.written.as_ptr(), p.written.capacity()));
        assert!(first.is_some_and(|(_, capacity)| capacity >= SPARE_CAPACITY), "a full-size buffer at once");
        server.flush().await.unwrap();
        assert!(server.pending.is_none(), "nothing kept by the idle stream");
        server.write_all(b"second").await.unwrap();
        let second = server.pending.as_ref().map(|p| p.written.as_ptr());
        assert_eq!(second, first.map(|(pointer, _)| pointer), "the same buffer again");
        server.flush().await.unwrap();
        let mut received = [0u8; 11];
        tokio::time::timeout(WAIT, client.read_exact(&mut received)).await.expect("read").unwrap();
        assert_eq!(&received, b"firstsecond");
    }

    /// More than a batch goes out without a flush, so what waits here stays bounded.
    #[tokio::test]
    async fn a_full_batch_goes_out_without_a_flush() {
        let (mut server, mut client) = pair().await;
        let chunk = vec![7u8; 1024];
        for _ in 0..(WRITE_BATCH / chunk.len() + 1) {
            server.write_all(&chunk).await.unwrap();
        }
        let mut received = vec![0u8; WRITE_BATCH];
        tokio::time::timeout(WAIT, client.read_exact(&mut received)).await.expect("a batch arrives").unwrap();
        assert!(received.iter().all(|&b| b == 7));
    }
}
