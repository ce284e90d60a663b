//! A TCP load balancer in front of gateways, as a Kubernetes Service would be: each new
//! connection goes to the next backend in turn. A backend taken out (a pod turning
//! unready) gets no new connections; the ones it has are left alone.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

pub struct Balancer {
    addr: SocketAddr,
    backends: Arc<Mutex<Backends>>,
    task: JoinHandle<()>,
}

#[derive(Default)]
struct Backends {
    list: Vec<SocketAddr>,
    next: usize,
}

impl Balancer {
    pub async fn start(backends: Vec<SocketAddr>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind a loopback port");
        let addr = listener.local_addr().expect("local address");
        let backends = Arc::new(Mutex::new(Backends { list: backends, next: 0 }));
        let task = tokio::spawn(serve(listener, backends.clone()));
        Self { addr, backends, task }
    }

    /// `ws://<balancer>/ws`.
    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    pub fn add(&self, backend: SocketAddr) {
        self.backends.lock().expect("backends").list.push(backend);
    }

    /// Sends no new connections to `backend`.
    pub fn remove(&self, backend: SocketAddr) {
        self.backends.lock().expect("backends").list.retain(|b| *b != backend);
    }
}

impl Drop for Balancer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(listener: TcpListener, backends: Arc<Mutex<Backends>>) {
    while let Ok((mut client, _)) = listener.accept().await {
        let target = {
            let mut backends = backends.lock().expect("backends");
            if backends.list.is_empty() {
                continue;
            }
            backends.next = (backends.next + 1) % backends.list.len();
            backends.list[backends.next]
        };
        tokio::spawn(async move {
            if let Ok(mut upstream) = TcpStream::connect(target).await {
                let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
            }
        });
    }
}
