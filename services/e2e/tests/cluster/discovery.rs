//! Room-service discovery in Kubernetes, against a fake Kubernetes API (no API server
//! can run here): the gateway's set of room-service replicas follows the Service's
//! EndpointSlices as pods appear, turn ready, terminate and disappear, and calls keep
//! succeeding throughout, with a single attempt per call (no retry hides a call sent to
//! a replica that is gone).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use bus::RedisConfig;
use cluster_proto::room::{LeaveReason, Member};
use e2e::fake_kube::{FakeKube, endpoint_slice};
use gateway::config::{Discovery, KubernetesDiscoveryConfig, RoomServiceClientConfig};
use gateway::discovery::{self, Replicas};
use gateway::room_api::RoomApi;
use gateway::room_grpc::GrpcRoomApi;
use room_service::store::redis::RedisRoomStore;
use room_service::{RoomError, Rooms, RoomsConfig};
use testkit::RedisServer;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

const NAMESPACE: &str = "signaling";
const SERVICE: &str = "room-service";

/// A room-service replica serving on `listener`, as one pod would.
struct Pod {
    stop: oneshot::Sender<()>,
    task: JoinHandle<anyhow::Result<()>>,
}

impl Pod {
    async fn start(redis: &RedisConfig, listener: TcpListener) -> Self {
        let store = RedisRoomStore::connect(redis).await.expect("room store connects");
        let rooms = Arc::new(Rooms::new(Arc::new(store), "rs-pod", RoomsConfig::default()));
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(room_service::grpc::serve(rooms, Default::default(), listener, async move {
            let _ = stopped.await;
        }));
        Self { stop, task }
    }

    /// The pod's end after SIGTERM: the server stops and its connections are closed.
    async fn end(self) {
        let _ = self.stop.send(());
        let ended = tokio::time::timeout(Duration::from_secs(10), self.task).await;
        assert!(ended.is_ok(), "the replica stops within 10 s");
    }
}

/// Two listeners on one port of 127.0.0.2 and 127.0.0.3: two pods' addresses.
async fn two_pod_addresses() -> (TcpListener, TcpListener, u16) {
    for _ in 0..20 {
        let first = TcpListener::bind("127.0.0.2:0").await.expect("bind 127.0.0.2");
        let port = first.local_addr().expect("address").port();
        if let Ok(second) = TcpListener::bind(SocketAddr::from(([127, 0, 0, 3], port))).await {
            return (first, second, port);
        }
    }
    panic!("no port free on both 127.0.0.2 and 127.0.0.3");
}

/// A slice of the room service's Service; endpoints are (address, ready, terminating).
fn slice(name: &str, port: u16, endpoints: &[(&str, bool, bool)]) -> serde_json::Value {
    endpoint_slice(name, NAMESPACE, SERVICE, port, endpoints)
}

