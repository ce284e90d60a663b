//! Does a Redis outage grow a gateway's memory? Two gateway processes and a room
//! service; pairs of clients, one on each gateway, signal each other without pause; then
//! redis-server is killed for a while (every signal now needs the bus, which cannot
//! publish) and started again. The gateways' resident memory is sampled every second.
//!
//! The leases are longer than the outage, so the gateways keep their sessions and the
//! clients keep pushing (each signal is answered `unavailable`, which the sender reads):
//! what is measured is what piles up, not a reset. Redis comes back empty, so the
//! gateways then find their leases gone and drop their sessions.
//!
//! Bounded: fixed client count and phases, the whole run capped at 3 minutes.
//! Run: `cargo build --release --bins && cargo run --release -p e2e --example outage_memory`

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use e2e::processes::ProcessCluster;
use serde_json::json;

const PAIRS: usize = 200;
const BEFORE: Duration = Duration::from_secs(5);
const OUTAGE: Duration = Duration::from_secs(90);
const AFTER: Duration = Duration::from_secs(5);

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    tokio::time::timeout(Duration::from_secs(180), run()).await.expect("done within 3 minutes");
}

async fn run() {
    let env = [("GATEWAY_LEASE__TTL", "120s"), ("GATEWAY_LEASE__REFRESH", "2s")];
    let mut cluster = ProcessCluster::start(2, &env, "2s").await;
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for pair in 0..PAIRS {
        let room = format!("pair-{pair}");
        let mut a = cluster.connect(0, &format!("a{pair}"), &[&room]).await;
        let mut b = cluster.connect(1, &format!("b{pair}"), &[&room]).await;
        a.join(&room, None).await.unwrap();
        b.join(&room, None).await.unwrap();
        let b_id = b.peer_id().to_string();
        let (stop, sent) = (stop.clone(), sent.clone());
        // a sends, b reads; neither waits on the other, both stop on their own.
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let data = json!({"candidate": "candidate:1 1 udp 2122260223 127.0.0.1 40000 typ host"});
                let send = a.signal(&room, &b_id, "candidate", data);
                if matches!(tokio::time::timeout(Duration::from_millis(500), send).await, Ok(Ok(()))) {
                    sent.fetch_add(1, Ordering::Relaxed);
                }
                // Read (and so acknowledge) what came back: `unavailable` errors while
                // Redis is down.
                while let Ok(Some(_)) = a.poll_message().await {}
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }));
        // Until its connection goes, or it is aborted at the end.
        tasks.push(tokio::spawn(async move {
            b.set_reply_timeout(Duration::from_millis(500));
            loop {
                if matches!(b.next_message().await, Err(error) if error.is_connection_lost()) {
                    break;
                }
            }
        }));
    }

    println!("| t (s) | phase | gateway 0 RSS (MiB) | gateway 1 RSS (MiB) | signals sent so far |");
    println!("|---|---|---|---|---|");
    let started = tokio::time::Instant::now();
    let sample = |phase: &str, cluster: &ProcessCluster| {
        let rss = |index| cluster.gateway(index).resident_kib().unwrap_or_default() as f64 / 1024.0;
        println!(
            "| {:.0} | {phase} | {:.1} | {:.1} | {} |",
            started.elapsed().as_secs_f64(),
            rss(0),
            rss(1),
            sent.load(Ordering::Relaxed)
        );
    };
    for _ in 0..BEFORE.as_secs() {
        tokio::time::sleep(Duration::from_secs(1)).await;
        sample("before", &cluster);
    }
    cluster.redis.kill().await;
    for _ in 0..OUTAGE.as_secs() {
        tokio::time::sleep(Duration::from_secs(1)).await;
        sample("Redis down", &cluster);
    }
    cluster.redis.restart().await;
    for _ in 0..AFTER.as_secs() {
        tokio::time::sleep(Duration::from_secs(1)).await;
        sample("Redis back (empty)", &cluster);
    }
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.abort();
    }
}
