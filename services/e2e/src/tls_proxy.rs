//! A TLS-terminating proxy in front of a gateway, as an ingress or load balancer would
//! be: browsers speak https/wss to it, it speaks plain HTTP/WebSocket to the gateway.
//! Its certificate is self-signed, made at start; browsers are told to accept it.
//!
//! It can also move to another gateway, cutting every open connection on the way, as
//! a load balancer does when the gateway behind it dies: the reconnect tests use that.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

pub struct TlsProxy {
    addr: SocketAddr,
    backend: Arc<Mutex<SocketAddr>>,
    /// Bumped to cut every open connection.
    generation: watch::Sender<u64>,
    task: JoinHandle<()>,
}

impl TlsProxy {
    /// Listens on a free loopback port and forwards every connection to `backend`.
    pub async fn start(backend: SocketAddr) -> Self {
        let acceptor = acceptor();
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind a loopback port");
        let addr = listener.local_addr().expect("local address");
        let backend = Arc::new(Mutex::new(backend));
        let (generation, _) = watch::channel(0);
        let task = tokio::spawn(serve(listener, acceptor, backend.clone(), generation.clone()));
        Self { addr, backend, generation, task }
    }

    /// `https://127.0.0.1:<port>`.
    pub fn https_url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// Sends new connections to `backend` and cuts the open ones.
    pub fn switch_backend(&self, backend: SocketAddr) {
        *self.backend.lock().expect("backend lock") = backend;
        self.generation.send_modify(|generation| *generation += 1);
    }
}

impl Drop for TlsProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn acceptor() -> TlsAcceptor {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_string(), "127.0.0.1".to_string()])
        .expect("a self-signed certificate");
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(certified.key_pair.serialize_der()));
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_no_client_auth()
        .with_single_cert(vec![certified.cert.der().clone()], key)
        .expect("a certificate and its key");
    TlsAcceptor::from(Arc::new(config))
}

async fn serve(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    backend: Arc<Mutex<SocketAddr>>,
    generation: watch::Sender<u64>,
) {
    while let Ok((client, _)) = listener.accept().await {
        let acceptor = acceptor.clone();
        let target = *backend.lock().expect("backend lock");
        let mut cut = generation.subscribe();
        cut.mark_unchanged();
        tokio::spawn(async move {
            let Ok(mut tls) = acceptor.accept(client).await else { return };
            let Ok(mut upstream) = TcpStream::connect(target).await else { return };
            // Dropping both streams when cut closes them without a WebSocket close
            // frame: to the browser it looks like a lost connection (1006).
            tokio::select! {
                _ = tokio::io::copy_bidirectional(&mut tls, &mut upstream) => {}
                _ = cut.changed() => {}
            }
        });
    }
}
