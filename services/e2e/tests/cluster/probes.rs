//! Liveness and readiness.

use e2e::http_get;

use crate::TestCluster;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_follows_redis_and_liveness_does_not() {
    let mut cluster = TestCluster::redis(1).await;
    let url = cluster.http_url(0);
    assert_eq!(http_get(&url, "/healthz").await, (200, "ok".to_string()));
    assert_eq!(http_get(&url, "/readyz").await, (200, "ready".to_string()));

    cluster.redis_server().kill().await;
    let (status, body) = http_get(&url, "/readyz").await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("bus:"), "{body}");
    assert_eq!(http_get(&url, "/healthz").await.0, 200, "liveness never depends on Redis");

    cluster.redis_server().restart().await;
    testkit::eventually("ready again after Redis restarts", std::time::Duration::from_secs(20), || async {
        (http_get(&url, "/readyz").await.0 == 200).then_some(())
    })
    .await;
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_gateway_is_ready_without_anything_else() {
    let cluster = TestCluster::embedded().await;
    assert_eq!(http_get(&cluster.http_url(0), "/readyz").await, (200, "ready".to_string()));
    cluster.shutdown().await;
}
