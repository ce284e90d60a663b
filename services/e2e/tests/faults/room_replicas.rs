//! Two room-service replicas behind two gateways; clients join and leave a room without
//! pause while one replica is killed with SIGKILL. The gateways retry on the surviving
//! replica: every join and leave succeeds, and an observer in the room sees each one
//! exactly once, in order.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use e2e::processes::ProcessCluster;
use protocol::ServerMessage;
use tokio::sync::Notify;

use crate::expect;

const CHURNERS: usize = 6;
const ROUNDS: usize = 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_a_replica_under_churn_loses_and_repeats_no_join() {
    tokio::time::timeout(Duration::from_secs(90), churn()).await.expect("done within 90 s");
}

async fn churn() {
    let mut cluster = ProcessCluster::start_with_replicas(2, &[], "1s", 2).await;
    let mut observer = cluster.connect(0, "observer", &["churn"]).await;
    observer.join("churn", None).await.unwrap();

    // Each churner joins and leaves ROUNDS times; the replica dies a third of the way.
    let done_rounds = Arc::new(AtomicUsize::new(0));
    let third_done = Arc::new(Notify::new());
    let mut churners = Vec::new();
    let mut names = BTreeMap::new();
    for index in 0..CHURNERS {
        let mut client = cluster.connect(index % 2, &format!("churner-{index}"), &["churn"]).await;
        names.insert(client.peer_id().to_string(), index);
        let (done_rounds, third_done) = (done_rounds.clone(), third_done.clone());
        churners.push(tokio::spawn(async move {
            for round in 0..ROUNDS {
                client.join("churn", None).await.unwrap_or_else(|e| panic!("churner {index} join {round}: {e}"));
                client.leave("churn").await.unwrap_or_else(|e| panic!("churner {index} leave {round}: {e}"));
                if done_rounds.fetch_add(1, Ordering::Relaxed) + 1 == CHURNERS * ROUNDS / 3 {
                    third_done.notify_one();
                }
            }
        }));
    }
    third_done.notified().await;
    cluster.take_room_service(0).kill().await;
    eprintln!("replica 0 killed after {} rounds", done_rounds.load(Ordering::Relaxed));
    for churner in churners {
        churner.await.expect("every join and leave succeeded");
    }

    // The observer saw, for each churner, joined/left alternating, ROUNDS times each.
    let mut seen: BTreeMap<usize, Vec<&str>> = BTreeMap::new();
    while seen.values().map(Vec::len).sum::<usize>() < CHURNERS * ROUNDS * 2 {
        match expect::next(&mut observer).await {
            ServerMessage::PeerJoined { peer, .. } => seen.entry(names[&peer.peer_id]).or_default().push("joined"),
            ServerMessage::PeerLeft { peer_id, .. } => seen.entry(names[&peer_id]).or_default().push("left"),
            other => panic!("observer: unexpected {other:?}"),
        }
    }
    for (churner, events) in &seen {
        let expected: Vec<&str> = ["joined", "left"].repeat(ROUNDS);
        assert_eq!(events, &expected, "churner {churner}: each join and leave once, in order");
    }
    let members = cluster.room_service_client().await;
    let listed = members
        .clone()
        .list_members(cluster_proto::room::ListMembersRequest { room: "churn".into() })
        .await
        .unwrap()
        .into_inner()
        .members;
    assert_eq!(listed.len(), 1, "only the observer is left: {listed:?}");
}
