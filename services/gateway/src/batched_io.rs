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
//! Both buffers are freed as soon as they are empty: an idle connection carries one
//! null pointer.

use std::cell::RefCell;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Most bytes one read takes from the socket on behalf of a smaller read.
pub const READ_GULP: usize = 16 * 1024;
/// Bytes gathered before a write goes out without waiting for the flush.
pub const WRITE_BATCH: usize = 16 * 1024;

thread_local! {
    /// Where a gulp lands before the caller's part is copied out. One per thread: it is
    /// only used inside one `poll_read`.
    static SCRATCH: RefCell<Box<[u8]>> = RefCell::new(vec![0; READ_GULP].into_boxed_slice());
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

    /// Frees the buffers once nothing waits in them.
    fn release_if_empty(&mut self) {
        if self.pending.as_ref().is_some_and(|p| p.unread().is_empty() && p.written.is_empty()) {
            self.pending = None;
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
            // Not kept: a burst's capacity would stay with an idle connection.
            pending.written = Vec::new();
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
                pending.read = Vec::new();
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
                pending.read = read[n..].to_vec();
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
        this.pending.get_or_insert_with(Box::default).written.extend_from_slice(data);
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
