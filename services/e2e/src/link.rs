//! A TCP link to one backend that can be cut and healed, as a network partition would
//! be: while cut, nothing gets through in either direction, but no connection is reset
//! (bytes wait, as TCP would keep retransmitting them) and new connections are accepted
//! and then hear nothing. Healing lets everything still open flow on.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub struct Link {
    addr: SocketAddr,
    cut: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Link {
    /// A link on a free loopback port to `backend`, healed.
    pub async fn start(backend: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind a loopback port");
        let addr = listener.local_addr().expect("local address");
        let (cut, _) = watch::channel(false);
        let task = tokio::spawn(serve(listener, backend, cut.clone()));
        Self { addr, cut, task }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn cut(&self) {
        self.cut.send_replace(true);
    }

    pub fn heal(&self) {
        self.cut.send_replace(false);
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(listener: TcpListener, backend: SocketAddr, cut: watch::Sender<bool>) {
    while let Ok((client, _)) = listener.accept().await {
        let cut = cut.subscribe();
        tokio::spawn(async move {
            if until_healed(cut.clone()).await.is_err() {
                return;
            }
            let Ok(upstream) = TcpStream::connect(backend).await else { return };
            let (client_read, client_write) = client.into_split();
            let (upstream_read, upstream_write) = upstream.into_split();
            tokio::select! {
                _ = pump(client_read, upstream_write, cut.clone()) => {}
                _ = pump(upstream_read, client_write, cut) => {}
            }
        });
    }
}

/// Copies one direction, holding each chunk while the link is cut.
async fn pump(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, cut: watch::Receiver<bool>) {
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        let read = match from.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(read) => read,
        };
        if until_healed(cut.clone()).await.is_err() || to.write_all(&buffer[..read]).await.is_err() {
            return;
        }
    }
}

async fn until_healed(mut cut: watch::Receiver<bool>) -> Result<(), watch::error::RecvError> {
    cut.wait_for(|is_cut| !is_cut).await.map(drop)
}
