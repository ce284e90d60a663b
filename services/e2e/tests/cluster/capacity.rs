//! Room capacity under concurrent joins from different gateways.

use protocol::ErrorCode;
use room_service::RoomsConfig;

use crate::TestCluster;

/// Three peers on three gateways race for two seats, ten times.
async fn concurrent_joins_admit_exactly_capacity(cluster: &TestCluster) {
    for round in 0..10 {
        let room = format!("pair-{round}");
        let mut clients = Vec::new();
        for index in 0..3 {
            clients.push(cluster.connect(index, &format!("u{index}"), &[room.as_str()]).await);
        }
        let [a, b, c] = &mut clients[..] else { unreachable!() };
        let (ra, rb, rc) = tokio::join!(a.join(&room, None), b.join(&room, None), c.join(&room, None));
        let outcomes = [ra, rb, rc];
        let admitted = outcomes.iter().filter(|outcome| outcome.is_ok()).count();
        let full: Vec<_> = outcomes.iter().filter_map(|outcome| outcome.as_ref().err()).collect();
        assert_eq!(admitted, 2, "round {round}: {outcomes:?}");
        assert_eq!(full.len(), 1);
        assert_eq!(full[0].code(), Some(ErrorCode::RoomFull), "{:?}", full[0]);
        assert!(full[0].to_string().contains("is full (2 members)"), "{}", full[0]);
    }
}

fn capacity_two() -> RoomsConfig {
    RoomsConfig { default_capacity: 2, ..RoomsConfig::default() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded() {
    let cluster = TestCluster::embedded_with(|config| config.rooms = capacity_two()).await;
    concurrent_joins_admit_exactly_capacity(&cluster).await;
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis() {
    let cluster = TestCluster::redis_with(3, capacity_two(), |_| {}).await;
    concurrent_joins_admit_exactly_capacity(&cluster).await;
    cluster.shutdown().await;
}
