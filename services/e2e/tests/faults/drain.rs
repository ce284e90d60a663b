//! Rolling restart under load: three gateway processes behind a load balancer; client
//! pairs negotiate (broadcast, offer, candidates; answer, candidates) without pause; every gateway in turn is taken out of the balancer,
//! sent SIGTERM (it tells its clients to reconnect, hands their sessions over as they
//! resume elsewhere, and exits 0) and replaced by a new one. No message is lost or
//! duplicated, every negotiation completes, every resume is without a gap.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use e2e::balancer::Balancer;
use e2e::processes::ProcessCluster;
use protocol::ServerMessage;
use protocol::client::{Backoff, ReconnectingClient, Start};
use serde_json::json;

const PAIRS: usize = 6;
const CANDIDATES: u64 = 8;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_restart_loses_and_duplicates_nothing() {
    tokio::time::timeout(Duration::from_secs(150), rolling_restart()).await.expect("the test ends within 150 s");
}

async fn rolling_restart() {
    let env = [("GATEWAY_DRAIN__TIMEOUT", "10s"), ("GATEWAY_DRAIN__CLIENT_GRACE", "2s")];
    let mut cluster = ProcessCluster::start(3, &env, "500ms").await;
    let balancer = Balancer::start((0..3).map(|i| cluster.gateway_addr(i)).collect()).await;
    let stop = Arc::new(AtomicBool::new(false));

    let mut pairs = Vec::new();
    for pair in 0..PAIRS {
        let room = format!("pair-{pair}");
        let caller = connect(&cluster, &balancer, &format!("caller-{pair}"), &room).await;
        let callee = connect(&cluster, &balancer, &format!("callee-{pair}"), &room).await;
        pairs.push(tokio::spawn(run_pair(caller, callee, room, stop.clone())));
    }

    // Let the load run a little, then restart the gateways one after another.
    tokio::time::sleep(Duration::from_millis(500)).await;
    for index in 0..3 {
        let addr = cluster.gateway_addr(index);
        balancer.remove(addr);
        let status = cluster.take_gateway(index).terminate().await;
        assert!(status.success(), "gateway {index} exit status {status}");
        let replacement = cluster.add_gateway().await;
        balancer.add(cluster.gateway_addr(replacement));
        eprintln!("gateway {index} drained and replaced");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);

    let mut total = 0;
    let mut moves = Vec::new();
    for pair in pairs {
        let report = pair.await.expect("a pair's task");
        assert!(report.sequence_errors.is_empty(), "sequence errors: {:?}", report.sequence_errors);
        for start in &report.starts {
            assert_eq!(
                *start,
                Start::Resumed { gap: false, rooms: vec![report.room.clone()] },
                "every move was a clean resume"
            );
        }
        assert!(report.moves >= 1, "{}: the restarts moved this pair's clients at least once", report.room);
        total += report.negotiations;
        moves.extend(report.move_times);
    }
    moves.sort();
    let percentile = |p: usize| moves[(moves.len() - 1) * p / 100];
    eprintln!(
        "{total} negotiations completed across the rolling restart; {} moves (reconnect to resumed): median {:?}, p90 {:?}, max {:?}",
        moves.len(),
        percentile(50),
        percentile(90),
        percentile(100)
    );
}

async fn connect(cluster: &ProcessCluster, balancer: &Balancer, identity: &str, room: &str) -> ReconnectingClient {
    let backoff = Backoff { give_up_after: Duration::from_secs(20), ..Backoff::default() };
    ReconnectingClient::connect(vec![balancer.ws_url()], &cluster.token(identity, &[room]), backoff).await.unwrap()
}

struct Report {
    room: String,
    negotiations: u64,
    moves: usize,
    sequence_errors: Vec<String>,
    starts: Vec<Start>,
    move_times: Vec<Duration>,
}

/// Negotiates again and again until told to stop: the caller broadcasts the round to
/// the room, sends an offer, its candidates and end-of-candidates; the callee checks
/// each, then answers the same way (without the broadcast).
async fn run_pair(
    mut caller: ReconnectingClient,
    mut callee: ReconnectingClient,
    room: String,
    stop: Arc<AtomicBool>,
) -> Report {
    caller.join(&room, None).await.unwrap();
    callee.join(&room, None).await.unwrap();
    let callee_id = loop {
        if let ServerMessage::PeerJoined { peer, .. } = caller.next_message().await.unwrap() {
            break peer.peer_id;
        }
    };
    let caller_id = caller.peer_id().to_string();
    let room_for_callee = room.clone();
    let callee_task = tokio::spawn(async move {
        let mut round = 0;
        loop {
            if !receive_negotiation(&mut callee, "offer", round).await {
                return callee;
            }
            send_negotiation(&mut callee, &room_for_callee, &caller_id, "answer", round).await;
            round += 1;
        }
    });
    let mut round = 0;
    while !stop.load(Ordering::Relaxed) {
        send_negotiation(&mut caller, &room, &callee_id, "offer", round).await;
        assert!(receive_negotiation(&mut caller, "answer", round).await, "the answer of round {round}");
        round += 1;
    }
    caller.signal(&room, &callee_id, "app:done", json!(null)).await.unwrap();
    let callee = callee_task.await.expect("the callee's task");
    let mut sequence_errors = caller.sequence_errors();
    sequence_errors.extend(callee.sequence_errors());
    let starts: Vec<Start> = caller.starts().iter().chain(callee.starts()).cloned().collect();
    let move_times = caller.reconnect_times().iter().chain(callee.reconnect_times()).copied().collect();
    Report { room, negotiations: round, moves: starts.len(), sequence_errors, starts, move_times }
}

async fn send_negotiation(client: &mut ReconnectingClient, room: &str, to: &str, kind: &str, round: u64) {
    if kind == "offer" {
        client.broadcast(room, json!({"round": round})).await.unwrap();
    }
    client.signal(room, to, kind, json!({"round": round})).await.unwrap();
    for index in 0..CANDIDATES {
        client.signal(room, to, "candidate", json!({"round": round, "index": index})).await.unwrap();
    }
    client.signal(room, to, "end_of_candidates", json!({"round": round})).await.unwrap();
}

/// Reads one negotiation, checking every message is the next one expected; false if the
/// other side said it is done instead.
async fn receive_negotiation(client: &mut ReconnectingClient, kind: &str, round: u64) -> bool {
    let mut expected = Vec::new();
    if kind == "offer" {
        expected.push(("broadcast".to_string(), json!({"round": round})));
    }
    expected.push((kind.to_string(), json!({"round": round})));
    expected.extend((0..CANDIDATES).map(|index| ("candidate".to_string(), json!({"round": round, "index": index}))));
    expected.push(("end_of_candidates".to_string(), json!({"round": round})));
    let mut next = expected.into_iter();
    let mut want = next.next();
    while let Some((want_kind, want_data)) = &want {
        let message = client.next_message().await.unwrap_or_else(|error| {
            panic!("{} waiting for {want_kind} {want_data} (round {round}): {error}", client.peer_id())
        });
        match message {
            ServerMessage::Signal { kind, .. } if kind == "app:done" => return false,
            ServerMessage::Signal { kind, data, .. } => {
                assert_eq!((&kind, &data.to_value()), (want_kind, want_data), "once and in order");
                want = next.next();
            }
            ServerMessage::Broadcast { data, .. } => {
                assert_eq!(("broadcast", &data.to_value()), (want_kind.as_str(), want_data), "once and in order");
                want = next.next();
            }
            // A move to another gateway shows as the resume's first message.
            ServerMessage::Resumed(_) | ServerMessage::Welcome(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    true
}
