//! A client that stops reading is cut off with 4008 instead of being buffered for.

use protocol::CloseCode;
use protocol::client::{Auth, Client, Start};
use serde_json::json;

use crate::TestCluster;

/// The reader joins and stops reading; the flooder broadcasts ~19 MB into the room,
/// more than the kernel's socket buffers hold, so the gateway's queue for the reader
/// (8 frames here) overflows.
async fn a_client_that_stops_reading_is_cut_off(cluster: &TestCluster) {
    let mut reader = cluster.connect(1, "reader", &["flood"]).await;
    let mut flooder = cluster.connect(0, "flooder", &["flood"]).await;
    let mut bystander = cluster.connect(2, "bystander", &["calm"]).await;
    reader.join("flood", None).await.unwrap();
    flooder.join("flood", None).await.unwrap();
    bystander.join("calm", None).await.unwrap();
    let chunk = "z".repeat(32 * 1024);
    for _ in 0..600 {
        flooder.broadcast("flood", json!(chunk)).await.unwrap();
    }
    // The flooder is fine and the gateway answers it.
    flooder.ping().await.unwrap();
    // Draining now, the reader finds the frames that made it, then the close.
    reader.set_reply_timeout(std::time::Duration::from_secs(30));
    let (code, reason) = reader.closed().await.unwrap();
    assert_eq!(code, CloseCode::SlowConsumer.code(), "{reason}");
    // Others are unaffected.
    bystander.ping().await.unwrap();

    // The reader's session is kept for a resume, but it missed far more than a session
    // keeps (256 KiB by default): its resume says so instead of pretending otherwise.
    let (token, last_seq) = (reader.resume_token().unwrap().to_string(), reader.last_seq());
    let (mut resumed, start) = Client::resume(&cluster.ws_url(1), &token, last_seq, Auth::Anonymous).await.unwrap();
    assert!(matches!(start, Start::Resumed { gap: true, ref rooms } if rooms == &["flood".to_string()]), "{start:?}");
    assert_eq!(resumed.peer_id(), reader.peer_id(), "the same session");
    let mut late = cluster.connect(2, "late", &["flood"]).await;
    let present = late.join("flood", None).await.unwrap();
    assert_eq!(present.len(), 2, "the flooder and the resumed reader");
    resumed.ping().await.unwrap();
}

fn small_queue(config: &mut gateway::GatewayConfig) {
    config.ws.send_queue = 8;
    // The flooder sends far more than the default rates let one connection send.
    config.limits.bytes_per_second = 64 << 20;
    config.limits.byte_burst = 64 << 20;
    config.limits.message_burst = 1000;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded() {
    let cluster = TestCluster::embedded_with(small_queue).await;
    a_client_that_stops_reading_is_cut_off(&cluster).await;
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis() {
    let cluster = TestCluster::redis_with(3, Default::default(), small_queue).await;
    a_client_that_stops_reading_is_cut_off(&cluster).await;
    cluster.shutdown().await;
}
