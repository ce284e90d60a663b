//! A first measurement of the relay, until the load tester exists: on an embedded
//! gateway and on a Redis cluster of two gateways (room service over gRPC), it measures
//!
//! - signal round trip: A sends a signal to B, B answers at once, A waits; sequential;
//! - relay throughput: A sends a burst of offer-sized signals, at most 128 unread at
//!   any time, B reads them all;
//! - join latency: one client joins and leaves a room, sequentially.
//!
//! Everything runs in this one process except redis-server, so the numbers include the
//! clients' own work. Bounded: fixed counts, and the whole run is capped at 5 minutes.
//!
//! Run: `cargo run --release -p e2e --example relay_probe`
//!
//! To see what telemetry costs, `PROBE_TELEMETRY=metrics` installs the Prometheus
//! recorder as the binaries do (metrics are always on in production), and
//! `PROBE_TELEMETRY=traces` also exports every span (sampling ratio 1) to a collector
//! this probe runs at `OTEL_EXPORTER_OTLP_ENDPOINT`, which must then be set to a free
//! loopback address, e.g. `http://127.0.0.1:4317`; `PROBE_TRACE_RATIO` sets the share
//! of traces sampled (default 1).

use std::time::{Duration, Instant};

use e2e::TestCluster;
use protocol::ServerMessage;
use protocol::client::Client;
use serde_json::json;

const ROUND_TRIPS: usize = 5_000;
const BURST: usize = 20_000;
const JOINS: usize = 1_000;
/// Signals of the burst that may be unread at once (below the default send queue, 256).
const WINDOW: usize = 128;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let _telemetry = install_telemetry().await;
    tokio::time::timeout(Duration::from_secs(300), async {
        let embedded = TestCluster::embedded().await;
        report("embedded (one gateway, in-memory bus)", &embedded).await;
        embedded.shutdown().await;
        let cluster = TestCluster::redis(2).await;
        report("cluster (two gateways, Redis, room service over gRPC)", &cluster).await;
        cluster.shutdown().await;
    })
    .await
    .expect("the probe finishes within 5 minutes");
}

/// What `PROBE_TELEMETRY` asks for; the collector, when traces are exported, runs as
/// long as the returned value lives.
async fn install_telemetry() -> Option<(common::telemetry::Telemetry, Option<e2e::otlp::Collector>)> {
    let mode = std::env::var("PROBE_TELEMETRY").unwrap_or_default();
    let collector = match mode.as_str() {
        "" | "off" => return None,
        "metrics" => {
            assert!(std::env::var_os("OTEL_EXPORTER_OTLP_ENDPOINT").is_none(), "unset OTEL_EXPORTER_OTLP_ENDPOINT");
            None
        }
        "traces" => {
            let endpoint = std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT").expect("set OTEL_EXPORTER_OTLP_ENDPOINT");
            let addr = endpoint.trim_start_matches("http://").parse().expect("a loopback address with a port");
            Some(e2e::otlp::Collector::start_at(addr).await)
        }
        other => panic!("PROBE_TELEMETRY={other}: expected off, metrics or traces"),
    };
    let mut config = common::telemetry::TelemetryConfig::with_admin_port(0);
    config.log_filter = "warn".into();
    config.trace_sample_ratio = std::env::var("PROBE_TRACE_RATIO").map_or(1.0, |r| r.parse().expect("a ratio"));
    let telemetry = common::telemetry::Telemetry::install("probe", "probe", &config, false).expect("telemetry");
    gateway::metrics::describe();
    println!("telemetry: {mode}\n");
    Some((telemetry, collector))
}

async fn report(name: &str, cluster: &TestCluster) {
    println!("## {name}");
    let mut alice = cluster.connect(0, "alice", &["probe", "joins"]).await;
    let mut bob = cluster.connect(1, "bob", &["probe"]).await;
    alice.join("probe", None).await.unwrap();
    bob.join("probe", None).await.unwrap();
    let _ = alice.next_message().await.unwrap(); // bob's peer_joined
    let bob_id = bob.peer_id().to_string();
    let alice_id = alice.peer_id().to_string();

    let candidate = json!({"candidate": "candidate:1 1 udp 2122260223 127.0.0.1 40000 typ host", "sdpMid": "0"});
    let echo = tokio::spawn(async move {
        for _ in 0..ROUND_TRIPS {
            let _ = next_signal(&mut bob).await;
            bob.signal("probe", &alice_id, "candidate", candidate.clone()).await.unwrap();
        }
        bob
    });
    let mut rtts = Vec::with_capacity(ROUND_TRIPS);
    for _ in 0..ROUND_TRIPS {
        let started = Instant::now();
        alice.signal("probe", &bob_id, "candidate", json!({"candidate": "x", "sdpMid": "0"})).await.unwrap();
        next_signal(&mut alice).await;
        rtts.push(started.elapsed());
    }
    let mut bob = echo.await.unwrap();
    println!("signal round trip, {ROUND_TRIPS} sequential: {}", percentiles(&mut rtts));

    let offer = json!({"type": "offer", "sdp": "v=0\r\n".repeat(600)}); // ~3 KB, an offer's size
    // At most WINDOW signals on their way: a sender that outran its reader would fill
    // the reader's send queue and get it cut off as a slow consumer (as it should).
    let window = std::sync::Arc::new(tokio::sync::Semaphore::new(WINDOW));
    let received = window.clone();
    let reader = tokio::spawn(async move {
        for _ in 0..BURST {
            next_signal(&mut bob).await;
            received.add_permits(1);
        }
    });
    let started = Instant::now();
    for _ in 0..BURST {
        window.acquire().await.unwrap().forget();
        alice.signal("probe", &bob_id, "offer", offer.clone()).await.unwrap();
    }
    reader.await.unwrap();
    let elapsed = started.elapsed();
    println!(
        "relay throughput, {BURST} signals of {} bytes: {:.0} msg/s ({:.2} s)",
        offer.to_string().len(),
        BURST as f64 / elapsed.as_secs_f64(),
        elapsed.as_secs_f64()
    );

    let mut joins = Vec::with_capacity(JOINS);
    for _ in 0..JOINS {
        let started = Instant::now();
        alice.join("joins", None).await.unwrap();
        joins.push(started.elapsed());
        alice.leave("joins").await.unwrap();
    }
    println!("join, {JOINS} sequential: {}\n", percentiles(&mut joins));
}

async fn next_signal(client: &mut Client) {
    loop {
        if let ServerMessage::Signal { .. } = client.next_message().await.unwrap() {
            return;
        }
    }
}

fn percentiles(samples: &mut [Duration]) -> String {
    samples.sort();
    let at = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)];
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    format!(
        "p50 {:.0} µs, p90 {:.0} µs, p99 {:.0} µs, p99.9 {:.0} µs, max {:.0} µs",
        us(at(0.5)),
        us(at(0.9)),
        us(at(0.99)),
        us(at(0.999)),
        us(*samples.last().unwrap())
    )
}
