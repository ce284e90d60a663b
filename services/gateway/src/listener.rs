//! Accepts TCP connections and serves the gateway's HTTP on them, in place of
//! `axum::serve`, which neither limits nor times out connections that never finish
//! their request:
//! - TLS when configured (`tls.cert_file`, `tls.key_file`);
//! - a deadline for the TLS handshake and the request headers (`ws.handshake_timeout`),
//!   so a client that opens sockets and trickles bytes (slowloris) loses them;
//! - a cap on connections still in their HTTP phase (`limits.max_http_connections`): beyond,
//!   new sockets are closed at once. Upgraded WebSockets leave the HTTP phase and count
//!   against `limits.max_connections` instead.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::extract::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio_rustls::TlsAcceptor;
use tokio_util::either::Either;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use crate::batched_io::BatchedIo;
use crate::metrics;

/// How the listener treats connections before they are upgraded.
#[derive(Clone)]
pub struct Settings {
    pub tls: Option<TlsAcceptor>,
    pub handshake_timeout: Duration,
    pub max_http_connections: usize,
}

/// Serves `app` on `listener` until `shutdown` completes, then stops accepting, lets
/// each connection finish its request, and returns once all have. (Upgraded sockets are
/// the gateway's own business by then: see `drain`.)
pub async fn serve(listener: TcpListener, app: Router, settings: Settings, shutdown: impl Future<Output = ()>) {
    let http_connections = Arc::new(Semaphore::new(settings.max_http_connections));
    let (stopping, stop) = watch::channel(false);
    let connections = TaskTracker::new();
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors, say: accepting again at once would spin.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let Ok(slot) = http_connections.clone().try_acquire_owned() else {
            metrics::upgrade_refused("http_connections");
            continue;
        };
        // Signaling is small messages that must go out at once: without TCP_NODELAY a
        // frame written while the previous one is unacknowledged waits for the peer's
        // delayed ACK (40 ms on Linux).
        if let Err(error) = tcp.set_nodelay(true) {
            tracing::debug!(%error, "could not set TCP_NODELAY");
        }
        connections.spawn(serve_connection(tcp, peer, app.clone(), settings.clone(), slot, stop.clone()));
    }
    let _ = stopping.send(true);
    connections.close();
    connections.wait().await;
}

/// One TCP connection: TLS, then HTTP until it closes or is upgraded.
async fn serve_connection(
    tcp: TcpStream,
    peer: SocketAddr,
    app: Router,
    settings: Settings,
    _slot: OwnedSemaphorePermit,
    mut stop: watch::Receiver<bool>,
) {
    // Read in gulps and written in batches, under TLS too (whose records then leave
    // together at the flush).
    let tcp = BatchedIo::new(tcp);
    let io = match &settings.tls {
        None => Either::Left(tcp),
        Some(acceptor) => match tokio::time::timeout(settings.handshake_timeout, acceptor.accept(tcp)).await {
            // Boxed: a TLS stream is about a kilobyte, and hyper keeps the stream in a
            // box of its own after the upgrade, sized for the larger variant: unboxed,
            // every plain connection would carry a TLS stream's worth of unused memory.
            Ok(Ok(tls)) => Either::Right(Box::new(tls)),
            Ok(Err(error)) => return tracing::debug!(%peer, %error, "TLS handshake failed"),
            Err(_) => return tracing::debug!(%peer, "TLS handshake timed out"),
        },
    };
    // The client's address, for the limits counted per address.
    let service = tower::service_fn(move |mut request: Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(peer));
        let app = app.clone();
        app.oneshot(request)
    });
    // HTTP/1.1 only: WebSockets upgrade over it, and HTTP/2 would bring its own ways of
    // holding a connection open without a header deadline.
    let mut builder = Builder::new(TokioExecutor::new()).http1_only();
    builder.http1().timer(TokioTimer::new()).header_read_timeout(settings.handshake_timeout);
    let connection = builder.serve_connection_with_upgrades(TokioIo::new(io), TowerToHyperService::new(service));
    tokio::pin!(connection);
    tokio::select! {
        result = connection.as_mut() => return log_end(peer, result),
        _ = stop.wait_for(|stopping| *stopping) => connection.as_mut().graceful_shutdown(),
    }
    log_end(peer, connection.await)
}

fn log_end(peer: SocketAddr, result: Result<(), Box<dyn std::error::Error + Send + Sync>>) {
    if let Err(error) = result {
        tracing::debug!(%peer, %error, "HTTP connection ended with an error");
    }
}