async fn expect_replicas(replicas: &Replicas, expected: &[String]) {
    let mut watched = replicas.clone();
    let seen = tokio::time::timeout(Duration::from_secs(10), watched.wait_for(|urls| urls == expected)).await.is_ok();
    assert!(seen, "replicas {:?}, expected {expected:?}", *replicas.borrow());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_follow_the_endpoint_slices_and_calls_keep_succeeding() {
    let redis = RedisServer::start().await;
    let redis_config = RedisConfig { url: Some(redis.url()), ..RedisConfig::default() };
    let (first, second, port) = two_pod_addresses().await;
    let pod_a = Pod::start(&redis_config, first).await;
    let pod_b = Pod::start(&redis_config, second).await;
    let (a, b) = (format!("http://127.0.0.2:{port}"), format!("http://127.0.0.3:{port}"));

    let kube = FakeKube::start().await;
    kube.apply(slice("room-service-x1", port, &[("127.0.0.2", true, false)]));
    let config = RoomServiceClientConfig {
        discovery: Discovery::Kubernetes,
        kubernetes: KubernetesDiscoveryConfig {
            service: Some(SERVICE.into()),
            namespace: Some(NAMESPACE.into()),
            port: "grpc".into(),
            api_url: Some(kube.url()),
        },
        ..RoomServiceClientConfig::default()
    };
    let replicas = discovery::start(&config).expect("discovery starts");
    let one_try_each = RoomServiceClientConfig { timeout: Duration::from_secs(2), attempts: 1, ..config.clone() };
    let api = Arc::new(GrpcRoomApi::new(replicas.clone(), &one_try_each).expect("client"));
    expect_replicas(&replicas, std::slice::from_ref(&a)).await;

    // Joins and leaves without pause while the endpoints change, each tried once.
    let stop = Arc::new(AtomicBool::new(false));
    let (calls, failures) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let churn = tokio::spawn({
        let (api, stop, calls, failures) = (api.clone(), stop.clone(), calls.clone(), failures.clone());
        async move {
            let started = tokio::time::Instant::now();
            let mut round = 0u64;
            while !stop.load(Ordering::Relaxed) && started.elapsed() < Duration::from_secs(60) {
                let peer = format!("p-churn{round}");
                let member = Member {
                    peer_id: peer.clone(),
                    identity: "churn".into(),
                    node_id: "gw-test".into(),
                    ..Member::default()
                };
                let joined = api.join("discovered", member).await;
                let left = api.leave("discovered", &peer, "gw-test", LeaveReason::Left).await;
                for outcome in [joined.err(), left.err()] {
                    calls.fetch_add(1, Ordering::Relaxed);
                    if let Some(error) = outcome {
                        eprintln!("call failed: {error}");
                        failures.fetch_add(1, Ordering::Relaxed);
                    }
                }
                round += 1;
            }
        }
    });
    let calls_so_far = || calls.load(Ordering::Relaxed);
    let after_more_calls = |from: u64| {
        let calls = calls.clone();
        async move {
            testkit::eventually("more calls made", Duration::from_secs(10), || {
                let made = calls.load(Ordering::Relaxed);
                async move { (made >= from + 50).then_some(()) }
            })
            .await
        }
    };
    after_more_calls(calls_so_far()).await;

    // A second pod turns ready: it joins the rotation.
    kube.apply(slice("room-service-x1", port, &[("127.0.0.2", true, false), ("127.0.0.3", true, false)]));
    expect_replicas(&replicas, &[a.clone(), b.clone()]).await;
    after_more_calls(calls_so_far()).await;

    // The first is being deleted: marked terminating, it leaves the rotation at once,
    // then its process ends. No call may reach it after that.
    kube.apply(slice("room-service-x1", port, &[("127.0.0.2", false, true), ("127.0.0.3", true, false)]));
    expect_replicas(&replicas, std::slice::from_ref(&b)).await;
    pod_a.end().await;
    after_more_calls(calls_so_far()).await;

    // The slice is replaced by another (EndpointSlices come and go as pods change): while
    // there is none (here for the time of 50 calls, shorter than the grace), the last
    // endpoints stay and calls keep succeeding.
    kube.delete("room-service-x1");
    after_more_calls(calls_so_far()).await;
    assert_eq!(*replicas.borrow(), std::slice::from_ref(&b), "kept through the gap");
    kube.apply(slice("room-service-x2", port, &[("127.0.0.3", true, false)]));
    after_more_calls(calls_so_far()).await;

    stop.store(true, Ordering::Relaxed);
    churn.await.expect("the churn task");
    assert_eq!(failures.load(Ordering::Relaxed), 0, "of {} calls, none may fail", calls_so_far());
    assert_eq!(api.replica_urls(), std::slice::from_ref(&b));

    // No endpoint at all: calls are answered unavailable, promptly.
    kube.delete("room-service-x2");
    expect_replicas(&replicas, &[]).await;
    let member = Member { peer_id: "p-late".into(), node_id: "gw-test".into(), ..Member::default() };
    assert!(matches!(api.join("discovered", member).await, Err(RoomError::Unavailable(_))));
    pod_b.end().await;
}

/// The same discovery in a gateway process configured as the Helm chart configures its
/// pods (environment only): its room-service URL points nowhere, so every room call it
/// makes goes to the replica it learnt from the EndpointSlices.
#[tokio::test]
async fn a_gateway_process_calls_the_room_service_it_found_through_the_api() {
    let mut cluster = e2e::processes::ProcessCluster::start(0, &[], "1s").await;
    let replica = cluster.room_service(0).addr();
    let kube = FakeKube::start().await;
    kube.apply(endpoint_slice(
        "room-service-p1",
        NAMESPACE,
        SERVICE,
        replica.port(),
        &[(&replica.ip().to_string(), true, false)],
    ));
    let gateway = cluster
        .add_gateway_with(&[
            ("GATEWAY_ROOM_SERVICE__URL", "http://127.0.0.1:9".into()),
            ("GATEWAY_ROOM_SERVICE__DISCOVERY", "kubernetes".into()),
            ("GATEWAY_ROOM_SERVICE__KUBERNETES__SERVICE", SERVICE.into()),
            ("GATEWAY_ROOM_SERVICE__KUBERNETES__NAMESPACE", NAMESPACE.into()),
            ("GATEWAY_ROOM_SERVICE__KUBERNETES__API_URL", kube.url()),
        ])
        .await;
    // The gateway turns ready once it can reach a room-service replica, which it can
    // only have learnt from the API; clients come after, as Kubernetes sends them.
    let url = cluster.http_url(gateway);
    testkit::eventually("the gateway is ready", Duration::from_secs(10), || async {
        (e2e::http_get(&url, "/readyz").await.0 == 200).then_some(())
    })
    .await;
    let mut alice = cluster.connect(gateway, "alice", &["found"]).await;
    let mut bob = cluster.connect(gateway, "bob", &["found"]).await;
    alice.join("found", None).await.expect("alice's join reaches the discovered replica");
    let peers = bob.join("found", None).await.expect("bob's too");
    assert_eq!(peers.len(), 1, "the replica holds alice's membership: {peers:?}");
    assert_eq!(peers[0].peer_id, alice.peer_id());
}
